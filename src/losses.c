/* losses: MSE and CrossEntropy (fused, max-subtracted log-softmax). Rows (for MSE's
 * gradient, elements) are cut across threads above a measured size; each row is computed
 * by one task and the loss's sum over rows is taken after, in row order, so the bits do
 * not depend on the thread count. */
#include "losses.h"
#include "generic.h"
#include "kernels/dispatch.h"
#include "kernels/ew.h"
#include "threads.h"
#include "utils.h"

#include <math.h>

/* ---- MSE: mean over all elements of (p - t)^2 ---- */

#define MSE_T(T, sfx)                                                                     \
    static double mse_fwd_##sfx(size_t n, const void *p_, const void *t_)                 \
    {                                                                                     \
        const T *p = p_, *t = t_;                                                         \
        double s = 0;                                                                     \
        for (size_t i = 0; i < n; i++) { double d = (double)p[i] - (double)t[i]; s += d * d; } \
        return s / (double)n;                                                             \
    }                                                                                     \
    /* gp += scale * (p - t), scale = 2 g / n (negated for the target) */                 \
    static void mse_grad_##sfx(size_t n, double scale, const void *p_, const void *t_, void *gp_) \
    {                                                                                     \
        const T *p = p_, *t = t_;                                                         \
        T *gp = gp_;                                                                      \
        for (size_t i = 0; i < n; i++) gp[i] += (T)(scale * ((double)p[i] - (double)t[i])); \
    }
GEN_BOTH(MSE_T)

static void set_scalar(struct Tensor *t, double v)
{
    if (t->dtype == DT_FLOAT32) tensor_f32(t)[0] = (float)v;
    else tensor_f64(t)[0] = v;
}

/* ---- CrossEntropy: mean over rows of logsumexp(x) - x[target] ---- */

struct CeCtx { const uint32_t *cls; void *probs; /* softmax of the logits, B x C */ };

#define CE_T(T, sfx)                                                                      \
    static T ce_max_##sfx(size_t C, const T *x)                                           \
    {                                                                                     \
        T m = x[0];                                                                       \
        for (size_t i = 1; i < C; i++) m = x[i] > m ? x[i] : m;                           \
        return m;                                                                         \
    }                                                                                     \
    /* a row's probabilities from pr = e^(x - m) rounded to T and s, their sum in order, \
     * and its logsumexp(x) - x[target] into loss */                                      \
    static void ce_row_end_##sfx(size_t C, const T *x, T m, uint32_t c, T *pr, double s, double *loss) \
    {                                                                                     \
        for (size_t i = 0; i < C; i++) pr[i] = (T)(pr[i] / s);                            \
        *loss = (double)m + log(s) - (double)x[c];                                        \
    }                                                                                     \
    /* gx += g/B * (softmax - onehot) */                                                  \
    static void ce_grad_##sfx(size_t B, size_t C, double scale, const void *pr_, const uint32_t *cls, void *gx_) \
    {                                                                                     \
        const T *pr = pr_;                                                                \
        T *gx = gx_;                                                                      \
        for (size_t r = 0; r < B; r++, pr += C, gx += C) {                                \
            for (size_t i = 0; i < C; i++) gx[i] += (T)(scale * pr[i]);                   \
            gx[cls[r]] -= (T)scale;                                                       \
        }                                                                                 \
    }
GEN_BOTH(CE_T)

/* Rows' probabilities and losses. float64: e^(x - m) by libm's exp. */
static void ce_rows_f64(size_t B, size_t C, const void *x_, const uint32_t *cls, void *pr_, double *loss)
{
    const double *x = x_;
    double *pr = pr_;
    for (size_t r = 0; r < B; r++, x += C, pr += C) {
        double m = ce_max_f64(C, x), s = 0;
        for (size_t i = 0; i < C; i++) s += pr[i] = exp(x[i] - m);
        ce_row_end_f64(C, x, m, cls[r], pr, s, &loss[r]);
    }
}

