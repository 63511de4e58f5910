/* Pooling, dropout and batch normalisation: numeric gradient checks (batch normalisation
 * in training mode, its batch statistics in the graph; max pooling away from ties), max
 * pooling against a naive loop with ties and NaNs, the running statistics, dropout's mask,
 * the config arguments and shape rules, the fusions against the unfused layers, model
 * files with state, and no heap in a training step. */
#include "test.h"
#include "gradcheck.h"
#include "losses.h"
#include "mem.h"
#include "model.h"
#include "train.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define GC_EPS 1e-6
#define GC_TOL 1e-6

enum { G_MAX, G_AVG, G_BN, G_DROP };

struct GCase {
    int which;
    struct Node *x, *w, *b;
    uint64_t k, s;
    int training, relu;
    struct Tensor *rm, *rv, *mask;
};

static struct Node *build(struct Graph *g, void *ctx)
{
    struct GCase *c = ctx;
    struct Node *x = graph_attach(g, c->x);
    switch (c->which) {
    case G_MAX: return nn_maxpool2d(x, c->k, c->s);
    case G_AVG: return nn_avgpool2d(x, c->k, c->s);
    case G_DROP: return nn_dropout_masked(x, c->mask);
    default: /* the running statistics are left alone in training (NULL): each evaluation sees the same */
        return nn_batchnorm(x, graph_attach(g, c->w), graph_attach(g, c->b), c->training ? NULL : c->rm,
                            c->training ? NULL : c->rv, c->training, c->relu);
    }
}

static void check(struct GCase *c, struct Node *p, const char *what)
{
    double err = grad_check(build, c, p, GC_EPS);
    EXPECT_MSG(err <= GC_TOL, "%s: relative error %.3g", what, err);
}

TEST_ISA(grad_pooling)
{
    static const uint64_t ks[][2] = {{2, 2}, {3, 2}, {2, 1}, {3, 3}};
    uint64_t shape[4] = {2, 3, 7, 6};
    for (size_t i = 0; i < sizeof ks / sizeof *ks; i++) {
        /* distinct values, far apart compared with eps: no ties, no kinks */
        struct GCase c = {G_MAX, leaf(4, shape, -1, 1, 10 + i), NULL, NULL, ks[i][0], ks[i][1], 0, 0, NULL, NULL, NULL};
        char what[64];
        snprintf(what, sizeof what, "maxpool2d k=%llu s=%llu", (unsigned long long)ks[i][0], (unsigned long long)ks[i][1]);
        check(&c, c.x, what);
        c.which = G_AVG;
        snprintf(what, sizeof what, "avgpool2d k=%llu s=%llu", (unsigned long long)ks[i][0], (unsigned long long)ks[i][1]);
        check(&c, c.x, what);
        leaf_free(c.x);
    }
}

TEST_ISA(grad_batchnorm_and_dropout)
{
    uint64_t s2[4] = {3, 4, 5, 3}, s1[2] = {5, 6}, c4 = 4, c6 = 6;
    for (int d = 0; d < 2; d++)
        for (int mode = 0; mode < 3; mode++) { /* training, training + ReLU, inference */
            uint64_t C = d ? c6 : c4;
            struct GCase c = {G_BN, d ? leaf(2, s1, -2, 3, 20) : leaf(4, s2, -2, 3, 21), leaf(1, &C, 0.5, 1.5, 22),
                              leaf(1, &C, -0.5, 0.5, 23), 0, 0, mode < 2, mode == 1, tensor_create(1, &C, DT_FLOAT64),
                              tensor_create(1, &C, DT_FLOAT64), NULL};
            fill_uniform(c.rm, -0.5, 0.5, 24);
            fill_uniform(c.rv, 0.5, 2, 25);
            char what[64];
            static const char *const modes[3] = {"training", "training+relu", "inference"};
            static const char *const parts[3] = {"x", "weight", "bias"};
            struct Node *ps[3] = {c.x, c.w, c.b};
            for (int p = 0; p < 3; p++) {
                snprintf(what, sizeof what, "batchnorm%dd %s: d/d%s", d ? 1 : 2, modes[mode], parts[p]);
                check(&c, ps[p], what);
            }
            for (int p = 0; p < 3; p++) leaf_free(ps[p]);
            tensor_free(c.rm);
            tensor_free(c.rv);
        }
    uint64_t s[2] = {4, 7};
    struct GCase c = {G_DROP, leaf(2, s, -1, 1, 30), NULL, NULL, 0, 0, 1, 0, NULL, NULL, tensor_create(2, s, DT_FLOAT64)};
    struct Rng r;
    rng_seed(&r, 5);
    for (uint64_t i = 0; i < 28; i++) tensor_f64(c.mask)[i] = rng_uniform(&r) < 0.3 ? 0 : 1 / 0.7;
    check(&c, c.x, "dropout");
    leaf_free(c.x);
    tensor_free(c.mask);
}

