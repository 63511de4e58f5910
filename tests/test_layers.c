/* Known values, the fast conv against the naive one, graph mechanics, training on XOR
 * and the no-heap-after-the-first-step guarantee. */
#include "test.h"
#include "gradcheck.h"
#include "activations.h"
#include "kernels/dispatch.h"
#include "kernels/ew.h"
#include "losses.h"
#include "train.h"
#include "math_kernels.h"
#include "mem.h"

#include <stdio.h>
#include <string.h>

static struct Tensor *vec(uint64_t rows, uint64_t cols, uint32_t dt, const double *v)
{
    uint64_t s[2] = {rows, cols};
    struct Tensor *t = tensor_create(2, s, dt);
    for (uint64_t i = 0; i < rows * cols; i++) {
        if (dt == DT_FLOAT32) tensor_f32(t)[i] = (float)v[i];
        else tensor_f64(t)[i] = v[i];
    }
    return t;
}

TEST(relu_sigmoid_known_values)
{
    static const double x[6] = {-2, -0.5, 0, 0.5, 3, -800};
    for (uint32_t dt = 0; dt < DT_COUNT; dt++) {
        struct Graph g;
        graph_init(&g);
        struct Tensor *t = vec(1, 6, dt, x);
        struct Node *in = graph_input(&g, t, 0);
        struct Node *r = act_relu(in), *s = act_sigmoid(in);
        static const double relu_want[6] = {0, 0, 0, 0.5, 3, 0};
        static const double sig_want[6] = {0.11920292202211755, 0.37754066879814541, 0.5, 0.62245933120185459,
                                           0.95257412682243336, 0};
        for (int i = 0; i < 6; i++) {
            EXPECT_NEAR(tensor_at(r->value, i), relu_want[i], 0);
            EXPECT_NEAR(tensor_at(s->value, i), sig_want[i], dt == DT_FLOAT32 ? 1e-7 : 1e-15);
        }
        /* no overflow at large |x| */
        struct Tensor *big = vec(1, 2, dt, (const double[]){1000, -1000});
        struct Node *sb = act_sigmoid(graph_input(&g, big, 0));
        EXPECT_NEAR(tensor_at(sb->value, 0), 1.0, 0);
        EXPECT_NEAR(tensor_at(sb->value, 1), 0.0, 0);
        tensor_free(big);
        tensor_free(t);
        graph_free(&g);
    }
}

TEST(square_gives_2x)
{
    static const double x[4] = {-1.5, 0, 2, 3.25};
    struct Graph g;
    graph_init(&g);
    struct Tensor *t = vec(1, 4, DT_FLOAT64, x);
    struct Node *p = node_from_tensor(t, 1);
    struct Node *a = graph_attach(&g, p);
    struct Node *y = ag_mul(a, a);
    uint64_t four[2] = {1, 4};
    struct Tensor *ones = tensor_create(2, four, DT_FLOAT64);
    tensor_fill(ones, 1);
    backward_seeded(y, ones);
    for (int i = 0; i < 4; i++) {
        EXPECT_NEAR(tensor_f64(y->value)[i], x[i] * x[i], 0);
        EXPECT_NEAR(tensor_f64(p->grad)[i], 2 * x[i], 0);
    }
    tensor_free(ones);
    node_free(p);
    tensor_free(t);
    graph_free(&g);
}

TEST(softmax_rows_sum_to_one_at_extremes)
{
    static const double x[6] = {1000, -1000, 0, 1000, 1000, -1000};
    for (uint32_t dt = 0; dt < DT_COUNT; dt++) {
        struct Graph g;
        graph_init(&g);
        struct Tensor *t = vec(2, 3, dt, x);
        struct Node *s = act_softmax(graph_input(&g, t, 0));
        for (int r = 0; r < 2; r++) {
            double sum = 0;
            for (int i = 0; i < 3; i++) {
                EXPECT(isfinite(tensor_at(s->value, r * 3 + i)));
                sum += tensor_at(s->value, r * 3 + i);
            }
            EXPECT_NEAR(sum, 1.0, 1e-6);
        }
        EXPECT_NEAR(tensor_at(s->value, 0), 1.0, 0);
        EXPECT_NEAR(tensor_at(s->value, 3), 0.5, 1e-7);
        tensor_free(t);
        graph_free(&g);
    }
}

