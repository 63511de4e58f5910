/* nn_layers: Module, the layer table's rows, and the graph ops of Linear and Conv2d.
 *
 * Linear(in, out): weight (out x in), bias (out); y = x W^T + b for x (B x in).
 *   An input of more than two dimensions (a conv output, B x C x H x W) is read
 *   flattened per sample.
 * Conv2d(in_ch, out_ch, kh, kw, stride, padding): weight (out_ch, in_ch, kh, kw),
 *   bias (out_ch); NCHW input and output, zero padding, cross-correlation (PyTorch's
 *   convention); H_out = (H + 2*padding - kh) / stride + 1. The bias is broadcast over
 *   the batch and the spatial positions (the only broadcast in minidl).
 * Initialisation as PyTorch's default: weight and bias uniform in +-1/sqrt(fan_in),
 * fan_in = in (Linear) or in_ch*kh*kw (Conv2d), drawn from the caller's generator.
 *
 * MaxPool2d, AvgPool2d, Dropout, BatchNorm1d and BatchNorm2d: PyTorch's semantics; their
 * graph ops are declared below, their layers are in src/layers/pool2d.c, dropout.c and
 * batchnorm.c.
 *
 * Each layer kind lives in its own file under src/layers/ (see layers.h). */
#ifndef MINIDL_NN_LAYERS_H
#define MINIDL_NN_LAYERS_H

#include "autograd.h"
#include "layers.h"
#include "utils.h"

#define MODULE_MAX_PARAMS 4

/* What a layer's forward may read beyond its input: whether the network is training
 * (batch statistics, dropout) or running inference, and the run's seeded generator
 * (dropout masks), so a seeded run is reproducible. The model owns one. */
struct LayerRun {
    int training;
    struct Rng rng;
};

struct Module {
    uint32_t n_params;
    struct Tensor **params;         /* in the order of the row's param_names */
    struct Node **param_nodes;      /* persistent nodes with gradients */
    void (*forward)(struct Module *, struct Node *input, struct Node **output);
    uint32_t kind;                  /* enum ModuleKind */
    char name[32];                  /* "linear1", "conv2d1", "relu1" (the model numbers them) */
    struct LayerSpec spec;          /* what it was built from */
    uint32_t n_state;
    struct Tensor **state;          /* in the order of the row's state_names; not trained */
    struct LayerRun *run;           /* the model's (NULL for a module made alone: training, no generator) */
};

/* Builds the module of a spec through its table row. */
struct Module *module_create(const struct LayerSpec *l, uint32_t dtype, struct Rng *rng);
void module_free(struct Module *m);   /* any kind, NULL ok */
uint64_t module_param_count(const struct Module *m);

/* For the layer files: a module of l's kind, named by its prefix, with the row's
 * parameter slots and forward. */
struct Module *module_new(const struct LayerSpec *l);
/* Sets parameter i of m to t (taken over), uniform in +-bound from rng, with its node. */
void module_set_param(struct Module *m, uint32_t i, struct Tensor *t, double bound, struct Rng *rng);
/* Sets state tensor i of m to t (taken over, values as given). */
void module_set_state(struct Module *m, uint32_t i, struct Tensor *t);
/* Is the module's network training (1 for a module made alone)? */
static inline int module_training(const struct Module *m) { return !m->run || m->run->training; }
/* The shape rule of the layers that keep their input's shape. */
int layer_shape_same(const struct LayerSpec *l, const struct LayerShape *in, int first, struct LayerShape *out,
                     uint64_t *n_params, char *err, size_t errlen);

/* The rows, one per file under src/layers/. */
extern const struct LayerType layer_linear, layer_conv2d, layer_relu, layer_sigmoid, layer_tanh, layer_softmax,
    layer_maxpool2d, layer_avgpool2d, layer_dropout, layer_batchnorm1d, layer_batchnorm2d;

/* Shorthands for tests and benchmarks: the module of one Linear or Conv2d spec. */
struct Module *nn_linear_create(uint64_t in, uint64_t out, uint32_t dtype, struct Rng *rng);
struct Module *nn_conv2d_create(uint64_t in_ch, uint64_t out_ch, uint64_t kh, uint64_t kw,
                                uint64_t stride, uint64_t padding, uint32_t dtype, struct Rng *rng);

