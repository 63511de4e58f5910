/* nn_layers: Module, Linear and Conv2d.
 *
 * Linear(in, out): weight (out x in), bias (out); y = x W^T + b for x (B x in).
 *   An input of more than two dimensions (a conv output, B x C x H x W) is read
 *   flattened per sample.
 * Conv2d(in_ch, out_ch, kh, kw, stride, padding): weight (out_ch, in_ch, kh, kw),
 *   bias (out_ch); NCHW input and output, zero padding, cross-correlation (PyTorch's
 *   convention); H_out = (H + 2*padding - kh) / stride + 1. The bias is broadcast over
 *   the batch and the spatial positions (the only broadcast in minidl).
 * Initialisation as PyTorch's default: weight and bias uniform in +-1/sqrt(fan_in),
 * fan_in = in (Linear) or in_ch*kh*kw (Conv2d), drawn from the caller's generator. */
#ifndef MINIDL_NN_LAYERS_H
#define MINIDL_NN_LAYERS_H

#include "autograd.h"
#include "utils.h"

enum ModuleKind { MOD_LINEAR, MOD_CONV2D, MOD_RELU, MOD_SIGMOID, MOD_TANH, MOD_SOFTMAX, MOD_COUNT };

struct Module {
    uint32_t n_params;
    struct Tensor **params;         /* weight, bias */
    struct Node **param_nodes;      /* persistent nodes with gradients */
    void (*forward)(struct Module *, struct Node *input, struct Node **output);
    uint32_t kind;                  /* enum ModuleKind */
    char name[32];                  /* "linear1", "conv2d1", "relu" */
    uint64_t cfg[6];                /* Linear: in, out; Conv2d: in_ch, out_ch, kh, kw, stride, padding */
};

struct Module *nn_linear_create(uint64_t in, uint64_t out, uint32_t dtype, struct Rng *rng);
struct Module *nn_conv2d_create(uint64_t in_ch, uint64_t out_ch, uint64_t kh, uint64_t kw,
                                uint64_t stride, uint64_t padding, uint32_t dtype, struct Rng *rng);
void module_free(struct Module *m);   /* any kind, NULL ok */

/* The graph ops behind the layers (also usable directly). */
struct Node *nn_linear(struct Node *x, struct Node *w, struct Node *b);
struct Node *nn_conv2d(struct Node *x, struct Node *w, struct Node *b, uint64_t stride, uint64_t padding);
/* relu(nn_conv2d(...)) as one op (OP_CONV2D_RELU), bit-identical to the two: the ReLU is
 * applied where the convolution stores its output, and its mask (y > 0) where the
 * backward reads the gradient, so the ReLU's own tensors and passes go away. */
struct Node *nn_conv2d_relu(struct Node *x, struct Node *w, struct Node *b, uint64_t stride, uint64_t padding);
/* The naive loop convolution, kept as the reference the fast path is tested against.
 * x (N,C,H,W), w (O,C,kh,kw), b (O) or NULL, out (N,O,Ho,Wo); contiguous, one dtype. */
void conv2d_forward_naive(const struct Tensor *x, const struct Tensor *w, const struct Tensor *b,
                          uint64_t stride, uint64_t padding, struct Tensor *out);

#endif