/* ---- max pooling against the naive rule: the first maximum, or the last NaN ---- */

static void naive_maxpool(const double *x, uint64_t planes, uint64_t H, uint64_t W, uint64_t k, uint64_t s,
                          double *y, double *count /* planes*H*W: how many windows chose each input */)
{
    uint64_t Ho = (H - k) / s + 1, Wo = (W - k) / s + 1;
    for (uint64_t p = 0; p < planes; p++)
        for (uint64_t oh = 0; oh < Ho; oh++)
            for (uint64_t ow = 0; ow < Wo; ow++) {
                double best = -INFINITY;
                uint64_t bi = p * H * W + oh * s * W + ow * s;
                for (uint64_t i = 0; i < k; i++)
                    for (uint64_t j = 0; j < k; j++) {
                        uint64_t at = p * H * W + (oh * s + i) * W + ow * s + j;
                        if (x[at] > best || isnan(x[at])) best = x[at], bi = at;
                    }
                y[(p * Ho + oh) * Wo + ow] = best;
                count[bi] += 1;
            }
}

TEST_ISA(maxpool_matches_naive_with_ties_and_nans)
{
    static const uint64_t geo[][4] = {{28, 28, 2, 2}, {14, 14, 2, 2}, {7, 9, 2, 2}, {5, 5, 3, 2}, {6, 7, 2, 1}, {3, 3, 3, 3}};
    for (uint32_t dt = 0; dt < DT_COUNT; dt++)
        for (size_t gi = 0; gi < sizeof geo / sizeof *geo; gi++) {
            uint64_t H = geo[gi][0], W = geo[gi][1], k = geo[gi][2], s = geo[gi][3], P = 6;
            uint64_t shape[4] = {2, 3, H, W}, n = P * H * W, Ho = (H - k) / s + 1, Wo = (W - k) / s + 1;
            struct Tensor *x = tensor_create(4, shape, dt);
            double *xd = mem_alloc(n * sizeof *xd), *yd = mem_alloc(P * Ho * Wo * sizeof *yd);
            double *cnt = mem_alloc_zeroed(n * sizeof *cnt);
            struct Rng r;
            rng_seed(&r, 40 + gi);
            for (uint64_t i = 0; i < n; i++) { /* few distinct values: many ties; a NaN now and then */
                xd[i] = (double)rng_below(&r, 4) - 2;
                if (rng_below(&r, 97) == 0) xd[i] = NAN;
                if (dt == DT_FLOAT32) tensor_f32(x)[i] = (float)xd[i];
                else tensor_f64(x)[i] = xd[i];
            }
            naive_maxpool(xd, P, H, W, k, s, yd, cnt);
            struct Graph g;
            graph_init(&g);
            struct Node *xn = graph_input(&g, x, 1), *y = nn_maxpool2d(xn, k, s);
            struct Tensor *seed = tensor_create(y->value->ndim, y->value->shape, dt);
            tensor_fill(seed, 1);
            backward_seeded(y, seed);
            uint64_t bad_y = 0, bad_g = 0;
            for (uint64_t i = 0; i < P * Ho * Wo; i++) {
                double v = tensor_at(y->value, i);
                bad_y += !(v == yd[i] || (isnan(v) && isnan(yd[i])));
            }
            for (uint64_t i = 0; i < n; i++) bad_g += tensor_at(xn->grad, i) != cnt[i];
            EXPECT_MSG(!bad_y && !bad_g, "%s %llux%llu k=%llu s=%llu: %llu outputs and %llu gradients differ",
                       dtype_name(dt), (unsigned long long)H, (unsigned long long)W, (unsigned long long)k,
                       (unsigned long long)s, (unsigned long long)bad_y, (unsigned long long)bad_g);
            tensor_free(seed);
            graph_free(&g);
            tensor_free(x);
            mem_free(xd);
            mem_free(yd);
            mem_free(cnt);
        }
}

