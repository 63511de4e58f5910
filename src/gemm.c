/* gemm: C = alpha*op(A)*op(B) + beta*C. (Bootstrap version: the reference only.) */
#include "math_kernels.h"
#include "utils.h"

#define GEMM_REF(T, name)                                                                   \
    void name(int ta, int tb, size_t M, size_t N, size_t K, T alpha, const T *A, size_t lda, \
              const T *B, size_t ldb, T beta, T *C, size_t ldc)                              \
    {                                                                                       \
        for (size_t i = 0; i < M; i++)                                                      \
            for (size_t j = 0; j < N; j++) {                                                \
                T s = 0;                                                                    \
                for (size_t k = 0; k < K; k++)                                              \
                    s += (ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]); \
                C[i * ldc + j] = alpha * s + (beta == 0 ? 0 : beta * C[i * ldc + j]);       \
            }                                                                               \
    }
GEMM_REF(float, gemm_ref_f32)
GEMM_REF(double, gemm_ref_f64)

void gemm_f32(int ta, int tb, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
              const float *B, size_t ldb, float beta, float *C, size_t ldc)
{
    gemm_ref_f32(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm_f64(int ta, int tb, size_t M, size_t N, size_t K, double alpha, const double *A, size_t lda,
              const double *B, size_t ldb, double beta, double *C, size_t ldc)
{
    gemm_ref_f64(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

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
