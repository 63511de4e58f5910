/* losses: MSE and CrossEntropy (fused, max-subtracted log-softmax). */
#include "losses.h"
#include "generic.h"
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

static void mse_backward(struct Node *self)
{
    struct Node *p = self->parents[0], *t = self->parents[1];
    size_t n = tensor_numel(p->value);
    double scale = 2.0 * tensor_at(self->grad, 0) / (double)n;
    uint32_t dt = p->value->dtype;
    if (node_wants_grad(p)) DT_CALL(dt, mse_grad, n, scale, p->value->data, t->value->data, node_grad(p)->data);
    if (node_wants_grad(t)) DT_CALL(dt, mse_grad, n, -scale, p->value->data, t->value->data, node_grad(t)->data);
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

/* ---- CrossEntropy: mean over rows of logsumexp(x) - x[target] ---- */

struct CeCtx { const uint32_t *cls; void *probs; /* softmax of the logits, B x C */ };

#define CE_T(T, sfx)                                                                      \
    static double ce_fwd_##sfx(size_t B, size_t C, const void *x_, const uint32_t *cls, void *pr_) \
    {                                                                                     \
        const T *x = x_;                                                                  \
        T *pr = pr_;                                                                      \
        double total = 0;                                                                 \
        for (size_t r = 0; r < B; r++, x += C, pr += C) {                                 \
            T m = x[0];                                                                   \
            for (size_t i = 1; i < C; i++) m = x[i] > m ? x[i] : m;                       \
            double s = 0;                                                                 \
            for (size_t i = 0; i < C; i++) s += pr[i] = (T)exp(x[i] - m);                 \
            for (size_t i = 0; i < C; i++) pr[i] = (T)(pr[i] / s);                        \
            total += (double)m + log(s) - (double)x[cls[r]];                              \
        }                                                                                 \
        return total / (double)B;                                                         \
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

static void ce_backward(struct Node *self)
{
    struct Node *x = self->parents[0];
    if (!node_wants_grad(x)) return;
    struct CeCtx *c = self->ctx;
    size_t B = x->value->shape[0], C = x->value->shape[1];
    double scale = tensor_at(self->grad, 0) / (double)B;
    DT_CALL(x->value->dtype, ce_grad, B, C, scale, c->probs, c->cls, node_grad(x)->data);
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
    set_scalar(l->value, DT_CALL(X->dtype, ce_fwd, B, C, X->data, cls, c->probs));
    return l;
}
