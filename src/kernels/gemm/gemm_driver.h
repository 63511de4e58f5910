/* gemm_driver: gemm's blocking, packing and path choice for one element type, included
 * by gemm.c once per dtype with T (float, double) and SFX (f32, f64) defined; it
 * #undefs them at the end. It uses what gemm.c defines before the includes: the
 * thread-local buffers pack_a, pack_b and tile, min_sz, round_up, the DOT_* tuning
 * constants and the packing policy enum gemm_pack. Each function is NAME_f32 or
 * NAME_f64 (FN(NAME)), so compiler errors and breakpoints land on real lines. */
#define GD_CAT_(a, b) a##_##b
#define GD_CAT(a, b) GD_CAT_(a, b)
#define GD_CAT3_(a, b, c) a##_##b##_##c
#define GD_CAT3(a, b, c) GD_CAT3_(a, b, c)
#define FN(name) GD_CAT(name, SFX)
#define GEMM_UKR_FN GD_CAT3(gemm_ukr, SFX, fn)

struct FN(view) { const T *p; size_t rs, cs; };

/* dst[p*w_pad + i] = src[i*ws + p*ks] for i < w, zero up to w_pad, p < k: a
 * transpose (the ISA's pack_n copies panels with ws = 1), walking k in short runs so
 * the w source rows stay in L1. */
static void FN(pack_panel)(T *restrict dst, const T *restrict src, size_t ws,
                           size_t ks, size_t w, size_t w_pad, size_t k)
{
    for (size_t p0 = 0; p0 < k; p0 += 16) {
        size_t kk = min_sz(16, k - p0);
        T *d = dst + p0 * w_pad;
        for (size_t i = 0; i < w; i++) {
            const T *s = src + i * ws + p0 * ks;
            for (size_t p = 0; p < kk; p++) d[p * w_pad + i] = s[p * ks];
        }
        for (size_t p = 0; p < kk; p++)
            for (size_t i = w; i < w_pad; i++) d[p * w_pad + i] = 0;
    }
}

/* C (m x n, strides rsc, csc) = t + beta*C, t an edge tile with row stride ld. */
static void FN(merge_tile)(T *c, size_t rsc, size_t csc, const T *t, size_t ld,
                           size_t m, size_t n, T beta)
{
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            T *cp = c + i * rsc + j * csc;
            *cp = t[i * ld + j] + (beta == 0 ? 0 : beta * *cp);
        }
}

static void FN(scale_c)(size_t M, size_t N, T beta, T *C, size_t ldc)
{
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0 ? 0 : beta * C[i * ldc + j];
}

/* One register tile of the ISA (primary or alternative) and its blocking. */
typedef GEMM_UKR_FN *FN(ukr_fn);
struct FN(tiling) {
    size_t mr, nr, kc, mc, nc;
    FN(ukr_fn) ukr;
    const FN(ukr_fn) *rows; /* the kernel per edge row count, or NULL */
    const FN(ukr_fn) *rows_rm; /* per row count on a row-major A in place, or NULL */
    void (*pack_t)(T *, const T *, size_t, size_t, size_t, size_t); /* or NULL */
    void (*pack_n)(T *, const T *, size_t, size_t, size_t, size_t);
};

static struct FN(tiling) FN(tiling)(const struct GemmKernels *gk, int alt)
{
    if (alt)
        return (struct FN(tiling)){(size_t)gk->FN(alt).mr, (size_t)gk->FN(alt).nr,
            (size_t)gk->FN(alt).kc, (size_t)gk->FN(alt).mc, (size_t)gk->FN(alt).nc,
            gk->FN(alt_ukr), NULL, NULL, gk->FN(pack_t), gk->FN(pack_n)};
    return (struct FN(tiling)){(size_t)gk->SFX.mr, (size_t)gk->SFX.nr, (size_t)gk->SFX.kc,
        (size_t)gk->SFX.mc, (size_t)gk->SFX.nc, gk->FN(ukr), gk->FN(rows),
        gk->FN(rows_rm)[gk->SFX.mr] ? gk->FN(rows_rm) : NULL, gk->FN(pack_t),
        gk->FN(pack_n)};
}

/* Where the micro-panels of a block come from: read in place (d != NULL, panel r at
 * d + r*rs, k stride ks) when full, else packed at buf + r*kb with k stride full;
 * rm: A row-major in place, for the rows_rm kernels (csa = rs). */
struct FN(panels) { const T *d, *buf; size_t rs, ks; int ragged, rm; };

static const T *FN(panel)(struct FN(panels) q, size_t r, size_t kb, size_t w,
                          size_t full, size_t *ks)
{
    if (q.d && (w == full || q.ragged)) { *ks = q.ks; return q.d + r * q.rs; }
    *ks = full;
    return q.buf + r * kb;
}

