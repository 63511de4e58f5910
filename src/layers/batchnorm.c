/* BatchNorm1d(n) and BatchNorm2d(c), as PyTorch's (momentum 0.1, eps 1e-5): per channel
 * c, y = (x - mean) / sqrt(var + eps) * weight[c] + bias[c], over (N, C) or (N, C, H, W)
 * inputs (the statistics of BatchNorm2d run over N*H*W values). Training normalises with
 * the batch's mean and biased variance, kept in the graph (the backward differentiates
 * through them), and updates running_mean and running_var (with the unbiased variance)
 * in the forward; inference uses the running statistics. Weight starts at 1, bias at 0,
 * running_mean at 0, running_var at 1. The two kinds are one op (BatchNorm1d is H*W = 1),
 * so they share this file.
 *
 * Speed: per channel, y = s*x + t with s and t computed once (as PyTorch does); a
 * BatchNorm2d channel is N contiguous runs of H*W values, each through the dispatched
 * SIMD kernels (kernels/ew.h cdot, affine, affine2); BatchNorm1d runs row by row. A ReLU
 * after it can run in the same op (model.c decides), applied where y is stored. */
#include "nn_layers.h"
#include "generic.h"
#include "kernels/dispatch.h"
#include "kernels/ew.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

struct BnCtx {
    size_t N, C, HW;
    double *mean, *invstd;     /* per channel: what normalised the batch */
    int training, relu;
};

/* The statistics of each channel (two passes: the mean, then the centred sum of squares). */
#define BN_STATS(T, sfx)                                                                      \
    static void bn_stats_##sfx(const struct BnCtx *cx, const T *x, double *mean, double *var) \
    {                                                                                         \
        const struct EwKernels *k = kernels_get()->ew;                                        \
        size_t N = cx->N, C = cx->C, HW = cx->HW;                                             \
        double M = (double)(N * HW);                                                          \
        if (HW == 1) { /* rows of C: accumulate across the row */                             \
            for (size_t c = 0; c < C; c++) mean[c] = var[c] = 0;                              \
            for (size_t n = 0; n < N; n++)                                                    \
                for (size_t c = 0; c < C; c++) mean[c] += x[n * C + c];                       \
            for (size_t c = 0; c < C; c++) mean[c] /= M;                                      \
            for (size_t n = 0; n < N; n++)                                                    \
                for (size_t c = 0; c < C; c++) {                                              \
                    double d = x[n * C + c] - mean[c];                                        \
                    var[c] += d * d;                                                          \
                }                                                                             \
            for (size_t c = 0; c < C; c++) var[c] /= M;                                       \
            return;                                                                           \
        }                                                                                     \
        for (size_t c = 0; c < C; c++) {                                                      \
            double s = 0, q = 0;                                                              \
            for (size_t n = 0; n < N; n++) s += k->sum_##sfx(HW, x + (n * C + c) * HW);       \
            mean[c] = s / M;                                                                  \
            for (size_t n = 0; n < N; n++) {                                                  \
                const T *xc = x + (n * C + c) * HW;                                           \
                q += k->cdot_##sfx(HW, xc, (T)mean[c], xc, (T)mean[c]);                       \
            }                                                                                 \
            var[c] = q / M;                                                                   \
        }                                                                                     \
    }                                                                                         \
    /* y = s[c]*x + t[c] (then ReLU) */                                                       \
    static void bn_apply_##sfx(const struct BnCtx *cx, const T *x, const double *s, const double *t, T *y) \
    {                                                                                         \
        const struct EwKernels *k = kernels_get()->ew;                                        \
        size_t N = cx->N, C = cx->C, HW = cx->HW;                                             \
        if (HW == 1) {                                                                        \
            for (size_t n = 0; n < N; n++)                                                    \
                for (size_t c = 0; c < C; c++) {                                              \
                    T v = (T)s[c] * x[n * C + c] + (T)t[c];                                   \
                    y[n * C + c] = cx->relu && !(v > 0) ? 0 : v;                              \
                }                                                                             \
            return;                                                                           \
        }                                                                                     \
        for (size_t n = 0; n < N; n++)                                                        \
            for (size_t c = 0; c < C; c++) {                                                  \
                size_t at = (n * C + c) * HW;                                                 \
                k->affine_##sfx(HW, x + at, (T)s[c], (T)t[c], y + at, cx->relu);              \
            }                                                                                 \
    }
GEN_BOTH(BN_STATS)

