/* gemm_ukr: the register-tiled micro-kernel templates shared by gemm_<isa>.c.
 *
 * Each ISA file instantiates GEMM_UKR once per dtype with its vector type V of W lanes,
 * the intrinsic prefix and suffix (_mm512_ and _ps make _mm512_loadu_ps, ...) and an
 * FMA(a, b, c) = a*b + c. The
 * kernel keeps an MR x (NV*W) tile of C in MR*NV vector registers; every k step loads
 * NV vectors of the packed B panel and broadcasts MR elements of A into FMAs (with
 * AVX-512 the broadcast folds into the FMA as an embedded broadcast).
 *
 * Contract (struct GemmKernels in kernels/gemm.h): A(i, p) = a[i + p*csa] (csa = MR for a
 * packed panel, lda when A^T is read in place), B(p, j) = b[p*rsb + j] (rsb = NR for a
 * packed panel, ldb when B is read in place), and for i < m, j < n
 * C[i*ldc + j] = alpha * sum_p A(i,p) B(p,j) + beta * C[i*ldc + j], C not read when
 * beta == 0. Rows and columns past m and n are computed (from whatever A and B hold
 * there) but never stored. */
#ifndef MINIDL_GEMM_UKR_H
#define MINIDL_GEMM_UKR_H

#include "kernels/gemm.h"

#define GEMM_UNROLL _Pragma("GCC unroll 32")
/* A kernel with a long k loop on a C whose rows are a page or more apart (a large C, out
 * of cache, whose tile rows also map to the same cache sets) asks for its C tile before
 * the loop, so the update at the end finds it in L1: 1024^3 f32 +3%, f64 +5%. Smaller C
 * stays in cache, and short k loops leave no time to hide the fetch. */
#define GEMM_PREFETCH_C_K 128
#define GEMM_PREFETCH_C_ROW 4096

/* The ISA file also gives MASK_T, MASK_N(r) (the first r lanes, 0 <= r <= W), MLOAD(m, p)
 * and MSTORE(p, m, v) for the partial columns of an edge tile.
 *
 * GEMM_UKR_RM is the same kernel on a row-major A read in place: A(i, p) = a[i*csa + p]
 * (csa = lda), for short K or narrow N, where packing A costs more than it saves. */
#define GEMM_UKR(NAME, ...) GEMM_UKR_AS(NAME, 1, csa, __VA_ARGS__)
#define GEMM_UKR_RM(NAME, ...) GEMM_UKR_AS(NAME, csa, 1, __VA_ARGS__)
/* A(i, p) = a[i*IS + p*PS]. */
#define GEMM_UKR_AS(NAME, IS, PS, T, MR, NV, V, W, P, S, FMA)                                \
    static void NAME(size_t k, const T *restrict a, size_t csa, const T *restrict b,         \
                     size_t rsb, T *restrict c, size_t ldc, size_t m, size_t n, T alpha,     \
                     T beta)                                                                 \
    {                                                                                        \
        V acc[MR][NV];                                                                       \
        GEMM_UNROLL for (int i = 0; i < MR; i++)                                             \
            GEMM_UNROLL for (int v = 0; v < NV; v++) acc[i][v] = P##setzero##S();            \
        if (k >= GEMM_PREFETCH_C_K && ldc * sizeof(T) >= GEMM_PREFETCH_C_ROW) /* see above */ \
            GEMM_UNROLL for (int i = 0; i < MR; i++)                                         \
                GEMM_UNROLL for (int v = 0; v < NV; v++)                                     \
                    __builtin_prefetch(c + i * ldc + v * W, 1, 3);                           \
        for (size_t p = 0; p < k; p++) {                                                     \
            V bv[NV];                                                                        \
            GEMM_UNROLL for (int v = 0; v < NV; v++) bv[v] = P##loadu##S(b + v * W);         \
            GEMM_UNROLL for (int i = 0; i < MR; i++) {                                       \
                V ai = P##set1##S(a[i * IS]);                                                \
                GEMM_UNROLL for (int v = 0; v < NV; v++) acc[i][v] = FMA(ai, bv[v], acc[i][v]); \
            }                                                                                \
            a += PS;                                                                         \
            b += rsb;                                                                        \
        }                                                                                    \
        GEMM_UKR_UPDATE(T, MR, NV, V, W, P, S, FMA);                                         \
    }

