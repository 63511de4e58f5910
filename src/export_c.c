/* export_c: a model as one dependency-free C99 file (see export.h).
 *
 * The file holds, in order: the API constants, the weights as static const arrays,
 * the helper functions the layers need (each once, written below as templates), two
 * static activation buffers, and the forward pass: one helper call per layer, ping-
 * ponging between the buffers. A layer that keeps its input's shape (an activation)
 * runs in place; the last layer that changes the shape writes straight into the
 * caller's y, and everything after it runs in place there. So the buffers hold only
 * what lies between the first and the last shape-changing layer, each sized to the
 * largest activation that lives in it.
 *
 * BatchNorm: where infer folds it into the Linear or Conv2d before it (model.c's
 * fusion rules), the export writes that layer's folded weights, made by the same
 * function; elsewhere it runs as y = scale x + shift per channel, scale and shift made
 * and rounded as nn_batchnorm makes them. Either way the numbers are infer's.
 *
 * Templates: $P is the prefix, $T the element type, $E and $H its exp and tanh. */
#include "cli.h"
#include "export_impl.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

struct CGen {
    struct ExportBuf *b;
    const char *prefix;
    char upper[40];        /* the prefix in upper case, for the macros */
    const char *type;      /* "float" or "double" */
    int f32;
};

/* Copies a template into the buffer, expanding $P, $T, $E and $H. */
static void emit(struct CGen *g, const char *tpl)
{
    for (const char *p = tpl; *p; p++) {
        if (*p != '$') {
            buf_put(g->b, p, 1);
            continue;
        }
        const char *s;
        switch (*++p) {
        case 'P': s = g->prefix; break;
        case 'T': s = g->type; break;
        case 'E': s = g->f32 ? "expf" : "exp"; break;
        case 'H': s = g->f32 ? "tanhf" : "tanh"; break;
        default: panic("bad template escape '$%c'", *p);
        }
        buf_put(g->b, s, strlen(s));
    }
}

/* ---- the helpers, one per layer kind that needs code ---- */

static const char normalize_src[] =
    "/* the input normalisation of training: y = (x - shift) * scale */\n"
    "static void $P_normalize(const $T *x, $T *y, const $T *shift, const $T *scale, size_t n)\n"
    "{\n"
    "    size_t i;\n"
    "    for (i = 0; i < n; i++) y[i] = (x[i] - shift[i]) * scale[i];\n"
    "}\n\n";

static const char linear_src[] =
    "/* Linear: y = W x + b, W (out x in) row-major. Eight partial sums, as a SIMD kernel\n"
    " * keeps: closer to the exact sum than one running sum, and compilers vectorise it */\n"
    "static void $P_linear(const $T *x, $T *y, const $T *w, const $T *b, size_t in, size_t out)\n"
    "{\n"
    "    size_t o, i, k, n8 = in / 8 * 8;\n"
    "    for (o = 0; o < out; o++) {\n"
    "        const $T *wo = w + o * in;\n"
    "        $T a[8] = {0, 0, 0, 0, 0, 0, 0, 0};\n"
    "        for (i = 0; i < n8; i += 8)\n"
    "            for (k = 0; k < 8; k++) a[k] += wo[i + k] * x[i + k];\n"
    "        for (i = n8; i < in; i++) a[i - n8] += wo[i] * x[i];\n"
    "        y[o] = ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7])) + b[o];\n"
    "    }\n"
    "}\n\n";

