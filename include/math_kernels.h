/* math_kernels: elementwise ops, reductions and gemm, with run-time ISA dispatch.
 *
 * Tensor-level entry points check shapes and dtypes (panicking with both shapes) and
 * then call raw kernels through a table chosen once at start-up from
 * __builtin_cpu_supports: AVX-512, else AVX2+FMA, else SSE2. MINIDL_ISA=sse2|avx2|avx512
 * forces a path (a clear error if the CPU lacks it). Every fast kernel has a plain
 * scalar reference (ISA_REF) that the tests compare it with. */
#ifndef MINIDL_MATH_KERNELS_H
#define MINIDL_MATH_KERNELS_H

#include "tensor.h"
struct ParCopies;

enum { ISA_REF = 0, ISA_SSE2, ISA_AVX2, ISA_AVX512, ISA_COUNT };

const char *isa_name(int isa);              /* "ref", "sse2", "avx2", "avx512" */
int isa_from_name(const char *name);        /* -1 if unknown */
int kernels_isa_supported(int isa);         /* by this CPU */
int kernels_isa(void);                      /* the path in use (initialises on first call) */
void kernels_select(int isa);               /* force a path; panics if unsupported */

/* Elementwise: out = a op b. Shapes and dtypes must match; out may alias a or b.
 * Tensors must be contiguous. */
void ew_add(struct Tensor *out, const struct Tensor *a, const struct Tensor *b);
void ew_sub(struct Tensor *out, const struct Tensor *a, const struct Tensor *b);
void ew_mul(struct Tensor *out, const struct Tensor *a, const struct Tensor *b);
void ew_div(struct Tensor *out, const struct Tensor *a, const struct Tensor *b);
void ew_max(struct Tensor *out, const struct Tensor *a, const struct Tensor *b);
void ew_scalar_add(struct Tensor *out, const struct Tensor *a, double s);
void ew_scalar_mul(struct Tensor *out, const struct Tensor *a, double s);

/* out = sum (mean) of t over `axis`; out has t's shape without that axis
 * (a 1-D t gives an out of shape [1]), or t's shape with that axis kept as 1.
 * t and out are contiguous and distinct; the mean over an empty axis is NaN. */
void reduce_sum(const struct Tensor *t, uint64_t axis, struct Tensor *out);
void reduce_mean(const struct Tensor *t, uint64_t axis, struct Tensor *out);

/* C = alpha * op(A) * op(B) + beta * C, row-major, op(X) = X or X^T.
 * op(A) is M x K, op(B) is K x N, C is M x N; ld* are row strides in elements.
 * beta == 0 means C is not read (it may hold garbage or NaN). */
void gemm_f32(int trans_a, int trans_b, size_t M, size_t N, size_t K, float alpha,
              const float *A, size_t lda, const float *B, size_t ldb, float beta,
              float *C, size_t ldc);
void gemm_f64(int trans_a, int trans_b, size_t M, size_t N, size_t K, double alpha,
              const double *A, size_t lda, const double *B, size_t ldb, double beta,
              double *C, size_t ldc);
/* C = alpha * op(A) * op(B) + bias (the row vector bias, N long, added to every row;
 * none when NULL), then max(0, .) when relu: bit for bit, the rows of C set to the bias,
 * gemm with beta 1 and a ReLU pass, in one pass over C where the path allows (a Linear's
 * forward, fused with its ReLU). C is not read. */
void gemm_bias_f32(int trans_a, int trans_b, size_t M, size_t N, size_t K, float alpha,
                   const float *A, size_t lda, const float *B, size_t ldb, const float *bias, int relu,
                   float *C, size_t ldc);
void gemm_bias_f64(int trans_a, int trans_b, size_t M, size_t N, size_t K, double alpha,
                   const double *A, size_t lda, const double *B, size_t ldb, const double *bias, int relu,
                   double *C, size_t ldc);
