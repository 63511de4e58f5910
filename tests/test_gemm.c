/* Tests of gemm (every ISA path against the triple-loop reference, both dtypes) and of
 * the tensor-level gemm and matmul with their shape panic. */
#include "test.h"
#include "kernels/dispatch.h"
#include "kernels/gemm.h"
#include "math_kernels.h"
#include "mem.h"
#include "tensor.h"
#include "threads.h"
#include "utils.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct GemmCase {
    int ta, tb;
    size_t M, N, K;
    double alpha, beta;
    size_t off, pad; /* pointers offset by `off` elements; leading dimensions + pad */
};

static const double alpha_beta[][2] = {{1, 0}, {0.5, 1}, {-1.5, 0.25}, {1, 1}};

#define GEMM_CHECK(T, sfx, EPS)                                                                \
    /* Runs one case through gemm_##sfx and the reference; C starts as NaN when beta is 0    \
     * (it must not be read) and the padding between rows must stay untouched. */             \
    static void check_##sfx(struct GemmCase c, struct Rng *r)                                  \
    {                                                                                          \
        size_t ra = c.ta ? c.K : c.M, ca = c.ta ? c.M : c.K;                                   \
        size_t rb = c.tb ? c.N : c.K, cb = c.tb ? c.K : c.N;                                   \
        size_t lda = ca + c.pad, ldb = cb + c.pad, ldc = c.N + c.pad;                          \
        size_t na = ra * lda + c.off, nb = rb * ldb + c.off, nc = c.M * ldc + c.off;           \
        T *ba = mem_alloc(na * sizeof(T) + 1), *bb = mem_alloc(nb * sizeof(T) + 1);            \
        T *bc = mem_alloc(nc * sizeof(T) + 1), *bw = mem_alloc(nc * sizeof(T) + 1);            \
        for (size_t i = 0; i < na; i++) ba[i] = (T)(2 * rng_uniform(r) - 1);                  \
        for (size_t i = 0; i < nb; i++) bb[i] = (T)(2 * rng_uniform(r) - 1);                  \
        for (size_t i = 0; i < nc; i++) bc[i] = c.beta == 0 ? (T)NAN : (T)(2 * rng_uniform(r) - 1); \
        memcpy(bw, bc, nc * sizeof(T));                                                        \
        T *A = ba + c.off, *B = bb + c.off, *C = bc + c.off, *want = bw + c.off;               \
        gemm_##sfx(c.ta, c.tb, c.M, c.N, c.K, (T)c.alpha, A, lda, B, ldb, (T)c.beta, C, ldc);  \
        gemm_ref_##sfx(c.ta, c.tb, c.M, c.N, c.K, (T)c.alpha, A, lda, B, ldb, (T)c.beta, want, ldc); \
        double tol = 4 * (double)(c.K + 2) * EPS, worst = 0;                                   \
        int pad_ok = 1;                                                                        \
        for (size_t i = 0; i < c.M; i++) {                                                     \
            worst = fmax(worst, test_max_err_##sfx(C + i * ldc, want + i * ldc, c.N, tol, tol)); \
            for (size_t j = c.N; j < ldc && i + 1 < c.M; j++)                                  \
                pad_ok &= memcmp(&C[i * ldc + j], &want[i * ldc + j], sizeof(T)) == 0;        \
        }                                                                                      \
        EXPECT_MSG(worst <= 1 && pad_ok, #sfx " ta=%d tb=%d %zux%zux%zu alpha=%g beta=%g off=%zu " \
                   "pad=%zu: error %g x tol, padding %s", c.ta, c.tb, c.M, c.N, c.K, c.alpha,   \
                   c.beta, c.off, c.pad, worst, pad_ok ? "intact" : "overwritten");            \
        mem_free(ba);                                                                          \
        mem_free(bb);                                                                          \
        mem_free(bc);                                                                          \
        mem_free(bw);                                                                          \
    }
GEMM_CHECK(float, f32, 1.2e-7)
GEMM_CHECK(double, f64, 2.3e-16)

static void check_both(struct GemmCase c, struct Rng *r)
{
    check_f32(c, r);
    check_f64(c, r);
}

/* The shapes plus block-boundary ones (K > kc, M > mc, N > nc, multiples of mr),
 * every transpose pair; alpha/beta rotate so the big shapes stay cheap. */
TEST_ISA(gemm_matches_reference_on_named_shapes)
{
    static const size_t shapes[][3] = {{1, 1, 1}, {17, 33, 9}, {64, 784, 128}, {127, 129, 65},
        {300, 200, 100}, {64, 10, 128}, {10, 128, 64}, {64, 128, 10}, {84, 20, 50},
        {336, 30, 70}, {200, 40, 600}, {3, 4100, 5}};
    struct Rng r;
    rng_seed(&r, 7);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 4; t++) {
            const double *ab = alpha_beta[(s + (size_t)t) % 4];
            struct GemmCase c = {t >> 1, t & 1, shapes[s][0], shapes[s][1], shapes[s][2], ab[0], ab[1], 0, 0};
            check_both(c, &r);
        }
}

/* A sample of M, N, K in the awkward sizes, with unaligned pointers and padded rows. */
TEST_ISA(gemm_matches_reference_on_odd_sizes)
{
    static const size_t sz[] = {0, 1, 3, 7, 8, 15, 16, 17, 31, 33};
    struct Rng r;
    rng_seed(&r, 11);
    for (size_t t = 0; t < 1000; t += 7) {
        const double *ab = alpha_beta[t % 4];
        struct GemmCase c = {(int)(t / 3 % 2), (int)(t / 5 % 2), sz[t / 100], sz[t / 10 % 10], sz[t % 10],
                             ab[0], ab[1], t % 2, t / 2 % 2 * 3};
        check_both(c, &r);
    }
}

/* The thirteen calls of one MLP and one CNN training step, with their transpose flags
 * (they select the dot-product, tiny-K and narrow paths), beta 0 and 1, unaligned. */
TEST_ISA(gemm_matches_reference_on_training_step_shapes)
{
    static const size_t shapes[][5] = {{0, 0, 8, 50176, 9}, {0, 1, 8, 9, 50176}, {0, 0, 16, 12544, 72},
        {0, 1, 16, 72, 12544}, {1, 0, 72, 12544, 16}, {0, 1, 64, 10, 3136}, {1, 0, 10, 3136, 64},
        {0, 0, 64, 3136, 10}, {0, 1, 64, 128, 784}, {1, 0, 128, 784, 64}, {0, 1, 64, 10, 128},
        {1, 0, 10, 128, 64}, {0, 0, 64, 128, 10}};
    struct Rng r;
    rng_seed(&r, 13);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const size_t *x = shapes[s];
        struct GemmCase c = {(int)x[0], (int)x[1], x[2], x[3], x[4], 1, (double)(s % 2), 1, 0};
        check_f32(c, &r);
        c.beta = 1 - c.beta;
        c.alpha = 0.5;
        c.pad = 3;
        check_f64(c, &r);
    }
}

