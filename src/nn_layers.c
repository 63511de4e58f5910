/* nn_layers: the layer table, and what every module shares (its parameter slots,
 * PyTorch's default initialisation, freeing). The layers themselves are the files
 * under src/layers/. */
#include "nn_layers.h"

#include <stdio.h>
#include <string.h>

static const struct LayerType *const table[] = {
    [MOD_LINEAR] = &layer_linear, [MOD_CONV2D] = &layer_conv2d,   [MOD_RELU] = &layer_relu,
    [MOD_SIGMOID] = &layer_sigmoid, [MOD_TANH] = &layer_tanh, [MOD_SOFTMAX] = &layer_softmax,
    [MOD_MAXPOOL2D] = &layer_maxpool2d, [MOD_AVGPOOL2D] = &layer_avgpool2d, [MOD_DROPOUT] = &layer_dropout,
    [MOD_BATCHNORM1D] = &layer_batchnorm1d, [MOD_BATCHNORM2D] = &layer_batchnorm2d,
};
_Static_assert(sizeof table / sizeof *table == MOD_COUNT, "one table row per layer kind");

const struct LayerType *layer_type(uint32_t kind)
{
    CHECK(kind < MOD_COUNT, "bad layer kind %u", kind);
    return table[kind];
}

uint64_t layer_shape_numel(const struct LayerShape *s)
{
    return s->ndim == 3 ? s->d[0] * s->d[1] * s->d[2] : s->d[0];
}

void layer_shape_note(char *buf, size_t cap, const struct LayerShape *s)
{
    if (s->ndim == 3)
        snprintf(buf, cap, " (%llux%llux%llu)", (unsigned long long)s->d[0], (unsigned long long)s->d[1],
                 (unsigned long long)s->d[2]);
    else if (cap)
        buf[0] = 0;
}

void layer_shape_str(char *buf, size_t cap, const struct LayerShape *s)
{
    if (s->ndim == 3)
        snprintf(buf, cap, "%llux%llux%llu", (unsigned long long)s->d[0], (unsigned long long)s->d[1],
                 (unsigned long long)s->d[2]);
    else
        snprintf(buf, cap, "%llu", (unsigned long long)s->d[0]);
}

void layer_spec_str(char *buf, size_t cap, const struct LayerSpec *l)
{
    const struct LayerType *lt = layer_type(l->kind);
    size_t k = (size_t)snprintf(buf, cap, "%s", lt->name);
    for (uint32_t i = 0; i < lt->n_args && k < cap; i++) {
        const char *sep = i ? ", " : "(";
        if (lt->args[i].type == LAYER_ARG_REAL_UNIT) k += (size_t)snprintf(buf + k, cap - k, "%s%g", sep, l->args.r[i]);
        else k += (size_t)snprintf(buf + k, cap - k, "%s%llu", sep, (unsigned long long)l->args.v[i]);
    }
    if (lt->n_args && k < cap) snprintf(buf + k, cap - k, ")");
}

const char *layer_source(int first) { return first ? "the input has" : "the previous layer outputs"; }

int layer_shape_same(const struct LayerSpec *l, const struct LayerShape *in, int first, struct LayerShape *out,
                     uint64_t *n_params, char *err, size_t errlen)
{
    (void)l, (void)first, (void)err, (void)errlen;
    *out = *in;
    *n_params = 0;
    return 0;
}

struct Module *module_new(const struct LayerSpec *l)
{
    const struct LayerType *lt = layer_type(l->kind);
    struct Module *m = mem_alloc_zeroed(sizeof *m);
    m->kind = l->kind;
    m->spec = *l;
    m->forward = lt->forward;
    m->n_params = lt->n_params;
    CHECK(m->n_params <= MODULE_MAX_PARAMS, "%s has too many parameters", lt->name);
    if (m->n_params) {
        m->params = mem_alloc_zeroed(m->n_params * sizeof *m->params);
        m->param_nodes = mem_alloc_zeroed(m->n_params * sizeof *m->param_nodes);
    }
    m->n_state = lt->n_state;
    CHECK(m->n_state <= MODULE_MAX_PARAMS, "%s has too many state tensors", lt->name);
    if (m->n_state) m->state = mem_alloc_zeroed(m->n_state * sizeof *m->state);
    str_copy(m->name, lt->prefix, sizeof m->name);
    return m;
}

void module_set_state(struct Module *m, uint32_t i, struct Tensor *t)
{
    CHECK(i < m->n_state, "state %u of %s", i, m->name);
    m->state[i] = t;
}

/* PyTorch's default: uniform in +-1/sqrt(fan_in), weight first, then bias. */
void module_set_param(struct Module *m, uint32_t i, struct Tensor *t, double bound, struct Rng *rng)
{
    uint64_t n = tensor_numel(t);
    for (uint64_t k = 0; k < n; k++) {
        double v = (2.0 * rng_uniform(rng) - 1.0) * bound;
        if (t->dtype == DT_FLOAT32) tensor_f32(t)[k] = (float)v;
        else tensor_f64(t)[k] = v;
    }
    m->params[i] = t;
    m->param_nodes[i] = node_from_tensor(t, 1);
}

struct Module *module_create(const struct LayerSpec *l, uint32_t dtype, struct Rng *rng)
{
    return layer_type(l->kind)->create(l, dtype, rng);
}

uint64_t module_param_count(const struct Module *m)
{
    uint64_t n = 0;
    for (uint32_t j = 0; j < m->n_params; j++) n += tensor_numel(m->params[j]);
    return n;
}

void module_free(struct Module *m)
{
    if (!m) return;
    for (uint32_t i = 0; i < m->n_params; i++) {
        node_free(m->param_nodes[i]);
        tensor_free(m->params[i]);
    }
    for (uint32_t i = 0; i < m->n_state; i++) tensor_free(m->state[i]);
    mem_free(m->params);
    mem_free(m->param_nodes);
    mem_free(m->state);
    mem_free(m);
}
