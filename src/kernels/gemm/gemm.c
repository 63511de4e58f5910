/* gemm: C = alpha*op(A)*op(B) + beta*C, BLIS style.
 *
 * Loops, outermost first: nc-wide column blocks of C; kc-deep slices of K, packing the
 * kc x nc block of op(B) into nr-wide panels (pack_b, L3/L2 resident); mc-tall blocks of
 * op(A), packed into mr-wide panels (pack_a, L2); then nr- and mr-wide micro-panels, one
 * register tile each, by the ISA's micro-kernel. Panels are zero-padded to mr / nr, so
 * the kernel always runs a full tile; an edge tile (or a C that is stored transposed)
 * goes through a small temporary. Pack buffers are thread-local arrays: no heap.
 *
 * Everything is written once over matrix views, element (i, j) at p[i*rs + j*cs], so
 * transposes are only strides; the generic part is instantiated for float and double. */
#include "generic.h"
#include "kernels/dispatch.h"
#include "kernels/gemm.h"
#include "math_kernels.h"
#include "utils.h"

#define GEMM_REF(T, sfx)                                                                     \
    void gemm_ref_##sfx(int ta, int tb, size_t M, size_t N, size_t K, T alpha, const T *A,   \
                        size_t lda, const T *B, size_t ldb, T beta, T *C, size_t ldc)        \
    {                                                                                        \
        for (size_t i = 0; i < M; i++)                                                       \
            for (size_t j = 0; j < N; j++) {                                                 \
                T s = 0;                                                                     \
                for (size_t k = 0; k < K; k++)                                               \
                    s += (ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]); \
                C[i * ldc + j] = alpha * s + (beta == 0 ? 0 : beta * C[i * ldc + j]);        \
            }                                                                                \
    }
GEMM_REF(float, f32)
GEMM_REF(double, f64)

static _Thread_local union {
    _Alignas(64) float f32[GEMM_PACK_A_BYTES / sizeof(float)];
    double f64[GEMM_PACK_A_BYTES / sizeof(double)];
} pack_a;
static _Thread_local union {
    _Alignas(64) float f32[GEMM_PACK_B_BYTES / sizeof(float)];
    double f64[GEMM_PACK_B_BYTES / sizeof(double)];
} pack_b;
static _Thread_local union {
    _Alignas(64) float f32[GEMM_MAX_TILE];
    double f64[GEMM_MAX_TILE];
} tile;

static size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }

/* The dot-product path's K chunk: the outer loop's tile rows stay in L1 while the inner
 * loop runs over all of the other operand's rows, which stay in L2. A long chunk pays:
 * each chunk ends in a reduction of the tiles' sums into C. */
#define DOT_L1_BYTES ((size_t)24 << 10)
#define DOT_L2_BYTES ((size_t)512 << 10)
static size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }
/* The packed dot kernel when at least this many row tiles reread each panel of B (its
 * pack pass cost 20% at 2, 8 x 9 x 50176, and 10% at 4, 16 x 72 x 12544) and B makes
 * at most this many panels: measured at 16 row tiles, it gains 16% on 64 x 10 x 3136
 * and 5% on 64 x 10 x 128, and loses 3% on 64 x 128 x 784 (13 panels). */
#define DOT_PACK_ROW_TILES 8
#define DOT_PACK_PANELS 2

