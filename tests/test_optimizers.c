/* Tests of the optimizers: three steps of SGD (with and without momentum) and Adam on
 * two parameters against the formulas evaluated here in double, one step against a
 * number worked out by hand, both dtypes, every ISA path; zero_grad; no heap in a step. */
#include "test.h"
#include "mem.h"
#include "config_parser.h"
#include "optimizers.h"
#include "tensor.h"
#include "threads.h"
#include "kernels/dispatch.h"
#include "kernels/ew.h"

#include <math.h>
#include <string.h>

#define NP 2
#define MAXN 64
#define STEPS 3

/* Two parameters (3 and 5x7 elements: SIMD bodies and scalar tails) with their
 * gradients, and a double copy of everything for the reference. */
struct Fixture {
    uint32_t dtype;
    struct Tensor *p[NP], *g[NP];
    double ref_p[NP][MAXN], ref_m[NP][MAXN], ref_v[NP][MAXN];
};

static void set(struct Tensor *t, uint64_t i, double v)
{
    if (t->dtype == DT_FLOAT32) tensor_f32(t)[i] = (float)v;
    else tensor_f64(t)[i] = v;
}

static void fixture_init(struct Fixture *f, uint32_t dtype)
{
    uint64_t s0[1] = {3}, s1[2] = {5, 7};
    memset(f, 0, sizeof *f);
    f->dtype = dtype;
    f->p[0] = tensor_create(1, s0, dtype);
    f->g[0] = tensor_zeros(1, s0, dtype);
    f->p[1] = tensor_create(2, s1, dtype);
    f->g[1] = tensor_zeros(2, s1, dtype);
    for (int k = 0; k < NP; k++)
        for (uint64_t i = 0; i < tensor_numel(f->p[k]); i++) {
            set(f->p[k], i, 0.5 - 0.3 * (double)i + k);
            f->ref_p[k][i] = tensor_at(f->p[k], i); /* as stored (rounded to float for f32) */
        }
}

static void fixture_free(struct Fixture *f)
{
    for (int k = 0; k < NP; k++) tensor_free(f->p[k]), tensor_free(f->g[k]);
}

/* Gradients of step t: varied signs and sizes; returned as stored. */
static double fixture_grad(struct Fixture *f, int k, uint64_t i, int t)
{
    set(f->g[k], i, 0.2 * cos(1.0 + (double)i + 3.0 * k + 0.7 * t) * (t + 1));
    return tensor_at(f->g[k], i);
}

static void check_params(struct Fixture *f, double tol)
{
    for (int k = 0; k < NP; k++)
        for (uint64_t i = 0; i < tensor_numel(f->p[k]); i++)
            EXPECT_NEAR(tensor_at(f->p[k], i), f->ref_p[k][i], tol);
}

/* Runs STEPS steps of opt and of the reference (kind 0: SGD, 1: Adam). */
static void run_steps(struct Fixture *f, struct Optimizer *opt, int adam, double lr, double mu,
                      double b1, double b2, double eps)
{
    for (int t = 1; t <= STEPS; t++) {
        for (int k = 0; k < NP; k++)
            for (uint64_t i = 0; i < tensor_numel(f->p[k]); i++) {
                double g = fixture_grad(f, k, i, t), *p = &f->ref_p[k][i];
                double *m = &f->ref_m[k][i], *v = &f->ref_v[k][i];
                if (!adam) {
                    *m = mu * *m + g;
                    *p -= lr * (mu != 0 ? *m : g);
                    continue;
                }
                *m = b1 * *m + (1 - b1) * g;
                *v = b2 * *v + (1 - b2) * g * g;
                *p -= lr * (*m / (1 - pow(b1, t))) / (sqrt(*v / (1 - pow(b2, t))) + eps);
            }
        uint64_t calls = mem_alloc_calls();
        opt->step(opt);
        EXPECT_EQ_INT(mem_alloc_calls(), calls); /* state was allocated at creation */
        check_params(f, f->dtype == DT_FLOAT32 ? 2e-6 : 1e-13);
    }
}

