/* Linear: y = x W^T + b over the batch; weight (out x in), bias (out). An input of more
 * than two dimensions (a conv output) is read flattened per sample. */
#include "nn_layers.h"
#include "generic.h"
#include "kernels/dispatch.h"
#include "kernels/ew.h"
#include "math_kernels.h"
#include "threads.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* The bias gradient: gb[j] (+)= the sum over rows of g[r][j], each column summed in row
 * order, so any cut into column ranges gives the same bits. One task per range of
 * BIAS_COLS_MIN columns or more, on the ISA's own kernels: a call per row through the
 * parallel table would pay a job's bookkeeping rows times. */
#define BIAS_COLS_MIN 64
/* Below this much gradient the sum runs on the calling thread, which wrote the gradient
 * (the input-gradient gemm before it is one part). At 2 threads the MLP's 64 x 128 took
 * 1.4 us there against 2.0-2.5 us as a 2-task job (one thread: 0.4 us), 256 x 128 5.0
 * against 6.4-6.8 us: a task on the other core reads its half from this one. */
#define BIAS_PAR_BYTES ((size_t)256 << 10)

struct BiasJob {
    const void *g;
    void *gb;
    size_t rows, n, per_task;
    int overwrite, f64;
};

static void bias_task(void *ctx, size_t task, int worker)
{
    (void)worker;
    const struct BiasJob *j = ctx;
    const struct EwKernels *k = kernels_get()->ew1;
    size_t c0 = task * j->per_task, m = j->n - c0 < j->per_task ? j->n - c0 : j->per_task;
    size_t es = j->f64 ? sizeof(double) : sizeof(float);
    const char *g = (const char *)j->g + c0 * es;
    char *gb = (char *)j->gb + c0 * es;
    if (j->overwrite && j->rows) memcpy(gb, g, m * es);
    for (size_t r = j->overwrite ? 1 : 0; r < j->rows; r++) {
        if (j->f64) k->axpy_f64(m, 1.0, (const double *)(g + r * j->n * es), (double *)gb);
        else k->axpy_f32(m, 1.0f, (const float *)(g + r * j->n * es), (float *)gb);
    }
}

static void grad_bias_rows(const struct Tensor *g, size_t rows, size_t n, struct Tensor *gb, int overwrite)
{
    struct BiasJob j = {.g = g->data, .gb = gb->data, .rows = rows, .n = n, .overwrite = overwrite,
                        .f64 = g->dtype == DT_FLOAT64};
    size_t bytes = rows * n * dtype_size(g->dtype), per_col = rows * dtype_size(g->dtype);
    size_t tasks = bytes < BIAS_PAR_BYTES ? 1 : par_tasks(bytes, (size_t)BIAS_COLS_MIN * per_col);
    j.per_task = (n + tasks - 1) / tasks;
    j.per_task = (j.per_task + 15) / 16 * 16; /* whole cache lines of gb per task */
    par_run((n + j.per_task - 1) / j.per_task, bias_task, &j);
}

/* The weight gradient's rows as the gemm finishes them, to the weight's GradHook. */
struct WeightRows {
    struct GemmRows rows; /* first: the gemm's view */
    const struct GradHook *hook;
    size_t in;            /* elements per row */
};

static void weight_rows_done(const struct GemmRows *rows, size_t row, size_t n)
{
    const struct WeightRows *w = (const struct WeightRows *)rows;
    w->hook->update(w->hook, (uint64_t)row * w->in, (uint64_t)n * w->in);
}

static size_t gcd_sz(size_t a, size_t b)
{
    while (b) {
        size_t t = a % b;
        a = b, b = t;
    }
    return a;
}

static void linear_backward(struct Node *self)
{
    struct Node *x = self->parents[0], *w = self->parents[1], *b = self->n_parents > 2 ? self->parents[2] : NULL;
    const struct Tensor *g = self->grad;
    size_t B = g->shape[0], out = g->shape[1], in = w->value->shape[1];
    uint32_t dt = g->dtype;
    if (node_wants_grad(x)) { /* dx += g W (dx = g W for a sole consumer: nothing to zero) */
        int overwrite;
        struct Tensor *gx = node_grad_begin(x, &overwrite);
        /* x a fused Linear + ReLU whose gradient this writes whole: its mask goes on here,
         * by each part of the gemm on its block, and x's backward is told so */
        const void *mask = NULL;
        if (x->op == OP_LINEAR_RELU) {
            x->grad_masked = (uint32_t)overwrite;
            mask = overwrite ? x->value->data : NULL;
        }
        /* x a convolution's output: its rows (samples) cut as the convolution's backward
         * reads them, so that each lands on the thread that reads it. A line that the
         * other core has read takes an invalidation to write: on a 2-vCPU VM, writing 64 KB
         * after the other core read it took 11 us, against 0.5 us (6 against 121 GB/s). */
        size_t grain = x->value->ndim > 2 ? nn_conv_chunk(B) : 0;
        DT_CALL(dt, gemm_mask, 0, 0, B, in, out, 1, g->data, out, w->value->data, in, overwrite ? 0 : 1, gx->data,
                in, mask, grain);
    }
    if (node_wants_grad(w)) { /* dW += g^T x (=, after node_grad_invalidate) */
        int ow;
        struct Tensor *gw = node_grad_begin(w, &ow);
        /* Written whole, W's update goes with each part of the gemm, the part's rows of
         * the gradient still in cache: rows from multiples of GRAD_HOOK_ALIGN elements.
         * W's last reader is the input gradient's gemm above, which must come first. */
        struct WeightRows wr = {{weight_rows_done, GRAD_HOOK_ALIGN / gcd_sz(in, GRAD_HOOK_ALIGN), 0}, w->grad_hook, in};
        int fuse = ow && w->grad_hook;
        DT_CALL(dt, gemm_copies, 1, 0, out, in, B, 1, g->data, out, x->value->data, in, x->copies, ow ? 0 : 1,
                gw->data, in, fuse ? &wr.rows : NULL);
        if (wr.rows.told) w->grad_hook = NULL;
    }
    if (b && node_wants_grad(b)) {
        int ow;
        struct Tensor *gb = node_grad_begin(b, &ow);
        grad_bias_rows(g, B, out, gb, ow);
    }
}

