/* bench threads: what the pool gives at 1, 2, ... up to the cores present, each figure
 * beside the one-thread figure of the same run:
 *   - a training step (forward, loss, backward, Adam, batch gathering) of the
 *     Fashion-MNIST MLP at batch 64 and 256 and of the CNN at batch 64, on random data;
 *   - a whole epoch of both at batch 64 on Fashion-MNIST's 60000 training rows (when
 *     scripts/fmnist.sh made them; loading not counted);
 *   - loading the 10000-row test CSV, and inference (forward only) on the test set
 *     (the epochs in rounds where the thread counts take turns);
 *   - the cost of one empty parallel job (start and barrier), which with the step's
 *     count of parallel ops predicts the overhead on more cores;
 *   - before and after the table, one thread's step pinned to each core, the cores in
 *     turn and then all at once (a process each), and from those rates the most all the
 *     threads could give: on a virtual machine the cores need not run at one speed, nor
 *     keep theirs during a run or when their neighbours work;
 *   - with those, the latency of a cache line passed between two cores: what every op
 *     whose input another thread wrote pays, per line (this project's VM: 190-380 ns,
 *     where two cores of one chip take some 50-100).
 * Medians of several repetitions; quick: fewer. */
#define _GNU_SOURCE /* sched_setaffinity, CPU_SET */
#include "bench.h"
#include "dataset.h"
#include "kernels/dispatch.h"
#include "kernels/ew.h"
#include "math_kernels.h"
#include "mem.h"
#include "threads.h"
#include "train.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

void bench_threads(int quick);

static const char mlp_cfg[] = "[model]\ninput_dim=784\nlayer=Linear,784,128\nactivation=ReLU\n"
                              "layer=Linear,128,10\nactivation=Softmax\n[train]\nbatch_size=%d\nshuffle=0\n";
static const char cnn_cfg[] = "[model]\ninput_shape=1,28,28\nlayer=Conv2d,1,8,3,3,1,1\nactivation=ReLU\n"
                              "layer=Conv2d,8,16,3,3,2,1\nactivation=ReLU\nlayer=Linear,3136,10\n"
                              "[train]\nbatch_size=%d\nshuffle=0\n";

/* A dataset of n random rows of 784 values and class labels, built in memory. */
static void random_dataset(struct Dataset *ds, uint64_t n)
{
    memset(ds, 0, sizeof *ds);
    uint64_t shape[2] = {n, 784};
    ds->x = tensor_create(2, shape, DT_FLOAT32);
    struct Rng r;
    rng_seed(&r, 1);
    for (uint64_t i = 0; i < n * 784; i++) tensor_f32(ds->x)[i] = (float)rng_uniform(&r);
    ds->cls = mem_alloc(n * sizeof *ds->cls);
    for (uint64_t i = 0; i < n; i++) ds->cls[i] = (uint32_t)rng_below(&r, 10);
    ds->n = n, ds->dim = 784, ds->label_dim = 1;
    ds->order = mem_alloc(n * sizeof *ds->order);
    for (uint64_t i = 0; i < n; i++) ds->order[i] = i;
}

/* Median microseconds per step of `steps` steps, over reps epochs of them. */
static double step_us(const char *fmt, int batch, struct Dataset *ds, int steps, int reps)
{
    char text[512], err[256];
    struct TrainConfig cfg;
    snprintf(text, sizeof text, fmt, batch);
    if (config_parse_text(text, strlen(text), "bench", &cfg, err, sizeof err)) {
        printf("  %s\n", err);
        return 0;
    }
    struct Model m;
    struct Trainer t;
    struct EpochStats st;
    double v[16];
    model_init(&m, &cfg, cfg.seed);
    train_init(&t, &m);
    train_epoch(&t, ds, 1, 3, NULL, NULL, &st); /* warm-up: arena, pack buffers, threads */
    for (int r = 0; r < reps; r++) {
        double t0 = time_now();
        train_epoch(&t, ds, 1, (uint64_t)steps, NULL, NULL, &st);
        v[r] = (time_now() - t0) / steps * 1e6;
    }
    train_free(&t);
    model_free(&m);
    return bench_median(v, reps);
}

static void noop_task(void *ctx, size_t task, int worker) { (void)ctx, (void)task, (void)worker; }