static void sgd_case(uint32_t dtype, double mu)
{
    struct Fixture f;
    fixture_init(&f, dtype);
    struct Optimizer *opt = optim_sgd_create(f.p, f.g, NP, 0.1, mu);
    EXPECT_EQ_INT(opt->n_params, NP);
    run_steps(&f, opt, 0, 0.1, mu, 0, 0, 0);
    optim_free(opt);
    fixture_free(&f);
}

TEST_ISA(optim_sgd_three_steps)
{
    sgd_case(DT_FLOAT32, 0);
    sgd_case(DT_FLOAT64, 0);
    sgd_case(DT_FLOAT32, 0.9);
    sgd_case(DT_FLOAT64, 0.9);
}

static void adam_case(uint32_t dtype, double lr, double b1, double b2, double eps)
{
    struct Fixture f;
    fixture_init(&f, dtype);
    struct Optimizer *opt = optim_adam_create(f.p, f.g, NP, lr, b1, b2, eps);
    run_steps(&f, opt, 1, lr, 0, b1, b2, eps);
    optim_free(opt);
    fixture_free(&f);
}

TEST_ISA(optim_adam_three_steps)
{
    adam_case(DT_FLOAT32, 1e-3, 0.9, 0.999, 1e-8);
    adam_case(DT_FLOAT64, 1e-3, 0.9, 0.999, 1e-8);
    adam_case(DT_FLOAT32, 0.05, 0.8, 0.99, 1e-3); /* a large eps makes eps's place matter */
    adam_case(DT_FLOAT64, 0.05, 0.8, 0.99, 1e-3);
}

/* One parameter 0.5 with gradient 0.2, worked out by hand:
 *   SGD lr 0.1:               0.5 - 0.1*0.2                         = 0.48
 *   SGD lr 0.1, momentum 0.9: step 1 as above; step 2 with g = 0.1:
 *                             v = 0.9*0.2 + 0.1 = 0.28, p = 0.48 - 0.028 = 0.452
 *   Adam lr 0.01, eps 1e-8:   m^ = g, v^ = g^2 after one step, so
 *                             p = 0.5 - 0.01 * 0.2/(0.2 + 1e-8)     = 0.4900000005 (to 1e-17) */
static void hand_case(uint32_t dtype)
{
    uint64_t one[1] = {1};
    struct Tensor *p = tensor_create(1, one, dtype), *g = tensor_create(1, one, dtype);
    double tol = dtype == DT_FLOAT32 ? 1e-7 : 1e-15;
    struct Optimizer *o;

    set(p, 0, 0.5), set(g, 0, 0.2);
    o = optim_sgd_create(&p, &g, 1, 0.1, 0);
    o->step(o);
    EXPECT_NEAR(tensor_at(p, 0), 0.48, tol);
    optim_free(o);

    set(p, 0, 0.5), set(g, 0, 0.2);
    o = optim_sgd_create(&p, &g, 1, 0.1, 0.9);
    o->step(o);
    set(g, 0, 0.1);
    o->step(o);
    EXPECT_NEAR(tensor_at(p, 0), 0.452, tol);
    optim_free(o);

    set(p, 0, 0.5), set(g, 0, 0.2);
    o = optim_adam_create(&p, &g, 1, 0.01, 0.9, 0.999, 1e-8);
    o->step(o);
    EXPECT_NEAR(tensor_at(p, 0), 0.4900000005, dtype == DT_FLOAT32 ? 1e-7 : 1e-15);
    optim_free(o);

    tensor_free(p);
    tensor_free(g);
}

TEST_ISA(optim_hand_computed_step)
{
    hand_case(DT_FLOAT32);
    hand_case(DT_FLOAT64);
}