/* Packs the wr-wide panels of a block of width wb that the policy how packs (enum
 * gemm_pack), and says where each panel is read from. */
static struct FN(panels) FN(pack_block)(const struct FN(tiling) *tl, T *buf, struct FN(view) X,
                                        size_t wb, size_t kb, size_t wr, enum gemm_pack how)
{
    size_t first = how == PACK_ALL ? 0 : how == PACK_RAGGED ? wb / wr * wr : wb;
    for (size_t r = first; r < wb; r += wr) {
        if (X.cs == 1 && X.rs != 1 && tl->pack_t)
            tl->pack_t(buf + r * kb, X.p + r * X.rs, X.rs, min_sz(wr, wb - r), wr, kb);
        else if (X.rs == 1)
            tl->pack_n(buf + r * kb, X.p + r, X.cs, min_sz(wr, wb - r), wr, kb);
        else
            FN(pack_panel)(buf + r * kb, X.p + r * X.rs, X.rs, X.cs, min_sz(wr, wb - r), wr, kb);
    }
    return (struct FN(panels)){how != PACK_ALL ? X.p : NULL, buf, X.rs, X.cs, how >= PACK_NONE,
                               how == PACK_NONE_RM};
}

/* The micro-panel loops over an mb x kb block of A and a kb x nb block of B. */
static void FN(macro)(const struct FN(tiling) *tl, size_t mb, size_t nb, size_t kb,
                      T alpha, struct FN(panels) pa, struct FN(panels) pb, T beta,
                      T *C, size_t rsc, size_t csc)
{
    size_t mr = tl->mr, nr = tl->nr, csa, rsb;
    for (size_t jr = 0; jr < nb; jr += nr) {
        size_t n = min_sz(nr, nb - jr);
        const T *bp = FN(panel)(pb, jr, kb, n, nr, &rsb);
        for (size_t ir = 0; ir < mb; ir += mr) {
            size_t m = min_sz(mr, mb - ir);
            const T *ap = FN(panel)(pa, ir, kb, m, mr, &csa);
            T *cp = C + ir * rsc + jr * csc;
            FN(ukr_fn) ukr = m < mr && tl->rows && tl->rows[m] ? tl->rows[m] : tl->ukr;
            if (pa.rm) ukr = tl->rows_rm[m], csa = pa.rs;
            if (csc == 1) {
                ukr(kb, ap, csa, bp, rsb, cp, rsc, m, n, alpha, beta);
            } else {
                ukr(kb, ap, csa, bp, rsb, tile.SFX, nr, m, nr, alpha, 0);
                FN(merge_tile)(cp, rsc, csc, tile.SFX, nr, m, n, beta);
            }
        }
    }
}

/* How blocked_ packs: decided once for the whole call (a task's part must not decide
 * differently, or its sums could round differently). */
static void FN(pack_policy)(const struct FN(tiling) *tl, size_t M, size_t N, struct FN(view) A,
                            struct FN(view) B, enum gemm_pack *how_a, enum gemm_pack *how_b)
{
    /* Packing B pays when many row panels reuse it (past two A blocks: measured at
     * M = 256, reading B in place gains 4%), packing A when many column panels do;
     * otherwise full panels with unit stride are read in place. */
    *how_b = B.cs == 1 && M <= 2 * tl->mc ? PACK_RAGGED : PACK_ALL;
    *how_a = A.rs == 1 && N <= 4 * tl->nr ? PACK_RAGGED : PACK_ALL;
    /* The per-row-count kernels read only the rows they compute: a ragged A panel
     * can be read in place too. */
    if (*how_a == PACK_RAGGED && tl->rows) *how_a = PACK_NONE;
    /* A row-major A is read in place too, by the rows_rm kernels, when few column
     * panels reuse it (at short K too: over 98 panels, conv's Linear igrad at K = 10
     * lost 5% in place). */
    if (*how_a == PACK_ALL && A.cs == 1 && tl->rows_rm && N <= 4 * tl->nr) *how_a = PACK_NONE_RM;
}

