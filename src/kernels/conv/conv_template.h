/* conv_template: the direct convolution kernels of one sample (struct ConvKernels in
 * kernels/conv.h), written once against a small vector vocabulary. A per-ISA file
 * (conv_sse2.c, conv_avx2.c, conv_avx512.c) defines, for one element type, the macros
 * below and includes this file; it does so twice (float, double) and then writes
 * CONV_DEFINE_TABLE(isa). The shared vocabulary comes from simd/<isa>.h; each include
 * #undefs the conv-specific macros.
 *
 *   T, SFX, V, EPR     element type, its suffix (f32 / f64), vector type, lanes
 *   VLOAD VSTORE VSET1 VZERO VADD VFMA   as in ew_template.h
 *   VLOAD_PART(p, n)       the first n lanes from p, the others zero (1 <= n <= EPR)
 *   VSTORE_PART(p, v, n)   stores the first n lanes of v to p
 *   CONV_FWD_ACC     accumulator registers of a forward tile (out channels x vectors)
 *   CONV_WG_OB, CONV_WG_TB   weight-gradient tile: out channels (a power of two) x taps (any
 *                            count; the last taps of a row in powers of two up to 4)
 *   CONV_IG_ACC      accumulator registers of an input-gradient tile (taps x vectors)
 *   VDEINT2(a, b, ev, od)  ev, od = the even and odd elements of the 2*EPR in a, b
 *   VINT2(ev, od, a, b)    its inverse
 *   VFOLD_ADD(p, v)        p[0..PL) += v folded to CONV_PART_BYTES (lane i gets the sum of
 *                          the lanes congruent to i), PL = CONV_PART_BYTES / sizeof(T)
 *   VFOLD4_ADD(p, a, b, c, d)   optional: VFOLD_ADD of a, b, c, d into p, p + PL, p + 2*PL,
 *                          p + 3*PL at once (a transposing tree: fewer shuffles and stores)
 *
 * Every tile works on whole vectors of an output row: the input side (xs, gxs) has room
 * and zeros past the row, only the output and its gradient (NCHW rows of Wo) use the
 * partial loads and stores. Tile sizes are powers of two; a remainder is covered by
 * smaller tiles, each a constant-size instance so its accumulators stay in registers. */
#include <stddef.h>

#ifndef CONV_TEMPLATE_ONCE
#define CONV_TEMPLATE_ONCE
#define CV_CAT_(a, b) a##_##b
#define CV_CAT(a, b) CV_CAT_(a, b)
#define CV_INLINE static inline __attribute__((always_inline))
#define CV_UNROLL _Pragma("GCC unroll 32")
#define CV_TABLE_DTYPE(sfx)                                                                 \
    .lanes_##sfx = conv_lanes_##sfx, .fwd_##sfx = conv_fwd_##sfx, .wgrad_##sfx = conv_wgrad_##sfx, \
    .igrad_##sfx = conv_igrad_##sfx, .split_##sfx = conv_split_##sfx, .unsplit_##sfx = conv_unsplit_##sfx, \
    .unsplit_mask_##sfx = conv_unsplit_mask_##sfx, .unsplit_smask_##sfx = conv_unsplit_smask_##sfx, \
    .pad_grad_##sfx = conv_pad_grad_##sfx
#define CONV_DEFINE_TABLE(isa) \
    const struct ConvKernels conv_kernels_##isa = {CV_TABLE_DTYPE(f32), CV_TABLE_DTYPE(f64)}
/* The largest power of two <= n and <= cap (cap a power of two, n >= 1). */
static inline size_t cv_pow2_tile(size_t n, size_t cap)
{
    size_t t = cap;
    while (t > n) t >>= 1;
    return t;
}
/* One block of N_ (a power of two) output channels or taps across the rows, given tile's
 * leading arguments: rows in pairs when a row is one vector, an odd last row alone. ACC
 * accumulators allow N_ up to ACC / 2 for two vectors a row, ACC for one. */
#define CV_ROWS(tile, ACC, N_, ...)                                                          \
    do {                                                                                     \
        enum { N2 = N_ <= (ACC) / 2 ? N_ : 1, N1 = N_ <= (ACC) ? N_ : 1 };                    \
        if (nv == 2) {                                                                       \
            tile(__VA_ARGS__, 0, Ho, col, tail, N2, 1, 2);                                   \
        } else if (pairs) {                                                                  \
            tile(__VA_ARGS__, 0, Ho & ~(size_t)1, col, tail, N2, 2, 1);                      \
            if (Ho & 1) tile(__VA_ARGS__, Ho - 1, Ho, col, tail, N2, 1, 1);                  \
        } else {                                                                             \
            tile(__VA_ARGS__, 0, Ho, col, tail, N1, 1, 1);                                   \
        }                                                                                    \
    } while (0)