/* ---- batch normalisation's statistics ---- */

TEST_ISA(batchnorm_running_statistics)
{
    /* channel 0 holds 1..8, channel 1 holds 2, 4, ..., 16 (N = 2, H*W = 4) */
    for (uint32_t dt = 0; dt < DT_COUNT; dt++) {
        uint64_t shape[4] = {2, 2, 2, 2}, C = 2;
        struct Tensor *x = tensor_create(4, shape, dt), *w = tensor_create(1, &C, dt), *b = tensor_create(1, &C, dt);
        struct Tensor *rm = tensor_zeros(1, &C, dt), *rv = tensor_create(1, &C, dt);
        tensor_fill(rv, 1);
        tensor_fill(w, 2);
        tensor_fill(b, 0.5);
        for (int n = 0; n < 2; n++)
            for (int c = 0; c < 2; c++)
                for (int i = 0; i < 4; i++) {
                    double v = (double)(n * 4 + i + 1) * (c + 1);
                    if (dt == DT_FLOAT32) tensor_f32(x)[(n * 2 + c) * 4 + i] = (float)v;
                    else tensor_f64(x)[(n * 2 + c) * 4 + i] = v;
                }
        struct Node *wn = node_from_tensor(w, 1), *bn = node_from_tensor(b, 1);
        struct Graph g;
        graph_init(&g);
        struct Node *y = nn_batchnorm(graph_input(&g, x, 0), graph_attach(&g, wn), graph_attach(&g, bn), rm, rv, 1, 0);
        double tol = dt == DT_FLOAT32 ? 1e-6 : 1e-14;
        for (int c = 0; c < 2; c++) {
            double mean = 4.5 * (c + 1), var = 5.25 * (c + 1) * (c + 1); /* biased variance of 1..8 */
            EXPECT_NEAR(tensor_at(rm, c), 0.1 * mean, tol * 10);
            EXPECT_NEAR(tensor_at(rv, c), 0.9 + 0.1 * var * 8 / 7, tol * 100);
            double want = (1 * (c + 1) - mean) / sqrt(var + 1e-5) * 2 + 0.5; /* the first value of the channel */
            EXPECT_NEAR(tensor_at(y->value, c * 4), want, tol * 10);
        }
        /* inference reads the running statistics and leaves them alone */
        double rm0 = tensor_at(rm, 0), rv0 = tensor_at(rv, 0);
        graph_reset(&g);
        y = nn_batchnorm(graph_input(&g, x, 0), graph_attach(&g, wn), graph_attach(&g, bn), rm, rv, 0, 0);
        EXPECT_NEAR(tensor_at(y->value, 0), (1 - rm0) / sqrt(rv0 + 1e-5) * 2 + 0.5, tol * 10);
        EXPECT(tensor_at(rm, 0) == rm0 && tensor_at(rv, 0) == rv0);
        graph_free(&g);
        node_free(wn);
        node_free(bn);
        tensor_free(x), tensor_free(w), tensor_free(b), tensor_free(rm), tensor_free(rv);
    }
}

static void bn_batch_of_one(void *arg)
{
    (void)arg;
    uint64_t shape[2] = {1, 3}, C = 3;
    struct Tensor *x = tensor_zeros(2, shape, DT_FLOAT32), *w = tensor_zeros(1, &C, DT_FLOAT32);
    struct Graph g;
    graph_init(&g);
    struct Node *wn = graph_input(&g, w, 0);
    nn_batchnorm(graph_input(&g, x, 0), wn, wn, NULL, NULL, 1, 0);
}

