/* bench_ew: elementwise kernels in GB/s (bytes read + written) for each ISA path,
 * beyond cache and in cache, against the memory bandwidth measured in the same run
 * on the same arrays (the better of memcpy and a non-temporal copy, counted as bytes
 * read + written). */
#include "bench.h"
#include "kernels/dispatch.h"
#include "kernels/ew.h"
#include "math_kernels.h"
#include "mem.h"
#include "utils.h"

#include <emmintrin.h>
#include <stdio.h>
#include <string.h>

#define LARGE_BYTES ((size_t)64 << 20) /* per array: far beyond the 32 MiB L3 */
#define CACHE_ELEMS 8192
#define NARR 4

enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MAX, OP_SADD, OP_SMUL, OP_SUM, OP_AXPY,
       OP_RELU, OP_RELU_BWD, OP_ADAM, OP_COUNT };
static const char *const op_names[OP_COUNT] = {"add", "sub", "mul", "div", "max", "scalar_add",
    "scalar_mul", "sum", "axpy", "relu", "relu_bwd", "adam"};
/* Arrays each op reads plus writes (adam: p g m v read, p m v written). */
static const int op_streams[OP_COUNT] = {3, 3, 3, 3, 3, 2, 2, 1, 3, 2, 4, 7};

static volatile double sink;

/* Adam needs more arrays than NARR: it reuses p as g, which only changes values. */
#define RUN_OP(T, sfx)                                                                       \
    static void run_##sfx(const struct EwKernels *k, int op, size_t n, T **a)                \
    {                                                                                        \
        switch (op) {                                                                        \
        case OP_SADD: k->scal_##sfx[EW_SADD](n, a[0], (T)0.5, a[2]); break;                  \
        case OP_SMUL: k->scal_##sfx[EW_SMUL](n, a[0], (T)0.5, a[2]); break;                  \
        case OP_SUM: sink = k->sum_##sfx(n, a[0]); break;                                    \
        case OP_AXPY: k->axpy_##sfx(n, (T)1e-3, a[0], a[2]); break;                          \
        case OP_RELU: k->relu_##sfx(n, a[0], a[2]); break;                                   \
        case OP_RELU_BWD: k->relu_bwd_##sfx(n, a[0], a[1], a[2]); break;                     \
        case OP_ADAM: k->adam_##sfx(n, a[2], a[0], a[1], a[3], (T)0.9, (T)0.999, (T)1e-9, (T)0.5, (T)1e-8); break; \
        default: k->bin_##sfx[op](n, a[0], a[1], a[2]);                                      \
        }                                                                                    \
    }                                                                                        \
    static void init_##sfx(T **a, size_t n)                                                  \
    {                                                                                        \
        for (int j = 0; j < NARR; j++)                                                       \
            for (size_t i = 0; i < n; i++) a[j][i] = (T)(1 + (i % 17) * 0.01 * (j + 1));     \
    }
RUN_OP(float, f32)
RUN_OP(double, f64)

static void run(int dt, int op, size_t n, void **a)
{
    const struct EwKernels *k = kernels_get()->ew1; /* one thread: the ISA's own kernels */
    if (dt == 0) run_f32(k, op, n, (float **)a);
    else run_f64(k, op, n, (double **)a);
}

/* Median GB/s of `runs` samples, each of `reps` calls. */
static double measure(int dt, int op, size_t n, void **a, int runs, int reps)
{
    double gbs[16];
    double bytes = (double)op_streams[op] * (double)n * (dt ? 8 : 4) * reps;
    run(dt, op, n, a); /* warm up */
    for (int r = 0; r < runs; r++) {
        double t0 = time_now();
        for (int i = 0; i < reps; i++) run(dt, op, n, a);
        gbs[r] = bytes / (time_now() - t0) / 1e9;
    }
    return bench_median(gbs, runs);
}

/* The yardsticks, all over the same LARGE_BYTES arrays: glibc memcpy, a copy with
 * non-temporal stores (what the large ew kernels do), and a read-only pass. */
enum { BW_MEMCPY, BW_NTCOPY, BW_READ, BW_COUNT };

static void nt_copy(float *d, const float *s, size_t n)
{
    for (size_t i = 0; i + 16 <= n; i += 16) {
        __m128 x0 = _mm_loadu_ps(s + i), x1 = _mm_loadu_ps(s + i + 4);
        __m128 x2 = _mm_loadu_ps(s + i + 8), x3 = _mm_loadu_ps(s + i + 12);
        _mm_stream_ps(d + i, x0), _mm_stream_ps(d + i + 4, x1);
        _mm_stream_ps(d + i + 8, x2), _mm_stream_ps(d + i + 12, x3);
    }
    _mm_sfence();
}

