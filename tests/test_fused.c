/* Fused ops: Conv2d + ReLU as one node (nn_conv2d_relu) against the two unfused ops,
 * bit for bit, on both conv paths and both dtypes; its float64 gradient check; and the
 * one place that fuses (net_forward) doing so only for a Conv2d followed by a ReLU. */
#include "test.h"
#include "gradcheck.h"
#include "activations.h"
#include "losses.h"
#include "train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* N, C, H, W, O, kh, kw, stride, pad: the bench CNN's two layers, odd sizes, every
 * stride; Wo of 1 or 2 takes the gemm path, wide rows the direct one. */
static const uint64_t fuse_cases[][9] = {
    {3, 1, 28, 28, 8, 3, 3, 1, 1}, {2, 8, 28, 28, 16, 3, 3, 2, 1}, {1, 3, 13, 7, 5, 5, 3, 1, 0},
    {3, 3, 7, 13, 4, 2, 4, 2, 2},  {1, 8, 13, 13, 3, 3, 3, 3, 1},  {2, 3, 5, 1, 2, 3, 3, 1, 1},
    {1, 1, 1, 1, 3, 1, 1, 2, 0},   {3, 2, 9, 17, 17, 1, 1, 1, 0},
};

struct ConvNet { struct Node *w, *b; struct Graph g; };

/* One conv (+ ReLU) graph over x, fused or not; its output and its backward from seed.
 * Its own copies of w and b, so each graph's gradients are its own. */
static struct Node *conv_relu_run(struct ConvNet *net, const struct Tensor *w, const struct Tensor *b,
                                  struct Tensor *x, const uint64_t *c, int want_x, int want_w, int fused,
                                  const struct Tensor *seed_or_null, uint64_t seed)
{
    net->w = node_from_tensor(tensor_copy(w), want_w);
    net->b = node_from_tensor(tensor_copy(b), 1);
    graph_init(&net->g);
    struct Node *xn = graph_input(&net->g, x, want_x), *y;
    if (fused) y = nn_conv2d_relu(xn, net->w, net->b, c[7], c[8]);
    else y = act_relu(nn_conv2d(xn, net->w, net->b, c[7], c[8]));
    struct Tensor *s = seed_or_null ? (struct Tensor *)seed_or_null : tensor_create(4, y->value->shape, y->value->dtype);
    if (!seed_or_null) fill_uniform(s, -1, 1, seed);
    backward_seeded(y, s);
    if (!seed_or_null) tensor_free(s);
    return xn;
}

static void conv_net_free(struct ConvNet *net)
{
    struct Tensor *w = net->w->value, *b = net->b->value;
    node_free(net->w), node_free(net->b);
    tensor_free(w), tensor_free(b);
    graph_free(&net->g);
}

static int same_bits(const struct Tensor *a, const struct Tensor *b)
{
    if (!a || !b) return a == b;
    return tensor_same_shape(a, b) && memcmp(a->data, b->data, tensor_numel(a) * dtype_size(a->dtype)) == 0;
}

/* want: bit 0 input gradient, bit 1 weight gradient (the bias always wants one) */
static void check_fused_case(const uint64_t *c, uint32_t dt, uint64_t seed, int want)
{
    uint64_t sx[4] = {c[0], c[1], c[2], c[3]}, sw[4] = {c[4], c[1], c[5], c[6]}, sb[1] = {c[4]};
    struct Tensor *x = tensor_create(4, sx, dt), *w = tensor_create(4, sw, dt), *b = tensor_create(1, sb, dt);
    fill_uniform(x, -1, 1, seed), fill_uniform(w, -1, 1, seed + 1), fill_uniform(b, -0.5, 0.5, seed + 2);
    struct ConvNet un, fu;
    struct Node *xu = conv_relu_run(&un, w, b, x, c, want & 1, want >> 1 & 1, 0, NULL, seed + 3);
    struct Node *xf = conv_relu_run(&fu, w, b, x, c, want & 1, want >> 1 & 1, 1, NULL, seed + 3);
    EXPECT_MSG(same_bits(un.w->grad, fu.w->grad) && same_bits(un.b->grad, fu.b->grad) && same_bits(xu->grad, xf->grad),
               "fused conv+relu gradients differ from unfused: %s N%llu C%llu %llux%llu O%llu k%llux%llu s%llu p%llu want %d",
               dtype_name(dt), (unsigned long long)c[0], (unsigned long long)c[1], (unsigned long long)c[2],
               (unsigned long long)c[3], (unsigned long long)c[4], (unsigned long long)c[5],
               (unsigned long long)c[6], (unsigned long long)c[7], (unsigned long long)c[8], want);
    EXPECT(want & 1 ? xf->grad != NULL : xf->grad == NULL);
    EXPECT(want & 2 ? fu.w->grad != NULL : fu.w->grad == NULL);
    conv_net_free(&un), conv_net_free(&fu);
    tensor_free(x), tensor_free(w), tensor_free(b);
}