/* The rows and columns of C given, of a call whose packing policies are how_a, how_b. */
static void FN(blocked)(const struct FN(tiling) *tl, size_t M, size_t N, size_t K,
                        T alpha, struct FN(view) A, struct FN(view) B, T beta,
                        T *C, size_t rsc, size_t csc, enum gemm_pack how_a, enum gemm_pack how_b)
{
    size_t mr = tl->mr, nr = tl->nr, kc = tl->kc, mc = tl->mc, nc = tl->nc;
    for (size_t jc = 0; jc < N; jc += nc) {
        size_t nb = min_sz(nc, N - jc);
        for (size_t pc = 0; pc < K; pc += kc) {
            size_t kb = min_sz(kc, K - pc);
            struct FN(view) Bb = {B.p + pc * B.rs + jc * B.cs, B.cs, B.rs};
            struct FN(panels) pb = FN(pack_block)(tl, pack_b.SFX, Bb, nb, kb, nr, how_b);
            T beta_k = pc == 0 ? beta : 1;
            for (size_t ic = 0; ic < M; ic += mc) {
                size_t mb = min_sz(mc, M - ic);
                struct FN(view) Ab = {A.p + ic * A.rs + pc * A.cs, A.rs, A.cs};
                struct FN(panels) pa = FN(pack_block)(tl, pack_a.SFX, Ab, mb, kb, mr, how_a);
                FN(macro)(tl, mb, nb, kb, alpha, pa, pb, beta_k, C + ic * rsc + jc * csc,
                            rsc, csc);
            }
        }
    }
}

/* A B^T with both operands K-contiguous, by the dot-product kernels: K in chunks of
 * kc, so that a chunk of the rows reread by the inner loop (a packed panel of B, else
 * the smaller operand's) stays in L1; each chunk's sums go into C. */
/* The dot path's plan for the whole call: packed panels or not, the tile and the K chunk. */
struct FN(dot_plan) { int packed; size_t mr, nr, kc; };

static struct FN(dot_plan) FN(dot_plan)(const struct GemmKernels *gk, size_t M, size_t N, size_t K)
{
    struct FN(dot_plan) d;
    d.packed = gk->FN(dot_pack) && M >= DOT_PACK_ROW_TILES * (size_t)gk->FN(dotpk).mr &&
               N <= DOT_PACK_PANELS * (size_t)gk->FN(dotpk).nr;
    d.mr = (size_t)(d.packed ? gk->FN(dotpk).mr : gk->FN(dotsz).mr);
    d.nr = (size_t)(d.packed ? gk->FN(dotpk).nr : gk->FN(dotsz).nr);
    d.kc = K; /* K <= 256: one chunk, no divisions */
    if (K > 256) {
        size_t kc = min_sz(DOT_L1_BYTES / (d.mr > d.nr ? d.mr : d.nr), DOT_L2_BYTES / min_sz(M, N));
        kc = kc / sizeof(T) / 64 * 64;
        kc = kc < 256 ? 256 : kc;
        size_t chunks = (K + kc - 1) / kc;
        d.kc = round_up((K + chunks - 1) / chunks, 16); /* even chunks */
    }
    CHECK(!d.packed || (d.nr + 1) / 2 * 2 * (d.kc + 16) * sizeof(T) <= GEMM_PACK_B_BYTES,
          "a dot panel of %zu x %zu does not fit the pack buffer", d.nr, d.kc);
    return d;
}

/* A B^T with both operands K-contiguous, by the dot-product kernels, for the M x N part
 * of C at A, B, C (rows and columns of the call cut at tile boundaries): K in chunks of
 * kc, so that a chunk of the rows reread by the inner loop (a packed panel of B, else
 * the smaller operand's) stays in L1; each chunk's sums go into C. */
static void FN(dot)(const struct GemmKernels *gk, const struct FN(dot_plan) *d, size_t M, size_t N,
                    size_t K, T alpha, const T *A, size_t lda, const T *B, size_t ldb, T beta,
                    T *C, size_t ldc, const T *bias, int relu)
{
    size_t mr = d->mr, nr = d->nr, kc = d->kc;
    for (size_t pc = 0; pc < K; pc += kc) {
        size_t kb = min_sz(kc, K - pc);
        T beta_k = pc == 0 ? beta : 1;
        const T *bias_k = pc == 0 ? bias : NULL; /* the epilogue: bias first, ReLU last */
        int relu_k = relu && pc + kb == K;
        if (d->packed) { /* a panel of B, then all rows on it in one call */
            for (size_t j = 0; j < N; j += nr) {
                size_t n = min_sz(nr, N - j);
                gk->FN(dot_pack)(pack_b.SFX, B + j * ldb + pc, ldb, n, kb);
                gk->FN(dot_packed)[(n + 1) / 2](kb, A + pc, lda, pack_b.SFX, 0, C + j, ldc, M,
                                                  n, alpha, beta_k, bias_k ? bias_k + j : NULL, relu_k);
            }
            continue;
        }
        /* The smaller operand's tiles vary fastest. */
        size_t mt = (M + mr - 1) / mr, nt = (N + nr - 1) / nr;
        size_t no = M <= N ? nt : mt, nq = M <= N ? mt : nt;
        for (size_t o = 0; o < no; o++)
            for (size_t q = 0; q < nq; q++) {
                size_t i = (M <= N ? q : o) * mr, j = (M <= N ? o : q) * nr;
                gk->FN(dot)(kb, A + i * lda + pc, lda, B + j * ldb + pc, ldb, C + i * ldc + j,
                              ldc, min_sz(mr, M - i), min_sz(nr, N - j), alpha, beta_k,
                              bias_k ? bias_k + j : NULL, relu_k);
            }
    }
}

