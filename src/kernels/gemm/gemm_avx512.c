/* gemm_avx512: AVX-512 micro-kernels, 14 x 32 (f32) and 14 x 16 (f64): 28 accumulators,
 * 2 B vectors and a broadcast of A fit the 32 zmm registers. Edge columns use masks. */
#include "gemm_ukr.h"

#include <immintrin.h>
#include <stdint.h>

/* The tiles, each size written once: the kernel lists and the table below use these.
 * The primary tile has MR rows and a kernel per row count below it (GEMM_ROWS_13); the
 * packed dot kernel takes DOTPK_MR rows of A and 1..DOTPK_PAIRS pairs of B's rows. */
#define MR_ROWS 13
enum { MR = MR_ROWS + 1, ALT_MR = 8, DOT_MR = 4, DOT_NR = 5, DOTPK_MR = 4, DOTPK_PAIRS = 5 };
enum { W_F32 = 16, W_F64 = 8 }; /* lanes */
/* Blockings mr, nr, kc, mc, nc. f64 kc 384 (nc cut to keep kc x nc in the B buffer):
 * 1024^3 109 -> 113 GFLOP/s best-of. */
#define TILE_f32 MR, GEMM_NV * W_F32, 384, 168, 2048
#define TILE_f64 MR, GEMM_NV * W_F64, 384, 112, 1344
#define ALT_f32 ALT_MR, GEMM_ALT_NV * W_F32, 384, 168, 2016
#define ALT_f64 ALT_MR, GEMM_ALT_NV * W_F64, 256, 112, 2040
GEMM_ASSERT_BLOCKINGS();
_Static_assert(DOTPK_PAIRS <= GEMM_MAX_DOT_PAIRS, "dot_packed_* holds DOTPK_PAIRS + 1 kernels");

/* Reduction trees. Each level adds two shuffles of a pair of vectors into one,
 * halving the partial sums per vector.
 *
 * dot_tree_*: W/2 vectors, each holding two sums as W/2 partials (half 0 in lanes
 * [0, W/2), half 1 above), into one vector of W sums: lane (W/4)*b + q holds the sum of
 * v[2q + b/2], half b % 2, for b < 4, q < W/4. */
static inline __m512 pair_quarters_ps(__m512 a, __m512 b) /* 128-bit blocks 0+1, 2+3 */
{
    return _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x88), _mm512_shuffle_f32x4(a, b, 0xDD));
}

static inline __m512 dot_tree_ps(const __m512 *v) /* 8 vectors */
{
    __m512 w[4];
    GEMM_UNROLL for (int q = 0; q < 4; q++) w[q] = pair_quarters_ps(v[2 * q], v[2 * q + 1]);
    /* w[q], 128-bit block b: 4 partials of v[2q + b/2], half b % 2. */
    __m512 z0 = _mm512_add_ps(_mm512_unpacklo_ps(w[0], w[1]), _mm512_unpackhi_ps(w[0], w[1]));
    __m512 z1 = _mm512_add_ps(_mm512_unpacklo_ps(w[2], w[3]), _mm512_unpackhi_ps(w[2], w[3]));
    return _mm512_add_ps(_mm512_shuffle_ps(z0, z1, 0x44), _mm512_shuffle_ps(z0, z1, 0xEE));
}

static inline __m512d dot_tree_pd(const __m512d *v) /* 4 vectors */
{
    __m512d w0 = _mm512_add_pd(_mm512_shuffle_f64x2(v[0], v[1], 0x88), _mm512_shuffle_f64x2(v[0], v[1], 0xDD));
    __m512d w1 = _mm512_add_pd(_mm512_shuffle_f64x2(v[2], v[3], 0x88), _mm512_shuffle_f64x2(v[2], v[3], 0xDD));
    return _mm512_add_pd(_mm512_unpacklo_pd(w0, w1), _mm512_unpackhi_pd(w0, w1));
}

/* The sums of 16 (f32) or 8 (f64) vectors as one vector, for GEMM_DOT: one level that
 * pairs the halves of two vectors, then dot_tree_*; 16 sums cost 46 instructions
 * instead of 16 separate reductions of 8. */