/* n (a power of two <= 16) as a constant for CALL */
#define CV_POW2_SWITCH(n, CALL)                                                              \
    switch (n) {                                                                             \
    case 1: CALL(1); break;                                                                  \
    case 2: CALL(2); break;                                                                  \
    case 4: CALL(4); break;                                                                  \
    case 8: CALL(8); break;                                                                  \
    case 16: CALL(16); break;                                                                \
    }
/* Every data row (c, ih) of one sample: at, its offset in x (NCHW); sat, the offset of
 * its slot row (c, ih + pad) in xs. A column block at a time walks all rows (the
 * block's lane counts are the same for each), so the per-row work is a few vector
 * operations. The dims are read into locals first: a vector store may alias anything. */
#define CV_EACH_ROW(d, ...)                                                                  \
    for (size_t c_ = 0, C_ = (d)->C, H_ = (d)->H, W_ = (d)->W, row_ = (d)->stride * (d)->len,  \
                plane_ = (d)->rows * row_, sat0_ = (d)->lead + (d)->pad * row_;               \
         c_ < C_; c_++)                                                                      \
        for (size_t ih_ = 0, at = c_ * H_ * W_, sat = sat0_ + c_ * plane_; ih_ < H_;          \
             ih_++, at += W_, sat += row_) {                                                 \
            __VA_ARGS__                                                                      \
        }
#endif

#define FN(name) CV_CAT(name, SFX)
#define PL (CONV_PART_BYTES / sizeof(T))
enum { FN(conv_lanes) = EPR };

/* The first n lanes from p (0 <= n <= EPR), the others zero */
CV_INLINE V FN(load_n)(const T *p, size_t n) { return n == EPR ? VLOAD(p) : n ? VLOAD_PART(p, n) : VZERO(); }

/* ---- forward: y[o][oh][col..] = b[o] + sum_t wt[t][o] xs(oh, t)[col..] ----
 * A tile is OB output channels x R rows x NV vectors (R*NV <= 2): each loaded input
 * vector feeds OB FMAs and each broadcast weight R*NV, so loads stay below the FMAs. */

CV_INLINE void FN(fwd_tile)(const struct ConvDims *d, const T *xs, const T *wt, const T *b, T *y, size_t oh0,
                            size_t oh1, size_t col, size_t tail, const int OB, const int R, const int NV)
{
    const size_t K = d->K, O = d->O, HW = d->Ho * d->Wo, Wo = d->Wo, step = d->row_step;
    const size_t *off = d->off;
    for (size_t oh = oh0; oh < oh1; oh += R) {
        V acc[CONV_FWD_ACC][2];
        CV_UNROLL for (int o = 0; o < OB; o++) {
            V bv = b ? VSET1(b[o]) : VZERO();
            CV_UNROLL for (int p = 0; p < R * NV; p++) acc[o][p] = bv;
        }
        const T *xr = xs + oh * step + col, *wr = wt;
        for (size_t t = 0; t < K; t++, wr += O) {
            const T *src = xr + off[t];
            V xv[2];
            CV_UNROLL for (int p = 0; p < R * NV; p++) xv[p] = VLOAD(src + (p / NV) * step + (p % NV) * EPR);
            CV_UNROLL for (int o = 0; o < OB; o++) {
                V wv = VSET1(wr[o]);
                CV_UNROLL for (int p = 0; p < R * NV; p++) acc[o][p] = VFMA(wv, xv[p], acc[o][p]);
            }
        }
        if (d->relu) CV_UNROLL for (int o = 0; o < OB; o++) CV_UNROLL for (int p = 0; p < R * NV; p++)
            acc[o][p] = VMAX(acc[o][p], VZERO());
        CV_UNROLL for (int o = 0; o < OB; o++) CV_UNROLL for (int p = 0; p < R * NV; p++) {
            T *dst = y + o * HW + (oh + p / NV) * Wo + col + (p % NV) * EPR;
            if (p % NV == NV - 1) VSTORE_PART(dst, acc[o][p], tail);
            else VSTORE(dst, acc[o][p]);
        }
    }
}

