/* train: trains a network described by a config on CSV (or binary) data and saves it.
 * Exit status: 0 success, 1 error (bad input, I/O, diverged), 2 usage error. */
#include "checkpoint.h"
#include "cli.h"
#include "dataset.h"
#include "math_kernels.h"
#include "model.h"
#include "train.h"
#ifdef MINIDL_MPI /* train-mpi: this file compiled again with mpicc (make mpi) */
#include "comm_mpi.h"
#define PROG "train-mpi"
#define USAGE_LINE "usage: mpirun -np R train-mpi [options] <config.ini> <data.csv> <labels.csv> <model.bin>\n"
#else
#define PROG "train"
#define USAGE_LINE "usage: train [options] <config.ini> <data.csv> <labels.csv> <model.bin>\n"
#endif

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
    USAGE_LINE
    "\n"
    "Trains the network described by config.ini on data.csv (one sample per row) and\n"
    "labels.csv (a class index per row for CrossEntropy, a row of targets for MSE), and\n"
    "saves it with its config to model.bin. Data files may also be binary datasets.\n"
    "\n"
    "options:\n"
    "  -h, --help            show this help and exit\n"
    "  -V, --version         show the version and the SIMD kernels in use, and exit\n"
    "  -s, --seed N          seed for initialisation and shuffling (overrides the config)\n"
    "  -e, --epochs N        number of epochs of the run, 0 to just save (overrides the config)\n"
    "      --init FILE       start from the weights saved in FILE instead of random ones\n"
    "      --val X Y         validate on data X and labels Y after each epoch (or set\n"
    "                        val_split in the config); the model saved is the best epoch's\n"
    "      --checkpoint FILE write the whole training state to FILE after each epoch\n"
    "      --resume FILE     continue the run saved in the checkpoint FILE (same config\n"
    "                        and data); the result is the uninterrupted run's, byte for byte\n"
    "      --stop-after N    end the run after its N-th epoch, saving the model and the\n"
    "                        checkpoint (the schedule stays that of the whole run)\n"
    "      --metrics FILE    write one CSV row per epoch to FILE (epoch, train_loss,\n"
    "                        train_accuracy, val_loss, val_accuracy, lr, seconds)\n"
    "      --threads N       worker threads (default: MINIDL_THREADS, else every core\n"
    "                        this process may use); the model is the same on any number\n"
    "  -q, --quiet           print nothing but errors\n"
    "\n"
    "SIGINT (Ctrl-C) or SIGTERM finishes the running step, writes the checkpoint (the\n"
    "--checkpoint FILE, else model.bin.ckpt), prints the command that resumes, and exits\n"
    "130 or 143; a second signal ends the run at once. Logs go to stderr.\n"
    "MINIDL_ISA=sse2|avx2|avx512 forces a kernel path.\n"
#ifdef MINIDL_MPI
    "\n"
    "train-mpi trains data parallel: each rank computes the gradient of its slice of every\n"
    "batch, the gradients are summed in rank order, rank 0 logs and writes the files.\n"
    "--threads N counts threads per rank. MINIDL_MPI_CHECK=1 compares the ranks'\n"
    "parameters after each epoch.\n"
#endif
    ;

struct Options {
    const char *argv0, *config, *data, *labels, *out, *init;
    const char *val_x, *val_y, *checkpoint, *resume, *metrics;
    int quiet, have_seed, have_epochs, have_stop_after;
    uint64_t seed, epochs, stop_after;
};

static int take_option(void *ctx, int argc, char **argv, int *i)
{
    struct Options *o = ctx;
    const char *a = argv[*i];
    if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) o->quiet = 1;
    else if (!strcmp(a, "-s") || !strcmp(a, "--seed"))
        o->seed = cli_option_uint(argc, argv, i, 0, INT64_MAX), o->have_seed = 1;
    else if (!strcmp(a, "-e") || !strcmp(a, "--epochs"))
        o->epochs = cli_option_uint(argc, argv, i, 0, INT64_MAX), o->have_epochs = 1;
    else if (!strcmp(a, "--init")) o->init = cli_option_value(argc, argv, i, "a file");
    else if (!strcmp(a, "--checkpoint")) o->checkpoint = cli_option_value(argc, argv, i, "a file");
    else if (!strcmp(a, "--resume")) o->resume = cli_option_value(argc, argv, i, "a file");
    else if (!strcmp(a, "--metrics")) o->metrics = cli_option_value(argc, argv, i, "a file");
    else if (!strcmp(a, "--stop-after")) {
        o->stop_after = cli_option_uint(argc, argv, i, 1, INT64_MAX);
        o->have_stop_after = 1;
    } else if (!strcmp(a, "--val")) {
        o->val_x = cli_option_value(argc, argv, i, "two files (data and labels)");
        o->val_y = cli_option_value(argc, argv, i, "two files (data and labels)");
    } else return 0;
    return 1;
}