/* Whether dot_ suits an NT call. It packs at most a panel of B (the blocked path
 * transposes both operands while packing), so it wins while the output is narrow;
 * measured on AVX-512, the blocked path takes over from min(M, N) ~ 100, or at short K. */
static int FN(use_dot)(const struct GemmKernels *gk, size_t M, size_t N, size_t K)
{
    size_t mr = (size_t)gk->FN(dotsz).mr, nr = (size_t)gk->FN(dotsz).nr;
    /* With a tile of fewer than 16 sums (AVX2's 4 x 2) the blocked path and its
     * transposing pack win from min(M, N) = 16 on (AVX2 b64 fwd1: 97 -> 124 GFLOP/s). */
    size_t mn = min_sz(M, N);
    return mn < 16 || (mn <= 96 && K >= 128 && mr * nr >= 16);
}

/* A call that needs no packing, straight onto the primary tile's kernels: K <= kc,
 * M <= mc (any M if K <= 16), N a multiple of nr (no ragged B panel; with a kernel
 * per row count, no padding at all, so no other tile does better), B row-major and
 * A read in place (A^T's rows, or a row-major A by the rows_rm kernels) where
 * blocked_ would not pack it either. In a small call the generic set-up (the tile
 * choice above all) cost 0.1 of the work. */
static int FN(small_ok)(const struct GemmKernels *gk, int ta, int tb, size_t M, size_t N, size_t K)
{
    size_t nr = (size_t)gk->SFX.nr;
    const FN(ukr_fn) *rows = ta ? gk->FN(rows) : gk->FN(rows_rm);
    return !(tb || K > (size_t)gk->SFX.kc || (M > (size_t)gk->SFX.mc && K > 16) || N % nr ||
             !rows[1] || N > (size_t)gk->SFX.nc || (N > 4 * nr && (ta || K > 16)));
}

/* The M x N part of a small call at A, B, C (A's first row or column, B's first column). */
static void FN(small)(const struct GemmKernels *gk, int ta, size_t M, size_t N, size_t K, T alpha,
                      const T *A, size_t lda, const T *B, size_t ldb, T beta, T *C, size_t ldc)
{
    size_t mr = (size_t)gk->SFX.mr, nr = (size_t)gk->SFX.nr;
    const FN(ukr_fn) *rows = ta ? gk->FN(rows) : gk->FN(rows_rm);
    for (size_t j = 0; j < N; j += nr)
        for (size_t i = 0; i < M; i += mr) {
            size_t m = min_sz(mr, M - i);
            FN(ukr_fn) ukr = ta && m == mr ? gk->FN(ukr) : rows[m];
            ukr(K, A + (ta ? i : i * lda), lda, B + j, ldb, C + i * ldc + j, ldc, m, nr, alpha, beta);
        }
}

/* Cycles-ish estimate: padded tile work, a fixed cost per tile (call and C update:
 * it decides at short K, conv1's K = 9), and the scalar merge of a strided C. With a
 * kernel per row count a ragged row panel costs its own rows, but at least 4: fewer
 * than 8 accumulators (2 vectors a row) leave the FMA latency exposed. */
static double FN(cost)(const struct FN(tiling) *tl, size_t M, size_t N, size_t K,
                       int strided)
{
    size_t rag = M % tl->mr, rows = round_up(M, tl->mr);
    if (tl->rows && rag) rows = M - rag + (rag > 4 ? rag : 4);
    double tiles = (double)(round_up(M, tl->mr) / tl->mr * (round_up(N, tl->nr) / tl->nr));
    double work = (double)rows * (double)round_up(N, tl->nr) * (double)K / 32 + 32 * tiles;
    double merge = strided ? 2 * (double)M * (double)N : 0;
    return work + merge * (double)((K + tl->kc - 1) / tl->kc);
}

/* One call, planned once: its path with everything the path decides, and the cut of
 * its output (in the path's orientation) into parts of whole tiles: a grid of tm x tn
 * parts of rstep x cstep, or, where the grid is one row or one column of parts, runs of
 * tiles in row-major (or column-major) order of equal work, so that a tile count that
 * does not divide does not leave one thread more (128 rows of 14-row tiles in 2 parts:
 * 70 and 58 rows as a grid, 64 rows' work each as runs). Parts run as parallel tasks;
 * each computes its elements exactly as the whole call would (the same tiles, each by
 * the same kernel), so the result does not depend on the cut. */