static float read_all(const float *s, size_t n)
{
    __m128 a0 = _mm_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 16 <= n; i += 16) {
        a0 = _mm_add_ps(a0, _mm_loadu_ps(s + i)), a1 = _mm_add_ps(a1, _mm_loadu_ps(s + i + 4));
        a2 = _mm_add_ps(a2, _mm_loadu_ps(s + i + 8)), a3 = _mm_add_ps(a3, _mm_loadu_ps(s + i + 12));
    }
    float t[4];
    _mm_storeu_ps(t, _mm_add_ps(_mm_add_ps(a0, a1), _mm_add_ps(a2, a3)));
    return t[0] + t[1] + t[2] + t[3];
}

static void bandwidth(void **a, int runs, double *bw)
{
    double gbs[BW_COUNT][16];
    size_t n = LARGE_BYTES / sizeof(float);
    memcpy(a[2], a[0], LARGE_BYTES);
    for (int r = 0; r < runs; r++) {
        double t0 = time_now();
        memcpy(a[2], a[0], LARGE_BYTES);
        double t1 = time_now();
        nt_copy(a[2], a[0], n);
        double t2 = time_now();
        sink = read_all(a[0], n);
        double t3 = time_now();
        gbs[BW_MEMCPY][r] = 2.0 * LARGE_BYTES / (t1 - t0) / 1e9;
        gbs[BW_NTCOPY][r] = 2.0 * LARGE_BYTES / (t2 - t1) / 1e9;
        gbs[BW_READ][r] = 1.0 * LARGE_BYTES / (t3 - t2) / 1e9;
    }
    for (int k = 0; k < BW_COUNT; k++) bw[k] = bench_median(gbs[k], runs);
}

/* Large arrays: each sample times the non-temporal copy and then the op, so both see
 * the same contention from other processes; x bw is the median of per-sample ratios. */
static void measure_large(int dt, int op, void **a, int runs, double *gbs, double *ratio)
{
    double g[16], r[16];
    size_t n = LARGE_BYTES / (dt ? 8 : 4);
    double bytes = (double)op_streams[op] * (double)LARGE_BYTES;
    run(dt, op, n, a);
    for (int i = 0; i < runs; i++) {
        double t0 = time_now();
        nt_copy(a[3], a[0], LARGE_BYTES / sizeof(float));
        double t1 = time_now();
        run(dt, op, n, a);
        double t2 = time_now();
        g[i] = bytes / (t2 - t1) / 1e9;
        r[i] = g[i] / (2.0 * LARGE_BYTES / (t1 - t0) / 1e9);
    }
    *gbs = bench_median(g, runs);
    *ratio = bench_median(r, runs);
}

static void print_table(int dt, double res[ISA_COUNT][OP_COUNT][3])
{
    printf("%-8s %-11s", dt ? "float64" : "float32", "op");
    for (int isa = ISA_SSE2; isa < ISA_COUNT; isa++)
        if (kernels_isa_supported(isa)) printf(" | %6s: large  x bw  cache", isa_name(isa));
    printf("\n");
    for (int op = 0; op < OP_COUNT; op++) {
        printf("%-8s %-11s", "", op_names[op]);
        for (int isa = ISA_SSE2; isa < ISA_COUNT; isa++)
            if (kernels_isa_supported(isa))
                printf(" | %13.1f %5.2f %6.1f", res[isa][op][0], res[isa][op][1], res[isa][op][2]);
        printf("\n");
    }
}

void bench_ew(int quick)
{
    int runs = quick ? 3 : 7, saved = kernels_isa();
    void *a[NARR];
    for (int j = 0; j < NARR; j++) a[j] = mem_alloc_aligned(LARGE_BYTES, 64);
    static double res[ISA_COUNT][OP_COUNT][3];
    printf("[ew] elementwise GB/s (bytes read + written), single thread, median of %d runs\n"
           "large: %zu MiB per array; cache: %d elements; x bw: large / non-temporal copy of\n"
           "%zu MiB timed just before each run (the better copy below)\n",
           runs, LARGE_BYTES >> 20, CACHE_ELEMS, LARGE_BYTES >> 20);
    for (int dt = 0; dt < 2; dt++) {
        size_t es = dt ? 8 : 4, large = LARGE_BYTES / es;
        if (dt == 0) init_f32((float **)a, large); else init_f64((double **)a, large);
        double bw[BW_COUNT];
        bandwidth(a, runs, bw);
        printf("\nmemory bandwidth, %zu MiB: memcpy %.1f GB/s, non-temporal copy %.1f GB/s (both read + write),"
               " read only %.1f GB/s\n", LARGE_BYTES >> 20, bw[BW_MEMCPY], bw[BW_NTCOPY], bw[BW_READ]);
        for (int isa = ISA_SSE2; isa < ISA_COUNT; isa++) {
            if (!kernels_isa_supported(isa)) continue;
            kernels_select(isa);
            for (int op = 0; op < OP_COUNT; op++) {
                measure_large(dt, op, a, runs, &res[isa][op][0], &res[isa][op][1]);
                res[isa][op][2] = measure(dt, op, CACHE_ELEMS, a, runs, quick ? 200 : 1000);
            }
        }
        print_table(dt, res);
    }
    kernels_select(saved);
    for (int j = 0; j < NARR; j++) mem_free(a[j]);
}
