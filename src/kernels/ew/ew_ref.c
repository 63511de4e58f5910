/* ew_ref: plain scalar reference elementwise kernels (the oracle for the SIMD ones,
 * and the ISA_REF path). Deliberately naive: one loop per kernel, no unrolling. */
#include "kernels/ew.h"

#include <math.h>

#define DEF_BIN(T, sfx, name, expr) \
    static void name##_##sfx(size_t n, const T *a, const T *b, T *o) { for (size_t i = 0; i < n; i++) { T x = a[i], y = b[i]; o[i] = (expr); } }

#define DEF_ALL(T, sfx, SQRT)                                                      \
    DEF_BIN(T, sfx, add, x + y) DEF_BIN(T, sfx, sub, x - y) DEF_BIN(T, sfx, mul, x * y) \
    DEF_BIN(T, sfx, div, x / y) DEF_BIN(T, sfx, max, x > y ? x : y)                 \
    static void sadd_##sfx(size_t n, const T *a, T s, T *o) { for (size_t i = 0; i < n; i++) o[i] = a[i] + s; } \
    static void smul_##sfx(size_t n, const T *a, T s, T *o) { for (size_t i = 0; i < n; i++) o[i] = a[i] * s; } \
    static double sum_##sfx(size_t n, const T *a) { double s = 0; for (size_t i = 0; i < n; i++) s += a[i]; return s; } \
    static void axpy_##sfx(size_t n, T al, const T *x, T *y) { for (size_t i = 0; i < n; i++) y[i] += al * x[i]; } \
    static void relu_##sfx(size_t n, const T *x, T *o) { for (size_t i = 0; i < n; i++) o[i] = x[i] > 0 ? x[i] : 0; } \
    static void relu_bwd_##sfx(size_t n, const T *x, const T *g, T *gx) \
    {                                                                              \
        for (size_t i = 0; i < n; i++)                                             \
            if (x[i] > 0) gx[i] += g[i];                                           \
    }                                                                              \
    static void relu_bwd_set_##sfx(size_t n, const T *x, const T *g, T *gx) \
    {                                                                              \
        for (size_t i = 0; i < n; i++) gx[i] = x[i] > 0 ? g[i] : 0;                \
    }                                                                              \
    static void adam_##sfx(size_t n, T *p, const T *g, T *m, T *v, T b1, T b2, T step, T bc2_sqrt, T eps) \
    {                                                                              \
        for (size_t i = 0; i < n; i++) {                                           \
            m[i] = b1 * m[i] + (1 - b1) * g[i];                                    \
            v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];                             \
            p[i] -= step * (m[i] / (SQRT(v[i]) / bc2_sqrt + eps));                 \
        }                                                                          \
    }                                                                              \
    static double cdot_##sfx(size_t n, const T *a, T ca, const T *b, T cb)        \
    {                                                                              \
        double s = 0;                                                              \
        for (size_t i = 0; i < n; i++) s += (a[i] - ca) * (b[i] - cb);            \
        return s;                                                                  \
    }                                                                              \
    static void affine_##sfx(size_t n, const T *x, T s, T c, T *y, int relu)      \
    {                                                                              \
        for (size_t i = 0; i < n; i++) {                                           \
            T v = s * x[i] + c;                                                    \
            y[i] = relu && !(v > 0) ? 0 : v;                                       \
        }                                                                          \
    }                                                                              \
    static void affine2_##sfx(size_t n, T s, const T *g, T t, const T *x, T c, T *out, int acc) \
    {                                                                              \
        for (size_t i = 0; i < n; i++) out[i] = (acc ? out[i] : 0) + (s * g[i] + t * x[i] + c); \
    }

DEF_ALL(float, f32, sqrtf)
DEF_ALL(double, f64, sqrt)

static void expneg_f64(size_t n, const double *x, double *y)
{
    for (size_t i = 0; i < n; i++) y[i] = exp(x[i] > -708 || x[i] != x[i] ? x[i] : -708);
}

const struct EwKernels ew_kernels_ref = EW_TABLE;
