/* Tests of the config parser: the bundled configs, the forgiving syntax, every key,
 * every rejected input with its exact message, shape checking, and building modules. */
#include "test.h"
#include "config_parser.h"
#include "mem.h"
#include "model.h"
#include "tensor.h"

#include <stdio.h>
#include <string.h>

/* Parses text as "t.ini"; returns the parser's result, err holds the message. */
static int parse(const char *text, struct TrainConfig *cfg, char *err, size_t cap)
{
    err[0] = 0;
    return config_parse_text(text, strlen(text), "t.ini", cfg, err, cap);
}

static const char spec_example[] =
    "# comment\n"
    "[model]\n"
    "input_dim=784            # or input_shape=C,H,W for convolutional models\n"
    "layer=Linear,784,64\n"
    "activation=ReLU\n"
    "layer=Linear,64,10\n"
    "activation=Softmax\n"
    "\n"
    "[train]\n"
    "optimizer=Adam           # or SGD\n"
    "lr=0.001\n"
    "epochs=10\n"
    "batch_size=64\n"
    "loss=CrossEntropy        # or MSE\n";

static void expect_layer(const struct LayerSpec *l, uint32_t kind, uint32_t ndim, uint64_t d0, uint64_t d1,
                         uint64_t d2, uint64_t n_params, int line)
{
    EXPECT_EQ_INT(l->kind, kind);
    EXPECT_EQ_INT(l->out.ndim, ndim);
    EXPECT_EQ_INT(l->out.d[0], d0);
    if (ndim == 3) {
        EXPECT_EQ_INT(l->out.d[1], d1);
        EXPECT_EQ_INT(l->out.d[2], d2);
    }
    EXPECT_EQ_INT(l->n_params, n_params);
    EXPECT_EQ_INT(l->line, line);
}

TEST(config_defaults_documented)
{
    struct TrainConfig c;
    config_defaults(&c);
    EXPECT(!strcmp(c.optimizer_name, "Adam"));
    EXPECT_NEAR(c.lr, 0.001, 0);
    EXPECT_EQ_INT(c.epochs, 10);
    EXPECT_EQ_INT(c.batch_size, 64);
    EXPECT(!strcmp(c.loss_name, "CrossEntropy"));
    EXPECT_EQ_INT(c.loss, LOSS_CROSS_ENTROPY);
    EXPECT_NEAR(c.momentum, 0, 0);
    EXPECT_NEAR(c.beta1, 0.9, 0);
    EXPECT_NEAR(c.beta2, 0.999, 0);
    EXPECT_NEAR(c.eps, 1e-8, 0);
    EXPECT_EQ_INT(c.seed, 42);
    EXPECT_EQ_INT(c.shuffle, 1);
    EXPECT_EQ_INT(c.normalize, NORM_NONE);
    EXPECT_EQ_INT(c.lr_schedule, LR_CONSTANT);
    EXPECT_EQ_INT(c.dtype, DT_FLOAT32);
    EXPECT_EQ_INT(c.n_layers, 0);
}

TEST(config_spec_example)
{
    struct TrainConfig c;
    char err[256];
    EXPECT_MSG(parse(spec_example, &c, err, sizeof err) == 0, "%s", err);
    EXPECT_EQ_INT(c.input_ndim, 1);
    EXPECT_EQ_INT(c.input_dim, 784);
    EXPECT_EQ_INT(c.output_dim, 10);
    EXPECT_EQ_INT(c.n_layers, 4);
    expect_layer(&c.layers[0], MOD_LINEAR, 1, 64, 0, 0, 784 * 64 + 64, 4);
    expect_layer(&c.layers[1], MOD_RELU, 1, 64, 0, 0, 0, 5);
    expect_layer(&c.layers[2], MOD_LINEAR, 1, 10, 0, 0, 64 * 10 + 10, 6);
    expect_layer(&c.layers[3], MOD_SOFTMAX, 1, 10, 0, 0, 0, 7);
    EXPECT_EQ_INT(c.layers[0].args.v[0], 784);
    EXPECT_EQ_INT(c.layers[0].args.v[1], 64);
    // Defaults survive for the keys the example leaves out.
    EXPECT_EQ_INT(c.seed, 42);
    EXPECT_EQ_INT(c.dtype, DT_FLOAT32);
}

