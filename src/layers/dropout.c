/* Dropout(p): inverted dropout, as PyTorch's nn.Dropout. Training: each element is kept
 * with probability 1 - p and scaled by 1/(1 - p), the mask drawn from the run's seeded
 * generator (so a seeded run is reproducible); inference: the identity (no node). */
#include "nn_layers.h"
#include "generic.h"
#include "kernels/dispatch.h"
#include "kernels/ew.h"

#include <stdio.h>

/* mask[i] = 1/(1-p) with probability 1 - p, else 0: one uniform draw per element, in
 * order, so the mask depends on the seed and the sequence of steps only. */
#define DROPOUT_MASK(T, sfx)                                                                  \
    static void dropout_mask_##sfx(size_t n, double p, struct Rng *rng, void *mask_)          \
    {                                                                                         \
        T *mask = mask_, scale = (T)1 / (T)(1 - p);                                           \
        for (size_t i = 0; i < n; i++) mask[i] = rng_uniform(rng) >= p ? scale : 0;           \
    }                                                                                         \
    /* gx (+)= g * mask */                                                                    \
    static void dropout_grad_##sfx(size_t n, const void *g_, const void *m_, void *gx_, int overwrite) \
    {                                                                                         \
        const T *g = g_, *m = m_;                                                             \
        T *gx = gx_;                                                                          \
        if (overwrite) kernels_get()->ew->bin_##sfx[EW_MUL](n, g, m, gx);                     \
        else for (size_t i = 0; i < n; i++) gx[i] += g[i] * m[i];                             \
    }
GEN_BOTH(DROPOUT_MASK)

static void dropout_backward(struct Node *self)
{
    struct Node *x = self->parents[0];
    if (!node_wants_grad(x)) return;
    int overwrite;
    struct Tensor *gx = node_grad_begin(x, &overwrite);
    DT_CALL(self->value->dtype, dropout_grad, tensor_numel(self->value), self->grad->data, self->ctx, gx->data,
            overwrite);
}

/* y = x * mask for a given mask of x's shape and dtype (values 0 or 1/(1-p)): the op of
 * the layer, which draws the mask, and of tests that bring their own. */
struct Node *nn_dropout_masked(struct Node *x, const struct Tensor *mask)
{
    char a[96], b[96];
    struct Tensor *v = x->value;
    if (!tensor_same_shape(v, mask) || v->dtype != mask->dtype)
        panic("dropout: mask %s does not match input %s", tensor_shape_str(mask, a, sizeof a),
              tensor_shape_str(v, b, sizeof b));
    struct Graph *g = node_graph(x, NULL);
    struct Node *y = node_new(g, OP_DROPOUT, v->ndim, v->shape, v->dtype, 1, &x, dropout_backward);
    size_t n = tensor_numel(v);
    y->ctx = mask->data;
    if (v->dtype == DT_FLOAT32) kernels_get()->ew->bin_f32[EW_MUL](n, v->data, mask->data, y->value->data);
    else kernels_get()->ew->bin_f64[EW_MUL](n, v->data, mask->data, y->value->data);
    return y;
}

struct Node *nn_dropout(struct Node *x, double p, struct Rng *rng)
{
    CHECK(p >= 0 && p < 1, "dropout: p must be in [0, 1), got %g", p);
    if (p == 0) return x;
    struct Graph *g = node_graph(x, NULL);
    struct Tensor *v = x->value;
    struct Tensor *mask = tensor_create_in(&g->arena, v->ndim, v->shape, v->dtype);
    DT_CALL(v->dtype, dropout_mask, tensor_numel(v), p, rng, mask->data);
    return nn_dropout_masked(x, mask);
}

static void dropout_forward(struct Module *m, struct Node *input, struct Node **output)
{
    if (!module_training(m)) {
        *output = input;
        return;
    }
    CHECK(m->run != NULL, "%s: dropout in training needs the model's run (its generator): set module->run", m->name);
    *output = nn_dropout(input, m->spec.args.dropout.p, &m->run->rng);
}

static struct Module *dropout_create(const struct LayerSpec *l, uint32_t dtype, struct Rng *rng)
{
    (void)dtype, (void)rng;
    CHECK(l->args.dropout.p >= 0 && l->args.dropout.p < 1, "Dropout p must be in [0, 1)");
    return module_new(l);
}

static const struct LayerArgDef dropout_args[] = {{"p", 0, LAYER_ARG_REAL_UNIT, 0}};

const struct LayerType layer_dropout = {
    .name = "Dropout", .prefix = "dropout", .n_args = 1, .args = dropout_args, .shape = layer_shape_same,
    .create = dropout_create, .forward = dropout_forward, .backward = dropout_backward,
};