TEST(cross_entropy_hand_computed)
{
    /* rows (1,2,3) target 2 and (0,0,0) target 0: -log softmax by hand */
    static const double x[6] = {1, 2, 3, 0, 0, 0};
    static const double cls[2] = {2, 0};
    double want = 0.5 * (-(3 - log(exp(1) + exp(2) + exp(3))) + log(3.0));
    for (uint32_t dt = 0; dt < DT_COUNT; dt++) {
        struct Graph g;
        graph_init(&g);
        struct Tensor *t = vec(2, 3, dt, x), *y = vec(2, 1, dt, cls);
        uint32_t c2[2], c1[1];
        struct Node *l = loss_cross_entropy(graph_input(&g, t, 0), test_classes(y, c2));
        EXPECT_NEAR(tensor_at(l->value, 0), want, dt == DT_FLOAT32 ? 1e-6 : 1e-15);
        /* stable at huge logits */
        struct Tensor *h = vec(1, 3, dt, (const double[]){1000, -1000, 0});
        struct Tensor *yh = vec(1, 1, dt, (const double[]){1});
        struct Node *lh = loss_cross_entropy(graph_input(&g, h, 0), test_classes(yh, c1));
        EXPECT_NEAR(tensor_at(lh->value, 0), 2000, 1e-3);
        tensor_free(h), tensor_free(yh), tensor_free(t), tensor_free(y);
        graph_free(&g);
    }
}

static void fill_random(struct Tensor *t, uint64_t seed) { fill_uniform(t, -1, 1, seed); }

TEST_ISA(conv_fast_equals_naive)
{
    /* N, C, H, W, O, kh, kw, stride, pad */
    static const uint64_t cases[][9] = {
        {2, 1, 28, 28, 8, 3, 3, 1, 1}, {3, 8, 28, 28, 16, 3, 3, 2, 1}, {1, 3, 9, 7, 5, 5, 3, 1, 0},
        {2, 2, 5, 5, 3, 5, 5, 1, 2}, {1, 4, 13, 11, 7, 3, 2, 3, 1}, {2, 1, 1, 1, 2, 1, 1, 1, 0},
    };
    for (uint32_t dt = 0; dt < DT_COUNT; dt++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            const uint64_t *c = cases[i];
            uint64_t sx[4] = {c[0], c[1], c[2], c[3]}, sw[4] = {c[4], c[1], c[5], c[6]}, sb[1] = {c[4]};
            uint64_t Ho = (c[2] + 2 * c[8] - c[5]) / c[7] + 1, Wo = (c[3] + 2 * c[8] - c[6]) / c[7] + 1;
            uint64_t so[4] = {c[0], c[4], Ho, Wo};
            struct Tensor *x = tensor_create(4, sx, dt), *w = tensor_create(4, sw, dt), *b = tensor_create(1, sb, dt);
            struct Tensor *ref = tensor_create(4, so, dt);
            fill_random(x, 100 + i), fill_random(w, 200 + i), fill_random(b, 300 + i);
            conv2d_forward_naive(x, w, b, c[7], c[8], ref);
            struct Graph g;
            graph_init(&g);
            struct Node *wn = node_from_tensor(w, 0), *bn = node_from_tensor(b, 0);
            struct Node *y = nn_conv2d(graph_input(&g, x, 0), wn, bn, c[7], c[8]);
            EXPECT(tensor_same_shape(y->value, ref));
            double err = dt == DT_FLOAT32 ? test_max_err_f32(y->value->data, ref->data, tensor_numel(ref), 1e-5, 1e-5)
                                          : test_max_err_f64(y->value->data, ref->data, tensor_numel(ref), 1e-12, 1e-12);
            EXPECT_MSG(err <= 1, "conv case %zu %s: error %.3g of tolerance", i, dtype_name(dt), err);
            node_free(wn), node_free(bn);
            graph_free(&g);
            tensor_free(x), tensor_free(w), tensor_free(b), tensor_free(ref);
        }
}

TEST(backward_through_a_chain_of_100000_nodes)
{
    uint64_t s[1] = {3};
    struct Tensor *t = tensor_zeros(1, s, DT_FLOAT64), *c = tensor_zeros(1, s, DT_FLOAT64);
    tensor_fill(c, 0.5);
    struct Node *p = node_from_tensor(t, 1), *cn = node_from_tensor(c, 0);
    struct Graph g;
    graph_init(&g);
    struct Node *y = graph_attach(&g, p);
    for (int i = 0; i < 100000; i++) y = ag_add(y, graph_attach(&g, cn));
    struct Tensor *ones = tensor_create(1, s, DT_FLOAT64);
    tensor_fill(ones, 1);
    backward_seeded(y, ones);
    EXPECT_NEAR(tensor_f64(y->value)[1], 50000, 0);
    EXPECT_NEAR(tensor_f64(p->grad)[2], 1.0, 0);
    tensor_free(ones);
    node_free(p), node_free(cn);
    tensor_free(t), tensor_free(c);
    graph_free(&g);
}

