/* train: trains a network described by a config on CSV (or binary) data and saves it.
 * Exit status: 0 success, 1 error (bad input, I/O, diverged), 2 usage error. */
#include "cli.h"
#include "dataset.h"
#include "losses.h"
#include "math_kernels.h"
#include "optimizers.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
    "usage: train [options] <config.ini> <data.csv> <labels.csv> <model.bin>\n"
    "\n"
    "Trains the network described by config.ini on data.csv (one sample per row) and\n"
    "labels.csv (a class index per row for CrossEntropy, a row of targets for MSE), and\n"
    "saves it with its config to model.bin. Data files may also be binary datasets.\n"
    "\n"
    "options:\n"
    "  -h, --help         show this help and exit\n"
    "  -V, --version      show the version and the SIMD kernels in use, and exit\n"
    "  -s, --seed N       seed for initialisation and shuffling (overrides the config)\n"
    "  -e, --epochs N     number of epochs, 0 to just save (overrides the config)\n"
    "      --init FILE    start from the weights saved in FILE instead of random ones\n"
    "  -q, --quiet        print nothing but errors\n"
    "\n"
    "Logs go to stderr. MINIDL_ISA=sse2|avx2|avx512 forces a kernel path.\n";

struct Options {
    const char *config, *data, *labels, *out, *init;
    int quiet, have_seed, have_epochs;
    uint64_t seed, epochs;
};

static uint64_t parse_count(const char *opt, const char *v, int allow_zero)
{
    int64_t n;
    if (!v) cli_usage_error("option '%s' needs a value", opt);
    if (str_to_int(v, &n) != STR_OK || n < (allow_zero ? 0 : 1)) cli_usage_error("invalid number '%s'", v);
    return (uint64_t)n;
}

static void parse_args(int argc, char **argv, struct Options *o)
{
    const char *pos[4];
    int n_pos = 0, only_pos = 0;
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || !a[1]) {
            if (n_pos == 4) cli_usage_error("unexpected argument '%s'", a);
            pos[n_pos++] = a;
        } else if (!strcmp(a, "--")) only_pos = 1;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { fputs(usage, stdout); exit(0); }
        else if (!strcmp(a, "-V") || !strcmp(a, "--version")) { cli_print_version("train"); exit(0); }
        else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) o->quiet = 1;
        else if (!strcmp(a, "-s") || !strcmp(a, "--seed")) o->seed = parse_count(a, i + 1 < argc ? argv[++i] : NULL, 1), o->have_seed = 1;
        else if (!strcmp(a, "-e") || !strcmp(a, "--epochs")) o->epochs = parse_count(a, i + 1 < argc ? argv[++i] : NULL, 1), o->have_epochs = 1;
        else if (!strcmp(a, "--init")) { if (i + 1 >= argc) cli_usage_error("option '%s' needs a file", a); o->init = argv[++i]; }
        else cli_usage_error("unknown option '%s'", a);
    }
    if (n_pos != 4) cli_usage_error("expected 4 arguments, got %s", n_pos < 4 ? "fewer" : "more");
    o->config = pos[0], o->data = pos[1], o->labels = pos[2], o->out = pos[3];
}

/* A bad output path must fail now, not after ten epochs: create and remove a file
 * in the target's directory. */
static void check_output_path(const char *path)
{
    char tmp[4096];
    struct stat st;
    if (!*path) fatal("the model path is empty");
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) fatal("cannot write the model to '%s': it is a directory", path);
    if (snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path) >= (int)sizeof tmp) fatal("%s: path too long", path);
    int fd = mkstemp(tmp);
    if (fd < 0) fatal("cannot write the model to '%s': %s", path, strerror(errno));
    close(fd);
    unlink(tmp);
}

static struct Optimizer *make_optimizer(const struct Net *net)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < net->n_mods; i++) n += net->mods[i]->n_params;
    struct Tensor **p = mem_alloc((n ? n : 1) * sizeof *p), **g = mem_alloc((n ? n : 1) * sizeof *g);
    uint32_t k = 0;
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