TEST(config_example_files_parse)
{
    static const struct { const char *path; uint64_t in, out; int loss, norm; uint32_t n_layers; } ex[] = {
        {"configs/xor.ini", 2, 2, LOSS_CROSS_ENTROPY, NORM_NONE, 3},
        {"configs/digits_mlp.ini", 64, 10, LOSS_CROSS_ENTROPY, NORM_STANDARD, 4},
        {"configs/diabetes_mse.ini", 10, 1, LOSS_MSE, NORM_STANDARD, 3},
        {"configs/fmnist_mlp.ini", 784, 10, LOSS_CROSS_ENTROPY, NORM_STANDARD, 4},
        {"configs/fmnist_cnn.ini", 784, 10, LOSS_CROSS_ENTROPY, NORM_STANDARD, 5},
    };
    for (size_t i = 0; i < sizeof ex / sizeof *ex; i++) {
        struct TrainConfig c;
        char err[256] = "";
        int rc = config_parse_file(ex[i].path, &c, err, sizeof err);
        EXPECT_MSG(rc == 0, "%s: %s", ex[i].path, err);
        if (rc) continue;
        EXPECT_EQ_INT(c.input_dim, ex[i].in);
        EXPECT_EQ_INT(c.output_dim, ex[i].out);
        EXPECT_EQ_INT(c.loss, ex[i].loss);
        EXPECT_EQ_INT(c.normalize, ex[i].norm);
        EXPECT_EQ_INT(c.n_layers, ex[i].n_layers);
    }
}

TEST(config_cnn_shapes)
{
    struct TrainConfig c;
    char err[256] = "";
    EXPECT_MSG(config_parse_file("configs/fmnist_cnn.ini", &c, err, sizeof err) == 0, "%s", err);
    EXPECT_EQ_INT(c.input_ndim, 3);
    EXPECT_EQ_INT(c.input_shape[0], 1);
    EXPECT_EQ_INT(c.input_shape[1], 28);
    EXPECT_EQ_INT(c.input_shape[2], 28);
    expect_layer(&c.layers[0], MOD_CONV2D, 3, 8, 28, 28, 8 * 9 + 8, c.layers[0].line);
    expect_layer(&c.layers[1], MOD_RELU, 3, 8, 28, 28, 0, c.layers[1].line);
    expect_layer(&c.layers[2], MOD_CONV2D, 3, 16, 14, 14, 16 * 8 * 9 + 16, c.layers[2].line);
    expect_layer(&c.layers[4], MOD_LINEAR, 1, 10, 0, 0, 3136 * 10 + 10, c.layers[4].line);
    uint64_t want[6] = {8, 16, 3, 3, 2, 1};
    for (int i = 0; i < 6; i++) EXPECT_EQ_INT(c.layers[2].args.v[i], want[i]);
}

TEST(config_forgiving_syntax)
{
    // BOM, CRLF, blank and whitespace-only lines, tabs and spaces around '=' and commas,
    // inline comments with and without a space, no final newline.
    static const char text[] =
        "\xEF\xBB\xBF# a config written on Windows\r\n"
        "\r\n"
        "  [ model ]   # the net\r\n"
        "\t \r\n"
        "input_dim \t=\t 4\r\n"
        "layer = Linear , 4 ,\t3   # first\r\n"
        "activation=Tanh#no space\r\n"
        "layer=Linear,3,2\r\n"
        "[train]\r\n"
        "lr = 0.5\r\n"
        "epochs\t= 3";
    struct TrainConfig c;
    char err[256];
    EXPECT_MSG(parse(text, &c, err, sizeof err) == 0, "%s", err);
    EXPECT_EQ_INT(c.input_dim, 4);
    EXPECT_EQ_INT(c.n_layers, 3);
    EXPECT_EQ_INT(c.layers[0].args.v[1], 3);
    EXPECT_EQ_INT(c.layers[0].line, 6);
    EXPECT_EQ_INT(c.layers[1].kind, MOD_TANH);
    EXPECT_EQ_INT(c.output_dim, 2);
    EXPECT_NEAR(c.lr, 0.5, 0);
    EXPECT_EQ_INT(c.epochs, 3);
}