TEST(graph_mechanics)
{
    /* Parents that need no gradient are skipped; backward_fn is NULL when nothing needs one. */
    uint64_t s[2] = {2, 2};
    struct Tensor *a = tensor_zeros(2, s, DT_FLOAT64), *b = tensor_zeros(2, s, DT_FLOAT64);
    tensor_fill(a, 2), tensor_fill(b, 3);
    struct Node *pa = node_from_tensor(a, 1), *pb = node_from_tensor(b, 0);
    struct Graph g;
    graph_init(&g);
    struct Node *m = ag_mul(graph_attach(&g, pa), graph_attach(&g, pb));
    EXPECT(m->requires_grad);
    EXPECT(pb->grad == NULL);
    struct Node *frozen = ag_add(graph_attach(&g, pb), graph_attach(&g, pb));
    EXPECT(!frozen->requires_grad && frozen->backward_fn == NULL);
    struct Tensor *ones = tensor_create(2, s, DT_FLOAT64);
    tensor_fill(ones, 1);
    backward_seeded(m, ones);
    EXPECT_NEAR(tensor_f64(pa->grad)[3], 3, 0);
    backward_seeded(m, ones); /* gradients accumulate */
    EXPECT_NEAR(tensor_f64(pa->grad)[3], 6, 0);
    zero_grad(m);
    EXPECT_NEAR(tensor_f64(pa->grad)[3], 0, 0);
    EXPECT(str_cmp(op_name(OP_CONV2D), "conv2d") == 0);
    tensor_free(ones);
    node_free(pa), node_free(pb);
    tensor_free(a), tensor_free(b);
    graph_free(&g);
}

/* p -= lr * g for every parameter of the modules, then zero g. */
static void sgd_step(struct Module **mods, int n, double lr)
{
    const struct EwKernels *k = kernels_get()->ew;
    for (int i = 0; i < n; i++)
        for (uint32_t j = 0; j < mods[i]->n_params; j++) {
            struct Tensor *p = mods[i]->params[j], *gr = mods[i]->param_nodes[j]->grad;
            size_t cnt = tensor_numel(p);
            if (p->dtype == DT_FLOAT32) k->axpy_f32(cnt, (float)-lr, gr->data, p->data);
            else k->axpy_f64(cnt, -lr, gr->data, p->data);
            memset(gr->data, 0, cnt * dtype_size(p->dtype));
        }
}

TEST(mlp_learns_xor)
{
    for (uint32_t dt = 0; dt < DT_COUNT; dt++) {
        struct Rng rng;
        rng_seed(&rng, 7);
        struct Module *mods[4] = {nn_linear_create(2, 8, dt, &rng), act_module_create(MOD_TANH),
                                  nn_linear_create(8, 2, dt, &rng), act_module_create(MOD_SOFTMAX)};
        struct Tensor *x = vec(4, 2, dt, (const double[]){0, 0, 0, 1, 1, 0, 1, 1});
        struct Tensor *y = vec(4, 1, dt, (const double[]){0, 1, 1, 0});
        struct Graph g;
        graph_init(&g);
        double loss = 0;
        for (int step = 0; step < 2000; step++) {
            struct Node *out;
            uint32_t cls[4];
            struct Batch b = {.cls = test_classes(y, cls)};
            struct Node *l = train_loss_modules(mods, 4, graph_input(&g, x, 0), &b, LOSS_CROSS_ENTROPY, &out);
            loss = tensor_at(l->value, 0);
            backward(l);
            sgd_step(mods, 4, 0.5);
            graph_reset(&g);
        }
        struct Node *p = model_forward_modules(mods, 4, graph_input(&g, x, 0), 0);
        int correct = 0;
        for (int r = 0; r < 4; r++) {
            int pred = tensor_at(p->value, r * 2 + 1) > tensor_at(p->value, r * 2);
            correct += pred == (int)tensor_at(y, r);
            double rowsum = tensor_at(p->value, r * 2) + tensor_at(p->value, r * 2 + 1);
            EXPECT_NEAR(rowsum, 1.0, 1e-6); /* inference applies the final Softmax */
        }
        EXPECT_EQ_INT(correct, 4);
        EXPECT_MSG(loss < 0.05, "XOR loss %g after training (%s)", loss, dtype_name(dt));
        graph_free(&g);
        tensor_free(x), tensor_free(y);
        for (int i = 0; i < 4; i++) module_free(mods[i]);
    }
}