static const char conv2d_src[] =
    "/* Conv2d: x (c, h, w) to y (o, ho, wo), weights (o, c, kh, kw), zero padding,\n"
    " * cross-correlation as PyTorch's */\n"
    "static void $P_conv2d(const $T *x, $T *y, const $T *wt, const $T *b, size_t c, size_t h, size_t w,\n"
    "                      size_t o, size_t kh, size_t kw, size_t stride, size_t pad)\n"
    "{\n"
    "    size_t ho = (h + 2 * pad - kh) / stride + 1, wo = (w + 2 * pad - kw) / stride + 1;\n"
    "    size_t oc, i, j, ci, ki, kj;\n"
    "    for (oc = 0; oc < o; oc++)\n"
    "        for (i = 0; i < ho; i++)\n"
    "            for (j = 0; j < wo; j++) {\n"
    "                $T s = 0;\n"
    "                for (ci = 0; ci < c; ci++)\n"
    "                    for (ki = 0; ki < kh; ki++) {\n"
    "                        ptrdiff_t r = (ptrdiff_t)(i * stride + ki) - (ptrdiff_t)pad;\n"
    "                        const $T *xr, *wr;\n"
    "                        if (r < 0 || r >= (ptrdiff_t)h) continue;\n"
    "                        xr = x + (ci * h + (size_t)r) * w;\n"
    "                        wr = wt + ((oc * c + ci) * kh + ki) * kw;\n"
    "                        for (kj = 0; kj < kw; kj++) {\n"
    "                            ptrdiff_t q = (ptrdiff_t)(j * stride + kj) - (ptrdiff_t)pad;\n"
    "                            if (q >= 0 && q < (ptrdiff_t)w) s += wr[kj] * xr[q];\n"
    "                        }\n"
    "                    }\n"
    "                y[(oc * ho + i) * wo + j] = s + b[oc];\n"
    "            }\n"
    "}\n\n";

static const char relu_src[] =
    "static void $P_relu(const $T *x, $T *y, size_t n)\n"
    "{\n"
    "    size_t i;\n"
    "    for (i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0;\n"
    "}\n\n";

static const char sigmoid_src[] =
    "/* without overflow: exp of a non-positive number only */\n"
    "static void $P_sigmoid(const $T *x, $T *y, size_t n)\n"
    "{\n"
    "    size_t i;\n"
    "    for (i = 0; i < n; i++) {\n"
    "        $T v = x[i];\n"
    "        y[i] = v >= 0 ? 1 / (1 + $E(-v)) : $E(v) / (1 + $E(v));\n"
    "    }\n"
    "}\n\n";

static const char tanh_src[] =
    "static void $P_tanh(const $T *x, $T *y, size_t n)\n"
    "{\n"
    "    size_t i;\n"
    "    for (i = 0; i < n; i++) y[i] = $H(x[i]);\n"
    "}\n\n";

static const char softmax_src[] =
    "/* softmax over n values, stable: the largest is subtracted first */\n"
    "static void $P_softmax(const $T *x, $T *y, size_t n)\n"
    "{\n"
    "    $T m = x[0], s = 0;\n"
    "    size_t i;\n"
    "    for (i = 1; i < n; i++) m = x[i] > m ? x[i] : m;\n"
    "    for (i = 0; i < n; i++) s += y[i] = $E(x[i] - m);\n"
    "    for (i = 0; i < n; i++) y[i] /= s;\n"
    "}\n\n";

/* y = scale x + shift: per feature (hw 1) or per plane of hw values */
static const char batchnorm_src[] =
    "/* BatchNorm at inference: y = scale[p] x + shift[p] over c planes of hw values (hw is 1\n"
    " * for BatchNorm1d), scale and shift made from the running statistics as infer makes them */\n"
    "static void $P_batchnorm(const $T *x, $T *y, const $T *scale, const $T *shift, size_t c, size_t hw)\n"
    "{\n"
    "    size_t p, i;\n"
    "    for (p = 0; p < c; p++)\n"
    "        for (i = 0; i < hw; i++) y[p * hw + i] = scale[p] * x[p * hw + i] + shift[p];\n"
    "}\n\n";