/* float32: e^(x - m) in double by the ISA's expneg_f64 (ew.h: the floats of libm's exp),
 * over runs of up to CE_RUN values that span rows (a call per row of 10 cost more than
 * libm's exp: 5.7 against 3.6 us at 64 x 10; runs: 2.0 us). */
#define CE_RUN 512

static void ce_rows_f32(size_t B, size_t C, const void *x_, const uint32_t *cls, void *pr_, double *loss)
{
    const struct EwKernels *k = kernels_get()->ew1;
    const float *x = x_;
    float *pr = pr_, *out = pr;
    double d[CE_RUN];
    size_t n = 0;
    for (size_t r = 0; r < B; r++) {
        const float *xr = x + r * C;
        float m = ce_max_f32(C, xr);
        loss[r] = m; /* kept for the row's end, below */
        for (size_t i = 0; i < C; i++) {
            d[n++] = (double)(xr[i] - m);
            if (n == CE_RUN || (r + 1 == B && i + 1 == C)) { /* a full run, or the last */
                k->expneg_f64(n, d, d);
                for (size_t j = 0; j < n; j++) *out++ = (float)d[j];
                n = 0;
            }
        }
    }
    for (size_t r = 0; r < B; r++, x += C, pr += C) {
        double s = 0;
        for (size_t i = 0; i < C; i++) s += pr[i];
        ce_row_end_f32(C, x, (float)loss[r], cls[r], pr, s, &loss[r]);
    }
}

/* What an element costs, in the bytes-touched units of par_tasks: the float64 forward's
 * exp, log and divide about 8 ns (measured: 7.5-8.7 ns per element for 10 to 1000
 * classes), what copying 64 bytes costs; float32's, its exp by the SIMD kernel, 3.5-4.4
 * ns; the gradient's multiply-add about 1 ns. So the forward is cut from 512 elements
 * in float64 (a batch of 64 over 10 classes), 1024 in float32 (at 2 threads the batch
 * of 64 took 3.8 us in 2 tasks, 2.7 us in one), the gradient from 4096. */
enum { ROW_FWD_COST_F64 = 64, ROW_FWD_COST_F32 = 32, ROW_GRAD_COST = 8, ROW_MIN_TASK = 256 };

enum row_kind { ROW_CE_FWD, ROW_CE_GRAD, ROW_MSE_GRAD };

struct RowJob {
    uint32_t dt;
    enum row_kind kind;
    size_t rows, cols, per_task;
    const void *x;          /* logits, probabilities or predictions */
    const void *t;          /* MSE: the targets */
    const uint32_t *cls;
    void *out;              /* probabilities or the gradient */
    double *loss, scale;
};

static void row_task(void *ctx, size_t task, int worker)
{
    (void)worker;
    const struct RowJob *j = ctx;
    size_t r0 = task * j->per_task, n = j->rows - r0 < j->per_task ? j->rows - r0 : j->per_task;
    size_t at = r0 * j->cols * dtype_size(j->dt);
    const char *x = j->x;
    char *out = j->out;
    if (j->kind == ROW_CE_FWD) DT_CALL(j->dt, ce_rows, n, j->cols, x + at, j->cls + r0, out + at, j->loss + r0);
    else if (j->kind == ROW_CE_GRAD) DT_CALL(j->dt, ce_grad, n, j->cols, j->scale, x + at, j->cls + r0, out + at);
    else DT_CALL(j->dt, mse_grad, n * j->cols, j->scale, x + at, (const char *)j->t + at, out + at);
}

/* Runs j over whole rows, cut by par_tasks at cost units per element. */
static void row_run(struct RowJob *j, size_t cost)
{
    size_t tasks = par_tasks(j->rows * j->cols * cost, ROW_MIN_TASK * cost);
    if (tasks > j->rows) tasks = j->rows;
    j->per_task = (j->rows + tasks - 1) / tasks;
    par_run((j->rows + j->per_task - 1) / j->per_task, row_task, j);
}

