/* model: the network of a config, built through the layer table. */
#include "model.h"
#include "activations.h"
#include "threads.h"

#include <stdio.h>
#include <string.h>

/* Byte counts that saturate instead of wrapping: a huge config must not look small. */
static uint64_t sat_add(uint64_t a, uint64_t b) { return a + b < a ? UINT64_MAX : a + b; }
static uint64_t sat_mul(uint64_t a, uint64_t b)
{
    uint64_t r;
    return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}

/* Parameter names (linear1.weight, ...) then input.shift/scale, from the table's rows. */
static void model_refresh_names(struct Model *m)
{
    uint32_t n = m->n_params + (m->shift ? 2 : 0), k = 0;
    for (uint32_t i = 0; i < m->n_mods; i++) n += m->mods[i]->n_state;
    mem_free(m->named);
    mem_free(m->names);
    m->named = mem_alloc_zeroed((n ? n : 1) * sizeof *m->named);
    m->names = mem_alloc_zeroed((n ? n : 1) * sizeof *m->names);
    for (uint32_t i = 0; i < m->n_mods; i++) {
        const struct Module *mod = m->mods[i];
        const struct LayerType *lt = layer_type(mod->kind);
        for (uint32_t j = 0; j < mod->n_params; j++, k++) {
            snprintf(m->names[k], sizeof m->names[k], "%s.%s", mod->name, lt->param_names[j]);
            m->named[k] = (struct NamedTensor){m->names[k], mod->params[j]};
        }
        for (uint32_t j = 0; j < mod->n_state; j++, k++) {
            snprintf(m->names[k], sizeof m->names[k], "%s.%s", mod->name, lt->state_names[j]);
            m->named[k] = (struct NamedTensor){m->names[k], mod->state[j]};
        }
    }
    if (m->shift) {
        str_copy(m->names[k], "input.shift", sizeof m->names[k]);
        m->named[k] = (struct NamedTensor){m->names[k], m->shift};
        k++;
        str_copy(m->names[k], "input.scale", sizeof m->names[k]);
        m->named[k] = (struct NamedTensor){m->names[k], m->scale};
        k++;
    }
    m->n_named = k;
}

void model_init(struct Model *m, const struct TrainConfig *cfg, uint64_t seed)
{
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    struct Rng rng;
    rng_seed(&rng, seed);
    m->run.training = 1;
    rng_seed(&m->run.rng, seed ^ 0x5eedd40f0u); /* apart from the initialisation's stream */
    uint32_t count[MOD_COUNT] = {0};
    m->n_mods = cfg->n_layers;
    m->mods = mem_alloc_zeroed((m->n_mods ? m->n_mods : 1) * sizeof *m->mods);
    for (uint32_t i = 0; i < m->n_mods; i++) {
        const struct LayerSpec *l = &cfg->layers[i];
        struct Module *mod = m->mods[i] = module_create(l, cfg->dtype, &rng);
        snprintf(mod->name, sizeof mod->name, "%s%u", layer_type(l->kind)->prefix, ++count[l->kind]);
        mod->run = &m->run;
        m->n_params += mod->n_params;
    }
    m->param_nodes = mem_alloc_zeroed((m->n_params ? m->n_params : 1) * sizeof *m->param_nodes);
    uint32_t k = 0;
    for (uint32_t i = 0; i < m->n_mods; i++)
        for (uint32_t j = 0; j < m->mods[i]->n_params; j++) m->param_nodes[k++] = m->mods[i]->param_nodes[j];
    model_refresh_names(m);
}

void model_set_norm(struct Model *m, struct Tensor *shift, struct Tensor *scale)
{
    tensor_free(m->shift);
    tensor_free(m->scale);
    m->shift = shift;
    m->scale = scale;
    model_refresh_names(m);
}

void model_free(struct Model *m)
{
    for (uint32_t i = 0; m->mods && i < m->n_mods; i++) module_free(m->mods[i]);
    mem_free(m->mods);
    mem_free(m->param_nodes);
    tensor_free(m->shift);
    tensor_free(m->scale);
    mem_free(m->named);
    mem_free(m->names);
    memset(m, 0, sizeof *m);
}