static const char maxpool2d_src[] =
    "/* MaxPool2d: k x k windows at stride s of each of c planes (h x w), no padding */\n"
    "static void $P_maxpool2d(const $T *x, $T *y, size_t c, size_t h, size_t w, size_t k, size_t s)\n"
    "{\n"
    "    size_t ho = (h - k) / s + 1, wo = (w - k) / s + 1, p, i, j, a, b;\n"
    "    for (p = 0; p < c; p++)\n"
    "        for (i = 0; i < ho; i++)\n"
    "            for (j = 0; j < wo; j++) {\n"
    "                const $T *q = x + (p * h + i * s) * w + j * s;\n"
    "                $T m = q[0];\n"
    "                for (a = 0; a < k; a++)\n"
    "                    for (b = 0; b < k; b++)\n"
    "                        if (q[a * w + b] > m || q[a * w + b] != q[a * w + b]) m = q[a * w + b];\n"
    "                y[(p * ho + i) * wo + j] = m;\n"
    "            }\n"
    "}\n\n";

static const char avgpool2d_src[] =
    "/* AvgPool2d: the mean of k x k windows at stride s of each of c planes (h x w) */\n"
    "static void $P_avgpool2d(const $T *x, $T *y, size_t c, size_t h, size_t w, size_t k, size_t s)\n"
    "{\n"
    "    size_t ho = (h - k) / s + 1, wo = (w - k) / s + 1, p, i, j, a, b;\n"
    "    for (p = 0; p < c; p++)\n"
    "        for (i = 0; i < ho; i++)\n"
    "            for (j = 0; j < wo; j++) {\n"
    "                const $T *q = x + (p * h + i * s) * w + j * s;\n"
    "                $T sum = 0;\n"
    "                for (a = 0; a < k; a++)\n"
    "                    for (b = 0; b < k; b++) sum += q[a * w + b];\n"
    "                y[(p * ho + i) * wo + j] = sum / ($T)(k * k);\n"
    "            }\n"
    "}\n\n";

/* ---- the table: how each layer kind is exported ---- */

typedef void (*c_call_fn)(struct CGen *g, const struct ExportStep *s, const char *in, const char *out);

struct CRow {
    const char *helper;     /* the helper's template (NULL: none); kinds may share one */
    int in_place;           /* keeps its input's shape: may run with in == out */
    c_call_fn call;         /* writes the helper call of one step; NULL: cannot export */
    const char *cannot;     /* why not, when call is NULL */
    int identity;           /* nothing to do at inference (Dropout): no helper, no call */
};

static int is_batchnorm(uint32_t kind) { return kind == MOD_BATCHNORM1D || kind == MOD_BATCHNORM2D; }

/* "digits_linear1_weight": the j-th array of a step, a parameter's, or for a BatchNorm
 * its scale (0) and shift (1). */
static void param_name(char *buf, size_t cap, const struct CGen *g, const struct ExportStep *s, uint32_t j)
{
    static const char *const bn[2] = {"scale", "shift"};
    const char *what = is_batchnorm(s->kind) ? bn[j] : layer_type(s->kind)->param_names[j];
    snprintf(buf, cap, "%s_%s_%s", g->prefix, s->name, what);
}

static void call_linear(struct CGen *g, const struct ExportStep *s, const char *in, const char *out)
{
    char w[96], b[96];
    param_name(w, sizeof w, g, s, 0);
    param_name(b, sizeof b, g, s, 1);
    const struct LayerSpec *l = &s->mod->spec;
    buf_printf(g->b, "    %s_linear(%s, %s, %s, %s, %llu, %llu);\n", g->prefix, in, out, w, b,
               (unsigned long long)l->args.linear.in, (unsigned long long)l->args.linear.out);
}

