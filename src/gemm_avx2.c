/* gemm_avx2: AVX2+FMA micro-kernels, 6 x 16 (f32) and 6 x 8 (f64): 12 accumulators,
 * 2 B vectors and a broadcast of A in the 16 ymm registers. Edge columns use
 * vmaskmov with a lane mask. */
#include "gemm_impl.h"

#include <immintrin.h>

#define MASK_T __m256i
#define MASK_N(r) _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(r)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define MLOAD(m, p) _mm256_maskload_ps(p, m)
#define MSTORE(p, m, v) _mm256_maskstore_ps(p, m, v)
#define FMA_PS(a, b, c) _mm256_fmadd_ps(a, b, c)
GEMM_UKR(ukr_f32, float, 6, 2, __m256, 8, _mm256_, _ps, FMA_PS)
#undef MASK_N
#undef MLOAD
#undef MSTORE

#define MASK_N(r) _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)(r)), _mm256_setr_epi64x(0, 1, 2, 3))
#define MLOAD(m, p) _mm256_maskload_pd(p, m)
#define MSTORE(p, m, v) _mm256_maskstore_pd(p, m, v)
#define FMA_PD(a, b, c) _mm256_fmadd_pd(a, b, c)
GEMM_UKR(ukr_f64, double, 6, 2, __m256d, 4, _mm256_, _pd, FMA_PD)

const struct GemmKernels gemm_kernels_avx2 = {
    .f32 = {.mr = 6, .nr = 16, .kc = 256, .mc = 144, .nc = 4096},
    .f64 = {.mr = 6, .nr = 8, .kc = 256, .mc = 96, .nc = 2048},
    .ukr_f32 = ukr_f32,
    .ukr_f64 = ukr_f64,
};