/* ---- the graph ops ---- */

static void mse_backward(struct Node *self)
{
    struct Node *p = self->parents[0], *t = self->parents[1];
    size_t n = tensor_numel(p->value);
    double scale = 2.0 * tensor_at(self->grad, 0) / (double)n;
    struct RowJob j = {.dt = p->value->dtype, .kind = ROW_MSE_GRAD, .rows = n, .cols = 1, .x = p->value->data,
                       .t = t->value->data};
    if (node_wants_grad(p)) j.scale = scale, j.out = node_grad(p)->data, row_run(&j, ROW_GRAD_COST);
    if (node_wants_grad(t)) j.scale = -scale, j.out = node_grad(t)->data, row_run(&j, ROW_GRAD_COST);
}

struct Node *loss_mse(struct Node *pred, struct Node *target)
{
    char sp[96], st[96];
    struct Tensor *P = pred->value, *T = target->value;
    if (tensor_numel(P) != tensor_numel(T) || P->dtype != T->dtype || (P->ndim && P->shape[0] != T->shape[0]) ||
        tensor_numel(P) == 0)
        panic("mse_loss: prediction %s and target %s differ", tensor_shape_str(P, sp, sizeof sp),
              tensor_shape_str(T, st, sizeof st));
    struct Node *parents[2] = {pred, target};
    uint64_t one = 1;
    struct Node *l = node_new(node_graph(pred, target), OP_MSE_LOSS, 1, &one, P->dtype, 2, parents, mse_backward);
    set_scalar(l->value, DT_CALL(P->dtype, mse_fwd, tensor_numel(P), P->data, T->data));
    return l;
}

static void ce_backward(struct Node *self)
{
    struct Node *x = self->parents[0];
    if (!node_wants_grad(x)) return;
    struct CeCtx *c = self->ctx;
    struct RowJob j = {.dt = x->value->dtype, .kind = ROW_CE_GRAD, .rows = x->value->shape[0], .cols = x->value->shape[1],
                       .x = c->probs, .cls = c->cls, .out = node_grad(x)->data};
    j.scale = tensor_at(self->grad, 0) / (double)j.rows;
    row_run(&j, ROW_GRAD_COST);
}

struct Node *loss_cross_entropy(struct Node *logits, const uint32_t *cls)
{
    char sx[96];
    struct Tensor *X = logits->value;
    if (X->ndim != 2 || X->shape[0] == 0 || X->shape[1] == 0)
        panic("cross_entropy_loss: logits %s are not B x C", tensor_shape_str(X, sx, sizeof sx));
    struct Graph *g = node_graph(logits, NULL);
    size_t B = X->shape[0], C = X->shape[1];
    uint64_t one = 1;
    struct Node *l = node_new(g, OP_CROSS_ENTROPY_LOSS, 1, &one, X->dtype, 1, &logits, ce_backward);
    struct CeCtx *c = arena_alloc(&g->arena, sizeof *c);
    for (size_t r = 0; r < B; r++) CHECK(cls[r] < C, "cross_entropy_loss: class %u of row %zu is not below %zu", cls[r], r, C);
    c->cls = cls;
    c->probs = arena_alloc(&g->arena, B * C * dtype_size(X->dtype));
    l->ctx = c;
    struct RowJob j = {.dt = X->dtype, .kind = ROW_CE_FWD, .rows = B, .cols = C, .x = X->data, .cls = cls, .out = c->probs,
                       .loss = arena_alloc(&g->arena, B * sizeof(double))};
    row_run(&j, X->dtype == DT_FLOAT32 ? ROW_FWD_COST_F32 : ROW_FWD_COST_F64);
    double total = 0;
    for (size_t r = 0; r < B; r++) total += j.loss[r];
    set_scalar(l->value, total / (double)B);
    return l;
}