static void call_conv2d(struct CGen *g, const struct ExportStep *s, const char *in, const char *out)
{
    char w[96], b[96];
    param_name(w, sizeof w, g, s, 0);
    param_name(b, sizeof b, g, s, 1);
    const struct LayerSpec *l = &s->mod->spec;
    buf_printf(g->b, "    %s_conv2d(%s, %s, %s, %s, %llu, %llu, %llu, %llu, %llu, %llu, %llu, %llu);\n", g->prefix, in,
               out, w, b, (unsigned long long)s->in.d[0], (unsigned long long)s->in.d[1],
               (unsigned long long)s->in.d[2], (unsigned long long)l->args.conv2d.out_ch,
               (unsigned long long)l->args.conv2d.kh, (unsigned long long)l->args.conv2d.kw,
               (unsigned long long)l->args.conv2d.stride, (unsigned long long)l->args.conv2d.padding);
}

/* The elementwise kinds: "$P_<helper>(in, out, n)". */
static void call_unary(struct CGen *g, const struct ExportStep *s, const char *in, const char *out)
{
    char fn[32];
    str_copy(fn, layer_type(s->kind)->prefix, sizeof fn);
    buf_printf(g->b, "    %s_%s(%s, %s, %llu);\n", g->prefix, fn, in, out,
               (unsigned long long)layer_shape_numel(&s->out));
}

static void call_pool(struct CGen *g, const struct ExportStep *s, const char *in, const char *out)
{
    const struct LayerSpec *l = &s->mod->spec;
    buf_printf(g->b, "    %s_%s(%s, %s, %llu, %llu, %llu, %llu, %llu);\n", g->prefix, layer_type(s->kind)->prefix, in, out,
               (unsigned long long)s->in.d[0], (unsigned long long)s->in.d[1], (unsigned long long)s->in.d[2],
               (unsigned long long)l->args.pool.k, (unsigned long long)l->args.pool.stride);
}

static void call_batchnorm(struct CGen *g, const struct ExportStep *s, const char *in, const char *out)
{
    char scale[96], shift[96];
    param_name(scale, sizeof scale, g, s, 0);
    param_name(shift, sizeof shift, g, s, 1);
    uint64_t hw = s->in.ndim == 3 ? s->in.d[1] * s->in.d[2] : 1;
    buf_printf(g->b, "    %s_batchnorm(%s, %s, %s, %s, %llu, %llu);\n", g->prefix, in, out, scale, shift,
               (unsigned long long)s->in.d[0], (unsigned long long)hw);
}

static const struct CRow c_rows[] = {
    [MOD_LINEAR] = {linear_src, 0, call_linear, NULL},
    [MOD_CONV2D] = {conv2d_src, 0, call_conv2d, NULL},
    [MOD_RELU] = {relu_src, 1, call_unary, NULL},
    [MOD_SIGMOID] = {sigmoid_src, 1, call_unary, NULL},
    [MOD_TANH] = {tanh_src, 1, call_unary, NULL},
    [MOD_SOFTMAX] = {softmax_src, 1, call_unary, NULL},
    [MOD_MAXPOOL2D] = {maxpool2d_src, 0, call_pool, NULL},
    [MOD_AVGPOOL2D] = {avgpool2d_src, 0, call_pool, NULL},
    [MOD_DROPOUT] = {NULL, 1, NULL, NULL, 1},
    /* after a Linear or Conv2d folded into its weights instead (see export_c) */
    [MOD_BATCHNORM1D] = {batchnorm_src, 1, call_batchnorm, NULL},
    [MOD_BATCHNORM2D] = {batchnorm_src, 1, call_batchnorm, NULL},
};
_Static_assert(sizeof c_rows / sizeof *c_rows == MOD_COUNT, "the C exporter needs a row per layer kind");

/* ---- the buffer plan ---- */

enum Place { AT_X, AT_Y, AT_B0, AT_B1 };

/* One helper call of the forward pass: a layer (step) or the normalisation (step NULL).
 * Its arrays are the step's parameters, unless arrays[0] is set: a BatchNorm's scale and
 * shift, or the weight and bias of a Linear or Conv2d with the BatchNorm bn after it
 * folded in, as infer runs both (owned). */
struct COp {
    const struct ExportStep *step, *bn;
    enum Place in, out;
    struct Tensor *arrays[2];
};