static void parse_args(int argc, char **argv, struct Options *o)
{
    const char *pos[4];
    memset(o, 0, sizeof *o);
    cli_parse_args(argc, argv, PROG, usage, pos, 4, take_option, o);
    o->argv0 = argv[0];
    o->config = pos[0], o->data = pos[1], o->labels = pos[2], o->out = pos[3];
    if (o->init && o->resume) cli_usage_error("%s", "--init and --resume do not go together (a checkpoint holds the weights)");
}

/* A bad output path must fail now, not after ten epochs: create and remove a file
 * in the target's directory. what: "model", "checkpoint", ... */
static void check_output_path(const char *path, const char *what)
{
    char tmp[4096];
    struct stat st;
    if (!*path) fatal("the %s path is empty", what);
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) fatal("cannot write the %s to '%s': it is a directory", what, path);
    if (snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path) >= (int)sizeof tmp) fatal("%s: path too long", path);
    int fd = mkstemp(tmp);
    if (fd < 0) fatal("cannot write the %s to '%s': %s", what, path, strerror(errno));
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



/* Everything one run of train holds. */
struct Session {
    struct Options o;
    struct TrainConfig cfg;
    char *cfg_text;
    struct Model model;
    struct Dataset ds, val;
    struct Trainer tr;
    struct TrainRun run;
    FILE *metrics;
    char ckpt[4200];         /* where a signal or --stop-after saves the run */
    struct TrainComm *comm;  /* train-mpi's ranks, else NULL */
    int writer;              /* this process logs and writes files (train, or rank 0) */
};

/* A failure that may be this process's alone (its files): train-mpi stops every rank
 * with the first failing rank's message, printed once; train just stops. */
static void agree(struct Session *s, int bad, const char *err)
{
#ifdef MINIDL_MPI
    comm_mpi_agree(s->comm, bad, err);
#endif
    if (bad) fatal("%s", err);
}

/* train-mpi: every rank must train the same run on data of the same shape. */
static void compare_ranks(struct Session *s)
{
#ifdef MINIDL_MPI
    struct CommIdentity id = {crc32_ieee(0, s->cfg_text, strlen(s->cfg_text)), s->cfg.seed, s->cfg.epochs,
                              s->ds.n, s->ds.dim, s->ds.label_dim, s->val.n};
    comm_mpi_compare(s->comm, &id);
#endif
    (void)s;
}

/* ---- data ---- */

static void load_data(struct Session *s)
{
    const struct TrainConfig *c = &s->cfg;
    const struct Options *o = &s->o;
    char err[1024];
    uint64_t n_classes = c->loss == LOSS_CROSS_ENTROPY ? c->output_dim : 0;
    double tl = time_now();
    int bad = dataset_load(&s->ds, o->data, o->labels, c->dtype, n_classes, err, sizeof err) ||
              train_check_data(&s->ds, c, o->data, o->labels, err, sizeof err);
    agree(s, bad, err);
    if (!o->quiet)
        log_err("loaded %llu samples x %llu features in %.2f s%s", (unsigned long long)s->ds.n,
                (unsigned long long)s->ds.dim, time_now() - tl, s->ds.map ? " (mapped, not copied)" : "");
    if (o->val_x) {
        bad = dataset_load(&s->val, o->val_x, o->val_y, c->dtype, n_classes, err, sizeof err) ||
              train_check_data(&s->val, c, o->val_x, o->val_y, err, sizeof err);
        agree(s, bad, err);
    }
    compare_ranks(s);
    if (!o->val_x && c->val_split > 0) {
        uint64_t n = s->ds.n, held = (uint64_t)llround(c->val_split * (double)n);
        if (held == 0 || held >= n)
            fatal("%s: val_split=%g of %llu samples holds out %llu: %s", o->config, c->val_split, (unsigned long long)n,
                  (unsigned long long)held, held ? "none left to train on" : "none to validate on");
        struct Rng r;
        rng_seed(&r, c->seed ^ 0x76616c73706c6974u); /* "valsplit": apart from the other streams */
        bad = dataset_split(&s->ds, &s->val, held, &r) && dataset_error(&s->ds, err, sizeof err);
        agree(s, bad, err);
    }
    if (s->val.n && !o->quiet)
        log_err("validating on %llu samples (%s), training on %llu", (unsigned long long)s->val.n,
                o->val_x ? o->val_x : "held out by val_split", (unsigned long long)s->ds.n);
}

