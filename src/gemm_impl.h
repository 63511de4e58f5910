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
 * packed panel, lda when A^T is read in place), B(p, j) = b[p*rsb + j] (rsb = NR for a
 * packed panel, ldb when B is read in place), and for i < m, j < n
 * C[i*ldc + j] = alpha * sum_p A(i,p) B(p,j) + beta * C[i*ldc + j], C not read when
 * beta == 0. Rows and columns past m and n are computed (from whatever A and B hold
 * there) but never stored. */
#ifndef MINIDL_GEMM_IMPL_H
#define MINIDL_GEMM_IMPL_H

#include "kernels.h"

/* Largest pack buffers any ISA's blocking may ask for (gemm.c holds them as
 * thread-local arrays: no heap use per call). */
#define GEMM_PACK_A_BYTES ((size_t)512 << 10)
#define GEMM_PACK_B_BYTES ((size_t)4 << 20)
#define GEMM_MAX_TILE 512 /* mr * nr elements, for the edge-tile temporary */

#define GEMM_UNROLL _Pragma("GCC unroll 32")

/* The ISA file also gives MASK_T, MASK_N(r) (the first r lanes, 0 <= r <= W), MLOAD(m, p)
 * and MSTORE(p, m, v) for the partial columns of an edge tile. */
#define GEMM_UKR(NAME, T, MR, NV, V, W, P, S, FMA)                                           \
    static void NAME(size_t k, const T *restrict a, size_t csa, const T *restrict b,         \
                     size_t rsb, T *restrict c, size_t ldc, size_t m, size_t n, T alpha,     \
                     T beta)                                                                 \
    {                                                                                        \
        V acc[MR][NV];                                                                       \
        GEMM_UNROLL for (int i = 0; i < MR; i++)                                             \
            GEMM_UNROLL for (int v = 0; v < NV; v++) acc[i][v] = P##setzero##S();            \
        for (size_t p = 0; p < k; p++) {                                                     \
            V bv[NV];                                                                        \
            GEMM_UNROLL for (int v = 0; v < NV; v++) bv[v] = P##loadu##S(b + v * W);         \
            GEMM_UNROLL for (int i = 0; i < MR; i++) {                                       \
                V ai = P##set1##S(a[i]);                                                     \
                GEMM_UNROLL for (int v = 0; v < NV; v++) acc[i][v] = FMA(ai, bv[v], acc[i][v]); \
            }                                                                                \
            a += csa;                                                                        \
            b += rsb;                                                                        \
        }                                                                                    \
        V va = P##set1##S(alpha), vb = P##set1##S(beta);                                     \
        if (n == NV * W) {                                                                   \
            GEMM_UNROLL for (int i = 0; i < MR; i++) {                                       \
                if ((size_t)i >= m) break;                                                   \
                GEMM_UNROLL for (int v = 0; v < NV; v++) {                                   \
                    T *cp = c + i * ldc + v * W;                                             \
                    V r = P##mul##S(va, acc[i][v]);                                          \
                    P##storeu##S(cp, beta == 0 ? r : FMA(vb, P##loadu##S(cp), r));          \
                }                                                                            \
            }                                                                                \
            return;                                                                          \
        }                                                                                    \
        MASK_T mk[NV];                                                                       \
        GEMM_UNROLL for (int v = 0; v < NV; v++)                                             \
            mk[v] = MASK_N(n > (size_t)v * W ? (n - (size_t)v * W < W ? n - (size_t)v * W : W) : 0); \
        GEMM_UNROLL for (int i = 0; i < MR; i++) {                                           \
            if ((size_t)i >= m) break;                                                       \
            GEMM_UNROLL for (int v = 0; v < NV; v++) {                                       \
                T *cp = c + i * ldc + v * W;                                                 \
                V r = P##mul##S(va, acc[i][v]);                                              \
                MSTORE(cp, mk[v], beta == 0 ? r : FMA(vb, MLOAD(mk[v], cp), r));             \
            }                                                                                \
        }                                                                                    \
    }

#endif