/* The config of a model file: from config_path, or the file's own trailer. */
static int file_config(const struct ModelFile *mf, const char *path, const char *config_path, struct TrainConfig *cfg,
                       char *err, size_t errlen)
{
    if (config_path) {
        size_t len;
        char *text = config_read_file(config_path, &len, err, errlen);
        if (!text) return -1;
        int bad = config_parse_text(text, len, config_path, cfg, err, errlen);
        mem_free(text);
        return bad;
    }
    if (!mf->config_text)
        return err_set(err, errlen, "%s has no embedded config: give the one it was trained with, with --config FILE",
                       path);
    char name[4200];
    snprintf(name, sizeof name, "%s (embedded config)", path);
    return config_parse_text(mf->config_text, mf->config_len, name, cfg, err, errlen);
}

int model_from_file(struct Model *m, const char *path, const char *config_path, char *err, size_t errlen)
{
    struct ModelFile mf;
    struct TrainConfig cfg;
    memset(m, 0, sizeof *m);
    if (model_load(path, &mf, err, errlen)) return -1;
    int bad = file_config(&mf, path, config_path, &cfg, err, errlen);
    /* The config must describe the weights the file holds before anything is built: a
     * config asking for gigabytes of weights must not allocate them first. */
    uint64_t want = 0, have = 0;
    for (uint32_t i = 0; !bad && i < cfg.n_layers; i++) want += cfg.layers[i].n_params;
    for (uint32_t i = 0; !bad && i < mf.n; i++) /* not the normalisation, nor a checkpoint's training state */
        if (strncmp(mf.tensors[i].name, "input.", 6) && strncmp(mf.tensors[i].name, "train.", 6))
            have += tensor_numel(mf.tensors[i].t);
    if (!bad && want != have)
        bad = err_set(err, errlen,
                      "%s: the config describes %llu weights but the file holds %llu: wrong --config, or a damaged file",
                      path, (unsigned long long)want, (unsigned long long)have);
    if (!bad && cfg.normalize != NORM_NONE &&
        (!model_file_find(&mf, "input.shift") || !model_file_find(&mf, "input.scale")))
        bad = err_set(err, errlen, "%s: the config asks for normalisation but input.shift/input.scale are missing",
                      path);
    if (!bad) { /* the weights are in memory once already: building copies them */
        char name[4200];
        snprintf(name, sizeof name, config_path ? "%s" : "%s (embedded config)", config_path ? config_path : path);
        bad = model_memory_check(&cfg, name, 0, 0, sat_mul(have, dtype_size(cfg.dtype)), err, errlen);
    }
    if (!bad) {
        model_init(m, &cfg, cfg.seed);
        m->run.training = 0;
        uint64_t d = cfg.input_dim;
        if (cfg.normalize != NORM_NONE) model_set_norm(m, tensor_zeros(1, &d, cfg.dtype), tensor_zeros(1, &d, cfg.dtype));
        bad = model_assign(&mf, m->named, m->n_named, path, err, errlen);
        if (bad) model_free(m);
    }
    model_file_free(&mf);
    return bad ? -1 : 0;
}

struct Node *model_input(struct Graph *g, const struct Model *m, struct Tensor *batch)
{
    struct Node *x = graph_input(g, batch, 0);
    if (m->cfg.input_ndim != 3) return x;
    const uint64_t *s = m->cfg.input_shape;
    uint64_t shape[4] = {batch->shape[0], s[0], s[1], s[2]};
    return ag_reshape(x, 4, shape);
}

int model_folds_batchnorm(uint32_t kind, uint32_t next_kind)
{
    return (kind == MOD_CONV2D && next_kind == MOD_BATCHNORM2D) || (kind == MOD_LINEAR && next_kind == MOD_BATCHNORM1D);
}

void model_fold_batchnorm(const struct Module *layer, const struct Module *bn, double *scratch, struct Tensor *w,
                          struct Tensor *b)
{
    const struct Tensor *W = layer->params[0], *B = layer->params[1];
    uint64_t O = B->shape[0], per = tensor_numel(W) / O;
    double *s = scratch, *t = s + O;
    nn_batchnorm_fold(bn->params[0], bn->params[1], bn->state[0], bn->state[1], s, t);
    for (uint64_t o = 0; o < O; o++) {
        for (uint64_t i = o * per; i < (o + 1) * per; i++) {
            if (W->dtype == DT_FLOAT32) tensor_f32(w)[i] = (float)(s[o] * tensor_f32(W)[i]);
            else tensor_f64(w)[i] = s[o] * tensor_f64(W)[i];
        }
        double v = s[o] * tensor_at(B, o) + t[o];
        if (W->dtype == DT_FLOAT32) tensor_f32(b)[o] = (float)v;
        else tensor_f64(b)[o] = v;
    }
}