static inline __m512 pair_halves_ps(__m512 a, __m512 b) /* [a.lo + a.hi, b.lo + b.hi] */
{
    return _mm512_add_ps(_mm512_mask_blend_ps(0xFF00, a, b), _mm512_shuffle_f32x4(a, b, 0x4E));
}

/* Lane 4k + q of the result holds the sum of v[4q + k]. */
static inline __m512 hsum16_tree_ps(const __m512 *v)
{
    __m512 u[8];
    GEMM_UNROLL for (int q = 0; q < 8; q++) u[q] = pair_halves_ps(v[2 * q], v[2 * q + 1]);
    return dot_tree_ps(u);
}

static inline void hsum16_ps(float *out, const __m512 *v)
{
    const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    _mm512_storeu_ps(out, _mm512_permutexvar_ps(idx, hsum16_tree_ps(v)));
}

/* Lane 4q holds the sum of v[q]: the first two levels of the tree, then within 128-bit
 * blocks. */
static inline __m512 hsum4_tree_ps(const __m512 *v)
{
    __m512 w = pair_quarters_ps(pair_halves_ps(v[0], v[1]), pair_halves_ps(v[2], v[3]));
    w = _mm512_add_ps(w, _mm512_permute_ps(w, 0x4E));
    return _mm512_add_ps(w, _mm512_permute_ps(w, 0xB1));
}

static inline void hsum4_ps(float *out, const __m512 *v)
{
    const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    /* A plain 4-lane store: the sums are read back at once, and a masked store would
     * not forward to those loads. */
    _mm_storeu_ps(out, _mm512_castps512_ps128(_mm512_permutexvar_ps(idx, hsum4_tree_ps(v))));
}

/* DOT_ROWS of the 4 x 5 f32 dot tile: sum j of row i, flat index f = 5i + j, is lane
 * 4(f % 4) + f / 4 of the 16-vector tree for f < 16, else lane 4(f - 16) of the 4-vector
 * one: a two-source permute per row, no round trip through memory (a load that spans
 * two stores, or any masked load, waits for them to retire). */
_Static_assert(DOT_MR == 4 && DOT_NR == 5, "dot_rows_4x5_ps reduces a 4 x 5 dot tile only");
static inline int dot_rows_4x5_ps(__m512 *rows, const __m512 *s)
{
    __m512 lo = hsum16_tree_ps(s), hi = hsum4_tree_ps(s + 16);
    GEMM_UNROLL for (int i = 0; i < 4; i++) {
        int f[16];
        GEMM_UNROLL for (int j = 0; j < 16; j++) {
            int x = 5 * i + (j < 5 ? j : 4);
            f[j] = x < 16 ? 4 * (x % 4) + x / 4 : 16 + 4 * (x - 16);
        }
        __m512i idx = _mm512_setr_epi32(f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9],
                                        f[10], f[11], f[12], f[13], f[14], f[15]);
        rows[i] = _mm512_permutex2var_ps(lo, idx, hi);
    }
    return 1;
}

static inline __m512d pair_halves_pd(__m512d a, __m512d b)
{
    return _mm512_add_pd(_mm512_mask_blend_pd(0xF0, a, b), _mm512_shuffle_f64x2(a, b, 0x4E));
}

static inline void hsum4_pd(double *out, const __m512d *v)
{
    __m512d u0 = pair_halves_pd(v[0], v[1]), u1 = pair_halves_pd(v[2], v[3]);
    __m512d w = _mm512_add_pd(_mm512_shuffle_f64x2(u0, u1, 0x88), _mm512_shuffle_f64x2(u0, u1, 0xDD));
    w = _mm512_add_pd(w, _mm512_permute_pd(w, 0x55));
    /* Lane 2q holds the sum of v[q]. */
    const __m512i idx = _mm512_setr_epi64(0, 2, 4, 6, 0, 0, 0, 0);
    _mm256_storeu_pd(out, _mm512_castpd512_pd256(_mm512_permutexvar_pd(idx, w)));
}

static inline void hsum8_pd(double *out, const __m512d *v)
{
    __m512d u[4];
    GEMM_UNROLL for (int q = 0; q < 4; q++) u[q] = pair_halves_pd(v[2 * q], v[2 * q + 1]);
    /* Lane 2k + q of the tree holds the sum of v[4q + k]. */
    const __m512i idx = _mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7);
    _mm512_storeu_pd(out, _mm512_permutexvar_pd(idx, dot_tree_pd(u)));
}

