/* The model module and the layer table: the table is complete and consistent, a model
 * built from a config names its parameters from it, the forward-only (inference) graph
 * computes what the training graph computes while keeping less and touching no heap
 * after the first batch, and model files written before the layer table still load
 * and predict the same bytes. */
#include "test.h"
#include "mem.h"
#include "model.h"
#include "train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A spec of each kind that its shape rule accepts on a 2x6x6 (or 72-wide) input. */
static struct LayerSpec sample_spec(uint32_t kind, struct LayerShape *in)
{
    struct LayerSpec l = {.kind = kind};
    if (kind == MOD_LINEAR) l.args.linear.in = 72, l.args.linear.out = 5;
    else if (kind == MOD_CONV2D) l.args.conv2d.in_ch = 2, l.args.conv2d.out_ch = 3, l.args.conv2d.kh = 3,
                                 l.args.conv2d.kw = 2, l.args.conv2d.stride = 1, l.args.conv2d.padding = 1;
    else if (kind == MOD_MAXPOOL2D || kind == MOD_AVGPOOL2D) l.args.pool.k = 3, l.args.pool.stride = 2;
    else if (kind == MOD_DROPOUT) l.args.dropout.p = 0.5;
    else if (kind == MOD_BATCHNORM1D) l.args.batchnorm.n = 72;
    else if (kind == MOD_BATCHNORM2D) l.args.batchnorm.n = 2;
    int flat = kind == MOD_LINEAR || kind == MOD_SOFTMAX || kind == MOD_BATCHNORM1D;
    *in = flat ? (struct LayerShape){1, {72, 0, 0}} : (struct LayerShape){3, {2, 6, 6}};
    return l;
}

/* Every kind has a name, a shape rule, a constructor, forward and backward, and where it
 * has parameters or state their names; the module it builds holds as many values
 * (parameters and state) as its shape rule counts, and runs forward (in training, with a
 * run for dropout's generator) into the shape the rule gives. */
TEST(layer_table_is_complete)
{
    for (uint32_t k = 0; k < MOD_COUNT; k++) {
        const struct LayerType *lt = layer_type(k);
        EXPECT_MSG(lt && lt->name && lt->prefix && lt->shape && lt->create && lt->forward && lt->backward,
                   "layer kind %u is missing a part of its row", k);
        if (!lt || !lt->name || !lt->shape || !lt->create || !lt->forward) continue;
        EXPECT_MSG(lt->n_args <= LAYER_MAX_ARGS && (!lt->n_args || lt->args), "%s: argument list", lt->name);
        EXPECT_MSG(lt->n_params <= MODULE_MAX_PARAMS && (!lt->n_params || lt->param_names), "%s: parameter names",
                   lt->name);
        for (uint32_t j = 0; j < lt->n_params; j++) EXPECT_MSG(lt->param_names && lt->param_names[j], "%s", lt->name);
        EXPECT_MSG(lt->n_state <= MODULE_MAX_PARAMS && (!lt->n_state || lt->state_names), "%s: state names", lt->name);
        for (uint32_t j = 0; j < lt->n_state; j++) EXPECT_MSG(lt->state_names && lt->state_names[j], "%s", lt->name);
        for (uint32_t o = 0; o < k; o++) {
            EXPECT_MSG(strcmp(lt->name, layer_type(o)->name), "two kinds are called %s", lt->name);
            EXPECT_MSG(strcmp(lt->prefix, layer_type(o)->prefix), "two kinds number as %s", lt->prefix);
        }
        struct LayerShape in, out;
        struct LayerSpec l = sample_spec(k, &in);
        char err[256] = "";
        uint64_t n_params = 99;
        EXPECT_MSG(lt->shape(&l, &in, 1, &out, &n_params, err, sizeof err) == 0, "%s: %s", lt->name, err);
        struct Rng rng;
        rng_seed(&rng, 3);
        struct Module *m = module_create(&l, DT_FLOAT64, &rng);
        EXPECT_EQ_INT(m->kind, k);
        EXPECT_EQ_INT(m->n_params, lt->n_params);
        EXPECT_EQ_INT(m->n_state, lt->n_state);
        uint64_t n_state = 0;
        for (uint32_t j = 0; j < m->n_state; j++) n_state += tensor_numel(m->state[j]);
        EXPECT_EQ_INT(module_param_count(m) + n_state, n_params);
        struct LayerRun run = {.training = 1};
        rng_seed(&run.rng, 4);
        m->run = &run;
        EXPECT(m->forward == lt->forward);
        /* forward on a batch of 2 gives the rule's shape and uses the row's backward */
        struct Graph g;
        graph_init(&g);
        uint64_t shape[4] = {2, in.d[0], in.d[1], in.d[2]};
        struct Tensor *x = tensor_zeros(in.ndim + 1, shape, DT_FLOAT64);
        struct Node *xn = graph_input(&g, x, 1), *y;
        m->forward(m, xn, &y);
        EXPECT_EQ_INT(tensor_numel(y->value), 2 * layer_shape_numel(&out));
        EXPECT_MSG(y->backward_fn == lt->backward, "%s: the op's backward is not the row's", lt->name);
        graph_free(&g);
        tensor_free(x);
        module_free(m);
    }
}