#define GEMM_MAX_RUNS 64
struct FN(plan) {
    int path;                       /* GEMM_DOT, GEMM_SMALL, GEMM_BLOCKED */
    const struct GemmKernels *gk;
    int ta;
    size_t M, N, K;                 /* in the path's orientation (blocked may transpose) */
    T alpha, beta;
    struct FN(view) A, B;           /* blocked; dot and small read A, B, lda, ldb */
    const T *a, *b;
    size_t lda, ldb;
    T *C;
    size_t rsc, csc;
    struct FN(tiling) tl;
    enum gemm_pack how_a, how_b;
    struct FN(dot_plan) dot;
    const T *bias;                  /* the epilogue (gemm_bias): the bias or NULL, the ReLU */
    int relu;
    const T *mask;                  /* gemm_mask's mask (laid out as C) or NULL */
    const struct ParCopies *ca, *cb; /* the threads' copies of A and B (threads.h), or NULL */
    int c_trans;                    /* the blocked path computes C^T: p's rows are C's columns */
    size_t grain;                   /* > 0: one part per thread, C cut where par_share_at(., grain, .) */
    int grain_cols;                 /* says: at C's columns, else at its rows */
    const struct GemmRows *rows;    /* gemm_copies' listener, told of each part's rows of C */
    size_t tm, tn, rstep, cstep;
    size_t mr, nr, rt, ct;          /* the path's tile, and the tiles of C */
    size_t runs;                    /* 0: the grid; else parts of tiles [run[k], run[k + 1]) */
    int by_cols;                    /* runs in column-major tile order */
    size_t run[GEMM_MAX_RUNS + 1];
};

/* The epilogue's steps on an m x n block of C at c, rows ld apart: the rows set to the
 * bias (the gemm then adds to them, beta 1); the ReLU, then x = mask > 0 ? x : 0 (mask
 * laid out as C), through the elementwise table k (the parallel one over all of C after
 * the gemm, the ISA's own inside a part), in one call when the rows are contiguous. */
static void FN(bias_rows)(size_t m, size_t n, const T *bias, T *c, size_t ld)
{
    for (size_t i = 0; i < m; i++) memcpy(c + i * ld, bias, n * sizeof(T));
}

static void FN(passes)(const struct EwKernels *k, size_t m, size_t n, int relu, const T *mask, T *c, size_t ld)
{
    size_t rows = m, len = n;
    if (ld == n) rows = 1, len = m * n;
    for (size_t i = 0; i < rows; i++) {
        if (relu) k->FN(relu)(len, c + i * ld, c + i * ld);
        if (mask) k->FN(relu_bwd_set)(len, mask + i * ld, c + i * ld, c + i * ld);
    }
}

/* The epilogue of the paths whose kernels have none, on the m x n block at c (row i0,
 * column j0 of the plan's orientation), on the thread that computes the block: its rows
 * start as the bias (the kernels then add to them, beta 1), and where the parts are
 * blocks of whole rows of C, the ReLU and the mask go over it after, while it is in
 * cache (a part of a column cut would make a kernel call per row of the block: at 256 x
 * 64 they cost more than the pass itself; such calls run the passes after the gemm). */
static void FN(bias_block)(const struct FN(plan) *p, size_t i0, size_t j0, size_t m, size_t n, T *c)
{
    if (!p->c_trans) {
        FN(bias_rows)(m, n, p->bias + j0, c, p->rsc);
        return;
    }
    for (size_t j = 0; j < n; j++)
        for (size_t i = 0; i < m; i++) c[i + j * p->csc] = p->bias[i0 + i];
}

/* Whether each part runs the ReLU and mask passes on its block: where the parts are
 * blocks of whole rows of C (see bias_block); else they run over C after the gemm. */
static int FN(passes_in_parts)(const struct FN(plan) *p) { return !p->c_trans && p->tn == 1; }

/* The m x n block of C at row i0, column j0 (tile boundaries), by the plan's path. */
static void FN(rect)(const struct FN(plan) *p, size_t i0, size_t j0, size_t m, size_t n)
{
    T *c = p->C + i0 * p->rsc + j0 * p->csc, beta = p->beta;
    if (p->path == GEMM_DOT) {
        FN(dot)(p->gk, &p->dot, m, n, p->K, p->alpha, p->a + i0 * p->lda, p->lda, p->b + j0 * p->ldb, p->ldb,
                beta, c, p->rsc, p->bias ? p->bias + j0 : NULL, p->relu);
    } else {
        if (p->bias) FN(bias_block)(p, i0, j0, m, n, c), beta = 1;
        if (p->path == GEMM_SMALL)
            FN(small)(p->gk, p->ta, m, n, p->K, p->alpha, p->a + (p->ta ? i0 : i0 * p->lda), p->lda, p->b + j0,
                      p->ldb, beta, c, p->rsc);
        else {
            struct FN(view) a = {p->A.p + i0 * p->A.rs, p->A.rs, p->A.cs};
            struct FN(view) b = {p->B.p + j0 * p->B.cs, p->B.rs, p->B.cs};
            FN(blocked)(&p->tl, m, n, p->K, p->alpha, a, b, beta, c, p->rsc, p->csc, p->how_a, p->how_b);
        }
    }
    int relu = p->relu && p->path != GEMM_DOT; /* the dot kernels apply it themselves */
    if (FN(passes_in_parts)(p) && (relu || p->mask))
        FN(passes)(kernels_get()->ew1, m, n, relu, p->mask ? p->mask + (c - p->C) : NULL, c, p->rsc);
}