static double job_us(void)
{
    double v[9];
    for (int r = 0; r < 9; r++) {
        double t0 = time_now();
        for (int i = 0; i < 2000; i++) par_run((size_t)threads_count(), noop_task, NULL);
        v[r] = (time_now() - t0) / 2000 * 1e6;
    }
    return bench_median(v, 9);
}

/* Seconds per epoch of cfg at batch 64 on the Fashion-MNIST training set (median of reps
 * epochs after a warm-up of a few steps), or 0 without the data. */
static double epoch_s(const char *fmt, const struct Dataset *train, int reps)
{
    char text[512], err[256];
    struct TrainConfig cfg;
    snprintf(text, sizeof text, fmt, 64);
    if (!train->n || config_parse_text(text, strlen(text), "bench", &cfg, err, sizeof err)) return 0;
    struct Model m;
    struct Trainer t;
    struct EpochStats st;
    struct Dataset ds = *train;
    double v[8];
    model_init(&m, &cfg, cfg.seed);
    train_init(&t, &m);
    train_epoch(&t, &ds, 1, 3, NULL, NULL, &st);
    for (int r = 0; r < reps; r++) {
        double t0 = time_now();
        train_epoch(&t, &ds, 1, 0, NULL, NULL, &st);
        v[r] = time_now() - t0;
    }
    train_free(&t);
    model_free(&m);
    return bench_median(v, reps);
}

/* Seconds to load the test CSV and to run the CNN forward over the test set. */
static void load_and_infer(double *load_s, double *infer_s, int reps)
{
    char x[1024], y[1024], err[1024];
    snprintf(x, sizeof x, "%s/fmnist_test_x.csv", bench_fmnist_dir());
    snprintf(y, sizeof y, "%s/fmnist_test_y.csv", bench_fmnist_dir());
    double lv[8], iv[8];
    struct TrainConfig cfg;
    char text[512];
    snprintf(text, sizeof text, cnn_cfg, 256);
    config_parse_text(text, strlen(text), "bench", &cfg, err, sizeof err);
    struct Model m;
    model_init(&m, &cfg, 1);
    for (int r = 0; r < reps; r++) {
        struct Dataset ds;
        double t0 = time_now();
        if (dataset_load(&ds, x, y, DT_FLOAT32, 10, err, sizeof err)) {
            printf("  %s\n", err);
            *load_s = *infer_s = 0;
            model_free(&m);
            return;
        }
        lv[r] = time_now() - t0;
        struct Graph g;
        graph_init(&g);
        graph_set_no_grad(&g, 1);
        m.run.training = 0;
        t0 = time_now();
        for (uint64_t b = 0; b < dataset_num_batches(&ds, 256); b++) {
            struct Batch bt;
            dataset_get_batch(&ds, b, 256, &bt);
            model_forward(&m, model_input(&g, &m, bt.x), 1);
            graph_reset(&g);
        }
        iv[r] = time_now() - t0;
        graph_free(&g);
        dataset_free(&ds);
    }
    model_free(&m);
    *load_s = bench_median(lv, reps);
    *infer_s = bench_median(iv, reps);
}

/* The cores the process may run on, up to max; returns the count. */
static int allowed_cores(int *cpu, int max)
{
    cpu_set_t all;
    int n = 0;
    if (sched_getaffinity(0, sizeof all, &all)) return 0;
    for (int c = 0; c < CPU_SETSIZE && n < max; c++)
        if (CPU_ISSET(c, &all)) cpu[n++] = c;
    return n;
}

static int pin_to(int c)
{
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(c, &one);
    return sched_setaffinity(0, sizeof one, &one);
}

/* One thread's MLP b64 and CNN b64 step (us) on each of the n cores, pinned there: with
 * at_once, every core at the same time, each a process of its own with its own model
 * (nothing shared: what the machine gives to n independent jobs); else one core after
 * the other. us[2 * i + w] for core i and model w; 0 where a core failed. */