/* DOT_PAIRS's reduction of its accumulators s[NS] and the update of C (with the dot
 * contract's bias and ReLU, gemm.h): trees over H accumulators at a time (s[f] holds
 * C(f / NP, 2(f % NP) + half)), then each vector of a row's sums (W columns: H
 * accumulators, at most two trees) picked out by a two-source permute: no round trip
 * through memory (a load that spans two stores waits for them to retire). */
#define DOT_PAIRS_STORE(T, MR, NP, V, W, S, FMA)                                             \
    do {                                                                                     \
        V t[NG];                                                                             \
        GEMM_UNROLL for (int g = 0; g < NG; g++) {                                           \
            V v[H];                                                                          \
            GEMM_UNROLL for (int u = 0; u < H; u++) v[u] = g * H + u < NS ? s[g * H + u] : _mm512_setzero##S(); \
            t[g] = TREE(v);                                                                  \
        }                                                                                    \
        V va = _mm512_set1##S(alpha), vb = _mm512_set1##S(beta);                             \
        GEMM_UNROLL for (int i = 0; i < MR; i++) {                                           \
            if ((size_t)i >= m) break;                                                       \
            GEMM_UNROLL for (int v = 0; v < RV; v++) { /* columns [v*W, v*W + W) */          \
                if ((size_t)v * W >= n) break;                                               \
                int lo = (i * NP + v * H) / H;                                               \
                IDX_T idx[W];                                                                \
                GEMM_UNROLL for (int x = 0; x < W; x++) {                                    \
                    int col = v * W + x < 2 * NP ? v * W + x : 2 * NP - 1;                   \
                    int f = i * NP + col / 2, fl = f % H;                                    \
                    idx[x] = (IDX_T)((W / 4) * (2 * (fl % 2) + col % 2) + fl / 2 + (f / H > lo ? W : 0)); \
                }                                                                            \
                V r = PERM2(t[lo], idx, t[lo + 1 < NG ? lo + 1 : lo]);                       \
                MASK_T mn = MASK_N(n - (size_t)v * W < W ? n - (size_t)v * W : W);           \
                T *cp = c + i * ldc + v * W;                                                 \
                r = _mm512_mul##S(va, r);                                                    \
                if (beta != 0) r = FMA(vb, MLOAD(mn, cp), r);                                \
                if (bias) r = _mm512_add##S(r, MLOAD(mn, bias + v * W));                     \
                if (relu) r = _mm512_max##S(r, _mm512_setzero##S());                         \
                MSTORE(cp, mn, r);                                                           \
            }                                                                                \
        }                                                                                    \
    } while (0)

/* The packed dot-product kernel for A B^T (struct GemmKernels, dot_packed_*), by pairs
 * of B rows: a vector of the panel (dot_pack_*) holds H = W/2 elements of B's rows 2q
 * and 2q+1 side by side, and the FMA with H elements of A's row i broadcast to both
 * halves (one load) adds to the partial sums of C(i, 2q) and C(i, 2q + 1). A tile's sums
 * then need a 3-level tree (f32), not GEMM_DOT's 4 levels, and each W of row i's 2*NP
 * sums come out of two trees' vectors by one permute: at short K, where the reduction weighs,
 * 64 x 10 x 128 runs 1.05x what the 4 x 5 GEMM_DOT tile did. With in-place pairs (a
 * shuffle each) it lost to GEMM_DOT, hence the panel. */