/* The training part's statistics, applied to both parts and kept in the model. */
static void normalize_data(struct Session *s)
{
    if (s->cfg.normalize == NORM_NONE) return;
    struct Tensor *shift, *scale;
    char err[1024];
    int bad = dataset_norm_stats(&s->ds, s->cfg.normalize, &shift, &scale) || dataset_normalize(&s->ds, shift, scale);
    if (bad) dataset_error(&s->ds, err, sizeof err);
    else if (s->val.n && dataset_normalize(&s->val, shift, scale)) bad = dataset_error(&s->val, err, sizeof err);
    agree(s, bad, err);
    model_set_norm(&s->model, shift, scale);
}

/* After a read of ds that failed here or (train-mpi) on another rank: a mapped file
 * shrank. Every rank stops with the first failing rank's message; the model file is
 * left as it was. Collective. */
static void agree_read(struct Session *s, const struct Dataset *ds)
{
    char err[1024];
    agree(s, dataset_error(ds, err, sizeof err), err);
}

/* A network too large for memory fails before anything of it is allocated: its
 * weights before the data is read (rows 0), the whole step once the data says how
 * many rows a batch has. `held`: what files loaded for the run take besides the data
 * (a checkpoint being resumed, held until it is restored); an --init file's weights,
 * loaded next to the network's own, count as one more copy of them. */
static void check_memory(struct Session *s, uint64_t rows, uint64_t held)
{
    char err[1024];
    uint64_t used = dataset_bytes(&s->ds) + dataset_bytes(&s->val) + held;
    if (s->o.init)
        for (uint32_t i = 0; i < s->cfg.n_layers; i++) used += s->cfg.layers[i].n_params * dtype_size(s->cfg.dtype);
    agree(s, model_memory_check(&s->cfg, s->o.config, rows, 1, used, err, sizeof err), err);
}

static void load_init_weights(struct Session *s)
{
    struct ModelFile mf;
    char err[1024];
    agree(s, model_load(s->o.init, &mf, err, sizeof err), err);
    /* the weights only: the normalisation comes from this run's data */
    uint32_t n_w = s->model.n_named - (s->model.shift ? 2 : 0);
    int bad = model_assign(&mf, s->model.named, n_w, s->o.init, err, sizeof err);
    model_file_free(&mf);
    if (bad) fatal("%s", err);
}

/* ---- what the run writes ---- */

static void open_metrics(struct Session *s)
{
    const char *path = s->o.metrics;
    /* a resumed run carries on the same file */
    s->metrics = fopen(path, s->o.resume ? "a" : "w");
    if (!s->metrics) fatal("cannot write the metrics to '%s': %s", path, strerror(errno));
    if (ftell(s->metrics) == 0)
        fputs("epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds\n", s->metrics);
    if (fflush(s->metrics) != 0) fatal("%s: %s", path, strerror(errno));
}

/* One row; a field that does not apply (accuracy of a regressor, no validation) is empty. */
static void write_metrics(struct Session *s, uint64_t e, const struct EpochStats *st, const struct EpochStats *vs,
                          double dt)
{
    int cls = s->cfg.loss == LOSS_CROSS_ENTROPY;
    char acc[32] = "", vl[32] = "", va[32] = "";
    if (cls) snprintf(acc, sizeof acc, "%.9g", st->accuracy);
    if (vs) snprintf(vl, sizeof vl, "%.9g", vs->loss);
    if (vs && cls) snprintf(va, sizeof va, "%.9g", vs->accuracy);
    fprintf(s->metrics, "%llu,%.9g,%s,%s,%s,%.9g,%.6f\n", (unsigned long long)e, st->loss, acc, vl, va,
            optim_lr(s->tr.opt), dt);
    if (fflush(s->metrics) != 0 || ferror(s->metrics)) fatal("%s: %s", s->o.metrics, strerror(errno));
}

