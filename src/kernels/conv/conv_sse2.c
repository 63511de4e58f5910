/* conv_sse2: the direct convolution kernels for the x86-64 baseline (SSE2, no FMA, no
 * masked moves: partial vectors are put together from 64- and 32-bit moves; 0 lanes
 * read nothing). */
#include "kernels/conv.h"

#include <emmintrin.h>

/* Two floats move as one 64-bit __m64 (may alias anything). */
static inline __m128 load_part_f32(const float *p, size_t n)
{
    __m128 lo = n >= 2 ? _mm_loadl_pi(_mm_setzero_ps(), (const __m64 *)(const void *)p) : _mm_setzero_ps();
    switch (n) {
    case 4: return _mm_loadu_ps(p);
    case 3: return _mm_movelh_ps(lo, _mm_load_ss(p + 2));
    case 1: return _mm_load_ss(p);
    }
    return lo;
}
static inline void store_part_f32(float *p, __m128 v, size_t n)
{
    if (n == 4) {
        _mm_storeu_ps(p, v);
        return;
    }
    if (n >= 2) _mm_storel_pi((__m64 *)(void *)p, v);
    if (n == 1) _mm_store_ss(p, v);
    if (n == 3) _mm_store_ss(p + 2, _mm_movehl_ps(v, v));
}
static inline __m128d load_part_f64(const double *p, size_t n)
{
    return n == 2 ? _mm_loadu_pd(p) : n == 1 ? _mm_load_sd(p) : _mm_setzero_pd();
}
static inline void store_part_f64(double *p, __m128d v, size_t n)
{
    if (n == 2) _mm_storeu_pd(p, v);
    else _mm_store_sd(p, v);
}

#define SIMD_F64 0
#include "kernels/simd/sse2.h"
#define VLOAD_PART load_part_f32
#define VSTORE_PART store_part_f32
#define CONV_FWD_ACC 8
#define CONV_WG_OB 2
#define CONV_WG_TB 4
#define CONV_IG_ACC 8
#define VDEINT2(a, b, ev, od) do { __m128 a_ = (a), b_ = (b);                                    \
    ev = _mm_shuffle_ps(a_, b_, 0x88), od = _mm_shuffle_ps(a_, b_, 0xDD); } while (0)
#define VINT2(ev, od, a, b) do { __m128 e_ = (ev), o_ = (od);                                    \
    a = _mm_unpacklo_ps(e_, o_), b = _mm_unpackhi_ps(e_, o_); } while (0)
#define VFOLD_ADD(p, v) _mm_storeu_ps(p, _mm_add_ps(_mm_loadu_ps(p), v))
#include "conv_template.h"

#define SIMD_F64 1
#include "kernels/simd/sse2.h"
#define VLOAD_PART load_part_f64
#define VSTORE_PART store_part_f64
#define CONV_FWD_ACC 8
#define CONV_WG_OB 2
#define CONV_WG_TB 4
#define CONV_IG_ACC 8
#define VDEINT2(a, b, ev, od) do { __m128d a_ = (a), b_ = (b);                                   \
    ev = _mm_unpacklo_pd(a_, b_), od = _mm_unpackhi_pd(a_, b_); } while (0)
#define VINT2(ev, od, a, b) do { __m128d e_ = (ev), o_ = (od);                                   \
    a = _mm_unpacklo_pd(e_, o_), b = _mm_unpackhi_pd(e_, o_); } while (0)
#define VFOLD_ADD(p, v) _mm_storeu_pd(p, _mm_add_pd(_mm_loadu_pd(p), v))
#include "conv_template.h"

CONV_DEFINE_TABLE(sse2);