static void FN(fwd_block)(const struct ConvDims *d, const T *xs, const T *wt, const T *b, T *y,
                          size_t col, size_t tail, size_t ob, int nv, int pairs)
{
    size_t Ho = d->Ho;
#define CV_FWD_CALL(OB_) CV_ROWS(FN(fwd_tile), CONV_FWD_ACC, OB_, d, xs, wt, b, y)
    CV_POW2_SWITCH(ob, CV_FWD_CALL)
#undef CV_FWD_CALL
}

static void FN(conv_fwd)(const struct ConvDims *d, const T *xs, const T *wt, const T *b, T *y)
{
    size_t nvec = (d->Wo + EPR - 1) / EPR, HW = d->Ho * d->Wo;
    for (size_t v0 = 0; v0 < nvec; v0 += 2) {
        int nv = nvec - v0 >= 2 ? 2 : 1, pairs = nv == 1 && d->Ho > 1;
        size_t tail = v0 + nv == nvec ? d->Wo - (nvec - 1) * EPR : EPR;
        for (size_t o = 0, ob; o < d->O; o += ob) {
            ob = cv_pow2_tile(d->O - o, nv == 2 || pairs ? CONV_FWD_ACC / 2 : CONV_FWD_ACC);
            FN(fwd_block)(d, xs, wt + o, b ? b + o : NULL, y + o * HW, v0 * EPR, tail, ob, nv, pairs);
        }
    }
}

/* ---- the output gradient in rows of whole vectors (kernels/conv.h): aligned loads, no tails ---- */

static inline size_t FN(grad_vecs)(const struct ConvDims *d) { return (d->Wo + EPR - 1) / EPR; }

static void FN(conv_pad_grad)(const struct ConvDims *d, const T *g, const T *mask, T *gp)
{
    size_t Wo = d->Wo, Wp = FN(grad_vecs)(d) * EPR, n = d->O * d->Ho;
    for (size_t i = 0; i < Wo; i += EPR) {
        size_t k = Wo - i < EPR ? Wo - i : EPR;
        for (size_t r = 0; r < n; r++) {
            V v = FN(load_n)(g + r * Wo + i, k);
            if (mask) v = VSEL_GT0(FN(load_n)(mask + r * Wo + i, k), v);
            VSTORE(gp + r * Wp + i, v);
        }
    }
}

/* ---- weight gradient: part[o][t][0..PL) += folded lanes of sum_oh,ow g[o][oh][ow] xs(oh, t)[ow] ---- */

CV_INLINE void FN(wg_step)(const V *gv, const T *const *xp, size_t i, V acc[][CONV_WG_TB], const int OB,
                           const int TB)
{
    CV_UNROLL for (int t = 0; t < TB; t++) {
        V xv = VLOAD(xp[t] + i);
        CV_UNROLL for (int o = 0; o < OB; o++) acc[o][t] = VFMA(gv[o], xv, acc[o][t]);
    }
}

/* p[i*PL..(i+1)*PL) += the fold of v[i], i < n */
CV_INLINE void FN(wg_fold)(T *p, const V *v, const int n)
{
    int i = 0;
#ifdef VFOLD4_ADD
    for (; i + 4 <= n; i += 4) VFOLD4_ADD(p + i * PL, v[i], v[i + 1], v[i + 2], v[i + 3]);
#endif
    for (; i < n; i++) VFOLD_ADD(p + i * PL, v[i]);
}

/* One pointer per tap and per channel walks down the rows: the tile's offsets stay in
 * registers. */