/* The forward values, bit for bit. */
static void check_fused_forward(const uint64_t *c, uint32_t dt, uint64_t seed)
{
    uint64_t sx[4] = {c[0], c[1], c[2], c[3]}, sw[4] = {c[4], c[1], c[5], c[6]}, sb[1] = {c[4]};
    struct Tensor *x = tensor_create(4, sx, dt), *w = tensor_create(4, sw, dt), *b = tensor_create(1, sb, dt);
    fill_uniform(x, -1, 1, seed), fill_uniform(w, -1, 1, seed + 1), fill_uniform(b, -0.5, 0.5, seed + 2);
    struct Graph g;
    graph_init(&g);
    struct Node *wn = node_from_tensor(w, 1), *bn = node_from_tensor(b, 1), *xn = graph_input(&g, x, 0);
    struct Node *yu = act_relu(nn_conv2d(xn, wn, bn, c[7], c[8])), *yf = nn_conv2d_relu(xn, wn, bn, c[7], c[8]);
    EXPECT_MSG(same_bits(yu->value, yf->value), "fused conv+relu output differs: %s case s%llu p%llu",
               dtype_name(dt), (unsigned long long)c[7], (unsigned long long)c[8]);
    EXPECT_EQ_INT(yf->op, OP_CONV2D_RELU);
    size_t pos = 0;
    for (uint64_t i = 0; i < tensor_numel(yf->value); i++) pos += tensor_at(yf->value, i) > 0;
    EXPECT_MSG(pos > 0 && pos < tensor_numel(yf->value), "the case must have both signs"); /* the mask matters */
    node_free(wn), node_free(bn);
    graph_free(&g);
    tensor_free(x), tensor_free(w), tensor_free(b);
}

TEST_ISA(conv_relu_fused_equals_unfused)
{
    for (uint32_t dt = 0; dt < DT_COUNT; dt++)
        for (size_t i = 0; i < sizeof fuse_cases / sizeof fuse_cases[0]; i++) {
            check_fused_forward(fuse_cases[i], dt, 300 + 10 * i);
            check_fused_case(fuse_cases[i], dt, 500 + 10 * i, 3);     /* a hidden layer */
            check_fused_case(fuse_cases[i], dt, 600 + 10 * i, 2);     /* the first layer */
            check_fused_case(fuse_cases[i], dt, 700 + 10 * i, 1);     /* frozen weights */
        }
}

struct FusedCtx { struct Node *x, *w, *b; uint64_t stride, pad; };

static struct Node *build_fused(struct Graph *g, void *ctx)
{
    struct FusedCtx *c = ctx;
    return nn_conv2d_relu(graph_attach(g, c->x), graph_attach(g, c->w), graph_attach(g, c->b), c->stride, c->pad);
}

static struct Node *f64_leaf(uint64_t ndim, const uint64_t *shape, uint64_t seed)
{
    struct Tensor *t = tensor_create(ndim, shape, DT_FLOAT64);
    fill_uniform(t, -1, 1, seed);
    return node_from_tensor(t, 1);
}

