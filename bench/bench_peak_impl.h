/* Body of bench_peak_<isa>.c: the caller defines PEAK_TYPE(_D), PEAK_FN and PEAK_P. */
#define PEAK_LOOP(T, V, S)                                                                 \
    static double peak_##S(long n)                                                         \
    {                                                                                      \
        V m = PEAK_P(set1_##S)((T)0.999999), c = PEAK_P(set1_##S)((T)1e-6), acc[16];       \
        for (int i = 0; i < 16; i++) acc[i] = PEAK_P(set1_##S)((T)i);                      \
        for (long it = 0; it < n; it++) {                                                  \
            _Pragma("GCC unroll 16") for (int i = 0; i < 16; i++)                          \
                acc[i] = PEAK_P(fmadd_##S)(acc[i], m, c);                                  \
            __asm__ volatile("" : "+v"(acc[0]), "+v"(acc[5]), "+v"(acc[10]), "+v"(acc[15])); \
        }                                                                                  \
        V s = acc[0];                                                                      \
        for (int i = 1; i < 16; i++) s = PEAK_P(add_##S)(s, acc[i]);                       \
        T out[sizeof(V) / sizeof(T)];                                                      \
        PEAK_P(storeu_##S)(out, s);                                                        \
        sink = out[0];                                                                     \
        return 16.0 * 2 * (double)(sizeof(V) / sizeof(T)) * (double)n;                    \
    }
static volatile double sink;
PEAK_LOOP(float, PEAK_TYPE, ps)
PEAK_LOOP(double, PEAK_TYPE_D, pd)

double PEAK_FN(int f64, double seconds)
{
    long n = 1 << 16;
    double t0 = time_now(), flops = 0;
    do {
        flops += f64 ? peak_pd(n) : peak_ps(n);
    } while (time_now() - t0 < seconds);
    return flops / (time_now() - t0) / 1e9;
}
