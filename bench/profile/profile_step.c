/* profile_step: where a training step's time goes, job by job (make profile).
 *
 *   build-prof/profile_step [--threads N] [--steps N] [--batch N] [--shuffle 0|1]
 *                           CONFIG DATA LABELS
 *
 * Trains CONFIG's model on the data as train does (CSV files, or a binary dataset given
 * as both DATA and LABELS), in a library built with MINIDL_PROFILE so that the pool
 * records its jobs (threads.h): 50 steps of warm-up, then --steps steps recorded
 * (default 300, over several epochs if need be). It prints, for each job of a step in
 * order, its function, task count, median and mean time, the median gap before it
 * (for the first, since the last job of the step before) and each worker's median time
 * in it; then the step's median, and how it splits into one-task jobs (run on the
 * calling thread), jobs of several tasks, and the time between jobs. These are the S, P
 * and J of the README's 16-core prediction. An epoch's last batch, when it is partial,
 * is left out of the comparison. Function names come from addr2line (binutils) where it
 * is installed, else addresses are printed. --shuffle overrides the config's (bench
 * threads trains in the file's order); the config's normalisation is not applied (it
 * changes the values, not the work).
 *
 * A developer's tool: it times, it checks nothing, and it needs the profile build.
 * Exit status: 0, 1 (bad config or data, training stopped, records full), 2 (usage). */
#include "cli.h"
#include "config_parser.h"
#include "dataset.h"
#include "math_kernels.h"
#include "mem.h"
#include "model.h"
#include "threads.h"
#include "train.h"
#include "utils.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef MINIDL_PROFILE
#error "profile_step needs the library built with -DMINIDL_PROFILE: make profile"
#endif

#define WARM_STEPS 50
#define MAX_STEPS 100000

static const char usage[] =
    "usage: profile_step [options] <config.ini> <data> <labels>\n"
    "  --threads N   threads (default: MINIDL_THREADS, else every core this process may use)\n"
    "  --steps N     steps to record, 2 to 100000 (default 300)\n"
    "  --batch N     batch size instead of the config's\n"
    "  --shuffle B   1: shuffled rows, 0: the file's order (default: the config's)\n";

struct Options {
    uint64_t steps, batch;
    int shuffle; /* -1: the config's */
};

static int take_option(void *ctx, int argc, char **argv, int *i)
{
    struct Options *o = ctx;
    const char *a = argv[*i];
    if (!strcmp(a, "--steps")) o->steps = cli_option_uint(argc, argv, i, 2, MAX_STEPS);
    else if (!strcmp(a, "--batch")) o->batch = cli_option_uint(argc, argv, i, 1, 1u << 20);
    else if (!strcmp(a, "--shuffle")) o->shuffle = (int)cli_option_uint(argc, argv, i, 0, 1);
    else return 0;
    return 1;
}

/* The recorded steps: step s's jobs are [first_job[s], first_job[s + 1]). */
struct Steps {
    size_t *first_job;
    unsigned char *partial; /* an epoch's last batch, short of the batch size */
    size_t n, cap;
    uint64_t per_epoch;     /* batches in an epoch */
    int last_partial;       /* the last of them is partial */
};

static void on_step(void *ctx, uint64_t done, uint64_t total, double loss)
{
    (void)loss, (void)total; /* total: the epoch's steps as asked for, maybe fewer than its batches */
    struct Steps *s = ctx;
    if (s->n == s->cap) return;
    s->partial[s->n] = done == s->per_epoch && s->last_partial;
    s->first_job[++s->n] = par_profile_jobs();
}

