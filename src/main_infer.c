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

/* A confusion matrix up to this many classes; beyond it the classes with the lowest
 * recall and the most frequent confusions, REPORT_TOP lines each: bounded output. */
#define REPORT_MATRIX_MAX 20
#define REPORT_TOP 10

/* pairs: (true class, predicted class) of each labelled sample, in input order. */
struct Tally { uint64_t n, hits; uint32_t (*pairs)[2]; double sq; };

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
                t->pairs[t->n][0] = (uint32_t)label, t->pairs[t->n][1] = (uint32_t)best;
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

static void print_matrix(const struct Tally *t, uint64_t C)
{
    uint64_t *m = mem_alloc_zeroed(C * C * sizeof *m);
    for (uint64_t i = 0; i < t->n; i++) m[t->pairs[i][0] * C + t->pairs[i][1]]++;
    fprintf(stderr, "confusion matrix (rows: true class, columns: predicted)\n%6s", "");
    for (uint64_t c = 0; c < C; c++) fprintf(stderr, " %6llu", (unsigned long long)c);
    fputc('\n', stderr);
    for (uint64_t r = 0; r < C; r++) {
        fprintf(stderr, "%6llu", (unsigned long long)r);
        for (uint64_t c = 0; c < C; c++) fprintf(stderr, " %6llu", (unsigned long long)m[r * C + c]);
        fputc('\n', stderr);
    }
    mem_free(m);
}

static int by_pair(const void *a, const void *b)
{
    const uint32_t *x = a, *y = b;
    return x[0] != y[0] ? (x[0] > y[0]) - (x[0] < y[0]) : (x[1] > y[1]) - (x[1] < y[1]);
}

/* One line of a top list: a key (class or confusion), its figure and how to rank it. */
struct Top { uint32_t a, b; uint64_t hits, n; double rank; };

/* Keeps the k best-ranked (largest rank) entries of top, sorted, when e joins. */
static void top_add(struct Top *top, uint32_t *k, struct Top e)
{
    uint32_t i = *k < REPORT_TOP ? (*k)++ : REPORT_TOP;
    if (i == REPORT_TOP && e.rank <= top[REPORT_TOP - 1].rank) return;
    if (i == REPORT_TOP) i--;
    for (; i > 0 && top[i - 1].rank < e.rank; i--) top[i] = top[i - 1];
    top[i] = e;
}

/* Beyond REPORT_MATRIX_MAX classes: the pairs sorted once give, run by run, each class's
 * recall and each confusion's count. */
static void print_summary(struct Tally *t, uint64_t C)
{
    struct Top worst[REPORT_TOP], conf[REPORT_TOP];
    uint32_t nw = 0, nc = 0, classes = 0;
    qsort(t->pairs, t->n, sizeof *t->pairs, by_pair);
    for (uint64_t i = 0, j; i < t->n; i = j) {
        uint64_t hits = 0;
        for (j = i; j < t->n && t->pairs[j][0] == t->pairs[i][0]; j++) hits += t->pairs[j][0] == t->pairs[j][1];
        classes++;
        /* lowest recall first; among equals, the class with more samples */
        double n = (double)(j - i), rank = 1.0 - (double)hits / n + 1e-12 * n;
        top_add(worst, &nw, (struct Top){t->pairs[i][0], 0, hits, j - i, rank});
    }
    for (uint64_t i = 0, j; i < t->n; i = j) {
        for (j = i; j < t->n && !by_pair(t->pairs[j], t->pairs[i]); j++) {}
        if (t->pairs[i][0] != t->pairs[i][1])
            top_add(conf, &nc, (struct Top){t->pairs[i][0], t->pairs[i][1], 0, j - i, (double)(j - i)});
    }
    fprintf(stderr, "%llu classes (no confusion matrix past %d), %u of them in the labels\n",
            (unsigned long long)C, REPORT_MATRIX_MAX, classes);
    fprintf(stderr, "lowest recall (true class: correct of samples):\n");
    for (uint32_t i = 0; i < nw; i++)
        fprintf(stderr, "  %6u: %llu of %llu\n", worst[i].a, (unsigned long long)worst[i].hits,
                (unsigned long long)worst[i].n);
    fprintf(stderr, "most frequent confusions (true -> predicted: samples):%s\n", nc ? "" : " none");
    for (uint32_t i = 0; i < nc; i++)
        fprintf(stderr, "  %6u -> %u: %llu\n", conf[i].a, conf[i].b, (unsigned long long)conf[i].n);
}

static void print_report(const struct Model *m, struct Tally *t)
{
    uint64_t C = m->cfg.output_dim;
    if (m->cfg.loss != LOSS_CROSS_ENTROPY) {
        fprintf(stderr, "MSE %.6g over %llu samples (%llu outputs each)\n", t->sq / (double)(t->n * C),
                (unsigned long long)t->n, (unsigned long long)C);
        return;
    }
    fprintf(stderr, "accuracy %.4f (%llu of %llu)\n", (double)t->hits / (double)t->n, (unsigned long long)t->hits,
            (unsigned long long)t->n);
    if (C <= REPORT_MATRIX_MAX) print_matrix(t, C);
    else print_summary(t, C);
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
    if (m.shift && dataset_normalize(&ds, m.shift, m.scale)) {
        dataset_error(&ds, err, sizeof err);
        fatal("%s", err);
    }

    const uint64_t bs = 256;
    uint64_t used = dataset_bytes(&ds) + model_param_count(&m) * dtype_size(m.cfg.dtype);
    char cfg_name[4200];
    snprintf(cfg_name, sizeof cfg_name, o.config ? "%s" : "%s (embedded config)", o.config ? o.config : o.model);
    if (model_memory_check(&m.cfg, cfg_name, bs < ds.n ? bs : ds.n, 0, used, err, sizeof err)) fatal("%s", err);
    struct Tally tally = {0};
    if (ds.cls) tally.pairs = mem_alloc(ds.n * sizeof *tally.pairs);
    struct Graph g;
    graph_init(&g);
    graph_set_no_grad(&g, 1); /* forward only: nothing kept for a backward pass */
    for (uint64_t b = 0; b < dataset_num_batches(&ds, bs); b++) {
        struct Batch bt;
        /* a mapped binary dataset cut short under us; its size looked at before the rows are printed */
        if (dataset_get_batch(&ds, b, bs, &bt) || dataset_check(&ds)) {
            dataset_error(&ds, err, sizeof err);
            fatal("%s", err);
        }
        /* classifiers: the pre-softmax values, from which both argmax and --probs follow */
        struct Node *out = model_forward(&m, model_input(&g, &m, bt.x), classify);
        print_rows(&m, out->value, &bt, o.probs, &tally);
        graph_reset(&g);
    }
    if (fflush(stdout) != 0 || ferror(stdout)) fatal("error writing the results: %s", strerror(errno));
    if (ds.y || ds.cls) print_report(&m, &tally);

    graph_free(&g);
    mem_free(tally.pairs);
    dataset_free(&ds);
    model_free(&m);
    return 0;
}