/* The update of C from the accumulators acc[MR][NV] of GEMM_UKR_AS, for its rows i < m
 * and columns j < n: C = alpha * acc + beta * C (C not read when beta == 0). It returns
 * from the kernel. */
#define GEMM_UKR_UPDATE(T, MR, NV, V, W, P, S, FMA)                                          \
    do {                                                                                     \
        /* One unrolled store loop per case, chosen once: with alpha == 1 and beta == 1      \
         * (the gradients' accumulation) the update is one add. */                           \
        V va = P##set1##S(alpha), vb = P##set1##S(beta);                                     \
        if (n == NV * W) {                                                                   \
            if (alpha == 1 && beta == 1)                                                     \
                GEMM_STORE_TILE(T, V, MR, NV, W, P##add##S(acc[i][v], P##loadu##S(cp)), P##storeu##S(cp, r)); \
            else if (beta == 0)                                                              \
                GEMM_STORE_TILE(T, V, MR, NV, W, P##mul##S(va, acc[i][v]), P##storeu##S(cp, r)); \
            else                                                                             \
                GEMM_STORE_TILE(T, V, MR, NV, W, FMA(vb, P##loadu##S(cp), P##mul##S(va, acc[i][v])), \
                                P##storeu##S(cp, r));                                        \
            return;                                                                          \
        }                                                                                    \
        MASK_T mk[NV];                                                                       \
        GEMM_UNROLL for (int v = 0; v < NV; v++)                                             \
            mk[v] = MASK_N(n > (size_t)v * W ? (n - (size_t)v * W < W ? n - (size_t)v * W : W) : 0); \
        if (beta == 0)                                                                       \
            GEMM_STORE_TILE(T, V, MR, NV, W, P##mul##S(va, acc[i][v]), MSTORE(cp, mk[v], r)); \
        else                                                                                 \
            GEMM_STORE_TILE(T, V, MR, NV, W, FMA(vb, MLOAD(mk[v], cp), P##mul##S(va, acc[i][v])), \
                            MSTORE(cp, mk[v], r));                                           \
    } while (0)

/* The rows i < m of a register tile: r = EXPR (of acc[i][v] and cp), then STORE. */
#define GEMM_STORE_TILE(T, V, MR, NV, W, EXPR, STORE)                                        \
    do {                                                                                     \
        GEMM_UNROLL for (int i = 0; i < MR; i++) {                                           \
            if ((size_t)i >= m) break;                                                       \
            GEMM_UNROLL for (int v = 0; v < NV; v++) {                                       \
                T *cp = c + i * ldc + v * W;                                                 \
                V r = EXPR;                                                                  \
                STORE;                                                                       \
            }                                                                                \
        }                                                                                    \
    } while (0)

/* The primary kernel once per row count r < MR (NAME##_r reads and computes only r rows):
 * an edge tile of m < MR rows (M = 10 against a 14-row tile, the 8 left of 64) then
 * costs m rows of work, not MR. */
#define GEMM_ROWS_3(UKR, NAME, T, NV, ...)                                                   \
    UKR(NAME##_1, T, 1, NV, __VA_ARGS__)                                                     \
    UKR(NAME##_2, T, 2, NV, __VA_ARGS__)                                                     \
    UKR(NAME##_3, T, 3, NV, __VA_ARGS__)
#define GEMM_ROWS_5(UKR, NAME, T, NV, ...)                                                   \
    GEMM_ROWS_3(UKR, NAME, T, NV, __VA_ARGS__)                                               \
    UKR(NAME##_4, T, 4, NV, __VA_ARGS__)                                                     \
    UKR(NAME##_5, T, 5, NV, __VA_ARGS__)
#define GEMM_ROWS_13(UKR, NAME, T, NV, ...)                                                  \
    GEMM_ROWS_5(UKR, NAME, T, NV, __VA_ARGS__)                                               \
    UKR(NAME##_6, T, 6, NV, __VA_ARGS__)                                                     \
    UKR(NAME##_7, T, 7, NV, __VA_ARGS__)                                                     \
    UKR(NAME##_8, T, 8, NV, __VA_ARGS__)                                                     \
    UKR(NAME##_9, T, 9, NV, __VA_ARGS__)                                                     \
    UKR(NAME##_10, T, 10, NV, __VA_ARGS__)                                                   \
    UKR(NAME##_11, T, 11, NV, __VA_ARGS__)                                                   \
    UKR(NAME##_12, T, 12, NV, __VA_ARGS__)                                                   \
    UKR(NAME##_13, T, 13, NV, __VA_ARGS__)
/* The tables of struct GemmKernels from those kernels: GEMM_ROWS_TABLE(NAME, n) holds
 * NAME##_r at index r <= n; GEMM_RM_TABLE(NAME, n), for the row-major-A kernels
 * (GEMM_UKR_RM), adds the full kernel NAME itself at index MR = n + 1. */
#define GEMM_ROWS_LIST_3(NAME) NULL, NAME##_1, NAME##_2, NAME##_3
#define GEMM_ROWS_LIST_5(NAME) GEMM_ROWS_LIST_3(NAME), NAME##_4, NAME##_5
#define GEMM_ROWS_LIST_13(NAME)                                                              \
    GEMM_ROWS_LIST_5(NAME), NAME##_6, NAME##_7, NAME##_8, NAME##_9, NAME##_10, NAME##_11,    \
        NAME##_12, NAME##_13
#define GEMM_ROWS_TABLE(NAME, n) {GEMM_ROWS_LIST(n)(NAME)}
#define GEMM_RM_TABLE(NAME, n) {GEMM_ROWS_LIST(n)(NAME), NAME}
/* GEMM_ROWS_<n> and GEMM_ROWS_LIST_<n> by a row count n that may be a macro. */
#define GEMM_ROWS(n) GEMM_CAT_(GEMM_ROWS_, n)
#define GEMM_ROWS_LIST(n) GEMM_CAT_(GEMM_ROWS_LIST_, n)
#define GEMM_CAT_(a, n) a##n

/* Vectors per row of the primary and the alternative tile (nr = NV * W): the kernel
 * lists and the tables use these. */
#define GEMM_NV 2
#define GEMM_ALT_NV 3

/* A blocking of struct GemmKernels from one list mr, nr, kc, mc, nc, and the check,
 * at compile time, that it fits the limits of kernels/gemm.h: an mr x nr tile fits the
 * edge temporary, and the packed blocks (mc and nc rounded up to whole panels) the
 * buffers; rows_rm holds index mr. The ISA files write each list once for both. */
#define GEMM_BLOCKING(...) GEMM_BLOCKING_(__VA_ARGS__)
#define GEMM_BLOCKING_(MR, NR, KC, MC, NC) {.mr = MR, .nr = NR, .kc = KC, .mc = MC, .nc = NC}
#define GEMM_ASSERT_BLOCKING(T, ...) GEMM_ASSERT_BLOCKING_(T, __VA_ARGS__)
#define GEMM_ASSERT_BLOCKING_(T, MR, NR, KC, MC, NC)                                         \
    _Static_assert((MR) < GEMM_MAX_ROWS && (MR) * (NR) <= GEMM_MAX_TILE &&                   \
                   ((MC) + (MR) - 1) / (MR) * (MR) * (size_t)(KC) * sizeof(T) <= GEMM_PACK_A_BYTES && \
                   ((NC) + (NR) - 1) / (NR) * (NR) * (size_t)(KC) * sizeof(T) <= GEMM_PACK_B_BYTES, \
                   "blocking " #MR " x " #NR ", kc " #KC ", mc " #MC ", nc " #NC " of " #T   \
                   " overflows the limits of kernels/gemm.h")

/* The entries of struct GemmKernels for one dtype, from the kernels of GEMM_KERNEL_SET
 * (GEMM_TABLE_SET) or of a list without row-major-A kernels and transposing pack
 * (GEMM_TABLE), and the ISA file's names for its sizes: MR_ROWS, DOT_MR, DOT_NR and the
 * blockings TILE_<sfx> and ALT_<sfx>. */
#define GEMM_TABLE(sfx)                                                                      \
    .sfx = GEMM_BLOCKING(TILE_##sfx), .ukr_##sfx = ukr_##sfx,                                \
    .rows_##sfx = GEMM_ROWS_TABLE(ukr_##sfx, MR_ROWS), .alt_##sfx = GEMM_BLOCKING(ALT_##sfx), \
    .alt_ukr_##sfx = alt_ukr_##sfx, .dotsz_##sfx = {.mr = DOT_MR, .nr = DOT_NR},             \
    .dot_##sfx = dot_##sfx, .pack_n_##sfx = pack_n_##sfx
#define GEMM_TABLE_SET(sfx)                                                                  \
    GEMM_TABLE(sfx), .rows_rm_##sfx = GEMM_RM_TABLE(rm_##sfx, MR_ROWS), .pack_t_##sfx = pack_t_##sfx
/* The compile-time checks of the four blockings named as GEMM_TABLE expects. */
#define GEMM_ASSERT_BLOCKINGS()                                                              \
    GEMM_ASSERT_BLOCKING(float, TILE_f32);                                                   \
    GEMM_ASSERT_BLOCKING(double, TILE_f64);                                                  \
    GEMM_ASSERT_BLOCKING(float, ALT_f32);                                                    \
    GEMM_ASSERT_BLOCKING(double, ALT_f64)

/* The kernel set of an ISA file with row-major-A kernels and a transposing pack, for one
 * dtype (P and S the intrinsic prefix and suffix, TR the W x W transpose): the primary
 * MR x GEMM_NV*W tile with a kernel per row count (NROWS = MR - 1, a literal or a macro
 * naming one: it picks GEMM_ROWS_<NROWS>) on packed and on row-major A, the alternative
 * ALT_MR x GEMM_ALT_NV*W tile, the DOT_MR x DOT_NR dot tile, both packs. */
#define GEMM_KERNEL_SET(T, sfx, V, W, P, S, FMA, TR, MR, NROWS, ALT_MR, DOT_MR, DOT_NR)      \
    GEMM_UKR(ukr_##sfx, T, MR, GEMM_NV, V, W, P, S, FMA)                                     \
    GEMM_ROWS(NROWS)(GEMM_UKR, ukr_##sfx, T, GEMM_NV, V, W, P, S, FMA)                       \
    GEMM_UKR_RM(rm_##sfx, T, MR, GEMM_NV, V, W, P, S, FMA)                                   \
    GEMM_ROWS(NROWS)(GEMM_UKR_RM, rm_##sfx, T, GEMM_NV, V, W, P, S, FMA)                     \
    GEMM_UKR(alt_ukr_##sfx, T, ALT_MR, GEMM_ALT_NV, V, W, P, S, FMA)                         \
    GEMM_DOT(dot_##sfx, T, DOT_MR, DOT_NR, V, W, P, S, FMA)                                  \
    GEMM_PACK_N(pack_n_##sfx, T, V, W, P, S)                                                 \
    GEMM_PACK_T(pack_t_##sfx, T, V, W, P, S, TR)

    /* GEMM_DOT's reduction of its accumulators s[MR][NR]: declares rows[MR], row i's sums in
 * lanes j < NR <= W, and mn, the mask of the n columns stored. Straight from registers
 * where the ISA has DOT_ROWS for this tile, else through sum[], filled W sums at a time
 * by HSUM_W (one transposing tree), then 4 by HSUM_4, the rest one by one. */
#define GEMM_DOT_ROWS(T, MR, NR, V, W)                                                       \
    MASK_T mn = MASK_N(n);                                                                   \
    V rows[MR];                                                                              \
    if (!DOT_ROWS(rows, &s[0][0])) {                                                         \
        T sum[MR * NR];                                                                      \
        GEMM_UNROLL for (int g = 0; g < MR * NR / W; g++) HSUM_W(sum + g * W, &s[0][0] + g * W); \
        GEMM_UNROLL for (int g = 0; g < MR * NR % W / 4; g++)                                \
            HSUM_4(sum + MR * NR / W * W + g * 4, &s[0][0] + MR * NR / W * W + g * 4);       \
        GEMM_UNROLL for (int g = MR * NR / W * W + (MR * NR % W) / 4 * 4; g < MR * NR; g++)  \
            sum[g] = HSUM(s[g / NR][g % NR]);                                                \
        GEMM_UNROLL for (int i = 0; i < MR; i++) rows[i] = MLOAD(mn, sum + i * NR);          \
    }

/* The dot-product kernel for op(A) op(B)^T with both operands K-contiguous (A row i at
 * a + i*lda, B row j at b + j*ldb): an MR x NR tile of C kept as MR*NR vector partial
 * sums along K, no packing, reduced at the end: C[i*ldc + j] = alpha * sum + beta *
 * C[i*ldc + j] (+ bias[j], then ReLU: gemm.h's dot contract) for i < m, j < n (C not
 * read when beta == 0); gemm.c calls it once per K chunk, beta 1 after the first, the
 * bias on the first, the ReLU on the last. Rows past m (columns past n) repeat the last
 * valid one, so the loads stay inside the operands; their sums are dropped. The ISA file
 * gives HSUM(v) and HSUM_W(out, v): out[q] = HSUM(v[q]) for the W vectors v[0..W-1],
 * and HSUM_4 the same for 4 vectors; and DOT_ROWS(rows, s): 0, or 1 after setting
 * rows[i] lane j to the sum of s[i*NR + j] (a tile it has a register-only reduction for). */
#define GEMM_DOT(NAME, T, MR, NR, V, W, P, S, FMA)                                           \
    static void NAME(size_t k, const T *a, size_t lda, const T *b, size_t ldb, T *c,         \
                     size_t ldc, size_t m, size_t n, T alpha, T beta, const T *bias, int relu) \
    {                                                                                        \
        const T *ar[MR], *br[NR];                                                            \
        V s[MR][NR];                                                                         \
        GEMM_UNROLL for (int i = 0; i < MR; i++) ar[i] = a + ((size_t)i < m ? (size_t)i : m - 1) * lda; \
        GEMM_UNROLL for (int j = 0; j < NR; j++) br[j] = b + ((size_t)j < n ? (size_t)j : n - 1) * ldb; \
        GEMM_UNROLL for (int i = 0; i < MR; i++)                                             \
            GEMM_UNROLL for (int j = 0; j < NR; j++)                                         \
                s[i][j] = P##setzero##S();                                                   \
        size_t p = 0;                                                                        \
        for (; p + W <= k; p += W) {                                                         \
            V bv[NR];                                                                        \
            GEMM_UNROLL for (int j = 0; j < NR; j++) bv[j] = P##loadu##S(br[j] + p);         \
            GEMM_UNROLL for (int i = 0; i < MR; i++) {                                       \
                V av = P##loadu##S(ar[i] + p);                                               \
                GEMM_UNROLL for (int j = 0; j < NR; j++) s[i][j] = FMA(av, bv[j], s[i][j]);  \
            }                                                                                \
        }                                                                                    \
        if (p < k) {                                                                         \
            MASK_T mk = MASK_N(k - p);                                                       \
            V bv[NR];                                                                        \
            GEMM_UNROLL for (int j = 0; j < NR; j++) bv[j] = MLOAD(mk, br[j] + p);           \
            GEMM_UNROLL for (int i = 0; i < MR; i++) {                                       \
                V av = MLOAD(mk, ar[i] + p);                                                 \
                GEMM_UNROLL for (int j = 0; j < NR; j++) s[i][j] = FMA(av, bv[j], s[i][j]);  \
            }                                                                                \
        }                                                                                    \
        GEMM_DOT_ROWS(T, MR, NR, V, W);                                                      \
        V va = P##set1##S(alpha), vb = P##set1##S(beta), vz = P##setzero##S();               \
        V vbias = bias ? MLOAD(mn, bias) : vz;                                               \
        GEMM_UNROLL for (int i = 0; i < MR; i++) {                                           \
            if ((size_t)i >= m) break;                                                       \
            V r = P##mul##S(va, rows[i]);                                                    \
            if (beta != 0) r = FMA(vb, MLOAD(mn, c + i * ldc), r);                           \
            if (bias) r = P##add##S(r, vbias);                                               \
            if (relu) r = P##max##S(r, vz);                                                  \
            MSTORE(c + i * ldc, mn, r);                                                      \
        }                                                                                    \
    }

/* The copying pack (struct GemmKernels, pack_n): W elements at a time, the row's last
 * vector by a masked load, the padding's last by a masked store. gemm.c's scalar loop
 * became a memmove call per row: the A^T panels of the 10-wide layer's weight gradient
 * (64x10)^T 64x128 packed that way ran 12% slower on AVX2 (f32), 7% on AVX-512 (f64). */
#define GEMM_PACK_N(NAME, T, V, W, P, S)                                                     \
    static void NAME(T *dst, const T *src, size_t ld, size_t w, size_t w_pad, size_t k)      \
    {                                                                                        \
        for (size_t p = 0; p < k; p++, dst += w_pad, src += ld) {                            \
            size_t i = 0;                                                                    \
            for (; i + W <= w; i += W) P##storeu##S(dst + i, P##loadu##S(src + i));          \
            for (; i < w_pad; i += W) {                                                      \
                V v = i < w ? MLOAD(MASK_N(w - i), src + i) : P##setzero##S();               \
                if (i + W <= w_pad) P##storeu##S(dst + i, v);                                \
                else MSTORE(dst + i, MASK_N(w_pad - i), v);                                  \
            }                                                                                \
        }                                                                                    \
    }

/* The transposing pack (struct GemmKernels, pack_t) by an ISA's in-register W x W
 * transpose TRANSPOSE(V r[W]): W-row groups of the panel, W columns at a time; rows past
 * w load as zeros, which pads. Full vectors load and store unmasked (AVX2's masked store
 * is slow). The scalar transpose took a fifth of an A B^T call (AVX2, b64 fwd1). */
#define GEMM_PACK_T(NAME, T, V, W, P, S, TRANSPOSE)                                          \
    static void NAME(T *dst, const T *src, size_t ld, size_t w, size_t w_pad, size_t k)      \
    {                                                                                        \
        for (size_t i0 = 0; i0 < w_pad; i0 += W) {                                           \
            size_t g = w > i0 ? (w - i0 < W ? w - i0 : W) : 0;                               \
            size_t sw = w_pad - i0 < W ? w_pad - i0 : W;                                     \
            MASK_T sm = MASK_N(sw);                                                          \
            for (size_t p0 = 0; p0 < k; p0 += W) {                                           \
                size_t kk = k - p0 < W ? k - p0 : W;                                         \
                MASK_T lm = MASK_N(kk);                                                      \
                V r[W];                                                                      \
                GEMM_UNROLL for (size_t i = 0; i < W; i++)                                   \
                    r[i] = i >= g ? P##setzero##S()                                          \
                         : kk == W ? P##loadu##S(src + (i0 + i) * ld + p0)                   \
                                   : MLOAD(lm, src + (i0 + i) * ld + p0);                    \
                TRANSPOSE(r);                                                                \
                GEMM_UNROLL for (size_t p = 0; p < W; p++) {                                 \
                    if (p >= kk) break;                                                      \
                    if (sw == W) P##storeu##S(dst + (p0 + p) * w_pad + i0, r[p]);            \
                    else MSTORE(dst + (p0 + p) * w_pad + i0, sm, r[p]);                      \
                }                                                                            \
            }                                                                                \
        }                                                                                    \
    }

/* HSUM_W for an ISA without a transposing tree: out[q] = HSUM(v[q]), q < W. */
#define GEMM_HSUM_EACH(out, v, W)                                                            \
    do {                                                                                     \
        GEMM_UNROLL for (int q_ = 0; q_ < (W); q_++) (out)[q_] = HSUM((v)[q_]);              \
    } while (0)

#endif
