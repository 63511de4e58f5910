/* Autograd, layers, activations and losses: numeric gradient checks for every op
 * (float64, central differences), known values, and graph mechanics. */
#include "test.h"
#include "gradcheck.h"
#include "activations.h"
#include "losses.h"
#include "train.h"
#include "math_kernels.h"
#include "mem.h"

#include <stdio.h>
#include <string.h>

#define GC_EPS 1e-6
#define GC_TOL 1e-6

/* The op under test reads its inputs from ctx. */
struct OpCase {
    struct Node *in[3];
    int n_in;
    int which;      /* op selector */
    uint64_t a, b;  /* op arguments (conv stride, padding) */
    const uint32_t *cls;
};

enum { C_ADD, C_SUB, C_MUL, C_MATMUL, C_RELU, C_SIGMOID, C_TANH, C_SOFTMAX, C_LINEAR, C_CONV, C_MSE, C_CE, C_RESHAPE };

static struct Node *build_op(struct Graph *g, void *ctx)
{
    struct OpCase *c = ctx;
    struct Node *x[3] = {NULL, NULL, NULL};
    for (int i = 0; i < c->n_in; i++) x[i] = c->in[i] ? graph_attach(g, c->in[i]) : NULL;
    switch (c->which) {
    case C_ADD: return ag_add(x[0], x[1]);
    case C_SUB: return ag_sub(x[0], x[1]);
    case C_MUL: return ag_mul(x[0], x[1]);
    case C_MATMUL: return ag_matmul(x[0], x[1]);
    case C_RELU: return act_relu(x[0]);
    case C_SIGMOID: return act_sigmoid(x[0]);
    case C_TANH: return act_tanh(x[0]);
    case C_SOFTMAX: return act_softmax(x[0]);
    case C_LINEAR: return nn_linear(x[0], x[1], x[2]);
    case C_CONV: return nn_conv2d(x[0], x[1], x[2], c->a, c->b);
    case C_MSE: return loss_mse(x[0], x[1]);
    case C_CE: return loss_cross_entropy(x[0], c->cls);
    case C_RESHAPE: { uint64_t s[2] = {x[0]->value->shape[1], x[0]->value->shape[0]}; return ag_reshape(x[0], 2, s); }
    }
    return NULL;
}

static void check_all_inputs(struct OpCase *c, const char *what)
{
    for (int i = 0; i < c->n_in; i++) {
        double err = grad_check(build_op, c, c->in[i], GC_EPS);
        EXPECT_MSG(err <= GC_TOL, "%s: input %d relative error %.3g", what, i, err);
    }
    for (int i = 0; i < c->n_in; i++) leaf_free(c->in[i]);
}

TEST(grad_elementwise_and_matmul)
{
    uint64_t s[2] = {3, 5}, sb[2] = {5, 4};
    struct OpCase add = {{leaf(2, s, -1, 1, 1), leaf(2, s, -1, 1, 2)}, 2, C_ADD, 0, 0, NULL};
    check_all_inputs(&add, "add");
    struct OpCase sub = {{leaf(2, s, -1, 1, 3), leaf(2, s, -1, 1, 4)}, 2, C_SUB, 0, 0, NULL};
    check_all_inputs(&sub, "sub");
    struct OpCase mul = {{leaf(2, s, -1, 1, 5), leaf(2, s, -1, 1, 6)}, 2, C_MUL, 0, 0, NULL};
    check_all_inputs(&mul, "mul");
    struct OpCase mm = {{leaf(2, s, -1, 1, 7), leaf(2, sb, -1, 1, 8)}, 2, C_MATMUL, 0, 0, NULL};
    check_all_inputs(&mm, "matmul");
    struct OpCase rs = {{leaf(2, s, -1, 1, 9)}, 1, C_RESHAPE, 0, 0, NULL};
    check_all_inputs(&rs, "reshape");
}