/* Correct predictions in a batch: argmax of the outputs against the class labels. */
static uint64_t count_correct(const struct Tensor *out, const struct Tensor *y)
{
    uint64_t rows = out->shape[0], C = out->shape[1], hits = 0;
    for (uint64_t r = 0; r < rows; r++) {
        uint64_t best = 0;
        double bv = -INFINITY;
        for (uint64_t c = 0; c < C; c++) {
            double v = out->dtype == DT_FLOAT32 ? tensor_f32(out)[r * C + c] : tensor_f64(out)[r * C + c];
            if (v > bv) bv = v, best = c;
        }
        double label = y->dtype == DT_FLOAT32 ? tensor_f32(y)[r] : tensor_f64(y)[r];
        hits += (double)best == label;
    }
    return hits;
}

static double scalar(const struct Tensor *t)
{
    return t->dtype == DT_FLOAT32 ? tensor_f32(t)[0] : tensor_f64(t)[0];
}

static void progress(uint64_t epoch, uint64_t epochs, uint64_t b, uint64_t nb, double loss, double t0)
{
    double el = time_now() - t0, eta = b ? el / (double)b * (double)(nb - b) : 0;
    int width = 24, fill = (int)((double)width * (double)b / (double)nb);
    fprintf(stderr, "\repoch %llu/%llu [%.*s%*s] %3d%%  loss %.4f  ETA %.1fs ", (unsigned long long)epoch,
            (unsigned long long)epochs, fill, "========================", width - fill, "",
            (int)(100.0 * (double)b / (double)nb), loss, eta);
}

struct Trainer {
    struct Net *net;
    struct Dataset *ds;
    struct Optimizer *opt;
    struct Graph g;
    int quiet, live;
};

/* One epoch; returns its mean loss, fills *acc for classifiers. Diverging stops with a message. */
static double train_epoch(struct Trainer *t, uint64_t epoch, double *acc)
{
    const struct TrainConfig *c = &t->net->cfg;
    uint64_t nb = dataset_num_batches(t->ds, c->batch_size), hits = 0;
    double sum = 0, t0 = time_now(), last_draw = 0;
    if (c->shuffle) {
        struct Rng r;
        rng_seed(&r, c->seed * 1000003u + epoch);
        dataset_shuffle_indices(t->ds, &r);
    }
    for (uint64_t b = 0; b < nb; b++) {
        struct Tensor *x, *y;
        dataset_get_batch(t->ds, b, c->batch_size, &x, &y);
        struct Node *out;
        struct Node *loss = loss_build_graph(t->net->mods, t->net->n_mods, net_input(&t->g, t->net, x), y, c->loss, &out);
        double l = scalar(loss->value);
        if (!isfinite(l)) {
            if (t->live) fputc('\n', stderr);
            fatal("the loss became %s at epoch %llu, batch %llu of %llu: training diverged; "
                  "try a lower learning rate (lr=%g now)", isnan(l) ? "NaN" : "infinite", (unsigned long long)epoch,
                  (unsigned long long)b + 1, (unsigned long long)nb, c->lr);
        }
        sum += l * (double)x->shape[0];
        if (c->loss == LOSS_CROSS_ENTROPY) hits += count_correct(out->value, y);
        t->opt->zero_grad(t->opt);
        backward(loss);
        t->opt->step(t->opt);
        graph_reset(&t->g);
        if (t->live && time_now() - last_draw > 0.1) {
            last_draw = time_now();
            progress(epoch, c->epochs, b + 1, nb, sum / (double)((b + 1) * c->batch_size), t0);
        }
    }
    *acc = (double)hits / (double)t->ds->n;
    return sum / (double)t->ds->n;
}

