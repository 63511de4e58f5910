/* profile_step: where a training step's time goes, job by job (make profile).
 *
 *   build-prof/profile_step [--threads N] [--steps N] [--batch N] [--shuffle 0|1]
 *                           CONFIG X [Y]
 *
 * Trains CONFIG's model on the data as train does (X, Y: CSV files or one binary
 * dataset, Y defaulting to X), with the library built with MINIDL_PROFILE so that the
 * pool records its jobs (threads.h): after 50 steps of warm-up it records --steps
 * steps (default 300, at least 2; over several epochs if need be), then prints, for each job of a step in order, its function,
 * task count, median and mean time, the median gap before it, and each worker's
 * median time in it; then the step's median, and how it splits into one-task jobs (run
 * on the calling thread), jobs of several tasks, and the time between jobs. These are
 * the S, P and J of the README's 16-core prediction. Function names come from
 * addr2line (binutils) where it is installed, else addresses are printed.
 * --shuffle overrides the config's (bench threads trains in the file's order); the
 * config's normalisation is not applied (it changes the values, not the work).
 *
 * A developer's tool: it times, it checks nothing, and it needs the profile build. */
#include "config_parser.h"
#include "dataset.h"
#include "mem.h"
#include "model.h"
#include "threads.h"
#include "train.h"
#include "utils.h"
#include "math_kernels.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <unistd.h>

#ifndef MINIDL_PROFILE
#error "profile_step needs the library built with -DMINIDL_PROFILE: make profile"
#endif

#define WARM_STEPS 50

struct Steps {
    size_t *first_job; /* first_job[s]: the first job of step s; first_job[n]: the end */
    size_t n, cap;
};

static void on_step(void *ctx, uint64_t done, uint64_t total, double loss)
{
    (void)done, (void)total, (void)loss;
    struct Steps *s = ctx;
    if (s->n < s->cap) s->first_job[++s->n] = par_profile_jobs();
}

