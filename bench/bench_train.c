/* bench train: whole training epochs of configs/fmnist_mlp.ini and fmnist_cnn.ini on
 * Fashion-MNIST, in process, through the same library calls as the train program
 * (config, model_init, dataset_load, normalisation, Adam, shuffle, the step loop), so the
 * figure is the "seconds per epoch with Adam and shuffling included".
 *
 * The data comes from scripts/fmnist.sh DIR (bench_fmnist_dir); without it the part
 * says how to make it and skips. quick: 200 steps, extrapolated to the epoch. */
#include "bench.h"
#include "train.h"
#include "dataset.h"
#include "losses.h"
#include "math_kernels.h"
#include "mem.h"
#include "optimizers.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

void bench_train(int quick);

#define QUICK_STEPS 200

/* CPU seconds of this process: on a machine shared with other work, the wall time
 * includes waiting for the core, the CPU time does not. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Path of fmnist_train.bin in the data directory; 0 if it is not there. */
static int find_data(char *path, size_t len)
{
    struct stat st;
    snprintf(path, len, "%s/fmnist_train.bin", bench_fmnist_dir());
    return stat(path, &st) == 0;
}

/* Loads the data for cfg and normalises it as train does. Returns 0, or -1 after a message. */
static int load_data(struct Dataset *ds, struct Model *net, const char *path)
{
    char err[1024];
    if (dataset_load(ds, path, path, net->cfg.dtype, net->cfg.output_dim, err, sizeof err)) {
        printf("  %s\n", err);
        return -1;
    }
    if (net->cfg.normalize != NORM_NONE) {
        struct Tensor *shift, *scale;
        dataset_norm_stats(ds, net->cfg.normalize, &shift, &scale);
        dataset_normalize(ds, shift, scale);
        model_set_norm(net, shift, scale);
    }
    return 0;
}

/* The first `steps` steps of epoch 1 through the same function as train; returns wall
 * seconds, with CPU seconds in *cpu and the mean loss in *loss. */
static double run_steps(struct Model *net, struct Dataset *ds, uint64_t steps, double *cpu, double *loss)
{
    struct Trainer tr;
    struct EpochStats st;
    train_init(&tr, net);
    double t0 = time_now(), c0 = cpu_now();
    if (train_epoch(&tr, ds, 1, steps, NULL, NULL, &st)) printf("  the loss diverged\n");
    double dt = time_now() - t0;
    *cpu = cpu_now() - c0;
    train_free(&tr);
    *loss = st.loss;
    return dt;
}

static void bench_config(const char *name, const char *config, const char *data, int quick, double target)
{
    struct TrainConfig cfg;
    char err[1024];
    if (config_parse_file(config, &cfg, err, sizeof err)) {
        printf("  %s (run from the repository root)\n", err);
        return;
    }
    struct Model net;
    struct Dataset ds;
    model_init(&net, &cfg, cfg.seed);
    if (load_data(&ds, &net, data) == 0) {
        uint64_t nb = dataset_num_batches(&ds, cfg.batch_size), steps = quick && nb > QUICK_STEPS ? QUICK_STEPS : nb;
        double cpu, loss, scale = (double)nb / (double)steps;
        double dt = run_steps(&net, &ds, steps, &cpu, &loss) * scale;
        printf("  %-4s %6.3f s/epoch (cpu %.3f s)  %7.0f samples/s  %4llu steps of %llu, batch %llu%s  "
               "mean loss %.4f  (target <= %.2f s)\n", name, dt, cpu * scale, (double)ds.n / dt,
               (unsigned long long)steps, (unsigned long long)nb,
               (unsigned long long)cfg.batch_size, steps < nb ? ", extrapolated" : "", loss, target);
        dataset_free(&ds);
    }
    model_free(&net);
}

void bench_train(int quick)
{
    char data[1024];
    printf("[train] one epoch of Fashion-MNIST as train runs it (Adam, shuffled, f32), single thread, ISA %s\n",
           isa_name(kernels_isa()));
    if (!find_data(data, sizeof data)) {
        printf("  skipped: no %s (make; scripts/fmnist.sh %s, or set MINIDL_FMNIST_DIR)\n", data, bench_fmnist_dir());
        return;
    }
    bench_config("MLP", "configs/fmnist_mlp.ini", data, quick, 0.15);
    bench_config("CNN", "configs/fmnist_cnn.ini", data, quick, 0.8);
    printf("  PyTorch 1.13, one core, batch 64 (../shared/bench): MLP 0.33 s, CNN 2.0 s; "
           "scripts/compare_torch.sh measures both sides in one run\n");
}