TEST(config_every_key_lands)
{
    static const char text[] =
        "[model]\n"
        "input_shape=2,5,5\n"
        "dtype=float64\n"
        "layer=Conv2d,2,4,3,3,1,0\n"   // 4x3x3
        "activation=Sigmoid\n"
        "layer=Linear,36,1\n"
        "[train]\n"
        "optimizer=SGD\n"
        "lr=0.25\n"
        "epochs=1e3\n"
        "batch_size=3\n"
        "loss=MSE\n"
        "momentum=0.5\n"
        "beta1=0.8\n"
        "beta2=0.99\n"
        "eps=1e-6\n"
        "seed=123\n"
        "shuffle=0\n"
        "normalize=minmax\n"
        "lr_schedule=cosine\n";
    struct TrainConfig c;
    char err[256];
    EXPECT_MSG(parse(text, &c, err, sizeof err) == 0, "%s", err);
    EXPECT_EQ_INT(c.dtype, DT_FLOAT64);
    EXPECT_EQ_INT(c.input_ndim, 3);
    EXPECT_EQ_INT(c.input_dim, 50);
    EXPECT_EQ_INT(c.output_dim, 1);
    expect_layer(&c.layers[0], MOD_CONV2D, 3, 4, 3, 3, 4 * 2 * 9 + 4, 4);
    expect_layer(&c.layers[1], MOD_SIGMOID, 3, 4, 3, 3, 0, 5);
    expect_layer(&c.layers[2], MOD_LINEAR, 1, 1, 0, 0, 37, 6);
    EXPECT(!strcmp(c.optimizer_name, "SGD"));
    EXPECT_NEAR(c.lr, 0.25, 0);
    EXPECT_EQ_INT(c.epochs, 1000);
    EXPECT_EQ_INT(c.batch_size, 3);
    EXPECT(!strcmp(c.loss_name, "MSE"));
    EXPECT_EQ_INT(c.loss, LOSS_MSE);
    EXPECT_NEAR(c.momentum, 0.5, 0);
    EXPECT_NEAR(c.beta1, 0.8, 0);
    EXPECT_NEAR(c.beta2, 0.99, 0);
    EXPECT_NEAR(c.eps, 1e-6, 0);
    EXPECT_EQ_INT(c.seed, 123);
    EXPECT_EQ_INT(c.shuffle, 0);
    EXPECT_EQ_INT(c.normalize, NORM_MINMAX);
    EXPECT_EQ_INT(c.lr_schedule, LR_COSINE);
}

/* A valid [model] to which a bad [train] line is appended (that line is line 5). */
#define MODEL "[model]\ninput_dim=4\nlayer=Linear,4,2\n[train]\n"
#define M1 "[model]\ninput_dim=4\n"