TEST(batchnorm_refuses_a_batch_of_one_in_training)
{
    char err[512];
    EXPECT(test_run_child(bn_batch_of_one, NULL, err, sizeof err) != 0);
    EXPECT_STR_CONTAINS(err, "expected more than 1 value per channel when training");
}

/* ---- dropout ---- */

static double *dropout_mask_of(uint64_t seed, uint64_t n, double p, int steps)
{
    struct Rng r;
    rng_seed(&r, seed);
    uint64_t shape[2] = {1, n};
    struct Tensor *x = tensor_create(2, shape, DT_FLOAT64);
    tensor_fill(x, 1);
    struct Graph g;
    graph_init(&g);
    double *out = mem_alloc(n * sizeof *out);
    for (int s = 0; s < steps; s++) { /* the last step's mask */
        graph_reset(&g);
        struct Node *y = nn_dropout(graph_input(&g, x, 0), p, &r);
        memcpy(out, y->value->data, n * sizeof *out);
    }
    graph_free(&g);
    tensor_free(x);
    return out;
}

TEST(dropout_mask_reproducible_and_scaled)
{
    uint64_t n = 100000;
    double p = 0.25;
    double *a = dropout_mask_of(7, n, p, 2), *b = dropout_mask_of(7, n, p, 2), *c = dropout_mask_of(8, n, p, 2);
    double *d = dropout_mask_of(7, n, p, 1);
    EXPECT(!memcmp(a, b, n * sizeof *a));
    EXPECT(memcmp(a, c, n * sizeof *a) != 0);
    EXPECT(memcmp(a, d, n * sizeof *a) != 0); /* each step draws a new mask */
    uint64_t zeros = 0, others = 0;
    double sum = 0;
    for (uint64_t i = 0; i < n; i++) {
        zeros += a[i] == 0;
        others += a[i] != 0 && a[i] != 1 / (1 - p);
        sum += a[i];
    }
    EXPECT_EQ_INT(others, 0);
    double sd = sqrt(n * p * (1 - p)); /* binomial: 4 standard deviations */
    EXPECT_MSG(fabs((double)zeros - n * p) < 4 * sd, "%llu of %llu dropped, expected about %.0f",
               (unsigned long long)zeros, (unsigned long long)n, n * p);
    EXPECT_NEAR(sum / (double)n, 1.0, 4 * sd / (double)n / (1 - p));
    mem_free(a), mem_free(b), mem_free(c), mem_free(d);
}

static struct Model *lenet_small(struct Model *m, const char *extra, uint64_t seed);

TEST(dropout_is_identity_in_inference_and_needs_a_run_in_training)
{
    struct Model m;
    lenet_small(&m, "", 3);
    struct Module *drop = NULL;
    for (uint32_t i = 0; i < m.n_mods; i++)
        if (m.mods[i]->kind == MOD_DROPOUT) drop = m.mods[i];
    EXPECT(drop != NULL);
    uint64_t shape[2] = {4, 8};
    struct Tensor *x = tensor_zeros(2, shape, DT_FLOAT32);
    struct Graph g;
    graph_init(&g);
    struct Node *xn = graph_input(&g, x, 0), *y;
    m.run.training = 0;
    drop->forward(drop, xn, &y);
    EXPECT(y == xn);
    m.run.training = 1;
    drop->forward(drop, xn, &y);
    EXPECT(y != xn && y->op == OP_DROPOUT);
    graph_free(&g);
    tensor_free(x);
    model_free(&m);
}

/* ---- configs ---- */

static int parse(const char *text, struct TrainConfig *c, char *err, size_t cap)
{
    err[0] = 0;
    return config_parse_text(text, strlen(text), "t.ini", c, err, cap);
}