/* The backward's sums per channel: gsum = sum g, gdot = sum g (x - mean). */
#define BN_GRAD_SUMS(T, sfx)                                                                  \
    static void bn_grad_sums_##sfx(const struct BnCtx *cx, const T *g, const T *x, double *gsum, double *gdot) \
    {                                                                                         \
        const struct EwKernels *k = kernels_get()->ew;                                        \
        size_t N = cx->N, C = cx->C, HW = cx->HW;                                             \
        for (size_t c = 0; c < C; c++) gsum[c] = gdot[c] = 0;                                 \
        if (HW == 1) {                                                                        \
            for (size_t n = 0; n < N; n++)                                                    \
                for (size_t c = 0; c < C; c++) {                                              \
                    gsum[c] += g[n * C + c];                                                  \
                    gdot[c] += g[n * C + c] * (x[n * C + c] - cx->mean[c]);                   \
                }                                                                             \
            return;                                                                           \
        }                                                                                     \
        for (size_t n = 0; n < N; n++)                                                        \
            for (size_t c = 0; c < C; c++) {                                                  \
                size_t at = (n * C + c) * HW;                                                 \
                gsum[c] += k->sum_##sfx(HW, g + at);                                          \
                gdot[c] += k->cdot_##sfx(HW, g + at, 0, x + at, (T)cx->mean[c]);              \
            }                                                                                 \
    }                                                                                         \
    /* gx (+)= a[c]*g + b[c]*x + c[c] */                                                      \
    static void bn_grad_x_##sfx(const struct BnCtx *cx, const double *a, const T *g, const double *b, const T *x, \
                                const double *cc, T *gx, int acc)                             \
    {                                                                                         \
        const struct EwKernels *k = kernels_get()->ew;                                        \
        size_t N = cx->N, C = cx->C, HW = cx->HW;                                             \
        if (HW == 1) {                                                                        \
            for (size_t n = 0; n < N; n++)                                                    \
                for (size_t c = 0; c < C; c++) {                                              \
                    size_t i = n * C + c;                                                     \
                    T v = (T)a[c] * g[i] + (T)b[c] * x[i] + (T)cc[c];                         \
                    gx[i] = acc ? gx[i] + v : v;                                              \
                }                                                                             \
            return;                                                                           \
        }                                                                                     \
        for (size_t n = 0; n < N; n++)                                                        \
            for (size_t c = 0; c < C; c++) {                                                  \
                size_t at = (n * C + c) * HW;                                                 \
                k->affine2_##sfx(HW, (T)a[c], g + at, (T)b[c], x + at, (T)cc[c], gx + at, acc); \
            }                                                                                 \
    }                                                                                         \
    static void bn_add_##sfx(size_t n, const double *v, void *out_, int overwrite)            \
    {                                                                                         \
        T *out = out_;                                                                        \
        for (size_t i = 0; i < n; i++) out[i] = (T)(overwrite ? v[i] : out[i] + v[i]);        \
    }
GEN_BOTH(BN_GRAD_SUMS)

/* The gradient of y, masked by y > 0 for a fused ReLU (into the scratch). */
static const void *bn_out_grad(struct Node *self)
{
    const struct BnCtx *cx = self->ctx;
    if (!cx->relu) return self->grad->data;
    size_t n = tensor_numel(self->value);
    void *gm = graph_scratch(self->graph, n * dtype_size(self->value->dtype));
    const struct EwKernels *k = kernels_get()->ew;
    if (self->value->dtype == DT_FLOAT32) k->relu_bwd_set_f32(n, tensor_f32(self->value), tensor_f32(self->grad), gm);
    else k->relu_bwd_set_f64(n, tensor_f64(self->value), tensor_f64(self->grad), gm);
    return gm;
}

/* With xhat = (x - mean) * invstd: dweight = sum g xhat, dbias = sum g, and
 *   training:  dx = w invstd (g - dbias/M - xhat dweight/M)   (mean and var depend on x)
 *   inference: dx = w invstd g */
static void batchnorm_backward(struct Node *self)
{
    struct Node *x = self->parents[0], *w = self->parents[1], *b = self->parents[2];
    const struct BnCtx *cx = self->ctx;
    uint32_t dt = self->value->dtype;
    size_t C = cx->C;
    double M = (double)(cx->N * cx->HW);
    struct Arena *ar = &self->graph->arena;
    double *gsum = arena_alloc(ar, 5 * C * sizeof *gsum), *gdot = gsum + C, *a = gdot + C, *bb = a + C, *cc = bb + C;
    const void *g = bn_out_grad(self);
    DT_CALL(dt, bn_grad_sums, cx, g, x->value->data, gsum, gdot);
    if (node_wants_grad(x)) {
        for (size_t c = 0; c < C; c++) {
            double wc = tensor_at(w->value, c), is = cx->invstd[c];
            a[c] = wc * is;
            bb[c] = cx->training ? -wc * is * is * is * gdot[c] / M : 0;
            cc[c] = cx->training ? -wc * is * gsum[c] / M - bb[c] * cx->mean[c] : 0;
        }
        int overwrite;
        struct Tensor *gx = node_grad_begin(x, &overwrite);
        DT_CALL(dt, bn_grad_x, cx, a, g, bb, x->value->data, cc, gx->data, !overwrite);
    }
    for (size_t c = 0; c < C; c++) gdot[c] *= cx->invstd[c];
    int ow;
    if (node_wants_grad(w)) DT_CALL(dt, bn_add, C, gdot, node_grad_begin(w, &ow)->data, ow);
    if (node_wants_grad(b)) DT_CALL(dt, bn_add, C, gsum, node_grad_begin(b, &ow)->data, ow);
}

