/* train: trains a network described by a config on CSV (or binary) data and saves it.
 * Exit status: 0 success, 1 error (bad input, I/O, diverged), 2 usage error. */
#include "cli.h"
#include "dataset.h"
#include "math_kernels.h"
#include "model.h"
#include "train.h"

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
    "      --threads N    worker threads (default: MINIDL_THREADS, else every core this\n"
    "                     process may use); the model is the same on any number\n"
    "  -q, --quiet        print nothing but errors\n"
    "\n"
    "Logs go to stderr. MINIDL_ISA=sse2|avx2|avx512 forces a kernel path.\n";

struct Options {
    const char *config, *data, *labels, *out, *init;
    int quiet, have_seed, have_epochs;
    uint64_t seed, epochs;
};

static uint64_t parse_count(const char *v)
{
    int64_t n;
    if (str_to_int(v, &n) != STR_OK || n < 0) cli_usage_error("invalid number '%s'", v);
    return (uint64_t)n;
}

static int take_option(void *ctx, int argc, char **argv, int *i)
{
    struct Options *o = ctx;
    const char *a = argv[*i];
    if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) o->quiet = 1;
    else if (!strcmp(a, "-s") || !strcmp(a, "--seed")) o->seed = parse_count(cli_option_value(argc, argv, i, "a value")), o->have_seed = 1;
    else if (!strcmp(a, "-e") || !strcmp(a, "--epochs")) o->epochs = parse_count(cli_option_value(argc, argv, i, "a value")), o->have_epochs = 1;
    else if (!strcmp(a, "--init")) o->init = cli_option_value(argc, argv, i, "a file");
    else return 0;
    return 1;
}

static void parse_args(int argc, char **argv, struct Options *o)
{
    const char *pos[4];
    memset(o, 0, sizeof *o);
    cli_parse_args(argc, argv, "train", usage, pos, 4, take_option, o);
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

/* The live progress line: redrawn at most every 0.1 s, only on a terminal. */
struct Progress { uint64_t epoch, epochs; double t0, last; };

static void progress(void *ctx, uint64_t done, uint64_t total, double loss)
{
    struct Progress *p = ctx;
    double now = time_now();
    if (now - p->last < 0.1 && done < total) return;
    p->last = now;
    double el = now - p->t0, eta = el / (double)done * (double)(total - done);
    int width = 24, fill = (int)((double)width * (double)done / (double)total);
    fprintf(stderr, "\repoch %llu/%llu [%.*s%*s] %3d%%  loss %.4f  ETA %.1fs ", (unsigned long long)p->epoch,
            (unsigned long long)p->epochs, fill, "========================", width - fill, "",
            (int)(100.0 * (double)done / (double)total), loss, eta);
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
    char *cfg_text = config_read_file(o.config, &cfg_len, err, sizeof err);
    if (!cfg_text) fatal("%s", err);
    if (config_parse_text(cfg_text, cfg_len, o.config, &cfg, err, sizeof err)) fatal("%s", err);
    if (o.have_seed) cfg.seed = o.seed;
    if (o.have_epochs) cfg.epochs = o.epochs;
    const char *inputs[] = {o.config, o.data, o.labels, o.init};
    if (model_check_output(o.out, inputs, 4, err, sizeof err)) fatal("%s", err);
    check_output_path(o.out);

    struct Model model;
    model_init(&model, &cfg, cfg.seed);
    if (!o.quiet) model_print_summary(&model, stderr);

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
        model_set_norm(&model, shift, scale);
    }
    if (o.init) {
        struct ModelFile mf;
        if (model_load(o.init, &mf, err, sizeof err)) fatal("%s", err);
        /* the weights only: the normalisation comes from this run's data */
        uint32_t n_w = model.n_named - (model.shift ? 2 : 0);
        int bad = model_assign(&mf, model.named, n_w, o.init, err, sizeof err);
        model_file_free(&mf);
        if (bad) fatal("%s", err);
    }

    struct Trainer tr;
    train_init(&tr, &model);
    int live = !o.quiet && isatty(2);
    double t_all = time_now();
    for (uint64_t e = 1; e <= cfg.epochs; e++) {
        struct EpochStats st;
        struct Progress pr = {e, cfg.epochs, time_now(), 0};
        int bad = train_epoch(&tr, &ds, e, 0, live ? progress : NULL, &pr, &st);
        double dt = time_now() - pr.t0;
        if (live) fputs("\r\033[K", stderr);
        if (bad)
            fatal("the loss became %s at epoch %llu, batch %llu of %llu: training diverged; "
                  "try a lower learning rate (lr=%g now)", isnan(st.bad_loss) ? "NaN" : "infinite",
                  (unsigned long long)e, (unsigned long long)st.steps,
                  (unsigned long long)dataset_num_batches(&ds, cfg.batch_size), cfg.lr);
        if (o.quiet) continue;
        char lr[48] = ""; /* where a schedule moves it: the last step's */
        if (cfg.lr_schedule != LR_CONSTANT) snprintf(lr, sizeof lr, "  lr %.3g", optim_lr(tr.opt));
        if (cfg.loss == LOSS_CROSS_ENTROPY)
            log_err("epoch %llu/%llu  loss %.6f  accuracy %.4f  %.3f s  %.0f samples/s%s", (unsigned long long)e,
                    (unsigned long long)cfg.epochs, st.loss, st.accuracy, dt, (double)ds.n / dt, lr);
        else
            log_err("epoch %llu/%llu  loss %.6g  %.3f s  %.0f samples/s%s", (unsigned long long)e,
                    (unsigned long long)cfg.epochs, st.loss, dt, (double)ds.n / dt, lr);
    }
    if (model_save(o.out, model.named, model.n_named, cfg_text, err, sizeof err)) fatal("%s", err);
    if (!o.quiet) log_err("saved %s (%.2f s of training)", o.out, time_now() - t_all);

    train_free(&tr);
    dataset_free(&ds);
    model_free(&model);
    mem_free(cfg_text);
    return 0;
}
