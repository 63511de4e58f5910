/* gemm_avx2: AVX2+FMA micro-kernels, 6 x 16 (f32) and 6 x 8 (f64): 12 accumulators,
 * 2 B vectors and a broadcast of A in the 16 ymm registers. Edge columns use
 * vmaskmov with a lane mask. */
#include "gemm_ukr.h"

#include <immintrin.h>

/* The tiles, each size written once: the kernel lists and the table below use these.
 * The primary tile has MR rows and a kernel per row count below it (GEMM_ROWS_5). */
#define MR_ROWS 5
enum { MR = MR_ROWS + 1, ALT_MR = 4, DOT_MR = 4, DOT_NR = 2 };
enum { W_F32 = 8, W_F64 = 4 }; /* lanes */
/* Blockings mr, nr, kc, mc, nc. */
#define TILE_f32 MR, GEMM_NV * W_F32, 256, 144, 4096
#define TILE_f64 MR, GEMM_NV * W_F64, 256, 96, 2048
#define ALT_f32 ALT_MR, GEMM_ALT_NV * W_F32, 256, 144, 4080
#define ALT_f64 ALT_MR, GEMM_ALT_NV * W_F64, 256, 96, 2040
GEMM_ASSERT_BLOCKINGS();

static inline float hsum_ps(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

static inline double hsum_pd(__m256d v)
{
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

/* The in-register W x W transposes of the transposing pack (GEMM_PACK_T). */
static inline void transpose8_ps(__m256 r[8])
{
    __m256 a[8], b[8];
    GEMM_UNROLL for (int j = 0; j < 4; j++) {
        a[2 * j] = _mm256_unpacklo_ps(r[2 * j], r[2 * j + 1]);
        a[2 * j + 1] = _mm256_unpackhi_ps(r[2 * j], r[2 * j + 1]);
    }
    /* b[4j + c], 128-bit half L: rows 4j..4j+3 at column 4L + c. */
    GEMM_UNROLL for (int j = 0; j < 2; j++) {
        __m256d lo = _mm256_castps_pd(a[4 * j]), hi = _mm256_castps_pd(a[4 * j + 1]);
        __m256d lo2 = _mm256_castps_pd(a[4 * j + 2]), hi2 = _mm256_castps_pd(a[4 * j + 3]);
        b[4 * j] = _mm256_castpd_ps(_mm256_unpacklo_pd(lo, lo2));
        b[4 * j + 1] = _mm256_castpd_ps(_mm256_unpackhi_pd(lo, lo2));
        b[4 * j + 2] = _mm256_castpd_ps(_mm256_unpacklo_pd(hi, hi2));
        b[4 * j + 3] = _mm256_castpd_ps(_mm256_unpackhi_pd(hi, hi2));
    }
    GEMM_UNROLL for (int c = 0; c < 4; c++) {
        r[c] = _mm256_permute2f128_ps(b[c], b[4 + c], 0x20);
        r[4 + c] = _mm256_permute2f128_ps(b[c], b[4 + c], 0x31);
    }
}

static inline void transpose4_pd(__m256d r[4])
{
    __m256d a0 = _mm256_unpacklo_pd(r[0], r[1]), a1 = _mm256_unpackhi_pd(r[0], r[1]);
    __m256d a2 = _mm256_unpacklo_pd(r[2], r[3]), a3 = _mm256_unpackhi_pd(r[2], r[3]);
    r[0] = _mm256_permute2f128_pd(a0, a2, 0x20);
    r[1] = _mm256_permute2f128_pd(a1, a3, 0x20);
    r[2] = _mm256_permute2f128_pd(a0, a2, 0x31);
    r[3] = _mm256_permute2f128_pd(a1, a3, 0x31);
}

/* Both dtypes' kernels from one list, instantiated under each dtype's MASK_*, MLOAD,
 * MSTORE, HSUM* and DOT_ROWS below. */
#define KERNELS(T, sfx, V, W, S, FMA, TR)                                                    \
    GEMM_KERNEL_SET(T, sfx, V, W, _mm256_, S, FMA, TR, MR, MR_ROWS, ALT_MR, DOT_MR, DOT_NR)

#define DOT_ROWS(rows, s) 0
#define MASK_T __m256i
#define MASK_N(r) _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(r)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define MLOAD(m, p) _mm256_maskload_ps(p, m)
#define MSTORE(p, m, v) _mm256_maskstore_ps(p, m, v)
#define FMA_PS(a, b, c) _mm256_fmadd_ps(a, b, c)
#define HSUM(v) hsum_ps(v)
#define HSUM_W(o, v) GEMM_HSUM_EACH(o, v, W_F32)
#define HSUM_4(o, v) GEMM_HSUM_EACH(o, v, 4)
KERNELS(float, f32, __m256, W_F32, _ps, FMA_PS, transpose8_ps)
#undef HSUM
#undef HSUM_W
#undef HSUM_4
#undef MASK_N
#undef MLOAD
#undef MSTORE

#define MASK_N(r) _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)(r)), _mm256_setr_epi64x(0, 1, 2, 3))
#define MLOAD(m, p) _mm256_maskload_pd(p, m)
#define MSTORE(p, m, v) _mm256_maskstore_pd(p, m, v)
#define FMA_PD(a, b, c) _mm256_fmadd_pd(a, b, c)
#define HSUM(v) hsum_pd(v)
#define HSUM_W(o, v) GEMM_HSUM_EACH(o, v, 4)
#define HSUM_4(o, v) GEMM_HSUM_EACH(o, v, 4)
KERNELS(double, f64, __m256d, W_F64, _pd, FMA_PD, transpose4_pd)

const struct GemmKernels gemm_kernels_avx2 = {GEMM_TABLE_SET(f32), GEMM_TABLE_SET(f64)};
