/* export: what both exporters share (see export_impl.h): the byte buffer, the plan of
 * the model's layers, the prefix rule and the "cannot export" message. */
#include "export_impl.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void export_buf_free(struct ExportBuf *b)
{
    mem_free(b->data);
    memset(b, 0, sizeof *b);
}

static void buf_reserve(struct ExportBuf *b, size_t n)
{
    if (b->cap - b->len >= n) return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < n) {
        CHECK(cap <= SIZE_MAX / 2, "export buffer too large");
        cap *= 2;
    }
    b->data = mem_realloc(b->data, cap);
    b->cap = cap;
}

void buf_put(struct ExportBuf *b, const void *p, size_t n)
{
    if (!n) return;
    buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void buf_printf(struct ExportBuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    CHECK(n >= 0, "bad format '%s'", fmt);
    buf_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

int export_prefix_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 32 || name[0] == '_' || (name[0] >= '0' && name[0] <= '9')) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return 0;
    }
    return 1;
}

/* Infinities and NaNs would be invalid C literals, and no export could match them. */
static int check_finite(const struct Model *m, char *err, size_t errlen)
{
    for (uint32_t i = 0; i < m->n_named; i++) {
        const struct Tensor *t = m->named[i].t;
        uint64_t n = tensor_numel(t);
        for (uint64_t k = 0; k < n; k++)
            if (!isfinite(tensor_at(t, k)))
                return err_set(err, errlen, "tensor '%s' holds a non-finite value (%g at index %llu)",
                               m->named[i].name, tensor_at(t, k), (unsigned long long)k);
    }
    return 0;
}

/* A negative running variance (var + eps not positive) has no square root: infer gives
 * NaN, which no export could match. */
static int check_variances(const struct Model *m, char *err, size_t errlen)
{
    for (uint32_t i = 0; i < m->n_mods; i++) {
        const struct Module *mod = m->mods[i];
        if (mod->kind != MOD_BATCHNORM1D && mod->kind != MOD_BATCHNORM2D) continue;
        const struct Tensor *var = mod->state[1];
        for (uint64_t k = 0; k < tensor_numel(var); k++)
            if (!(tensor_at(var, k) + NN_BATCHNORM_EPS > 0))
                return err_set(err, errlen, "tensor '%s.%s' holds %g at index %llu: a running variance cannot be "
                               "negative", mod->name, layer_type(mod->kind)->state_names[1], tensor_at(var, k),
                               (unsigned long long)k);
    }
    return 0;
}

/* The base name of path as it may appear in a C comment and an ONNX string (UTF-8):
 * printable ASCII, '?' for anything else, and no comment end. */
static void source_name(char *buf, size_t cap, const char *path)
{
    const char *base = strrchr(path, '/');
    size_t k = 0;
    for (const char *s = base && base[1] ? base + 1 : path; *s && k + 1 < cap; s++) {
        char c = *s;
        if (c < 0x20 || c > 0x7E || (c == '/' && k && buf[k - 1] == '*')) c = '?';
        buf[k++] = c;
    }
    buf[k] = 0;
}

int export_plan(const struct Model *m, const char *source, struct ExportPlan *p, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    if (check_finite(m, err, errlen) || check_variances(m, err, errlen)) return -1;
    source_name(p->source, sizeof p->source, source);
    const struct TrainConfig *c = &m->cfg;
    p->m = m;
    p->dtype = c->dtype;
    p->classify = c->loss == LOSS_CROSS_ENTROPY;
    p->input = (struct LayerShape){c->input_ndim, {c->input_shape[0], c->input_shape[1], c->input_shape[2]}};
    p->inputs = c->input_dim;
    p->outputs = c->output_dim;
    struct LayerShape in = p->input;
    for (uint32_t i = 0; i < m->n_mods; i++) {
        const struct Module *mod = m->mods[i];
        struct ExportStep *s = &p->steps[p->n++];
        *s = (struct ExportStep){mod->kind, mod, in, mod->spec.out, {0}};
        str_copy(s->name, mod->name, sizeof s->name);
        in = mod->spec.out;
    }
    /* infer's probabilities: the softmax of the pre-softmax values, applied once */
    if (p->classify && !(p->n && p->steps[p->n - 1].kind == MOD_SOFTMAX)) {
        struct ExportStep *s = &p->steps[p->n++];
        *s = (struct ExportStep){MOD_SOFTMAX, NULL, in, in, {0}};
        str_copy(s->name, "output_softmax", sizeof s->name);
    }
    return 0;
}

int export_cannot(const struct ExportStep *s, const char *format, const char *why, char *err, size_t errlen)
{
    return err_set(err, errlen, "layer '%s' (%s) cannot be exported to %s: %s", s->name, layer_type(s->kind)->name,
                   format, why);
}

void export_step_str(char *buf, size_t cap, const struct ExportStep *s)
{
    if (s->mod) layer_spec_str(buf, cap, &s->mod->spec); /* reals (Dropout's p) as reals */
    else snprintf(buf, cap, "%s", layer_type(s->kind)->name);
}