/* Tiles [t0, t1) of the run order: whole lines of tiles (rows of tiles, or columns when
 * by_cols) in one block, a partial first or last line on its own. */
static void FN(run)(const struct FN(plan) *p, size_t t0, size_t t1)
{
    size_t line = p->by_cols ? p->rt : p->ct, step = p->by_cols ? p->nr : p->mr, cross = p->by_cols ? p->mr : p->nr;
    size_t len = p->by_cols ? p->N : p->M, width = p->by_cols ? p->M : p->N;
    while (t0 < t1) {
        size_t l = t0 / line, a = t0 % line, l1 = l + 1, b = line;
        if (a == 0 && t1 - t0 >= line) l1 = l + (t1 - t0) / line; /* whole lines */
        else b = min_sz(line, a + (t1 - t0));
        size_t at = l * step, extent = min_sz(l1 * step, len) - at, from = a * cross, upto = min_sz(b * cross, width);
        if (p->by_cols) FN(rect)(p, from, at, upto - from, extent);
        else FN(rect)(p, at, from, extent, upto - from);
        t0 = l1 == l + 1 ? l * line + b : l1 * line;
    }
}

/* The plan as worker w runs it: reading its own copies of the operands that have them
 * (a, b are the dot and small paths' operands; A, B the blocked path's, transposed
 * when it computes C^T). */
static const struct FN(plan) *FN(for_worker)(const struct FN(plan) *p, int worker, struct FN(plan) *own)
{
    if (!p->ca && !p->cb) return p;
    *own = *p;
    own->a = par_copy(p->ca, p->a, worker);
    own->b = par_copy(p->cb, p->b, worker);
    own->A.p = p->c_trans ? own->b : own->a;
    own->B.p = p->c_trans ? own->a : own->b;
    return own;
}

static void FN(part)(void *ctx, size_t task, int worker)
{
    struct FN(plan) own;
    const struct FN(plan) *p = FN(for_worker)(ctx, worker, &own);
    if (p->grain) { /* C's rows or columns [a, b): the plan's columns when it computes C^T */
        int plan_cols = p->grain_cols != p->c_trans;
        size_t len = plan_cols ? p->N : p->M, a = par_share_at(len, p->grain, task),
               b = par_share_at(len, p->grain, task + 1);
        if (a >= b) return;
        if (plan_cols) FN(rect)(p, 0, a, p->M, b - a);
        else FN(rect)(p, a, 0, b - a, p->N);
        if (p->rows) p->rows->done(p->rows, a, b - a);
        return;
    }
    if (p->runs) {
        FN(run)(p, p->run[task], p->run[task + 1]);
        return;
    }
    size_t i0 = task / p->tn * p->rstep, j0 = task % p->tn * p->cstep;
    if (i0 >= p->M || j0 >= p->N) return;
    FN(rect)(p, i0, j0, min_sz(p->rstep, p->M - i0), min_sz(p->cstep, p->N - j0));
}

/* The cut into parts for the threads present: the one whose slowest round of parts
 * costs least, counting each part's tiles and the packing it repeats (a part packs the
 * rows of A and the columns of B it needs; pack_a, pack_b say whether the path packs
 * them at all). One part when threads are off or the call is small. */