static const struct { const char *text, *msg; } bad[] = {
    {"lr=0.1\n[train]\n", "t.ini:1: key 'lr' before any section (put it under [train])"},
    {"foo=1\n", "t.ini:1: key 'foo' before any section"},
    {"[modle]\n", "t.ini:1: unknown section [modle] (did you mean [model]?)"},
    {"[data]\n", "t.ini:1: unknown section [data] (expected [model] or [train])"},
    {"[model\n", "t.ini:1: missing ']' in section header"},
    {M1 "[model]\n", "t.ini:3: section [model] given twice (first on line 1)"},
    {M1 "activaton=ReLU\n", "t.ini:3: unknown key 'activaton' in [model] (did you mean 'activation'?)"},
    {MODEL "learning_rate=0.1\n", "t.ini:5: unknown key 'learning_rate' in [train]"},
    {M1 "lr=0.1\n", "t.ini:3: key 'lr' belongs in [train], not [model]"},
    {M1 "layer Linear,4,2\n", "t.ini:3: expected key=value, [section] or a # comment, got 'layer Linear,4,2'"},
    {M1 "=4\n", "t.ini:3: missing key before '='"},
    {MODEL "lr=\n", "t.ini:5: lr: missing value"},
    {M1 "layer=Dense,4,2\n", "t.ini:3: unknown layer type 'Dense' (expected Linear, Conv2d, MaxPool2d, AvgPool2d, Dropout, BatchNorm1d or BatchNorm2d)"},
    {M1 "layer=linear,4,2\n", "t.ini:3: unknown layer type 'linear' (did you mean 'Linear'?)"},
    {M1 "layer=Linear,4,2\nactivation=relu\n", "t.ini:4: unknown activation 'relu' (did you mean 'ReLU'?)"},
    {M1 "layer=Linear,4,2\nactivation=Swish\n",
     "t.ini:4: unknown activation 'Swish' (expected ReLU, Sigmoid, Tanh or Softmax)"},
    {M1 "dtype=float16\n", "t.ini:3: unknown dtype 'float16' (did you mean 'float32'?)"},
    {M1 "dtype=double\n", "t.ini:3: unknown dtype 'double' (expected float32 or float64)"},
    {MODEL "optimizer=Adma\n", "t.ini:5: unknown optimizer 'Adma' (did you mean 'Adam'?)"},
    {MODEL "optimizer=RMSprop\n", "t.ini:5: unknown optimizer 'RMSprop' (expected Adam or SGD)"},
    {MODEL "loss=mse\n", "t.ini:5: unknown loss 'mse' (did you mean 'MSE'?)"},
    {MODEL "loss=NLL\n", "t.ini:5: unknown loss 'NLL' (expected CrossEntropy or MSE)"},
    {MODEL "normalize=zscore\n", "t.ini:5: unknown normalize value 'zscore' (expected none, minmax or standard)"},
    {MODEL "lr_schedule=step\n", "t.ini:5: unknown lr_schedule 'step' (expected constant or cosine)"},
    {MODEL "lr_schedule=cosin\n", "t.ini:5: unknown lr_schedule 'cosin' (did you mean 'cosine'?)"},
    {MODEL "lr=abc\n", "t.ini:5: lr: 'abc' is not a number"},
    {MODEL "lr=0.1x\n", "t.ini:5: lr: '0.1x': trailing characters after the number"},
    {MODEL "lr=nan\n", "t.ini:5: lr: 'nan': NaN or Inf is not allowed"},
    {MODEL "lr=1e999\n", "t.ini:5: lr: '1e999': number out of range"},
    {MODEL "lr=-1\n", "t.ini:5: lr must be greater than 0, got -1"},
    {MODEL "lr=0\n", "t.ini:5: lr must be greater than 0, got 0"},
    {MODEL "eps=0\n", "t.ini:5: eps must be greater than 0, got 0"},
    {MODEL "momentum=1\n", "t.ini:5: momentum must be in [0, 1), got 1"},
    {MODEL "momentum=-0.1\n", "t.ini:5: momentum must be in [0, 1), got -0.1"},
    {MODEL "beta1=1.5\n", "t.ini:5: beta1 must be in [0, 1), got 1.5"},
    {MODEL "beta2=-0.5\n", "t.ini:5: beta2 must be in [0, 1), got -0.5"},
    {MODEL "epochs=0\n", "t.ini:5: epochs must be at least 1, got 0"},
    {MODEL "epochs=2.5\n", "t.ini:5: epochs: '2.5' is not a whole number"},
    {MODEL "epochs=ten\n", "t.ini:5: epochs: 'ten' is not a number"},
    {MODEL "batch_size=0\n", "t.ini:5: batch_size must be at least 1, got 0"},
    {MODEL "batch_size=-64\n", "t.ini:5: batch_size must be at least 1, got -64"},
    {MODEL "batch_size=99999999999999999999\n",
     "t.ini:5: batch_size: 99999999999999999999 is too large (at most 1000000000)"},
    {MODEL "seed=-1\n", "t.ini:5: seed must be at least 0, got -1"},
    {MODEL "shuffle=yes\n", "t.ini:5: shuffle must be 0 or 1, got 'yes'"},
    {MODEL "lr=0.1\nepochs=3\nlr=0.2\n", "t.ini:7: lr given twice (first on line 5)"},
    {M1 "input_dim=5\n", "t.ini:3: input_dim given twice (first on line 2)"},
    {M1 "input_shape=1,2,2\n",
     "t.ini:3: input_shape given but the input was already set on line 2 (give input_dim or input_shape, not both)"},
    {"[model]\ninput_shape=1,28\n", "t.ini:2: input_shape takes 3 numbers: C,H,W"},
    {"[model]\ninput_shape=1,0,28\n", "t.ini:2: input_shape H must be at least 1, got 0"},
    {"[model]\ninput_dim=0\n", "t.ini:2: input_dim must be at least 1, got 0"},
    {M1 "layer=Linear,4\n", "t.ini:3: Linear takes 2 numbers: in,out"},
    {M1 "layer=Linear,4,2,1\n", "t.ini:3: Linear takes 2 numbers: in,out"},
    {"[model]\ninput_shape=1,8,8\nlayer=Conv2d,1,8,3\n", "t.ini:3: Conv2d takes 6 numbers: in_ch,out_ch,kh,kw,stride,padding"},
    {"[model]\ninput_shape=1,8,8\nlayer=Conv2d,1,8,3,3,1,1,1,1\n",
     "t.ini:3: Conv2d takes 6 numbers: in_ch,out_ch,kh,kw,stride,padding"},
    {"[model]\ninput_shape=1,8,8\nlayer=Conv2d,1,8,0,3,1,1\n", "t.ini:3: Conv2d kh must be at least 1, got 0"},
    {"[model]\ninput_shape=1,8,8\nlayer=Conv2d,1,8,3,3,0,1\n", "t.ini:3: Conv2d stride must be at least 1, got 0"},
    {"[model]\ninput_shape=1,8,8\nlayer=Conv2d,1,8,3,3,1,-1\n", "t.ini:3: Conv2d padding must be at least 0, got -1"},
    {M1 "layer=Linear,4,x\n", "t.ini:3: Linear out: 'x' is not a number"},
    {"[model]\ninput_dim=1000000000\nlayer=Linear,1000000000,1000000000\n",
     "t.ini:3: Linear 1000000000x1000000000 is too large (more than 4294967296 weights)"},
    {"[model]\ninput_shape=100000,100000,100000\n", "t.ini:2: input_shape is too large (more than 4294967296 values)"},
    {"[model]\ninput_shape=1,8,8\nlayer=Conv2d,1,100000,3,3,1,100000\nlayer=Linear,1,2\n",
     "t.ini:3: Conv2d is too large (more than 4294967296 weights or output values)"},
    {"[train]\nlr=0.1\n", "t.ini:1: no [model] section"},
    {"# nothing\n[model]\nlayer=Linear,4,2\n", "t.ini:2: [model] needs input_dim=N or input_shape=C,H,W"},
    {"[model]\ninput_dim=4\n[train]\nlr=0.1\n", "t.ini:1: [model] has no layers (add layer=Linear,in,out)"},
    {M1 "activation=ReLU\n", "t.ini:1: [model] has no layers (add layer=Linear,in,out)"},
    {M1 "layer=Linear,5,2\n", "t.ini:3: Linear expects 5 inputs but the input has 4"},
    {"[model]\ninput_shape=3,4,4\nlayer=Linear,47,2\n", "t.ini:3: Linear expects 47 inputs but the input has 48 (3x4x4)"},
    {M1 "layer=Linear,4,8\nactivation=ReLU\nlayer=Linear,6,2\n",
     "t.ini:5: Linear expects 6 inputs but the previous layer outputs 8"},
    {M1 "layer=Conv2d,1,8,3,3,1,1\n", "t.ini:3: Conv2d needs a C,H,W input: give input_shape=C,H,W instead of input_dim"},
    {"[model]\ninput_shape=1,4,4\nlayer=Linear,16,8\nactivation=ReLU\nlayer=Conv2d,8,8,1,1,1,0\nlayer=Linear,8,2\n",
     "t.ini:5: Conv2d cannot follow a Linear layer: its output is flat (8 values)"},
    {"[model]\ninput_shape=1,28,28\nlayer=Conv2d,3,8,3,3,1,1\n",
     "t.ini:3: Conv2d expects 3 input channels but the input has 1 (1x28x28)"},
    {"[model]\ninput_shape=1,8,8\nlayer=Conv2d,1,4,3,3,1,1\nlayer=Conv2d,2,4,3,3,1,1\n",
     "t.ini:4: Conv2d expects 2 input channels but the previous layer outputs 4 (4x8x8)"},
    {"[model]\ninput_shape=1,4,4\nlayer=Conv2d,1,2,7,7,1,1\nlayer=Linear,2,2\n",
     "t.ini:3: Conv2d kernel 7x7 is larger than its padded input 6x6 (4x4 plus padding 1)"},
    {"[model]\ninput_shape=1,4,8\nlayer=Conv2d,1,2,3,9,1,0\nlayer=Linear,2,2\n",
     "t.ini:3: Conv2d kernel 3x9 is larger than its padded input 4x8 (4x8 plus padding 0)"},
    {"[model]\ninput_shape=1,4,4\nlayer=Conv2d,1,2,3,3,1,1\n",
     "t.ini:3: the network ends with a C,H,W output (2x4x4): end it with a Linear layer"},
    {"[model]\ninput_shape=1,4,4\nlayer=Conv2d,1,2,3,3,1,1\nactivation=Softmax\nlayer=Linear,32,2\n",
     "t.ini:4: Softmax needs a flat input (after a Linear layer), not a C,H,W one"},
    {M1 "layer=Linear,4,1\n[train]\nloss=CrossEntropy\n",
     "t.ini:5: loss=CrossEntropy needs at least 2 outputs but the network has 1 (use loss=MSE for regression)"},
    {M1 "layer=Linear,4,1\n",
     "t.ini:3: loss=CrossEntropy needs at least 2 outputs but the network has 1 (use loss=MSE for regression)"},
};

