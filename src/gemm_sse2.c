/* gemm_sse2: baseline x86-64 micro-kernels (no FMA: multiply then add), 4 x 8 (f32) and
 * 4 x 4 (f64): 8 accumulators, 2 B vectors, a broadcast and a product in 16 xmm. */
#include "gemm_impl.h"

#include <emmintrin.h>

#define FMA_PS(a, b, c) _mm_add_ps(_mm_mul_ps(a, b), c)
#define FMA_PD(a, b, c) _mm_add_pd(_mm_mul_pd(a, b), c)
GEMM_UKR(ukr_f32, float, 4, 2, __m128, 4, _mm_, _ps, FMA_PS)
GEMM_UKR(ukr_f64, double, 4, 2, __m128d, 2, _mm_, _pd, FMA_PD)

const struct GemmKernels gemm_kernels_sse2 = {
    .f32 = {.mr = 4, .nr = 8, .kc = 256, .mc = 128, .nc = 4096},
    .f64 = {.mr = 4, .nr = 4, .kc = 256, .mc = 128, .nc = 2048},
    .ukr_f32 = ukr_f32,
    .ukr_f64 = ukr_f64,
};
