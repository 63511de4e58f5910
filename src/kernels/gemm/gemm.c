/* gemm: C = alpha*op(A)*op(B) + beta*C, BLIS style.
 *
 * Loops, outermost first: nc-wide column blocks of C; kc-deep slices of K, packing the
 * kc x nc block of op(B) into nr-wide panels (pack_b, L3/L2 resident); mc-tall blocks of
 * op(A), packed into mr-wide panels (pack_a, L2); then nr- and mr-wide micro-panels, one
 * register tile each, by the ISA's micro-kernel. Panels are zero-padded to mr / nr, so
 * the kernel always runs a full tile; an edge tile (or a C that is stored transposed)
 * goes through a small temporary. Pack buffers are thread-local arrays: no heap.
 *
 * Everything is written once over matrix views, element (i, j) at p[i*rs + j*cs], so
 * transposes are only strides; the generic part is instantiated for float and double. */
#include "kernels/dispatch.h"
#include "kernels/gemm.h"
#include "kernels/ew.h"
#include "math_kernels.h"
#include "threads.h"
#include "utils.h"

#include <string.h>

#define GEMM_REF(T, sfx)                                                                     \
    void gemm_ref_##sfx(int ta, int tb, size_t M, size_t N, size_t K, T alpha, const T *A,   \
                        size_t lda, const T *B, size_t ldb, T beta, T *C, size_t ldc)        \
    {                                                                                        \
        for (size_t i = 0; i < M; i++)                                                       \
            for (size_t j = 0; j < N; j++) {                                                 \
                T s = 0;                                                                     \
                for (size_t k = 0; k < K; k++)                                               \
                    s += (ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]); \
                C[i * ldc + j] = alpha * s + (beta == 0 ? 0 : beta * C[i * ldc + j]);        \
            }                                                                                \
    }
GEMM_REF(float, f32)
GEMM_REF(double, f64)

static _Thread_local union {
    _Alignas(64) float f32[GEMM_PACK_A_BYTES / sizeof(float)];
    double f64[GEMM_PACK_A_BYTES / sizeof(double)];
} pack_a;
static _Thread_local union {
    _Alignas(64) float f32[GEMM_PACK_B_BYTES / sizeof(float)];
    double f64[GEMM_PACK_B_BYTES / sizeof(double)];
} pack_b;
static _Thread_local union {
    _Alignas(64) float f32[GEMM_MAX_TILE];
    double f64[GEMM_MAX_TILE];
} tile;

static size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }

/* The dot-product path's K chunk: the outer loop's tile rows stay in L1 while the inner
 * loop runs over all of the other operand's rows, which stay in L2. A long chunk pays:
 * each chunk ends in a reduction of the tiles' sums into C. */
#define DOT_L1_BYTES ((size_t)24 << 10)
#define DOT_L2_BYTES ((size_t)512 << 10)
static size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }
/* The packed dot kernel when at least this many row tiles reread each panel of B (its
 * pack pass cost 20% at 2, 8 x 9 x 50176, and 10% at 4, 16 x 72 x 12544) and B makes
 * at most this many panels: measured at 16 row tiles, it gains 16% on 64 x 10 x 3136
 * and 5% on 64 x 10 x 128, and loses 3% on 64 x 128 x 784 (13 panels). */
#define DOT_PACK_ROW_TILES 8
#define DOT_PACK_PANELS 2

/* The packing policy of a block of A or B (gemm_driver.h's pack_block): which of its
 * micro-panels are packed, and which are read in place where they lie. */
enum gemm_pack {
    PACK_ALL,     /* every panel packed */
    PACK_RAGGED,  /* full panels (unit stride) read in place, a ragged last one packed */
    PACK_NONE,    /* every panel read in place: the per-row-count kernels read only the
                   * rows of a ragged one */
    PACK_NONE_RM, /* A read in place row-major, by the rows_rm kernels */
};

/* The paths of a call (gemm_driver.h). */
enum { GEMM_DOT, GEMM_SMALL, GEMM_BLOCKED };
/* Below this many flops a call runs on one thread: a parallel job costs microseconds. */
#define GEMM_PAR_MIN_FLOPS 400000.0

#define T float
#define SFX f32
#include "gemm_driver.h"
#define T double
#define SFX f64
#include "gemm_driver.h"

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