struct CPlan {
    struct COp ops[CONFIG_MAX_LAYERS + 1];
    uint32_t n;
    uint64_t buf[2];            /* elements of buffers 0 and 1 */
    uint64_t inputs;            /* what the normalisation writes */
};

/* Places every op's input and output (see the top of this file). ops[] is filled with
 * the steps already, in == out == AT_X. */
static void plan_places(struct CPlan *cp)
{
    uint32_t last = 0; /* the op that writes y */
    for (uint32_t i = 0; i < cp->n; i++)
        if (!cp->ops[i].step || !c_rows[cp->ops[i].step->kind].in_place) last = i;
    enum Place cur = AT_X;
    for (uint32_t i = 0; i < cp->n; i++) {
        struct COp *op = &cp->ops[i];
        int in_place = op->step && c_rows[op->step->kind].in_place;
        op->in = cur;
        if (i > last || (i < last && in_place && cur != AT_X)) op->out = cur;
        else if (i == last) op->out = AT_Y;
        else op->out = cur == AT_B0 ? AT_B1 : AT_B0;
        if (op->out == AT_B0 || op->out == AT_B1) {
            uint64_t n = op->step ? layer_shape_numel(&op->step->out) : cp->inputs;
            uint64_t *b = &cp->buf[op->out - AT_B0];
            if (n > *b) *b = n;
        }
        cur = op->out;
    }
}

static void cplan_free(struct CPlan *cp)
{
    for (uint32_t i = 0; i < cp->n; i++) {
        tensor_free(cp->ops[i].arrays[0]);
        tensor_free(cp->ops[i].arrays[1]);
    }
}

/* ---- BatchNorm's arrays, as infer computes them ---- */

static struct Tensor *channel_tensor(uint64_t n, uint32_t dtype, const double *v)
{
    struct Tensor *t = tensor_create(1, &n, dtype);
    for (uint64_t i = 0; i < n; i++) {
        if (dtype == DT_FLOAT32) tensor_f32(t)[i] = (float)v[i];
        else tensor_f64(t)[i] = v[i];
    }
    return t;
}

/* Sets op's arrays when it is a BatchNorm (its scale and shift, rounded to the dtype as
 * nn_batchnorm rounds them) or has one folded in (model_fold_batchnorm's weights). Fails
 * when a value is not finite (the dtype overflowed): no export could reproduce it. */
static int bn_arrays(struct COp *op, char *err, size_t errlen)
{
    const struct Module *mod = op->step->mod, *bn = op->bn ? op->bn->mod : mod;
    if (!op->bn && !is_batchnorm(op->step->kind)) return 0;
    uint32_t dt = mod->params[0]->dtype;
    uint64_t C = bn->params[0]->shape[0];
    double *st = mem_alloc(2 * C * sizeof *st);
    if (op->bn) {
        const struct Tensor *W = mod->params[0];
        op->arrays[0] = tensor_create(W->ndim, W->shape, dt);
        op->arrays[1] = tensor_create(1, &C, dt);
        model_fold_batchnorm(mod, bn, st, op->arrays[0], op->arrays[1]);
    } else {
        nn_batchnorm_fold(bn->params[0], bn->params[1], bn->state[0], bn->state[1], st, st + C);
        op->arrays[0] = channel_tensor(C, dt, st);
        op->arrays[1] = channel_tensor(C, dt, st + C);
    }
    mem_free(st);
    for (int j = 0; j < 2; j++)
        for (uint64_t k = 0; k < tensor_numel(op->arrays[j]); k++) {
            double v = tensor_at(op->arrays[j], k);
            if (isfinite(v)) continue;
            char why[160];
            if (op->bn)
                snprintf(why, sizeof why, "folded into %s, it gives a %s that is not finite (%g at index %llu)",
                         op->step->name, j ? "bias" : "weight", v, (unsigned long long)k);
            else
                snprintf(why, sizeof why, "its %s is not finite (%g at channel %llu)", j ? "shift" : "scale", v,
                         (unsigned long long)k);
            return export_cannot(op->bn ? op->bn : op->step, "C", why, err, errlen);
        }
    return 0;
}

