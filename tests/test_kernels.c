/* Tests of the elementwise kernels (every ISA path against ew_ref), the tensor-level
 * ops and reductions, their panic paths and the ISA dispatch. */
#define _GNU_SOURCE
#include "test.h"
#include "gradcheck.h"
#include "kernels/dispatch.h"
#include "kernels/ew.h"
#include "math_kernels.h"
#include "mem.h"
#include "tensor.h"
#include "utils.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const size_t sizes[] = {0, 1, 3, 7, 8, 15, 16, 17, 31, 33, 1003};
#define N_SIZES (sizeof sizes / sizeof sizes[0])
#define MAXN 1003
#define NBUF 8

/* Values in [-2, 2), with a few special ones so max/relu see ties, zeros and NaN. */
static double test_value(struct Rng *r, int specials)
{
    uint64_t k = rng_below(r, 64);
    if (specials && k == 0) return NAN;
    if (specials && k == 1) return -0.0;
    if (k == 2) return 0.0;
    return 4 * rng_uniform(r) - 2;
}

static int same_value(double x, double y) { return x == y || (isnan(x) && isnan(y)); }

/* One generic body per dtype: buffers b[0..NBUF) of MAXN+1 elements, used at an offset
 * of `off` elements so that off = 1 makes every pointer unaligned. */
#define HELPERS(T, sfx)                                                                       \
    static void fill_##sfx(struct Rng *r, T *p, size_t n, int specials)                        \
    {                                                                                          \
        for (size_t i = 0; i < n; i++) p[i] = (T)test_value(r, specials);                      \
    }                                                                                          \
    static int count_diff_##sfx(const T *x, const T *y, size_t n)                              \
    {                                                                                          \
        int bad = 0;                                                                           \
        for (size_t i = 0; i < n; i++) bad += !same_value(x[i], y[i]);                         \
        return bad;                                                                            \
    }