TEST(config_rejects_bad_input)
{
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct TrainConfig c;
        char err[512];
        int rc = parse(bad[i].text, &c, err, sizeof err);
        EXPECT_MSG(rc != 0, "accepted:\n%s", bad[i].text);
        EXPECT_MSG(!strcmp(err, bad[i].msg), "case %zu: got \"%s\", expected \"%s\"", i, err, bad[i].msg);
    }
}

TEST(config_shape_mismatch_message)
{
    static const char text[] =
        "[model]\n"
        "input_shape=1,28,28\n"
        "layer=Conv2d,1,16,3,3,2,1   # 16x14x14\n"
        "activation=ReLU\n"
        "layer=Linear,100,10\n";
    struct TrainConfig c;
    char err[256] = "";
    EXPECT(config_parse_text(text, strlen(text), "config.ini", &c, err, sizeof err) != 0);
    EXPECT_MSG(!strcmp(err, "config.ini:5: Linear expects 100 inputs but the previous layer outputs 3136 (16x14x14)"),
               "got \"%s\"", err);
}

TEST(config_limits)
{
    // Up to CONFIG_MAX_LAYERS layers, activations included; one more is refused.
    char text[4096];
    size_t n = (size_t)snprintf(text, sizeof text, "[model]\ninput_dim=3\n");
    for (int i = 0; i < CONFIG_MAX_LAYERS; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, i % 2 ? "activation=ReLU\n" : "layer=Linear,3,3\n");
    struct TrainConfig c;
    char err[256];
    EXPECT_MSG(parse(text, &c, err, sizeof err) == 0, "%s", err);
    EXPECT_EQ_INT(c.n_layers, CONFIG_MAX_LAYERS);
    snprintf(text + n, sizeof text - n, "activation=Tanh\n");
    EXPECT(parse(text, &c, err, sizeof err) != 0);
    EXPECT_STR_CONTAINS(err, "t.ini:67: too many layers (at most 64");
    // A NUL byte is an error, not the end of the text.
    static const char nul[] = "[model]\ninput_dim=4\0\nlayer=Linear,4,2\n";
    EXPECT(config_parse_text(nul, sizeof nul - 1, "t.ini", &c, err, sizeof err) != 0);
    EXPECT(!strcmp(err, "t.ini:2: NUL byte in a text file"));
    // A tiny error buffer is truncated, never overrun.
    char small[12];
    EXPECT(parse("[modle]\n", &c, small, sizeof small) != 0);
    EXPECT(!strcmp(small, "t.ini:1: un"));
}