/* samples: those this process ran (a resumed epoch's first batches ran in another). */
static void log_epoch(const struct Session *s, uint64_t e, const struct EpochStats *st, const struct EpochStats *vs,
                      double dt, uint64_t samples)
{
    const struct TrainConfig *c = &s->cfg;
    char lr[48] = "", val[96] = ""; /* where a schedule moves it: the last step's rate */
    if (c->lr_schedule != LR_CONSTANT) snprintf(lr, sizeof lr, "  lr %.3g", optim_lr(s->tr.opt));
    if (c->loss == LOSS_CROSS_ENTROPY) {
        if (vs) snprintf(val, sizeof val, "  val_loss %.6f  val_accuracy %.4f", vs->loss, vs->accuracy);
        log_err("epoch %llu/%llu  loss %.6f  accuracy %.4f%s  %.3f s  %.0f samples/s%s", (unsigned long long)e,
                (unsigned long long)c->epochs, st->loss, st->accuracy, val, dt, (double)samples / dt, lr);
    } else {
        if (vs) snprintf(val, sizeof val, "  val_loss %.6g", vs->loss);
        log_err("epoch %llu/%llu  loss %.6g%s  %.3f s  %.0f samples/s%s", (unsigned long long)e,
                (unsigned long long)c->epochs, st->loss, val, dt, (double)samples / dt, lr);
    }
}

static void save_checkpoint(struct Session *s, const char *path)
{
    char err[1024];
    if (!s->writer) return;
    if (checkpoint_save(path, &s->tr, &s->run, s->cfg_text, err, sizeof err)) fatal("%s", err);
}

/* The model file: the best epoch's weights whenever there is validation. */
static void save_model(struct Session *s)
{
    char err[1024];
    if (s->run.best_epoch) {
        train_run_restore_best(&s->run, &s->model);
        if (!s->o.quiet)
            log_err("best epoch %llu (val_loss %.6g): the model holds its weights", (unsigned long long)s->run.best_epoch,
                    s->run.best_loss);
    }
    if (!s->writer) return;
    train_hold_signals(1);
    int bad = model_save(s->o.out, s->model.named, s->model.n_named, s->cfg_text, err, sizeof err);
    train_hold_signals(0);
    if (bad) fatal("%s", err);
}

/* An argument as the shell reads it back. */
static void put_quoted(FILE *f, const char *a)
{
    if (*a && strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./:=,+-@%") == strlen(a)) {
        fprintf(f, " %s", a);
        return;
    }
    fputs(" '", f);
    for (; *a; a++) *a == '\'' ? fputs("'\\''", f) : fputc(*a, f);
    fputc('\'', f);
}

static void put_option(FILE *f, const char *name, const char *value)
{
    put_quoted(f, name);
    put_quoted(f, value);
}

/* The command that carries on from s->ckpt: this one's, less --init and --stop-after. */
static void print_resume(const struct Session *s)
{
    const struct Options *o = &s->o;
    char n[32];
    fputs(" ", stderr);
#ifdef MINIDL_MPI
    fprintf(stderr, " mpirun -np %d", s->comm->size);
#endif
    put_quoted(stderr, o->argv0);
    put_option(stderr, "--resume", s->ckpt);
    if (o->checkpoint) put_option(stderr, "--checkpoint", o->checkpoint);
    if (o->have_seed) snprintf(n, sizeof n, "%llu", (unsigned long long)o->seed), put_option(stderr, "-s", n);
    if (o->have_epochs) snprintf(n, sizeof n, "%llu", (unsigned long long)o->epochs), put_option(stderr, "-e", n);
    if (o->val_x) put_option(stderr, "--val", o->val_x), put_quoted(stderr, o->val_y);
    if (o->metrics) put_option(stderr, "--metrics", o->metrics);
    if (o->quiet) put_quoted(stderr, "-q");
    const char *pos[4] = {o->config, o->data, o->labels, o->out};
    int dash = 0;
    for (int i = 0; i < 4; i++) dash |= pos[i][0] == '-';
    if (dash) put_quoted(stderr, "--");
    for (int i = 0; i < 4; i++) put_quoted(stderr, pos[i]);
    fputc('\n', stderr);
}

/* ---- the run ---- */