/* `steps` steps from *epoch on, over as many epochs as they take; TRAIN_OK or why not. */
static int run_steps(struct Trainer *t, struct Dataset *ds, uint64_t steps, uint64_t *epoch, epoch_progress_fn fn,
                     void *ctx, struct EpochStats *st)
{
    uint64_t per_epoch = dataset_num_batches(ds, t->model->cfg.batch_size);
    for (; steps; (*epoch)++) {
        uint64_t n = steps < per_epoch ? steps : per_epoch;
        int rc = train_epoch(t, ds, *epoch, n, fn, ctx, st);
        if (rc != TRAIN_OK) return rc;
        steps -= n;
    }
    return TRAIN_OK;
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

static double us(unsigned long long from, unsigned long long to) { return (double)(to - from) * 1e-3; }

/* The function's name by addr2line on this executable (linked without PIE, so an
 * address is the file's), or its address. */
static void fn_name(par_fn fn, char *out, size_t len)
{
    char exe[PATH_MAX], cmd[PATH_MAX + 128];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    FILE *p = NULL;
    out[0] = 0;
    if (n > 0 && !memchr(exe, '\'', (size_t)n)) {
        exe[n] = 0;
        snprintf(cmd, sizeof cmd, "addr2line -f -e '%s' %p 2>/dev/null", exe, (void *)(uintptr_t)fn);
        p = popen(cmd, "r");
    }
    if (p) {
        if (fgets(out, (int)len, p)) out[strcspn(out, "\n")] = 0;
        pclose(p);
    }
    if (!out[0] || out[0] == '?') snprintf(out, len, "%p", (void *)(uintptr_t)fn);
}

/* The most common job count of the whole steps, the first step that has it and how
 * many do. */
static size_t common_length(const struct Steps *s, size_t max_len, size_t *first, size_t *how_many)
{
    size_t *count = mem_alloc_zeroed((max_len + 1) * sizeof *count), best = 0, len = 0;
    for (size_t i = 0; i < s->n; i++)
        if (!s->partial[i]) count[s->first_job[i + 1] - s->first_job[i]]++;
    for (size_t l = 1; l <= max_len; l++)
        if (count[l] > best) best = count[l], len = l;
    *how_many = best;
    for (*first = 0; *first < s->n && (s->partial[*first] || s->first_job[*first + 1] - s->first_job[*first] != len);)
        (*first)++;
    mem_free(count);
    return len;
}

/* The table: each job k of the steps of `len` jobs (not partial), then the step. */
static void print_profile(const struct Steps *s, const struct ParJobRecord *jobs, const struct ParTaskRecord *tasks,
                          size_t n_tasks, size_t len, size_t first)
{
    size_t nt = (size_t)threads_count(), n_jobs = s->first_job[s->n];
    double *busy = mem_alloc_zeroed((n_jobs ? n_jobs : 1) * nt * sizeof *busy); /* a job's task time per worker */
    for (size_t q = 0; q < n_tasks; q++)
        if (tasks[q].job < n_jobs) busy[tasks[q].job * nt + (size_t)tasks[q].worker] += us(tasks[q].t0, tasks[q].t1);
    double *v = mem_alloc(s->n * sizeof *v), *w = mem_alloc(s->n * sizeof *w), *per = mem_alloc(s->n * nt * sizeof *per);
    printf("  %2s  %-24s %5s %10s %9s %8s   %s\n", "#", "job", "tasks", "median us", "mean us", "gap us",
           "median us on each worker");
    double serial = 0, parallel = 0, between = 0;
    for (size_t k = 0; k < len; k++) {
        size_t n = 0, ng = 0;
        for (size_t i = 0; i < s->n; i++) {
            if (s->partial[i] || s->first_job[i + 1] - s->first_job[i] != len) continue;
            size_t j = s->first_job[i] + k;
            v[n] = us(jobs[j].t0, jobs[j].t1);
            if (j > 0) w[ng++] = us(jobs[j - 1].t1, jobs[j].t0); /* job 0: since the step before */
            for (size_t q = 0; q < nt; q++) per[q * s->n + n] = busy[j * nt + q];
            n++;
        }
        const struct ParJobRecord *j0 = &jobs[s->first_job[first] + k];
        char name[128];
        fn_name(j0->fn, name, sizeof name);
        double avg = mean(v, n), gap = median(w, ng), med = median(v, n);
        printf("  %2zu  %-24s %5zu %10.1f %9.1f %8.1f  ", k, name, j0->n_tasks, med, avg, gap);
        for (size_t q = 0; q < nt; q++) printf(" w%zu %.1f", q, median(per + q * s->n, n));
        printf("\n");
        if (j0->n_tasks > 1 && nt > 1) parallel += med;
        else serial += med;
        between += gap;
    }
    size_t n = 0;
    for (size_t i = 0; i + 1 < s->n; i++)
        if (!s->partial[i]) v[n++] = us(jobs[s->first_job[i]].t0, jobs[s->first_job[i + 1]].t0);
    printf("step: median %.1f us over %zu steps; one-task jobs %.1f us, jobs of several tasks %.1f us, between "
           "jobs %.1f us (sums of medians)\n",
           median(v, n), n, serial, parallel, between);
    mem_free(busy);
    mem_free(per);
    mem_free(v);
    mem_free(w);
}

int main(int argc, char **argv)
{
    util_set_progname("profile_step");
    struct Options o = {300, 0, -1};
    const char *pos[3];
    cli_parse_args(argc, argv, "profile_step", usage, pos, 3, take_option, &o);
    char err[1024];
    struct TrainConfig cfg;
    if (config_parse_file(pos[0], &cfg, err, sizeof err)) fatal("%s", err);
    if (o.batch) cfg.batch_size = o.batch;
    if (o.shuffle >= 0) cfg.shuffle = o.shuffle;
    struct Dataset ds;
    if (dataset_load(&ds, pos[1], pos[2], cfg.dtype, cfg.loss == LOSS_CROSS_ENTROPY ? cfg.output_dim : 0, err,
                     sizeof err) ||
        train_check_data(&ds, &cfg, pos[1], pos[2], err, sizeof err))
        fatal("%s", err);
    struct Model m;
    struct Trainer t;
    struct EpochStats st;
    model_init(&m, &cfg, cfg.seed);
    train_init(&t, &m);

    /* The warm-up, recorded into generous arrays: the largest step sizes the real ones. */
    size_t cap = 1 << 16;
    struct ParJobRecord *jobs = mem_alloc(cap * sizeof *jobs);
    struct ParTaskRecord *tasks = mem_alloc(cap * 4 * sizeof *tasks);
    struct Steps s = {mem_alloc((MAX_STEPS + 1) * sizeof *s.first_job), mem_alloc(MAX_STEPS), 0, WARM_STEPS,
                      dataset_num_batches(&ds, cfg.batch_size), ds.n % cfg.batch_size != 0};
    s.first_job[0] = 0;
    uint64_t epoch = 1;
    par_profile_start(jobs, cap, tasks, cap * 4);
    int rc = run_steps(&t, &ds, WARM_STEPS, &epoch, on_step, &s, &st);
    size_t n_tasks = par_profile_stop(), most = 1;
    if (rc == TRAIN_OK && (par_profile_jobs() == cap || n_tasks == cap * 4)) fatal("the warm-up filled the records");
    for (size_t i = 0; i < s.n; i++)
        if (s.first_job[i + 1] - s.first_job[i] > most) most = s.first_job[i + 1] - s.first_job[i];
    size_t job_cap = (size_t)o.steps * (most + 4), task_cap = job_cap * 4 * (size_t)threads_count();
    jobs = mem_realloc(jobs, job_cap * sizeof *jobs);
    tasks = mem_realloc(tasks, task_cap * sizeof *tasks);

    s.n = 0, s.cap = (size_t)o.steps;
    if (rc == TRAIN_OK) {
        par_profile_start(jobs, job_cap, tasks, task_cap);
        rc = run_steps(&t, &ds, o.steps, &epoch, on_step, &s, &st);
        n_tasks = par_profile_stop();
    }
    if (rc != TRAIN_OK)
        fatal("training stopped at step %llu of an epoch: %s", (unsigned long long)st.steps,
              rc == TRAIN_DIVERGED ? "the loss is not finite" : "the data could not be read");
    if (par_profile_jobs() == job_cap || n_tasks == task_cap) fatal("the records filled up: try fewer --steps");
    size_t first, alike, len = common_length(&s, most + 4, &first, &alike);
    if (!len) fatal("no whole step was recorded");
    printf("profile_step: %zu steps of %s (batch %llu, %s), %d threads, ISA %s; %zu whole ones with %zu jobs\n", s.n,
           pos[0], (unsigned long long)cfg.batch_size, cfg.shuffle ? "shuffled" : "file order", threads_count(),
           isa_name(kernels_isa()), alike, len);
    print_profile(&s, jobs, tasks, n_tasks, len, first);
    mem_free(s.first_job);
    mem_free(s.partial);
    mem_free(jobs);
    mem_free(tasks);
    train_free(&t);
    model_free(&m);
    dataset_free(&ds);
    threads_set(1);
    return 0;
}