TEST(config_parse_file_errors)
{
    struct TrainConfig c;
    char err[512];
    EXPECT(config_parse_file("configs/no-such-file.ini", &c, err, sizeof err) != 0);
    EXPECT(!strcmp(err, "configs/no-such-file.ini: No such file or directory"));
    char path[512];
    snprintf(path, sizeof path, "%s/bad.ini", test_tmpdir());
    test_write_file(path, "[model]\ninput_dim=4\nlayer=Linear,4,2\nactivation=Tahn\n");
    EXPECT(config_parse_file(path, &c, err, sizeof err) != 0);
    char want[600];
    snprintf(want, sizeof want, "%s:4: unknown activation 'Tahn' (did you mean 'Tanh'?)", path);
    EXPECT_MSG(!strcmp(err, want), "got \"%s\"", err);
}

/* The config reader train and infer use: the text, or a reason; an endless file stops at
 * 1 MiB instead of filling the memory. */
TEST(config_read_file_bounds_and_errors)
{
    char err[512], path[512];
    size_t len = 0;
    snprintf(path, sizeof path, "%s/ok.ini", test_tmpdir());
    test_write_file(path, "[model]\ninput_dim=4\n");
    char *text = config_read_file(path, &len, err, sizeof err);
    EXPECT(text && len == 20 && !strcmp(text, "[model]\ninput_dim=4\n"));
    mem_free(text);
    EXPECT(config_read_file("/dev/zero", &len, err, sizeof err) == NULL);
    EXPECT_MSG(!strcmp(err, "/dev/zero:1: file is larger than 1048576 bytes: is this a config?"), "got \"%s\"", err);
    EXPECT(config_read_file(test_tmpdir(), &len, err, sizeof err) == NULL);
    EXPECT_STR_CONTAINS(err, ": read error: Is a directory");
}

