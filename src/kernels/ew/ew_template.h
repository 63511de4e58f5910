/* ew_template: the SIMD elementwise kernels, written once against a small vector
 * vocabulary. A per-ISA file (ew_sse2.c, ew_avx2.c, ew_avx512.c) defines, for one
 * element type, the macros below and includes this file; it does so twice (float,
 * double) and then writes EW_DEFINE_TABLE(isa). The vocabulary comes from simd/<isa>.h,
 * which clears the previous definitions itself.
 *
 *   T, SFX        element type and its name suffix (f32 / f64)
 *   V, EPR        vector type and elements per vector
 *   VLOAD(p) VSTORE(p, v)   unaligned load / store; VSTREAM(p, v) non-temporal store
 *                           to an address aligned to sizeof(V)
 *   VSET1(x) VZERO()        broadcast / zero
 *   VADD VSUB VMUL VDIV     lane-wise arithmetic
 *   VMAX(a, b)              a > b ? a : b, lane-wise (so b when either is NaN)
 *   VFMA(a, b, c)           a*b + c (fused where the ISA has it)
 *   VSQRT(a)                lane-wise square root
 *   VSEL_GT0(x, g)          g where x > 0, else 0
 *   SSQRT(x)                scalar square root for the tail
 *
 * Loops: vector blocks first, then a shared scalar tail that uses the same scalar
 * expression as the reference. The op of each map is a static inline function passed
 * to an always-inline driver, so the compiler sees straight-line code. */
#include <immintrin.h>
#include <stdint.h>

#ifndef EW_TEMPLATE_ONCE
#define EW_TEMPLATE_ONCE
#define EW_CAT_(a, b) a##_##b
#define EW_CAT(a, b) EW_CAT_(a, b)
#define EW_INLINE static inline __attribute__((always_inline))
/* f32 sums run in float lanes within blocks of this many elements; each block's total
 * is added into a double, which bounds the rounding error growth. */
#define EW_SUM_BLOCK 4096
#define EW_DEFINE_TABLE(isa) const struct EwKernels ew_kernels_##isa = EW_TABLE
/* A kernel that streams several arrays asks for each line this many bytes ahead. */
#define EW_AHEAD 1024
#define EW_LINE 64
/* A prefetch for writing: PREFETCHW asks for the line in the state a store needs, and
 * every processor with AVX-512 has it (inline assembly, so that no -m flag turns the
 * file's other prefetches into it); elsewhere an ordinary prefetch. */
#ifdef __AVX512F__
#define EW_PREFETCH_W(p) __asm__ volatile("prefetchw %0" : : "m"(*(const char *)(p)))
#else
#define EW_PREFETCH_W(p) __builtin_prefetch(p, 1, 3)
#endif
#endif

#define FN(name) EW_CAT(name, SFX)
#define EW_IS_ALIGNED(p) ((uintptr_t)(p) % sizeof(V) == 0)
#define EW_STREAMS(n) ((n) * sizeof(T) >= EW_STREAM_BYTES)

/* o[i] = op(a[i], b[i]) */
EW_INLINE void FN(map2)(size_t n, const T *a, const T *b, T *o, V (*vop)(V, V), T (*sop)(T, T))
{
    size_t i = 0;
    if (EW_STREAMS(n)) {
        for (; i < n && !EW_IS_ALIGNED(o + i); i++) o[i] = sop(a[i], b[i]);
        for (; i + EPR <= n; i += EPR) VSTREAM(o + i, vop(VLOAD(a + i), VLOAD(b + i)));
        _mm_sfence();
    }
    for (; i + 2 * EPR <= n; i += 2 * EPR) {
        V x0 = VLOAD(a + i), x1 = VLOAD(a + i + EPR);
        V y0 = VLOAD(b + i), y1 = VLOAD(b + i + EPR);
        VSTORE(o + i, vop(x0, y0));
        VSTORE(o + i + EPR, vop(x1, y1));
    }
    for (; i + EPR <= n; i += EPR) VSTORE(o + i, vop(VLOAD(a + i), VLOAD(b + i)));
    for (; i < n; i++) o[i] = sop(a[i], b[i]);
}