#define DOT_PAIRS(NAME, T, MR, NP, V, W, S, FMA)                                             \
    static inline void NAME##_tile(size_t k, const T *a, size_t lda, const T *b, size_t ldb, \
                                   T *c, size_t ldc, size_t m, size_t n, T alpha, T beta,    \
                                   const T *bias, int relu)                                  \
    {                                                                                        \
        enum { H = W / 2, NS = MR * NP, NG = (NS + H - 1) / H, RV = (2 * NP + W - 1) / W };  \
        const T *ar[MR];                                                                     \
        V s[NS];                                                                             \
        GEMM_UNROLL for (int i = 0; i < MR; i++) ar[i] = a + ((size_t)i < m ? (size_t)i : m - 1) * lda; \
        GEMM_UNROLL for (int f = 0; f < NS; f++) s[f] = _mm512_setzero##S();                 \
        size_t p = 0;                                                                        \
        for (; p + H <= k; p += H) {                                                         \
            V bv[NP];                                                                        \
            GEMM_UNROLL for (int q = 0; q < NP; q++) bv[q] = _mm512_load##S(b + q * W);      \
            b += NP * W;                                                                     \
            GEMM_UNROLL for (int i = 0; i < MR; i++) {                                       \
                V av = BCAST(HALF_LOAD(ar[i] + p));                                          \
                GEMM_UNROLL for (int q = 0; q < NP; q++) s[i * NP + q] = FMA(av, bv[q], s[i * NP + q]); \
            }                                                                                \
        }                                                                                    \
        if (p < k) { /* the panel is zero-padded; A's rows are not */                        \
            HALF_MASK_T mk = HALF_MASK(k - p);                                               \
            V bv[NP];                                                                        \
            GEMM_UNROLL for (int q = 0; q < NP; q++) bv[q] = _mm512_load##S(b + q * W);      \
            GEMM_UNROLL for (int i = 0; i < MR; i++) {                                       \
                V av = BCAST(HALF_LOAD_M(mk, ar[i] + p));                                    \
                GEMM_UNROLL for (int q = 0; q < NP; q++) s[i * NP + q] = FMA(av, bv[q], s[i * NP + q]); \
            }                                                                                \
        }                                                                                    \
        DOT_PAIRS_STORE(T, MR, NP, V, W, S, FMA);                                            \
    }                                                                                        \
                                                                                             \
    /* Any m rows, MR at a time: gemm.c calls it once per panel, for all the rows that       \
     * reread it (a call per tile cost 4% of the 64 x 10 x 128 forward). */                  \
    static void NAME(size_t k, const T *a, size_t lda, const T *b, size_t ldb, T *c,         \
                     size_t ldc, size_t m, size_t n, T alpha, T beta, const T *bias, int relu) \
    {                                                                                        \
        for (size_t i = 0; i < m; i += MR)                                                   \
            NAME##_tile(k, a + i * lda, lda, b, ldb, c + i * ldc, ldc, m - i < MR ? m - i : MR, n, alpha, beta, \
                        bias, relu);                                                         \
    }

/* dot_pack_*: n rows of B, k deep, as DOT_PAIRS reads them with NP = (n + 1)/2 pairs:
 * step p/H, pair q at dst + ((p/H)*NP + q)*W, zero past n rows and past k. */
#define DOT_PAIRS_PACK(NAME, T, W, S)                                                        \
    static void NAME(T *dst, const T *b, size_t ldb, size_t n, size_t k)                     \
    {                                                                                        \
        enum { H = W / 2 };                                                                  \
        size_t np = (n + 1) / 2;                                                             \
        for (size_t p = 0; p < k; p += H) {                                                  \
            HALF_MASK_T mk = HALF_MASK(k - p < H ? k - p : H);                               \
            for (size_t q = 0; q < np; q++, dst += W) {                                      \
                HALF_T lo = HALF_LOAD_M(mk, b + 2 * q * ldb + p);                            \
                HALF_T hi = 2 * q + 1 < n ? HALF_LOAD_M(mk, b + (2 * q + 1) * ldb + p) : HALF_ZERO(); \
                _mm512_store##S(dst, HALVES(lo, hi));                                        \
            }                                                                                \
        }                                                                                    \
    }

/* A 4 x 4 transpose of 128-bit blocks: block L of out[c + k*step] = block k of in_L
 * (k, L < 4). Blocks move whole, so it serves both dtypes. */