/* Shape-rule errors come back through the parser with the layer's line. */
TEST(layer_shape_rules_report_through_the_parser)
{
    static const char text[] = "[model]\ninput_shape=3,5,5\nlayer=Conv2d,3,4,7,7,1,0\nlayer=Linear,9,2\n";
    struct TrainConfig c;
    char err[256] = "";
    EXPECT(config_parse_text(text, strlen(text), "s.ini", &c, err, sizeof err) != 0);
    EXPECT_MSG(!strcmp(err, "s.ini:3: Conv2d kernel 7x7 is larger than its padded input 5x5 (5x5 plus padding 0)"),
               "got \"%s\"", err);
}

static void parse_ok(const char *text, struct TrainConfig *c)
{
    char err[256] = "";
    EXPECT_MSG(config_parse_text(text, strlen(text), "m.ini", c, err, sizeof err) == 0, "%s", err);
}

TEST(model_names_parameters_from_the_table)
{
    struct TrainConfig c;
    parse_ok("[model]\ninput_shape=1,6,6\nlayer=Conv2d,1,2,3,3,1,1\nactivation=ReLU\nlayer=Conv2d,2,2,3,3,2,0\n"
             "layer=Linear,8,3\nactivation=Tanh\nlayer=Linear,3,2\n[train]\nnormalize=minmax\n", &c);
    struct Model m;
    model_init(&m, &c, 1);
    uint64_t d = 36;
    model_set_norm(&m, tensor_zeros(1, &d, DT_FLOAT32), tensor_zeros(1, &d, DT_FLOAT32));
    static const char *const want[] = {"conv2d1.weight", "conv2d1.bias", "conv2d2.weight", "conv2d2.bias",
                                       "linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias",
                                       "input.shift",    "input.scale"};
    EXPECT_EQ_INT(m.n_named, 10);
    for (uint32_t i = 0; i < m.n_named && i < 10; i++)
        EXPECT_MSG(!strcmp(m.named[i].name, want[i]), "name %u is %s, expected %s", i, m.named[i].name, want[i]);
    EXPECT_EQ_INT(m.n_params, 8);
    EXPECT(m.param_nodes[4]->value == m.mods[3]->params[0]);
    EXPECT_EQ_INT(model_param_count(&m), 2 * 9 + 2 + 2 * 2 * 9 + 2 + 8 * 3 + 3 + 3 * 2 + 2);
    model_free(&m);
}

/* The forward-only graph gives the training graph's outputs bit for bit, keeps less in
 * its arena (no split inputs or columns for backward), and no heap after batch one. */