/* o[i] = op(a[i], s) */
EW_INLINE void FN(map_s)(size_t n, const T *a, T s, T *o, V (*vop)(V, V), T (*sop)(T, T))
{
    size_t i = 0;
    V vs = VSET1(s);
    if (EW_STREAMS(n)) {
        for (; i < n && !EW_IS_ALIGNED(o + i); i++) o[i] = sop(a[i], s);
        for (; i + EPR <= n; i += EPR) VSTREAM(o + i, vop(VLOAD(a + i), vs));
        _mm_sfence();
    }
    for (; i + 2 * EPR <= n; i += 2 * EPR) {
        V x0 = VLOAD(a + i), x1 = VLOAD(a + i + EPR);
        VSTORE(o + i, vop(x0, vs));
        VSTORE(o + i + EPR, vop(x1, vs));
    }
    for (; i + EPR <= n; i += EPR) VSTORE(o + i, vop(VLOAD(a + i), vs));
    for (; i < n; i++) o[i] = sop(a[i], s);
}

static inline V FN(v_add)(V x, V y) { return VADD(x, y); }
static inline V FN(v_sub)(V x, V y) { return VSUB(x, y); }
static inline V FN(v_mul)(V x, V y) { return VMUL(x, y); }
static inline V FN(v_div)(V x, V y) { return VDIV(x, y); }
static inline V FN(v_max)(V x, V y) { return VMAX(x, y); }
static inline T FN(s_add)(T x, T y) { return x + y; }
static inline T FN(s_sub)(T x, T y) { return x - y; }
static inline T FN(s_mul)(T x, T y) { return x * y; }
static inline T FN(s_div)(T x, T y) { return x / y; }
static inline T FN(s_max)(T x, T y) { return x > y ? x : y; }

static void FN(add)(size_t n, const T *a, const T *b, T *o) { FN(map2)(n, a, b, o, FN(v_add), FN(s_add)); }
static void FN(sub)(size_t n, const T *a, const T *b, T *o) { FN(map2)(n, a, b, o, FN(v_sub), FN(s_sub)); }
static void FN(mul)(size_t n, const T *a, const T *b, T *o) { FN(map2)(n, a, b, o, FN(v_mul), FN(s_mul)); }
static void FN(div)(size_t n, const T *a, const T *b, T *o) { FN(map2)(n, a, b, o, FN(v_div), FN(s_div)); }
static void FN(max)(size_t n, const T *a, const T *b, T *o) { FN(map2)(n, a, b, o, FN(v_max), FN(s_max)); }
static void FN(sadd)(size_t n, const T *a, T s, T *o) { FN(map_s)(n, a, s, o, FN(v_add), FN(s_add)); }
static void FN(smul)(size_t n, const T *a, T s, T *o) { FN(map_s)(n, a, s, o, FN(v_mul), FN(s_mul)); }
/* max(x, 0) with max's "x > 0 ? x : 0" semantics is exactly ReLU, NaN giving 0. */
static void FN(relu)(size_t n, const T *x, T *o) { FN(map_s)(n, x, 0, o, FN(v_max), FN(s_max)); }

/* Four accumulators hide the add latency; see EW_SUM_BLOCK for the blocking. */
static double FN(sum)(size_t n, const T *a)
{
    double total = 0;
    size_t i = 0;
    while (i < n) {
        size_t end = n - i > EW_SUM_BLOCK ? i + EW_SUM_BLOCK : n;
        V s0 = VZERO(), s1 = VZERO(), s2 = VZERO(), s3 = VZERO();
        for (; i + 4 * EPR <= end; i += 4 * EPR) {
            s0 = VADD(s0, VLOAD(a + i));
            s1 = VADD(s1, VLOAD(a + i + EPR));
            s2 = VADD(s2, VLOAD(a + i + 2 * EPR));
            s3 = VADD(s3, VLOAD(a + i + 3 * EPR));
        }
        for (; i + EPR <= end; i += EPR) s0 = VADD(s0, VLOAD(a + i));
        T lanes[EPR], part = 0;
        VSTORE(lanes, VADD(VADD(s0, s1), VADD(s2, s3)));
        for (int l = 0; l < EPR; l++) part += lanes[l];
        for (; i < end; i++) part += a[i];
        total += part;
    }
    return total;
}

