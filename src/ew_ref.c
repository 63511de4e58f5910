/* ew_ref: plain scalar reference elementwise kernels (the oracle for the SIMD ones). */
#include "kernels.h"

#define DEF_BIN(T, sfx, name, expr) \
    static void name##_##sfx(size_t n, const T *a, const T *b, T *o) { for (size_t i = 0; i < n; i++) { T x = a[i], y = b[i]; o[i] = (expr); } }
#define DEF_ALL(T, sfx)                                                            \
    DEF_BIN(T, sfx, add, x + y) DEF_BIN(T, sfx, sub, x - y) DEF_BIN(T, sfx, mul, x * y) \
    DEF_BIN(T, sfx, div, x / y) DEF_BIN(T, sfx, max, x > y ? x : y)                 \
    static void sadd_##sfx(size_t n, const T *a, T s, T *o) { for (size_t i = 0; i < n; i++) o[i] = a[i] + s; } \
    static void smul_##sfx(size_t n, const T *a, T s, T *o) { for (size_t i = 0; i < n; i++) o[i] = a[i] * s; } \
    static double sum_##sfx(size_t n, const T *a) { double s = 0; for (size_t i = 0; i < n; i++) s += a[i]; return s; } \
    static void axpy_##sfx(size_t n, T al, const T *x, T *y) { for (size_t i = 0; i < n; i++) y[i] += al * x[i]; }

DEF_ALL(float, f32)
DEF_ALL(double, f64)

const struct EwKernels ew_kernels_ref = {
    {add_f32, sub_f32, mul_f32, div_f32, max_f32},
    {add_f64, sub_f64, mul_f64, div_f64, max_f64},
    {sadd_f32, smul_f32},
    {sadd_f64, smul_f64},
    sum_f32, sum_f64, axpy_f32, axpy_f64,
};