static void setup(struct Session *s, int argc, char **argv)
{
    struct Options *o = &s->o;
    char err[1024];
    size_t len;
    parse_args(argc, argv, o);
    if (!s->writer) o->quiet = 1;
    kernels_isa(); /* MINIDL_ISA errors show up before any work */
    s->cfg_text = config_read_file(o->config, &len, err, sizeof err);
    if (!s->cfg_text) fatal("%s", err);
    if (config_parse_text(s->cfg_text, len, o->config, &s->cfg, err, sizeof err)) fatal("%s", err);
    if (o->have_seed) s->cfg.seed = o->seed;
    if (o->have_epochs) s->cfg.epochs = o->epochs;
    if (o->val_x && s->cfg.val_split > 0)
        fatal("%s: val_split=%g and --val both ask for validation data: give one", o->config, s->cfg.val_split);
    if (s->cfg.patience && !o->val_x && !(s->cfg.val_split > 0))
        fatal("%s: patience=%llu stops on the validation loss: set val_split in [train] or give --val X Y", o->config,
              (unsigned long long)s->cfg.patience);
    /* no output may replace an input (the checkpoint may be the one resumed from: it is read first) */
    const char *inputs[] = {o->config, o->data, o->labels, o->init, o->val_x, o->val_y, o->resume};
    if (model_check_output(o->out, inputs, 7, err, sizeof err)) fatal("%s", err);
    if (s->writer) check_output_path(o->out, "model");
    if (o->checkpoint) {
        if (model_check_output(o->checkpoint, inputs, 6, err, sizeof err)) fatal("%s", err);
        if (s->writer) check_output_path(o->checkpoint, "checkpoint");
    }
    snprintf(s->ckpt, sizeof s->ckpt, "%s%s", o->checkpoint ? o->checkpoint : o->out, o->checkpoint ? "" : ".ckpt");
    if (o->metrics && model_check_output(o->metrics, inputs, 7, err, sizeof err)) fatal("%s", err);
    if (o->metrics && s->writer) open_metrics(s);
}

/* The run from its checkpoint, or from the start (random or --init weights). */
static void start(struct Session *s)
{
    char err[1024];
    struct Checkpoint ck;
    agree(s, s->o.resume && checkpoint_open(&ck, s->o.resume, &s->cfg, err, sizeof err), err);
    uint64_t held = s->o.resume ? model_file_bytes(&ck.mf) : 0;
    check_memory(s, 0, held);
    load_data(s);
    check_memory(s, s->cfg.batch_size < s->ds.n ? s->cfg.batch_size : s->ds.n, held);
    model_init(&s->model, &s->cfg, s->cfg.seed);
    if (!s->o.quiet) model_print_summary(&s->model, stderr);
    normalize_data(s);
    if (s->o.init) load_init_weights(s);
    train_init(&s->tr, &s->model);
    train_set_comm(&s->tr, s->comm);
    int validate = s->o.val_x ? VAL_FILES : s->val.n ? VAL_SPLIT : VAL_NONE;
    train_run_init(&s->run, &s->model, validate, s->ds.n, s->val.n);
    if (!s->o.resume) return;
    int bad = checkpoint_restore(&ck, &s->tr, &s->run, err, sizeof err);
    checkpoint_close(&ck);
    agree(s, bad, err);
    if (!s->o.quiet)
        log_err("resuming %s after epoch %llu%s", s->o.resume, (unsigned long long)s->run.epochs_done,
                s->run.partial.steps ? " and some batches of the next" : "");
}

/* A signal stopped the run: its state goes to the checkpoint, and the exit status says which signal. */
static _Noreturn void interrupted(struct Session *s, uint64_t epoch, int saved)
{
    int sig = train_caught_signal();
    if (!saved) save_checkpoint(s, s->ckpt);
    char where[96];
    if (s->run.partial.steps)
        snprintf(where, sizeof where, "in epoch %llu, after batch %llu of %llu", (unsigned long long)epoch,
                 (unsigned long long)s->run.partial.steps, (unsigned long long)dataset_num_batches(&s->ds, s->cfg.batch_size));
    else
        snprintf(where, sizeof where, "after epoch %llu", (unsigned long long)s->run.epochs_done);
    log_err("%s %s: the run is saved in %s; resume it with:", sig == SIGTERM ? "terminated" : "interrupted", where,
            s->ckpt);
    print_resume(s);
    exit(128 + sig);
}