/* Cosine decay (PyTorch's CosineAnnealingLR, eta_min 0): lr (1 + cos(pi k / T)) / 2 */
TEST(optim_lr_schedules)
{
    EXPECT_NEAR(optim_lr_at(LR_COSINE, 0.004, 0, 100), 0.004, 1e-18);
    EXPECT_NEAR(optim_lr_at(LR_COSINE, 0.004, 25, 100), 0.002 * (1 + sqrt(0.5)), 1e-18);
    EXPECT_NEAR(optim_lr_at(LR_COSINE, 0.004, 50, 100), 0.002, 1e-18);
    EXPECT_NEAR(optim_lr_at(LR_COSINE, 0.004, 99, 100), 0.002 * (1 - cos(M_PI / 100)), 1e-18);
    EXPECT_NEAR(optim_lr_at(LR_COSINE, 0.004, 100, 100), 0, 1e-18);
    for (uint64_t k = 0; k < 300; k += 37) EXPECT_NEAR(optim_lr_at(LR_CONSTANT, 0.004, k, 100), 0.004, 0);

    /* the rate set is the one a step uses: SGD 0.5 - 0.05*0.2, Adam 0.5 - 0.02*0.2/(0.2 + 1e-8) */
    uint64_t one[1] = {1};
    struct Tensor *p = tensor_create(1, one, DT_FLOAT64), *g = tensor_create(1, one, DT_FLOAT64);
    set(p, 0, 0.5), set(g, 0, 0.2);
    struct Optimizer *o = optim_sgd_create(&p, &g, 1, 0.1, 0);
    optim_set_lr(o, 0.05);
    EXPECT_NEAR(optim_lr(o), 0.05, 0);
    o->step(o);
    EXPECT_NEAR(tensor_at(p, 0), 0.49, 1e-15);
    optim_free(o);
    set(p, 0, 0.5);
    o = optim_adam_create(&p, &g, 1, 0.01, 0.9, 0.999, 1e-8);
    optim_set_lr(o, 0.02);
    o->step(o);
    EXPECT_NEAR(tensor_at(p, 0), 0.480000001, 1e-15);
    optim_free(o);
    tensor_free(p);
    tensor_free(g);
}

TEST(optim_zero_grad)
{
    for (uint32_t dt = 0; dt < DT_COUNT; dt++) {
        struct Fixture f;
        fixture_init(&f, dt);
        struct Optimizer *opt = optim_adam_create(f.p, f.g, NP, 0.1, 0.9, 0.999, 1e-8);
        for (int k = 0; k < NP; k++) tensor_fill(f.g[k], 3.5);
        opt->zero_grad(opt);
        for (int k = 0; k < NP; k++)
            for (uint64_t i = 0; i < tensor_numel(f.g[k]); i++) EXPECT_EQ_INT(tensor_at(f.g[k], i), 0);
        check_params(&f, 0); /* zero_grad leaves the parameters alone */
        /* A step on zero gradients moves nothing (m = v = 0, so the update is 0). */
        opt->step(opt);
        check_params(&f, 0);
        optim_free(opt);
        struct Optimizer *sgd = optim_sgd_create(f.p, f.g, NP, 0.1, 0.9);
        tensor_fill(f.g[1], -1);
        sgd->zero_grad(sgd);
        EXPECT_EQ_INT(tensor_at(f.g[1], 34), 0);
        optim_free(sgd);
        fixture_free(&f);
    }
}

/* A step is one job over the parameters laid end to end, cut into runs that cross from
 * one parameter into the next: at 1, 2 and 3 threads, three steps of Adam and of SGD
 * (with momentum and without) over parameters of odd sizes (a lone element, a tail of
 * every vector width, 20000 elements that are cut inside) give the bits of the ISA's
 * own kernel run over each parameter whole. */
#define CUT_NP 7
static const uint64_t cut_sizes[CUT_NP] = {1, 20000, 63, 65, 3, 9000, 129};

static void cut_fill(struct Tensor **t, uint32_t dt, double phase)
{
    for (int k = 0; k < CUT_NP; k++)
        for (uint64_t i = 0; i < cut_sizes[k]; i++) set(t[k], i, sin(phase + 0.37 * (double)i + 1.3 * k));
}