/* The graph ops behind the layers (also usable directly). */
struct Node *nn_linear(struct Node *x, struct Node *w, struct Node *b);
/* relu(nn_linear(...)) as one op (OP_LINEAR_RELU), bit-identical to the two: the bias
 * and the ReLU are applied where the gemm stores its output (gemm_bias), and the mask
 * (y > 0) to the gradient in place before the Linear's backward. */
struct Node *nn_linear_relu(struct Node *x, struct Node *w, struct Node *b);
struct Node *nn_conv2d(struct Node *x, struct Node *w, struct Node *b, uint64_t stride, uint64_t padding);
/* relu(nn_conv2d(...)) as one op (OP_CONV2D_RELU), bit-identical to the two: the ReLU is
 * applied where the convolution stores its output, and its mask (y > 0) where the
 * backward reads the gradient, so the ReLU's own tensors and passes go away. */
struct Node *nn_conv2d_relu(struct Node *x, struct Node *w, struct Node *b, uint64_t stride, uint64_t padding);
/* Samples per task of a convolution's backward pass over a batch of N: a function of N
 * alone (its weight gradient sums by these chunks). A Linear fed by a convolution cuts
 * its input gradient the same way, so each thread writes the samples it then reads. */
size_t nn_conv_chunk(uint64_t N);
/* Pooling over k x k windows at stride s of an NCHW input (no padding, floor mode):
 * (N, C, H, W) -> (N, C, (H-k)/s+1, (W-k)/s+1). Max pooling's gradient goes to the first
 * maximum of each window (the last NaN if any), as PyTorch's. */
struct Node *nn_maxpool2d(struct Node *x, uint64_t k, uint64_t stride);
struct Node *nn_avgpool2d(struct Node *x, uint64_t k, uint64_t stride);
/* Inverted dropout: y = x * mask, the mask 1/(1-p) with probability 1-p and 0 otherwise,
 * one rng_uniform draw per element in order (p == 0: x itself). nn_dropout_masked takes
 * the mask (x's shape and dtype; it must outlive the step). */
struct Node *nn_dropout(struct Node *x, double p, struct Rng *rng);
struct Node *nn_dropout_masked(struct Node *x, const struct Tensor *mask);
/* PyTorch's BatchNorm defaults, which minidl's BatchNorm layers always use: running =
 * (1 - momentum) running + momentum batch, and var + eps under the square root. */
#define NN_BATCHNORM_MOMENTUM 0.1
#define NN_BATCHNORM_EPS 1e-5
/* Batch normalisation over the channels of x (N, C) or (N, C, H, W) (momentum 0.1, eps
 * 1e-5): w, b, running_mean, running_var (C). training: batch statistics (biased
 * variance), differentiated through, and the running statistics (when not NULL) updated
 * with the unbiased variance; else the running statistics. relu: max(0, y) in the same
 * op (OP_BATCHNORM_RELU), its mask applied where the backward reads the gradient. */
struct Node *nn_batchnorm(struct Node *x, struct Node *w, struct Node *b, struct Tensor *running_mean,
                          struct Tensor *running_var, int training, int relu);
/* Inference's batchnorm as y = scale[c] x + shift[c] (C values each), for folding it into
 * the layer before it and for the exporters: the same numbers as nn_batchnorm's. */
void nn_batchnorm_fold(const struct Tensor *weight, const struct Tensor *bias, const struct Tensor *running_mean,
                       const struct Tensor *running_var, double *scale, double *shift);
/* The naive loop convolution, kept as the reference the fast path is tested against.
 * x (N,C,H,W), w (O,C,kh,kw), b (O) or NULL, out (N,O,Ho,Wo); contiguous, one dtype. */
void conv2d_forward_naive(const struct Tensor *x, const struct Tensor *w, const struct Tensor *b,
                          uint64_t stride, uint64_t padding, struct Tensor *out);

#endif
