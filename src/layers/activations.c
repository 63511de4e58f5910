/* activations: ReLU, Sigmoid, Tanh, Softmax as graph ops (forward and backward side
 * by side) and as parameterless modules. */
#include "activations.h"
#include "generic.h"
#include "kernels/dispatch.h"
#include "kernels/ew.h"

#include <math.h>

typedef void (*unary_fn)(size_t n, const void *x, void *y);
typedef void (*unary_grad_fn)(size_t n, const void *x, const void *y, const void *g, void *gx);

/* One template per activation: forward y = f(x), backward gx += g * f'(x, y). */
#define ACT_TEMPLATE(name, T, sfx, fwd, bwd)                                                  \
    static void name##_fwd_##sfx(size_t n, const void *x_, void *y_)                          \
    {                                                                                         \
        const T *x = x_;                                                                      \
        T *y = y_;                                                                            \
        for (size_t i = 0; i < n; i++) { T v = x[i]; y[i] = (fwd); }                          \
    }                                                                                         \
    static void name##_bwd_##sfx(size_t n, const void *x_, const void *y_, const void *g_, void *gx_) \
    {                                                                                         \
        const T *x = x_, *y = y_, *g = g_;                                                    \
        T *gx = gx_;                                                                          \
        for (size_t i = 0; i < n; i++) { T v = x[i], o = y[i]; (void)v; (void)o; gx[i] += g[i] * (bwd); } \
    }

/* Sigmoid without overflow: exp of a non-positive number only. */
#define SIGMOID(T, v) ((v) >= 0 ? (T)1 / ((T)1 + (T)exp(-(v))) : (T)exp(v) / ((T)1 + (T)exp(v)))

/* ReLU runs on the dispatched SIMD kernels. */
#define RELU_T(T, sfx)                                                                        \
    static void relu_fwd_##sfx(size_t n, const void *x, void *y) { kernels_get()->ew->relu_##sfx(n, x, y); } \
    static void relu_bwd_##sfx(size_t n, const void *x, const void *y, const void *g, void *gx) \
    {                                                                                         \
        (void)y;                                                                              \
        kernels_get()->ew->relu_bwd_##sfx(n, x, g, gx);                                       \
    }                                                                                         \
    static void relu_bwd_set_##sfx(size_t n, const void *x, const void *y, const void *g, void *gx) \
    {                                                                                         \
        (void)y;                                                                              \
        kernels_get()->ew->relu_bwd_set_##sfx(n, x, g, gx);                                   \
    }
#define SIGMOID_T(T, sfx) ACT_TEMPLATE(sigmoid, T, sfx, SIGMOID(T, v), o * ((T)1 - o))
#define TANH_T(T, sfx) ACT_TEMPLATE(tanh, T, sfx, (T)tanh(v), (T)1 - o * o)
GEN_BOTH(RELU_T)
GEN_BOTH(SIGMOID_T)
GEN_BOTH(TANH_T)

/* bwd_set, where given, writes gx = g * f'(x) into an uninitialised buffer. */
struct ActKind { int op; unary_fn fwd[2]; unary_grad_fn bwd[2]; unary_grad_fn bwd_set[2]; };

static const struct ActKind act_relu_k = {OP_RELU, {relu_fwd_f32, relu_fwd_f64}, {relu_bwd_f32, relu_bwd_f64},
                                          {relu_bwd_set_f32, relu_bwd_set_f64}};
static const struct ActKind act_sigmoid_k = {OP_SIGMOID, {sigmoid_fwd_f32, sigmoid_fwd_f64}, {sigmoid_bwd_f32, sigmoid_bwd_f64},
                                             {NULL, NULL}};
static const struct ActKind act_tanh_k = {OP_TANH, {tanh_fwd_f32, tanh_fwd_f64}, {tanh_bwd_f32, tanh_bwd_f64}, {NULL, NULL}};

static void unary_backward(struct Node *self)
{
    struct Node *x = self->parents[0];
    if (!node_wants_grad(x)) return;
    const struct ActKind *k = self->ctx;
    uint32_t dt = self->value->dtype;
    int overwrite = 0;
    struct Tensor *gx = k->bwd_set[dt] ? node_grad_begin(x, &overwrite) : node_grad(x);
    (overwrite ? k->bwd_set : k->bwd)[dt](tensor_numel(x->value), x->value->data, self->value->data,
                                          self->grad->data, gx->data);
}

static struct Node *unary_op(const struct ActKind *k, struct Node *x)
{
    struct Tensor *v = x->value;
    struct Node *y = node_new(node_graph(x, NULL), k->op, v->ndim, v->shape, v->dtype, 1, &x, unary_backward);
    y->ctx = (void *)k;
    k->fwd[v->dtype](tensor_numel(v), v->data, y->value->data);
    return y;
}