#define CUT_REF(T, sfx)                                                                        \
    static void cut_ref_##sfx(int kind, struct Tensor **p, struct Tensor **g, T **m, T **v, int t) \
    {                                                                                          \
        const struct EwKernels *k = kernels_get()->ew1;                                        \
        double lr = 0.01, b1 = 0.9, b2 = 0.98;                                                 \
        for (int i = 0; i < CUT_NP; i++) {                                                     \
            T *pd = p[i]->data;                                                                \
            const T *gd = g[i]->data;                                                          \
            size_t n = cut_sizes[i];                                                           \
            if (kind == 0) {                                                                   \
                k->adam_##sfx(n, pd, gd, m[i], v[i], (T)b1, (T)b2, (T)(lr / (1 - pow(b1, t))), \
                              (T)sqrt(1 - pow(b2, t)), (T)1e-8);                               \
            } else if (kind == 1) {                                                            \
                k->scal_##sfx[EW_SMUL](n, m[i], (T)0.9, m[i]);                                 \
                k->axpy_##sfx(n, 1, gd, m[i]);                                                 \
                k->axpy_##sfx(n, (T)-lr, m[i], pd);                                            \
            } else {                                                                           \
                k->axpy_##sfx(n, (T)-lr, gd, pd);                                              \
            }                                                                                  \
        }                                                                                      \
    }
CUT_REF(float, f32)
CUT_REF(double, f64)

TEST_ISA(optim_step_cut_across_parameters_any_threads)
{
    int saved = threads_count();
    for (uint32_t dt = 0; dt < DT_COUNT; dt++)
        for (int kind = 0; kind < 3; kind++)
            for (int nt = 1; nt <= 3; nt++) {
                threads_set(nt);
                struct Tensor *p[CUT_NP], *g[CUT_NP], *rp[CUT_NP];
                void *m[CUT_NP], *v[CUT_NP];
                for (int k = 0; k < CUT_NP; k++) {
                    p[k] = tensor_create(1, &cut_sizes[k], dt);
                    rp[k] = tensor_create(1, &cut_sizes[k], dt);
                    g[k] = tensor_zeros(1, &cut_sizes[k], dt);
                    m[k] = mem_alloc_zeroed(cut_sizes[k] * dtype_size(dt));
                    v[k] = mem_alloc_zeroed(cut_sizes[k] * dtype_size(dt));
                }
                cut_fill(p, dt, 0);
                cut_fill(rp, dt, 0);
                struct Optimizer *o = kind == 0 ? optim_adam_create(p, g, CUT_NP, 0.01, 0.9, 0.98, 1e-8)
                                                : optim_sgd_create(p, g, CUT_NP, 0.01, kind == 1 ? 0.9 : 0);
                for (int t = 1; t <= 3; t++) {
                    cut_fill(g, dt, 0.5 * t);
                    o->step(o);
                    if (dt == DT_FLOAT32) cut_ref_f32(kind, rp, g, (float **)m, (float **)v, t);
                    else cut_ref_f64(kind, rp, g, (double **)m, (double **)v, t);
                }
                for (int k = 0; k < CUT_NP; k++)
                    EXPECT_MSG(memcmp(p[k]->data, rp[k]->data, cut_sizes[k] * dtype_size(dt)) == 0,
                               "%s %s, %d threads: parameter %d (%llu elements) differs from its kernel run whole",
                               dtype_name(dt), kind == 0 ? "Adam" : kind == 1 ? "SGD momentum" : "SGD", nt, k,
                               (unsigned long long)cut_sizes[k]);
                optim_free(o);
                for (int k = 0; k < CUT_NP; k++)
                    tensor_free(p[k]), tensor_free(rp[k]), tensor_free(g[k]), mem_free(m[k]), mem_free(v[k]);
            }
    threads_set(saved);
}

/* A step by parts (train's fused step: a Linear's weight updated as its gradient is
 * written): some parameters updated by ranges from multiples of 64 elements, in any
 * order, the rest by optim_step_finish, give the whole step's bits, parameters and
 * buffers, at 1 and 3 threads over three steps. */
static void parts_step(struct Optimizer *o, int step)
{
    uint8_t done[CUT_NP] = {0};
    EXPECT(optim_step_begin(o) == 1);
    for (int k = CUT_NP - 1; k >= 0; k--) {
        if ((k + step) % 2) continue; /* a different half of the parameters each step */
        uint64_t n = cut_sizes[k], piece = 64 * (uint64_t)(1 + k % 3);
        for (uint64_t lo = (n - 1) / piece * piece;; lo -= piece) { /* the last range first */
            optim_step_range(o, (uint32_t)k, lo, n - lo < piece ? n - lo : piece);
            if (lo == 0) break;
        }
        done[k] = 1;
    }
    optim_step_finish(o, done);
}