static int same_weights(struct Module **a, struct Module **b, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < a[i]->n_params; j++) {
            const struct Tensor *x = a[i]->params[j], *y = b[i]->params[j];
            if (memcmp(x->data, y->data, tensor_numel(x) * dtype_size(x->dtype))) return 0;
        }
    return 1;
}

TEST(model_build_digits_modules)
{
    struct TrainConfig c;
    char err[256] = "";
    EXPECT_MSG(config_parse_file("configs/digits_mlp.ini", &c, err, sizeof err) == 0, "%s", err);
    if (c.n_layers != 4) return;
    struct Model md1, md2, md3;
    model_init(&md1, &c, c.seed);
    model_init(&md2, &c, c.seed);
    model_init(&md3, &c, c.seed + 1);
    struct Module **m = md1.mods, **m2 = md2.mods, **m3 = md3.mods;
    static const char *const names[] = {"linear1", "relu1", "linear2", "softmax1"};
    static const uint32_t kinds[] = {MOD_LINEAR, MOD_RELU, MOD_LINEAR, MOD_SOFTMAX};
    static const uint32_t n_params[] = {2, 0, 2, 0};
    for (int i = 0; i < 4; i++) {
        EXPECT_MSG(!strcmp(m[i]->name, names[i]), "module %d is %s, expected %s", i, m[i]->name, names[i]);
        EXPECT_EQ_INT(m[i]->kind, kinds[i]);
        EXPECT_EQ_INT(m[i]->n_params, n_params[i]);
    }
    const struct Tensor *w1 = m[0]->params[0], *b1 = m[0]->params[1], *w2 = m[2]->params[0];
    EXPECT_EQ_INT(w1->ndim, 2);
    EXPECT_EQ_INT(w1->shape[0], 64);
    EXPECT_EQ_INT(w1->shape[1], 64);
    EXPECT_EQ_INT(b1->ndim, 1);
    EXPECT_EQ_INT(b1->shape[0], 64);
    EXPECT_EQ_INT(w2->shape[0], 10);
    EXPECT_EQ_INT(w2->shape[1], 64);
    EXPECT_EQ_INT(m[2]->params[1]->shape[0], 10);
    EXPECT_EQ_INT(w1->dtype, DT_FLOAT32);
    // PyTorch's init bound 1/sqrt(fan_in) = 1/8 for the first layer.
    double amax = 0;
    for (uint64_t i = 0; i < tensor_numel(w1); i++) {
        double v = fabs((double)((const float *)w1->data)[i]);
        amax = v > amax ? v : amax;
    }
    EXPECT(amax <= 0.125 && amax > 0.1);
    EXPECT(same_weights(m, m2, 4));
    EXPECT(!same_weights(m, m3, 4));
    model_free(&md1);
    model_free(&md2);
    model_free(&md3);
}