static const char *place_name(const struct CGen *g, enum Place p, char *buf, size_t cap)
{
    static const char *const names[] = {"x", "y", "buf0", "buf1"};
    if (p == AT_X || p == AT_Y) return names[p];
    snprintf(buf, cap, "%s_%s", g->prefix, names[p]);
    return buf;
}

/* ---- writing the file ---- */

/* One number as a literal that reads back to the same value. */
static void emit_number(struct CGen *g, double v)
{
    char s[40];
    snprintf(s, sizeof s, g->f32 ? "%.9g" : "%.17g", v);
    int has_point = strpbrk(s, ".e") != NULL;
    buf_printf(g->b, "%s%s%s", s, has_point ? "" : ".0", g->f32 ? "f" : "");
}

static void emit_array(struct CGen *g, const char *name, const struct Tensor *t, uint64_t *bytes)
{
    uint64_t n = tensor_numel(t);
    buf_printf(g->b, "static const %s %s[%llu] = {", g->type, name, (unsigned long long)n);
    for (uint64_t i = 0; i < n; i++) {
        buf_printf(g->b, "%s", i % 8 ? ", " : i ? ",\n    " : "\n    ");
        emit_number(g, tensor_at(t, i));
    }
    buf_printf(g->b, "\n};\n");
    *bytes += n * dtype_size(t->dtype);
}

static void emit_weights(struct CGen *g, const struct ExportPlan *p, const struct CPlan *cp, uint64_t *bytes)
{
    char name[96];
    const struct Model *m = p->m;
    if (m->shift) {
        buf_printf(g->b, "\n/* input normalisation: the network sees (x - shift) * scale */\n");
        snprintf(name, sizeof name, "%s_input_shift", g->prefix);
        emit_array(g, name, m->shift, bytes);
        snprintf(name, sizeof name, "%s_input_scale", g->prefix);
        emit_array(g, name, m->scale, bytes);
    }
    for (uint32_t i = 0; i < cp->n; i++) {
        const struct COp *op = &cp->ops[i];
        const struct ExportStep *s = op->step;
        if (!s || !s->mod || !s->mod->n_params) continue;
        if (op->bn) buf_printf(g->b, "\n/* %s with %s folded in, as infer runs them */\n", s->name, op->bn->name);
        else if (op->arrays[0])
            buf_printf(g->b, "\n/* %s: scale = weight / sqrt(running_var + eps), shift = bias - running_mean"
                             " * scale */\n", s->name);
        else buf_printf(g->b, "\n/* %s */\n", s->name);
        for (uint32_t j = 0; j < (op->arrays[0] ? 2 : s->mod->n_params); j++) {
            param_name(name, sizeof name, g, s, j);
            emit_array(g, name, op->arrays[0] ? op->arrays[j] : s->mod->params[j], bytes);
        }
    }
}

/* Each helper the forward pass calls, once (an unused static function would be a
 * warning), in table order. */
static void emit_helpers(struct CGen *g, const struct ExportPlan *p, const struct CPlan *cp)
{
    const char *done[MOD_COUNT];
    uint32_t n_done = 0;
    buf_printf(g->b, "\n");
    if (p->m->shift) emit(g, normalize_src);
    for (uint32_t k = 0; k < MOD_COUNT; k++) {
        int used = p->classify && k == MOD_SOFTMAX; /* the output softmax */
        for (uint32_t i = 0; i < cp->n; i++) used |= cp->ops[i].step && cp->ops[i].step->kind == k;
        for (uint32_t j = 0; j < n_done; j++) used &= done[j] != c_rows[k].helper;
        if (!used || !c_rows[k].helper) continue;
        emit(g, c_rows[k].helper);
        done[n_done++] = c_rows[k].helper;
    }
}