static void FN(cut)(struct FN(plan) *p, size_t mr, size_t nr, int packs_a, int packs_b)
{
    size_t T_ = (size_t)threads_count(), rt = (p->M + mr - 1) / mr, ct = (p->N + nr - 1) / nr;
    p->tm = p->tn = 1;
    if (T_ > 1 && 2 * (double)p->M * (double)p->N * (double)p->K >= GEMM_PAR_MIN_FLOPS) {
        double best = -1, per_tile = (double)(mr * nr) * (double)p->K / 32;
        for (size_t tm = 1; tm <= rt && tm <= 4 * T_; tm++)
            for (size_t tn = 1; tn <= ct && tm * tn <= 4 * T_; tn++) {
                size_t rows = (rt + tm - 1) / tm, cols = (ct + tn - 1) / tn, rounds = (tm * tn + T_ - 1) / T_;
                double cost = (double)rounds * ((double)(rows * cols) * per_tile + 8 +
                                                (packs_a ? (double)(rows * mr) * (double)p->K : 0) +
                                                (packs_b ? (double)(cols * nr) * (double)p->K : 0));
                if (best < 0 || cost < best) best = cost, p->tm = tm, p->tn = tn;
            }
    }
    p->rstep = (rt + p->tm - 1) / p->tm * mr;
    p->cstep = (ct + p->tn - 1) / p->tn * nr;
    p->tm = (p->M + p->rstep - 1) / p->rstep;
    p->tn = (p->N + p->cstep - 1) / p->cstep;
    p->mr = mr, p->nr = nr, p->rt = rt, p->ct = ct, p->runs = 0;
    size_t parts = p->tm * p->tn;
    if (parts < 2 || parts > GEMM_MAX_RUNS || (p->tm > 1 && p->tn > 1)) return;
    /* One line of parts, the first over its share of the work by more than 1/16: runs of
     * equal work in that order instead (a run that splits a line of tiles costs that
     * line's operand read by two threads, which measured more than 65 against 63
     * columns). A tile's work is its real rows times its real columns; a run ends where
     * the work done reaches k/parts of the whole, rounded to the nearer tile. */
    p->by_cols = p->tn > 1;
    size_t first = p->by_cols ? p->cstep : p->rstep, whole = p->by_cols ? p->N : p->M;
    if (16 * first * parts <= 17 * whole) return;
    size_t lines = p->by_cols ? ct : rt, line = p->by_cols ? rt : ct, step = p->by_cols ? nr : mr;
    size_t len = p->by_cols ? p->N : p->M, cross = p->by_cols ? mr : nr, width = p->by_cols ? p->M : p->N;
    double total = (double)p->M * (double)p->N;
    p->runs = parts;
    p->run[0] = 0;
    for (size_t k = 1; k < parts; k++) {
        double w = total * (double)k / (double)parts, per_line = (double)step * (double)width;
        size_t l = (size_t)(w / per_line);
        if (l >= lines) l = lines - 1;
        double rows = (double)(min_sz((l + 1) * step, len) - l * step), in_line = w - (double)l * per_line;
        size_t t = (size_t)(in_line / (rows * (double)cross) + 0.5);
        if (t > line) t = line;
        p->run[k] = l * line + t;
        if (p->run[k] < p->run[k - 1]) p->run[k] = p->run[k - 1];
    }
    p->run[parts] = lines * line;
}

/* gemm, gemm_bias (beta 0) and gemm_mask with their epilogues: the bias and the ReLU in
 * the dot kernels, else (and the mask always) around each part's block (FN(rect)). */
