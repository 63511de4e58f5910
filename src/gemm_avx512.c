/* gemm_avx512: AVX-512 micro-kernels, 14 x 32 (f32) and 14 x 16 (f64): 28 accumulators,
 * 2 B vectors and embedded broadcasts of A fit the 32 zmm registers. */
#include "gemm_impl.h"

#include <immintrin.h>

#define FMA_PS(a, b, c) _mm512_fmadd_ps(a, b, c)
#define FMA_PD(a, b, c) _mm512_fmadd_pd(a, b, c)
GEMM_UKR(ukr_f32, float, 14, 2, __m512, 16, _mm512_, _ps, FMA_PS)
GEMM_UKR(ukr_f64, double, 14, 2, __m512d, 8, _mm512_, _pd, FMA_PD)

const struct GemmKernels gemm_kernels_avx512 = {
    .f32 = {.mr = 14, .nr = 32, .kc = 256, .mc = 168, .nc = 4096},
    .f64 = {.mr = 14, .nr = 16, .kc = 256, .mc = 112, .nc = 2048},
    .ukr_f32 = ukr_f32,
    .ukr_f64 = ukr_f64,
};
