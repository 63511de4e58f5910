/* infer: runs a saved model on data, one result row per sample on stdout.
 * Exit status: 0 success, 1 error, 2 usage error. */
#include "cli.h"
#include "dataset.h"
#include "math_kernels.h"
#include "model.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: infer [options] <model.bin> <data.csv>\n"
    "\n"
    "Runs the model on every row of data.csv (or a binary dataset) and prints one line\n"
    "per sample, in input order: the predicted class index for CrossEntropy models, the\n"
    "comma-separated outputs for MSE models. A data.csv of - reads standard input (CSV).\n"
    "\n"
    "options:\n"
    "  -h, --help          show this help and exit\n"
    "  -V, --version       show the version and the SIMD kernels in use, and exit\n"
    "  -p, --probs         print class probabilities instead of class indices\n"
    "  -l, --labels FILE   also print accuracy and a confusion matrix (MSE for\n"
    "                      regression models) on stderr\n"
    "  -c, --config FILE   the model's config, for files saved without one\n"
    "      --threads N     worker threads (default: MINIDL_THREADS, else every core\n"
    "                      this process may use); the output is the same on any number\n"
    "\n"
    "Only results go to stdout; messages go to stderr.\n";

struct Options { const char *model, *data, *labels, *config; int probs; };

static int take_option(void *ctx, int argc, char **argv, int *i)
{
    struct Options *o = ctx;
    const char *a = argv[*i];
    if (!strcmp(a, "-p") || !strcmp(a, "--probs")) o->probs = 1;
    else if (!strcmp(a, "-l") || !strcmp(a, "--labels")) o->labels = cli_option_value(argc, argv, i, "a file");
    else if (!strcmp(a, "-c") || !strcmp(a, "--config")) o->config = cli_option_value(argc, argv, i, "a file");
    else return 0;
    return 1;
}

static void parse_args(int argc, char **argv, struct Options *o)
{
    const char *pos[2];
    memset(o, 0, sizeof *o);
    cli_parse_args(argc, argv, "infer", usage, pos, 2, take_option, o);
    o->model = pos[0], o->data = pos[1];
}

struct Tally { uint64_t n, hits, *confusion; double sq; };

static void print_rows(const struct Model *model, const struct Tensor *out, const struct Batch *bt, int probs,
                       struct Tally *t)
{
    const char *fmt = out->dtype == DT_FLOAT32 ? "%.9g" : "%.17g";
    uint64_t rows = out->shape[0], C = out->shape[1];
    int classify = model->cfg.loss == LOSS_CROSS_ENTROPY;
    for (uint64_t r = 0; r < rows; r++) {
        const uint64_t base = r * C;
        if (classify) {
            /* softmax of the pre-softmax values, stable; the argmax is the class */
            uint64_t best = tensor_row_argmax(out, r, C);
            double m = tensor_at(out, base + best), s = 0;
            if (probs) {
                for (uint64_t c = 0; c < C; c++) s += exp(tensor_at(out, base + c) - m);
                for (uint64_t c = 0; c < C; c++) {
                    double p = exp(tensor_at(out, base + c) - m) / s;
                    if (c) putchar(',');
                    printf(fmt, out->dtype == DT_FLOAT32 ? (double)(float)p : p);
                }
                putchar('\n');
            } else {
                printf("%llu\n", (unsigned long long)best);
            }
            if (bt->cls) {
                uint64_t label = bt->cls[r];
                t->hits += best == label;
                t->confusion[label * C + best]++;
            }
        } else {
            for (uint64_t c = 0; c < C; c++) {
                if (c) putchar(',');
                printf(fmt, tensor_at(out, base + c));
                if (bt->y) { double d = tensor_at(out, base + c) - tensor_at(bt->y, r * C + c); t->sq += d * d; }
            }
            putchar('\n');
        }
        t->n++;
    }
}

static void print_report(const struct Model *m, const struct Tally *t)
{
    uint64_t C = m->cfg.output_dim;
    if (m->cfg.loss != LOSS_CROSS_ENTROPY) {
        fprintf(stderr, "MSE %.6g over %llu samples (%llu outputs each)\n", t->sq / (double)(t->n * C),
                (unsigned long long)t->n, (unsigned long long)C);
        return;
    }
    fprintf(stderr, "accuracy %.4f (%llu of %llu)\nconfusion matrix (rows: true class, columns: predicted)\n",
            (double)t->hits / (double)t->n, (unsigned long long)t->hits, (unsigned long long)t->n);
    fprintf(stderr, "%6s", "");
    for (uint64_t c = 0; c < C; c++) fprintf(stderr, " %6llu", (unsigned long long)c);
    fputc('\n', stderr);
    for (uint64_t r = 0; r < C; r++) {
        fprintf(stderr, "%6llu", (unsigned long long)r);
        for (uint64_t c = 0; c < C; c++) fprintf(stderr, " %6llu", (unsigned long long)t->confusion[r * C + c]);
        fputc('\n', stderr);
    }
}

int main(int argc, char **argv)
{
    util_set_progname(argv[0]);
    struct Options o;
    parse_args(argc, argv, &o);
    kernels_isa();
    struct Model m;
    char err[1024];
    if (model_from_file(&m, o.model, o.config, err, sizeof err)) fatal("%s", err);

    struct Dataset ds;
    int classify = m.cfg.loss == LOSS_CROSS_ENTROPY;
    if (dataset_load(&ds, o.data, o.labels, m.cfg.dtype, classify ? m.cfg.output_dim : 0, err, sizeof err))
        fatal("%s", err);
    if (ds.dim != m.cfg.input_dim)
        fatal("%s: rows have %llu values but the model's input is %llu", o.data, (unsigned long long)ds.dim,
              (unsigned long long)m.cfg.input_dim);
    if (ds.y && !classify && ds.label_dim != m.cfg.output_dim)
        fatal("%s: rows have %llu targets but the model outputs %llu", o.labels, (unsigned long long)ds.label_dim,
              (unsigned long long)m.cfg.output_dim);
    if (m.shift) dataset_normalize(&ds, m.shift, m.scale);

    struct Tally tally = {0};
    if (ds.cls) tally.confusion = mem_alloc_zeroed(m.cfg.output_dim * m.cfg.output_dim * sizeof(uint64_t));
    struct Graph g;
    graph_init(&g);
    graph_set_no_grad(&g, 1); /* forward only: nothing kept for a backward pass */
    const uint64_t bs = 256;
    for (uint64_t b = 0; b < dataset_num_batches(&ds, bs); b++) {
        struct Batch bt;
        dataset_get_batch(&ds, b, bs, &bt);
        /* classifiers: the pre-softmax values, from which both argmax and --probs follow */
        struct Node *out = model_forward(&m, model_input(&g, &m, bt.x), classify);
        print_rows(&m, out->value, &bt, o.probs, &tally);
        graph_reset(&g);
    }
    if (fflush(stdout) != 0 || ferror(stdout)) fatal("error writing the results: %s", strerror(errno));
    if (ds.y || ds.cls) print_report(&m, &tally);

    graph_free(&g);
    mem_free(tally.confusion);
    dataset_free(&ds);
    model_free(&m);
    return 0;
}