static inline void transpose_blocks(__m512 i0, __m512 i1, __m512 i2, __m512 i3, __m512 *out, int c, int step)
{
    __m512 x0 = _mm512_shuffle_f32x4(i0, i1, 0x44), x1 = _mm512_shuffle_f32x4(i2, i3, 0x44);
    __m512 x2 = _mm512_shuffle_f32x4(i0, i1, 0xEE), x3 = _mm512_shuffle_f32x4(i2, i3, 0xEE);
    out[c] = _mm512_shuffle_f32x4(x0, x1, 0x88);
    out[c + step] = _mm512_shuffle_f32x4(x0, x1, 0xDD);
    out[c + 2 * step] = _mm512_shuffle_f32x4(x2, x3, 0x88);
    out[c + 3 * step] = _mm512_shuffle_f32x4(x2, x3, 0xDD);
}

/* The in-register W x W transposes of the transposing pack (GEMM_PACK_T). */
static inline void transpose16_ps(__m512 r[16])
{
    __m512 a[16], b[16];
    GEMM_UNROLL for (int j = 0; j < 8; j++) {
        a[2 * j] = _mm512_unpacklo_ps(r[2 * j], r[2 * j + 1]);
        a[2 * j + 1] = _mm512_unpackhi_ps(r[2 * j], r[2 * j + 1]);
    }
    /* b[4j + c], 128-bit block L: rows 4j..4j+3 at column 4L + c. */
    GEMM_UNROLL for (int j = 0; j < 4; j++) {
        __m512d lo = _mm512_castps_pd(a[4 * j]), hi = _mm512_castps_pd(a[4 * j + 1]);
        __m512d lo2 = _mm512_castps_pd(a[4 * j + 2]), hi2 = _mm512_castps_pd(a[4 * j + 3]);
        b[4 * j] = _mm512_castpd_ps(_mm512_unpacklo_pd(lo, lo2));
        b[4 * j + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(lo, lo2));
        b[4 * j + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(hi, hi2));
        b[4 * j + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(hi, hi2));
    }
    GEMM_UNROLL for (int c = 0; c < 4; c++) transpose_blocks(b[c], b[4 + c], b[8 + c], b[12 + c], r, c, 4);
}

static inline void transpose8_pd(__m512d r[8])
{
    __m512d a[8];
    GEMM_UNROLL for (int j = 0; j < 4; j++) {
        a[2 * j] = _mm512_unpacklo_pd(r[2 * j], r[2 * j + 1]);
        a[2 * j + 1] = _mm512_unpackhi_pd(r[2 * j], r[2 * j + 1]);
    }
    /* a[2j + c], 128-bit block L: rows 2j, 2j+1 at column 2L + c. */
    GEMM_UNROLL for (int c = 0; c < 2; c++) {
        __m512 t[4];
        transpose_blocks(_mm512_castpd_ps(a[c]), _mm512_castpd_ps(a[2 + c]), _mm512_castpd_ps(a[4 + c]),
                         _mm512_castpd_ps(a[6 + c]), t, 0, 1);
        GEMM_UNROLL for (int i = 0; i < 4; i++) r[2 * i + c] = _mm512_castps_pd(t[i]);
    }
}

/* Both dtypes' kernels from one list, instantiated under each dtype's MASK_*, MLOAD,
 * MSTORE, HSUM* and DOT_ROWS (GEMM_DOT), and HALF_*, HALVES, BCAST, TREE, IDX_T and
 * PERM2 (DOT_PAIRS) below. A half vector has at most 8 lanes in either dtype. */