#define KERNEL_TESTS(T, sfx)                                                                  \
    /* Binary and scalar maps and ReLU must match the reference exactly. */                    \
    static void check_maps_##sfx(const struct EwKernels *k, T **b, size_t n, struct Rng *r)    \
    {                                                                                          \
        const struct EwKernels *ref = &ew_kernels_ref;                                          \
        T *a = b[0], *y = b[1], *o = b[2], *want = b[3];                                        \
        fill_##sfx(r, a, n, 1);                                                                \
        fill_##sfx(r, y, n, 1);                                                                \
        for (int op = 0; op < EW_BIN_COUNT; op++) {                                            \
            ref->bin_##sfx[op](n, a, y, want);                                                 \
            k->bin_##sfx[op](n, a, y, o);                                                      \
            EXPECT_MSG(!count_diff_##sfx(o, want, n), "bin op %d n=%zu differs", op, n);       \
            memcpy(o, a, n * sizeof(T)); /* out aliases a */                                   \
            k->bin_##sfx[op](n, o, y, o);                                                      \
            EXPECT_MSG(!count_diff_##sfx(o, want, n), "bin op %d n=%zu in place differs", op, n); \
            memcpy(o, y, n * sizeof(T)); /* out aliases b */                                   \
            k->bin_##sfx[op](n, a, o, o);                                                      \
            EXPECT_MSG(!count_diff_##sfx(o, want, n), "bin op %d n=%zu out=b differs", op, n); \
        }                                                                                      \
        for (int op = 0; op < EW_SCAL_COUNT; op++) {                                           \
            ref->scal_##sfx[op](n, a, (T)-1.25, want);                                         \
            k->scal_##sfx[op](n, a, (T)-1.25, o);                                              \
            EXPECT_MSG(!count_diff_##sfx(o, want, n), "scalar op %d n=%zu differs", op, n);    \
            memcpy(o, a, n * sizeof(T));                                                       \
            k->scal_##sfx[op](n, o, (T)-1.25, o);                                              \
            EXPECT_MSG(!count_diff_##sfx(o, want, n), "scalar op %d n=%zu in place differs", op, n); \
        }                                                                                      \
        ref->relu_##sfx(n, a, want);                                                           \
        k->relu_##sfx(n, a, o);                                                                \
        EXPECT_MSG(!count_diff_##sfx(o, want, n), "relu n=%zu differs", n);                    \
        for (size_t i = 0; i < n; i++)                                                         \
            EXPECT_MSG(o[i] == (a[i] > 0 ? a[i] : 0), "relu(%g) = %g", (double)a[i], (double)o[i]); \
    }                                                                                          \
    /* sum, axpy, relu backward and Adam: FMA and lane order change rounding only. */          \
    static void check_updates_##sfx(const struct EwKernels *k, T **b, size_t n, struct Rng *r, double tol) \
    {                                                                                          \
        const struct EwKernels *ref = &ew_kernels_ref;                                          \
        T *x = b[0], *g = b[1], *y = b[2], *want = b[3];                                        \
        fill_##sfx(r, x, n, 0);                                                                \
        fill_##sfx(r, g, n, 0);                                                                \
        double abs_sum = 0;                                                                    \
        for (size_t i = 0; i < n; i++) abs_sum += fabs((double)x[i]);                          \
        EXPECT_NEAR(k->sum_##sfx(n, x), ref->sum_##sfx(n, x), tol * (abs_sum + 1));            \
        fill_##sfx(r, y, n, 0);                                                                \
        memcpy(want, y, n * sizeof(T));                                                        \
        ref->axpy_##sfx(n, (T)0.75, x, want);                                                  \
        k->axpy_##sfx(n, (T)0.75, x, y);                                                       \
        EXPECT_MSG(test_max_err_##sfx(y, want, n, tol, tol) <= 1, "axpy n=%zu", n);            \
        memcpy(want, y, n * sizeof(T));                                                        \
        ref->relu_bwd_##sfx(n, x, g, want);                                                    \
        k->relu_bwd_##sfx(n, x, g, y);                                                         \
        EXPECT_MSG(!count_diff_##sfx(y, want, n), "relu_bwd n=%zu", n);                        \
        ref->relu_bwd_set_##sfx(n, x, g, want);                                                \
        fill_##sfx(r, y, n, 0); /* overwritten whatever it held */                             \
        k->relu_bwd_set_##sfx(n, x, g, y);                                                     \
        EXPECT_MSG(!count_diff_##sfx(y, want, n), "relu_bwd_set n=%zu", n);                    \
        check_bn_##sfx(k, b, n, tol);                                                          \
        check_adam_##sfx(k, b, n, r, tol);                                                     \
    }

/* Batch normalisation's kernels on b[0] (x) and b[1] (g): cdot, affine (with and without
 * ReLU, in place), affine2 (= and +=) against the reference. */
#define BN_KERNEL_TEST(T, sfx)                                                                \
    static void check_bn_##sfx(const struct EwKernels *k, T **b, size_t n, double tol)         \
    {                                                                                          \
        const struct EwKernels *ref = &ew_kernels_ref;                                          \
        T *x = b[0], *g = b[1], *y = b[2], *want = b[3];                                        \
        double sq = 0;                                                                         \
        for (size_t i = 0; i < n; i++) sq += ((double)x[i] + 0.5) * ((double)g[i] - 0.25) + 1;  \
        EXPECT_NEAR(k->cdot_##sfx(n, x, (T)-0.5, g, (T)0.25), ref->cdot_##sfx(n, x, (T)-0.5, g, (T)0.25), \
                    tol * (fabs(sq) + 10 * (double)n));                                        \
        for (int relu = 0; relu < 2; relu++) {                                                 \
            ref->affine_##sfx(n, x, (T)1.5, (T)-0.25, want, relu);                             \
            memcpy(y, x, n * sizeof(T));                                                       \
            k->affine_##sfx(n, y, (T)1.5, (T)-0.25, y, relu);                                  \
            EXPECT_MSG(test_max_err_##sfx(y, want, n, tol, tol) <= 1, "affine relu=%d n=%zu", relu, n); \
        }                                                                                      \
        for (int acc = 0; acc < 2; acc++) {                                                    \
            for (size_t i = 0; i < n; i++) want[i] = y[i] = (T)i;                              \
            ref->affine2_##sfx(n, (T)0.5, g, (T)-2, x, (T)0.125, want, acc);                   \
            k->affine2_##sfx(n, (T)0.5, g, (T)-2, x, (T)0.125, y, acc);                        \
            EXPECT_MSG(test_max_err_##sfx(y, want, n, tol, tol) <= 1, "affine2 acc=%d n=%zu", acc, n); \
        }                                                                                      \
    }
BN_KERNEL_TEST(float, f32)
BN_KERNEL_TEST(double, f64)

/* Adam state: p, g, m, v (v >= 0) and the expected p, m, v. */
#define ADAM_TEST(T, sfx)                                                                     \
    static void check_adam_##sfx(const struct EwKernels *k, T **b, size_t n, struct Rng *r, double tol) \
    {                                                                                          \
        T *p = b[0], *g = b[1], *m = b[2], *v = b[3], *p2 = b[4], *m2 = b[5], *v2 = b[6];      \
        fill_##sfx(r, p, n, 0);                                                                \
        fill_##sfx(r, g, n, 0);                                                                \
        fill_##sfx(r, m, n, 0);                                                                \
        fill_##sfx(r, v, n, 0);                                                                \
        for (size_t i = 0; i < n; i++) v[i] = v[i] * v[i];                                     \
        memcpy(p2, p, n * sizeof(T));                                                          \
        memcpy(m2, m, n * sizeof(T));                                                          \
        memcpy(v2, v, n * sizeof(T));                                                          \
        double step = 1e-3 / (1 - pow(0.9, 3)), bc2 = sqrt(1 - pow(0.999, 3));                \
        ew_kernels_ref.adam_##sfx(n, p2, g, m2, v2, (T)0.9, (T)0.999, (T)step, (T)bc2, (T)1e-8); \
        k->adam_##sfx(n, p, g, m, v, (T)0.9, (T)0.999, (T)step, (T)bc2, (T)1e-8);              \
        EXPECT_MSG(test_max_err_##sfx(m, m2, n, tol, tol) <= 1, "adam m n=%zu", n);            \
        EXPECT_MSG(test_max_err_##sfx(v, v2, n, tol, tol) <= 1, "adam v n=%zu", n);            \
        EXPECT_MSG(test_max_err_##sfx(p, p2, n, tol, tol) <= 1, "adam p n=%zu", n);            \
    }

HELPERS(float, f32)
HELPERS(double, f64)
ADAM_TEST(float, f32)
ADAM_TEST(double, f64)
KERNEL_TESTS(float, f32)
KERNEL_TESTS(double, f64)

/* Every size, aligned and offset by one element. */
#define RUN_ALL_SIZES(T, sfx, tol)                                                             \
    do {                                                                                       \
        void *blk[NBUF];                                                                       \
        T *bufs[NBUF];                                                                         \
        struct Rng r;                                                                          \
        rng_seed(&r, 42);                                                                      \
        for (int j = 0; j < NBUF; j++) blk[j] = mem_alloc_aligned((MAXN + 1) * sizeof(T), 64); \
        for (int off = 0; off <= 1; off++)                                                     \
            for (size_t s = 0; s < N_SIZES; s++) {                                             \
                for (int j = 0; j < NBUF; j++) bufs[j] = (T *)blk[j] + off;                    \
                for (int par = 0; par <= 1; par++) { /* the ISA's table, and its parallel cut */ \
                    const struct EwKernels *k = par ? kernels_get()->ew : kernels_get()->ew1;      \
                    check_maps_##sfx(k, bufs, sizes[s], &r);                                   \
                    check_updates_##sfx(k, bufs, sizes[s], &r, tol);                           \
                }                                                                              \
            }                                                                                  \
        for (int j = 0; j < NBUF; j++) mem_free(blk[j]);                                       \
    } while (0)

TEST_ISA(ew_kernels_match_ref_f32) { RUN_ALL_SIZES(float, f32, 2e-6); }
TEST_ISA(ew_kernels_match_ref_f64) { RUN_ALL_SIZES(double, f64, 1e-14); }

/* Outputs of EW_STREAM_BYTES and more take the non-temporal store path. */
#define STREAM_TEST(T, sfx)                                                                    \
    TEST_ISA(ew_kernels_stream_path_##sfx)                                                     \
    {                                                                                          \
        size_t n = EW_STREAM_BYTES / sizeof(T) + 37;                                           \
        T *a = mem_alloc_aligned((n + 1) * sizeof(T), 64), *b = mem_alloc_aligned((n + 1) * sizeof(T), 64); \
        T *o = mem_alloc_aligned((n + 1) * sizeof(T), 64);                                     \
        for (size_t i = 0; i <= n; i++) a[i] = (T)(i % 1000) - 500, b[i] = (T)(i % 7) + 1;     \
        const struct EwKernels *k = kernels_get()->ew;                                         \
        int bad = 0;                                                                           \
        k->bin_##sfx[EW_DIV](n, a + 1, b + 1, o + 1);                                          \
        for (size_t i = 1; i <= n; i++) bad += o[i] != a[i] / b[i];                            \
        k->scal_##sfx[EW_SADD](n, a + 1, 3, o + 1);                                            \
        for (size_t i = 1; i <= n; i++) bad += o[i] != a[i] + 3;                               \
        k->relu_##sfx(n, a + 1, o + 1);                                                        \
        for (size_t i = 1; i <= n; i++) bad += o[i] != (a[i] > 0 ? a[i] : 0);                  \
        k->scal_##sfx[EW_SMUL](n, o + 1, 2, o + 1); /* in place */                             \
        for (size_t i = 1; i <= n; i++) bad += o[i] != 2 * (a[i] > 0 ? a[i] : 0);              \
        EXPECT_EQ_INT(bad, 0);                                                                 \
        mem_free(a), mem_free(b), mem_free(o);                                                 \
    }
STREAM_TEST(float, f32)
STREAM_TEST(double, f64)

/* expneg_f64 (the float32 softmax's e^x, x <= 0): within 1 ulp of libm's exp, the same
 * float as libm's exp rounded to float for 400 000 values of -110 <= x <= 0 (the floats
 * a softmax feeds it), exact at 0, 0 in a float from -104 down, NaN for NaN; each value
 * the same wherever it lies in a call (tails of every length), in place too. */
TEST_ISA(expneg_matches_libm_exp)
{
    const struct EwKernels *k = kernels_get()->ew1;
    enum { N = 4000 };
    static double x[N], y[N], z[N];
    struct Rng r;
    rng_seed(&r, 43);
    long floats_differ = 0;
    double worst = 0;
    for (int rep = 0; rep < 100; rep++) {
        for (int i = 0; i < N; i++) {
            double u = rng_uniform(&r);
            x[i] = (double)(float)(-110 * u * u);
        }
        k->expneg_f64(N, x, y);
        for (int i = 0; i < N; i++) {
            double e = exp(x[i]);
            floats_differ += (float)y[i] != (float)e;
            if (e > 1e-300) worst = fmax(worst, fabs(y[i] - e) / (nextafter(e, INFINITY) - e));
        }
    }
    EXPECT_MSG(floats_differ == 0 && worst <= 1, "%ld floats differ from libm's; worst %.2f ulp", floats_differ, worst);
    double sp[5] = {0, -104, -800, -INFINITY, NAN}, out[5];
    k->expneg_f64(5, sp, out);
    EXPECT(out[0] == 1 && (float)out[1] == 0 && (float)out[2] == 0 && (float)out[3] == 0 && isnan(out[4]));
    for (size_t n = 0; n <= 35; n++) { /* tails: each element as in the long call (y) */
        for (size_t at = 0; at + n <= 40; at += 13) {
            memcpy(z, x + at, n * sizeof *z);
            k->expneg_f64(n, z, z);
            EXPECT_MSG(!memcmp(z, y + at, n * sizeof *z), "%zu values from %zu: other bits than in one call", n, at);
        }
    }
}

TEST_ISA(kernels_dispatch_table)
{
    const struct KernelTable *t = kernels_get();
    const struct EwKernels *want[ISA_COUNT] = {&ew_kernels_ref, &ew_kernels_sse2, &ew_kernels_avx2, &ew_kernels_avx512};
    EXPECT(t->isa > ISA_REF && t->isa < ISA_COUNT);
    EXPECT(t->ew1 == want[t->isa]);
    EXPECT(t->ew == &ew_kernels_par);
    EXPECT_EQ_INT(kernels_isa(), t->isa);
    EXPECT_EQ_INT(isa_from_name(isa_name(t->isa)), t->isa);
    EXPECT_EQ_INT(isa_from_name("bogus"), -1);
    EXPECT(kernels_isa_supported(ISA_SSE2));
}

/* ---- tensor-level ops ---- */

static struct Tensor *random_tensor(uint64_t seed, uint64_t ndim, const uint64_t *shape, uint32_t dt)
{
    struct Tensor *t = tensor_create(ndim, shape, dt);
    fill_uniform(t, -2, 2, seed);
    return t;
}

TEST_ISA(ew_tensor_ops)
{
    uint64_t shape[3] = {3, 5, 7};
    for (uint32_t dt = 0; dt < DT_COUNT; dt++) {
        struct Tensor *a = random_tensor(7 + 2 * dt, 3, shape, dt), *b = random_tensor(8 + 2 * dt, 3, shape, dt);
        struct Tensor *o = tensor_create(3, shape, dt);
        void (*ops[5])(struct Tensor *, const struct Tensor *, const struct Tensor *) = {ew_add, ew_sub, ew_mul, ew_div, ew_max};
        for (int op = 0; op < 5; op++) {
            ops[op](o, a, b);
            for (uint64_t i = 0; i < 105; i++) {
                double x = tensor_at(a, i), y = tensor_at(b, i);
                double want[5] = {x + y, x - y, x * y, x / y, x > y ? x : y};
                double w = dt == DT_FLOAT32 ? (float)want[op] : want[op];
                if (tensor_at(o, i) != w) { EXPECT_MSG(0, "op %d dtype %u element %llu", op, dt, (unsigned long long)i); break; }
            }
        }
        ew_scalar_mul(o, a, 0.5);
        EXPECT_NEAR(tensor_at(o, 17), tensor_at(a, 17) * 0.5, 0);
        ew_scalar_add(o, a, 2.0);
        EXPECT_NEAR(tensor_at(o, 17), dt == DT_FLOAT32 ? (float)(tensor_at(a, 17) + 2) : tensor_at(a, 17) + 2, 0);
        tensor_copy_into(o, a);
        ew_add(o, o, b); /* out aliases a */
        EXPECT_NEAR(tensor_at(o, 104), dt == DT_FLOAT32 ? (float)(tensor_at(a, 104) + tensor_at(b, 104)) : tensor_at(a, 104) + tensor_at(b, 104), 0);
        tensor_free(a), tensor_free(b), tensor_free(o);
    }
}

/* Naive double reference: sum over `axis` by multi-index. */
static double naive_reduce(const struct Tensor *t, uint64_t axis, const uint64_t *out_idx)
{
    uint64_t idx[4];
    double s = 0;
    for (uint64_t d = 0, e = 0; d < t->ndim; d++) idx[d] = d == axis ? 0 : out_idx[e++];
    for (uint64_t j = 0; j < t->shape[axis]; j++) {
        idx[axis] = j;
        s += tensor_get(t, idx);
    }
    return s;
}

static void check_reduction(const struct Tensor *t, uint64_t axis, int mean, double tol)
{
    uint64_t oshape[4], on = 0, len = t->shape[axis];
    for (uint64_t d = 0; d < t->ndim; d++)
        if (d != axis) oshape[on++] = t->shape[d];
    if (on == 0) oshape[on++] = 1;
    struct Tensor *out = tensor_create(on, oshape, t->dtype);
    (mean ? reduce_mean : reduce_sum)(t, axis, out);
    uint64_t n = tensor_numel(out), idx[4] = {0};
    for (uint64_t i = 0; i < n; i++) {
        double want = naive_reduce(t, axis, idx) / (mean ? (double)len : 1.0);
        double got = tensor_get(out, idx);
        if (!(fabs(got - want) <= tol * (1 + fabs(want)) * (mean ? 1 : (double)len))) {
            EXPECT_MSG(0, "%s axis %llu of %llu-D: element %llu = %.9g, expected %.9g", mean ? "mean" : "sum",
                       (unsigned long long)axis, (unsigned long long)t->ndim, (unsigned long long)i, got, want);
            break;
        }
        for (uint64_t d = on; d-- > 0;) /* next multi-index, row-major */
            if (++idx[d] < out->shape[d]) break; else idx[d] = 0;
    }
    tensor_free(out);
}

TEST_ISA(reduce_every_axis_1d_to_4d)
{
    static const uint64_t shapes[][4] = {{1003}, {7, 33}, {1, 129}, {3, 5, 17}, {2, 1, 9}, {2, 3, 4, 35}, {5, 1, 7, 1}};
    static const uint64_t ndims[] = {1, 2, 2, 3, 3, 4, 4};
    for (uint32_t dt = 0; dt < DT_COUNT; dt++)
        for (size_t s = 0; s < sizeof ndims / sizeof ndims[0]; s++) {
            struct Tensor *t = random_tensor(11 + 16 * dt + s, ndims[s], shapes[s], dt);
            for (uint64_t axis = 0; axis < ndims[s]; axis++) {
                check_reduction(t, axis, 0, dt == DT_FLOAT32 ? 1e-6 : 1e-14);
                check_reduction(t, axis, 1, dt == DT_FLOAT32 ? 1e-6 : 1e-14);
            }
            tensor_free(t);
        }
}

TEST(reduce_keepdim_and_mean_values)
{
    uint64_t shape[2] = {2, 3}, kshape[2] = {2, 1};
    struct Tensor *t = tensor_create(2, shape, DT_FLOAT64), *o = tensor_create(2, kshape, DT_FLOAT64);
    for (int i = 0; i < 6; i++) tensor_f64(t)[i] = i + 1; /* rows 1 2 3 / 4 5 6 */
    reduce_mean(t, 1, o);
    EXPECT_NEAR(tensor_f64(o)[0], 2.0, 1e-15);
    EXPECT_NEAR(tensor_f64(o)[1], 5.0, 1e-15);
    reduce_sum(t, 1, o);
    EXPECT_NEAR(tensor_f64(o)[1], 15.0, 0);
    tensor_free(t), tensor_free(o);
    /* An empty axis: the sum is 0 and the mean NaN, as in PyTorch. */
    uint64_t eshape[2] = {2, 0};
    struct Tensor *e = tensor_create(2, eshape, DT_FLOAT32), *eo = tensor_create(1, eshape, DT_FLOAT32);
    reduce_sum(e, 1, eo);
    EXPECT_NEAR(tensor_f32(eo)[1], 0.0, 0);
    reduce_mean(e, 1, eo);
    EXPECT(isnan(tensor_f32(eo)[0]));
    tensor_free(e), tensor_free(eo);
}

/* ---- panic paths, each in a child process ---- */

struct PanicCase { uint64_t sa[2], sb[2]; uint32_t da, db; int kind; };

static void panic_child(void *arg)
{
    const struct PanicCase *c = arg;
    struct Tensor *a = tensor_zeros(2, c->sa, c->da), *b = tensor_zeros(2, c->sb, c->db);
    uint64_t bad[2] = {5, 5}, one = 1;
    switch (c->kind) {
    case 0: ew_add(a, a, b); break;
    case 1: tensor_reshape(a, 2, bad); break;
    case 2: reduce_sum(a, 2, b); break;
    case 3: reduce_sum(a, 0, b); break;
    case 4: { struct Tensor *o = tensor_zeros(1, &one, c->da); ew_scalar_mul(o, a, 2); break; }
    }
}

static void expect_panic(struct PanicCase c, const char *m1, const char *m2)
{
    char err[1024];
    int rc = test_run_child(panic_child, &c, err, sizeof err);
    EXPECT_MSG(rc != 0, "child exited 0 (case %d)", c.kind);
    EXPECT_STR_CONTAINS(err, m1);
    EXPECT_STR_CONTAINS(err, m2);
}

TEST(ew_panics_name_shapes_and_dtypes)
{
    expect_panic((struct PanicCase){{2, 3}, {3, 2}, DT_FLOAT32, DT_FLOAT32, 0}, "2x3", "3x2");
    expect_panic((struct PanicCase){{2, 3}, {2, 3}, DT_FLOAT32, DT_FLOAT64, 0}, "float32", "float64");
    expect_panic((struct PanicCase){{2, 3}, {2, 3}, DT_FLOAT64, DT_FLOAT64, 1}, "2x3", "5x5");
    expect_panic((struct PanicCase){{2, 3}, {2, 3}, DT_FLOAT64, DT_FLOAT64, 2}, "axis 2", "2x3");
    expect_panic((struct PanicCase){{2, 3}, {4, 4}, DT_FLOAT64, DT_FLOAT64, 3}, "2x3", "4x4");
    expect_panic((struct PanicCase){{2, 3}, {2, 3}, DT_FLOAT32, DT_FLOAT32, 4}, "ew_scalar_mul", "2x3");
}

/* MINIDL_ISA is read once, at start-up, so these run this test binary afresh. */
static int run_self(const char *env, const char *filter, char *out, size_t ocap, char *err, size_t ecap)
{
    char exe[512], cmd[1200];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return -1;
    exe[n] = 0;
    snprintf(cmd, sizeof cmd, "%s '%s' %s", env, exe, filter);
    return test_run_cmd(cmd, out, ocap, err, ecap);
}

TEST(isa_env_override)
{
    char out[4096], err[4096];
    int rc = run_self("MINIDL_ISA=bogus", "kernels_dispatch_table", out, sizeof out, err, sizeof err);
    EXPECT_EQ_INT(rc, 1);
    EXPECT_STR_CONTAINS(err, "MINIDL_ISA=bogus");
    EXPECT_STR_CONTAINS(err, "avx512");
    /* A forced path runs the per-ISA tests on that path only, on one thread and on three. */
    rc = run_self("MINIDL_ISA=sse2", "kernels_dispatch_table", out, sizeof out, err, sizeof err);
    EXPECT_EQ_INT(rc, 0);
    EXPECT_STR_CONTAINS(out, "2 passed, 0 failed");
    for (int isa = ISA_AVX2; isa < ISA_COUNT; isa++) {
        if (kernels_isa_supported(isa)) continue;
        char env[64];
        snprintf(env, sizeof env, "MINIDL_ISA=%s", isa_name(isa));
        rc = run_self(env, "kernels_dispatch_table", out, sizeof out, err, sizeof err);
        EXPECT_EQ_INT(rc, 1);
        EXPECT_STR_CONTAINS(err, "does not support");
    }
}