TEST(layer_args_optional_and_real)
{
    struct TrainConfig c;
    char err[512];
    EXPECT_MSG(!parse("[model]\ninput_shape=2,9,9\nlayer=MaxPool2d,2\nlayer=AvgPool2d,3,1\nlayer=BatchNorm2d,2\n"
                      "layer=Linear,8,4\nlayer=BatchNorm1d,4\nlayer=Dropout,0.25\nlayer=Linear,4,2\n", &c, err, sizeof err),
               "%s", err);
    EXPECT_EQ_INT(c.layers[0].args.pool.k, 2);
    EXPECT_EQ_INT(c.layers[0].args.pool.stride, 2);
    EXPECT_EQ_INT(c.layers[0].out.d[1], 4);
    EXPECT_EQ_INT(c.layers[1].args.pool.stride, 1);
    EXPECT_EQ_INT(c.layers[1].out.d[2], 2);
    EXPECT_EQ_INT(c.layers[2].n_params, 8);
    EXPECT(c.layers[5].args.dropout.p == 0.25);
    char s[64];
    layer_spec_str(s, sizeof s, &c.layers[5]);
    EXPECT_MSG(!strcmp(s, "Dropout(0.25)"), "%s", s);
    layer_spec_str(s, sizeof s, &c.layers[0]);
    EXPECT_MSG(!strcmp(s, "MaxPool2d(2, 2)"), "%s", s);
}

TEST(layer_shape_and_argument_errors_name_the_line)
{
#define CNN "[model]\ninput_shape=16,4,4\n"
    static const struct { const char *text, *msg; } bad[] = {
        {CNN "layer=MaxPool2d,5\n", "t.ini:3: MaxPool2d window 5x5 is larger than its input 4x4 (16x4x4)"},
        {CNN "layer=AvgPool2d,2,2\nlayer=AvgPool2d,3\n", "t.ini:4: AvgPool2d window 3x3 is larger than its input 2x2 (16x2x2)"},
        {CNN "layer=BatchNorm2d,8\n", "t.ini:3: BatchNorm2d expects 8 channels but the input has 16 (16x4x4)"},
        {CNN "layer=Linear,256,6\nlayer=BatchNorm2d,6\n",
         "t.ini:4: BatchNorm2d needs a C,H,W input (after a Conv2d), not a flat one (6 values): use BatchNorm1d"},
        {CNN "layer=BatchNorm1d,16\n",
         "t.ini:3: BatchNorm1d needs a flat input (after a Linear layer), not a C,H,W one (16x4x4): use BatchNorm2d"},
        {CNN "layer=Linear,256,6\nlayer=BatchNorm1d,7\n", "t.ini:4: BatchNorm1d expects 7 features but the previous layer outputs 6"},
        {CNN "layer=Linear,256,6\nlayer=MaxPool2d,2\n", "t.ini:4: MaxPool2d cannot follow a Linear layer: its output is flat (6 values)"},
        {"[model]\ninput_dim=4\nlayer=MaxPool2d,2\n",
         "t.ini:3: MaxPool2d needs a C,H,W input: give input_shape=C,H,W instead of input_dim"},
        {CNN "layer=MaxPool2d\n", "t.ini:3: MaxPool2d takes 1 to 2 numbers: k,stride"},
        {CNN "layer=MaxPool2d,2,2,2\n", "t.ini:3: MaxPool2d takes 1 to 2 numbers: k,stride"},
        {CNN "layer=MaxPool2d,0\n", "t.ini:3: MaxPool2d k must be at least 1, got 0"},
        {CNN "layer=Dropout,1\n", "t.ini:3: Dropout p must be in [0, 1), got 1"},
        {CNN "layer=Dropout,-0.1\n", "t.ini:3: Dropout p must be in [0, 1), got -0.1"},
        {CNN "layer=Dropout,half\n", "t.ini:3: Dropout p: 'half' is not a number"},
        {CNN "layer=Dropout\n", "t.ini:3: Dropout takes 1 number: p"},
    };
#undef CNN
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct TrainConfig c;
        char err[512];
        EXPECT_MSG(parse(bad[i].text, &c, err, sizeof err) != 0, "accepted:\n%s", bad[i].text);
        EXPECT_MSG(!strcmp(err, bad[i].msg), "case %zu: got \"%s\", expected \"%s\"", i, err, bad[i].msg);
    }
}

/* ---- the model: fusions, names, files, the step ---- */

