/* Conv2d on both paths (direct SIMD kernels and im2col + gemm, picked per call): the
 * forward against conv2d_forward_naive, and the weight, bias and input gradients of
 * one backward call against direct loops accumulated in double. */
#include "test.h"
#include "gradcheck.h"
#include "nn_layers.h"

#include <stdlib.h>
#include <string.h>

struct ConvCase { uint64_t N, C, H, W, O, kh, kw, stride, pad; };

/* Every stride (1, 2, 3), padding (0, 1, 2), kernel (1x1, 3x3, 5x3, 2x4), channel count
 * (1, 3, 8), odd and even sizes (1, 5, 7, 13, 28) and batch (1, 3; 7: two backward chunks,
 * the last short; 300: 60 chunks of 5; 64 and 300 on the gemm path, whose copies are cut
 * by samples); Wo of 1 or 2 takes the gemm path on every ISA, wide rows the direct one
 * (with a partial last vector). */
static const struct ConvCase cases[] = {
    {3, 1, 28, 28, 8, 3, 3, 1, 1}, {3, 8, 28, 28, 16, 3, 3, 2, 1}, {1, 3, 13, 7, 5, 5, 3, 1, 0},
    {3, 3, 7, 13, 4, 2, 4, 2, 2}, {1, 8, 13, 13, 3, 3, 3, 3, 1}, {3, 1, 5, 5, 2, 1, 1, 1, 0},
    {1, 3, 28, 13, 7, 5, 3, 2, 2}, {3, 8, 7, 28, 9, 2, 4, 3, 0}, {1, 1, 1, 1, 3, 1, 1, 2, 0},
    {3, 3, 5, 7, 2, 3, 3, 1, 2}, {1, 8, 13, 28, 17, 1, 1, 2, 1}, {3, 1, 28, 7, 3, 5, 3, 3, 2},
    {1, 3, 1, 5, 4, 1, 2, 1, 0}, {3, 8, 5, 1, 2, 3, 3, 1, 1}, {1, 1, 7, 5, 1, 2, 4, 1, 1},
    /* batches big enough to be cut across threads: direct (Wo 9) and gemm (Wo 2 and 1) */
    {7, 3, 13, 17, 6, 3, 3, 2, 1}, {300, 3, 9, 9, 5, 3, 3, 1, 1}, {300, 3, 7, 2, 5, 3, 3, 1, 1},
    {64, 8, 5, 1, 9, 3, 3, 1, 1},
};

static uint64_t out_size(uint64_t n, uint64_t k, uint64_t s, uint64_t p) { return (n + 2 * p - k) / s + 1; }

/* gw, gb, gx (double, zeroed by the caller) for the output gradient g, by direct loops */
static void ref_grads(const struct ConvCase *c, const struct Tensor *x, const struct Tensor *w,
                      const struct Tensor *g, double *gw, double *gb, double *gx)
{
    uint64_t Ho = out_size(c->H, c->kh, c->stride, c->pad), Wo = out_size(c->W, c->kw, c->stride, c->pad);
    for (uint64_t n = 0; n < c->N; n++)
        for (uint64_t o = 0; o < c->O; o++)
            for (uint64_t oh = 0; oh < Ho; oh++)
                for (uint64_t ow = 0; ow < Wo; ow++) {
                    double gv = tensor_at(g, ((n * c->O + o) * Ho + oh) * Wo + ow);
                    gb[o] += gv;
                    for (uint64_t ci = 0; ci < c->C; ci++)
                        for (uint64_t ki = 0; ki < c->kh; ki++)
                            for (uint64_t kj = 0; kj < c->kw; kj++) {
                                int64_t ih = (int64_t)(oh * c->stride + ki) - (int64_t)c->pad;
                                int64_t iw = (int64_t)(ow * c->stride + kj) - (int64_t)c->pad;
                                if (ih < 0 || iw < 0 || ih >= (int64_t)c->H || iw >= (int64_t)c->W) continue;
                                uint64_t xi = ((n * c->C + ci) * c->H + (uint64_t)ih) * c->W + (uint64_t)iw;
                                uint64_t wi = ((o * c->C + ci) * c->kh + ki) * c->kw + kj;
                                gw[wi] += gv * tensor_at(x, xi);
                                gx[xi] += gv * tensor_at(w, wi);
                            }
                }
}