/* A B^T: both sides of the dot-product path's limits (min(M, N) < 16, or <= 96 with
 * K >= 128), several K chunks with a ragged tail, every tile edge, the packed kernel's
 * second panel (N 15 and 20 on 33 or 64 rows). */
TEST_ISA(gemm_nt_dot_path_matches_reference)
{
    static const size_t shapes[][3] = {{96, 96, 128}, {97, 97, 128}, {96, 100, 127}, {15, 200, 5},
        {16, 200, 5}, {40, 50, 1001}, {1, 1, 3000}, {5, 9, 2049}, {9, 5, 777}, {3, 130, 300},
        {130, 3, 300}, {23, 17, 129}, {64, 15, 128}, {33, 20, 300}, {64, 20, 3136}};
    struct Rng r;
    rng_seed(&r, 17);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const double *ab = alpha_beta[s % 4];
        struct GemmCase c = {0, 1, shapes[s][0], shapes[s][1], shapes[s][2], ab[0], ab[1], s % 3, s % 2 * 5};
        check_both(c, &r);
    }
}

#define GEMM_EP_CHECK(T, sfx)                                                                  \
    /* The epilogues against their definitions, bit for bit, rows padded by pad (left     \
     * untouched): gemm_bias (mask 0) is C's rows set to the bias (none: beta 0), gemm    \
     * with beta 1, then x > 0 ? x : 0 where relu; gemm_mask (mask 1; with_bias, relu 0)  \
     * is gemm with beta, then x = mask > 0 ? x : 0 (mask of both signs and zeros). */      \
    static int gemm_ep_ok_##sfx(int ta, int tb, size_t M, size_t N, size_t K, T alpha, T beta, int with_bias, \
                                int relu, int mask, size_t pad, struct Rng *r)               \
    {                                                                                        \
        size_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;            \
        size_t na = (ta ? K : M) * lda + 1, nb = (tb ? N : K) * ldb + 1, nc = M * ldc;       \
        T *a = mem_alloc(na * sizeof(T)), *b = mem_alloc(nb * sizeof(T)), *bias = mem_alloc((N + 1) * sizeof(T)); \
        T *c = mem_alloc((nc + 1) * sizeof(T)), *want = mem_alloc((nc + 1) * sizeof(T));    \
        T *mk = mem_alloc((nc + 1) * sizeof(T));                                             \
        for (size_t i = 0; i < na; i++) a[i] = (T)(2 * rng_uniform(r) - 1);                  \
        for (size_t i = 0; i < nb; i++) b[i] = (T)(2 * rng_uniform(r) - 1);                  \
        for (size_t j = 0; j <= N; j++) bias[j] = (T)(2 * rng_uniform(r) - 1);               \
        for (size_t i = 0; i <= nc; i++) {                                                   \
            double u = rng_uniform(r);                                                       \
            mk[i] = u < 0.1 ? 0 : (T)(2 * u - 1);                                            \
            c[i] = want[i] = beta == 0 ? (T)NAN : (T)(i % 5);                                \
        }                                                                                    \
        if (!mask) beta = with_bias ? 1 : 0;                                                 \
        for (size_t i = 0; with_bias && i < M; i++) memcpy(want + i * ldc, bias, N * sizeof(T)); \
        gemm_##sfx(ta, tb, M, N, K, alpha, a, lda, b, ldb, beta, want, ldc);                 \
        for (size_t i = 0; i < M; i++)                                                       \
            for (size_t j = 0; j < N; j++) {                                                 \
                T *w = &want[i * ldc + j];                                                   \
                if (relu) *w = *w > 0 ? *w : 0;                                              \
                if (mask) *w = mk[i * ldc + j] > 0 ? *w : 0;                                 \
            }                                                                                \
        if (mask) gemm_mask_##sfx(ta, tb, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc, mk, 0); \
        else gemm_bias_##sfx(ta, tb, M, N, K, alpha, a, lda, b, ldb, with_bias ? bias : NULL, relu, c, ldc); \
        int ok = memcmp(c, want, (nc + 1) * sizeof(T)) == 0;                                 \
        mem_free(a), mem_free(b), mem_free(bias), mem_free(c), mem_free(want), mem_free(mk); \
        return ok;                                                                           \
    }
GEMM_EP_CHECK(float, f32)
GEMM_EP_CHECK(double, f64)

/* gemm_mask (a Linear's input gradient masked by the fused ReLU before it) on every
 * path, in one part and several, on C^T, beta 0 and 1, K = 0. */
TEST_ISA(gemm_mask_equals_gemm_then_relu_backward)
{
    static const size_t shapes[][5] = {{0, 0, 64, 128, 10}, {0, 0, 256, 128, 10}, {0, 0, 64, 3136, 10},
        {0, 1, 64, 128, 784}, {0, 1, 33, 20, 300}, {1, 1, 150, 9, 40}, {1, 1, 300, 9, 200}, {1, 0, 37, 64, 19},
        {0, 0, 7, 9, 0}};
    struct Rng r;
    rng_seed(&r, 37);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int beta = 0; beta < 2; beta++) {
            const size_t *x = shapes[s];
            EXPECT_MSG(gemm_ep_ok_f32(x[0], x[1], x[2], x[3], x[4], 1, (float)beta, 0, 0, 1, s % 3, &r),
                       "f32 %zux%zux%zu ta%zu tb%zu beta %d", x[2], x[3], x[4], x[0], x[1], beta);
            EXPECT_MSG(gemm_ep_ok_f64(x[0], x[1], x[2], x[3], x[4], 0.5, beta, 0, 0, 1, (s + 2) % 3, &r),
                       "f64 %zux%zux%zu ta%zu tb%zu beta %d", x[2], x[3], x[4], x[0], x[1], beta);
        }
}

/* gemm_bias (a Linear's forward, its bias and ReLU in the dot kernels' epilogue, else
 * around each part's block) on every path: the dot kernel in one K chunk or several (the
 * bias on the first chunk only, the ReLU on the last), its packed form, the blocked path
 * on C and on C^T (150 and 300 x 9), the small path, K = 0, alpha = 0; with and without
 * each part, unaligned rows. */
TEST_ISA(gemm_bias_equals_bias_rows_gemm_relu)
{
    static const size_t shapes[][5] = {{0, 1, 64, 128, 784}, {0, 1, 40, 50, 1001}, {0, 1, 5, 9, 2049},
        {0, 1, 64, 10, 128}, {0, 1, 33, 20, 300}, {0, 1, 64, 10, 3136}, {0, 1, 130, 150, 100},
        {0, 0, 64, 128, 10}, {1, 0, 37, 64, 19}, {0, 1, 3, 1, 1}, {0, 1, 7, 9, 0}, {0, 1, 256, 128, 128},
        {1, 1, 150, 9, 40}, {1, 1, 300, 9, 200}};
    struct Rng r;
    rng_seed(&r, 23);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int v = 0; v < 4; v++) {
            const size_t *x = shapes[s];
            int bias = v & 1, relu = v >> 1;
            double alpha = s == 9 && v == 3 ? 0 : s % 2 ? 0.5 : 1;
            EXPECT_MSG(gemm_ep_ok_f32(x[0], x[1], x[2], x[3], x[4], (float)alpha, 0, bias, relu, 0, s % 3, &r),
                       "f32 %zux%zux%zu ta%zu tb%zu bias %d relu %d", x[2], x[3], x[4], x[0], x[1], bias, relu);
            EXPECT_MSG(gemm_ep_ok_f64(x[0], x[1], x[2], x[3], x[4], alpha, 0, bias, relu, 0, (s + 1) % 3, &r),
                       "f64 %zux%zux%zu ta%zu tb%zu bias %d relu %d", x[2], x[3], x[4], x[0], x[1], bias, relu);
        }
}

