/* kernels/conv: the direct convolution kernel table, one per ISA
 * (src/kernels/conv/conv_<isa>.c, from conv_template.h). */
#ifndef MINIDL_KERNELS_CONV_H
#define MINIDL_KERNELS_CONV_H

#include <stddef.h>

/* Direct convolution of one sample (nn_layers.c builds the operands). The input is
 * zero-padded and split by column phase: for stride s, the slot (c, hp, r) of len
 * elements at xs + lead + ((c*rows + hp)*s + r)*len holds the padded columns r, r+s,
 * r+2s, ... of padded row hp of channel c, from its first data column on: the lp(r) =
 * ceil((pad-r)/s) leading padding columns (r < pad) sit at the end of the slot before,
 * which holds zeros there. Tap t = (c*kh + ki)*kw + kj of K = C*kh*kw then reads, for
 * output row oh, the contiguous run xs + oh*row_step + off[t] + ow (row_step = s*s*len,
 * off[t] = lead + ((c*rows + ki)*s + kj%s)*len + kj/s - lp(kj%s)). Kernels read whole
 * vectors, up to 2*lanes past the end of a run: the slack after the last slot and lead
 * (>= every lp) before the first keep those reads inside the buffer. Weights are
 * w[o][t] (PyTorch's layout); y is one sample's NCHW output (O x Ho x Wo). Its gradient
 * g comes to igrad in rows of whole vectors, gw = ceil(Wo/lanes)*lanes elements each
 * (O x Ho x gw, zero past Wo; pad_grad makes it), loaded aligned and unmasked; to wgrad
 * either so or NCHW (rows of Wo, d->g_row says which): the copy pays for itself only
 * when it is made anyway (a ReLU's mask) or feeds both. */
struct ConvDims {
    size_t O, K, Ho, Wo, row_step;
    const size_t *off;
    size_t C, H, W, stride, pad, rows, len, lead, slack;   /* the input and its split layout */
    int relu;   /* fwd stores max(0, y): a ReLU fused into the convolution */
    size_t g_row;   /* wgrad: elements between rows of g, Wo (NCHW) or gw (whole vectors) */
};
/* The weight gradient's partial sums per weight, in bytes: few enough to stay in L1. */
#define CONV_PART_BYTES 16
struct ConvKernels {
    int lanes_f32, lanes_f64;   /* vector lanes (the split layout's rows are whole vectors) */
    /* y = the convolution of xs with the weights, given transposed (wt[t*O + o]), + b
     * (b may be NULL) */
    void (*fwd_f32)(const struct ConvDims *d, const float *xs, const float *wt, const float *b, float *y);
    void (*fwd_f64)(const struct ConvDims *d, const double *xs, const double *wt, const double *b, double *y);
    /* part[(o*K + t)*pl + l] += partial sums (pl = CONV_PART_BYTES / element size, l < pl)
     * of the sum over oh, ow of g[o][oh][ow] xs(oh, t)[ow], and (partb not NULL)
     * partb[o*pl + l] += partial sums of the sum of g[o] */
    void (*wgrad_f32)(const struct ConvDims *d, const float *xs, const float *g, float *part, float *partb);
    void (*wgrad_f64)(const struct ConvDims *d, const double *xs, const double *g, double *part, double *partb);
    /* gxs += the adjoint of the forward (same layout as xs; lanes past Wo add zeros) */
    void (*igrad_f32)(const struct ConvDims *d, const float *w, const float *g, float *gxs);
    void (*igrad_f64)(const struct ConvDims *d, const double *w, const double *g, double *gxs);
    /* xs (lead + C*rows*s*len + slack elements, all written) = the split layout of one
     * sample's x (C x H x W) */
    void (*split_f32)(const struct ConvDims *d, const float *x, float *xs);
    void (*split_f64)(const struct ConvDims *d, const double *x, double *xs);
    /* gx (+)= the gradient gathered back from the split layout (= when overwrite) */
    void (*unsplit_f32)(const struct ConvDims *d, const float *gxs, float *gx, int overwrite);
    void (*unsplit_f64)(const struct ConvDims *d, const double *gxs, double *gx, int overwrite);
    /* gx = that gradient where mask > 0, else 0: a ReLU's backward fused into the copy */
    void (*unsplit_mask_f32)(const struct ConvDims *d, const float *gxs, const float *mask, float *gx);
    void (*unsplit_mask_f64)(const struct ConvDims *d, const double *gxs, const double *mask, double *gx);
    /* the same, with the mask in the split layout (as xs): xs > 0 where the input, a
     * ReLU's output, is; its padding is never copied out */
    void (*unsplit_smask_f32)(const struct ConvDims *d, const float *gxs, const float *xs, float *gx);
    void (*unsplit_smask_f64)(const struct ConvDims *d, const double *gxs, const double *xs, double *gx);
    /* gp (O x Ho x gw) = the NCHW gradient g in rows of whole vectors; where mask (NCHW like
     * g, or NULL) is not > 0, zero: a ReLU's backward on the way */
    void (*pad_grad_f32)(const struct ConvDims *d, const float *g, const float *mask, float *gp);
    void (*pad_grad_f64)(const struct ConvDims *d, const double *g, const double *mask, double *gp);
};
extern const struct ConvKernels conv_kernels_sse2, conv_kernels_avx2, conv_kernels_avx512;

#endif