CV_INLINE void FN(wg_tile)(const struct ConvDims *d, const T *xs, const T *g, T *part, T *partb,
                           const size_t *off, const int OB, const int TB)
{
    const size_t Wp = d->g_row, HW = d->Ho * Wp, Ho = d->Ho, K = d->K, step = d->row_step;
    const size_t nfull = Wp == d->Wo ? d->Wo / EPR : FN(grad_vecs)(d), tail = Wp == d->Wo ? d->Wo % EPR : 0;
    const T *xp[CONV_WG_TB], *gp[CONV_WG_OB];
    CV_UNROLL for (int t = 0; t < TB; t++) xp[t] = xs + off[t];
    CV_UNROLL for (int o = 0; o < OB; o++) gp[o] = g + o * HW;
    V acc[CONV_WG_OB][CONV_WG_TB], gv[CONV_WG_OB], accb[CONV_WG_OB];
    CV_UNROLL for (int o = 0; o < OB; o++) {
        accb[o] = VZERO();
        CV_UNROLL for (int t = 0; t < TB; t++) acc[o][t] = VZERO();
    }
    for (size_t oh = 0; oh < Ho; oh++) {
        for (size_t v = 0; v < nfull; v++) {
            CV_UNROLL for (int o = 0; o < OB; o++) gv[o] = VLOAD(gp[o] + v * EPR);
            FN(wg_step)(gv, xp, v * EPR, acc, OB, TB);
            if (partb) CV_UNROLL for (int o = 0; o < OB; o++) accb[o] = VADD(accb[o], gv[o]);
        }
        if (tail) {
            CV_UNROLL for (int o = 0; o < OB; o++) gv[o] = VLOAD_PART(gp[o] + nfull * EPR, tail);
            FN(wg_step)(gv, xp, nfull * EPR, acc, OB, TB);
            if (partb) CV_UNROLL for (int o = 0; o < OB; o++) accb[o] = VADD(accb[o], gv[o]);
        }
        CV_UNROLL for (int t = 0; t < TB; t++) xp[t] += step;
        CV_UNROLL for (int o = 0; o < OB; o++) gp[o] += Wp;
    }
    CV_UNROLL for (int o = 0; o < OB; o++) FN(wg_fold)(part + o * K * PL, acc[o], TB);
    if (partb) FN(wg_fold)(partb, accb, OB);
}

static void FN(wg_block)(const struct ConvDims *d, const T *xs, const T *g, T *part, T *partb, const size_t *off,
                         size_t ob, size_t tb)
{
#define CV_WG(OB_, TB_)                                                                       \
    if (ob == OB_ && tb == TB_) {                                                             \
        FN(wg_tile)(d, xs, g, part, partb, off, OB_ <= CONV_WG_OB ? OB_ : 1, TB_ <= CONV_WG_TB ? TB_ : 1); \
        return;                                                                               \
    }
#define CV_WG_ROW(OB_) CV_WG(OB_, 1) CV_WG(OB_, 2) CV_WG(OB_, 4) CV_WG(OB_, CONV_WG_TB)
    CV_WG_ROW(1) CV_WG_ROW(2) CV_WG_ROW(4)
#undef CV_WG_ROW
#undef CV_WG
}

/* The bias gradient's partial sums ride along with the first block of taps, whose tiles
 * load every row of g anyway. */
static void FN(conv_wgrad)(const struct ConvDims *d, const T *xs, const T *g, T *part, T *partb)
{
    size_t HW = d->Ho * d->g_row;
    for (size_t o = 0, ob; o < d->O; o += ob) {
        ob = cv_pow2_tile(d->O - o, CONV_WG_OB);
        for (size_t t = 0, tb; t < d->K; t += tb) {
            tb = d->K - t >= CONV_WG_TB ? CONV_WG_TB : cv_pow2_tile(d->K - t, 4);
            FN(wg_block)(d, xs, g + o * HW, part + (o * d->K + t) * PL, t || !partb ? NULL : partb + o * PL,
                         d->off + t, ob, tb);
        }
    }
}

/* ---- input gradient: gxs(oh, t)[col..] += sum_o w[o][t] g[o][oh][col..] ----
 * A tile is TB taps x R rows x NV vectors (R*NV <= 2), as the forward's. */

CV_INLINE void FN(ig_tile)(const struct ConvDims *d, const T *w, const T *g, T *gxs, size_t oh0, size_t oh1,
                           size_t col, size_t tail, const int TB, const int R, const int NV)
{
    const size_t K = d->K, O = d->O, Wp = FN(grad_vecs)(d) * EPR, HW = d->Ho * Wp, step = d->row_step;
    const size_t *off = d->off;
    for (size_t oh = oh0; oh < oh1; oh += R) {
        V acc[CONV_IG_ACC][2];
        CV_UNROLL for (int t = 0; t < TB; t++) CV_UNROLL for (int p = 0; p < R * NV; p++) acc[t][p] = VZERO();
        const T *gr = g + oh * Wp + col, *wr = w;
        (void)tail; /* g's rows are whole vectors */
        for (size_t o = 0; o < O; o++, gr += HW, wr += K) {
            V gv[2];
            CV_UNROLL for (int p = 0; p < R * NV; p++) gv[p] = VLOAD(gr + (p / NV) * Wp + (p % NV) * EPR);
            CV_UNROLL for (int t = 0; t < TB; t++) {
                V wv = VSET1(wr[t]);
                CV_UNROLL for (int p = 0; p < R * NV; p++) acc[t][p] = VFMA(wv, gv[p], acc[t][p]);
            }
        }
        T *dr = gxs + oh * step + col;
        CV_UNROLL for (int t = 0; t < TB; t++) CV_UNROLL for (int p = 0; p < R * NV; p++) {
            T *dst = dr + off[t] + (p / NV) * step + (p % NV) * EPR;
            VSTORE(dst, VADD(VLOAD(dst), acc[t][p]));
        }
    }
}