/* model_fold_batchnorm in the step's arena, as graph inputs. */
static void fold_batchnorm(struct Graph *g, const struct Module *layer, const struct Module *bn, struct Node **w,
                           struct Node **b)
{
    const struct Tensor *W = layer->params[0];
    uint64_t O = layer->params[1]->shape[0];
    struct Tensor *fw = tensor_create_in(&g->arena, W->ndim, W->shape, W->dtype);
    struct Tensor *fb = tensor_create_in(&g->arena, 1, &O, W->dtype);
    model_fold_batchnorm(layer, bn, arena_alloc(&g->arena, 2 * O * sizeof(double)), fw, fb);
    *w = graph_input(g, fw, 0);
    *b = graph_input(g, fb, 0);
}

/* The fusion rules, all of them:
 *   Conv2d ReLU            one nn_conv2d_relu op;
 *   Linear ReLU            one nn_linear_relu op;
 *   BatchNorm ReLU         one nn_batchnorm op with relu (training or not);
 *   Conv2d BatchNorm2d [ReLU], Linear BatchNorm1d [ReLU], in inference (running
 *                          statistics, forward-only graph): the BatchNorm folded into
 *                          the layer's weights (model_fold_batchnorm), so it costs nothing.
 * The C exporter folds the same pairs with the same function (model_folds_batchnorm). */
struct Node *model_forward_modules(struct Module *const *mods, uint32_t n, struct Node *x, int skip_final_softmax)
{
    struct Node *h = x;
    for (uint32_t i = 0; i < n; i++) {
        struct Module *m = mods[i], *next = i + 1 < n ? mods[i + 1] : NULL;
        if (i == n - 1 && skip_final_softmax && m->kind == MOD_SOFTMAX) break;
        int conv = m->kind == MOD_CONV2D;
        if (next && model_folds_batchnorm(m->kind, next->kind) && !module_training(next) && h->graph &&
            h->graph->no_grad) {
            struct Node *w, *b;
            fold_batchnorm(h->graph, m, next, &w, &b);
            int relu = i + 2 < n && mods[i + 2]->kind == MOD_RELU;
            const union LayerArgs *a = &m->spec.args;
            if (conv) h = (relu ? nn_conv2d_relu : nn_conv2d)(h, w, b, a->conv2d.stride, a->conv2d.padding);
            else h = (relu ? nn_linear_relu : nn_linear)(h, w, b);
            i += 1 + (uint32_t)relu;
            continue;
        }
        if (conv && next && next->kind == MOD_RELU) {
            h = nn_conv2d_relu(h, m->param_nodes[0], m->param_nodes[1], m->spec.args.conv2d.stride,
                               m->spec.args.conv2d.padding);
            i++;
            continue;
        }
        if (m->kind == MOD_LINEAR && next && next->kind == MOD_RELU) {
            h = nn_linear_relu(h, m->param_nodes[0], m->param_nodes[1]);
            i++;
            continue;
        }
        if ((m->kind == MOD_BATCHNORM1D || m->kind == MOD_BATCHNORM2D) && next && next->kind == MOD_RELU) {
            h = nn_batchnorm(h, m->param_nodes[0], m->param_nodes[1], m->state[0], m->state[1], module_training(m), 1);
            i++;
            continue;
        }
        m->forward(m, h, &h);
    }
    return h;
}

struct Node *model_forward(const struct Model *m, struct Node *x, int skip_final_softmax)
{
    return model_forward_modules(m->mods, m->n_mods, x, skip_final_softmax);
}

void model_zero_grad(struct Model *m)
{
    for (uint32_t i = 0; i < m->n_params; i++) node_grad_invalidate(m->param_nodes[i]);
}

/* ---- memory ---- */


/* Bytes one layer needs: its parameters with their training copies, and its
 * activations for rows samples. */