TEST_ISA(model_inference_graph_is_forward_only)
{
    for (uint32_t dt = 0; dt < 2; dt++) {
        struct TrainConfig c;
        parse_ok(dt ? "[model]\ndtype=float64\ninput_shape=1,12,12\nlayer=Conv2d,1,8,3,3,1,1\nactivation=ReLU\n"
                      "layer=Conv2d,8,8,3,3,2,1\nactivation=ReLU\nlayer=Linear,288,10\nactivation=Softmax\n"
                    : "[model]\ninput_shape=1,12,12\nlayer=Conv2d,1,8,3,3,1,1\nactivation=ReLU\n"
                      "layer=Conv2d,8,8,3,3,2,1\nactivation=ReLU\nlayer=Linear,288,10\nactivation=Softmax\n",
                 &c);
        struct Model m;
        model_init(&m, &c, 5);
        uint64_t shape[2] = {16, 144};
        struct Tensor *x = tensor_create(2, shape, c.dtype);
        struct Rng r;
        rng_seed(&r, 9);
        for (uint64_t i = 0; i < tensor_numel(x); i++) {
            double v = rng_uniform(&r) - 0.5;
            if (dt) tensor_f64(x)[i] = v;
            else tensor_f32(x)[i] = (float)v;
        }
        struct Graph gt, gi;
        graph_init(&gt);
        graph_init(&gi);
        graph_set_no_grad(&gi, 1);
        struct Node *yt = model_forward(&m, model_input(&gt, &m, x), 1);
        struct Node *yi = model_forward(&m, model_input(&gi, &m, x), 1);
        EXPECT(yt->requires_grad && !yi->requires_grad);
        EXPECT(!memcmp(yt->value->data, yi->value->data, tensor_numel(yt->value) * dtype_size(c.dtype)));
        EXPECT_MSG(gi.arena.total < gt.arena.total, "inference arena %zu bytes, training %zu", gi.arena.total,
                   gt.arena.total);
        graph_reset(&gi);
        uint64_t calls = mem_alloc_calls();
        for (int b = 0; b < 3; b++) {
            model_forward(&m, model_input(&gi, &m, x), 1);
            graph_reset(&gi);
        }
        EXPECT_EQ_INT(mem_alloc_calls(), calls);
        graph_free(&gt);
        graph_free(&gi);
        tensor_free(x);
        model_free(&m);
    }
}

/* Files written by the first version's train (before the layer table) load, and infer
 * prints what that version's infer printed, byte for byte. */
TEST(model_files_of_version_0_still_load)
{
    static const struct { const char *model, *data, *opts, *want; } cases[] = {
        {"tests/fixtures/v0_cnn_f32.bin", "tests/fixtures/v0_digits8.csv", "-p", "tests/fixtures/v0_cnn_f32.out"},
        {"tests/fixtures/v0_mse_f64.bin", "tests/fixtures/v0_diabetes8.csv", "", "tests/fixtures/v0_mse_f64.out"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct Model m;
        char err[512] = "";
        EXPECT_MSG(model_from_file(&m, cases[i].model, NULL, err, sizeof err) == 0, "%s", err);
        if (!err[0]) model_free(&m);
        static char got[1 << 14], want[1 << 14], cmd[1024];
        const char *b = getenv("MINIDL_BIN");
        snprintf(cmd, sizeof cmd, "%s/infer %s %s %s", b && *b ? b : "build", cases[i].opts, cases[i].model,
                 cases[i].data);
        EXPECT_EQ_INT(test_run_cmd(cmd, got, sizeof got, NULL, 0), 0);
        FILE *f = fopen(cases[i].want, "rb");
        size_t n = f ? fread(want, 1, sizeof want - 1, f) : 0;
        if (f) fclose(f);
        want[n] = 0;
        EXPECT_MSG(n > 0 && !strcmp(got, want), "%s: infer printed\n%s\nexpected\n%s", cases[i].model, got, want);
    }
}