TEST(model_build_cnn_modules)
{
    static const char text[] =
        "[model]\ninput_shape=1,6,6\ndtype=float64\n"
        "layer=Conv2d,1,3,3,3,1,1\nactivation=Tanh\nlayer=Conv2d,3,2,3,3,2,0\n"
        "activation=Tanh\nlayer=Linear,8,4\nactivation=Sigmoid\nlayer=Linear,4,2\n";
    struct TrainConfig c;
    char err[256];
    EXPECT_MSG(parse(text, &c, err, sizeof err) == 0, "%s", err);
    struct Model md;
    model_init(&md, &c, 7);
    struct Module **m = md.mods;
    static const char *const names[] = {"conv2d1", "tanh1", "conv2d2", "tanh2", "linear1", "sigmoid1", "linear2"};
    for (uint32_t i = 0; i < c.n_layers; i++) EXPECT_MSG(!strcmp(m[i]->name, names[i]), "%s", m[i]->name);
    const struct Tensor *w = m[2]->params[0];
    EXPECT_EQ_INT(w->ndim, 4);
    EXPECT_EQ_INT(w->shape[0], 2);
    EXPECT_EQ_INT(w->shape[1], 3);
    EXPECT_EQ_INT(w->shape[2], 3);
    EXPECT_EQ_INT(w->shape[3], 3);
    EXPECT_EQ_INT(w->dtype, DT_FLOAT64);
    EXPECT_EQ_INT(m[2]->spec.args.conv2d.stride, 2);
    EXPECT_EQ_INT(m[4]->params[0]->shape[1], 8);
    model_free(&md);
}