static void pinned_steps(struct Dataset *ds, const int *cpu, int n, int at_once, int steps, int reps, double *us)
{
    cpu_set_t all;
    sched_getaffinity(0, sizeof all, &all);
    for (int i = 0; i < 2 * n; i++) us[i] = 0;
    for (int w = 0; w < 2; w++) {
        const char *cfg = w ? cnn_cfg : mlp_cfg;
        int s = w ? steps / 2 : steps;
        if (!at_once) {
            for (int i = 0; i < n; i++) us[2 * i + w] = pin_to(cpu[i]) ? 0 : step_us(cfg, 64, ds, s, reps);
            continue;
        }
        /* children on cores 1..n-1 wait at go, then write their time to back */
        int go[2], back[2];
        if (pipe(go)) break;
        if (pipe(back)) {
            close(go[0]), close(go[1]);
            break;
        }
        fflush(stdout);
        pid_t kid[CPU_SETSIZE];
        int kids = 0;
        for (int i = 1; i < n; i++) {
            pid_t p = fork();
            if (p == 0) {
                char c;
                close(go[1]), close(back[0]);
                double r[2] = {i, 0};
                if (read(go[0], &c, 1) == 1 && !pin_to(cpu[i])) r[1] = step_us(cfg, 64, ds, s, reps);
                if (write(back[1], r, sizeof r) != sizeof r) _exit(1);
                _exit(0);
            }
            if (p > 0) kid[kids++] = p;
        }
        close(go[0]), close(back[1]);
        char go_bytes[CPU_SETSIZE] = {0};
        if (write(go[1], go_bytes, (size_t)kids) < 0) {
            /* the children read end of file below and report 0 */
        }
        close(go[1]);
        us[w] = pin_to(cpu[0]) ? 0 : step_us(cfg, 64, ds, s, reps);
        double r[2];
        while (read(back[0], r, sizeof r) == sizeof r)
            if (r[0] >= 1 && r[0] < n) us[2 * (int)r[0] + w] = r[1];
        close(back[0]);
        for (int k = 0; k < kids; k++) waitpid(kid[k], NULL, 0);
    }
    sched_setaffinity(0, sizeof all, &all);
}

/* One thread's step on each core, first one core after the other, then all at once:
 * cores of a virtual machine (or with busy neighbours) can differ in speed, and can lose
 * speed when their neighbours work (a shared physical core, cache, memory or power).
 * The most n threads can give is the sum of the cores' rates when all run at once over
 * the one-thread rate: printed against the fastest core alone, as is the bound from the
 * cores' rates one at a time. */
static void core_speeds(struct Dataset *ds, int steps, int reps)
{
    int cpu[CPU_SETSIZE], n = allowed_cores(cpu, CPU_SETSIZE);
    if (n < 2) return;
    double *us = mem_alloc((size_t)n * 4 * sizeof *us), *both = us + 2 * n, hi[2] = {0, 0};
    pinned_steps(ds, cpu, n, 0, steps, reps, us);
    pinned_steps(ds, cpu, n, 1, steps, reps, both);
    for (int a = 0; a < 2; a++) {
        const double *t = a ? both : us;
        printf("  one thread pinned to each core %s, MLP b64 / CNN b64 step:", a ? "at the same time" : "in turn");
        for (int i = 0; i < n; i++) printf("%s cpu%d %.0f/%.0f us", i ? "," : "", cpu[i], t[2 * i], t[2 * i + 1]);
        printf("\n");
    }
    for (int i = 0; i < n; i++)
        for (int w = 0; w < 2; w++)
            if (us[2 * i + w] > 0 && (hi[w] == 0 || us[2 * i + w] < hi[w])) hi[w] = us[2 * i + w];
    printf("  so all %d threads can give at most, over one thread alone on the fastest core:", n);
    for (int a = 0; a < 2; a++) {
        const double *t = a ? both : us;
        printf("%s", a ? ", cores at once" : " cores in turn");
        for (int w = 0; w < 2; w++) {
            double sum = 0;
            for (int i = 0; i < n; i++) sum += t[2 * i + w] > 0 ? 1 / t[2 * i + w] : 0;
            printf(" %s %.2fx", w ? "CNN" : "MLP", sum * hi[w]);
        }
    }
    printf("\n");
    mem_free(us);
}

/* Ping-pong of one cache line between two threads pinned to the first two cores allowed:
 * nanoseconds one way, the latency of a line that one core wrote and another reads (what
 * a job's hand-over of its data costs per line not prefetched); 0 with fewer cores. */