/* `steps` steps, over as many epochs as they take (whole epochs from *epoch on). */
static void run_steps(struct Trainer *t, struct Dataset *ds, uint64_t steps, uint64_t *epoch, epoch_progress_fn fn,
                      void *ctx)
{
    uint64_t per_epoch = dataset_num_batches(ds, t->model->cfg.batch_size);
    struct EpochStats st;
    for (; steps; (*epoch)++) {
        uint64_t n = steps < per_epoch ? steps : per_epoch;
        train_epoch(t, ds, *epoch, n, fn, ctx, &st);
        steps -= n;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
    if (!n) return 0;
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double mean(const double *v, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += v[i];
    return n ? s / (double)n : 0;
}

/* The function's name by addr2line on this executable (built without PIE, so an
 * address is the file's), or its address. */
static void fn_name(par_fn fn, char *out, size_t len)
{
    char exe[PATH_MAX], cmd[PATH_MAX + 128];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    FILE *p = NULL;
    out[0] = 0;
    if (n > 0 && !memchr(exe, '\'', (size_t)n)) {
        exe[n] = 0;
        snprintf(cmd, sizeof cmd, "addr2line -f -e '%s' 0x%lx 2>/dev/null", exe, (unsigned long)(uintptr_t)fn);
        p = popen(cmd, "r");
    }
    if (p) {
        if (fgets(out, (int)len, p)) out[strcspn(out, "\n")] = 0;
        pclose(p);
    }
    if (!out[0] || out[0] == '?') snprintf(out, len, "0x%lx", (unsigned long)(uintptr_t)fn);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: profile_step [--threads N] [--steps N] [--batch N] [--shuffle 0|1] CONFIG X [Y]\n");
}

static int int_arg(const char *s, long lo, long hi, long *v)
{
    char *end;
    *v = strtol(s, &end, 10);
    return *s && !*end && *v >= lo && *v <= hi;
}

int main(int argc, char **argv)
{
    long threads = threads_available(), steps = 300, batch = 0, shuffle = -1;
    int a = 1;
    for (; a < argc && argv[a][0] == '-' && argv[a][1]; a++) {
        long *v = !strcmp(argv[a], "--threads") ? &threads : !strcmp(argv[a], "--steps") ? &steps
                : !strcmp(argv[a], "--batch")   ? &batch   : !strcmp(argv[a], "--shuffle") ? &shuffle : NULL;
        if (!strcmp(argv[a], "--help")) {
            usage(stdout);
            return 0;
        }
        long hi = v == &threads ? THREADS_MAX : v == &shuffle ? 1 : 1000000;
        if (!v || a + 1 >= argc || !int_arg(argv[a + 1], v == &shuffle ? 0 : v == &steps ? 2 : 1, hi, v)) {
            usage(stderr);
            return 2;
        }
        a++;
    }
    if (argc - a < 2 || argc - a > 3) {
        usage(stderr);
        return 2;
    }
    const char *cfg_path = argv[a], *x = argv[a + 1], *y = argc - a == 3 ? argv[a + 2] : argv[a + 1];
    char err[1024];
    struct TrainConfig cfg;
    if (config_parse_file(cfg_path, &cfg, err, sizeof err)) {
        fprintf(stderr, "profile_step: %s\n", err);
        return 1;
    }
    if (batch) cfg.batch_size = (uint64_t)batch;
    if (shuffle >= 0) cfg.shuffle = (int)shuffle;
    struct Dataset ds;
    uint64_t classes = cfg.loss == LOSS_CROSS_ENTROPY ? cfg.output_dim : 0;
    if (dataset_load(&ds, x, y, cfg.dtype, classes, err, sizeof err)) {
        fprintf(stderr, "profile_step: %s\n", err);
        return 1;
    }
    threads_set((int)threads);
    struct Model m;
    struct Trainer t;
    model_init(&m, &cfg, cfg.seed);
    train_init(&t, &m);
    uint64_t epoch = 1;
    run_steps(&t, &ds, WARM_STEPS, &epoch, NULL, NULL);

    size_t job_cap = (size_t)steps * 64, task_cap = job_cap * 16;
    struct ParJobRecord *jobs = mem_alloc(job_cap * sizeof *jobs);
    struct ParTaskRecord *tasks = mem_alloc(task_cap * sizeof *tasks);
    struct Steps s = {mem_alloc(((size_t)steps + 1) * sizeof *s.first_job), 0, (size_t)steps};
    s.first_job[0] = 0;
    par_profile_start(jobs, job_cap, tasks, task_cap);
    run_steps(&t, &ds, (uint64_t)steps, &epoch, on_step, &s);
    size_t n_tasks = par_profile_stop();

    /* The steps with the most common job count are the ones compared job by job. */
    size_t len = 0, best = 0, first = 0;
    for (size_t i = 0; i < s.n; i++) {
        size_t li = s.first_job[i + 1] - s.first_job[i], c = 0;
        for (size_t k = 0; k < s.n; k++) c += s.first_job[k + 1] - s.first_job[k] == li;
        if (c > best) best = c, len = li, first = i;
    }
    /* each job's task time per worker */
    size_t nt = (size_t)threads_count(), n_jobs = s.first_job[s.n];
    double *busy = mem_alloc_zeroed((n_jobs ? n_jobs : 1) * nt * sizeof *busy);
    for (size_t q = 0; q < n_tasks; q++)
        if (tasks[q].job < n_jobs) busy[tasks[q].job * nt + (size_t)tasks[q].worker] += (double)(tasks[q].t1 - tasks[q].t0) * 1e-3;
    double *v = mem_alloc(s.n * sizeof *v), *w = mem_alloc(s.n * sizeof *w), *per = mem_alloc(s.n * nt * sizeof *per);
    printf("profile_step: %zu steps of %s (batch %llu, %s), %d threads, ISA %s; %zu of them with %zu jobs\n", s.n,
           cfg_path, (unsigned long long)cfg.batch_size, cfg.shuffle ? "shuffled" : "file order", threads_count(),
           isa_name(kernels_isa()), best, len);
    printf("  %2s  %-24s %5s %10s %9s %8s   %s\n", "#", "job", "tasks", "median us", "mean us", "gap us",
           "median us on each worker");
    double serial = 0, parallel = 0, between = 0;
    for (size_t k = 0; k < len; k++) {
        size_t n = 0;
        for (size_t i = 0; i < s.n; i++) {
            if (s.first_job[i + 1] - s.first_job[i] != len) continue;
            size_t j = s.first_job[i] + k;
            v[n] = (double)(jobs[j].t1 - jobs[j].t0) * 1e-3;
            w[n] = k ? (double)(jobs[j].t0 - jobs[j - 1].t1) * 1e-3 : 0;
            for (size_t q = 0; q < nt; q++) per[q * s.n + n] = busy[j * nt + q];
            n++;
        }
        const struct ParJobRecord *j0 = &jobs[s.first_job[first] + k];
        char name[128];
        fn_name(j0->fn, name, sizeof name);
        double avg = mean(v, n), gap = median(w, n), med = median(v, n);
        printf("  %2zu  %-24s %5zu %10.1f %9.1f %8.1f  ", k, name, j0->n_tasks, med, avg, gap);
        for (size_t q = 0; q < nt; q++) printf(" w%zu %.1f", q, median(per + q * s.n, n));
        printf("\n");
        if (j0->n_tasks > 1 && nt > 1) parallel += med;
        else serial += med;
        between += gap;
    }
    for (size_t i = 0; i + 1 < s.n; i++) v[i] = (double)(jobs[s.first_job[i + 1]].t0 - jobs[s.first_job[i]].t0) * 1e-3;
    printf("step: median %.1f us over %zu steps; one-task jobs %.1f us, jobs of several tasks %.1f us, between "
           "jobs %.1f us (sums of medians)\n",
           median(v, s.n ? s.n - 1 : 0), s.n ? s.n - 1 : 0, serial, parallel, between);
    mem_free(busy);
    mem_free(per);
    mem_free(v);
    mem_free(w);
    mem_free(s.first_job);
    mem_free(jobs);
    mem_free(tasks);
    train_free(&t);
    model_free(&m);
    dataset_free(&ds);
    return 0;
}