static void FN(axpy)(size_t n, T alpha, const T *x, T *y)
{
    size_t i = 0;
    V va = VSET1(alpha);
    for (; i + EPR <= n; i += EPR) VSTORE(y + i, VFMA(va, VLOAD(x + i), VLOAD(y + i)));
    for (; i < n; i++) y[i] += alpha * x[i];
}

static void FN(relu_bwd)(size_t n, const T *x, const T *g, T *gx)
{
    size_t i = 0;
    for (; i + EPR <= n; i += EPR)
        VSTORE(gx + i, VADD(VLOAD(gx + i), VSEL_GT0(VLOAD(x + i), VLOAD(g + i))));
    for (; i < n; i++)
        if (x[i] > 0) gx[i] += g[i];
}

static void FN(relu_bwd_set)(size_t n, const T *x, const T *g, T *gx)
{
    size_t i = 0;
    for (; i + EPR <= n; i += EPR) VSTORE(gx + i, VSEL_GT0(VLOAD(x + i), VLOAD(g + i)));
    for (; i < n; i++) gx[i] = x[i] > 0 ? g[i] : 0;
}

/* Adam reads four arrays and writes three, a line of each at a time, each line asked
 * for EW_AHEAD bytes ahead (p, m and v for writing). On this project's VM: in the MLP's
 * step at one thread 24 -> 21 us, at 2 threads 13.3 -> 12.9; its 101770 parameters out
 * of L3 23.8 -> 19.2 us at one thread, 13.3 -> 11.8 at 2; where the other core had read
 * p (a layer cut by samples reads all of W on every thread: the CNN's last Linear) 57
 * -> 41 us at 2 threads. Out of L2 at 2 threads 10.5 -> 11.6 us; out of L1 and out of
 * memory (bench ew) 3-4% slower. */
#define ADAM_VEC(i)                                                                       \
    do {                                                                                  \
        V gi = VLOAD(g + (i));                                                            \
        V mi = VFMA(vb1, VLOAD(m + (i)), VMUL(vc1, gi));                                  \
        V vi = VFMA(vb2, VLOAD(v + (i)), VMUL(VMUL(vc2, gi), gi));                        \
        V den = VADD(VDIV(VSQRT(vi), vbc2), veps);                                        \
        VSTORE(m + (i), mi);                                                              \
        VSTORE(v + (i), vi);                                                              \
        VSTORE(p + (i), VSUB(VLOAD(p + (i)), VMUL(vstep, VDIV(mi, den))));                \
    } while (0)

static void FN(adam)(size_t n, T *p, const T *g, T *m, T *v, T b1, T b2, T step, T bc2_sqrt, T eps)
{
    size_t i = 0;
    const size_t line = EW_LINE / sizeof(T), ahead = EW_AHEAD / sizeof(T);
    V vb1 = VSET1(b1), vb2 = VSET1(b2), vc1 = VSET1(1 - b1), vc2 = VSET1(1 - b2);
    V vstep = VSET1(step), vbc2 = VSET1(bc2_sqrt), veps = VSET1(eps);
    for (; i + ahead + line <= n; i += line) {
        EW_PREFETCH_W(p + i + ahead);
        EW_PREFETCH_W(m + i + ahead);
        EW_PREFETCH_W(v + i + ahead);
        __builtin_prefetch(g + i + ahead, 0, 3);
        for (size_t k = i; k < i + line; k += EPR) ADAM_VEC(k);
    }
    for (; i + EPR <= n; i += EPR) ADAM_VEC(i);
    for (; i < n; i++) {
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
        p[i] -= step * (m[i] / (SSQRT(v[i]) / bc2_sqrt + eps));
    }
}
#undef ADAM_VEC