static void f64_leaf_free(struct Node *n)
{
    struct Tensor *t = n->value;
    node_free(n);
    tensor_free(t);
}

/* Random inputs put no conv output within eps of ReLU's kink (checked: the error would show). */
TEST(grad_conv2d_relu)
{
    static const uint64_t cases[][5] = {{1, 3, 3, 1, 1}, {3, 3, 3, 2, 1}, {2, 5, 3, 1, 0}, {3, 2, 4, 3, 2}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const uint64_t *k = cases[i];
        uint64_t sx[4] = {2, k[0], 7, 6}, sw[4] = {3, k[0], k[1], k[2]}, sb[1] = {3};
        struct FusedCtx c = {f64_leaf(4, sx, 80 + i), f64_leaf(4, sw, 90 + i), f64_leaf(1, sb, 100 + i), k[3], k[4]};
        struct Node *in[3] = {c.x, c.w, c.b};
        for (int j = 0; j < 3; j++) {
            double err = grad_check(build_fused, &c, in[j], 1e-6);
            EXPECT_MSG(err <= 1e-6, "conv2d_relu case %zu input %d: relative error %.3g", i, j, err);
        }
        for (int j = 0; j < 3; j++) f64_leaf_free(in[j]);
    }
}

/* The net's output and every parameter gradient after two backward calls (the second
 * accumulates: a conv that masks its fused input's gradient for it must not do so then),
 * through net_forward (fused) or the modules one by one (unfused). */
static struct Tensor **run_net(struct Module **mods, int n, struct Tensor *x, const struct Tensor *seed, int fused,
                               int *n_out)
{
    struct Graph g;
    graph_init(&g);
    struct Node *h = graph_input(&g, x, 0);
    if (fused) h = model_forward_modules(mods, (uint32_t)n, h, 0);
    else for (int i = 0; i < n; i++) mods[i]->forward(mods[i], h, &h);
    for (int i = 0; i < n; i++)
        for (uint32_t p = 0; p < mods[i]->n_params; p++) tensor_fill(mods[i]->param_nodes[p]->grad, 0);
    backward_seeded(h, seed);
    backward_seeded(h, seed);
    struct Tensor **out = calloc(2 * (size_t)n + 1, sizeof *out);
    int k = 0;
    out[k++] = tensor_copy(h->value);
    for (int i = 0; i < n; i++)
        for (uint32_t p = 0; p < mods[i]->n_params; p++) out[k++] = tensor_copy(mods[i]->param_nodes[p]->grad);
    *n_out = k;
    graph_free(&g);
    return out;
}

static void check_net_fused_equals_unfused(struct Module **mods, int n, struct Tensor *x, const char *what)
{
    struct Graph g;
    graph_init(&g);
    struct Node *y = model_forward_modules(mods, (uint32_t)n, graph_input(&g, x, 0), 0);
    struct Tensor *seed = tensor_create(y->value->ndim, y->value->shape, y->value->dtype);
    fill_uniform(seed, -1, 1, 10);
    graph_free(&g);
    int nf, nu;
    struct Tensor **f = run_net(mods, n, x, seed, 1, &nf), **u = run_net(mods, n, x, seed, 0, &nu);
    EXPECT_EQ_INT(nf, nu);
    for (int i = 0; i < nf && i < nu; i++)
        EXPECT_MSG(same_bits(f[i], u[i]), "%s: %s %d of the fused net differs from the unfused one", what,
                   i ? "parameter gradient" : "output", i);
    for (int i = 0; i < nf; i++) tensor_free(f[i]), tensor_free(u[i]);
    free(f), free(u);
    tensor_free(seed);
}