/* The fused ReLU's backward: the gradient masked by y > 0 in place (y > 0 exactly where
 * the Linear's output is), unless the Linear that consumed y did so as it wrote the
 * gradient; then the Linear's. Masking twice changes nothing, so a second backward that
 * adds to the gradient is masked alike. */
static void linear_relu_backward(struct Node *self)
{
    if (self->grad_masked) {
        linear_backward(self);
        return;
    }
    size_t n = tensor_numel(self->value);
    const struct EwKernels *k = kernels_get()->ew;
    const void *y = self->value->data;
    void *g = self->grad->data;
    if (self->value->dtype == DT_FLOAT32) k->relu_bwd_set_f32(n, y, g, g);
    else k->relu_bwd_set_f64(n, y, g, g);
    linear_backward(self);
}

static struct Node *linear_op(struct Node *x, struct Node *w, struct Node *b, int relu)
{
    char sx[96], sw[96];
    struct Tensor *X = x->value, *W = w->value;
    uint64_t B = X->ndim ? X->shape[0] : 0, in = B ? tensor_numel(X) / B : 0;
    if (X->ndim < 2 || W->ndim != 2 || W->shape[1] != in || X->dtype != W->dtype ||
        (b && (b->value->ndim != 1 || b->value->shape[0] != W->shape[0] || b->value->dtype != W->dtype)))
        panic("linear: input %s (%llu features per sample) does not fit weight %s",
              tensor_shape_str(X, sx, sizeof sx), (unsigned long long)in, tensor_shape_str(W, sw, sizeof sw));
    CHECK(tensor_is_contiguous(X), "linear input must be contiguous");
    uint64_t out = W->shape[0], shape[2] = {B, out};
    struct Node *parents[3] = {x, w, b};
    struct Node *y = node_new(node_graph(x, w), relu ? OP_LINEAR_RELU : OP_LINEAR, 2, shape, X->dtype, b ? 3 : 2,
                              parents, relu ? linear_relu_backward : linear_backward);
    DT_CALL(X->dtype, gemm_bias_copies, 0, 1, B, out, in, 1, X->data, in, x->copies, W->data, in,
            b ? b->value->data : NULL, relu, y->value->data, out);
    return y;
}

struct Node *nn_linear(struct Node *x, struct Node *w, struct Node *b) { return linear_op(x, w, b, 0); }

struct Node *nn_linear_relu(struct Node *x, struct Node *w, struct Node *b) { return linear_op(x, w, b, 1); }

static void linear_forward(struct Module *m, struct Node *input, struct Node **output)
{
    *output = nn_linear(input, m->param_nodes[0], m->param_nodes[1]);
}

static int linear_shape(const struct LayerSpec *l, const struct LayerShape *in, int first, struct LayerShape *out,
                        uint64_t *n_params, char *err, size_t errlen)
{
    char note[80];
    uint64_t n_in = layer_shape_numel(in), w;
    if (l->args.linear.in != n_in) {
        layer_shape_note(note, sizeof note, in);
        return err_set(err, errlen, "Linear expects %llu inputs but %s %llu%s", (unsigned long long)l->args.linear.in,
                       layer_source(first), (unsigned long long)n_in, note);
    }
    if (__builtin_mul_overflow(l->args.linear.in, l->args.linear.out, &w) || w > LAYER_MAX_ELEMS)
        return err_set(err, errlen, "Linear %llux%llu is too large (more than %llu weights)",
                       (unsigned long long)l->args.linear.in, (unsigned long long)l->args.linear.out, LAYER_MAX_ELEMS);
    *n_params = w + l->args.linear.out;
    *out = (struct LayerShape){1, {l->args.linear.out, 0, 0}};
    return 0;
}

static struct Module *linear_create(const struct LayerSpec *l, uint32_t dtype, struct Rng *rng)
{
    uint64_t in = l->args.linear.in, out = l->args.linear.out, ws[2] = {out, in};
    CHECK(in > 0 && out > 0, "Linear sizes must be positive");
    struct Module *m = module_new(l);
    double bound = 1.0 / sqrt((double)in);
    module_set_param(m, 0, tensor_create(2, ws, dtype), bound, rng);
    module_set_param(m, 1, tensor_create(1, &out, dtype), bound, rng);
    return m;
}

struct Module *nn_linear_create(uint64_t in, uint64_t out, uint32_t dtype, struct Rng *rng)
{
    struct LayerSpec l = {.kind = MOD_LINEAR, .args.linear = {in, out}};
    return linear_create(&l, dtype, rng);
}

static const struct LayerArgDef linear_args[] = {{"in", 1, LAYER_ARG_COUNT, 0}, {"out", 1, LAYER_ARG_COUNT, 0}};
static const char *const weight_bias[] = {"weight", "bias"};

const struct LayerType layer_linear = {
    .name = "Linear", .prefix = "linear", .n_args = 2, .args = linear_args, .n_params = 2,
    .param_names = weight_bias, .shape = linear_shape, .create = linear_create, .forward = linear_forward,
    .backward = linear_backward,
};