/* Values kept away from ReLU's kink at 0. */
static struct Node *leaf_off_kink(uint64_t ndim, const uint64_t *shape, uint64_t seed)
{
    struct Node *n = leaf(ndim, shape, 0.1, 1.0, seed);
    double *p = tensor_f64(n->value);
    for (uint64_t i = 0; i < tensor_numel(n->value); i += 2) p[i] = -p[i];
    return n;
}

TEST(grad_activations)
{
    uint64_t s[2] = {4, 7};
    struct OpCase relu = {{leaf_off_kink(2, s, 11)}, 1, C_RELU, 0, 0, NULL};
    check_all_inputs(&relu, "relu");
    struct OpCase sig = {{leaf(2, s, -4, 4, 12)}, 1, C_SIGMOID, 0, 0, NULL};
    check_all_inputs(&sig, "sigmoid");
    struct OpCase th = {{leaf(2, s, -2, 2, 13)}, 1, C_TANH, 0, 0, NULL};
    check_all_inputs(&th, "tanh");
    struct OpCase sm = {{leaf(2, s, -3, 3, 14)}, 1, C_SOFTMAX, 0, 0, NULL};
    check_all_inputs(&sm, "softmax");
}

TEST(grad_losses)
{
    uint64_t s[2] = {5, 3};
    struct OpCase mse = {{leaf(2, s, -1, 1, 21), leaf(2, s, -1, 1, 22)}, 2, C_MSE, 0, 0, NULL};
    check_all_inputs(&mse, "mse_loss");
    static const uint32_t cls[5] = {0, 2, 1, 2, 0};
    struct OpCase ce = {{leaf(2, s, -2, 2, 23)}, 1, C_CE, 0, 0, cls};
    check_all_inputs(&ce, "cross_entropy_loss");
}

TEST(grad_linear)
{
    uint64_t sx[2] = {3, 6}, sw[2] = {4, 6}, sb[1] = {4};
    struct OpCase lin = {{leaf(2, sx, -1, 1, 31), leaf(2, sw, -1, 1, 32), leaf(1, sb, -1, 1, 33)}, 3, C_LINEAR, 0, 0, NULL};
    check_all_inputs(&lin, "linear");
    /* A conv-shaped input (B,C,H,W) is read flattened per sample. */
    uint64_t sx4[4] = {2, 2, 3, 2}, sw4[2] = {3, 12}, sb4[1] = {3};
    struct OpCase lin4 = {{leaf(4, sx4, -1, 1, 34), leaf(2, sw4, -1, 1, 35), leaf(1, sb4, -1, 1, 36)}, 3, C_LINEAR, 0, 0, NULL};
    check_all_inputs(&lin4, "linear on 4-D input");
}

TEST(grad_conv2d)
{
    /* in_ch, kh, kw, stride, padding over a batch of 2 */
    static const uint64_t cases[][5] = {
        {1, 3, 3, 1, 0}, {1, 3, 3, 1, 1}, {3, 3, 3, 2, 1}, {3, 5, 3, 1, 1}, {1, 5, 3, 2, 0}, {3, 3, 3, 2, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const uint64_t *k = cases[i];
        uint64_t sx[4] = {2, k[0], 7, 6}, sw[4] = {2, k[0], k[1], k[2]}, sb[1] = {2};
        struct OpCase cv = {{leaf(4, sx, -1, 1, 40 + i), leaf(4, sw, -1, 1, 50 + i), leaf(1, sb, -1, 1, 60 + i)},
                            3, C_CONV, k[3], k[4], NULL};
        char what[96];
        snprintf(what, sizeof what, "conv2d in_ch %llu kernel %llux%llu stride %llu pad %llu",
                 (unsigned long long)k[0], (unsigned long long)k[1], (unsigned long long)k[2],
                 (unsigned long long)k[3], (unsigned long long)k[4]);
        check_all_inputs(&cv, what);
    }
}