/* net_forward fuses a Conv2d followed by a ReLU, and nothing else. */
TEST_ISA(net_forward_fuses_conv_then_relu)
{
    struct Rng rng;
    rng_seed(&rng, 3);
    struct Module *mods[6] = {nn_conv2d_create(1, 4, 3, 3, 1, 1, DT_FLOAT32, &rng), act_module_create(MOD_RELU),
                              nn_conv2d_create(4, 6, 3, 3, 2, 1, DT_FLOAT32, &rng), act_module_create(MOD_SIGMOID),
                              nn_conv2d_create(6, 2, 3, 3, 1, 1, DT_FLOAT32, &rng), act_module_create(MOD_RELU)};
    uint64_t sx[4] = {3, 1, 20, 20};
    struct Tensor *x = tensor_create(4, sx, DT_FLOAT32);
    fill_uniform(x, -1, 1, 9);
    struct Graph g;
    graph_init(&g);
    struct Node *out = model_forward_modules(mods, 6, graph_input(&g, x, 0), 0);
    EXPECT_EQ_INT(out->op, OP_CONV2D_RELU);
    struct Node *mid = out->parents[0];
    EXPECT_EQ_INT(mid->op, OP_SIGMOID);
    EXPECT_EQ_INT(mid->parents[0]->op, OP_CONV2D);              /* conv then sigmoid: not fused */
    EXPECT_EQ_INT(mid->parents[0]->parents[0]->op, OP_CONV2D_RELU);
    EXPECT(str_cmp(op_name(OP_CONV2D_RELU), "conv2d_relu") == 0);
    FILE *f = tmpfile();
    EXPECT(f != NULL);
    if (f) { /* the graph printer names the fused op */
        graph_print(out, f);
        char text[2048] = {0};
        rewind(f);
        text[fread(text, 1, sizeof text - 1, f)] = 0;
        fclose(f);
        EXPECT_STR_CONTAINS(text, "conv2d_relu");
        EXPECT_STR_CONTAINS(text, "sigmoid");
    }
    graph_free(&g);
    check_net_fused_equals_unfused(mods, 6, x, "conv relu conv sigmoid conv relu");
    tensor_free(x);
    for (int i = 0; i < 6; i++) module_free(mods[i]);
}

/* The bench's CNN shape in both dtypes: a fused conv feeding a fused conv feeding a Linear. */
TEST_ISA(net_fused_cnn_equals_unfused)
{
    for (uint32_t dt = 0; dt < DT_COUNT; dt++) {
        struct Rng rng;
        rng_seed(&rng, 4);
        struct Module *mods[5] = {nn_conv2d_create(1, 8, 3, 3, 1, 1, dt, &rng), act_module_create(MOD_RELU),
                                  nn_conv2d_create(8, 16, 3, 3, 2, 1, dt, &rng), act_module_create(MOD_RELU),
                                  nn_linear_create(16 * 14 * 14, 10, dt, &rng)};
        uint64_t sx[4] = {3, 1, 28, 28};
        struct Tensor *x = tensor_create(4, sx, dt);
        fill_uniform(x, -1, 1, 11);
        check_net_fused_equals_unfused(mods, 5, x, dtype_name(dt));
        tensor_free(x);
        for (int i = 0; i < 5; i++) module_free(mods[i]);
    }
}

/* A conv fed by a fused conv + ReLU masks the input gradient as it copies it out of the
 * split layout: every stride (1, 2, 3) at odd widths, rows with a partial last vector and
 * rows of several vectors, both dtypes, against the unfused net bit for bit. */
TEST_ISA(net_conv_after_fused_conv_masks_its_input_gradient)
{
    static const uint64_t second[][4] = {{3, 3, 1, 1}, {3, 3, 2, 1}, {5, 3, 3, 2}, {1, 1, 2, 0}};
    for (uint32_t dt = 0; dt < DT_COUNT; dt++)
        for (int i = 0; i < 4; i++) {
            struct Rng rng;
            rng_seed(&rng, 5 + (uint64_t)i);
            const uint64_t *s = second[i];
            struct Module *mods[4] = {nn_conv2d_create(2, 3, 3, 3, 1, 1, dt, &rng), act_module_create(MOD_RELU),
                                      nn_conv2d_create(3, 5, s[0], s[1], s[2], s[3], dt, &rng),
                                      act_module_create(MOD_RELU)};
            uint64_t sx[4] = {3, 2, 29, 37};
            struct Tensor *x = tensor_create(4, sx, dt);
            fill_uniform(x, -1, 1, 12 + (uint64_t)i);
            char what[64];
            snprintf(what, sizeof what, "%s conv relu conv k%llux%llu s%llu relu", dtype_name(dt),
                     (unsigned long long)s[0], (unsigned long long)s[1], (unsigned long long)s[2]);
            check_net_fused_equals_unfused(mods, 4, x, what);
            tensor_free(x);
            for (int k = 0; k < 4; k++) module_free(mods[k]);
        }
}

