/* optimizers: SGD with momentum and Adam (include/optimizers.h, SPEC section 8).
 *
 * The moment buffers of all parameters are carved from one aligned block made at
 * creation; a step only walks them, never allocates. The inner loops are the dispatched
 * SIMD kernels of kernels/ew.h (axpy, scalar multiply, adam), so each ISA path is used.
 * A step is one parallel job over all the parameters laid end to end (threads.h): the
 * small ones (biases, a last layer) ride in the tasks of the large instead of each
 * being a job of its own, which the threads wait on one after another. */
#include "optimizers.h"
#include "config_parser.h"
#include "generic.h"
#include "kernels/dispatch.h"
#include "kernels/ew.h"
#include "mem.h"
#include "threads.h"
#include "utils.h"

#include <math.h>
#include <string.h>

#define OPT_ALIGN 64
#define OPT_STR_(x) #x
#define OPT_STR(x) OPT_STR_(x) /* a macro's value as a string literal */

struct OptState {
    double lr, momentum, beta1, beta2, eps;
    uint32_t n_bufs;  /* per parameter: 0, 1 (m) or 2 (m and v) */
    uint64_t t;    /* Adam's step count */
    int open;      /* a step by parts begun (optim_step_begin) and not finished */
    double step, bc2_sqrt; /* that step's Adam corrections */
    void **m, **v; /* per parameter: SGD velocity in m; Adam's moments in m and v */
    void *block;   /* the one allocation behind every m[i] and v[i] */
};

static size_t round_up(size_t n) { return (n + OPT_ALIGN - 1) & ~(size_t)(OPT_ALIGN - 1); }

void optim_set_lr(struct Optimizer *opt, double lr) { ((struct OptState *)opt->state)->lr = lr; }
double optim_lr(const struct Optimizer *opt) { return ((const struct OptState *)opt->state)->lr; }

double optim_lr_at(int schedule, double lr, uint64_t step, uint64_t total)
{
    if (schedule != LR_COSINE || total == 0) return lr;
    return lr * 0.5 * (1 + cos(M_PI * (double)step / (double)total));
}

uint32_t optim_buffers(const struct Optimizer *opt) { return ((const struct OptState *)opt->state)->n_bufs; }
uint64_t optim_steps(const struct Optimizer *opt) { return ((const struct OptState *)opt->state)->t; }
void optim_set_steps(struct Optimizer *opt, uint64_t steps) { ((struct OptState *)opt->state)->t = steps; }

struct Tensor *optim_buffer(struct Optimizer *opt, uint32_t i, uint32_t which)
{
    struct OptState *s = opt->state;
    CHECK(i < opt->n_params && which < s->n_bufs, "buffer %u of parameter %u (%u per parameter, %u parameters)",
          which, i, s->n_bufs, opt->n_params);
    struct Tensor *p = opt->params[i], *v = tensor_view(p, p->ndim, p->shape, NULL);
    v->data = which ? s->v[i] : s->m[i];
    return v;
}

static size_t param_bytes(const struct Tensor *t) { return tensor_numel(t) * dtype_size(t->dtype); }

/* Checks the pairs once, so the steps can trust them. */
static void check_params(struct Tensor **params, struct Tensor **grads, uint32_t n)
{
    char a[96], b[96];
    for (uint32_t i = 0; i < n; i++) {
        const struct Tensor *p = params[i], *g = grads[i];
        CHECK(p && g, "parameter %u has no tensor or gradient", i);
        if (!tensor_same_shape(p, g) || p->dtype != g->dtype || !tensor_is_contiguous(p) ||
            !tensor_is_contiguous(g))
            panic("optimizer: parameter %u is %s %s but its gradient is %s %s (both must match and be contiguous)",
                  i, tensor_shape_str(p, a, sizeof a), dtype_name(p->dtype), tensor_shape_str(g, b, sizeof b),
                  dtype_name(g->dtype));
    }
}

/* The optimizer with its own copies of the pointer arrays, and n_bufs zeroed moment
 * buffers per parameter, each shaped like it. */
