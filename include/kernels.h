/* kernels: the raw, dispatched kernel table (internal to the library).
 *
 * One table per ISA, each filled from one generic source compiled with that ISA's
 * -m flags; kernels_get() returns the table in use. Raw kernels assume valid input:
 * callers (math_kernels.c, autograd, optimizers) check shapes first. Pointers need only
 * element alignment (but for the dot_packed_* panel: 64 bytes). Maps whose output is at least EW_STREAM_BYTES long write it with
 * non-temporal stores (it would not stay in cache anyway), so large ops run at memory
 * bandwidth; results are the same either way. */
#ifndef MINIDL_KERNELS_H
#define MINIDL_KERNELS_H

#include <stddef.h>

#define EW_STREAM_BYTES ((size_t)8 << 20)

enum { EW_ADD, EW_SUB, EW_MUL, EW_DIV, EW_MAX, EW_BIN_COUNT };
enum { EW_SADD, EW_SMUL, EW_SCAL_COUNT };

struct EwKernels {
    void (*bin_f32[EW_BIN_COUNT])(size_t n, const float *a, const float *b, float *out);
    void (*bin_f64[EW_BIN_COUNT])(size_t n, const double *a, const double *b, double *out);
    void (*scal_f32[EW_SCAL_COUNT])(size_t n, const float *a, float s, float *out);
    void (*scal_f64[EW_SCAL_COUNT])(size_t n, const double *a, double s, double *out);
    double (*sum_f32)(size_t n, const float *a);
    double (*sum_f64)(size_t n, const double *a);
    void (*axpy_f32)(size_t n, float alpha, const float *x, float *y);   /* y += alpha*x */
    void (*axpy_f64)(size_t n, double alpha, const double *x, double *y);
    /* ReLU: out = max(x, 0) (0 for NaN); backward gx += (x > 0 ? g : 0), where x may be
     * ReLU's input or its output (both are > 0 at the same places). out may alias x. */
    void (*relu_f32)(size_t n, const float *x, float *out);
    void (*relu_f64)(size_t n, const double *x, double *out);
    void (*relu_bwd_f32)(size_t n, const float *x, const float *g, float *gx);
    void (*relu_bwd_f64)(size_t n, const double *x, const double *g, double *gx);
    /* gx = (x > 0 ? g : 0): the first and only write of a gradient, no zeroing needed */
    void (*relu_bwd_set_f32)(size_t n, const float *x, const float *g, float *gx);
    void (*relu_bwd_set_f64)(size_t n, const double *x, const double *g, double *gx);
    /* Adam, in place, exactly as PyTorch computes it (SPEC section 8):
     *   m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g*g;
     *   p -= step * (m / (sqrt(v)/bc2_sqrt + eps))
     * with the bias corrections precomputed per step t by the caller:
     *   step = lr / (1 - b1^t),  bc2_sqrt = sqrt(1 - b2^t). */
    void (*adam_f32)(size_t n, float *p, const float *g, float *m, float *v, float b1, float b2,
                     float step, float bc2_sqrt, float eps);
    void (*adam_f64)(size_t n, double *p, const double *g, double *m, double *v, double b1,
                     double b2, double step, double bc2_sqrt, double eps);
};

/* The initialisers of one dtype's EwKernels entries from functions named <op>_<sfx>
 * (add_f32, ..., adam_f32): every table (ew_ref.c, ew_template.h) fills itself with it. */
#define EW_TABLE_DTYPE(sfx)                                                           \
    .bin_##sfx = {add_##sfx, sub_##sfx, mul_##sfx, div_##sfx, max_##sfx},             \
    .scal_##sfx = {sadd_##sfx, smul_##sfx}, .sum_##sfx = sum_##sfx,                   \
    .axpy_##sfx = axpy_##sfx, .relu_##sfx = relu_##sfx,                               \
    .relu_bwd_##sfx = relu_bwd_##sfx, .relu_bwd_set_##sfx = relu_bwd_set_##sfx,     \
    .adam_##sfx = adam_##sfx

/* Register-tiled gemm micro-kernels of one ISA and their cache blocking (BLIS names:
 * an mr x nr register tile, kc-deep panels, mc x kc blocks of A, kc x nc blocks of B;
 * see gemm_impl.h for the layouts). The kernel computes, for i < m <= mr, j < n <= nr,
 *   C[i*ldc + j] = alpha * sum_p a[i + p*csa] * b[p*rsb + j] + beta * C[i*ldc + j]
 * (C not read when beta == 0); csa = mr and rsb = nr for packed panels. */
/* The micro-kernel contract above, one type per element type. */
typedef void gemm_ukr_f32_fn(size_t k, const float *a, size_t csa, const float *b, size_t rsb, float *C,
                             size_t ldc, size_t m, size_t n, float alpha, float beta);
