/* conv_template: the direct convolution kernels of one sample (struct ConvKernels in
 * kernels.h), written once against a small vector vocabulary. A per-ISA file
 * (conv_sse2.c, conv_avx2.c, conv_avx512.c) defines, for one element type, the macros
 * below and includes this file; it does so twice (float, double) and then writes
 * CONV_DEFINE_TABLE(isa). Each include #undefs the vocabulary.
 *
 *   T, SFX, V, EPR     element type, its suffix (f32 / f64), vector type, lanes
 *   VLOAD VSTORE VSET1 VZERO VADD VFMA   as in ew_template.h
 *   VLOAD_PART(p, n)       the first n lanes from p, the others zero (1 <= n <= EPR)
 *   VSTORE_PART(p, v, n)   stores the first n lanes of v to p
 *   CONV_FWD_ACC     accumulator registers of a forward tile (out channels x vectors)
 *   CONV_WG_OB, CONV_WG_TB   weight-gradient tile: out channels x taps
 *   CONV_IG_ACC      accumulator registers of an input-gradient tile (taps x vectors)
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
    .igrad_##sfx = conv_igrad_##sfx
#define CONV_DEFINE_TABLE(isa) \
    const struct ConvKernels conv_kernels_##isa = {CV_TABLE_DTYPE(f32), CV_TABLE_DTYPE(f64)}
/* The largest power of two <= n and <= cap (cap a power of two, n >= 1). */
static inline size_t cv_pow2_tile(size_t n, size_t cap)
{
    size_t t = cap;
    while (t > n) t >>= 1;
    return t;
}
#endif

#define FN(name) CV_CAT(name, SFX)
enum { FN(conv_lanes) = EPR };

/* ---- forward: y[o][oh][col..] = b[o] + sum_t w[o][t] xs(oh, t)[col..], OB x NV tile ---- */

CV_INLINE void FN(fwd_tile)(const struct ConvDims *d, const T *xs, const T *w, const T *b, T *y,
                            size_t col, size_t tail, const int OB, const int NV)
{
    size_t HW = d->Ho * d->Wo;
    for (size_t oh = 0; oh < d->Ho; oh++) {
        V acc[CONV_FWD_ACC][2];
        CV_UNROLL for (int o = 0; o < OB; o++) {
            V bv = b ? VSET1(b[o]) : VZERO();
            CV_UNROLL for (int v = 0; v < NV; v++) acc[o][v] = bv;
        }
        const T *xr = xs + oh * d->row_step + col;
        for (size_t t = 0; t < d->K; t++) {
            const T *src = xr + d->off[t];
            V xv[2];
            CV_UNROLL for (int v = 0; v < NV; v++) xv[v] = VLOAD(src + v * EPR);
            CV_UNROLL for (int o = 0; o < OB; o++) {
                V wv = VSET1(w[o * d->K + t]);
                CV_UNROLL for (int v = 0; v < NV; v++) acc[o][v] = VFMA(wv, xv[v], acc[o][v]);
            }
        }
        T *yr = y + oh * d->Wo + col;
        CV_UNROLL for (int o = 0; o < OB; o++) {
            CV_UNROLL for (int v = 0; v + 1 < NV; v++) VSTORE(yr + o * HW + v * EPR, acc[o][v]);
            VSTORE_PART(yr + o * HW + (NV - 1) * EPR, acc[o][NV - 1], tail);
        }
    }
}

static void FN(fwd_block)(const struct ConvDims *d, const T *xs, const T *w, const T *b, T *y,
                          size_t col, size_t tail, size_t ob, int nv)
{
#define CV_FWD(OB_)                                                                          \
    case OB_:                                                                                \
        if (nv == 2) FN(fwd_tile)(d, xs, w, b, y, col, tail, OB_ <= CONV_FWD_ACC / 2 ? OB_ : 1, 2); \
        else FN(fwd_tile)(d, xs, w, b, y, col, tail, OB_ <= CONV_FWD_ACC ? OB_ : 1, 1);                                \
        break;
    switch (ob) {
        CV_FWD(1) CV_FWD(2) CV_FWD(4) CV_FWD(8) CV_FWD(16)
    }
#undef CV_FWD
}

