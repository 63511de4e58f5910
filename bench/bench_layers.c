/* bench_layers: pooling and batch normalisation, forward and backward, at the shapes of
 * configs/fmnist_lenet.ini (batch 64) and at a shape beyond the caches, each beside a
 * memcpy of the same bytes (the op's input, timed just before it): "x copy" is the op's
 * GB/s (bytes its input and output hold, read + written) over memcpy's (read + write). */
#include "bench.h"
#include "math_kernels.h"
#include "mem.h"
#include "nn_layers.h"
#include "utils.h"

#include <stdio.h>
#include <string.h>

enum { L_MAXPOOL, L_AVGPOOL, L_BN2D, L_BN2D_RELU, L_COUNT };
static const char *const names[L_COUNT] = {"maxpool2d 2x2", "avgpool2d 2x2", "batchnorm2d", "batchnorm2d+relu"};

struct Run { struct Graph g; struct Tensor *x, *seed; struct Node *w, *b; struct Tensor *rm, *rv; };

/* One forward (and backward): the op on a graph input that wants a gradient. */
static double op_once(struct Run *r, int op, int backward_too, double *bytes)
{
    graph_reset(&r->g);
    double t0 = time_now();
    struct Node *x = graph_input(&r->g, r->x, backward_too), *y;
    if (op == L_MAXPOOL) y = nn_maxpool2d(x, 2, 2);
    else if (op == L_AVGPOOL) y = nn_avgpool2d(x, 2, 2);
    else y = nn_batchnorm(x, graph_attach(&r->g, r->w), graph_attach(&r->g, r->b), r->rm, r->rv, 1, op == L_BN2D_RELU);
    double t1 = time_now();
    size_t es = dtype_size(r->x->dtype), in = tensor_numel(r->x) * es, out = tensor_numel(y->value) * es;
    if (!backward_too) {
        *bytes = (double)(in + out);
        return t1 - t0;
    }
    y->grad = tensor_header_in(&r->g.arena, 4, y->value->shape, r->x->dtype, r->seed->data);
    t0 = time_now();
    y->backward_fn(y);
    t1 = time_now();
    /* backward: reads g (and x for batchnorm), writes gx */
    *bytes = (double)(out + in + (op >= L_BN2D ? in : 0));
    return t1 - t0;
}

static void row(const char *what, int op, int bwd, uint64_t N, uint64_t C, uint64_t H, int runs)
{
    struct Run r;
    graph_init(&r.g);
    uint64_t shape[4] = {N, C, H, H};
    r.x = tensor_create(4, shape, DT_FLOAT32);
    r.seed = tensor_create(4, shape, DT_FLOAT32);
    struct Rng rng;
    rng_seed(&rng, 1);
    for (uint64_t i = 0; i < tensor_numel(r.x); i++)
        tensor_f32(r.x)[i] = (float)rng_uniform(&rng) - 0.5f, tensor_f32(r.seed)[i] = (float)rng_uniform(&rng);
    struct Tensor *w = tensor_create(1, &C, DT_FLOAT32), *b = tensor_zeros(1, &C, DT_FLOAT32);
    tensor_fill(w, 1);
    r.w = node_from_tensor(w, 1), r.b = node_from_tensor(b, 1);
    r.rm = tensor_zeros(1, &C, DT_FLOAT32), r.rv = tensor_zeros(1, &C, DT_FLOAT32);
    size_t in = tensor_numel(r.x) * sizeof(float);
    char *dst = mem_alloc_aligned(in, 64);
    double t[16], c[16], bytes = 0;
    op_once(&r, op, bwd, &bytes);
    for (int i = 0; i < runs; i++) {
        double t0 = time_now();
        memcpy(dst, r.x->data, in);
        c[i] = 2.0 * (double)in / (time_now() - t0) / 1e9;
        t[i] = bytes / op_once(&r, op, bwd, &bytes) / 1e9;
    }
    double gbs = bench_median(t, runs), cps = bench_median(c, runs);
    printf("%-18s %-8s %-16s %8.3f ms %7.1f GB/s   copy %6.1f GB/s   x copy %5.2f\n", names[op], bwd ? "backward" : "forward",
           what, bytes / gbs / 1e6, gbs, cps, gbs / cps);
    mem_free(dst);
    node_free(r.w), node_free(r.b);
    tensor_free(w), tensor_free(b), tensor_free(r.rm), tensor_free(r.rv), tensor_free(r.x), tensor_free(r.seed);
    graph_free(&r.g);
}

void bench_layers(int quick)
{
    int runs = quick ? 5 : 15;
    printf("[layers] pooling and batch normalisation, float32, single thread, %s path, median of %d runs;\n"
           "GB/s counts the bytes of the op's inputs and outputs (read + written); copy: memcpy of the\n"
           "op's input just before each run (read + write); x copy: the op's GB/s over the copy's\n",
           isa_name(kernels_isa()), runs);
    static const struct { const char *what; uint64_t N, C, H; } shapes[] = {
        {"64x16x28x28", 64, 16, 28}, {"64x32x14x14", 64, 32, 14}, {"64x64x112x112", 64, 64, 112}};
    for (int op = 0; op < L_COUNT; op++)
        for (int bwd = 0; bwd < 2; bwd++)
            for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
                row(shapes[s].what, op, bwd, shapes[s].N, shapes[s].C, shapes[s].H, quick && s == 2 ? 3 : runs);
}