typedef void gemm_ukr_f64_fn(size_t k, const double *a, size_t csa, const double *b, size_t rsb,
                             double *C, size_t ldc, size_t m, size_t n, double alpha, double beta);

struct GemmKernels {
    struct { int mr, nr, kc, mc, nc; } f32, f64;
    gemm_ukr_f32_fn *ukr_f32;
    gemm_ukr_f64_fn *ukr_f64;
    /* rows_*[r], 0 < r < mr: the primary kernel for exactly r rows (m == r), reading and
     * computing only those; NULL where an ISA has none. */
#define GEMM_MAX_ROWS 16
    gemm_ukr_f32_fn *rows_f32[GEMM_MAX_ROWS];
    gemm_ukr_f64_fn *rows_f64[GEMM_MAX_ROWS];
    /* rows_rm_*[r], 0 < r <= mr: the primary kernel for exactly r rows of a row-major A
     * read in place, A(i, p) = a[i*csa + p] (csa = lda); all NULL where an ISA has none. */
    gemm_ukr_f32_fn *rows_rm_f32[GEMM_MAX_ROWS];
    gemm_ukr_f64_fn *rows_rm_f64[GEMM_MAX_ROWS];
    /* A second register tile with the same contract and its own blocking, for shapes the
     * first fits badly (8 or 16 rows against a 14-row tile); gemm.c picks per call. */
    struct { int mr, nr, kc, mc, nc; } alt_f32, alt_f64;
    gemm_ukr_f32_fn *alt_ukr_f32;
    gemm_ukr_f64_fn *alt_ukr_f64;
    /* The dot-product kernel for A B^T with both operands K-contiguous, an mr x nr tile
     * of C from a k-deep slice of A's rows (a + i*lda) and B's (b + j*ldb), under the
     * micro-kernel contract: C = alpha * sum + beta * C for i < m, j < n (gemm.c runs K
     * in chunks, beta 1 after the first). */
    struct { int mr, nr; } dotsz_f32, dotsz_f64;
    gemm_ukr_f32_fn *dot_f32;
    gemm_ukr_f64_fn *dot_f64;
    /* Where an ISA has dot_pack_*, it lays out n <= dotpk.nr rows of B, k deep, as
     * (n + 1)/2 pairs at a 64-byte aligned dst for dot_packed_*[(n + 1)/2], which takes
     * that panel as b (ldb unused) and any number m of rows (dotpk.mr at a time): worth
     * it when many row tiles reread a panel. The panel holds (n + 1)/2 vectors per
     * half-vector of k, at most (nr + 1)/2 * (k + W) elements for W-lane vectors. */
#define GEMM_MAX_DOT_PAIRS 8
    struct { int mr, nr; } dotpk_f32, dotpk_f64;
    gemm_ukr_f32_fn *dot_packed_f32[GEMM_MAX_DOT_PAIRS + 1];
    gemm_ukr_f64_fn *dot_packed_f64[GEMM_MAX_DOT_PAIRS + 1];
    void (*dot_pack_f32)(float *dst, const float *b, size_t ldb, size_t n, size_t k);
    void (*dot_pack_f64)(double *dst, const double *b, size_t ldb, size_t n, size_t k);
    /* The transposing pack of a K-contiguous panel: dst[p*w_pad + i] = src[i*ld + p] for
     * i < w, p < k, and 0 for w <= i < w_pad; NULL where gemm.c's scalar loop serves. */
    void (*pack_t_f32)(float *dst, const float *src, size_t ld, size_t w, size_t w_pad, size_t k);
    void (*pack_t_f64)(double *dst, const double *src, size_t ld, size_t w, size_t w_pad, size_t k);
    /* The copying pack of a panel whose w elements are contiguous, rows ld apart:
     * dst[p*w_pad + i] = src[p*ld + i] for i < w, p < k, and 0 for w <= i < w_pad. */
    void (*pack_n_f32)(float *dst, const float *src, size_t ld, size_t w, size_t w_pad, size_t k);
    void (*pack_n_f64)(double *dst, const double *src, size_t ld, size_t w, size_t w_pad, size_t k);
};

struct ConvKernels;

/* Everything dispatched for one ISA path; gemm and conv are NULL on the reference path
 * (gemm then runs its reference loops, Conv2d its im2col + gemm path). */
struct KernelTable {
    int isa;
    const struct EwKernels *ew;
    const struct GemmKernels *gemm;
    const struct ConvKernels *conv;
};

const struct KernelTable *kernels_get(void);

/* Defined by the per-ISA files (src/ew_<isa>.c, src/gemm_<isa>.c) and the reference. */
extern const struct EwKernels ew_kernels_ref, ew_kernels_sse2, ew_kernels_avx2, ew_kernels_avx512;
extern const struct GemmKernels gemm_kernels_sse2, gemm_kernels_avx2, gemm_kernels_avx512;

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