static struct Optimizer *optim_new(struct Tensor **params, struct Tensor **grads, uint32_t n, int n_bufs)
{
    check_params(params, grads, n);
    struct Optimizer *o = mem_alloc_zeroed(sizeof *o);
    struct OptState *s = mem_alloc_zeroed(sizeof *s);
    o->n_params = n;
    o->params = mem_alloc(n * sizeof *o->params);
    o->grads = mem_alloc(n * sizeof *o->grads);
    memcpy(o->params, params, n * sizeof *params);
    memcpy(o->grads, grads, n * sizeof *grads);
    o->state = s;
    s->m = mem_alloc_zeroed(n * sizeof *s->m);
    s->v = mem_alloc_zeroed(n * sizeof *s->v);
    s->n_bufs = (uint32_t)n_bufs;
    if (n_bufs == 0) return o;
    size_t total = 0;
    for (uint32_t i = 0; i < n; i++) total += (size_t)n_bufs * round_up(param_bytes(params[i]));
    s->block = mem_alloc_aligned(total, OPT_ALIGN);
    memset(s->block, 0, total);
    char *at = s->block;
    for (uint32_t i = 0; i < n; i++) {
        size_t sz = round_up(param_bytes(params[i]));
        s->m[i] = at, at += sz;
        if (n_bufs == 2) s->v[i] = at, at += sz;
    }
    return o;
}

static void zero_grad(struct Optimizer *o)
{
    for (uint32_t i = 0; i < o->n_params; i++) memset(o->grads[i]->data, 0, param_bytes(o->grads[i]));
}

/* One template for both dtypes; the kernels come from the table of the ISA in use. */
#define OPT_STEPS(T, sfx)                                                                  \
    static void sgd_param_##sfx(const struct EwKernels *k, size_t n, T *p, const T *g, T *vel, \
                                T lr, T mu)                                                \
    {                                                                                      \
        if (!vel) {                                                                        \
            k->axpy_##sfx(n, -lr, g, p);                                                   \
            return;                                                                        \
        }                                                                                  \
        k->scal_##sfx[EW_SMUL](n, vel, mu, vel); /* v = mu*v + g, as PyTorch's buf */     \
        k->axpy_##sfx(n, 1, g, vel);                                                       \
        k->axpy_##sfx(n, -lr, vel, p);                                                     \
    }                                                                                      \
    static void adam_param_##sfx(const struct EwKernels *k, size_t n, T *p, const T *g, T *m, \
                                 T *v, const struct OptState *s, double step, double bc2_sqrt) \
    {                                                                                      \
        k->adam_##sfx(n, p, g, m, v, (T)s->beta1, (T)s->beta2, (T)step, (T)bc2_sqrt, (T)s->eps); \
    }
GEN_BOTH(OPT_STEPS)

/* One step over all parameters: task t takes elements [t chunk, (t + 1) chunk) of the
 * parameters laid end to end, each from a multiple of 64 elements (where par_map_chunk
 * cuts: whole lines, and vectors with the same tails as the uncut call), a run of each
 * parameter it covers. Every element gets the same arithmetic however the runs are
 * cut, so the result is the same on any number of threads. */
static uint64_t step_span(const struct Tensor *p)
{
    return (tensor_numel(p) + OPTIM_RANGE_ALIGN - 1) / OPTIM_RANGE_ALIGN * OPTIM_RANGE_ALIGN;
}

struct StepJob {
    struct Optimizer *o;
    int adam;
    uint64_t chunk;
    double step, bc2_sqrt; /* Adam's bias corrections */
    const uint8_t *skip;   /* or NULL: parameters the step leaves (optim_step_finish) */
};

static int skipped(const struct StepJob *j, uint32_t i) { return j->skip && j->skip[i]; }

static void step_run(const struct StepJob *j, uint32_t i, uint64_t lo, uint64_t n)
{
    const struct OptState *s = j->o->state;
    const struct EwKernels *k = kernels_get()->ew1;
    struct Tensor *p = j->o->params[i];
    size_t es = dtype_size(p->dtype), off = lo * es;
    char *pd = (char *)p->data + off, *m = s->m[i] ? (char *)s->m[i] + off : NULL;
    const char *g = (const char *)j->o->grads[i]->data + off;
    if (j->adam)
        DT_CALL(p->dtype, adam_param, k, n, (void *)pd, (const void *)g, (void *)m, (void *)((char *)s->v[i] + off), s,
                j->step, j->bc2_sqrt);
    else
        DT_CALL(p->dtype, sgd_param, k, n, (void *)pd, (const void *)g, (void *)m, s->lr, s->momentum);
}