/* w and d are offset to the first tap of the block (d->off too) */
static void FN(ig_block)(const struct ConvDims *d, const T *w, const T *g, T *gxs, size_t col, size_t tail,
                         size_t tb, int nv, int pairs)
{
    size_t Ho = d->Ho;
#define CV_IG_CALL(TB_) CV_ROWS(FN(ig_tile), CONV_IG_ACC, TB_, d, w, g, gxs)
    CV_POW2_SWITCH(tb, CV_IG_CALL)
#undef CV_IG_CALL
}

static void FN(conv_igrad)(const struct ConvDims *d, const T *w, const T *g, T *gxs)
{
    size_t nvec = (d->Wo + EPR - 1) / EPR;
    struct ConvDims db = *d;
    for (size_t v0 = 0; v0 < nvec; v0 += 2) {
        int nv = nvec - v0 >= 2 ? 2 : 1, pairs = nv == 1 && d->Ho > 1;
        size_t tail = v0 + nv == nvec ? d->Wo - (nvec - 1) * EPR : EPR;
        for (size_t t = 0, tb; t < d->K; t += tb) {
            tb = cv_pow2_tile(d->K - t, nv == 2 || pairs ? CONV_IG_ACC / 2 : CONV_IG_ACC);
            db.off = d->off + t;
            FN(ig_block)(&db, w + t, g, gxs, v0 * EPR, tail, tb, nv, pairs);
        }
    }
}

/* ---- the split layout: one sample's x into xs, and its adjoint (kernels/conv.h) ----
 * Every position of xs is written (data, or zeros), so the buffer needs no clearing. */

/* Padded columns of phase r before the first data column. */
static inline size_t FN(lead_cols)(size_t r, size_t s, size_t p) { return r < p ? (p - r + s - 1) / s : 0; }

static void FN(zero)(T *p, size_t n)
{
    for (size_t i = 0; i < n; i += EPR) VSTORE(p + i, VZERO());
}

/* Every position of xs is written (data, or zeros), so the buffer needs no clearing. */
static void FN(conv_split)(const struct ConvDims *d, const T *x, T *xs)
{
    size_t s = d->stride, p = d->pad, L = d->len, W = d->W, row = s * L;
    FN(zero)(xs, d->lead);
    for (size_t c = 0; c < d->C; c++) {
        T *xc = xs + d->lead + c * d->rows * row;
        FN(zero)(xc, p * row);
        FN(zero)(xc + (d->H + p) * row, (d->rows - d->H - p) * row);
    }
    FN(zero)(xs + d->lead + d->C * d->rows * row, d->slack);
    if (s == 1) {
        for (size_t i = 0; i < L; i += EPR) {
            size_t n = i < W ? (W - i < EPR ? W - i : EPR) : 0;
            CV_EACH_ROW(d, VSTORE(xs + sat + i, FN(load_n)(x + at + i, n));)
        }
    } else if (s == 2) { /* even padded columns to slot p % 2, odd ones to the other */
        size_t ev = (p % 2) * L, od = ((p + 1) % 2) * L;
        for (size_t j = 0; j < L; j += EPR) {
            size_t r = 2 * j < W ? W - 2 * j : 0, na = r < EPR ? r : EPR, nb = r - na < EPR ? r - na : EPR;
            CV_EACH_ROW(d, V a = FN(load_n)(x + at + 2 * j, na); V b = FN(load_n)(x + at + 2 * j + EPR, nb);
                        V e; V o; VDEINT2(a, b, e, o); VSTORE(xs + sat + ev + j, e);
                        VSTORE(xs + sat + od + j, o);)
        }
    } else {
        CV_EACH_ROW(d, for (size_t r = 0; r < s; r++) for (size_t i = 0, lp = FN(lead_cols)(r, s, p); i < L; i++) {
            size_t col = (i + lp) * s + r; /* padded column */
            xs[sat + r * L + i] = col >= p && col - p < W ? x[at + col - p] : 0;
        })
    }
}