#define GEMM_GENERIC(T, sfx)                                                                 \
    struct view_##sfx { const T *p; size_t rs, cs; };                                        \
                                                                                             \
    /* dst[p*w_pad + i] = src[i*ws + p*ks] for i < w, zero up to w_pad, p < k: a             \
     * transpose (the ISA's pack_n copies panels with ws = 1), walking k in short runs so    \
     * the w source rows stay in L1. */                                                      \
    static void pack_panel_##sfx(T *restrict dst, const T *restrict src, size_t ws,          \
                                 size_t ks, size_t w, size_t w_pad, size_t k)                \
    {                                                                                        \
        for (size_t p0 = 0; p0 < k; p0 += 16) {                                              \
            size_t kk = min_sz(16, k - p0);                                                  \
            T *d = dst + p0 * w_pad;                                                         \
            for (size_t i = 0; i < w; i++) {                                                 \
                const T *s = src + i * ws + p0 * ks;                                         \
                for (size_t p = 0; p < kk; p++) d[p * w_pad + i] = s[p * ks];                \
            }                                                                                \
            for (size_t p = 0; p < kk; p++)                                                  \
                for (size_t i = w; i < w_pad; i++) d[p * w_pad + i] = 0;                     \
        }                                                                                    \
    }                                                                                        \
                                                                                             \
    /* C (m x n, strides rsc, csc) = t + beta*C, t an edge tile with row stride ld. */       \
    static void merge_tile_##sfx(T *c, size_t rsc, size_t csc, const T *t, size_t ld,        \
                                 size_t m, size_t n, T beta)                                 \
    {                                                                                        \
        for (size_t i = 0; i < m; i++)                                                       \
            for (size_t j = 0; j < n; j++) {                                                 \
                T *cp = c + i * rsc + j * csc;                                               \
                *cp = t[i * ld + j] + (beta == 0 ? 0 : beta * *cp);                          \
            }                                                                                \
    }                                                                                        \
                                                                                             \
    static void scale_c_##sfx(size_t M, size_t N, T beta, T *C, size_t ldc)                  \
    {                                                                                        \
        for (size_t i = 0; i < M; i++)                                                       \
            for (size_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0 ? 0 : beta * C[i * ldc + j]; \
    }                                                                                        \
                                                                                             \
    /* One register tile of the ISA (primary or alternative) and its blocking. */            \
    typedef gemm_ukr_##sfx##_fn *ukr_fn_##sfx;                                              \
    struct tiling_##sfx {                                                                    \
        size_t mr, nr, kc, mc, nc;                                                           \
        ukr_fn_##sfx ukr;                                                                    \
        const ukr_fn_##sfx *rows; /* the kernel per edge row count, or NULL */               \
        const ukr_fn_##sfx *rows_rm; /* per row count on a row-major A in place, or NULL */  \
        void (*pack_t)(T *, const T *, size_t, size_t, size_t, size_t); /* or NULL */        \
        void (*pack_n)(T *, const T *, size_t, size_t, size_t, size_t);                      \
    };                                                                                       \
                                                                                             \
    static struct tiling_##sfx tiling_##sfx(const struct GemmKernels *gk, int alt)           \
    {                                                                                        \
        if (alt)                                                                             \
            return (struct tiling_##sfx){(size_t)gk->alt_##sfx.mr, (size_t)gk->alt_##sfx.nr, \
                (size_t)gk->alt_##sfx.kc, (size_t)gk->alt_##sfx.mc, (size_t)gk->alt_##sfx.nc, \
                gk->alt_ukr_##sfx, NULL, NULL, gk->pack_t_##sfx, gk->pack_n_##sfx};          \
        return (struct tiling_##sfx){(size_t)gk->sfx.mr, (size_t)gk->sfx.nr, (size_t)gk->sfx.kc, \
            (size_t)gk->sfx.mc, (size_t)gk->sfx.nc, gk->ukr_##sfx, gk->rows_##sfx,           \
            gk->rows_rm_##sfx[gk->sfx.mr] ? gk->rows_rm_##sfx : NULL, gk->pack_t_##sfx,      \
            gk->pack_n_##sfx};                                                               \
    }                                                                                        \
                                                                                             \
    /* Where the micro-panels of a block come from: read in place (d != NULL, panel r at     \
     * d + r*rs, k stride ks) when full, else packed at buf + r*kb with k stride full;       \
     * rm: A row-major in place, for the rows_rm kernels (csa = rs). */                      \
    struct panels_##sfx { const T *d, *buf; size_t rs, ks; int ragged, rm; };                \
                                                                                             \
    static const T *panel_##sfx(struct panels_##sfx q, size_t r, size_t kb, size_t w,        \
                                size_t full, size_t *ks)                                     \
    {                                                                                        \
        if (q.d && (w == full || q.ragged)) { *ks = q.ks; return q.d + r * q.rs; }           \
        *ks = full;                                                                          \
        return q.buf + r * kb;                                                               \
    }                                                                                        \
                                                                                             \
    /* Packs the wr-wide panels of a block of width wb: all of them (direct 0), only a       \
     * ragged last one when the full ones are read in place (1), or none (2; 3: A is         \
     * row-major, for the rows_rm kernels). */                                               \
    static struct panels_##sfx pack_block_##sfx(const struct tiling_##sfx *tl, T *buf,       \
                                                struct view_##sfx X, size_t wb, size_t kb,   \
                                                size_t wr, int direct)                       \
    {                                                                                        \
        for (size_t r = direct ? (direct >= 2 ? wb : wb / wr * wr) : 0; r < wb; r += wr) {   \
            if (X.cs == 1 && X.rs != 1 && tl->pack_t)                                        \
                tl->pack_t(buf + r * kb, X.p + r * X.rs, X.rs, min_sz(wr, wb - r), wr, kb);  \
            else if (X.rs == 1)                                                              \
                tl->pack_n(buf + r * kb, X.p + r, X.cs, min_sz(wr, wb - r), wr, kb);         \
            else                                                                             \
                pack_panel_##sfx(buf + r * kb, X.p + r * X.rs, X.rs, X.cs, min_sz(wr, wb - r), wr, kb); \
        }                                                                                    \
        return (struct panels_##sfx){direct ? X.p : NULL, buf, X.rs, X.cs, direct >= 2, direct == 3}; \
    }                                                                                        \
                                                                                             \
    /* The micro-panel loops over an mb x kb block of A and a kb x nb block of B. */         \
    static void macro_##sfx(const struct tiling_##sfx *tl, size_t mb, size_t nb, size_t kb,  \
                            T alpha, struct panels_##sfx pa, struct panels_##sfx pb, T beta, \
                            T *C, size_t rsc, size_t csc)                                    \
    {                                                                                        \
        size_t mr = tl->mr, nr = tl->nr, csa, rsb;                                           \
        for (size_t jr = 0; jr < nb; jr += nr) {                                             \
            size_t n = min_sz(nr, nb - jr);                                                  \
            const T *bp = panel_##sfx(pb, jr, kb, n, nr, &rsb);                              \
            for (size_t ir = 0; ir < mb; ir += mr) {                                         \
                size_t m = min_sz(mr, mb - ir);                                              \
                const T *ap = panel_##sfx(pa, ir, kb, m, mr, &csa);                          \
                T *cp = C + ir * rsc + jr * csc;                                             \
                ukr_fn_##sfx ukr = m < mr && tl->rows && tl->rows[m] ? tl->rows[m] : tl->ukr; \
                if (pa.rm) ukr = tl->rows_rm[m], csa = pa.rs;                                \
                if (csc == 1) {                                                              \
                    ukr(kb, ap, csa, bp, rsb, cp, rsc, m, n, alpha, beta);                   \
                } else {                                                                     \
                    ukr(kb, ap, csa, bp, rsb, tile.sfx, nr, m, nr, alpha, 0);                \
                    merge_tile_##sfx(cp, rsc, csc, tile.sfx, nr, m, n, beta);                \
                }                                                                            \
            }                                                                                \
        }                                                                                    \
    }                                                                                        \
                                                                                             \
    static void blocked_##sfx(const struct tiling_##sfx *tl, size_t M, size_t N, size_t K,   \
                              T alpha, struct view_##sfx A, struct view_##sfx B, T beta,     \
                              T *C, size_t rsc, size_t csc)                                  \
    {                                                                                        \
        size_t mr = tl->mr, nr = tl->nr, kc = tl->kc, mc = tl->mc, nc = tl->nc;              \
        /* Packing B pays when many row panels reuse it (past two A blocks: measured at      \
         * M = 256, reading B in place gains 4%), packing A when many column panels do;      \
         * otherwise full panels with unit stride are read in place. */                      \
        int direct_b = B.cs == 1 && M <= 2 * mc, direct_a = A.rs == 1 && N <= 4 * nr;        \
        /* The per-row-count kernels read only the rows they compute: a ragged A panel       \
         * can be read in place too. */                                                      \
        if (direct_a && tl->rows) direct_a = 2;                                              \
        /* A row-major A is read in place too, by the rows_rm kernels, when few column     \
         * panels reuse it (at short K too: over 98 panels, conv's Linear igrad at K = 10    \
         * lost 5% in place). */                                                             \
        if (!direct_a && A.cs == 1 && tl->rows_rm && N <= 4 * nr) direct_a = 3;              \
        for (size_t jc = 0; jc < N; jc += nc) {                                              \
            size_t nb = min_sz(nc, N - jc);                                                  \
            for (size_t pc = 0; pc < K; pc += kc) {                                          \
                size_t kb = min_sz(kc, K - pc);                                              \
                struct view_##sfx Bb = {B.p + pc * B.rs + jc * B.cs, B.cs, B.rs};            \
                struct panels_##sfx pb = pack_block_##sfx(tl, pack_b.sfx, Bb, nb, kb, nr, direct_b); \
                T beta_k = pc == 0 ? beta : 1;                                               \
                for (size_t ic = 0; ic < M; ic += mc) {                                      \
                    size_t mb = min_sz(mc, M - ic);                                          \
                    struct view_##sfx Ab = {A.p + ic * A.rs + pc * A.cs, A.rs, A.cs};        \
                    struct panels_##sfx pa = pack_block_##sfx(tl, pack_a.sfx, Ab, mb, kb, mr, direct_a); \
                    macro_##sfx(tl, mb, nb, kb, alpha, pa, pb, beta_k, C + ic * rsc + jc * csc, \
                                rsc, csc);                                                   \
                }                                                                            \
            }                                                                                \
        }                                                                                    \
    }                                                                                        \
                                                                                             \
    /* A B^T with both operands K-contiguous, by the dot-product kernels: K in chunks of      \
     * kc, so that a chunk of the rows reread by the inner loop (a packed panel of B, else   \
     * the smaller operand's) stays in L1; each chunk's sums go into C. */                   \
    static void dot_##sfx(const struct GemmKernels *gk, size_t M, size_t N, size_t K,        \
                          T alpha, const T *A, size_t lda, const T *B, size_t ldb, T beta,   \
                          T *C, size_t ldc)                                                  \
    {                                                                                        \
        int packed = gk->dot_pack_##sfx && M >= DOT_PACK_ROW_TILES * (size_t)gk->dotpk_##sfx.mr && \
                     N <= DOT_PACK_PANELS * (size_t)gk->dotpk_##sfx.nr;                      \
        size_t mr = (size_t)(packed ? gk->dotpk_##sfx.mr : gk->dotsz_##sfx.mr);              \
        size_t nr = (size_t)(packed ? gk->dotpk_##sfx.nr : gk->dotsz_##sfx.nr);              \
        size_t kc = K; /* K <= 256: one chunk, no divisions */                               \
        if (K > 256) {                                                                       \
            kc = min_sz(DOT_L1_BYTES / (mr > nr ? mr : nr), DOT_L2_BYTES / min_sz(M, N));    \
            kc = kc / sizeof(T) / 64 * 64;                                                   \
            kc = kc < 256 ? 256 : kc;                                                        \
            size_t chunks = (K + kc - 1) / kc;                                               \
            kc = round_up((K + chunks - 1) / chunks, 16); /* even chunks */                  \
        }                                                                                    \
        CHECK(!packed || (nr + 1) / 2 * 2 * (kc + 16) * sizeof(T) <= GEMM_PACK_B_BYTES,      \
              "a dot panel of %zu x %zu does not fit the pack buffer", nr, kc);              \
        for (size_t pc = 0; pc < K; pc += kc) {                                              \
            size_t kb = min_sz(kc, K - pc);                                                  \
            T beta_k = pc == 0 ? beta : 1;                                                   \
            if (packed) { /* a panel of B, then all rows on it in one call */                \
                for (size_t j = 0; j < N; j += nr) {                                         \
                    size_t n = min_sz(nr, N - j);                                            \
                    gk->dot_pack_##sfx(pack_b.sfx, B + j * ldb + pc, ldb, n, kb);            \
                    gk->dot_packed_##sfx[(n + 1) / 2](kb, A + pc, lda, pack_b.sfx, 0, C + j, ldc, M, \
                                                      n, alpha, beta_k);                     \
                }                                                                            \
                continue;                                                                    \
            }                                                                                \
            /* The smaller operand's tiles vary fastest. */                                  \
            size_t mt = (M + mr - 1) / mr, nt = (N + nr - 1) / nr;                           \
            size_t no = M <= N ? nt : mt, nq = M <= N ? mt : nt;                             \
            for (size_t o = 0; o < no; o++)                                                  \
                for (size_t q = 0; q < nq; q++) {                                            \
                    size_t i = (M <= N ? q : o) * mr, j = (M <= N ? o : q) * nr;             \
                    gk->dot_##sfx(kb, A + i * lda + pc, lda, B + j * ldb + pc, ldb, C + i * ldc + j, \
                                  ldc, min_sz(mr, M - i), min_sz(nr, N - j), alpha, beta_k); \
                }                                                                            \
        }                                                                                    \
    }                                                                                        \
                                                                                             \
    /* Whether dot_ suits an NT call. It packs at most a panel of B (the blocked path        \
     * transposes both operands while packing), so it wins while the output is narrow;      \
     * measured on AVX-512, the blocked path takes over from min(M, N) ~ 100, or at short K. */ \
    static int use_dot_##sfx(const struct GemmKernels *gk, size_t M, size_t N, size_t K)     \
    {                                                                                        \
        size_t mr = (size_t)gk->dotsz_##sfx.mr, nr = (size_t)gk->dotsz_##sfx.nr;             \
        /* With a tile of fewer than 16 sums (AVX2's 4 x 2) the blocked path and its         \
         * transposing pack win from min(M, N) = 16 on (AVX2 b64 fwd1: 97 -> 124 GFLOP/s). */ \
        size_t mn = min_sz(M, N);                                                            \
        return mn < 16 || (mn <= 96 && K >= 128 && mr * nr >= 16);                           \
    }                                                                                        \
                                                                                             \
    /* A call that needs no packing, straight onto the primary tile's kernels: K <= kc,      \
     * M <= mc (any M if K <= 16), N a multiple of nr (no ragged B panel; with a kernel      \
     * per row count, no padding at all, so no other tile does better), B row-major and      \
     * A read in place (A^T's rows, or a row-major A by the rows_rm kernels) where           \
     * blocked_ would not pack it either. Returns 0 if the call is not of that kind. In      \
     * a small call the generic set-up (the tile choice above all) cost 0.1 of the work.  */ \
    static int small_##sfx(const struct GemmKernels *gk, int ta, int tb, size_t M, size_t N, \
                           size_t K, T alpha, const T *A, size_t lda, const T *B, size_t ldb, \
                           T beta, T *C, size_t ldc)                                         \
    {                                                                                        \
        size_t mr = (size_t)gk->sfx.mr, nr = (size_t)gk->sfx.nr;                             \
        const ukr_fn_##sfx *rows = ta ? gk->rows_##sfx : gk->rows_rm_##sfx;                  \
        if (tb || K > (size_t)gk->sfx.kc || (M > (size_t)gk->sfx.mc && K > 16) || N % nr ||  \
            !rows[1] || N > (size_t)gk->sfx.nc || (N > 4 * nr && (ta || K > 16)))            \
            return 0;                                                                        \
        for (size_t j = 0; j < N; j += nr)                                                   \
            for (size_t i = 0; i < M; i += mr) {                                             \
                size_t m = min_sz(mr, M - i);                                                \
                ukr_fn_##sfx ukr = ta && m == mr ? gk->ukr_##sfx : rows[m];                  \
                ukr(K, A + (ta ? i : i * lda), lda, B + j, ldb, C + i * ldc + j, ldc, m, nr, alpha, beta); \
            }                                                                                \
        return 1;                                                                            \
    }                                                                                        \
                                                                                             \
    /* Cycles-ish estimate: padded tile work, a fixed cost per tile (call and C update:      \
     * it decides at short K, conv1's K = 9), and the scalar merge of a strided C. With a    \
     * kernel per row count a ragged row panel costs its own rows, but at least 4: fewer     \
     * than 8 accumulators (2 vectors a row) leave the FMA latency exposed. */               \
    static double cost_##sfx(const struct tiling_##sfx *tl, size_t M, size_t N, size_t K,    \
                             int strided)                                                    \
    {                                                                                        \
        size_t rag = M % tl->mr, rows = round_up(M, tl->mr);                                 \
        if (tl->rows && rag) rows = M - rag + (rag > 4 ? rag : 4);                           \
        double tiles = (double)(round_up(M, tl->mr) / tl->mr * (round_up(N, tl->nr) / tl->nr)); \
        double work = (double)rows * (double)round_up(N, tl->nr) * (double)K / 32 + 32 * tiles; \
        double merge = strided ? 2 * (double)M * (double)N : 0;                              \
        return work + merge * (double)((K + tl->kc - 1) / tl->kc);                           \
    }                                                                                        \
                                                                                             \
    void gemm_##sfx(int ta, int tb, size_t M, size_t N, size_t K, T alpha, const T *A,       \
                    size_t lda, const T *B, size_t ldb, T beta, T *C, size_t ldc)            \
    {                                                                                        \
        if (M == 0 || N == 0) return;                                                        \
        if (K == 0 || alpha == 0) {                                                          \
            scale_c_##sfx(M, N, beta, C, ldc);                                               \
            return;                                                                          \
        }                                                                                    \
        const struct GemmKernels *gk = kernels_get()->gemm;                                  \
        if (!gk) {                                                                           \
            gemm_ref_##sfx(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);            \
            return;                                                                          \
        }                                                                                    \
        if (!ta && tb && use_dot_##sfx(gk, M, N, K)) {                                       \
            dot_##sfx(gk, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);                     \
            return;                                                                          \
        }                                                                                    \
        if (small_##sfx(gk, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)) return;   \
        struct view_##sfx va = {A, ta ? 1 : lda, ta ? lda : 1};                              \
        struct view_##sfx vb = {B, tb ? 1 : ldb, tb ? ldb : 1};                              \
        /* The tile that fits best: either ISA tile, on C or (through C^T = op(B)^T op(A)^T) \
         * on its transpose. */                                                              \
        struct tiling_##sfx tl[2] = {tiling_##sfx(gk, 0), tiling_##sfx(gk, 1)};              \
        int best = 0;                                                                        \
        double cost[4];                                                                      \
        for (int c = 0; c < 4; c++) {                                                        \
            cost[c] = c & 2 ? cost_##sfx(&tl[c & 1], N, M, K, 1) : cost_##sfx(&tl[c & 1], M, N, K, 0); \
            if (cost[c] < cost[best]) best = c;                                              \
        }                                                                                    \
        if (best & 2) {                                                                      \
            struct view_##sfx at = {B, vb.cs, vb.rs}, bt = {A, va.cs, va.rs};                \
            blocked_##sfx(&tl[best & 1], N, M, K, alpha, at, bt, beta, C, 1, ldc);           \
        } else {                                                                             \
            blocked_##sfx(&tl[best & 1], M, N, K, alpha, va, vb, beta, C, ldc, 1);           \
        }                                                                                    \
    }
GEN_BOTH(GEMM_GENERIC)

void gemm(int ta, int tb, double alpha, const struct Tensor *A, const struct Tensor *B, double beta, struct Tensor *C)
{
    char sa[64], sb[64], sc[64];
    CHECK(A->ndim == 2 && B->ndim == 2 && C->ndim == 2, "gemm needs 2-D tensors");
    size_t M = ta ? A->shape[1] : A->shape[0], K = ta ? A->shape[0] : A->shape[1];
    size_t Kb = tb ? B->shape[1] : B->shape[0], N = tb ? B->shape[0] : B->shape[1];
    if (K != Kb || C->shape[0] != M || C->shape[1] != N || A->dtype != B->dtype || A->dtype != C->dtype)
        panic("gemm: shapes %s%s x %s%s -> %s do not fit", tensor_shape_str(A, sa, sizeof sa), ta ? "^T" : "",
              tensor_shape_str(B, sb, sizeof sb), tb ? "^T" : "", tensor_shape_str(C, sc, sizeof sc));
    if (A->dtype == DT_FLOAT32)
        gemm_f32(ta, tb, M, N, K, (float)alpha, A->data, A->shape[1], B->data, B->shape[1], (float)beta, C->data, N);
    else
        gemm_f64(ta, tb, M, N, K, alpha, A->data, A->shape[1], B->data, B->shape[1], beta, C->data, N);
}

void matmul(struct Tensor *out, const struct Tensor *A, const struct Tensor *B) { gemm(0, 0, 1.0, A, B, 0.0, out); }