/* The reference path (no gemm kernels) composes the same epilogues. */
TEST(gemm_bias_on_the_reference_path)
{
    int was = kernels_isa();
    kernels_select(ISA_REF);
    struct Rng r;
    rng_seed(&r, 29);
    for (int v = 0; v < 4; v++) {
        int bias = v & 1, relu = v >> 1;
        EXPECT_MSG(gemm_ep_ok_f32(0, 1, 9, 7, 33, 1, 0, bias, relu, 0, 1, &r), "f32 bias %d relu %d", bias, relu);
        EXPECT_MSG(gemm_ep_ok_f64(0, 1, 9, 7, 33, 1, 0, bias, relu, 0, 2, &r), "f64 bias %d relu %d", bias, relu);
        EXPECT_MSG(gemm_ep_ok_f32(0, 1, 3, 4, 0, 1, 0, bias, relu, 0, 0, &r), "f32 K 0 bias %d relu %d", bias, relu);
    }
    EXPECT(gemm_ep_ok_f32(0, 0, 9, 7, 33, 1, 0, 0, 0, 1, 1, &r)); /* gemm_mask */
    EXPECT(gemm_ep_ok_f64(1, 1, 9, 7, 33, 1, 1, 0, 0, 1, 0, &r));
    kernels_select(was);
}

/* The unpacked path for small calls (N a multiple of the tile width, A read in place):
 * ragged row counts, M past one block with short K, both A layouts, N up to 8 tiles. */
TEST_ISA(gemm_unpacked_small_calls_match_reference)
{
    static const size_t ms[] = {1, 13, 15, 29, 200}, ns[] = {32, 64, 96, 256}, ks[] = {1, 7, 16, 17, 100};
    struct Rng r;
    rng_seed(&r, 31);
    for (size_t t = 0; t < 5 * 4 * 5 * 2; t++) {
        const double *ab = alpha_beta[t % 4];
        struct GemmCase c = {(int)(t % 2), 0, ms[t / 40], ns[t / 10 % 4], ks[t / 2 % 5], ab[0], ab[1],
                             t / 3 % 2, t / 7 % 2 * 3};
        if (c.M > 64 && c.K > 16) continue;
        check_both(c, &r);
    }
}

#define UKR_CHECK(T, sfx, EPS)                                                                 \
    /* One m x n edge of an mr x nr tile by a register-tile kernel on packed panels (k   \
     * deep), C with row stride ldc = nr + 1; cells outside the edge must stay intact. */ \
    static int ukr_tile_ok_##sfx(void (*ukr)(size_t, const T *, size_t, const T *, size_t, T *, \
                                             size_t, size_t, size_t, T, T),             \
                                 size_t mr, size_t nr, size_t m, size_t n, T beta,          \
                                 struct Rng *r)                                             \
    {                                                                                        \
        enum { K = 19, CAP = 64 + 1 };                                                      \
        T a[K * 16], b[K * 64], c[16 * CAP], want[16 * CAP];                                 \
        size_t ldc = nr + 1;                                                                 \
        for (size_t i = 0; i < K * mr; i++) a[i] = (T)(2 * rng_uniform(r) - 1);              \
        for (size_t i = 0; i < K * nr; i++) b[i] = (T)(2 * rng_uniform(r) - 1);              \
        for (size_t i = 0; i < mr * ldc; i++) c[i] = want[i] = beta == 0 ? (T)NAN : (T)(i % 7) / 4; \
        for (size_t i = 0; i < m; i++)                                                       \
            for (size_t j = 0; j < n; j++) {                                                 \
                T acc = 0;                                                                   \
                for (size_t p = 0; p < K; p++) acc += a[p * mr + i] * b[p * nr + j];         \
                want[i * ldc + j] = (T)1.5 * acc + (beta == 0 ? 0 : beta * want[i * ldc + j]); \
            }                                                                                \
        ukr(K, a, mr, b, nr, c, ldc, m, n, (T)1.5, beta);                                    \
        int ok = 1;                                                                          \
        for (size_t i = 0; i < mr * ldc; i++)                                                \
            ok &= i / ldc < m && i % ldc < n ? fabs((double)c[i] - (double)want[i]) <= 64 * EPS \
                                             : memcmp(&c[i], &want[i], sizeof(T)) == 0;      \
        return ok;                                                                           \
    }                                                                                        \
                                                                                             \
    static void check_ukr_##sfx(void (*ukr)(size_t, const T *, size_t, const T *, size_t, T *, \
                                            size_t, size_t, size_t, T, T),              \
                                int mr, int nr, const char *name, struct Rng *r)             \
    {                                                                                        \
        for (size_t m = 1; m <= (size_t)mr; m++)                                             \
            for (size_t n = 1; n <= (size_t)nr; n++)                                         \
                EXPECT_MSG(ukr_tile_ok_##sfx(ukr, (size_t)mr, (size_t)nr, m, n, (T)(n % 2), r), \
                           "%s %zux%zu of %dx%d", name, m, n, mr, nr);                        \
    }                                                                                        \
                                                                                             \
    /* rows[r] for every edge row count r < mr, on every column edge. */                   \
    static void check_rows_##sfx(void (*const *rows)(size_t, const T *, size_t, const T *,  \
                                                     size_t, T *, size_t, size_t, size_t, T, T), \
                                 int mr, int nr, struct Rng *r)                             \
    {                                                                                        \
        for (size_t m = 1; m < (size_t)mr; m++) {                                            \
            EXPECT_MSG(rows[m] != NULL, #sfx " rows[%zu] of a %d-row tile missing", m, mr);  \
            for (size_t n = 1; rows[m] && n <= (size_t)nr; n++)                              \
                EXPECT_MSG(ukr_tile_ok_##sfx(rows[m], (size_t)mr, (size_t)nr, m, n, (T)(n % 2), r), \
                           #sfx " rows[%zu] %zux%zu of %dx%d", m, m, n, mr, nr);             \
        }                                                                                    \
    }
UKR_CHECK(float, f32, 1.2e-7)
UKR_CHECK(double, f64, 2.3e-16)

#define RM_CHECK(T, sfx, EPS)                                                                  \
    /* rows_rm[m] on an m x K row-major A read in place (row stride K + 2, unaligned)    \
     * against a packed B panel: every row count and column edge, C cells outside the    \
     * edge intact. */                                                                     \
    static int rm_tile_ok_##sfx(void (*ukr)(size_t, const T *, size_t, const T *, size_t, T *, \
                                            size_t, size_t, size_t, T, T),              \
                                size_t nr, size_t m, size_t n, T beta, struct Rng *r)         \
    {                                                                                        \
        enum { K = 13, LDA = K + 2, CAP = 64 + 1 };                                          \
        T a[16 * LDA + 1], b[K * 64], c[16 * CAP], want[16 * CAP];                           \
        size_t ldc = nr + 1;                                                                 \
        for (size_t i = 0; i < 16 * LDA + 1; i++) a[i] = (T)(2 * rng_uniform(r) - 1);       \
        for (size_t i = 0; i < K * nr; i++) b[i] = (T)(2 * rng_uniform(r) - 1);              \
        for (size_t i = 0; i < 16 * ldc; i++) c[i] = want[i] = beta == 0 ? (T)NAN : (T)(i % 7) / 4; \
        gemm_ref_##sfx(0, 0, m, n, K, (T)-0.5, a + 1, LDA, b, nr, beta, want, ldc);          \
        ukr(K, a + 1, LDA, b, nr, c, ldc, m, n, (T)-0.5, beta);                              \
        int ok = 1;                                                                          \
        for (size_t i = 0; i < 16 * ldc; i++)                                                \
            ok &= i / ldc < m && i % ldc < n ? fabs((double)c[i] - (double)want[i]) <= 64 * EPS \
                                             : memcmp(&c[i], &want[i], sizeof(T)) == 0;      \
        return ok;                                                                           \
    }                                                                                        \
                                                                                             \
    /* The ISA's rows_rm_##sfx for every row count up to mr, every column edge. */           \
    static void check_rm_##sfx(const struct GemmKernels *g, struct Rng *r)                   \
    {                                                                                        \
        for (size_t m = 1; m <= (size_t)g->sfx.mr; m++)                                      \
            for (size_t n = 1; n <= (size_t)g->sfx.nr; n++)                                  \
                EXPECT_MSG(rm_tile_ok_##sfx(g->rows_rm_##sfx[m], (size_t)g->sfx.nr, m, n, (T)(n % 2), r), \
                           #sfx " rows_rm[%zu] %zux%zu", m, m, n);                          \
    }
RM_CHECK(float, f32, 1.2e-7)
RM_CHECK(double, f64, 2.3e-16)

/* Both register tiles of the ISA in use (gemm picks one per call) and the primary tile's
 * per-row-count kernels on every edge. */
TEST_ISA(gemm_register_tiles_on_every_edge)
{
    const struct GemmKernels *g = kernels_get()->gemm;
    if (!g) return;
    struct Rng r;
    rng_seed(&r, 23);
    check_ukr_f32(g->ukr_f32, g->f32.mr, g->f32.nr, "ukr_f32", &r);
    check_ukr_f32(g->alt_ukr_f32, g->alt_f32.mr, g->alt_f32.nr, "alt_ukr_f32", &r);
    check_ukr_f64(g->ukr_f64, g->f64.mr, g->f64.nr, "ukr_f64", &r);
    check_ukr_f64(g->alt_ukr_f64, g->alt_f64.mr, g->alt_f64.nr, "alt_ukr_f64", &r);
    check_rows_f32(g->rows_f32, g->f32.mr, g->f32.nr, &r);
    check_rows_f64(g->rows_f64, g->f64.mr, g->f64.nr, &r);
}

/* The row-major-A kernels of the ISA in use (if it has them) for every row count up to
 * mr, every column edge, beta 0 (C NaN) and 1. */
TEST_ISA(gemm_row_major_a_kernels_on_every_edge)
{
    const struct GemmKernels *g = kernels_get()->gemm;
    if (!g || !g->rows_rm_f32[g->f32.mr]) return;
    struct Rng r;
    rng_seed(&r, 29);
    check_rm_f32(g, &r);
    check_rm_f64(g, &r);
}

/* A buffer of `bytes` that ends exactly at an inaccessible page: a kernel that reads
 * past its operand's last element faults (ASan does not see masked loads). */
struct Guarded { void *map; size_t len; };

static void *guarded_alloc(struct Guarded *g, size_t bytes)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE), span = (bytes + page - 1) / page * page;
    g->len = span + page;
    g->map = mmap(NULL, g->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g->map == MAP_FAILED || mprotect((char *)g->map + span, page, PROT_NONE)) {
        test_fail(__FILE__, __LINE__, "mmap/mprotect failed");
        exit(1);
    }
    return (char *)g->map + span - bytes;
}