TEST(linear_module_layout_and_init)
{
    struct Rng rng;
    rng_seed(&rng, 3);
    struct Module *m = nn_linear_create(5, 3, DT_FLOAT32, &rng);
    EXPECT_EQ_INT(m->n_params, 2);
    EXPECT_EQ_INT(m->params[0]->shape[0], 3);
    EXPECT_EQ_INT(m->params[0]->shape[1], 5);
    EXPECT_EQ_INT(m->params[1]->shape[0], 3);
    double bound = 1 / sqrt(5.0);
    for (int i = 0; i < 15; i++) EXPECT(fabs(tensor_at(m->params[0], i)) <= bound);
    /* y = x W^T + b on a known input */
    struct Tensor *x = vec(2, 5, DT_FLOAT32, (const double[]){1, 0, 0, 0, 0, 0, 1, 1, 0, 0});
    struct Graph g;
    graph_init(&g);
    struct Node *y;
    m->forward(m, graph_input(&g, x, 0), &y);
    for (int o = 0; o < 3; o++) {
        EXPECT_NEAR(tensor_at(y->value, o), tensor_at(m->params[0], o * 5) + tensor_at(m->params[1], o), 1e-6);
        EXPECT_NEAR(tensor_at(y->value, 3 + o), tensor_at(m->params[0], o * 5 + 1) + tensor_at(m->params[0], o * 5 + 2) + tensor_at(m->params[1], o), 1e-6);
    }
    graph_free(&g);
    tensor_free(x);
    module_free(m);
    /* same seed, same model */
    struct Rng r1, r2;
    rng_seed(&r1, 9), rng_seed(&r2, 9);
    struct Module *a = nn_conv2d_create(2, 3, 3, 3, 1, 1, DT_FLOAT64, &r1), *b = nn_conv2d_create(2, 3, 3, 3, 1, 1, DT_FLOAT64, &r2);
    EXPECT(memcmp(a->params[0]->data, b->params[0]->data, 54 * 8) == 0);
    module_free(a), module_free(b);
}

/* Ten training steps of a network; every step after the first makes no heap call. */
static void check_no_heap_after_first_step(struct Module **mods, int n, struct Tensor *x, struct Tensor *y, const char *what)
{
    struct Graph g;
    graph_init(&g);
    uint64_t calls_after_first = 0;
    uint32_t cls[16];
    struct Batch b = {.cls = test_classes(y, cls)};
    for (int step = 0; step < 10; step++) {
        struct Node *l = train_loss_modules(mods, (uint32_t)n, graph_input(&g, x, 0), &b, LOSS_CROSS_ENTROPY, NULL);
        zero_grad(l);
        backward(l);
        sgd_step(mods, n, 0.01);
        graph_reset(&g);
        if (step == 0) calls_after_first = mem_alloc_calls();
    }
    EXPECT_MSG(mem_alloc_calls() == calls_after_first, "%s: %llu heap allocations in steps 2-10", what,
               (unsigned long long)(mem_alloc_calls() - calls_after_first));
    graph_free(&g);
}

TEST(training_step_makes_no_heap_allocation)
{
    struct Rng rng;
    rng_seed(&rng, 1);
    uint64_t sx[2] = {16, 784}, sy[2] = {16, 1}, sx4[4] = {8, 1, 28, 28}, sy4[2] = {8, 1};
    struct Tensor *x = tensor_create(2, sx, DT_FLOAT32), *y = tensor_zeros(2, sy, DT_FLOAT32);
    fill_uniform(x, 0, 1, 5);
    for (int i = 0; i < 16; i++) tensor_f32(y)[i] = (float)(i % 10);
    struct Module *mlp[4] = {nn_linear_create(784, 128, DT_FLOAT32, &rng), act_module_create(MOD_RELU),
                             nn_linear_create(128, 10, DT_FLOAT32, &rng), act_module_create(MOD_SOFTMAX)};
    check_no_heap_after_first_step(mlp, 4, x, y, "MLP");
    for (int i = 0; i < 4; i++) module_free(mlp[i]);

    struct Tensor *x4 = tensor_create(4, sx4, DT_FLOAT32), *y4 = tensor_zeros(2, sy4, DT_FLOAT32);
    fill_uniform(x4, 0, 1, 6);
    struct Module *cnn[5] = {nn_conv2d_create(1, 8, 3, 3, 1, 1, DT_FLOAT32, &rng), act_module_create(MOD_RELU),
                             nn_conv2d_create(8, 16, 3, 3, 2, 1, DT_FLOAT32, &rng), act_module_create(MOD_RELU),
                             nn_linear_create(3136, 10, DT_FLOAT32, &rng)};
    check_no_heap_after_first_step(cnn, 5, x4, y4, "CNN");
    for (int i = 0; i < 5; i++) module_free(cnn[i]);
    tensor_free(x), tensor_free(y), tensor_free(x4), tensor_free(y4);
}