static void FN(gemm_run)(int ta, int tb, size_t M, size_t N, size_t K, T alpha, const T *A,
                         size_t lda, const T *B, size_t ldb, T beta, T *C, size_t ldc,
                         const T *bias, int relu, const T *mask, const struct ParCopies *ca,
                         const struct ParCopies *cb, size_t grain, struct GemmRows *rows)
{
    if (rows) rows->told = 0;
    if (M == 0 || N == 0) return;
    const struct GemmKernels *gk = kernels_get()->gemm;
    if (K == 0 || alpha == 0 || !gk) {
        if (bias) FN(bias_rows)(M, N, bias, C, ldc), beta = 1;
        if (K == 0 || alpha == 0) FN(scale_c)(M, N, beta, C, ldc);
        else FN(gemm_ref)(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        if (relu || mask) FN(passes)(kernels_get()->ew, M, N, relu, mask, C, ldc);
        return;
    }
    struct FN(plan) p = {.gk = gk, .ta = ta, .M = M, .N = N, .K = K, .alpha = alpha, .beta = beta,
                         .a = A, .b = B, .lda = lda, .ldb = ldb, .C = C, .rsc = ldc, .csc = 1,
                         .bias = bias, .relu = relu, .mask = mask, .ca = ca, .cb = cb, .rows = rows};
    if (!ta && tb && FN(use_dot)(gk, M, N, K)) {
        p.path = GEMM_DOT;
        p.dot = FN(dot_plan)(gk, M, N, K);
        FN(cut)(&p, p.dot.mr, p.dot.nr, 0, p.dot.packed);
    } else if (FN(small_ok)(gk, ta, tb, M, N, K)) {
        p.path = GEMM_SMALL;
        FN(cut)(&p, (size_t)gk->SFX.mr, (size_t)gk->SFX.nr, 0, 0);
    } else {
        struct FN(view) va = {A, ta ? 1 : lda, ta ? lda : 1};
        struct FN(view) vb = {B, tb ? 1 : ldb, tb ? ldb : 1};
        /* The tile that fits best: either ISA tile, on C or (through C^T = op(B)^T op(A)^T)
         * on its transpose. */
        struct FN(tiling) tl[2] = {FN(tiling)(gk, 0), FN(tiling)(gk, 1)};
        int best = 0;
        double cost[4];
        for (int c = 0; c < 4; c++) {
            cost[c] = c & 2 ? FN(cost)(&tl[c & 1], N, M, K, 1) : FN(cost)(&tl[c & 1], M, N, K, 0);
            if (cost[c] < cost[best]) best = c;
        }
        p.path = GEMM_BLOCKED;
        p.tl = tl[best & 1];
        if (best & 2) {
            p.M = N, p.N = M, p.rsc = 1, p.csc = ldc, p.c_trans = 1;
            p.A = (struct FN(view)){B, vb.cs, vb.rs}, p.B = (struct FN(view)){A, va.cs, va.rs};
        } else {
            p.A = va, p.B = vb;
        }
        FN(pack_policy)(&p.tl, p.M, p.N, p.A, p.B, &p.how_a, &p.how_b);
        FN(cut)(&p, p.tl.mr, p.tl.nr, p.how_a == PACK_ALL, p.how_b == PACK_ALL);
    }
    size_t T_ = (size_t)threads_count(), line = 64 / sizeof(T);
    if (rows) { /* told of whole rows from multiples of its grain, where the cut is by C's rows */
        if (p.tm * p.tn > 1 && (p.c_trans ? p.tm : p.tn) == 1) grain = rows->grain ? rows->grain : 1, rows->told = 1;
        else p.rows = NULL;
    }
    if (grain && p.tm * p.tn > 1) { /* a call worth cutting, cut as its rows' consumer is */
        p.grain = grain, p.tm = T_, p.tn = 1, p.runs = 0;
    } else if (p.tm == 1 && p.tn > 1 && !p.runs && !p.c_trans && p.path != GEMM_SMALL && N >= 4 * line * T_) {
        /* A cut of C's rows into column ranges: at whole cache lines instead of tiles, so
         * that no line of C is written by two threads (a tile cut of the MLP's 64 x 128
         * forward at 65 columns shared a line in every row: 2% of its 2-thread step). The
         * small path writes whole tiles past a ragged end, so it keeps its tile cut. */
        p.grain = line, p.grain_cols = 1, p.tn = T_;
    }
    par_run(p.tm * p.tn, FN(part), &p);
    relu = relu && p.path != GEMM_DOT; /* the dot kernels apply it themselves */
    if (!FN(passes_in_parts)(&p) && (relu || mask)) FN(passes)(kernels_get()->ew, M, N, relu, mask, C, ldc);
}

void FN(gemm)(int ta, int tb, size_t M, size_t N, size_t K, T alpha, const T *A,
              size_t lda, const T *B, size_t ldb, T beta, T *C, size_t ldc)
{
    FN(gemm_run)(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL, 0, NULL, NULL, NULL, 0, NULL);
}

void FN(gemm_bias)(int ta, int tb, size_t M, size_t N, size_t K, T alpha, const T *A,
                   size_t lda, const T *B, size_t ldb, const T *bias, int relu, T *C, size_t ldc)
{
    FN(gemm_run)(ta, tb, M, N, K, alpha, A, lda, B, ldb, 0, C, ldc, bias, relu, NULL, NULL, NULL, 0, NULL);
}

void FN(gemm_mask)(int ta, int tb, size_t M, size_t N, size_t K, T alpha, const T *A,
                   size_t lda, const T *B, size_t ldb, T beta, T *C, size_t ldc, const T *mask,
                   size_t row_grain)
{
    FN(gemm_run)(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL, 0, mask, NULL, NULL, row_grain, NULL);
}

void FN(gemm_bias_copies)(int ta, int tb, size_t M, size_t N, size_t K, T alpha, const T *A, size_t lda,
                          const struct ParCopies *ca, const T *B, size_t ldb, const T *bias, int relu, T *C,
                          size_t ldc)
{
    FN(gemm_run)(ta, tb, M, N, K, alpha, A, lda, B, ldb, 0, C, ldc, bias, relu, NULL, ca, NULL, 0, NULL);
}

void FN(gemm_copies)(int ta, int tb, size_t M, size_t N, size_t K, T alpha, const T *A, size_t lda,
                     const T *B, size_t ldb, const struct ParCopies *cb, T beta, T *C, size_t ldc,
                     struct GemmRows *rows)
{
    FN(gemm_run)(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL, 0, NULL, NULL, cb, 0, rows);
}

#undef FN
#undef GEMM_UKR_FN
#undef GD_CAT3
#undef GD_CAT3_
#undef GD_CAT
#undef GD_CAT_
#undef T
#undef SFX
