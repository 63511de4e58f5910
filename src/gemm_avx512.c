/* gemm_avx512: AVX-512 micro-kernels, 14 x 32 (f32) and 14 x 16 (f64): 28 accumulators,
 * 2 B vectors and a broadcast of A fit the 32 zmm registers. Edge columns use masks. */
#include "gemm_impl.h"

#include <immintrin.h>

#define MASK_T __mmask16
#define MASK_N(r) ((__mmask16)((1u << (r)) - 1))
#define MLOAD(m, p) _mm512_maskz_loadu_ps(m, p)
#define MSTORE(p, m, v) _mm512_mask_storeu_ps(p, m, v)
#define FMA_PS(a, b, c) _mm512_fmadd_ps(a, b, c)
#define HSUM(v) _mm512_reduce_add_ps(v)
GEMM_UKR(ukr_f32, float, 14, 2, __m512, 16, _mm512_, _ps, FMA_PS)
GEMM_ROWS_13(ukr_f32, float, 2, __m512, 16, _mm512_, _ps, FMA_PS)
GEMM_UKR(alt_ukr_f32, float, 8, 3, __m512, 16, _mm512_, _ps, FMA_PS)
GEMM_DOT(dot_f32, float, 4, 5, __m512, 16, _mm512_, _ps, FMA_PS)
#undef HSUM
#undef MASK_T
#undef MASK_N
#undef MLOAD
#undef MSTORE

#define MASK_T __mmask8
#define MASK_N(r) ((__mmask8)((1u << (r)) - 1))
#define MLOAD(m, p) _mm512_maskz_loadu_pd(m, p)
#define MSTORE(p, m, v) _mm512_mask_storeu_pd(p, m, v)
#define FMA_PD(a, b, c) _mm512_fmadd_pd(a, b, c)
#define HSUM(v) _mm512_reduce_add_pd(v)
GEMM_UKR(ukr_f64, double, 14, 2, __m512d, 8, _mm512_, _pd, FMA_PD)
GEMM_ROWS_13(ukr_f64, double, 2, __m512d, 8, _mm512_, _pd, FMA_PD)
GEMM_UKR(alt_ukr_f64, double, 8, 3, __m512d, 8, _mm512_, _pd, FMA_PD)
GEMM_DOT(dot_f64, double, 4, 5, __m512d, 8, _mm512_, _pd, FMA_PD)

const struct GemmKernels gemm_kernels_avx512 = {
    .f32 = {.mr = 14, .nr = 32, .kc = 384, .mc = 168, .nc = 2048},
    .f64 = {.mr = 14, .nr = 16, .kc = 256, .mc = 112, .nc = 2048},
    .ukr_f32 = ukr_f32,
    .rows_f32 = GEMM_ROWS_TABLE_13(ukr_f32),
    .ukr_f64 = ukr_f64,
    .rows_f64 = GEMM_ROWS_TABLE_13(ukr_f64),
    .alt_f32 = {.mr = 8, .nr = 48, .kc = 384, .mc = 168, .nc = 2016},
    .alt_f64 = {.mr = 8, .nr = 24, .kc = 256, .mc = 112, .nc = 2040},
    .alt_ukr_f32 = alt_ukr_f32,
    .alt_ukr_f64 = alt_ukr_f64,
    .dotsz_f32 = {.mr = 4, .nr = 5, .w = 16},
    .dotsz_f64 = {.mr = 4, .nr = 5, .w = 8},
    .dot_f32 = dot_f32,
    .dot_f64 = dot_f64,
};