#define HALF_MASK_T __mmask8
#define HALF_MASK(r) ((__mmask8)((1u << (r)) - 1))
#define KERNELS(T, sfx, V, W, S, FMA, TR)                                                    \
    GEMM_KERNEL_SET(T, sfx, V, W, _mm512_, S, FMA, TR, MR, MR_ROWS, ALT_MR, DOT_MR, DOT_NR)  \
    DOT_PAIRS(dot_packed_##sfx##_1, T, DOTPK_MR, 1, V, W, S, FMA)                            \
    DOT_PAIRS(dot_packed_##sfx##_2, T, DOTPK_MR, 2, V, W, S, FMA)                            \
    DOT_PAIRS(dot_packed_##sfx##_3, T, DOTPK_MR, 3, V, W, S, FMA)                            \
    DOT_PAIRS(dot_packed_##sfx##_4, T, DOTPK_MR, 4, V, W, S, FMA)                            \
    DOT_PAIRS(dot_packed_##sfx##_5, T, DOTPK_MR, DOTPK_PAIRS, V, W, S, FMA)                  \
    DOT_PAIRS_PACK(dot_pack_##sfx, T, W, S)

#define MASK_T __mmask16
#define MASK_N(r) ((__mmask16)((1u << (r)) - 1))
#define MLOAD(m, p) _mm512_maskz_loadu_ps(m, p)
#define MSTORE(p, m, v) _mm512_mask_storeu_ps(p, m, v)
#define FMA_PS(a, b, c) _mm512_fmadd_ps(a, b, c)
#define HALF_T __m256
#define HALF_LOAD(p) _mm256_loadu_ps(p)
#define HALF_LOAD_M(m, p) _mm256_maskz_loadu_ps(m, p)
#define HALF_ZERO() _mm256_setzero_ps()
#define HALVES(lo, hi) _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1)
#define BCAST(h) _mm512_broadcast_f32x8(h)
#define TREE(v) dot_tree_ps(v)
#define IDX_T int32_t
#define PERM2(a, idx, b) _mm512_permutex2var_ps(a, _mm512_loadu_si512(idx), b)
#define HSUM(v) _mm512_reduce_add_ps(v)
#define HSUM_W(o, v) hsum16_ps(o, v)
#define HSUM_4(o, v) hsum4_ps(o, v)
#define DOT_ROWS(rows, s) dot_rows_4x5_ps(rows, s) /* dot_f32's tile is 4 x 5 */
KERNELS(float, f32, __m512, W_F32, _ps, FMA_PS, transpose16_ps)
#undef MASK_T
#undef MASK_N
#undef MLOAD
#undef MSTORE
#undef HALF_T
#undef HALF_LOAD
#undef HALF_LOAD_M
#undef HALF_ZERO
#undef HALVES
#undef BCAST
#undef TREE
#undef IDX_T
#undef PERM2
#undef HSUM
#undef HSUM_W
#undef HSUM_4
#undef DOT_ROWS

#define MASK_T __mmask8
#define MASK_N(r) ((__mmask8)((1u << (r)) - 1))
#define MLOAD(m, p) _mm512_maskz_loadu_pd(m, p)
#define MSTORE(p, m, v) _mm512_mask_storeu_pd(p, m, v)
#define FMA_PD(a, b, c) _mm512_fmadd_pd(a, b, c)
#define HALF_T __m256d
#define HALF_LOAD(p) _mm256_loadu_pd(p)
#define HALF_LOAD_M(m, p) _mm256_maskz_loadu_pd(m, p)
#define HALF_ZERO() _mm256_setzero_pd()
#define HALVES(lo, hi) _mm512_insertf64x4(_mm512_castpd256_pd512(lo), hi, 1)
#define BCAST(h) _mm512_broadcast_f64x4(h)
#define TREE(v) dot_tree_pd(v)
#define IDX_T int64_t
#define PERM2(a, idx, b) _mm512_permutex2var_pd(a, _mm512_loadu_si512(idx), b)
#define HSUM(v) _mm512_reduce_add_pd(v)
#define HSUM_W(o, v) hsum8_pd(o, v)
#define HSUM_4(o, v) hsum4_pd(o, v)
#define DOT_ROWS(rows, s) 0
KERNELS(double, f64, __m512d, W_F64, _pd, FMA_PD, transpose8_pd)

const struct GemmKernels gemm_kernels_avx512 = {
    GEMM_TABLE_SET(f32),
    GEMM_TABLE_SET(f64),
    /* 4 x 10: the MLP's 10-wide layer in one tile. */
    .dotpk_f32 = {.mr = DOTPK_MR, .nr = 2 * DOTPK_PAIRS},
    .dotpk_f64 = {.mr = DOTPK_MR, .nr = 2 * DOTPK_PAIRS},
    .dot_packed_f32 = {NULL, dot_packed_f32_1, dot_packed_f32_2, dot_packed_f32_3, dot_packed_f32_4, dot_packed_f32_5},
    .dot_packed_f64 = {NULL, dot_packed_f64_1, dot_packed_f64_2, dot_packed_f64_3, dot_packed_f64_4, dot_packed_f64_5},
    .dot_pack_f32 = dot_pack_f32,
    .dot_pack_f64 = dot_pack_f64,
};