static struct Tensor *filled(uint64_t ndim, const uint64_t *shape, uint32_t dt, uint64_t seed)
{
    struct Tensor *t = tensor_create(ndim, shape, dt);
    fill_uniform(t, -1, 1, seed);
    return t;
}

/* conv1 + ReLU then conv2 + ReLU (conv2's weights frozen), fused or not: the gradients
 * of conv1's w, b and of conv2's b into out[0..3). */
static void frozen_pair_grads(struct Tensor *const *t, const uint64_t *s, const struct Tensor *seed, int fused,
                              struct Tensor **out)
{
    struct Node *w1 = node_from_tensor(t[1], 1), *b1 = node_from_tensor(t[2], 1);
    struct Node *w2 = node_from_tensor(t[3], 0), *b2 = node_from_tensor(t[4], 1);
    struct Graph g;
    graph_init(&g);
    struct Node *x = graph_input(&g, t[0], 0), *y;
    if (fused) y = nn_conv2d_relu(nn_conv2d_relu(x, w1, b1, 1, 1), w2, b2, s[2], s[3]);
    else y = act_relu(nn_conv2d(act_relu(nn_conv2d(x, w1, b1, 1, 1)), w2, b2, s[2], s[3]));
    backward_seeded(y, seed);
    out[0] = tensor_copy(w1->grad), out[1] = tensor_copy(b1->grad), out[2] = tensor_copy(b2->grad);
    graph_free(&g);
    node_free(w1), node_free(b1), node_free(w2), node_free(b2);
}

/* A conv whose weights are frozen keeps no split input: the mask of its fused input's
 * ReLU then comes from that conv's output (NCHW) instead; every stride, both dtypes. */
TEST_ISA(frozen_conv_after_fused_conv_masks_its_input_gradient)
{
    static const uint64_t second[][4] = {{3, 3, 1, 1}, {3, 3, 2, 1}, {5, 3, 3, 2}};
    for (uint32_t dt = 0; dt < DT_COUNT; dt++)
        for (int i = 0; i < 3; i++) {
            const uint64_t *s = second[i];
            uint64_t sx[4] = {2, 2, 29, 37}, sw1[4] = {3, 2, 3, 3}, sb1[1] = {3}, sw2[4] = {4, 3, s[0], s[1]};
            uint64_t sb2[1] = {4};
            struct Tensor *t[5] = {filled(4, sx, dt, 20 + (uint64_t)i), filled(4, sw1, dt, 30), filled(1, sb1, dt, 31),
                                   filled(4, sw2, dt, 32), filled(1, sb2, dt, 33)};
            uint64_t sy[4] = {2, 4, (29 + 2 * s[3] - s[0]) / s[2] + 1, (37 + 2 * s[3] - s[1]) / s[2] + 1};
            struct Tensor *seed = filled(4, sy, dt, 40);
            struct Tensor *f[3], *u[3];
            frozen_pair_grads(t, s, seed, 1, f);
            frozen_pair_grads(t, s, seed, 0, u);
            for (int k = 0; k < 3; k++) {
                EXPECT_MSG(same_bits(f[k], u[k]), "%s s%llu: gradient %d of the fused pair differs from unfused",
                           dtype_name(dt), (unsigned long long)s[2], k);
                tensor_free(f[k]), tensor_free(u[k]);
            }
            tensor_free(seed);
            for (int k = 0; k < 5; k++) tensor_free(t[k]);
        }
}