/* Largest error of t (minus base where base != 0) against ref, in units of the tolerance:
 * an absolute part that grows with the terms summed, and a relative part. */
static double grad_err(const struct Tensor *t, const double *ref, double base, uint64_t terms)
{
    int f32 = t->dtype == DT_FLOAT32;
    double atol = (f32 ? 1e-6 : 1e-14) * (double)(terms + 1), rtol = f32 ? 1e-5 : 1e-12, worst = 0;
    for (uint64_t i = 0; i < tensor_numel(t); i++) {
        double e = fabs(tensor_at(t, i) - base - ref[i]) / (atol + rtol * fabs(ref[i]));
        if (!(e <= worst)) worst = e; /* NaN counts as the worst */
    }
    return worst;
}

/* One case in one dtype: forward, then one backward call with a random output gradient.
 * want_x = 0 is the first layer of a net (no input gradient); accumulate = 1 gives the
 * gradients prior values, so the kernels must add rather than write; accumulate = 0
 * leaves the parameter gradients invalidated (stale garbage the kernels must overwrite). */
static void check_case(const struct ConvCase *c, uint32_t dt, uint64_t seed, int want_x, int accumulate)
{
    uint64_t Ho = out_size(c->H, c->kh, c->stride, c->pad), Wo = out_size(c->W, c->kw, c->stride, c->pad);
    uint64_t sx[4] = {c->N, c->C, c->H, c->W}, sw[4] = {c->O, c->C, c->kh, c->kw}, sb[1] = {c->O};
    uint64_t so[4] = {c->N, c->O, Ho, Wo};
    struct Tensor *x = tensor_create(4, sx, dt), *w = tensor_create(4, sw, dt), *b = tensor_create(1, sb, dt);
    struct Tensor *ref = tensor_create(4, so, dt), *gy = tensor_create(4, so, dt);
    fill_uniform(x, -1, 1, seed), fill_uniform(w, -1, 1, seed + 1), fill_uniform(b, -1, 1, seed + 2);
    fill_uniform(gy, -1, 1, seed + 3);
    conv2d_forward_naive(x, w, b, c->stride, c->pad, ref);

    struct Graph g;
    graph_init(&g);
    struct Node *wn = node_from_tensor(w, 1), *bn = node_from_tensor(b, 1), *xn = graph_input(&g, x, want_x);
    struct Node *y = nn_conv2d(xn, wn, bn, c->stride, c->pad);
    EXPECT(tensor_same_shape(y->value, ref));
    double err = dt == DT_FLOAT32 ? test_max_err_f32(y->value->data, ref->data, tensor_numel(ref), 1e-5, 1e-5)
                                  : test_max_err_f64(y->value->data, ref->data, tensor_numel(ref), 1e-12, 1e-12);
    EXPECT_MSG(err <= 1, "forward %s s%llu p%llu %llux%llu: error %.3g of tolerance", dtype_name(dt),
               (unsigned long long)c->stride, (unsigned long long)c->pad, (unsigned long long)c->kh,
               (unsigned long long)c->kw, err);

    if (want_x && accumulate) tensor_fill(node_grad(xn), 1.0);
    tensor_fill(wn->grad, accumulate ? 1.0 : 7.0), tensor_fill(bn->grad, accumulate ? 1.0 : 7.0);
    if (!accumulate) node_grad_invalidate(wn), node_grad_invalidate(bn); /* the 7s must not show */
    memcpy(node_grad(y)->data, gy->data, tensor_numel(gy) * dtype_size(dt));
    y->backward_fn(y);
    size_t nw = tensor_numel(w), nx = tensor_numel(x);
    double *gw = calloc(nw + c->O + nx, sizeof *gw), *gb = gw + nw, *gx = gb + c->O;
    ref_grads(c, x, w, gy, gw, gb, gx);
    uint64_t wterms = c->N * Ho * Wo, xterms = c->O * c->kh * c->kw;
    double base = accumulate ? 1.0 : 0.0;
    double ew = grad_err(wn->grad, gw, base, wterms), eb = grad_err(bn->grad, gb, base, wterms);
    double ex = want_x ? grad_err(xn->grad, gx, base, xterms) : 0;
    EXPECT_MSG(!want_x ? xn->grad == NULL : 1, "input gradient made though not wanted");
    EXPECT_MSG(ew <= 1 && eb <= 1 && ex <= 1,
               "grads %s N%llu C%llu %llux%llu O%llu k%llux%llu s%llu p%llu: weight %.3g bias %.3g input %.3g of tolerance",
               dtype_name(dt), (unsigned long long)c->N, (unsigned long long)c->C, (unsigned long long)c->H,
               (unsigned long long)c->W, (unsigned long long)c->O, (unsigned long long)c->kh,
               (unsigned long long)c->kw, (unsigned long long)c->stride, (unsigned long long)c->pad, ew, eb, ex);
    free(gw);
    node_free(wn), node_free(bn);
    graph_free(&g);
    tensor_free(x), tensor_free(w), tensor_free(b), tensor_free(ref), tensor_free(gy);
}