static void emit_ops(struct CGen *g, const struct CPlan *cp)
{
    char a[64], b[64], what[128];
    for (uint32_t i = 0; i < cp->n; i++) {
        const struct COp *op = &cp->ops[i];
        const char *in = place_name(g, op->in, a, sizeof a), *out = place_name(g, op->out, b, sizeof b);
        if (!op->step) {
            buf_printf(g->b, "    %s_normalize(%s, %s, %s_input_shift, %s_input_scale, %s_INPUTS);\n", g->prefix, in,
                       out, g->prefix, g->prefix, g->upper);
            continue;
        }
        export_step_str(what, sizeof what, op->step);
        buf_printf(g->b, "    /* %s: %s", op->step->name, what);
        if (op->bn) {
            export_step_str(what, sizeof what, op->bn);
            buf_printf(g->b, ", %s: %s folded in", op->bn->name, what);
        }
        buf_printf(g->b, " */\n");
        c_rows[op->step->kind].call(g, op->step, in, out);
    }
    if (!cp->n) buf_printf(g->b, "    size_t i;\n    for (i = 0; i < %s_OUTPUTS; i++) y[i] = x[i];\n", g->upper);
}

/* The forward pass and, for classifiers, predict. The network up to the output
 * softmax is one static function, so predict takes the argmax of the pre-softmax
 * values as infer does. */
static void emit_api(struct CGen *g, const struct ExportPlan *p, const struct CPlan *cp)
{
    const char *P = g->prefix, *T = g->type;
    char a[64];
    for (int k = 0; k < 2; k++)
        if (cp->buf[k])
            buf_printf(g->b, "static %s %s[%llu];\n", T, place_name(g, (enum Place)(AT_B0 + k), a, sizeof a),
                       (unsigned long long)cp->buf[k]);
    buf_printf(g->b, "\n%s %s_%s(const %s *x, %s *y)\n{\n", p->classify ? "static void" : "void", P,
               p->classify ? "logits" : "forward", T, T);
    emit_ops(g, cp);
    buf_printf(g->b, "}\n");
    if (!p->classify) return;
    buf_printf(g->b,
               "\n/* the class probabilities, as infer --probs prints them */\n"
               "void %s_forward(const %s *x, %s *y)\n{\n    %s_logits(x, y);\n    %s_softmax(y, y, %s_OUTPUTS);\n}\n",
               P, T, T, P, P, g->upper);
    buf_printf(g->b,
               "\n/* the class, as infer prints it: the first largest pre-softmax value */\n"
               "int %s_predict(const %s *x)\n{\n    %s y[%s_OUTPUTS];\n    int c, best = 0;\n"
               "    %s_logits(x, y);\n    for (c = 1; c < %s_OUTPUTS; c++)\n"
               "        if (y[c] > y[best]) best = c;\n    return best;\n}\n",
               P, T, T, g->upper, P, g->upper);
}

/* The constants and prototypes, in the C file and in the header alike. */
static void emit_decls(struct CGen *g, const struct ExportPlan *p)
{
    const char *P = g->prefix, *T = g->type;
    buf_printf(g->b, "#define %s_INPUTS %llu\n#define %s_OUTPUTS %llu\n\n", g->upper, (unsigned long long)p->inputs,
               g->upper, (unsigned long long)p->outputs);
    buf_printf(g->b, "/* y = the %s of one input row x */\nvoid %s_forward(const %s *x, %s *y);\n",
               p->classify ? "class probabilities" : "outputs", P, T, T);
    if (p->classify) buf_printf(g->b, "/* the predicted class of x */\nint %s_predict(const %s *x);\n", P, T);
}