#define LENET_MODEL                                                                                           \
    "[model]\ninput_shape=1,8,8\nlayer=Conv2d,1,4,3,3,1,1\nlayer=BatchNorm2d,4\nactivation=ReLU\nlayer=MaxPool2d,2\n" \
    "layer=Conv2d,4,6,3,3,1,1\nlayer=BatchNorm2d,6\nactivation=ReLU\nlayer=AvgPool2d,2\nlayer=Linear,24,8\n"         \
    "layer=BatchNorm1d,8\nactivation=ReLU\nlayer=Dropout,0.5\nlayer=Linear,8,3\n"
#define LENET_TRAIN "[train]\nbatch_size=16\nlr=0.01\n"
static const char lenet_text[] = LENET_MODEL LENET_TRAIN;

/* The small LeNet above in float32, or float64 with dtype_line "dtype=float64\n". */
static struct Model *lenet_small(struct Model *m, const char *dtype_line, uint64_t seed)
{
    char text[1024], err[512];
    snprintf(text, sizeof text, "%s%s%s", LENET_MODEL, dtype_line, LENET_TRAIN);
    struct TrainConfig c;
    EXPECT_MSG(!parse(text, &c, err, sizeof err), "%s", err);
    model_init(m, &c, seed);
    return m;
}

static struct Tensor *random_batch(uint64_t rows, uint64_t d, uint32_t dt, uint64_t seed)
{
    uint64_t shape[2] = {rows, d};
    struct Tensor *x = tensor_create(2, shape, dt);
    fill_uniform(x, -1, 1, seed);
    return x;
}

TEST(model_names_state_after_parameters)
{
    struct Model m;
    lenet_small(&m, "", 1);
    static const char *const want[] = {
        "conv2d1.weight", "conv2d1.bias", "batchnorm2d1.weight", "batchnorm2d1.bias", "batchnorm2d1.running_mean",
        "batchnorm2d1.running_var", "conv2d2.weight", "conv2d2.bias", "batchnorm2d2.weight", "batchnorm2d2.bias",
        "batchnorm2d2.running_mean", "batchnorm2d2.running_var", "linear1.weight", "linear1.bias",
        "batchnorm1d1.weight", "batchnorm1d1.bias", "batchnorm1d1.running_mean", "batchnorm1d1.running_var",
        "linear2.weight", "linear2.bias"};
    EXPECT_EQ_INT(m.n_named, 20);
    for (uint32_t i = 0; i < m.n_named && i < 20; i++)
        EXPECT_MSG(!strcmp(m.named[i].name, want[i]), "name %u is %s, expected %s", i, m.named[i].name, want[i]);
    EXPECT_EQ_INT(m.n_params, 14); /* the optimizer's: parameters only, no running statistics */
    for (uint32_t i = 0; i < m.n_params; i++)
        for (uint32_t j = 0; j < m.n_mods; j++)
            for (uint32_t s = 0; s < m.mods[j]->n_state; s++) EXPECT(m.param_nodes[i]->value != m.mods[j]->state[s]);
    model_free(&m);
}

/* In training, the fused ops (BatchNorm + ReLU) give the unfused layers' outputs and
 * gradients bit for bit; in inference the folded BatchNorm gives them to rounding. */