struct Node *act_relu(struct Node *x) { return unary_op(&act_relu_k, x); }
struct Node *act_sigmoid(struct Node *x) { return unary_op(&act_sigmoid_k, x); }
struct Node *act_tanh(struct Node *x) { return unary_op(&act_tanh_k, x); }

/* ---- Softmax over the last axis ---- */

#define SOFTMAX_T(T, sfx)                                                                \
    static void softmax_rows_##sfx(size_t rows, size_t n, const void *x_, void *y_)     \
    {                                                                                    \
        const T *x = x_;                                                                 \
        T *y = y_;                                                                       \
        for (size_t r = 0; r < rows; r++, x += n, y += n) {                              \
            T m = x[0], s = 0;                                                           \
            for (size_t i = 1; i < n; i++) m = x[i] > m ? x[i] : m;                      \
            for (size_t i = 0; i < n; i++) s += y[i] = (T)exp(x[i] - m);                 \
            for (size_t i = 0; i < n; i++) y[i] /= s;                                    \
        }                                                                                \
    }                                                                                    \
    /* gx_i += y_i * (g_i - sum_j g_j y_j) */                                            \
    static void softmax_grad_##sfx(size_t rows, size_t n, const void *y_, const void *g_, void *gx_) \
    {                                                                                    \
        const T *y = y_, *g = g_;                                                        \
        T *gx = gx_;                                                                     \
        for (size_t r = 0; r < rows; r++, y += n, g += n, gx += n) {                     \
            T dot = 0;                                                                   \
            for (size_t i = 0; i < n; i++) dot += g[i] * y[i];                           \
            for (size_t i = 0; i < n; i++) gx[i] += y[i] * (g[i] - dot);                 \
        }                                                                                \
    }
GEN_BOTH(SOFTMAX_T)

static void softmax_backward(struct Node *self)
{
    struct Node *x = self->parents[0];
    if (!node_wants_grad(x)) return;
    size_t n = self->value->shape[self->value->ndim - 1], rows = tensor_numel(self->value) / n;
    DT_CALL(self->value->dtype, softmax_grad, rows, n, self->value->data, self->grad->data, node_grad(x)->data);
}

struct Node *act_softmax(struct Node *x)
{
    struct Tensor *v = x->value;
    CHECK(v->ndim >= 1 && v->shape[v->ndim - 1] > 0, "softmax needs a non-empty last axis");
    struct Node *y = node_new(node_graph(x, NULL), OP_SOFTMAX, v->ndim, v->shape, v->dtype, 1, &x, softmax_backward);
    size_t n = v->shape[v->ndim - 1], rows = tensor_numel(v) / n;
    DT_CALL(v->dtype, softmax_rows, rows, n, v->data, y->value->data);
    return y;
}

/* ---- the layers ---- */

static void relu_forward(struct Module *m, struct Node *x, struct Node **y) { (void)m; *y = act_relu(x); }
static void sigmoid_forward(struct Module *m, struct Node *x, struct Node **y) { (void)m; *y = act_sigmoid(x); }
static void tanh_forward(struct Module *m, struct Node *x, struct Node **y) { (void)m; *y = act_tanh(x); }
static void softmax_forward(struct Module *m, struct Node *x, struct Node **y) { (void)m; *y = act_softmax(x); }

static int softmax_shape(const struct LayerSpec *l, const struct LayerShape *in, int first, struct LayerShape *out,
                         uint64_t *n_params, char *err, size_t errlen)
{
    if (in->ndim == 3) return err_set(err, errlen, "Softmax needs a flat input (after a Linear layer), not a C,H,W one");
    return layer_shape_same(l, in, first, out, n_params, err, errlen);
}

static struct Module *act_create(const struct LayerSpec *l, uint32_t dtype, struct Rng *rng)
{
    (void)dtype, (void)rng;
    return module_new(l);
}

struct Module *act_module_create(uint32_t kind)
{
    CHECK(kind < MOD_COUNT && layer_type(kind)->activation, "not an activation kind: %u", kind);
    struct LayerSpec l = {.kind = kind};
    return module_new(&l);
}

#define ACTIVATION_ROW(NAME, PREFIX, SHAPE, FWD, BWD)                                               \
    {.name = NAME, .activation = 1, .prefix = PREFIX, .shape = SHAPE, .create = act_create, .forward = FWD, \
     .backward = BWD}
const struct LayerType layer_relu = ACTIVATION_ROW("ReLU", "relu", layer_shape_same, relu_forward, unary_backward);
const struct LayerType layer_sigmoid =
    ACTIVATION_ROW("Sigmoid", "sigmoid", layer_shape_same, sigmoid_forward, unary_backward);
const struct LayerType layer_tanh = ACTIVATION_ROW("Tanh", "tanh", layer_shape_same, tanh_forward, unary_backward);
const struct LayerType layer_softmax =
    ACTIVATION_ROW("Softmax", "softmax", softmax_shape, softmax_forward, softmax_backward);
