/* bench step: one training step (forward + loss, zero_grad + backward; no optimizer)
 * of the MLP 784-128-10 and of the CNN Conv2d(1,8,3,s1,p1) ReLU Conv2d(8,16,3,s2,p1)
 * ReLU Linear(3136,10), f32, batch 64, single-threaded, on the default ISA path. */
#include "bench.h"
#include "activations.h"
#include "losses.h"
#include "train.h"
#include "math_kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct StepNet { const char *name; struct Module *m[6]; uint32_t n; uint64_t in_shape[4]; uint32_t in_ndim; double flops_per_sample; };

static void fill(struct Tensor *t, struct Rng *r, double scale)
{
    for (uint64_t i = 0; i < tensor_numel(t); i++) tensor_f32(t)[i] = (float)(scale * rng_uniform(r));
}

static void time_net(struct StepNet *net, uint64_t batch, int reps)
{
    struct Rng r;
    rng_seed(&r, 11);
    uint64_t shape[4] = {batch, net->in_shape[1], net->in_shape[2], net->in_shape[3]}, ys[2] = {batch, 1};
    struct Tensor *x = tensor_create(net->in_ndim, shape, DT_FLOAT32), *y = tensor_create(2, ys, DT_FLOAT32);
    fill(x, &r, 1.0);
    uint32_t cls[256]; /* the largest batch timed */
    for (uint64_t i = 0; i < batch; i++) tensor_f32(y)[i] = (float)(cls[i] = (uint32_t)rng_below(&r, 10));
    struct Batch batch_t = {.cls = cls};
    struct Graph g;
    graph_init(&g);
    double fwd[64], bwd[64], tot[64];
    int inner = 20;
    for (int rep = -1; rep < reps; rep++) {
        double tf = 0, tb = 0;
        for (int k = 0; k < inner; k++) {
            double t0 = time_now();
            struct Node *l = train_loss_modules(net->m, net->n, graph_input(&g, x, 0), &batch_t, LOSS_CROSS_ENTROPY, NULL);
            double t1 = time_now();
            zero_grad(l);
            backward(l);
            double t2 = time_now();
            graph_reset(&g);
            tf += t1 - t0, tb += t2 - t1;
        }
        if (rep < 0) continue; /* warm-up: arena sizing, caches */
        fwd[rep] = tf / inner * 1e6, bwd[rep] = tb / inner * 1e6, tot[rep] = (tf + tb) / inner * 1e6;
    }
    double f = bench_median(fwd, reps), b = bench_median(bwd, reps), t = bench_median(tot, reps);
    double flops = net->flops_per_sample * (double)batch;
    printf("%-5s batch %3llu  forward+loss %8.1f us  zero_grad+backward %8.1f us  step %8.1f us  %7.2f MFLOP  %6.1f GFLOP/s\n",
           net->name, (unsigned long long)batch, f, b, t, flops / 1e6, flops / (t * 1e-6) / 1e9);
    graph_free(&g);
    tensor_free(x), tensor_free(y);
}

void bench_step(int quick)
{
    int reps = quick ? 3 : 9;
    struct Rng rng;
    rng_seed(&rng, 1);
    printf("[step] one training step without optimizer, f32, single thread, ISA %s (median of %d x 20 steps)\n",
           isa_name(kernels_isa()), reps);
    struct StepNet mlp = {"MLP", {nn_linear_create(784, 128, DT_FLOAT32, &rng), act_module_create(MOD_RELU),
                                  nn_linear_create(128, 10, DT_FLOAT32, &rng), act_module_create(MOD_SOFTMAX)},
                          4, {0, 784, 1, 1}, 2, 409088};
    struct StepNet cnn = {"CNN", {nn_conv2d_create(1, 8, 3, 3, 1, 1, DT_FLOAT32, &rng), act_module_create(MOD_RELU),
                                  nn_conv2d_create(8, 16, 3, 3, 2, 1, DT_FLOAT32, &rng), act_module_create(MOD_RELU),
                                  nn_linear_create(3136, 10, DT_FLOAT32, &rng)},
                          5, {0, 1, 28, 28}, 4, 1768704};
    /* MINIDL_BENCH_STEP=cnn times the CNN alone (A/B runs of the conv kernels) */
    const char *only = getenv("MINIDL_BENCH_STEP");
    int cnn_only = only && strcmp(only, "cnn") == 0;
    if (!cnn_only) time_net(&mlp, 64, reps);
    if (!cnn_only) time_net(&mlp, 256, reps);
    time_net(&cnn, 64, reps);
    printf("targets (issue 3): MLP forward+backward <= 130 us, CNN <= 700 us at batch 64\n");
    for (uint32_t i = 0; i < mlp.n; i++) module_free(mlp.m[i]);
    for (uint32_t i = 0; i < cnn.n; i++) module_free(cnn.m[i]);
}