TEST_ISA(batchnorm_fusions_match_the_unfused_layers)
{
    for (uint32_t dt = 0; dt < DT_COUNT; dt++) {
        struct Model a, b;
        lenet_small(&a, dt ? "dtype=float64\n" : "", 2);
        lenet_small(&b, dt ? "dtype=float64\n" : "", 2);
        a.run.training = b.run.training = 1;
        struct Tensor *x = random_batch(16, 64, a.cfg.dtype, 3);
        uint32_t cls[16];
        for (int i = 0; i < 16; i++) cls[i] = (uint32_t)(i % 3);
        struct Batch bt = {.x = x, .cls = cls, .rows = 16};
        struct Graph ga, gb;
        graph_init(&ga), graph_init(&gb);
        struct Node *oa, *ob;
        struct Node *la = train_loss(&a, &ga, &bt, &oa);
        /* b unfused: each module's own forward */
        struct Node *h = model_input(&gb, &b, x);
        for (uint32_t i = 0; i < b.n_mods; i++) b.mods[i]->forward(b.mods[i], h, &h);
        ob = h;
        struct Node *lb = loss_cross_entropy(ob, cls);
        model_zero_grad(&a), model_zero_grad(&b);
        backward(la), backward(lb);
        size_t es = dtype_size(a.cfg.dtype);
        EXPECT(!memcmp(oa->value->data, ob->value->data, tensor_numel(oa->value) * es));
        for (uint32_t i = 0; i < a.n_params; i++)
            EXPECT_MSG(!memcmp(a.param_nodes[i]->grad->data, b.param_nodes[i]->grad->data,
                               tensor_numel(a.param_nodes[i]->grad) * es), "%s gradient %u differs", dtype_name(dt), i);
        for (uint32_t i = 0; i < a.n_named; i++)
            EXPECT_MSG(!memcmp(a.named[i].t->data, b.named[i].t->data, tensor_numel(a.named[i].t) * es),
                       "%s differs after the forward", a.named[i].name);
        /* inference: folded (forward-only graph) against unfused */
        a.run.training = b.run.training = 0;
        graph_reset(&ga), graph_reset(&gb);
        graph_set_no_grad(&ga, 1);
        struct Node *fa = model_forward(&a, model_input(&ga, &a, x), 0);
        h = model_input(&gb, &b, x);
        for (uint32_t i = 0; i < b.n_mods; i++) b.mods[i]->forward(b.mods[i], h, &h);
        double err = dt ? test_max_err_f64(fa->value->data, h->value->data, tensor_numel(h->value), 1e-12, 1e-10)
                        : test_max_err_f32(fa->value->data, h->value->data, tensor_numel(h->value), 1e-5, 1e-4);
        EXPECT_MSG(err <= 1, "%s: folded inference differs (%.3g of tolerance)", dtype_name(dt), err);
        graph_free(&ga), graph_free(&gb);
        tensor_free(x);
        model_free(&a), model_free(&b);
    }
}

/* A step: the running statistics change in the forward, the optimizer moves only
 * parameters, and after the first step no heap call. Saved and loaded, the model
 * predicts what it predicted (inference mode). */
TEST(training_step_with_the_new_layers)
{
    struct Model m;
    lenet_small(&m, "", 4);
    struct Trainer t;
    train_init(&t, &m);
    struct Tensor *x = random_batch(16, 64, DT_FLOAT32, 5);
    uint32_t cls[16];
    for (int i = 0; i < 16; i++) cls[i] = (uint32_t)(i % 3);
    struct Batch bt = {.x = x, .cls = cls, .rows = 16};
    struct Tensor *rm = m.mods[1]->state[0];
    float before = tensor_f32(rm)[0];
    uint64_t calls = 0;
    for (int step = 0; step < 3; step++) {
        if (step == 1) calls = mem_alloc_calls();
        struct Node *loss = train_loss(&m, &t.g, &bt, NULL);
        model_zero_grad(&m);
        backward(loss);
        t.opt->step(t.opt);
        graph_reset(&t.g);
    }
    EXPECT_EQ_INT(mem_alloc_calls(), calls);
    EXPECT(tensor_f32(rm)[0] != before);
    /* save, load: inference mode, same outputs as this model in inference */
    char path[512];
    snprintf(path, sizeof path, "%s/bn.bin", test_tmpdir());
    char err[512] = "";
    EXPECT_MSG(model_save(path, m.named, m.n_named, lenet_text, err, sizeof err) == 0, "%s", err);
    struct Model l;
    EXPECT_MSG(model_from_file(&l, path, NULL, err, sizeof err) == 0, "%s", err);
    if (!err[0]) {
        EXPECT_EQ_INT(l.run.training, 0);
        m.run.training = 0;
        struct Graph g1, g2;
        graph_init(&g1), graph_init(&g2);
        graph_set_no_grad(&g1, 1), graph_set_no_grad(&g2, 1);
        struct Node *y1 = model_forward(&m, model_input(&g1, &m, x), 0), *y2 = model_forward(&l, model_input(&g2, &l, x), 0);
        EXPECT(!memcmp(y1->value->data, y2->value->data, tensor_numel(y1->value) * sizeof(float)));
        graph_free(&g1), graph_free(&g2);
        model_free(&l);
    }
    tensor_free(x);
    train_free(&t);
    model_free(&m);
}
