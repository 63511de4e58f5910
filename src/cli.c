/* cli: network assembly shared by the train and infer programs. */
#include "cli.h"
#include "dataset.h"
#include "losses.h"
#include "math_kernels.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void net_refresh_names(struct Net *net)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < net->n_mods; i++) n += net->mods[i]->n_params;
    n += net->shift ? 2 : 0;
    mem_free(net->named);
    mem_free(net->names);
    net->named = mem_alloc_zeroed((n ? n : 1) * sizeof *net->named);
    net->names = mem_alloc_zeroed((n ? n : 1) * sizeof *net->names);
    uint32_t k = 0;
    for (uint32_t i = 0; i < net->n_mods; i++)
        for (uint32_t j = 0; j < net->mods[i]->n_params; j++, k++) {
            snprintf(net->names[k], sizeof net->names[k], "%s.%s", net->mods[i]->name, j ? "bias" : "weight");
            net->named[k] = (struct NamedTensor){net->names[k], net->mods[i]->params[j]};
        }
    if (net->shift) {
        str_copy(net->names[k], "input.shift", sizeof net->names[k]);
        net->named[k] = (struct NamedTensor){net->names[k], net->shift};
        k++;
        str_copy(net->names[k], "input.scale", sizeof net->names[k]);
        net->named[k] = (struct NamedTensor){net->names[k], net->scale};
        k++;
    }
    net->n_named = k;
}

void net_init(struct Net *net, const struct TrainConfig *cfg, uint64_t seed)
{
    memset(net, 0, sizeof *net);
    net->cfg = *cfg;
    struct Rng rng;
    rng_seed(&rng, seed);
    net->mods = config_build_modules(cfg, &rng);
    net->n_mods = cfg->n_layers;
    net_refresh_names(net);
}

void net_set_norm(struct Net *net, struct Tensor *shift, struct Tensor *scale)
{
    tensor_free(net->shift);
    tensor_free(net->scale);
    net->shift = shift;
    net->scale = scale;
    net_refresh_names(net);
}

void net_free(struct Net *net)
{
    config_free_modules(net->mods, net->n_mods);
    tensor_free(net->shift);
    tensor_free(net->scale);
    mem_free(net->named);
    mem_free(net->names);
    memset(net, 0, sizeof *net);
}

struct Node *net_input(struct Graph *g, const struct Net *net, struct Tensor *batch)
{
    struct Node *x = graph_input(g, batch, 0);
    if (net->cfg.input_ndim != 3) return x;
    const uint64_t *s = net->cfg.input_shape;
    uint64_t shape[4] = {batch->shape[0], s[0], s[1], s[2]};
    return ag_reshape(x, 4, shape);
}

static uint64_t module_param_count(const struct Module *m)
{
    uint64_t n = 0;
    for (uint32_t j = 0; j < m->n_params; j++) n += tensor_numel(m->params[j]);
    return n;
}

uint64_t net_param_count(const struct Net *net)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < net->n_mods; i++) n += module_param_count(net->mods[i]);
    return n;
}

/* A per-sample shape as "CxHxW" or "N". */
static void sample_shape_str(char *buf, size_t cap, uint32_t ndim, const uint64_t *s)
{
    if (ndim == 3)
        snprintf(buf, cap, "%llux%llux%llu", (unsigned long long)s[0], (unsigned long long)s[1], (unsigned long long)s[2]);
    else
        snprintf(buf, cap, "%llu", (unsigned long long)s[0]);
}

void net_print_summary(const struct Net *net, void *file)
{
    FILE *f = file;
    const struct TrainConfig *c = &net->cfg;
    char shape[64];
    fprintf(f, "%-10s %-26s %-14s %10s\n", "layer", "type", "output", "params");
    sample_shape_str(shape, sizeof shape, c->input_ndim, c->input_shape);
    fprintf(f, "%-10s %-26s %-14s %10s\n", "input", "", shape, "0");
    for (uint32_t i = 0; i < net->n_mods; i++) {
        const struct LayerSpec *l = &c->layers[i];
        const struct Module *m = net->mods[i];
        char type[64];
        if (m->kind == MOD_LINEAR)
            snprintf(type, sizeof type, "Linear(%llu, %llu)", (unsigned long long)m->cfg[0], (unsigned long long)m->cfg[1]);
        else if (m->kind == MOD_CONV2D)
            snprintf(type, sizeof type, "Conv2d(%llu, %llu, %llux%llu, s%llu, p%llu)", (unsigned long long)m->cfg[0],
                     (unsigned long long)m->cfg[1], (unsigned long long)m->cfg[2], (unsigned long long)m->cfg[3],
                     (unsigned long long)m->cfg[4], (unsigned long long)m->cfg[5]);
        else
            snprintf(type, sizeof type, "%s", m->kind == MOD_RELU ? "ReLU" : m->kind == MOD_SIGMOID ? "Sigmoid"
                                              : m->kind == MOD_TANH ? "Tanh" : "Softmax");
        sample_shape_str(shape, sizeof shape, l->out_ndim, l->out_shape);
        fprintf(f, "%-10s %-26s %-14s %10llu\n", m->name, type, shape, (unsigned long long)module_param_count(m));
    }
    fprintf(f, "total parameters: %llu (%s)\n", (unsigned long long)net_param_count(net), dtype_name(c->dtype));
}

