/* conv_avx512: the direct convolution kernels for AVX-512F/DQ/BW/VL (32 zmm registers:
 * 16 accumulators per tile leave room for the loaded rows). */
#include "kernels.h"

#include <immintrin.h>
#include <stdint.h>

/* permutex2var indices: element i of (a, b) is a[i] below the lane count, else b */
static const int32_t even32[16] = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
static const int32_t odd32[16] = {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31};
static const int32_t lo32[16] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23};
static const int32_t hi32[16] = {8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
static const int64_t even64[8] = {0, 2, 4, 6, 8, 10, 12, 14}, odd64[8] = {1, 3, 5, 7, 9, 11, 13, 15};
static const int64_t lo64[8] = {0, 8, 1, 9, 2, 10, 3, 11}, hi64[8] = {4, 12, 5, 13, 6, 14, 7, 15};
#define IDX(t) _mm512_loadu_si512((const void *)(t))

#define SIMD_F64 0
#include "simd_avx512.h"
#define VLOAD_PART(p, n) _mm512_maskz_loadu_ps((__mmask16)((1u << (n)) - 1), p)
#define VSTORE_PART(p, v, n) _mm512_mask_storeu_ps(p, (__mmask16)((1u << (n)) - 1), v)
#define CONV_FWD_ACC 16
#define CONV_WG_OB 4
#define CONV_WG_TB 5
#define CONV_IG_ACC 16
#define VDEINT2(a, b, ev, od) do { __m512 a_ = (a), b_ = (b);                                   \
    ev = _mm512_permutex2var_ps(a_, IDX(even32), b_), od = _mm512_permutex2var_ps(a_, IDX(odd32), b_); } while (0)
#define VINT2(ev, od, a, b) do { __m512 e_ = (ev), o_ = (od);                                   \
    a = _mm512_permutex2var_ps(e_, IDX(lo32), o_), b = _mm512_permutex2var_ps(e_, IDX(hi32), o_); } while (0)
#define VFOLD_ADD(p, v) do { __m512 v_ = (v);                                                \
    __m256 h_ = _mm256_add_ps(_mm512_castps512_ps256(v_), _mm512_extractf32x8_ps(v_, 1));       \
    __m128 q_ = _mm_add_ps(_mm256_castps256_ps128(h_), _mm256_extractf128_ps(h_, 1));           \
    _mm_storeu_ps(p, _mm_add_ps(_mm_loadu_ps(p), q_)); } while (0)
/* 128-bit blocks: ab = (a0+a2, a1+a3, b0+b2, b1+b3), then the pairs of ab and cd: the
 * same sums in the same order as VFOLD_ADD */
#define VFOLD4_ADD(p, a, b, c, d) do { __m512 a_ = (a), b_ = (b), c_ = (c), d_ = (d);          \
    __m512 ab_ = _mm512_add_ps(_mm512_shuffle_f32x4(a_, b_, 0x44), _mm512_shuffle_f32x4(a_, b_, 0xEE)); \
    __m512 cd_ = _mm512_add_ps(_mm512_shuffle_f32x4(c_, d_, 0x44), _mm512_shuffle_f32x4(c_, d_, 0xEE)); \
    __m512 s_ = _mm512_add_ps(_mm512_shuffle_f32x4(ab_, cd_, 0x88), _mm512_shuffle_f32x4(ab_, cd_, 0xDD)); \
    _mm512_storeu_ps(p, _mm512_add_ps(_mm512_loadu_ps(p), s_)); } while (0)
#include "conv_template.h"

#define SIMD_F64 1
#include "simd_avx512.h"
#define VLOAD_PART(p, n) _mm512_maskz_loadu_pd((__mmask8)((1u << (n)) - 1), p)
#define VSTORE_PART(p, v, n) _mm512_mask_storeu_pd(p, (__mmask8)((1u << (n)) - 1), v)
#define CONV_FWD_ACC 16
#define CONV_WG_OB 4
#define CONV_WG_TB 5
#define CONV_IG_ACC 16
#define VDEINT2(a, b, ev, od) do { __m512d a_ = (a), b_ = (b);                                  \
    ev = _mm512_permutex2var_pd(a_, IDX(even64), b_), od = _mm512_permutex2var_pd(a_, IDX(odd64), b_); } while (0)
#define VINT2(ev, od, a, b) do { __m512d e_ = (ev), o_ = (od);                                  \
    a = _mm512_permutex2var_pd(e_, IDX(lo64), o_), b = _mm512_permutex2var_pd(e_, IDX(hi64), o_); } while (0)
#define VFOLD_ADD(p, v) do { __m512d v_ = (v);                                               \
    __m256d h_ = _mm256_add_pd(_mm512_castpd512_pd256(v_), _mm512_extractf64x4_pd(v_, 1));      \
    __m128d q_ = _mm_add_pd(_mm256_castpd256_pd128(h_), _mm256_extractf128_pd(h_, 1));          \
    _mm_storeu_pd(p, _mm_add_pd(_mm_loadu_pd(p), q_)); } while (0)
#define VFOLD4_ADD(p, a, b, c, d) do { __m512d a_ = (a), b_ = (b), c_ = (c), d_ = (d);         \
    __m512d ab_ = _mm512_add_pd(_mm512_shuffle_f64x2(a_, b_, 0x44), _mm512_shuffle_f64x2(a_, b_, 0xEE)); \
    __m512d cd_ = _mm512_add_pd(_mm512_shuffle_f64x2(c_, d_, 0x44), _mm512_shuffle_f64x2(c_, d_, 0xEE)); \
    __m512d s_ = _mm512_add_pd(_mm512_shuffle_f64x2(ab_, cd_, 0x88), _mm512_shuffle_f64x2(ab_, cd_, 0xDD)); \
    _mm512_storeu_pd(p, _mm512_add_pd(_mm512_loadu_pd(p), s_)); } while (0)
#include "conv_template.h"

CONV_DEFINE_TABLE(avx512);