static void step_task(void *ctx, size_t task, int worker)
{
    (void)worker;
    const struct StepJob *j = ctx;
    uint64_t lo = task * j->chunk, hi = lo + j->chunk, a = 0;
    for (uint32_t i = 0; i < j->o->n_params && a < hi; i++) {
        if (skipped(j, i)) continue;
        uint64_t at = a, b = a + tensor_numel(j->o->params[i]);
        a += step_span(j->o->params[i]);
        if (b <= lo) continue;
        uint64_t from = lo > at ? lo : at, to = hi < b ? hi : b;
        step_run(j, i, from - at, to - from);
    }
}

static void run_step(struct StepJob *j)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < j->o->n_params; i++) total += skipped(j, i) ? 0 : step_span(j->o->params[i]);
    if (!total) return;
    j->chunk = par_map_chunk(total, dtype_size(j->o->params[0]->dtype));
    par_run((total + j->chunk - 1) / j->chunk, step_task, j);
}

static struct StepJob step_job(struct Optimizer *o, const uint8_t *skip)
{
    const struct OptState *s = o->state;
    return (struct StepJob){.o = o, .adam = s->n_bufs == 2, .step = s->step, .bc2_sqrt = s->bc2_sqrt, .skip = skip};
}

/* Every parameter at once: SGD's step, and Adam's after it counts. */
static void whole_step(struct Optimizer *o)
{
    struct StepJob j = step_job(o, NULL);
    run_step(&j);
}

/* The bias corrections are computed in double once per step, as PyTorch does. */
static void adam_count(struct OptState *s)
{
    s->t++;
    s->step = s->lr / (1 - pow(s->beta1, (double)s->t));
    s->bc2_sqrt = sqrt(1 - pow(s->beta2, (double)s->t));
}

static void adam_step(struct Optimizer *o)
{
    adam_count(o->state);
    whole_step(o);
}

/* ---- a step by parts ---- */

int optim_step_begin(struct Optimizer *o)
{
    struct OptState *s = o->state;
    if (o->step != whole_step && o->step != adam_step) return 0; /* a step of the caller's own */
    CHECK(!s->open, "a step by parts begun twice");
    if (o->step == adam_step) adam_count(s);
    s->open = 1;
    return 1;
}

void optim_step_range(struct Optimizer *o, uint32_t i, uint64_t lo, uint64_t n)
{
    const struct OptState *s = o->state;
    int off_grid = lo % OPTIM_RANGE_ALIGN != 0;
    CHECK(s->open && i < o->n_params && !off_grid && lo + n <= tensor_numel(o->params[i]),
          "step of parameter %u, elements %llu + %llu (%s)", i, (unsigned long long)lo, (unsigned long long)n,
          !s->open ? "no step begun" : off_grid ? "not from a multiple of " OPT_STR(OPTIM_RANGE_ALIGN) : "out of range");
    struct StepJob j = step_job(o, NULL);
    step_run(&j, i, lo, n);
}

void optim_step_finish(struct Optimizer *o, const uint8_t *done)
{
    struct OptState *s = o->state;
    CHECK(s->open, "no step by parts begun");
    struct StepJob j = step_job(o, done);
    run_step(&j);
    s->open = 0;
}

struct Optimizer *optim_sgd_create(struct Tensor **params, struct Tensor **grads, uint32_t n,
                                   double lr, double momentum)
{
    struct Optimizer *o = optim_new(params, grads, n, momentum != 0 ? 1 : 0);
    struct OptState *s = o->state;
    s->lr = lr;
    s->momentum = momentum;
    o->step = whole_step;
    o->zero_grad = zero_grad;
    return o;
}

struct Optimizer *optim_adam_create(struct Tensor **params, struct Tensor **grads, uint32_t n,
                                    double lr, double beta1, double beta2, double eps)
{
    struct Optimizer *o = optim_new(params, grads, n, 2);
    struct OptState *s = o->state;
    s->lr = lr;
    s->beta1 = beta1;
    s->beta2 = beta2;
    s->eps = eps;
    o->step = adam_step;
    o->zero_grad = zero_grad;
    return o;
}

void optim_free(struct Optimizer *opt)
{
    if (!opt) return;
    struct OptState *s = opt->state;
    mem_free(s->block);
    mem_free(s->m);
    mem_free(s->v);
    mem_free(s);
    mem_free(opt->params);
    mem_free(opt->grads);
    mem_free(opt);
}
