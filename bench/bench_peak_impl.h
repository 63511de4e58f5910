/* Body of bench_peak_<isa>.c: the caller defines PEAK_TYPE(_D), PEAK_FN, PEAK_P and
 * PEAK_N, the independent accumulators (enough to cover FMA latency x pipes, few enough
 * to stay in registers with the two constants). */
#define PEAK_LOOP(T, V, S)                                                                 \
    static double peak_##S(long n)                                                         \
    {                                                                                      \
        V m = PEAK_P(set1_##S)((T)0.999999), c = PEAK_P(set1_##S)((T)1e-6), acc[PEAK_N];       \
        _Pragma("GCC unroll 16") for (int i = 0; i < PEAK_N; i++) acc[i] = PEAK_P(set1_##S)((T)i); \
        for (long it = 0; it < n; it++) {                                                  \
            _Pragma("GCC unroll 16") for (int i = 0; i < PEAK_N; i++)                       \
                acc[i] = PEAK_P(fmadd_##S)(acc[i], m, c);                                  \
        }                                                                                  \
        V s = acc[0];                                                                      \
        _Pragma("GCC unroll 16") for (int i = 1; i < PEAK_N; i++) s = PEAK_P(add_##S)(s, acc[i]); \
        T out[sizeof(V) / sizeof(T)];                                                      \
        PEAK_P(storeu_##S)(out, s);                                                        \
        sink = out[0];                                                                     \
        return PEAK_N * 2.0 * (double)(sizeof(V) / sizeof(T)) * (double)n;                    \
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