static void bn_check(struct Node *x, struct Node *w, struct Node *b, const struct Tensor *rm, const struct Tensor *rv)
{
    char sx[96], sw[96];
    const struct Tensor *X = x->value, *W = w->value;
    uint64_t C = W->ndim == 1 ? W->shape[0] : 0;
    int ok = (X->ndim == 2 || X->ndim == 4) && X->shape[1] == C && X->dtype == W->dtype;
    const struct Tensor *per_channel[3] = {b->value, rm, rv};
    for (int i = 0; i < 3; i++)
        ok = ok && (!per_channel[i] || (per_channel[i]->ndim == 1 && per_channel[i]->shape[0] == C &&
                                        per_channel[i]->dtype == W->dtype));
    if (!ok)
        panic("batchnorm: input %s does not fit weight %s (expected N x C or N x C x H x W, C as the weight)",
              tensor_shape_str(X, sx, sizeof sx), tensor_shape_str(W, sw, sizeof sw));
    CHECK(tensor_is_contiguous(X), "batchnorm input must be contiguous");
}

/* Running statistics: r = (1 - momentum) r + momentum * batch (unbiased variance). */
static void bn_update_running(struct Tensor *rm, struct Tensor *rv, const double *mean, const double *var, double M)
{
    for (uint64_t c = 0; c < rm->shape[0]; c++) {
        double m = (1 - NN_BATCHNORM_MOMENTUM) * tensor_at(rm, c) + NN_BATCHNORM_MOMENTUM * mean[c];
        double v = (1 - NN_BATCHNORM_MOMENTUM) * tensor_at(rv, c) + NN_BATCHNORM_MOMENTUM * var[c] * M / (M - 1);
        if (rm->dtype == DT_FLOAT32) tensor_f32(rm)[c] = (float)m, tensor_f32(rv)[c] = (float)v;
        else tensor_f64(rm)[c] = m, tensor_f64(rv)[c] = v;
    }
}

/* One channel's y = s x + t, the one formula of nn_batchnorm and nn_batchnorm_fold (so a
 * folded BatchNorm and the exporters get infer's numbers to the bit). */
static void bn_affine(double w, double b, double mean, double var, double *invstd, double *s, double *t)
{
    *invstd = 1 / sqrt(var + NN_BATCHNORM_EPS);
    *s = w * *invstd;
    *t = b - mean * *s;
}

struct Node *nn_batchnorm(struct Node *x, struct Node *w, struct Node *b, struct Tensor *running_mean,
                          struct Tensor *running_var, int training, int relu)
{
    bn_check(x, w, b, running_mean, running_var);
    CHECK(training || (running_mean && running_var), "batchnorm: inference needs the running statistics");
    struct Tensor *X = x->value;
    struct Graph *g = node_graph(x, w);
    struct Node *parents[3] = {x, w, b};
    struct Node *y = node_new(g, relu ? OP_BATCHNORM_RELU : OP_BATCHNORM, X->ndim, X->shape, X->dtype, 3, parents,
                              batchnorm_backward);
    struct BnCtx *cx = arena_alloc(&g->arena, sizeof *cx);
    size_t C = X->shape[1];
    *cx = (struct BnCtx){X->shape[0], C, X->ndim == 4 ? X->shape[2] * X->shape[3] : 1, NULL, NULL, training, relu};
    y->ctx = cx;
    double M = (double)(cx->N * cx->HW), *var = arena_alloc(&g->arena, 4 * C * sizeof *var), *s = var + C, *t = s + C;
    cx->mean = t + C;
    cx->invstd = arena_alloc(&g->arena, C * sizeof *cx->invstd);
    if (training) {
        if (M < 2)
            panic("batchnorm: expected more than 1 value per channel when training, got input %llu x %llu: "
                  "a batch of one sample (use another batch_size)", (unsigned long long)cx->N, (unsigned long long)C);
        DT_CALL(X->dtype, bn_stats, cx, X->data, cx->mean, var);
        if (running_mean && running_var) bn_update_running(running_mean, running_var, cx->mean, var, M);
    } else
        for (size_t c = 0; c < C; c++) cx->mean[c] = tensor_at(running_mean, c), var[c] = tensor_at(running_var, c);
    for (size_t c = 0; c < C; c++)
        bn_affine(tensor_at(w->value, c), tensor_at(b->value, c), cx->mean[c], var[c], &cx->invstd[c], &s[c], &t[c]);
    DT_CALL(X->dtype, bn_apply, cx, X->data, s, t, y->value->data);
    return y;
}