TEST_ISA(optim_step_by_parts_gives_the_whole_steps_bits)
{
    int saved = threads_count();
    for (uint32_t dt = 0; dt < DT_COUNT; dt++)
        for (int kind = 0; kind < 3; kind++)
            for (int nt = 1; nt <= 3; nt += 2) {
                threads_set(nt);
                struct Tensor *p[2][CUT_NP], *g[CUT_NP];
                for (int k = 0; k < CUT_NP; k++) {
                    for (int w = 0; w < 2; w++) p[w][k] = tensor_create(1, &cut_sizes[k], dt);
                    g[k] = tensor_zeros(1, &cut_sizes[k], dt);
                }
                struct Optimizer *o[2];
                for (int w = 0; w < 2; w++) {
                    cut_fill(p[w], dt, 0);
                    o[w] = kind == 0 ? optim_adam_create(p[w], g, CUT_NP, 0.01, 0.9, 0.98, 1e-8)
                                     : optim_sgd_create(p[w], g, CUT_NP, 0.01, kind == 1 ? 0.9 : 0);
                }
                for (int t = 1; t <= 3; t++) {
                    cut_fill(g, dt, 0.5 * t);
                    o[0]->step(o[0]);
                    parts_step(o[1], t);
                }
                EXPECT_EQ_INT(optim_steps(o[1]), optim_steps(o[0]));
                for (int k = 0; k < CUT_NP; k++) {
                    int same = memcmp(p[0][k]->data, p[1][k]->data, cut_sizes[k] * dtype_size(dt)) == 0;
                    for (uint32_t b = 0; b < optim_buffers(o[0]); b++) {
                        struct Tensor *x = optim_buffer(o[0], (uint32_t)k, b), *y = optim_buffer(o[1], (uint32_t)k, b);
                        same &= memcmp(x->data, y->data, cut_sizes[k] * dtype_size(dt)) == 0;
                        tensor_free(x), tensor_free(y);
                    }
                    EXPECT_MSG(same, "%s %s, %d threads: parameter %d (%llu elements) by parts is not the whole step",
                               dtype_name(dt), kind == 0 ? "Adam" : kind == 1 ? "SGD momentum" : "SGD", nt, k,
                               (unsigned long long)cut_sizes[k]);
                }
                for (int w = 0; w < 2; w++) optim_free(o[w]);
                for (int k = 0; k < CUT_NP; k++) tensor_free(p[0][k]), tensor_free(p[1][k]), tensor_free(g[k]);
            }
    threads_set(saved);
}

static void spy_step(struct Optimizer *o) { (void)o; }

static void bad_range_child(void *arg)
{
    struct Optimizer *o = arg;
    optim_step_begin(o);
    optim_step_range(o, 1, 32, 64); /* not from a multiple of 64 */
}

/* An optimizer whose step the caller replaced is not stepped by parts (its step is run
 * whole, by the caller); a range off the 64-element grid is refused. */
TEST(optim_step_by_parts_only_for_its_own_step)
{
    struct Tensor *p[CUT_NP], *g[CUT_NP];
    for (int k = 0; k < CUT_NP; k++)
        p[k] = tensor_zeros(1, &cut_sizes[k], DT_FLOAT32), g[k] = tensor_zeros(1, &cut_sizes[k], DT_FLOAT32);
    struct Optimizer *o = optim_adam_create(p, g, CUT_NP, 0.01, 0.9, 0.98, 1e-8);
    char err[1024];
    EXPECT(test_run_child(bad_range_child, o, err, sizeof err) != 0);
    EXPECT_STR_CONTAINS(err, "elements 32 + 64 (not from a multiple of 64)");
    void (*own)(struct Optimizer *) = o->step;
    o->step = spy_step;
    EXPECT_EQ_INT(optim_step_begin(o), 0);
    EXPECT_EQ_INT(optim_steps(o), 0);
    o->step = own;
    EXPECT_EQ_INT(optim_step_begin(o), 1);
    EXPECT_EQ_INT(optim_steps(o), 1);
    optim_free(o);
    for (int k = 0; k < CUT_NP; k++) tensor_free(p[k]), tensor_free(g[k]);
}