TEST_ISA(conv_direct_and_gemm_paths_match_naive_loops)
{
    for (uint32_t dt = 0; dt < DT_COUNT; dt++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            check_case(&cases[i], dt, 1000 + 10 * i, 1, i % 2);
}

/* Also the weight gradient's NCHW path: without an input gradient or a mask to make, the
 * direct path reads the output gradient in place (kernels/conv.h) */
TEST_ISA(conv_first_layer_makes_no_input_gradient)
{
    for (uint32_t dt = 0; dt < DT_COUNT; dt++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_case(&cases[i], dt, 77 + 10 * i, 0, i % 2);
}

/* Frozen weights: the bias gradient alone (the direct path sums it beside the weight
 * gradient otherwise), and no weight gradient made. */
TEST_ISA(conv_bias_gradient_without_weight_gradient)
{
    const struct ConvCase *c = &cases[1];
    uint64_t Ho = out_size(c->H, c->kh, c->stride, c->pad), Wo = out_size(c->W, c->kw, c->stride, c->pad);
    uint64_t sx[4] = {c->N, c->C, c->H, c->W}, sw[4] = {c->O, c->C, c->kh, c->kw}, sb[1] = {c->O};
    uint64_t so[4] = {c->N, c->O, Ho, Wo};
    for (uint32_t dt = 0; dt < DT_COUNT; dt++) {
        struct Tensor *x = tensor_create(4, sx, dt), *w = tensor_create(4, sw, dt), *b = tensor_create(1, sb, dt);
        struct Tensor *gy = tensor_create(4, so, dt);
        fill_uniform(x, -1, 1, 1), fill_uniform(w, -1, 1, 2), fill_uniform(b, -1, 1, 3), fill_uniform(gy, -1, 1, 4);
        struct Graph g;
        graph_init(&g);
        struct Node *wn = node_from_tensor(w, 0), *bn = node_from_tensor(b, 1);
        struct Node *y = nn_conv2d(graph_input(&g, x, 0), wn, bn, c->stride, c->pad);
        memcpy(node_grad(y)->data, gy->data, tensor_numel(gy) * dtype_size(dt));
        y->backward_fn(y);
        size_t nw = tensor_numel(w), nx = tensor_numel(x);
        double *gw = calloc(nw + c->O + nx, sizeof *gw), *gb = gw + nw, *gx = gb + c->O;
        ref_grads(c, x, w, gy, gw, gb, gx);
        double eb = grad_err(bn->grad, gb, 0, c->N * Ho * Wo);
        EXPECT_MSG(eb <= 1, "bias gradient %s: error %.3g of tolerance", dtype_name(dt), eb);
        EXPECT(wn->grad == NULL);
        free(gw);
        node_free(wn), node_free(bn);
        graph_free(&g);
        tensor_free(x), tensor_free(w), tensor_free(b), tensor_free(gy);
    }
}