/* ---- Linear + ReLU (nn_linear_relu) ---- */

/* B, in, out: every path of the forward X W^T (gemm_bias): the dot kernel (the bench
 * MLP's two layers; odd tiles; K in two chunks: 1500, and 784 in float64), its packed
 * form (many rows, a narrow output), the blocked path (min(B, out) > 96), K under a
 * vector, one-element edges. */
static const uint64_t lin_cases[][3] = {{64, 784, 128}, {64, 128, 10}, {37, 200, 23}, {5, 3, 7},  {130, 150, 100},
                                        {256, 128, 128}, {3, 1, 1},    {70, 300, 9},  {20, 1500, 30}};

/* x (B x in) through Linear(w, b) + ReLU, fused or not, and back from seed; the output
 * and the gradients of x (want & 1), w (want & 2) and b into out[0..4) (NULL where none). */
static void linear_relu_run(struct Tensor *const *t, int with_bias, const struct Tensor *seed, int fused, int want,
                            struct Tensor **out)
{
    struct Node *w = node_from_tensor(tensor_copy(t[1]), want >> 1 & 1);
    struct Node *b = with_bias ? node_from_tensor(tensor_copy(t[2]), 1) : NULL;
    struct Graph g;
    graph_init(&g);
    struct Node *x = graph_input(&g, t[0], want & 1);
    struct Node *y = fused ? nn_linear_relu(x, w, b) : act_relu(nn_linear(x, w, b));
    EXPECT_EQ_INT(y->op, fused ? OP_LINEAR_RELU : OP_RELU);
    backward_seeded(y, seed);
    out[0] = tensor_copy(y->value);
    out[1] = x->grad ? tensor_copy(x->grad) : NULL;
    out[2] = w->grad ? tensor_copy(w->grad) : NULL;
    out[3] = b && b->grad ? tensor_copy(b->grad) : NULL;
    graph_free(&g);
    struct Tensor *wv = w->value;
    node_free(w), tensor_free(wv);
    if (b) {
        struct Tensor *bv = b->value;
        node_free(b), tensor_free(bv);
    }
}

TEST_ISA(linear_relu_fused_equals_unfused)
{
    static const char *const what[4] = {"output", "input gradient", "weight gradient", "bias gradient"};
    for (uint32_t dt = 0; dt < DT_COUNT; dt++)
        for (size_t i = 0; i < sizeof lin_cases / sizeof lin_cases[0]; i++) {
            const uint64_t *c = lin_cases[i];
            uint64_t sx[2] = {c[0], c[1]}, sw[2] = {c[2], c[1]}, sb[1] = {c[2]}, sy[2] = {c[0], c[2]};
            struct Tensor *t[3] = {filled(2, sx, dt, 50 + i), filled(2, sw, dt, 60 + i), filled(1, sb, dt, 70 + i)};
            struct Tensor *seed = filled(2, sy, dt, 80 + i);
            for (int v = 0; v < 4; v++) { /* a hidden layer, the first, frozen weights; no bias */
                int want = v == 0 || v == 3 ? 3 : v == 1 ? 2 : 1, with_bias = v != 3;
                struct Tensor *f[4], *u[4];
                linear_relu_run(t, with_bias, seed, 1, want, f);
                linear_relu_run(t, with_bias, seed, 0, want, u);
                for (int k = 0; k < 4; k++) {
                    EXPECT_MSG(same_bits(f[k], u[k]), "%s %llux%llu -> %llu variant %d: the fused %s differs",
                               dtype_name(dt), (unsigned long long)c[0], (unsigned long long)c[1],
                               (unsigned long long)c[2], v, what[k]);
                    tensor_free(f[k]), tensor_free(u[k]);
                }
                if (v == 0) { /* the case must have both signs, so that the mask matters */
                    linear_relu_run(t, 1, seed, 1, 0, f);
                    size_t pos = 0, n = tensor_numel(f[0]);
                    for (uint64_t e = 0; e < n; e++) pos += tensor_at(f[0], e) > 0;
                    EXPECT_MSG(n < 4 || (pos > 0 && pos < n), "case %zu: %zu of %zu outputs positive", i, pos, n);
                    for (int k = 0; k < 4; k++) tensor_free(f[k]);
                }
            }
            tensor_free(seed);
            for (int k = 0; k < 3; k++) tensor_free(t[k]);
        }
}