struct Optimizer *net_optimizer_create(const struct Net *net)
{
    uint32_t n = 0, k = 0;
    for (uint32_t i = 0; i < net->n_mods; i++) n += net->mods[i]->n_params;
    struct Tensor **p = mem_alloc((n + 1) * sizeof *p), **g = mem_alloc((n + 1) * sizeof *g);
    for (uint32_t i = 0; i < net->n_mods; i++)
        for (uint32_t j = 0; j < net->mods[i]->n_params; j++, k++)
            p[k] = net->mods[i]->params[j], g[k] = net->mods[i]->param_nodes[j]->grad;
    const struct TrainConfig *c = &net->cfg;
    struct Optimizer *opt = !str_cmp(c->optimizer_name, "SGD") ? optim_sgd_create(p, g, n, c->lr, c->momentum)
                                                             : optim_adam_create(p, g, n, c->lr, c->beta1, c->beta2, c->eps);
    mem_free(p);
    mem_free(g);
    return opt;
}

/* Rows whose largest output is at the labelled class. */
static uint64_t count_correct(const struct Tensor *out, const struct Tensor *y)
{
    uint64_t rows = out->shape[0], C = out->shape[1], hits = 0;
    for (uint64_t r = 0; r < rows; r++) hits += (double)tensor_row_argmax(out, r, C) == tensor_at(y, r);
    return hits;
}

/* Instead of zeroing every parameter gradient before backward (one pass over all of
 * them, then each layer's gemm reads them back), mark them stale: each layer's first
 * write overwrites; whatever backward did not write is zeroed before the step. */
static void net_params_apply(struct Net *net, void (*fn)(struct Node *))
{
    for (uint32_t i = 0; i < net->n_mods; i++)
        for (uint32_t j = 0; j < net->mods[i]->n_params; j++) fn(net->mods[i]->param_nodes[j]);
}

int net_train_epoch(struct Net *net, struct Dataset *ds, struct Optimizer *opt, struct Graph *g, uint64_t epoch,
                    uint64_t max_steps, epoch_progress_fn progress, void *ctx, struct EpochStats *st)
{
    const struct TrainConfig *c = &net->cfg;
    uint64_t nb = dataset_num_batches(ds, c->batch_size), hits = 0, seen = 0;
    uint64_t first = (epoch - 1) * nb, total = c->epochs * nb; /* the schedule's steps */
    if (max_steps && max_steps < nb) nb = max_steps;
    double sum = 0;
    memset(st, 0, sizeof *st);
    if (c->shuffle) {
        struct Rng r;
        rng_seed(&r, c->seed * 1000003u + epoch);
        dataset_shuffle_indices(ds, &r);
    }
    for (uint64_t b = 0; b < nb; b++) {
        struct Tensor *x, *y;
        dataset_get_batch(ds, b, c->batch_size, &x, &y);
        struct Node *out;
        struct Node *loss = loss_build_graph(net->mods, net->n_mods, net_input(g, net, x), y, c->loss, &out);
        double l = tensor_at(loss->value, 0);
        if (!isfinite(l)) {
            graph_reset(g);
            st->steps = b + 1, st->bad_loss = l;
            return -1;
        }
        sum += l * (double)x->shape[0];
        seen += x->shape[0];
        if (c->loss == LOSS_CROSS_ENTROPY) hits += count_correct(out->value, y);
        net_params_apply(net, node_grad_invalidate);
        backward(loss);
        net_params_apply(net, node_grad_settle);
        optim_set_lr(opt, optim_lr_at(c->lr_schedule, c->lr, first + b, total));
        opt->step(opt);
        graph_reset(g);
        if (progress) progress(ctx, b + 1, nb, sum / (double)seen);
    }
    st->steps = nb;
    st->loss = seen ? sum / (double)seen : 0;
    st->accuracy = seen ? (double)hits / (double)seen : 0;
    return 0;
}

void cli_usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "%s: ", util_progname());
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry '%s --help' for more information.\n", util_progname());
    exit(2);
}

void cli_parse_args(int argc, char **argv, const char *prog, const char *usage, const char **pos, int n_pos,
                    cli_option_fn opt, void *ctx)
{
    int got = 0, only_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || !a[1]) {
            if (got == n_pos) cli_usage_error("unexpected argument '%s'", a);
            pos[got++] = a;
        } else if (!strcmp(a, "--")) only_pos = 1;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { fputs(usage, stdout); exit(0); }
        else if (!strcmp(a, "-V") || !strcmp(a, "--version")) { cli_print_version(prog); exit(0); }
        else if (!opt(ctx, argc, argv, &i)) cli_usage_error("unknown option '%s'", a);
    }
    if (got < n_pos) { /* too many was refused above, at the first extra one */
        char fmt[64];
        snprintf(fmt, sizeof fmt, "expected %d arguments, got %%s", n_pos);
        cli_usage_error(fmt, "fewer");
    }
}

const char *cli_option_value(int argc, char **argv, int *i, const char *what)
{
    if (*i + 1 >= argc) {
        char fmt[64];
        snprintf(fmt, sizeof fmt, "option '%%s' needs %s", what);
        cli_usage_error(fmt, argv[*i]);
    }
    return argv[++*i];
}

void cli_print_version(const char *prog)
{
    printf("%s %s (minidl), kernels: %s\n", prog, MINIDL_VERSION, isa_name(kernels_isa()));
}