static void guarded_free(struct Guarded *g) { munmap(g->map, g->len); }

#define DOT_KERNEL_CHECK(T, sfx, EPS)                                                          \
    /* One tile of m x n (m <= mr, n <= nr) by the ISA's dot kernel, in place or (packed)   \
     * through its pack into a NaN-filled panel (pads left unwritten would show), K split   \
     * at k1 into two calls as gemm.c chunks it: beta, then 1, with the epilogue's bias   \
     * (ep & 1) on the first and its ReLU (ep & 2) on the last. A's row m-1, B's row n-1   \
     * and the bias's n-th element end at an inaccessible page. */                           \
    static int dot_tile_ok_##sfx(const struct GemmKernels *g, int packed, size_t m, size_t n, \
                                 size_t k1, size_t k, T beta, int ep, struct Rng *r)         \
    {                                                                                        \
        enum { LD = 101, TM = 16 };                                                          \
        struct Guarded ga, gb, gbias;                                                        \
        size_t na = (m - 1) * LD + k + 1, nb = (n - 1) * LD + k + 1;                         \
        T *a = guarded_alloc(&ga, na * sizeof(T)), *b = guarded_alloc(&gb, nb * sizeof(T));  \
        T *bias = guarded_alloc(&gbias, n * sizeof(T));                                      \
        T c[TM * TM], want[TM * TM];                                                         \
        T *pk = mem_alloc_aligned(TM * (LD + 16) * sizeof(T), 64);                           \
        for (size_t i = 0; i < na; i++) a[i] = (T)(2 * rng_uniform(r) - 1);                  \
        for (size_t i = 0; i < nb; i++) b[i] = (T)(2 * rng_uniform(r) - 1);                  \
        for (size_t j = 0; j < n; j++) bias[j] = (T)(4 * rng_uniform(r) - 2);                \
        for (size_t i = 0; i < TM * TM; i++) c[i] = want[i] = beta == 0 ? (T)NAN : (T)i;     \
        gemm_ref_##sfx(0, 1, m, n, k, 2, a + 1, LD, b + 1, LD, beta, want, TM);              \
        for (size_t i = 0; i < m; i++)                                                       \
            for (size_t j = 0; j < n; j++) {                                                 \
                T *w = &want[i * TM + j];                                                    \
                if (ep & 1) *w += bias[j];                                                   \
                if (ep & 2 && !(*w > 0)) *w = 0;                                             \
            }                                                                                \
        for (size_t p0 = 0; p0 < k; p0 = k1 > p0 ? k1 : k) {                                 \
            size_t kb = (k1 > p0 ? k1 : k) - p0;                                             \
            T bk = p0 == 0 ? beta : 1;                                                       \
            const T *bias_k = ep & 1 && p0 == 0 ? bias : NULL;                               \
            int relu_k = ep & 2 && p0 + kb == k;                                             \
            if (packed) {                                                                    \
                for (size_t i = 0; i < TM * (LD + 16); i++) pk[i] = (T)NAN;                  \
                g->dot_pack_##sfx(pk, b + 1 + p0, LD, n, kb);                                \
                g->dot_packed_##sfx[(n + 1) / 2](kb, a + 1 + p0, LD, pk, 0, c, TM, m, n, 2, bk, bias_k, \
                                                 relu_k);                                    \
            } else {                                                                         \
                g->dot_##sfx(kb, a + 1 + p0, LD, b + 1 + p0, LD, c, TM, m, n, 2, bk, bias_k, relu_k); \
            }                                                                                \
        }                                                                                    \
        guarded_free(&gbias);                                                                \
        mem_free(pk);                                                                        \
        guarded_free(&ga);                                                                   \
        guarded_free(&gb);                                                                   \
        int ok = 1;                                                                          \
        for (size_t i = 0; i < TM; i++)                                                      \
            for (size_t j = 0; j < TM; j++) {                                                \
                T d = c[i * TM + j], w = want[i * TM + j];                                   \
                ok &= i < m && j < n ? fabs((double)d - (double)w) <= 16 * (double)k * EPS    \
                                     : memcmp(&d, &w, sizeof d) == 0;                        \
            }                                                                                \
        return ok;                                                                           \
    }                                                                                        \
                                                                                             \
    /* Every tile edge of dot_##sfx (and of dot_packed_##sfx, on up to 3 row tiles and a   \
     * ragged one), K with tails of every length up to a 16-lane vector's, in one call or   \
     * two; the epilogues (bias, ReLU, both) at a third of those K, one or two chunks. */  \
    static void check_dot_##sfx(const struct GemmKernels *g, struct Rng *r)                  \
    {                                                                                        \
        for (int packed = 0; packed <= (g->dot_pack_##sfx != NULL); packed++)                \
            for (size_t m = 1; m <= (size_t)(packed ? 3 * g->dotpk_##sfx.mr + 1 : g->dotsz_##sfx.mr); m++) \
                for (size_t n = 1; n <= (size_t)(packed ? g->dotpk_##sfx.nr : g->dotsz_##sfx.nr); n++) \
                    for (size_t k = 1; k <= 100; k += m == 1 && n == 1 ? 1 : 11)             \
                        for (int ep = 0; ep < (k % 3 == 1 ? 4 : 1); ep++)                    \
                            EXPECT_MSG(dot_tile_ok_##sfx(g, packed, m, n, k / 32 * 16, k, (T)(k % 3) * (T)0.75, \
                                                         ep, r),                             \
                                       #sfx "%s %zux%zux%zu epilogue %d", packed ? " packed" : "", m, n, k, ep); \
    }
DOT_KERNEL_CHECK(float, f32, 1.2e-7)
DOT_KERNEL_CHECK(double, f64, 2.3e-16)

#define PACK_CHECK(T, sfx)                                                                     \
    /* The ISA's transposing (tr) or copying pack on a w x k panel (rows ld = k + 3 or       \
     * w + 3 apart, unaligned source and destination): the exact values, zeros up to        \
     * w_pad, nothing past it. */                                                            \
    static int pack_ok_##sfx(void (*pack)(T *, const T *, size_t, size_t, size_t, size_t),  \
                             int tr, size_t w, size_t w_pad, size_t k)                       \
    {                                                                                        \
        size_t ld = (tr ? k : w) + 3, len = (tr ? w : k) * ld + 1, n = k * w_pad;           \
        T *src = mem_alloc(len * sizeof(T)), *dst = mem_alloc((n + 2) * sizeof(T));          \
        for (size_t i = 0; i < len; i++) src[i] = (T)i + (T)0.5;                             \
        for (size_t i = 0; i < n + 2; i++) dst[i] = (T)NAN;                                  \
        pack(dst + 1, src + 1, ld, w, w_pad, k);                                             \
        int ok = isnan(dst[0]) && isnan(dst[n + 1]);                                         \
        for (size_t p = 0; p < k; p++)                                                       \
            for (size_t i = 0; i < w_pad; i++)                                               \
                ok &= dst[1 + p * w_pad + i] == (i < w ? src[1 + (tr ? i * ld + p : p * ld + i)] : 0); \
        mem_free(src);                                                                       \
        mem_free(dst);                                                                       \
        return ok;                                                                           \
    }
PACK_CHECK(float, f32)
PACK_CHECK(double, f64)

/* The transposing and copying packs of the ISA in use (where it has them) at every
 * panel width of both tiles and K around the vector width. */
TEST_ISA(gemm_packs_match_definition)
{
    const struct GemmKernels *g = kernels_get()->gemm;
    if (!g) return;
    static const size_t ks[] = {1, 7, 8, 9, 15, 16, 17, 33, 100};
    const int pads[2][2] = {{g->f32.mr, g->f32.nr}, {g->alt_f32.mr, g->alt_f32.nr}};
    const int pads64[2][2] = {{g->f64.mr, g->f64.nr}, {g->alt_f64.mr, g->alt_f64.nr}};
    for (int tr = 0; tr < 2; tr++) {
        void (*p32)(float *, const float *, size_t, size_t, size_t, size_t) = tr ? g->pack_t_f32 : g->pack_n_f32;
        void (*p64)(double *, const double *, size_t, size_t, size_t, size_t) = tr ? g->pack_t_f64 : g->pack_n_f64;
        if (!p32 || !p64) continue;
        for (int t = 0; t < 4; t++)
            for (size_t kx = 0; kx < sizeof ks / sizeof ks[0]; kx++) {
                size_t wp = (size_t)pads[t / 2][t % 2], wp64 = (size_t)pads64[t / 2][t % 2];
                for (size_t w = 1; w <= wp; w++)
                    EXPECT_MSG(pack_ok_f32(p32, tr, w, wp, ks[kx]), "f32 tr=%d w=%zu of %zu k=%zu", tr, w, wp, ks[kx]);
                for (size_t w = 1; w <= wp64; w++)
                    EXPECT_MSG(pack_ok_f64(p64, tr, w, wp64, ks[kx]), "f64 tr=%d w=%zu of %zu k=%zu", tr, w, wp64, ks[kx]);
            }
    }
}

/* The dot kernel of the ISA in use on every tile edge, K tail and chunking. */
TEST_ISA(gemm_dot_kernel_on_every_tile_edge)
{
    const struct GemmKernels *g = kernels_get()->gemm;
    if (!g) return;
    struct Rng r;
    rng_seed(&r, 19);
    check_dot_f32(g, &r);
    check_dot_f64(g, &r);
}

#define GEMM_COPIES_CHECK(T, sfx)                                                              \
    /* gemm_bias_copies (copies of A, bias and ReLU) or gemm_copies (of B, beta 0.5) against \
     * gemm_bias or gemm on the copies' values, bit for bit. poisoned: the operand itself   \
     * holds NaN, so a part that read it instead of its thread's copy would show. */        \
    static int copies_ok_##sfx(int ta, int tb, size_t M, size_t N, size_t K, int of_b, int poisoned, \
                               struct Rng *r)                                                \
    {                                                                                        \
        size_t lda = ta ? M : K, ldb = tb ? K : N, na = (ta ? K : M) * lda, nb = (tb ? N : K) * ldb; \
        size_t nop = of_b ? nb : na;                                                         \
        T *a = mem_alloc(na * sizeof(T)), *b = mem_alloc(nb * sizeof(T)), *bias = mem_alloc(N * sizeof(T)); \
        T *c = mem_alloc(M * N * sizeof(T)), *want = mem_alloc(M * N * sizeof(T));          \
        T *v0 = mem_alloc(nop * sizeof(T)), *v1 = mem_alloc(nop * sizeof(T));                \
        for (size_t i = 0; i < na; i++) a[i] = (T)(2 * rng_uniform(r) - 1);                  \
        for (size_t i = 0; i < nb; i++) b[i] = (T)(2 * rng_uniform(r) - 1);                  \
        for (size_t j = 0; j < N; j++) bias[j] = (T)(2 * rng_uniform(r) - 1);                \
        for (size_t i = 0; i < nop; i++) v0[i] = (T)(2 * rng_uniform(r) - 1);                \
        for (size_t i = 0; i < M * N; i++) c[i] = want[i] = (T)(i % 5);                      \
        memcpy(v1, v0, nop * sizeof(T));                                                     \
        T *op = of_b ? b : a;                                                                \
        for (size_t i = 0; i < nop; i++) op[i] = poisoned ? (T)NAN : v0[i];                  \
        struct ParCopies cp = {2, {poisoned ? v0 : op, v1}};                                 \
        if (of_b) {                                                                          \
            gemm_##sfx(ta, tb, M, N, K, 1, a, lda, v0, ldb, (T)0.5, want, N);                \
            gemm_copies_##sfx(ta, tb, M, N, K, 1, a, lda, b, ldb, &cp, (T)0.5, c, N, NULL);  \
        } else {                                                                             \
            gemm_bias_##sfx(ta, tb, M, N, K, 1, v0, lda, b, ldb, bias, 1, want, N);          \
            gemm_bias_copies_##sfx(ta, tb, M, N, K, 1, a, lda, &cp, b, ldb, bias, 1, c, N);  \
        }                                                                                    \
        int ok = memcmp(c, want, M * N * sizeof(T)) == 0;                                    \
        mem_free(a), mem_free(b), mem_free(bias), mem_free(c), mem_free(want), mem_free(v0), mem_free(v1); \
        return ok;                                                                           \
    }
GEMM_COPIES_CHECK(float, f32)
GEMM_COPIES_CHECK(double, f64)

/* The threads' copies of an operand (a batch each thread gathered whole): every part
 * reads its own thread's copy, on every path: the dot kernels (a Linear's forward at
 * batch 64, in K chunks), the small path (K = 10), the blocked path on C (the weight
 * gradient, copies of B) and on C^T. At 1 and 2 threads the operand itself is NaN (each
 * worker has a copy); at 3 it is copy 0, which the third thread reads. */
TEST_ISA(gemm_parts_read_their_threads_copies)
{
    static const size_t shapes[][5] = {{0, 1, 64, 128, 784}, {0, 0, 64, 128, 10}, {1, 0, 128, 784, 64},
        {1, 1, 150, 9, 40}, {0, 1, 33, 20, 300}};
    struct Rng r;
    rng_seed(&r, 41);
    int saved = threads_count();
    for (int nt = 1; nt <= 3; nt++) {
        threads_set(nt);
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int of_b = 0; of_b < 2; of_b++) {
                const size_t *x = shapes[s];
                EXPECT_MSG(copies_ok_f32(x[0], x[1], x[2], x[3], x[4], of_b, nt < 3, &r),
                           "f32 %zux%zux%zu ta%zu tb%zu copies of %s, %d threads", x[2], x[3], x[4], x[0], x[1],
                           of_b ? "B" : "A", nt);
                EXPECT_MSG(copies_ok_f64(x[0], x[1], x[2], x[3], x[4], of_b, nt < 3, &r),
                           "f64 %zux%zux%zu ta%zu tb%zu copies of %s, %d threads", x[2], x[3], x[4], x[0], x[1],
                           of_b ? "B" : "A", nt);
            }
    }
    threads_set(saved);
}

/* Shapes {ta, tb, M, N, K} for the cut checks below: the CNN's Linear input gradient
 * (blocked on C), the MLP's forward (dot kernels) and the CNN's Linear weight gradient
 * (column cuts), the small path, the blocked path on C^T, and odd sizes. */
static const size_t grain_shapes[][5] = {{0, 0, 64, 3136, 10}, {0, 0, 64, 128, 10}, {0, 1, 64, 20, 300},
    {1, 0, 150, 37, 40}, {0, 0, 37, 400, 33}, {1, 1, 50, 300, 20}, {0, 0, 256, 200, 64},
    {0, 1, 64, 128, 784}, {1, 0, 10, 3136, 64}, {0, 1, 33, 1000, 200}};
static const size_t grain_sizes[] = {0, 1, 3, 4, 8};
static const int grain_threads[] = {2, 3, 4, 7};

#define GEMM_GRAIN_CHECK(T, sfx)                                                               \
    /* Each shape: gemm_mask uncut on one thread (beta 0.5, a mask on every other shape), \
     * then at each thread count with each grain, bit for bit. The pool is restarted per  \
     * thread count, not per call. */                                                      \
    static void grain_check_##sfx(struct Rng *r)                                             \
    {                                                                                        \
        int saved = threads_count();                                                         \
        for (size_t s = 0; s < sizeof grain_shapes / sizeof grain_shapes[0]; s++) {         \
            const size_t *x = grain_shapes[s];                                               \
            int ta = (int)x[0], tb = (int)x[1];                                              \
            size_t M = x[2], N = x[3], K = x[4], lda = ta ? M : K, ldb = tb ? K : N;         \
            size_t na = (ta ? K : M) * lda, nb = (tb ? N : K) * ldb;                         \
            T *a = mem_alloc(na * sizeof(T)), *b = mem_alloc(nb * sizeof(T)), *mk = mem_alloc(M * N * sizeof(T)); \
            T *c = mem_alloc(M * N * sizeof(T)), *want = mem_alloc(M * N * sizeof(T));      \
            for (size_t i = 0; i < na; i++) a[i] = (T)(2 * rng_uniform(r) - 1);              \
            for (size_t i = 0; i < nb; i++) b[i] = (T)(2 * rng_uniform(r) - 1);              \
            for (size_t i = 0; i < M * N; i++) mk[i] = (T)(rng_uniform(r) - 0.3);            \
            const T *mask = s % 2 ? mk : NULL;                                               \
            for (size_t i = 0; i < M * N; i++) want[i] = (T)(i % 5) - 2;                     \
            threads_set(1);                                                                  \
            gemm_mask_##sfx(ta, tb, M, N, K, 1, a, lda, b, ldb, (T)0.5, want, N, mask, 0);    \
            for (size_t t = 0; t < sizeof grain_threads / sizeof grain_threads[0]; t++) {    \
                threads_set(grain_threads[t]);                                               \
                for (size_t g = 0; g < sizeof grain_sizes / sizeof grain_sizes[0]; g++) {   \
                    for (size_t i = 0; i < M * N; i++) c[i] = (T)(i % 5) - 2;                \
                    gemm_mask_##sfx(ta, tb, M, N, K, 1, a, lda, b, ldb, (T)0.5, c, N, mask, grain_sizes[g]); \
                    EXPECT_MSG(!memcmp(c, want, M * N * sizeof(T)),                          \
                               #sfx " %zux%zux%zu ta%d tb%d grain %zu, %d threads: not the uncut bits", \
                               M, N, K, ta, tb, grain_sizes[g], grain_threads[t]);           \
                }                                                                            \
            }                                                                                \
            mem_free(a), mem_free(b), mem_free(mk), mem_free(c), mem_free(want);             \
        }                                                                                    \
        threads_set(saved);                                                                  \
    }
GEMM_GRAIN_CHECK(float, f32)
GEMM_GRAIN_CHECK(double, f64)

/* A gemm cut by rows at a grain (a Linear's input gradient, cut as the convolution
 * before it reads it), or without one (grain 0: a cut into column ranges is made at
 * whole cache lines): the same bits as the uncut call on one thread, on every path (the
 * blocked path on C and on C^T, the small path, the dot kernels), with cuts that end
 * parts inside register tiles, at 2, 3, 4 and 7 threads. */
TEST_ISA(gemm_row_grain_cut_gives_the_same_bits)
{
    struct Rng r;
    rng_seed(&r, 43);
    grain_check_f32(&r);
    grain_check_f64(&r);
}

/* A listener of gemm_copies: how often each row was told, told rows that were not yet
 * their final bits (against want), and rows told off the grain. */
struct RowSpy {
    struct GemmRows rows; /* first: the gemm's view */
    const void *c, *want;
    size_t row_bytes, ld_bytes;
    atomic_int count[256], wrong, off_grain, calls;
};

static void row_spy_done(const struct GemmRows *rows, size_t row, size_t n)
{
    struct RowSpy *s = (struct RowSpy *)rows;
    atomic_fetch_add(&s->calls, 1);
    if (row % rows->grain) atomic_fetch_add(&s->off_grain, 1);
    for (size_t i = row; i < row + n && i < 256; i++) {
        atomic_fetch_add(&s->count[i], 1);
        if (memcmp((const char *)s->c + i * s->ld_bytes, (const char *)s->want + i * s->ld_bytes, s->row_bytes))
            atomic_fetch_add(&s->wrong, 1);
    }
}

/* Weight gradients of the MLP and the CNN, the small path, odd sizes, the blocked path
 * on C^T cut by C's rows (89 x 39 x 256 on AVX-512). */
static const size_t told_shapes[][5] = {{1, 0, 128, 784, 64}, {1, 0, 10, 3136, 64}, {1, 0, 10, 128, 64},
    {1, 0, 256, 784, 64}, {1, 0, 128, 3136, 64}, {1, 0, 37, 333, 50}, {0, 0, 150, 200, 64},
    {1, 1, 64, 300, 20}, {0, 1, 200, 100, 96}, {1, 0, 89, 39, 256}};
static const size_t told_grains[] = {1, 3, 4, 32};
static const int told_threads[] = {1, 2, 3, 4, 7};

#define GEMM_TOLD_CHECK(T, sfx)                                                                \
    /* At each thread count, each shape: gemm_copies without a listener (beta 0.5), then  \
     * with one at each grain: the same bits, and where told, every row told once, final \
     * when told, from a multiple of the grain; else no call. Returns how many calls told. \
     * The pool is restarted per thread count, not per call. */                            \
    static int told_check_##sfx(struct Rng *r)                                               \
    {                                                                                        \
        int saved = threads_count(), told_calls = 0;                                        \
        for (size_t t = 0; t < sizeof told_threads / sizeof told_threads[0]; t++) {         \
            threads_set(told_threads[t]);                                                    \
            for (size_t s = 0; s < sizeof told_shapes / sizeof told_shapes[0]; s++) {       \
                const size_t *x = told_shapes[s];                                            \
                int ta = (int)x[0], tb = (int)x[1];                                          \
                size_t M = x[2], N = x[3], K = x[4], lda = ta ? M : K, ldb = tb ? K : N;     \
                size_t na = (ta ? K : M) * lda, nb = (tb ? N : K) * ldb;                     \
                T *a = mem_alloc(na * sizeof(T)), *b = mem_alloc(nb * sizeof(T));            \
                T *c = mem_alloc(M * N * sizeof(T)), *want = mem_alloc(M * N * sizeof(T));  \
                for (size_t i = 0; i < na; i++) a[i] = (T)(2 * rng_uniform(r) - 1);          \
                for (size_t i = 0; i < nb; i++) b[i] = (T)(2 * rng_uniform(r) - 1);          \
                for (size_t i = 0; i < M * N; i++) want[i] = (T)(i % 5) - 2;                 \
                gemm_copies_##sfx(ta, tb, M, N, K, 1, a, lda, b, ldb, NULL, (T)0.5, want, N, NULL); \
                for (size_t g = 0; g < sizeof told_grains / sizeof told_grains[0]; g++) {   \
                    static struct RowSpy spy;                                                \
                    memset(&spy, 0, sizeof spy);                                             \
                    spy.rows = (struct GemmRows){row_spy_done, told_grains[g], 0};           \
                    spy.c = c, spy.want = want, spy.row_bytes = N * sizeof(T), spy.ld_bytes = N * sizeof(T); \
                    for (size_t i = 0; i < M * N; i++) c[i] = (T)(i % 5) - 2;                \
                    gemm_copies_##sfx(ta, tb, M, N, K, 1, a, lda, b, ldb, NULL, (T)0.5, c, N, &spy.rows); \
                    int once = 1;                                                            \
                    for (size_t i = 0; i < M; i++) once &= atomic_load(&spy.count[i]) == spy.rows.told; \
                    EXPECT_MSG(!memcmp(c, want, M * N * sizeof(T)) && once && !atomic_load(&spy.wrong) && \
                                   !atomic_load(&spy.off_grain) && (spy.rows.told || !atomic_load(&spy.calls)), \
                               #sfx " %zux%zux%zu ta%d tb%d grain %zu, %d threads: told %d, %d calls, %d rows " \
                               "not final when told, %d off the grain, every row told as often as told says %d", \
                               M, N, K, ta, tb, told_grains[g], told_threads[t], spy.rows.told,             \
                               atomic_load(&spy.calls), atomic_load(&spy.wrong), atomic_load(&spy.off_grain), once); \
                    /* one thread: one part, nothing told; the MLP's weight gradient at 2 threads: told */ \
                    if (told_threads[t] == 1) EXPECT_EQ_INT(spy.rows.told, 0);              \
                    if (told_threads[t] == 2 && s == 0) EXPECT_EQ_INT(spy.rows.told, 1);    \
                    told_calls += spy.rows.told;                                             \
                }                                                                            \
                mem_free(a), mem_free(b), mem_free(c), mem_free(want);                       \
            }                                                                                \
        }                                                                                    \
        threads_set(saved);                                                                  \
        return told_calls;                                                                   \
    }
GEMM_TOLD_CHECK(float, f32)
GEMM_TOLD_CHECK(double, f64)

/* gemm_copies with a listener of finished rows (a Linear's weight updated by parts as its
 * gradient is written): the bits of the call without one; where the call is cut by C's
 * rows, each row told once, on its final bits, from a multiple of the grain; nothing told
 * on one thread or where the cut is not by rows. */
TEST_ISA(gemm_copies_tells_each_finished_row_once)
{
    struct Rng r;
    rng_seed(&r, 47);
    int told = told_check_f32(&r) + told_check_f64(&r);
    EXPECT_MSG(told >= 8, "only %d calls told their rows", told);
}

TEST_ISA(gemm_edge_cases_zero_k_and_zero_alpha)
{
    float C[6] = {NAN, NAN, NAN, NAN, NAN, NAN}, A[6] = {1, 2, 3, 4, 5, 6};
    gemm_f32(0, 0, 2, 3, 0, 1, A, 1, A, 3, 0, C, 3); /* K = 0, beta = 0: C becomes 0 */
    for (int i = 0; i < 6; i++) EXPECT_EQ_INT(C[i], 0);
    double D[4] = {1, 2, 3, 4}, X[4] = {1, 1, 1, 1};
    gemm_f64(1, 1, 2, 2, 2, 0, X, 2, X, 2, 2, D, 2); /* alpha = 0: C = beta*C */
    EXPECT_NEAR(D[0], 2, 0);
    EXPECT_NEAR(D[3], 8, 0);
}

TEST(gemm_tensor_forms)
{
    uint64_t s23[2] = {2, 3}, s32[2] = {3, 2}, s22[2] = {2, 2};
    struct Tensor *a = tensor_create(2, s23, DT_FLOAT64), *b = tensor_create(2, s32, DT_FLOAT64);
    struct Tensor *c = tensor_create(2, s22, DT_FLOAT64);
    for (int i = 0; i < 6; i++) tensor_f64(a)[i] = i + 1, tensor_f64(b)[i] = 6 - i;
    matmul(c, a, b); /* [1 2 3; 4 5 6] [6 5; 4 3; 2 1] */
    EXPECT_NEAR(tensor_f64(c)[0], 20, 0);
    EXPECT_NEAR(tensor_f64(c)[1], 14, 0);
    EXPECT_NEAR(tensor_f64(c)[2], 56, 0);
    EXPECT_NEAR(tensor_f64(c)[3], 41, 0);
    gemm(0, 1, 0.5, a, a, 1.0, c); /* c += 0.5 * a a^T = [7 16; 16 38.5] */
    EXPECT_NEAR(tensor_f64(c)[0], 27, 0);
    EXPECT_NEAR(tensor_f64(c)[1], 30, 0);
    EXPECT_NEAR(tensor_f64(c)[3], 79.5, 0);
    tensor_free(a);
    tensor_free(b);
    tensor_free(c);
    uint64_t s33[2] = {3, 3};
    struct Tensor *f = tensor_create(2, s23, DT_FLOAT32), *g = tensor_create(2, s33, DT_FLOAT32);
    tensor_fill(f, 1);
    tensor_fill(g, NAN);
    gemm(1, 0, 2.0, f, f, 0.0, g); /* 2 f^T f, every entry 2*2; beta 0 ignores the NaN */
    for (int i = 0; i < 9; i++) EXPECT_NEAR(tensor_f32(g)[i], 4, 0);
    tensor_free(f);
    tensor_free(g);
}

static void gemm_mismatch_child(void *arg)
{
    (void)arg;
    uint64_t s23[2] = {2, 3}, s45[2] = {4, 5}, s25[2] = {2, 5};
    struct Tensor *a = tensor_create(2, s23, DT_FLOAT32), *b = tensor_create(2, s45, DT_FLOAT32);
    struct Tensor *c = tensor_create(2, s25, DT_FLOAT32);
    matmul(c, a, b);
}

TEST(gemm_shape_mismatch_panics_naming_both_shapes)
{
    char err[1024];
    int rc = test_run_child(gemm_mismatch_child, NULL, err, sizeof err);
    EXPECT(rc != 0);
    EXPECT_STR_CONTAINS(err, "2x3");
    EXPECT_STR_CONTAINS(err, "4x5");
}

/* One tile's blocking (elements of `size` bytes) fits the fixed thread-local pack buffers
 * of gemm.c and the register tile test's 16 x 64 arrays, and mc is whole row panels. */
static int blocking_ok(int mr, int nr, int kc, int mc, int nc, size_t size)
{
    return (size_t)mc * (size_t)kc * size <= GEMM_PACK_A_BYTES &&
           (size_t)kc * (size_t)nc * size <= GEMM_PACK_B_BYTES && mr * nr <= GEMM_MAX_TILE &&
           mc % mr == 0 && mr <= 16 && nr <= 64;
}
#define BLOCKING(b) (b).mr, (b).nr, (b).kc, (b).mc, (b).nc

TEST(gemm_blocking_fits_pack_buffers)
{
    const struct GemmKernels *sets[] = {&gemm_kernels_sse2, &gemm_kernels_avx2, &gemm_kernels_avx512};
    for (int s = 0; s < 3; s++) {
        const struct GemmKernels *g = sets[s];
        EXPECT_MSG(blocking_ok(BLOCKING(g->f32), sizeof(float)), "set %d f32", s);
        EXPECT_MSG(blocking_ok(BLOCKING(g->f64), sizeof(double)), "set %d f64", s);
        EXPECT_MSG(blocking_ok(BLOCKING(g->alt_f32), sizeof(float)), "set %d alt_f32", s);
        EXPECT_MSG(blocking_ok(BLOCKING(g->alt_f64), sizeof(double)), "set %d alt_f64", s);
        /* The dot kernel test's fixed arrays hold 16 x 16 (3 row tiles and a row); a
         * packed kernel for every pair count. */
        EXPECT(g->dotsz_f32.mr <= 16 && g->dotsz_f32.nr <= 16);
        EXPECT(g->dotsz_f64.mr <= 16 && g->dotsz_f64.nr <= 16);
        EXPECT(3 * g->dotpk_f32.mr + 1 <= 16 && g->dotpk_f32.nr <= 16 && g->dotpk_f32.nr <= 2 * GEMM_MAX_DOT_PAIRS);
        EXPECT(3 * g->dotpk_f64.mr + 1 <= 16 && g->dotpk_f64.nr <= 16 && g->dotpk_f64.nr <= 2 * GEMM_MAX_DOT_PAIRS);
        for (int q = 1; g->dot_pack_f32 && q <= (g->dotpk_f32.nr + 1) / 2; q++) EXPECT(g->dot_packed_f32[q] != NULL);
        for (int q = 1; g->dot_pack_f64 && q <= (g->dotpk_f64.nr + 1) / 2; q++) EXPECT(g->dot_packed_f64[q] != NULL);
    }
}
