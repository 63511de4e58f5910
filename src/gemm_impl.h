/* gemm_impl: the register-tiled micro-kernel template shared by src/gemm_<isa>.c.
 *
 * Each ISA file instantiates GEMM_UKR once per dtype with its vector type V of W lanes,
 * the intrinsic prefix and suffix (_mm512_ and _ps make _mm512_loadu_ps, ...) and an
 * FMA(a, b, c) = a*b + c. The
 * kernel keeps an MR x (NV*W) tile of C in MR*NV vector registers; every k step loads
 * NV vectors of the packed B panel and broadcasts MR elements of A into FMAs (with
 * AVX-512 the broadcast folds into the FMA as an embedded broadcast).
 *
 * Contract (struct GemmKernels in kernels.h): A(i, p) = a[i + p*csa] (csa = MR for a
 * packed panel, lda when A^T is read in place), B(p, j) = b[p*NR + j], and
 * C[i*ldc + j] = alpha * sum_p A(i,p) B(p,j) + beta * C[i*ldc + j], C not read when
 * beta == 0. */
#ifndef MINIDL_GEMM_IMPL_H
#define MINIDL_GEMM_IMPL_H

#include "kernels.h"

/* Largest pack buffers any ISA's blocking may ask for (gemm.c holds them as
 * thread-local arrays: no heap use per call). */
#define GEMM_PACK_A_BYTES ((size_t)512 << 10)
#define GEMM_PACK_B_BYTES ((size_t)4 << 20)
#define GEMM_MAX_TILE 512 /* mr * nr elements, for the edge-tile temporary */

#define GEMM_UNROLL _Pragma("GCC unroll 32")

#define GEMM_UKR(NAME, T, MR, NV, V, W, P, S, FMA)                                                            \
    static void NAME(size_t k, const T *restrict a, size_t csa, const T *restrict b,         \
                     T *restrict c, size_t ldc, T alpha, T beta)                             \
    {                                                                                        \
        V acc[MR][NV];                                                                       \
        GEMM_UNROLL for (int i = 0; i < MR; i++)                                             \
            GEMM_UNROLL for (int v = 0; v < NV; v++) acc[i][v] = P##setzero##S();                    \
        for (size_t p = 0; p < k; p++) {                                                     \
            V bv[NV];                                                                        \
            GEMM_UNROLL for (int v = 0; v < NV; v++) bv[v] = P##loadu##S(b + v * W);               \
            GEMM_UNROLL for (int i = 0; i < MR; i++) {                                       \
                V ai = P##set1##S(a[i]);                                                          \
                GEMM_UNROLL for (int v = 0; v < NV; v++) acc[i][v] = FMA(ai, bv[v], acc[i][v]); \
            }                                                                                \
            a += csa;                                                                        \
            b += NV * W;                                                                     \
        }                                                                                    \
        V va = P##set1##S(alpha);                                                                 \
        if (beta == 0) {                                                                     \
            GEMM_UNROLL for (int i = 0; i < MR; i++)                                         \
                GEMM_UNROLL for (int v = 0; v < NV; v++)                                     \
                    P##storeu##S(c + i * ldc + v * W, P##mul##S(va, acc[i][v]));                        \
        } else {                                                                             \
            V vb = P##set1##S(beta);                                                              \
            GEMM_UNROLL for (int i = 0; i < MR; i++)                                         \
                GEMM_UNROLL for (int v = 0; v < NV; v++) {                                   \
                    T *cp = c + i * ldc + v * W;                                             \
                    P##storeu##S(cp, FMA(vb, P##loadu##S(cp), P##mul##S(va, acc[i][v])));                    \
                }                                                                            \
        }                                                                                    \
    }

#endif