struct PingPong { _Alignas(64) atomic_int flag; int cpu, rounds; const float *buf; size_t n; double sum; };

static void *pong(void *arg)
{
    struct PingPong *p = arg;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(p->cpu, &one);
    pthread_setaffinity_np(pthread_self(), sizeof one, &one);
    for (int i = 0; i < p->rounds; i++) {
        while (atomic_load_explicit(&p->flag, memory_order_acquire) != 2 * i + 1) {
        }
        for (size_t k = 0; p->buf && k < p->n; k += 16) p->sum += p->buf[k]; /* a line each */
        atomic_store_explicit(&p->flag, 2 * i + 2, memory_order_release);
    }
    return NULL;
}

static double line_transfer_ns(void)
{
    cpu_set_t all;
    int cpu[2];
    if (sched_getaffinity(0, sizeof all, &all) || allowed_cores(cpu, 2) < 2) return 0;
    static struct PingPong p;
    double v[5];
    int r = 0;
    pin_to(cpu[0]);
    for (; r < 5; r++) {
        atomic_store(&p.flag, 0);
        p.cpu = cpu[1], p.rounds = 20000;
        pthread_t t;
        if (pthread_create(&t, NULL, pong, &p)) break;
        double t0 = time_now();
        for (int i = 0; i < p.rounds; i++) {
            atomic_store_explicit(&p.flag, 2 * i + 1, memory_order_release);
            while (atomic_load_explicit(&p.flag, memory_order_acquire) != 2 * i + 2) {
            }
        }
        v[r] = (time_now() - t0) / p.rounds / 2 * 1e9;
        pthread_join(t, NULL);
    }
    sched_setaffinity(0, sizeof all, &all);
    return r ? bench_median(v, r) : 0; /* the rounds measured: a thread may fail to start */
}

/* buf = relu(src) by the ISA's kernel: the vector stores a kernel writes its output with
 * (memset's string stores take a line without its old contents, and cost less). */
static double write_us(float *buf, const float *src, size_t n)
{
    double t0 = time_now();
    kernels_get()->ew1->relu_f32(n, src, buf);
    return (time_now() - t0) * 1e6;
}

/* 64 KB written again by the core that wrote it, microseconds (medians): alone, and
 * after another core read it. A line that another core holds must be taken from it
 * first: what a job pays to write what the other thread read in the job before (a
 * Linear's input gradient cut otherwise than the convolution before reads it). */
static void rewrite_us(double *alone, double *after_read)
{
    *alone = *after_read = 0;
    cpu_set_t all;
    int cpu[2];
    if (sched_getaffinity(0, sizeof all, &all) || allowed_cores(cpu, 2) < 2) return;
    enum { ROUNDS = 200, N = 16384 };
    static struct PingPong p;
    float *buf = mem_alloc_aligned(2 * N * sizeof *buf, 64), *src = buf + N;
    double a[ROUNDS], b[ROUNDS];
    pin_to(cpu[0]);
    for (size_t k = 0; k < N; k++) src[k] = (float)(k % 7) - 3;
    write_us(buf, src, N);
    atomic_store(&p.flag, 0);
    p.cpu = cpu[1], p.rounds = ROUNDS, p.buf = buf, p.n = N;
    pthread_t t;
    if (!pthread_create(&t, NULL, pong, &p)) {
        for (int i = 0; i < ROUNDS; i++) {
            atomic_store_explicit(&p.flag, 2 * i + 1, memory_order_release);
            while (atomic_load_explicit(&p.flag, memory_order_acquire) != 2 * i + 2) {
            }
            b[i] = write_us(buf, src, N);
            a[i] = write_us(buf, src, N);
        }
        pthread_join(t, NULL);
        *alone = bench_median(a, ROUNDS), *after_read = bench_median(b, ROUNDS);
    }
    p.buf = NULL;
    sched_setaffinity(0, sizeof all, &all);
    mem_free(buf);
}

/* What the cores can give, printed before and after the table. */
static void machine_probe(struct Dataset *ds, int steps, int reps)
{
    core_speeds(ds, steps, reps);
    printf("  a cache line written on one core and read on another: %.0f ns one way\n", line_transfer_ns());
    double alone, after_read;
    rewrite_us(&alone, &after_read);
    if (after_read > 0)
        printf("  64 KB written again on one core: %.2f us; after another core read it: %.2f us\n", alone,
               after_read);
}