static uint64_t layer_bytes(const struct TrainConfig *cfg, const struct LayerSpec *l, uint64_t rows, int training)
{
    uint64_t es = dtype_size(cfg->dtype), copies = 1;
    if (training) copies += 1 + (cfg->optimizer == OPT_SGD ? 1 : 2); /* gradient, optimizer state */
    uint64_t per_sample = sat_mul(layer_shape_numel(&l->out), training ? 3 : 2);
    if (l->kind == MOD_CONV2D) { /* the unfolded input: in_ch*kh*kw values per output pixel */
        uint64_t k = sat_mul(sat_mul(l->args.conv2d.in_ch, l->args.conv2d.kh), l->args.conv2d.kw);
        uint64_t cols = sat_mul(k, sat_mul(l->out.d[1], l->out.d[2]));
        per_sample = sat_add(per_sample, sat_mul(cols, training ? 2 : 1));
    }
    return sat_mul(es, sat_add(sat_mul(l->n_params, copies), sat_mul(per_sample, rows)));
}

void model_memory_estimate(const struct TrainConfig *cfg, uint64_t rows, int training, struct ModelMemory *mm)
{
    uint64_t es = dtype_size(cfg->dtype);
    /* the input (and its gradient-free copy in the graph), the batch buffers, the labels */
    mm->total = sat_mul(sat_mul(es, rows), sat_add(sat_mul(cfg->input_dim, 3), cfg->output_dim));
    mm->largest = cfg->n_layers;
    mm->largest_bytes = 0;
    for (uint32_t i = 0; i < cfg->n_layers; i++) {
        uint64_t b = layer_bytes(cfg, &cfg->layers[i], rows, training);
        mm->total = sat_add(mm->total, b);
        if (b > mm->largest_bytes || mm->largest == cfg->n_layers) mm->largest = i, mm->largest_bytes = b;
    }
}

int model_memory_check(const struct TrainConfig *cfg, const char *filename, uint64_t rows, int training,
                       uint64_t used, char *err, size_t errlen)
{
    struct ModelMemory mm;
    model_memory_estimate(cfg, rows, training, &mm);
    uint64_t limit = mem_limit(), avail = limit > used ? limit - used : 0;
    if (mm.total <= avail || mm.largest == cfg->n_layers) return 0;
    const struct LayerSpec *l = &cfg->layers[mm.largest];
    char what[96], rows_note[96] = "";
    layer_spec_str(what, sizeof what, l);
    if (rows) snprintf(rows_note, sizeof rows_note, " in batches of %llu", (unsigned long long)rows);
    return err_set(err, errlen,
                   "%s:%d: the network needs %llu bytes (%.1f GiB) to %s%s, %llu of them for this layer "
                   "(%s), but %llu are available",
                   filename, l->line, (unsigned long long)mm.total, (double)mm.total / (1u << 30),
                   training ? "train" : "run", rows_note, (unsigned long long)mm.largest_bytes, what,
                   (unsigned long long)avail);
}

uint64_t model_param_count(const struct Model *m)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < m->n_mods; i++) n += module_param_count(m->mods[i]);
    return n;
}

void model_print_summary(const struct Model *m, void *file)
{
    FILE *f = file;
    const struct TrainConfig *c = &m->cfg;
    char shape[64], type[96];
    struct LayerShape in = {c->input_ndim, {c->input_shape[0], c->input_shape[1], c->input_shape[2]}};
    fprintf(f, "%-12s %-26s %-14s %10s\n", "layer", "type", "output", "params");
    layer_shape_str(shape, sizeof shape, &in);
    fprintf(f, "%-12s %-26s %-14s %10s\n", "input", "", shape, "0");
    for (uint32_t i = 0; i < m->n_mods; i++) {
        const struct Module *mod = m->mods[i];
        layer_spec_str(type, sizeof type, &mod->spec);
        layer_shape_str(shape, sizeof shape, &mod->spec.out);
        fprintf(f, "%-12s %-26s %-14s %10llu\n", mod->name, type, shape, (unsigned long long)module_param_count(mod));
    }
    int nt = threads_count();
    fprintf(f, "total parameters: %llu (%s), %d thread%s\n", (unsigned long long)model_param_count(m),
            dtype_name(c->dtype), nt, nt == 1 ? "" : "s");
}