TEST(invalidated_gradients_equal_zeroed_ones)
{
    struct Rng rng;
    rng_seed(&rng, 4);
    struct Module *lin = nn_linear_create(5, 3, DT_FLOAT64, &rng);
    struct Tensor *x = vec(4, 5, DT_FLOAT64, (const double[]){1, 2, 3, 4, 5, -1, 0, 1, 0, 2, 3, 3, -2, 1, 0, 0.5, 1, 1, 2, -3});
    struct Tensor *y = vec(4, 1, DT_FLOAT64, (const double[]){0, 2, 1, 1});
    struct Graph g;
    graph_init(&g);
    uint32_t cls[4];
    struct Batch b = {.cls = test_classes(y, cls)};
    struct Node *l = train_loss_modules(&lin, 1, graph_input(&g, x, 0), &b, LOSS_CROSS_ENTROPY, NULL);
    zero_grad(l);
    backward(l);
    struct Tensor *want_w = tensor_copy(lin->param_nodes[0]->grad), *want_b = tensor_copy(lin->param_nodes[1]->grad);
    /* garbage in the buffers, marked stale: backward must overwrite, not add */
    tensor_fill(lin->param_nodes[0]->grad, 1e6);
    tensor_fill(lin->param_nodes[1]->grad, -7);
    node_grad_invalidate(lin->param_nodes[0]);
    node_grad_invalidate(lin->param_nodes[1]);
    backward(l);
    node_grad_settle(lin->param_nodes[0]);
    EXPECT(test_max_err_f64(lin->param_nodes[0]->grad->data, want_w->data, 15, 1e-15, 1e-15) <= 1);
    EXPECT(test_max_err_f64(lin->param_nodes[1]->grad->data, want_b->data, 3, 1e-15, 1e-15) <= 1);
    /* a stale gradient that nothing wrote reads as zero after settling */
    tensor_fill(lin->param_nodes[1]->grad, 3);
    node_grad_invalidate(lin->param_nodes[1]);
    node_grad_settle(lin->param_nodes[1]);
    EXPECT_NEAR(tensor_f64(lin->param_nodes[1]->grad)[2], 0, 0);
    tensor_free(want_w), tensor_free(want_b), tensor_free(x), tensor_free(y);
    graph_free(&g);
    module_free(lin);
}

TEST(graph_print_names_ops_and_shapes)
{
    struct Rng rng;
    rng_seed(&rng, 2);
    struct Module *mods[2] = {nn_linear_create(5, 3, DT_FLOAT32, &rng), act_module_create(MOD_RELU)};
    struct Tensor *x = vec(4, 5, DT_FLOAT32, (const double[]){1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 1, 2, 3, 4, 5});
    struct Tensor *y = vec(4, 1, DT_FLOAT32, (const double[]){0, 1, 2, 1});
    struct Graph g;
    graph_init(&g);
    uint32_t cls[4];
    struct Batch b = {.cls = test_classes(y, cls)};
    struct Node *l = train_loss_modules(mods, 2, graph_input(&g, x, 0), &b, LOSS_CROSS_ENTROPY, NULL);
    FILE *f = tmpfile();
    EXPECT(f != NULL);
    if (f) {
        graph_print(l, f);
        char text[2048] = {0};
        rewind(f);
        size_t n = fread(text, 1, sizeof text - 1, f);
        text[n] = 0;
        fclose(f);
        EXPECT_STR_CONTAINS(text, "cross_entropy_loss");
        EXPECT_STR_CONTAINS(text, "relu");
        EXPECT_STR_CONTAINS(text, "linear");
        EXPECT_STR_CONTAINS(text, "4x3");
        EXPECT_STR_CONTAINS(text, "3x5");  /* the weight, a leaf that wants a gradient */
    }
    graph_free(&g);
    tensor_free(x), tensor_free(y);
    module_free(mods[0]), module_free(mods[1]);
}