struct LinearCtx { struct Node *x, *w, *b; };

static struct Node *build_linear_relu(struct Graph *g, void *ctx)
{
    struct LinearCtx *c = ctx;
    return nn_linear_relu(graph_attach(g, c->x), graph_attach(g, c->w), graph_attach(g, c->b));
}

TEST(grad_linear_relu)
{
    static const uint64_t cases[][3] = {{4, 6, 5}, {3, 130, 7}, {9, 2, 3}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const uint64_t *k = cases[i];
        uint64_t sx[2] = {k[0], k[1]}, sw[2] = {k[2], k[1]}, sb[1] = {k[2]};
        struct LinearCtx c = {f64_leaf(2, sx, 110 + i), f64_leaf(2, sw, 120 + i), f64_leaf(1, sb, 130 + i)};
        struct Node *in[3] = {c.x, c.w, c.b};
        for (int j = 0; j < 3; j++) {
            double err = grad_check(build_linear_relu, &c, in[j], 1e-6);
            EXPECT_MSG(err <= 1e-6, "linear_relu case %zu input %d: relative error %.3g", i, j, err);
        }
        for (int j = 0; j < 3; j++) f64_leaf_free(in[j]);
    }
}

/* net_forward fuses a Linear followed by a ReLU (the MLP), and not one followed by
 * anything else; the net's output and gradients, two backward calls, as unfused. The
 * Linear after a fused one masks its gradient as it writes it (a batch of 300: in
 * parallel parts); after a Tanh, the fused op's own backward does. */
TEST_ISA(net_forward_fuses_linear_then_relu)
{
    for (uint32_t dt = 0; dt < DT_COUNT; dt++) {
        struct Rng r2;
        rng_seed(&r2, 7);
        struct Module *deep[6] = {nn_linear_create(40, 33, dt, &r2), act_module_create(MOD_RELU),
                                  nn_linear_create(33, 130, dt, &r2), act_module_create(MOD_RELU),
                                  nn_linear_create(130, 10, dt, &r2), act_module_create(MOD_SOFTMAX)};
        uint64_t sd[2] = {300, 40};
        struct Tensor *xd = filled(2, sd, dt, 14);
        check_net_fused_equals_unfused(deep, 6, xd, "linear relu linear relu linear softmax");
        tensor_free(xd);
        for (int i = 0; i < 6; i++) module_free(deep[i]);

        struct Rng rng;
        rng_seed(&rng, 6);
        struct Module *mods[5] = {nn_linear_create(30, 20, dt, &rng), act_module_create(MOD_RELU),
                                  nn_linear_create(20, 12, dt, &rng), act_module_create(MOD_TANH),
                                  nn_linear_create(12, 4, dt, &rng)};
        uint64_t sx[2] = {7, 30};
        struct Tensor *x = filled(2, sx, dt, 13);
        struct Graph g;
        graph_init(&g);
        struct Node *out = model_forward_modules(mods, 5, graph_input(&g, x, 0), 0);
        EXPECT_EQ_INT(out->op, OP_LINEAR);
        EXPECT_EQ_INT(out->parents[0]->op, OP_TANH);
        EXPECT_EQ_INT(out->parents[0]->parents[0]->op, OP_LINEAR); /* linear then tanh: not fused */
        EXPECT_EQ_INT(out->parents[0]->parents[0]->parents[0]->op, OP_LINEAR_RELU);
        EXPECT(str_cmp(op_name(OP_LINEAR_RELU), "linear_relu") == 0);
        graph_free(&g);
        check_net_fused_equals_unfused(mods, 5, x, dtype_name(dt));
        tensor_free(x);
        for (int i = 0; i < 5; i++) module_free(mods[i]);
    }
}