static void check_data_shape(const struct Dataset *ds, const struct TrainConfig *c, const char *data, const char *labels)
{
    if (ds->dim != c->input_dim)
        fatal("%s: rows have %llu values but the config's input is %llu", data, (unsigned long long)ds->dim,
              (unsigned long long)c->input_dim);
    if (ds->y && c->loss == LOSS_MSE && ds->label_dim != c->output_dim)
        fatal("%s: rows have %llu targets but the network outputs %llu", labels, (unsigned long long)ds->label_dim,
              (unsigned long long)c->output_dim);
}

int main(int argc, char **argv)
{
    util_set_progname(argv[0]);
    struct Options o;
    parse_args(argc, argv, &o);
    kernels_isa(); /* MINIDL_ISA errors show up before any work */

    struct TrainConfig cfg;
    char err[1024];
    size_t cfg_len;
    char *cfg_text = cli_read_file(o.config, &cfg_len);
    if (config_parse_text(cfg_text, cfg_len, o.config, &cfg, err, sizeof err)) fatal("%s", err);
    if (o.have_seed) cfg.seed = o.seed;
    if (o.have_epochs) cfg.epochs = o.epochs;
    check_output_path(o.out);

    struct Net net;
    net_init(&net, &cfg, cfg.seed);
    if (!o.quiet) net_print_summary(&net, stderr);

    struct Dataset ds;
    uint64_t n_classes = cfg.loss == LOSS_CROSS_ENTROPY ? cfg.output_dim : 0;
    double tl = time_now();
    if (dataset_load(&ds, o.data, o.labels, cfg.dtype, n_classes, err, sizeof err)) fatal("%s", err);
    check_data_shape(&ds, &cfg, o.data, o.labels);
    if (!o.quiet)
        log_err("loaded %llu samples x %llu features in %.2f s", (unsigned long long)ds.n, (unsigned long long)ds.dim,
                time_now() - tl);
    if (cfg.normalize != NORM_NONE) {
        struct Tensor *shift, *scale;
        dataset_norm_stats(&ds, cfg.normalize, &shift, &scale);
        dataset_normalize(&ds, shift, scale);
        net_set_norm(&net, shift, scale);
    }
    if (o.init) {
        struct ModelFile mf;
        if (model_load(o.init, &mf, err, sizeof err)) fatal("%s", err);
        /* the weights only: the normalisation comes from this run's data */
        uint32_t n_w = net.n_named - (net.shift ? 2 : 0);
        int bad = model_assign(&mf, net.named, n_w, o.init, err, sizeof err);
        model_file_free(&mf);
        if (bad) fatal("%s", err);
    }

    struct Trainer t = {.net = &net, .ds = &ds, .opt = make_optimizer(&net), .quiet = o.quiet, .live = !o.quiet && isatty(2)};
    graph_init(&t.g);
    double t_all = time_now();
    for (uint64_t e = 1; e <= cfg.epochs; e++) {
        double acc, t0 = time_now();
        double loss = train_epoch(&t, e, &acc);
        double dt = time_now() - t0;
        if (t.live) fputs("\r\033[K", stderr);
        if (o.quiet) continue;
        if (cfg.loss == LOSS_CROSS_ENTROPY)
            log_err("epoch %llu/%llu  loss %.6f  accuracy %.4f  %.3f s  %.0f samples/s", (unsigned long long)e,
                    (unsigned long long)cfg.epochs, loss, acc, dt, (double)ds.n / dt);
        else
            log_err("epoch %llu/%llu  loss %.6g  %.3f s  %.0f samples/s", (unsigned long long)e,
                    (unsigned long long)cfg.epochs, loss, dt, (double)ds.n / dt);
    }
    if (model_save(o.out, net.named, net.n_named, cfg_text, err, sizeof err)) fatal("%s", err);
    if (!o.quiet) log_err("saved %s (%.2f s of training)", o.out, time_now() - t_all);

    graph_free(&t.g);
    optim_free(t.opt);
    dataset_free(&ds);
    net_free(&net);
    mem_free(cfg_text);
    return 0;
}
