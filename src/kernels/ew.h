/* kernels/ew: the elementwise kernel table, one per ISA (src/kernels/ew/), each filled
 * from one template compiled with that ISA's -m flags. Raw kernels assume valid input:
 * callers (math_kernels.c, autograd, optimizers) check shapes first; pointers need only
 * element alignment. Maps whose output is at least EW_STREAM_BYTES long write it with
 * non-temporal stores (it would not stay in cache anyway), so large ops run at memory
 * bandwidth; results are the same either way. */
#ifndef MINIDL_KERNELS_EW_H
#define MINIDL_KERNELS_EW_H

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
    /* Batch normalisation's per-channel passes (one contiguous run of a channel at a time):
     * cdot = sum (a[i] - ca) * (b[i] - cb), summed like sum (a centred sum of squares with
     * a = b, or a dot with a centred vector with ca = 0);
     * affine: y = s*x + c, then max(y, 0) when relu (y may alias x);
     * affine2: out = s*g + t*x + c, or out += that when acc. */
    double (*cdot_f32)(size_t n, const float *a, float ca, const float *b, float cb);
    double (*cdot_f64)(size_t n, const double *a, double ca, const double *b, double cb);
    void (*affine_f32)(size_t n, const float *x, float s, float c, float *y, int relu);
    void (*affine_f64)(size_t n, const double *x, double s, double c, double *y, int relu);
    void (*affine2_f32)(size_t n, float s, const float *g, float t, const float *x, float c, float *out, int acc);
    void (*affine2_f64)(size_t n, double s, const double *g, double t, const double *x, double c, double *out,
                        int acc);
    /* y = e^x for x <= 0, in double, within 1 ulp (libm's exp rounded to float gave the
     * same float for 2e7 values of -110 <= x <= 0); below -708, e^-708 (0 in a float);
     * NaN for NaN. Each element alike wherever it lies (a tail is padded to a vector);
     * y may be x.
     * The float32 cross-entropy's softmax: libm's exp cost 3.4 of its 5 us at 64 x 10. */
    void (*expneg_f64)(size_t n, const double *x, double *y);
};

/* The initialisers of one dtype's EwKernels entries from functions named <op>_<sfx>
 * (add_f32, ..., adam_f32): every table (ew_ref.c, ew_template.h) fills itself with it. */
#define EW_TABLE_DTYPE(sfx)                                                           \
    .bin_##sfx = {add_##sfx, sub_##sfx, mul_##sfx, div_##sfx, max_##sfx},             \
    .scal_##sfx = {sadd_##sfx, smul_##sfx}, .sum_##sfx = sum_##sfx,                   \
    .axpy_##sfx = axpy_##sfx, .relu_##sfx = relu_##sfx,                               \
    .relu_bwd_##sfx = relu_bwd_##sfx, .relu_bwd_set_##sfx = relu_bwd_set_##sfx,     \
    .adam_##sfx = adam_##sfx, .cdot_##sfx = cdot_##sfx, .affine_##sfx = affine_##sfx,  \
    .affine2_##sfx = affine2_##sfx
/* Every table: both dtypes' entries and the double-only ones. */
#define EW_TABLE {EW_TABLE_DTYPE(f32), EW_TABLE_DTYPE(f64), .expneg_f64 = expneg_f64}

/* Defined by src/kernels/ew/ew_<isa>.c and the reference ew_ref.c. */
extern const struct EwKernels ew_kernels_ref, ew_kernels_sse2, ew_kernels_avx2, ew_kernels_avx512;
/* The parallel table (ew/ew_par.c): every entry runs the current ISA's kernel over chunks. */
extern const struct EwKernels ew_kernels_par;

#endif