/* One epoch with its validation, log, metrics row and checkpoint. Returns 1 when the run ends early. */
static int epoch(struct Session *s, uint64_t e, int live)
{
    struct TrainConfig *c = &s->cfg;
    struct EpochStats st = s->run.partial, vs;
    uint64_t seen_before = st.seen;
    struct Progress pr = {e, c->epochs, time_now(), 0};
    int rc = train_epoch_continue(&s->tr, &s->ds, e, 0, live ? progress : NULL, &pr, &st);
    double dt = time_now() - pr.t0;
    if (live) fputs("\r\033[K", stderr);
    if (rc == TRAIN_DIVERGED)
        fatal("the loss became %s at epoch %llu, batch %llu of %llu: training diverged; "
              "try a lower learning rate (lr=%g now)", isnan(st.bad_loss) ? "NaN" : "infinite",
              (unsigned long long)e, (unsigned long long)st.steps,
              (unsigned long long)dataset_num_batches(&s->ds, c->batch_size), c->lr);
    if (rc == TRAIN_READ_ERROR) {
        agree_read(s, &s->ds);
        panic("batch %llu: a failed read that no rank recorded", (unsigned long long)st.steps);
    }
    if (rc == TRAIN_INTERRUPTED) {
        s->run.partial = st;
        interrupted(s, e, 0);
    }
    memset(&s->run.partial, 0, sizeof s->run.partial);
    s->run.epochs_done = e;
    int stop = 0;
    if (s->run.validate) {
        train_evaluate(&s->tr, &s->val, &vs);
        agree_read(s, &s->val); /* collective: every rank, every epoch */
        stop = train_run_observe(&s->run, &s->model, e, vs.loss);
    }
    if (!s->o.quiet) log_epoch(s, e, &st, s->run.validate ? &vs : NULL, dt, st.seen - seen_before);
    if (s->metrics) write_metrics(s, e, &st, s->run.validate ? &vs : NULL, dt);
#ifdef MINIDL_MPI
    comm_mpi_check_params(s->comm, &s->model, e);
#endif
    if (s->o.checkpoint) save_checkpoint(s, s->o.checkpoint);
    if (train_caught_signal()) interrupted(s, e, s->o.checkpoint != NULL);
    if (stop && !s->o.quiet)
        log_err("early stopping after epoch %llu: no lower validation loss for %llu epochs", (unsigned long long)e,
                (unsigned long long)c->patience);
    return stop;
}

int main(int argc, char **argv)
{
    util_set_progname(argv[0]);
    static struct Session s; /* large (the config's layer list): off the stack */
#ifdef MINIDL_MPI
    s.comm = comm_mpi_init(&argc, &argv);
#endif
    s.writer = !s.comm || s.comm->rank == 0;
    setup(&s, argc, argv);
    start(&s);
    const struct TrainConfig *c = &s.cfg;
    int live = !s.o.quiet && isatty(2);
    double t_all = time_now();
    train_catch_signals(&s.tr);
    if (s.o.resume && !s.o.quiet && (s.run.epochs_done >= c->epochs || train_run_stopped(&s.run, c)))
        log_err("the checkpoint's run is complete: nothing left to train");
    for (uint64_t e = s.run.epochs_done + 1; e <= c->epochs && !train_run_stopped(&s.run, c); e++) {
        if (epoch(&s, e, live)) break;
        if (s.o.have_stop_after && e == s.o.stop_after && e < c->epochs) {
            if (!s.o.checkpoint) save_checkpoint(&s, s.ckpt);
            save_model(&s);
            if (!s.o.quiet) {
                log_err("stopped after epoch %llu of %llu (--stop-after): saved %s and the run in %s; resume it with:",
                        (unsigned long long)e, (unsigned long long)c->epochs, s.o.out, s.ckpt);
                print_resume(&s);
            }
            goto done;
        }
    }
    save_model(&s);
    if (!s.o.quiet) log_err("saved %s (%.2f s of training)", s.o.out, time_now() - t_all);
done:
    if (s.metrics && fclose(s.metrics) != 0) fatal("%s: %s", s.o.metrics, strerror(errno));
    train_run_free(&s.run);
    train_free(&s.tr);
    dataset_free(&s.ds);
    dataset_free(&s.val);
    model_free(&s.model);
    mem_free(s.cfg_text);
#ifdef MINIDL_MPI
    comm_mpi_report(s.comm, s.o.quiet);
    comm_mpi_finalize(s.comm);
#endif
    return 0;
}