/* v, or (m not NULL) v where m > 0 and 0 elsewhere: a ReLU's mask applied on the way */
#define CV_MASK(m, i, v) ((m) ? VSEL_GT0(VLOAD((m) + (i)), v) : (v))

/* dst[0..n) (+)= v's first n lanes (0 < n <= EPR), masked by m (NCHW) */
CV_INLINE void FN(put_n)(T *dst, V v, size_t n, int overwrite, const T *m)
{
    if (n == EPR) {
        v = CV_MASK(m, 0, v);
        VSTORE(dst, overwrite ? v : VADD(v, VLOAD(dst)));
    } else {
        if (m) v = VSEL_GT0(VLOAD_PART(m, n), v);
        VSTORE_PART(dst, overwrite ? v : VADD(v, VLOAD_PART(dst, n)), n);
    }
}

/* mask: NCHW like gx; smask: split like gxs (at most one not NULL). Column blocks and
 * the row walk as in the split. */
CV_INLINE void FN(unsplit_impl)(const struct ConvDims *d, const T *gxs, T *gx, int overwrite, const T *mask,
                                const T *smask)
{
    size_t s = d->stride, p = d->pad, L = d->len, W = d->W;
    if (s == 1) {
        for (size_t i = 0; i < W; i += EPR) {
            size_t n = W - i < EPR ? W - i : EPR;
            CV_EACH_ROW(d, V v = CV_MASK(smask, sat + i, VLOAD(gxs + sat + i));
                        FN(put_n)(gx + at + i, v, n, overwrite, mask ? mask + at + i : NULL);)
        }
    } else if (s == 2) {
        size_t ev = (p % 2) * L, od = ((p + 1) % 2) * L;
        for (size_t j = 0; 2 * j < W; j += EPR) {
            size_t r = W - 2 * j, na = r < EPR ? r : EPR, nb = r - na < EPR ? r - na : EPR;
            CV_EACH_ROW(d, V e = CV_MASK(smask, sat + ev + j, VLOAD(gxs + sat + ev + j));
                        V o = CV_MASK(smask, sat + od + j, VLOAD(gxs + sat + od + j)); V a; V b;
                        VINT2(e, o, a, b); T *dst = gx + at + 2 * j; const T *m = mask ? mask + at + 2 * j : NULL;
                        FN(put_n)(dst, a, na, overwrite, m);
                        if (nb) FN(put_n)(dst + EPR, b, nb, overwrite, m ? m + EPR : NULL);)
        }
    } else {
        CV_EACH_ROW(d, for (size_t iw = 0; iw < W; iw++) {
            size_t r = (iw + p) % s, k = sat + r * L + (iw + p) / s - FN(lead_cols)(r, s, p);
            T v = gxs[k];
            if ((mask && !(mask[at + iw] > 0)) || (smask && !(smask[k] > 0))) v = 0;
            gx[at + iw] = overwrite ? v : gx[at + iw] + v;
        })
    }
}

static void FN(conv_unsplit)(const struct ConvDims *d, const T *gxs, T *gx, int overwrite)
{
    FN(unsplit_impl)(d, gxs, gx, overwrite, NULL, NULL);
}

static void FN(conv_unsplit_mask)(const struct ConvDims *d, const T *gxs, const T *mask, T *gx)
{
    FN(unsplit_impl)(d, gxs, gx, 1, mask, NULL);
}

static void FN(conv_unsplit_smask)(const struct ConvDims *d, const T *gxs, const T *xs, T *gx)
{
    FN(unsplit_impl)(d, gxs, gx, 1, NULL, xs);
}

#undef FN
#undef PL
#undef VLOAD_PART
#undef VSTORE_PART
#undef CONV_FWD_ACC
#undef CONV_WG_OB
#undef CONV_WG_TB
#undef CONV_IG_ACC
#undef VDEINT2
#undef VINT2
#undef VFOLD_ADD
#undef VFOLD4_ADD
#undef CV_MASK