/* sum (a - ca)(b - cb), four accumulators in blocks as sum does */
static double FN(cdot)(size_t n, const T *a, T ca, const T *b, T cb)
{
    double total = 0;
    size_t i = 0;
    V va = VSET1(ca), vb = VSET1(cb);
    while (i < n) {
        size_t end = n - i > EW_SUM_BLOCK ? i + EW_SUM_BLOCK : n;
        V s0 = VZERO(), s1 = VZERO(), s2 = VZERO(), s3 = VZERO();
        for (; i + 4 * EPR <= end; i += 4 * EPR) {
            s0 = VFMA(VSUB(VLOAD(a + i), va), VSUB(VLOAD(b + i), vb), s0);
            s1 = VFMA(VSUB(VLOAD(a + i + EPR), va), VSUB(VLOAD(b + i + EPR), vb), s1);
            s2 = VFMA(VSUB(VLOAD(a + i + 2 * EPR), va), VSUB(VLOAD(b + i + 2 * EPR), vb), s2);
            s3 = VFMA(VSUB(VLOAD(a + i + 3 * EPR), va), VSUB(VLOAD(b + i + 3 * EPR), vb), s3);
        }
        for (; i + EPR <= end; i += EPR) s0 = VFMA(VSUB(VLOAD(a + i), va), VSUB(VLOAD(b + i), vb), s0);
        T lanes[EPR], part = 0;
        VSTORE(lanes, VADD(VADD(s0, s1), VADD(s2, s3)));
        for (int l = 0; l < EPR; l++) part += lanes[l];
        for (; i < end; i++) part += (a[i] - ca) * (b[i] - cb);
        total += part;
    }
    return total;
}

static void FN(affine)(size_t n, const T *x, T s, T c, T *y, int relu)
{
    size_t i = 0;
    V vs = VSET1(s), vc = VSET1(c), z = VZERO();
    if (relu) {
        for (; i + EPR <= n; i += EPR) VSTORE(y + i, VMAX(VFMA(vs, VLOAD(x + i), vc), z));
        for (; i < n; i++) { T v = s * x[i] + c; y[i] = v > 0 ? v : 0; }
        return;
    }
    for (; i + EPR <= n; i += EPR) VSTORE(y + i, VFMA(vs, VLOAD(x + i), vc));
    for (; i < n; i++) y[i] = s * x[i] + c;
}

static void FN(affine2)(size_t n, T s, const T *g, T t, const T *x, T c, T *out, int acc)
{
    size_t i = 0;
    V vs = VSET1(s), vt = VSET1(t), vc = VSET1(c);
    if (acc) {
        for (; i + EPR <= n; i += EPR)
            VSTORE(out + i, VADD(VLOAD(out + i), VFMA(vs, VLOAD(g + i), VFMA(vt, VLOAD(x + i), vc))));
        for (; i < n; i++) out[i] += s * g[i] + t * x[i] + c;
        return;
    }
    for (; i + EPR <= n; i += EPR) VSTORE(out + i, VFMA(vs, VLOAD(g + i), VFMA(vt, VLOAD(x + i), vc)));
    for (; i < n; i++) out[i] = s * g[i] + t * x[i] + c;
}

#ifdef VPOW2K
/* e^x for x <= 0: x = k ln 2 + r, |r| <= ln 2 / 2 (k by rounding x log2 e, r by a
 * two-part ln 2 whose high part times k is exact), e^r by its Taylor series to r^13
 * (the next term is below 5e-18 relative), times 2^k. */
EW_INLINE V FN(v_expneg)(V x)
{
    const V magic = VSET1(0x1.8p52);
    x = VMAX(VSET1(-708.0), x); /* NaN stays: VMAX gives its second operand then */
    V t = VFMA(x, VSET1(1.4426950408889634), magic), k = VSUB(t, magic);
    V r = VFMA(k, VSET1(-6.93147180369123816490e-01), x);
    r = VFMA(k, VSET1(-1.90821492927058770002e-10), r);
    V p = VSET1(1.0 / 6227020800.0);
    static const double coef[] = {1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0, 1.0 / 362880.0,
                                  1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0,
                                  1.0 / 6.0, 0.5, 1.0, 1.0};
    for (int i = 0; i < 13; i++) p = VFMA(p, r, VSET1(coef[i]));
    return VMUL(p, VPOW2K(t));
}

static void FN(expneg)(size_t n, const T *x, T *y)
{
    size_t i = 0;
    for (; i + EPR <= n; i += EPR) VSTORE(y + i, FN(v_expneg)(VLOAD(x + i)));
    if (i == n) return;
    T pad[EPR] = {0}; /* the tail through the same vector code */
    for (size_t j = 0; i + j < n; j++) pad[j] = x[i + j];
    VSTORE(pad, FN(v_expneg)(VLOAD(pad)));
    for (size_t j = 0; i + j < n; j++) y[i + j] = pad[j];
}
#endif

#undef FN
#undef EW_IS_ALIGNED
#undef EW_STREAMS