static void FN(conv_fwd)(const struct ConvDims *d, const T *xs, const T *w, const T *b, T *y)
{
    size_t nvec = (d->Wo + EPR - 1) / EPR, HW = d->Ho * d->Wo;
    for (size_t v0 = 0; v0 < nvec; v0 += 2) {
        int nv = nvec - v0 >= 2 ? 2 : 1;
        size_t tail = v0 + nv == nvec ? d->Wo - (nvec - 1) * EPR : EPR;
        for (size_t o = 0, ob; o < d->O; o += ob) {
            ob = cv_pow2_tile(d->O - o, CONV_FWD_ACC / nv);
            FN(fwd_block)(d, xs, w + o * d->K, b ? b + o : NULL, y + o * HW, v0 * EPR, tail, ob, nv);
        }
    }
}

/* ---- weight gradient: part[o][t][lane] += lanes of sum_oh,ow g[o][oh][ow] xs(oh, t)[ow] ---- */

CV_INLINE void FN(wg_step)(const V *gv, const T *xr, const size_t *off, V acc[][CONV_WG_TB],
                           const int OB, const int TB)
{
    CV_UNROLL for (int t = 0; t < TB; t++) {
        V xv = VLOAD(xr + off[t]);
        CV_UNROLL for (int o = 0; o < OB; o++) acc[o][t] = VFMA(gv[o], xv, acc[o][t]);
    }
}

CV_INLINE void FN(wg_tile)(const struct ConvDims *d, const T *xs, const T *g, T *part, const size_t *off,
                           const int OB, const int TB)
{
    size_t HW = d->Ho * d->Wo, nfull = d->Wo / EPR, tail = d->Wo % EPR;
    V acc[CONV_WG_OB][CONV_WG_TB], gv[CONV_WG_OB];
    CV_UNROLL for (int o = 0; o < OB; o++) CV_UNROLL for (int t = 0; t < TB; t++) acc[o][t] = VZERO();
    for (size_t oh = 0; oh < d->Ho; oh++) {
        const T *gr = g + oh * d->Wo, *xr = xs + oh * d->row_step;
        for (size_t v = 0; v < nfull; v++) {
            CV_UNROLL for (int o = 0; o < OB; o++) gv[o] = VLOAD(gr + o * HW + v * EPR);
            FN(wg_step)(gv, xr + v * EPR, off, acc, OB, TB);
        }
        if (tail) {
            CV_UNROLL for (int o = 0; o < OB; o++) gv[o] = VLOAD_PART(gr + o * HW + nfull * EPR, tail);
            FN(wg_step)(gv, xr + nfull * EPR, off, acc, OB, TB);
        }
    }
    CV_UNROLL for (int o = 0; o < OB; o++) CV_UNROLL for (int t = 0; t < TB; t++) {
        T *p = part + (o * d->K + t) * EPR;
        VSTORE(p, VADD(VLOAD(p), acc[o][t]));
    }
}

static void FN(wg_block)(const struct ConvDims *d, const T *xs, const T *g, T *part, const size_t *off,
                         size_t ob, size_t tb)
{
#define CV_WG(OB_, TB_) \
    if (ob == OB_ && tb == TB_) {                                                          \
        FN(wg_tile)(d, xs, g, part, off, OB_ <= CONV_WG_OB ? OB_ : 1, TB_ <= CONV_WG_TB ? TB_ : 1); \
        return;                                                                             \
    }
#define CV_WG_ROW(OB_) CV_WG(OB_, 1) CV_WG(OB_, 2) CV_WG(OB_, 4) CV_WG(OB_, 8)
    CV_WG_ROW(1) CV_WG_ROW(2) CV_WG_ROW(4)
#undef CV_WG_ROW
#undef CV_WG
}