void nn_batchnorm_fold(const struct Tensor *weight, const struct Tensor *bias, const struct Tensor *running_mean,
                       const struct Tensor *running_var, double *scale, double *shift)
{
    for (uint64_t c = 0; c < weight->shape[0]; c++) {
        double invstd;
        bn_affine(tensor_at(weight, c), tensor_at(bias, c), tensor_at(running_mean, c), tensor_at(running_var, c),
                  &invstd, &scale[c], &shift[c]);
    }
}

/* ---- the layers ---- */

static void batchnorm_forward(struct Module *m, struct Node *input, struct Node **output)
{
    *output = nn_batchnorm(input, m->param_nodes[0], m->param_nodes[1], m->state[0], m->state[1],
                           module_training(m), 0);
}

static int batchnorm_shape(const struct LayerSpec *l, const struct LayerShape *in, int first, struct LayerShape *out,
                           uint64_t *n_params, char *err, size_t errlen)
{
    char note[80];
    uint64_t n = l->args.batchnorm.n;
    layer_shape_note(note, sizeof note, in);
    if (l->kind == MOD_BATCHNORM1D) {
        if (in->ndim == 3)
            return err_set(err, errlen, "BatchNorm1d needs a flat input (after a Linear layer), not a C,H,W one%s: "
                           "use BatchNorm2d", note);
        if (in->d[0] != n)
            return err_set(err, errlen, "BatchNorm1d expects %llu features but %s %llu", (unsigned long long)n,
                           layer_source(first), (unsigned long long)in->d[0]);
    } else {
        if (in->ndim != 3)
            return err_set(err, errlen, "BatchNorm2d needs a C,H,W input (after a Conv2d), not a flat one (%llu values): "
                           "use BatchNorm1d", (unsigned long long)in->d[0]);
        if (in->d[0] != n)
            return err_set(err, errlen, "BatchNorm2d expects %llu channels but %s %llu%s", (unsigned long long)n,
                           layer_source(first), (unsigned long long)in->d[0], note);
    }
    *out = *in;
    *n_params = 4 * n; /* weight, bias, running_mean, running_var */
    return 0;
}

static struct Tensor *filled(uint64_t n, uint32_t dtype, double v)
{
    struct Tensor *t = tensor_create(1, &n, dtype);
    tensor_fill(t, v);
    return t;
}

/* PyTorch's initialisation: nothing drawn from rng. */
static struct Module *batchnorm_create(const struct LayerSpec *l, uint32_t dtype, struct Rng *rng)
{
    (void)rng;
    uint64_t n = l->args.batchnorm.n;
    CHECK(n > 0, "BatchNorm sizes must be positive");
    struct Module *m = module_new(l);
    for (uint32_t i = 0; i < 2; i++) {
        m->params[i] = filled(n, dtype, i ? 0 : 1);
        m->param_nodes[i] = node_from_tensor(m->params[i], 1);
    }
    module_set_state(m, 0, filled(n, dtype, 0));
    module_set_state(m, 1, filled(n, dtype, 1));
    return m;
}

static const struct LayerArgDef bn1d_args[] = {{"n", 1, LAYER_ARG_COUNT, 0}};
static const struct LayerArgDef bn2d_args[] = {{"c", 1, LAYER_ARG_COUNT, 0}};
static const char *const weight_bias[] = {"weight", "bias"};
static const char *const running[] = {"running_mean", "running_var"};

#define BATCHNORM_ROW(NAME, PREFIX, ARGS)                                                            \
    {.name = NAME, .prefix = PREFIX, .n_args = 1, .args = ARGS, .n_params = 2, .param_names = weight_bias, \
     .n_state = 2, .state_names = running, .shape = batchnorm_shape, .create = batchnorm_create,       \
     .forward = batchnorm_forward, .backward = batchnorm_backward}
const struct LayerType layer_batchnorm1d = BATCHNORM_ROW("BatchNorm1d", "batchnorm1d", bn1d_args);
const struct LayerType layer_batchnorm2d = BATCHNORM_ROW("BatchNorm2d", "batchnorm2d", bn2d_args);