/* gemm, then C = mask > 0 ? C : 0 (a ReLU's backward by its output, laid out as C with
 * row stride ldc; NULL: none), the pass run by each part of the gemm on its block while
 * it is in cache: bit for bit, gemm and a relu_bwd pass. row_grain > 0: where the call
 * is cut into parts, the parts are C's rows as par_run shares tasks of row_grain rows
 * (par_share_at), for a consumer that reads C by such tasks; the same bits either way. */
void gemm_mask_f32(int trans_a, int trans_b, size_t M, size_t N, size_t K, float alpha,
                   const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc,
                   const float *mask, size_t row_grain);
void gemm_mask_f64(int trans_a, int trans_b, size_t M, size_t N, size_t K, double alpha,
                   const double *A, size_t lda, const double *B, size_t ldb, double beta, double *C, size_t ldc,
                   const double *mask, size_t row_grain);
/* gemm_bias and gemm whose threads read one operand from copies of their own (threads.h
 * par_copy; NULL: none): op(A)'s for gemm_bias_copies, op(B)'s for gemm_copies, each
 * copy holding the operand's values with its layout. The same bits as without: a Linear
 * over a batch that each thread gathered whole (dataset.h batch_copies). */
void gemm_bias_copies_f32(int trans_a, int trans_b, size_t M, size_t N, size_t K, float alpha,
                          const float *A, size_t lda, const struct ParCopies *a_copies, const float *B,
                          size_t ldb, const float *bias, int relu, float *C, size_t ldc);
void gemm_bias_copies_f64(int trans_a, int trans_b, size_t M, size_t N, size_t K, double alpha,
                          const double *A, size_t lda, const struct ParCopies *a_copies, const double *B,
                          size_t ldb, const double *bias, int relu, double *C, size_t ldc);
/* gemm_copies, cut into parts by C's rows, tells `rows` (NULL: nobody) of each part's
 * rows as it finishes them, on the thread that wrote them, while they are in cache:
 * rows->done(rows, row, n) for rows [row, row + n), row a multiple of rows->grain; every
 * row once; and sets told. A call in one part (one thread, a small call), or whose cut
 * is not by C's rows (each thread would write part of every row), tells none and leaves
 * told 0: the caller does the rows' work after. For a parameter's update as its
 * gradient is written (a Linear's weight: autograd.h GradHook). */
struct GemmRows {
    void (*done)(const struct GemmRows *rows, size_t row, size_t n);
    size_t grain;
    int told;
};
void gemm_copies_f32(int trans_a, int trans_b, size_t M, size_t N, size_t K, float alpha, const float *A,
                     size_t lda, const float *B, size_t ldb, const struct ParCopies *b_copies, float beta,
                     float *C, size_t ldc, struct GemmRows *rows);
void gemm_copies_f64(int trans_a, int trans_b, size_t M, size_t N, size_t K, double alpha, const double *A,
                     size_t lda, const double *B, size_t ldb, const struct ParCopies *b_copies, double beta,
                     double *C, size_t ldc, struct GemmRows *rows);
/* Plain triple-loop references with the same contract. */
void gemm_ref_f32(int trans_a, int trans_b, size_t M, size_t N, size_t K, float alpha,
                  const float *A, size_t lda, const float *B, size_t ldb, float beta,
                  float *C, size_t ldc);
void gemm_ref_f64(int trans_a, int trans_b, size_t M, size_t N, size_t K, double alpha,
                  const double *A, size_t lda, const double *B, size_t ldb, double beta,
                  double *C, size_t ldc);
/* Tensor form of gemm on 2-D contiguous tensors of one dtype; checks shapes. */
void gemm(int trans_a, int trans_b, double alpha, const struct Tensor *A,
          const struct Tensor *B, double beta, struct Tensor *C);
/* out (M x N) = A (M x K) * B (K x N). */
void matmul(struct Tensor *out, const struct Tensor *A, const struct Tensor *B);

#endif