static void emit_intro(struct CGen *g, const struct ExportPlan *p, const char *what)
{
    char s[128];
    buf_printf(g->b, "/* %s of the model %s,\n * exported by dlexport %s (minidl). C99, no allocation.\n *\n", what,
               p->source, MINIDL_VERSION);
    buf_printf(g->b, " * input: %llu %s values", (unsigned long long)p->inputs, dtype_name(p->dtype));
    if (p->input.ndim == 3)
        buf_printf(g->b, " (%llux%llux%llu, channels first)", (unsigned long long)p->input.d[0],
                   (unsigned long long)p->input.d[1], (unsigned long long)p->input.d[2]);
    buf_printf(g->b, "%s\n * network:", p->m->shift ? ", normalised inside" : "");
    for (uint32_t i = 0; i < p->n; i++) {
        export_step_str(s, sizeof s, &p->steps[i]);
        buf_printf(g->b, " %s", s);
    }
    buf_printf(g->b, "\n * output: %llu %s */\n", (unsigned long long)p->outputs,
               p->classify ? "class probabilities (predict gives the class)" : "values (regression)");
}

static void emit_header(struct CGen *g, const struct ExportPlan *p)
{
    emit_intro(g, p, "The API");
    buf_printf(g->b, "#ifndef %s_MODEL_H\n#define %s_MODEL_H\n\n", g->upper, g->upper);
    emit_decls(g, p);
    buf_printf(g->b, "\n#endif\n");
}

int export_c(const struct Model *m, const char *prefix, const char *source, struct ExportBuf *c, struct ExportBuf *h,
             struct ExportSizes *sizes, char *err, size_t errlen)
{
    struct ExportPlan p;
    if (!export_prefix_ok(prefix)) return err_set(err, errlen, "'%s' is not a usable C prefix", prefix);
    if (export_plan(m, source, &p, err, errlen)) return -1;
    struct CPlan cp = {.inputs = p.inputs};
    if (m->shift) cp.ops[cp.n++] = (struct COp){NULL, NULL, AT_X, AT_X, {NULL, NULL}};
    int bad = 0;
    for (uint32_t i = 0; !bad && i + (uint32_t)p.classify < p.n; i++) {
        const struct ExportStep *s = &p.steps[i];
        if (c_rows[s->kind].identity) continue;
        if (!c_rows[s->kind].call) {
            bad = export_cannot(s, "C", c_rows[s->kind].cannot, err, errlen);
            break;
        }
        struct COp *op = &cp.ops[cp.n++];
        *op = (struct COp){s, NULL, AT_X, AT_X, {NULL, NULL}};
        /* where infer folds a BatchNorm into the layer before it, so does the export */
        if (i + 1 < p.n && model_folds_batchnorm(s->kind, p.steps[i + 1].kind)) op->bn = &p.steps[++i];
        bad = bn_arrays(op, err, errlen);
    }
    if (bad) {
        cplan_free(&cp);
        return -1;
    }
    plan_places(&cp);

    struct CGen g = {c, prefix, {0}, p.dtype == DT_FLOAT32 ? "float" : "double", p.dtype == DT_FLOAT32};
    for (size_t i = 0; prefix[i]; i++) g.upper[i] = (char)(prefix[i] >= 'a' && prefix[i] <= 'z' ? prefix[i] - 32 : prefix[i]);
    memset(sizes, 0, sizeof *sizes);
    emit_intro(&g, &p, "A standalone C version");
    buf_printf(c, "#include <math.h>\n#include <stddef.h>\n\n");
    emit_decls(&g, &p);
    emit_weights(&g, &p, &cp, &sizes->const_bytes);
    emit_helpers(&g, &p, &cp);
    emit_api(&g, &p, &cp);
    sizes->ram_bytes = (cp.buf[0] + cp.buf[1]) * dtype_size(p.dtype);
    sizes->stack_bytes = p.classify ? p.outputs * dtype_size(p.dtype) : 0;
    if (h) {
        g.b = h;
        emit_header(&g, &p);
    }
    cplan_free(&cp);
    return 0;
}