static void FN(conv_wgrad)(const struct ConvDims *d, const T *xs, const T *g, T *part)
{
    size_t HW = d->Ho * d->Wo;
    for (size_t o = 0, ob; o < d->O; o += ob) {
        ob = cv_pow2_tile(d->O - o, CONV_WG_OB);
        for (size_t t = 0, tb; t < d->K; t += tb) {
            tb = cv_pow2_tile(d->K - t, CONV_WG_TB);
            FN(wg_block)(d, xs, g + o * HW, part + (o * d->K + t) * EPR, d->off + t, ob, tb);
        }
    }
}

/* ---- input gradient: gxs(oh, t)[col..] += sum_o w[o][t] g[o][oh][col..], TB x NV tile ---- */

CV_INLINE void FN(ig_tile)(const struct ConvDims *d, const T *w, const T *g, T *gxs, size_t t0,
                           size_t col, size_t tail, const int TB, const int NV)
{
    size_t HW = d->Ho * d->Wo;
    for (size_t oh = 0; oh < d->Ho; oh++) {
        V acc[CONV_IG_ACC][2];
        CV_UNROLL for (int t = 0; t < TB; t++) CV_UNROLL for (int v = 0; v < NV; v++) acc[t][v] = VZERO();
        const T *gr = g + oh * d->Wo + col;
        for (size_t o = 0; o < d->O; o++) {
            V gv[2];
            CV_UNROLL for (int v = 0; v + 1 < NV; v++) gv[v] = VLOAD(gr + o * HW + v * EPR);
            gv[NV - 1] = VLOAD_PART(gr + o * HW + (NV - 1) * EPR, tail);
            const T *wr = w + o * d->K + t0;
            CV_UNROLL for (int t = 0; t < TB; t++) {
                V wv = VSET1(wr[t]);
                CV_UNROLL for (int v = 0; v < NV; v++) acc[t][v] = VFMA(wv, gv[v], acc[t][v]);
            }
        }
        T *dr = gxs + oh * d->row_step + col;
        CV_UNROLL for (int t = 0; t < TB; t++) CV_UNROLL for (int v = 0; v < NV; v++) {
            T *p = dr + d->off[t0 + t] + v * EPR;
            VSTORE(p, VADD(VLOAD(p), acc[t][v]));
        }
    }
}

static void FN(ig_block)(const struct ConvDims *d, const T *w, const T *g, T *gxs, size_t t0, size_t col,
                         size_t tail, size_t tb, int nv)
{
#define CV_IG(TB_)                                                                           \
    case TB_:                                                                                \
        if (nv == 2) FN(ig_tile)(d, w, g, gxs, t0, col, tail, TB_ <= CONV_IG_ACC / 2 ? TB_ : 1, 2); \
        else FN(ig_tile)(d, w, g, gxs, t0, col, tail, TB_ <= CONV_IG_ACC ? TB_ : 1, 1);                               \
        break;
    switch (tb) {
        CV_IG(1) CV_IG(2) CV_IG(4) CV_IG(8) CV_IG(16)
    }
#undef CV_IG
}

static void FN(conv_igrad)(const struct ConvDims *d, const T *w, const T *g, T *gxs)
{
    size_t nvec = (d->Wo + EPR - 1) / EPR;
    for (size_t v0 = 0; v0 < nvec; v0 += 2) {
        int nv = nvec - v0 >= 2 ? 2 : 1;
        size_t tail = v0 + nv == nvec ? d->Wo - (nvec - 1) * EPR : EPR;
        for (size_t t = 0, tb; t < d->K; t += tb) {
            tb = cv_pow2_tile(d->K - t, CONV_IG_ACC / nv);
            FN(ig_block)(d, w, g, gxs, t, v0 * EPR, tail, tb, nv);
        }
    }
}

#undef FN
#undef T
#undef SFX
#undef V
#undef EPR
#undef VLOAD
#undef VSTORE
#undef VSET1
#undef VZERO
#undef VADD
#undef VFMA
#undef VLOAD_PART
#undef VSTORE_PART
#undef CONV_FWD_ACC
#undef CONV_WG_OB
#undef CONV_WG_TB
#undef CONV_IG_ACC
