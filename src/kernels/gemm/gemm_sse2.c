/* gemm_sse2: baseline x86-64 micro-kernels (no FMA: multiply then add), 4 x 8 (f32) and
 * 4 x 4 (f64): 8 accumulators, 2 B vectors, a broadcast and a product in 16 xmm. SSE2
 * has no masked moves: edge columns go through a small array. */
#include "gemm_ukr.h"

#include <emmintrin.h>
#include <string.h>

/* The tiles, each size written once: the kernel lists and the table below use these.
 * The primary tile has MR rows and a kernel per row count below it (GEMM_ROWS_3); no
 * row-major-A kernels. */
#define MR_ROWS 3
enum { MR = MR_ROWS + 1, ALT_MR = 2, DOT_MR = 2, DOT_NR = 2 };
enum { W_F32 = 4, W_F64 = 2 }; /* lanes */
/* Blockings mr, nr, kc, mc, nc. */
#define TILE_f32 MR, GEMM_NV * W_F32, 256, 128, 4096
#define TILE_f64 MR, GEMM_NV * W_F64, 256, 128, 2048
#define ALT_f32 ALT_MR, GEMM_ALT_NV * W_F32, 256, 128, 4092
#define ALT_f64 ALT_MR, GEMM_ALT_NV * W_F64, 256, 128, 2046
GEMM_ASSERT_BLOCKINGS();

#define PARTIAL(T, V, S)                                                                     \
    static inline V mload_##S(size_t r, const T *p)                                          \
    {                                                                                        \
        T t[sizeof(V) / sizeof(T)] = {0};                                                    \
        memcpy(t, p, r * sizeof(T));                                                         \
        return _mm_loadu_##S(t);                                                             \
    }                                                                                        \
    static inline void mstore_##S(T *p, size_t r, V v)                                       \
    {                                                                                        \
        T t[sizeof(V) / sizeof(T)];                                                          \
        _mm_storeu_##S(t, v);                                                                \
        memcpy(p, t, r * sizeof(T));                                                         \
    }
PARTIAL(float, __m128, ps)
PARTIAL(double, __m128d, pd)

static inline float hsum_ps(__m128 v)
{
    __m128 s = _mm_add_ps(v, _mm_movehl_ps(v, v));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)));
}

static inline double hsum_pd(__m128d v) { return _mm_cvtsd_f64(_mm_add_sd(v, _mm_unpackhi_pd(v, v))); }

/* Both dtypes' kernels from one list, instantiated under each dtype's MASK_*, MLOAD,
 * MSTORE, HSUM* and DOT_ROWS below. */
#define KERNELS(T, sfx, V, W, S, FMA)                                                        \
    GEMM_UKR(ukr_##sfx, T, MR, GEMM_NV, V, W, _mm_, S, FMA)                                  \
    GEMM_ROWS(MR_ROWS)(GEMM_UKR, ukr_##sfx, T, GEMM_NV, V, W, _mm_, S, FMA)                  \
    GEMM_UKR(alt_ukr_##sfx, T, ALT_MR, GEMM_ALT_NV, V, W, _mm_, S, FMA)                      \
    GEMM_DOT(dot_##sfx, T, DOT_MR, DOT_NR, V, W, _mm_, S, FMA)                               \
    GEMM_PACK_N(pack_n_##sfx, T, V, W, _mm_, S)

#define DOT_ROWS(rows, s) 0
#define MASK_T size_t
#define MASK_N(r) (r)
#define MLOAD(m, p) mload_ps(m, p)
#define MSTORE(p, m, v) mstore_ps(p, m, v)
#define FMA_PS(a, b, c) _mm_add_ps(_mm_mul_ps(a, b), c)
#define HSUM(v) hsum_ps(v)
#define HSUM_W(o, v) GEMM_HSUM_EACH(o, v, 4)
#define HSUM_4(o, v) GEMM_HSUM_EACH(o, v, 4)
KERNELS(float, f32, __m128, W_F32, _ps, FMA_PS)
#undef HSUM
#undef HSUM_W
#undef HSUM_4
#undef MLOAD
#undef MSTORE

#define MLOAD(m, p) mload_pd(m, p)
#define MSTORE(p, m, v) mstore_pd(p, m, v)
#define FMA_PD(a, b, c) _mm_add_pd(_mm_mul_pd(a, b), c)
#define HSUM(v) hsum_pd(v)
#define HSUM_W(o, v) GEMM_HSUM_EACH(o, v, 2)
#define HSUM_4(o, v) GEMM_HSUM_EACH(o, v, 4)
KERNELS(double, f64, __m128d, W_F64, _pd, FMA_PD)

const struct GemmKernels gemm_kernels_sse2 = {GEMM_TABLE(f32), GEMM_TABLE(f64)};
