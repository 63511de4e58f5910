/* conv_avx2: the direct convolution kernels for AVX2 + FMA (16 ymm registers: 8
 * accumulators per tile). Partial rows use maskload / maskstore with a mask read from
 * a sliding window over a constant table. */
#include "kernels/conv.h"

#include <immintrin.h>
#include <stdint.h>

static const int32_t mask32[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
static const int64_t mask64[8] = {-1, -1, -1, -1, 0, 0, 0, 0};

static inline __m256i first_lanes32(size_t n) { return _mm256_loadu_si256((const __m256i *)(mask32 + 8 - n)); }
static inline __m256i first_lanes64(size_t n) { return _mm256_loadu_si256((const __m256i *)(mask64 + 4 - n)); }

#define SIMD_F64 0
#include "kernels/simd/avx2.h"
#define VLOAD_PART(p, n) _mm256_maskload_ps(p, first_lanes32(n))
#define VSTORE_PART(p, v, n) _mm256_maskstore_ps(p, first_lanes32(n), v)
#define CONV_FWD_ACC 8
#define CONV_WG_OB 2
#define CONV_WG_TB 4
#define CONV_IG_ACC 8
/* shuffle_ps picks even (odd) elements within 128-bit halves; permute4x64 joins them */
#define VDEINT2(a, b, ev, od) do { __m256 a_ = (a), b_ = (b);                                    \
    ev = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a_, b_, 0x88)), 0xD8)); \
    od = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a_, b_, 0xDD)), 0xD8)); } while (0)
#define VINT2(ev, od, a, b) do { __m256 e_ = (ev), o_ = (od);                                    \
    __m256 l_ = _mm256_unpacklo_ps(e_, o_), h_ = _mm256_unpackhi_ps(e_, o_);                   \
    a = _mm256_permute2f128_ps(l_, h_, 0x20), b = _mm256_permute2f128_ps(l_, h_, 0x31); } while (0)
#define VFOLD_ADD(p, v) do { __m256 v_ = (v);                                                \
    __m128 q_ = _mm_add_ps(_mm256_castps256_ps128(v_), _mm256_extractf128_ps(v_, 1));           \
    _mm_storeu_ps(p, _mm_add_ps(_mm_loadu_ps(p), q_)); } while (0)
#include "conv_template.h"

#define SIMD_F64 1
#include "kernels/simd/avx2.h"
#define VLOAD_PART(p, n) _mm256_maskload_pd(p, first_lanes64(n))
#define VSTORE_PART(p, v, n) _mm256_maskstore_pd(p, first_lanes64(n), v)
#define CONV_FWD_ACC 8
#define CONV_WG_OB 2
#define CONV_WG_TB 4
#define CONV_IG_ACC 8
#define VDEINT2(a, b, ev, od) do { __m256d a_ = (a), b_ = (b);                                   \
    ev = _mm256_permute4x64_pd(_mm256_unpacklo_pd(a_, b_), 0xD8);                              \
    od = _mm256_permute4x64_pd(_mm256_unpackhi_pd(a_, b_), 0xD8); } while (0)
#define VINT2(ev, od, a, b) do { __m256d e_ = (ev), o_ = (od);                                   \
    __m256d l_ = _mm256_unpacklo_pd(e_, o_), h_ = _mm256_unpackhi_pd(e_, o_);                  \
    a = _mm256_permute2f128_pd(l_, h_, 0x20), b = _mm256_permute2f128_pd(l_, h_, 0x31); } while (0)
#define VFOLD_ADD(p, v) do { __m256d v_ = (v);                                               \
    __m128d q_ = _mm_add_pd(_mm256_castpd256_pd128(v_), _mm256_extractf128_pd(v_, 1));          \
    _mm_storeu_pd(p, _mm_add_pd(_mm_loadu_pd(p), q_)); } while (0)
#include "conv_template.h"

CONV_DEFINE_TABLE(avx2);