void bench_threads(int quick)
{
    int max_t = threads_available(), reps = quick ? 3 : 7, steps = quick ? 20 : 60;
    struct stat st;
    char csv[1024], bin[1024], err[1024];
    snprintf(csv, sizeof csv, "%s/fmnist_test_x.csv", bench_fmnist_dir());
    snprintf(bin, sizeof bin, "%s/fmnist_train.bin", bench_fmnist_dir());
    int have_data = stat(csv, &st) == 0;
    struct Dataset train = {0};
    if (stat(bin, &st) == 0 && dataset_load(&train, bin, bin, DT_FLOAT32, 10, err, sizeof err)) {
        printf("  %s\n", err);
        memset(&train, 0, sizeof train);
    }
    printf("[threads] the pool at 1 to %d threads, ISA %s, f32; speedup over 1 thread in the same run\n", max_t,
           isa_name(kernels_isa()));
    printf("  %-7s %8s %15s %15s %15s %14s %14s %13s %13s\n", "threads", "job us", "MLP b64 step", "MLP b256 step",
           "CNN b64 step", "MLP b64 epoch", "CNN b64 epoch", "CSV load", "infer");
    struct Dataset ds;
    random_dataset(&ds, 256 * 64);
    threads_set(1);
    if (max_t > 1) machine_probe(&ds, steps, reps);
    /* The epochs first, in rounds in which the thread counts take turns: on a virtual
     * machine whose speed drifts, a speedup then compares times taken seconds apart, not
     * minutes (this project's VM moved the MLP epoch's 2-thread figure by 0.3x between
     * runs when each count's epochs ran together). The CSV load and inference stay
     * together per count: taking turns with the epochs, their 2-thread figures fell
     * from 1.5-2.8x to 1.25-1.7x, for reasons not looked into. */
    int rounds = quick ? 1 : 3;
    double *turns = mem_alloc((size_t)max_t * 2 * (size_t)rounds * sizeof *turns); /* [n - 1][model][round] */
    for (int r = 0; r < rounds; r++)
        for (int n = 1; n <= max_t; n++) {
            double *t = turns + (size_t)(n - 1) * 2 * (size_t)rounds + r;
            threads_set(n);
            t[0] = epoch_s(mlp_cfg, &train, 1);
            t[rounds] = epoch_s(cnn_cfg, &train, 1);
        }
    double base[7] = {0};
    for (int n = 1; n <= max_t; n++) {
        threads_set(n);
        double *t = turns + (size_t)(n - 1) * 2 * (size_t)rounds;
        double f[7] = {step_us(mlp_cfg, 64, &ds, steps, reps), step_us(mlp_cfg, 256, &ds, steps, reps),
                       step_us(cnn_cfg, 64, &ds, steps / 2, reps), bench_median(t, rounds),
                       bench_median(t + rounds, rounds), 0, 0};
        if (have_data) load_and_infer(&f[5], &f[6], quick ? 2 : 3);
        if (n == 1) memcpy(base, f, sizeof base);
        printf("  %-7d %8.2f", n, n == 1 ? 0.0 : job_us());
        for (int k = 0; k < 3; k++) printf(" %6.0f us %5.2fx", f[k], f[k] > 0 ? base[k] / f[k] : 0);
        for (int k = 3; k < 7; k++)
            if (f[k] > 0) printf(" %6.3f s %5.2fx", f[k], base[k] / f[k]);
            else printf(" %14s", "-");
        printf("\n");
        fflush(stdout);
    }
    threads_set(1);
    if (max_t > 1) machine_probe(&ds, steps, reps); /* again: the machine can change during the run */
    if (!train.n) printf("  (epochs skipped: no %s; scripts/fmnist.sh %s)\n", bin, bench_fmnist_dir());
    if (!have_data) printf("  (CSV load and infer skipped: no %s; scripts/fmnist.sh %s)\n", csv, bench_fmnist_dir());
    mem_free(turns);
    dataset_free(&ds);
    if (train.n) dataset_free(&train);
}
