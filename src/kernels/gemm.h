/* kernels/gemm: the gemm micro-kernel table, one per ISA (src/kernels/gemm/gemm_<isa>.c),
 * and the limits the driver (gemm.c) sizes its buffers by. Pointers need only element
 * alignment (but for the dot_packed_* panel: 64 bytes). */
#ifndef MINIDL_KERNELS_GEMM_H
#define MINIDL_KERNELS_GEMM_H

#include <stddef.h>

/* Register-tiled gemm micro-kernels of one ISA and their cache blocking (BLIS names:
 * an mr x nr register tile, kc-deep panels, mc x kc blocks of A, kc x nc blocks of B;
 * see gemm/gemm_ukr.h for the layouts). The kernel computes, for i < m <= mr, j < n <= nr,
 *   C[i*ldc + j] = alpha * sum_p a[i + p*csa] * b[p*rsb + j] + beta * C[i*ldc + j]
 * (C not read when beta == 0); csa = mr and rsb = nr for packed panels. */
/* The micro-kernel contract above, one type per element type. */
typedef void gemm_ukr_f32_fn(size_t k, const float *a, size_t csa, const float *b, size_t rsb, float *C,
                             size_t ldc, size_t m, size_t n, float alpha, float beta);
typedef void gemm_ukr_f64_fn(size_t k, const double *a, size_t csa, const double *b, size_t rsb,
                             double *C, size_t ldc, size_t m, size_t n, double alpha, double beta);

/* The dot kernels' contract: the micro-kernel's, then an epilogue on each stored value,
 * both parts optional: + bias[j] (bias != NULL), then max(0, .) (relu != 0). With beta
 * 0 and alpha 1 the sum is rounded once with the bias, as beta 1 over a C holding the
 * bias rounds it: a Linear's fused forward gives the bits of bias rows, gemm and ReLU. */
typedef void gemm_dot_f32_fn(size_t k, const float *a, size_t lda, const float *b, size_t ldb, float *C,
                             size_t ldc, size_t m, size_t n, float alpha, float beta, const float *bias, int relu);
typedef void gemm_dot_f64_fn(size_t k, const double *a, size_t lda, const double *b, size_t ldb, double *C,
                             size_t ldc, size_t m, size_t n, double alpha, double beta, const double *bias,
                             int relu);

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
     * dot contract: C = alpha * sum + beta * C (+ bias, ReLU) for i < m, j < n (gemm.c
     * runs K in chunks, beta 1 after the first, the bias on the first, the ReLU on the
     * last). */
    struct { int mr, nr; } dotsz_f32, dotsz_f64;
    gemm_dot_f32_fn *dot_f32;
    gemm_dot_f64_fn *dot_f64;
    /* Where an ISA has dot_pack_*, it lays out n <= dotpk.nr rows of B, k deep, as
     * (n + 1)/2 pairs at a 64-byte aligned dst for dot_packed_*[(n + 1)/2], which takes
     * that panel as b (ldb unused) and any number m of rows (dotpk.mr at a time): worth
     * it when many row tiles reread a panel. The panel holds (n + 1)/2 vectors per
     * half-vector of k, at most (nr + 1)/2 * (k + W) elements for W-lane vectors. */
#define GEMM_MAX_DOT_PAIRS 8
    struct { int mr, nr; } dotpk_f32, dotpk_f64;
    gemm_dot_f32_fn *dot_packed_f32[GEMM_MAX_DOT_PAIRS + 1];
    gemm_dot_f64_fn *dot_packed_f64[GEMM_MAX_DOT_PAIRS + 1];
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

/* Largest pack buffers any ISA's blocking may ask for (gemm.c holds them as
 * thread-local arrays: no heap use per call). */
#define GEMM_PACK_A_BYTES ((size_t)512 << 10)
#define GEMM_PACK_B_BYTES ((size_t)4 << 20)
#define GEMM_MAX_TILE 512 /* mr * nr elements, for the edge-tile temporary */

extern const struct GemmKernels gemm_kernels_sse2, gemm_kernels_avx2, gemm_kernels_avx512;

#endif
