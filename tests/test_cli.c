/* End to end through the real train and infer binaries (found through MINIDL_BIN,
 * set by make tests): usage and exit codes, XOR, digits, regression, error paths. */
#include "test.h"
#include "model_io.h"
#include "utils.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e.h"

TEST(cli_usage_and_exit_codes)
{
    EXPECT_EQ_INT(run("train", "--help"), 0);
    EXPECT_STR_CONTAINS(out, "usage: train");
    EXPECT_EQ_INT(run("infer", "--help"), 0);
    EXPECT_STR_CONTAINS(out, "usage: infer");
    EXPECT_EQ_INT(run("train", ""), 2);
    EXPECT_STR_CONTAINS(err, "expected 4 arguments");
    EXPECT_EQ_INT(run("train", "--bogus a b c d"), 2);
    EXPECT_STR_CONTAINS(err, "unknown option '--bogus'");
    EXPECT_EQ_INT(run("infer", "onlyone"), 2);
    EXPECT_EQ_INT(run("train", "--seed x a b c d"), 2);
    EXPECT_EQ_INT(run("train", "--version"), 0);
    EXPECT_STR_CONTAINS(out, "kernels: ");
    EXPECT_EQ_INT(run("infer", "-V"), 0);
    EXPECT_STR_CONTAINS(out, "infer ");
}

TEST(cli_xor_trains_and_infers)
{
    char args[2048];
    const char *model = tmp("xor.bin");
    snprintf(args, sizeof args, "-q configs/xor.ini data/xor_x.csv data/xor_y.csv %s", model);
    EXPECT_EQ_INT(run("train", args), 0);
    EXPECT_MSG(err[0] == 0, "train -q printed: %s", err);
    snprintf(args, sizeof args, "%s data/xor_x.csv", model);
    EXPECT_EQ_INT(run("infer", args), 0);
    EXPECT_MSG(!strcmp(out, "0\n1\n1\n0\n"), "XOR predictions: %s", out);
    /* probabilities: one row per sample, summing to 1 */
    snprintf(args, sizeof args, "--probs %s data/xor_x.csv", model);
    EXPECT_EQ_INT(run("infer", args), 0);
    double a, b;
    int rows = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n"), rows++) {
        EXPECT(sscanf(line, "%lf,%lf", &a, &b) == 2);
        EXPECT_NEAR(a + b, 1.0, 1e-6);
    }
    EXPECT_EQ_INT(rows, 4);
}

static double parse_after(const char *text, const char *key)
{
    const char *p = strstr(text, key);
    return p ? atof(p + strlen(key)) : -1;
}

TEST(cli_digits_above_95_percent)
{
    char args[2048];
    const char *model = tmp("digits.bin");
    snprintf(args, sizeof args, "configs/digits_mlp.ini data/digits_train_x.csv data/digits_train_y.csv %s", model);
    EXPECT_EQ_INT(run("train", args), 0);
    EXPECT_STR_CONTAINS(err, "linear1");       /* the layer summary */
    EXPECT_STR_CONTAINS(err, "epoch 1/");      /* per-epoch log */
    EXPECT_STR_CONTAINS(err, "samples/s");
    snprintf(args, sizeof args, "--labels data/digits_test_y.csv %s data/digits_test_x.csv", model);
    EXPECT_EQ_INT(run("infer", args), 0);
    double acc = parse_after(err, "accuracy ");
    EXPECT_MSG(acc > 0.95, "digits test accuracy %g", acc);
    EXPECT_STR_CONTAINS(err, "confusion matrix");
    int lines = 0;
    for (const char *p = out; *p; p++) lines += *p == '\n';
    EXPECT_EQ_INT(lines, 360);
}

TEST(cli_regression_loss_falls)
{
    char args[2048];
    const char *model = tmp("diabetes.bin");
    snprintf(args, sizeof args, "configs/diabetes_mse.ini data/diabetes_train_x.csv data/diabetes_train_y.csv %s", model);
    EXPECT_EQ_INT(run("train", args), 0);
    double first = parse_after(err, "epoch 1/"), last_loss = -1;
    (void)first;
    const char *p = strstr(err, "epoch 1/");
    double loss1 = p ? parse_after(p, "loss ") : -1;
    for (const char *q = p; q && (q = strstr(q, "epoch ")); q++) last_loss = parse_after(q, "loss ");
    EXPECT_MSG(loss1 > 0 && last_loss > 0 && last_loss < 0.5 * loss1, "loss %g -> %g", loss1, last_loss);
    snprintf(args, sizeof args, "--labels data/diabetes_test_y.csv %s data/diabetes_test_x.csv", model);
    EXPECT_EQ_INT(run("infer", args), 0);
    EXPECT_STR_CONTAINS(err, "MSE ");
    double mse = parse_after(err, "MSE ");
    EXPECT_MSG(mse > 0 && mse < 5000, "diabetes test MSE %g (predicting the mean gives ~5000-6000)", mse);
    int lines = 0;
    for (const char *c = out; *c; c++) lines += *c == '\n';
    EXPECT_EQ_INT(lines, 88);
}

TEST(cli_errors_are_clear)
{
    char args[2048];
    /* a bad output path fails before training */
    snprintf(args, sizeof args, "configs/xor.ini data/xor_x.csv data/xor_y.csv %s/no/such/dir/m.bin", test_tmpdir());
    EXPECT_EQ_INT(run("train", args), 1);
    EXPECT_STR_CONTAINS(err, "cannot write the model");
    EXPECT(strstr(err, "epoch") == NULL);
    /* an existing directory is no model path either */
    snprintf(args, sizeof args, "configs/xor.ini data/xor_x.csv data/xor_y.csv %s", test_tmpdir());
    EXPECT_EQ_INT(run("train", args), 1);
    EXPECT_STR_CONTAINS(err, "is a directory");
    EXPECT(strstr(err, "epoch") == NULL);
    /* bad data: file:line:column */
    const char *bad = test_write_file(tmp("bad.csv"), "0,0\n0,x\n1,0\n1,1\n");
    snprintf(args, sizeof args, "configs/xor.ini %s data/xor_y.csv %s", bad, tmp("m.bin"));
    EXPECT_EQ_INT(run("train", args), 1);
    EXPECT_STR_CONTAINS(err, "bad.csv:2:3");
    /* a config error names file and line */
    const char *cfg = test_write_file(tmp("bad.ini"), "[model]\ninput_dim=2\nlayer=Linear,2,2\nactivaton=ReLU\n");
    snprintf(args, sizeof args, "%s data/xor_x.csv data/xor_y.csv %s", cfg, tmp("m.bin"));
    EXPECT_EQ_INT(run("train", args), 1);
    EXPECT_STR_CONTAINS(err, "bad.ini:4");
    /* divergence stops with advice */
    const char *hot = test_write_file(tmp("hot.ini"), "[model]\ninput_dim=10\nlayer=Linear,10,1\n[train]\n"
                                                       "loss=MSE\noptimizer=SGD\nlr=1000\nepochs=50\n");
    snprintf(args, sizeof args, "%s data/diabetes_train_x.csv data/diabetes_train_y.csv %s", hot, tmp("hot.bin"));
    EXPECT_EQ_INT(run("train", args), 1);
    EXPECT_STR_CONTAINS(err, "lower learning rate");
    /* infer on a missing model */
    EXPECT_EQ_INT(run("infer", "/nonexistent.bin data/xor_x.csv"), 1);
    EXPECT_STR_CONTAINS(err, "/nonexistent.bin");
}

TEST(cli_init_and_seed)
{
    char args[2048], first[256];
    const char *a = tmp("a.bin"), *b = tmp("b.bin"), *c = tmp("c.bin");
    /* same seed, same model, byte for byte */
    snprintf(args, sizeof args, "-q --seed 5 --epochs 3 configs/digits_mlp.ini data/digits_train_x.csv data/digits_train_y.csv %s", a);
    EXPECT_EQ_INT(run("train", args), 0);
    snprintf(args, sizeof args, "-q --seed 5 --epochs 3 configs/digits_mlp.ini data/digits_train_x.csv data/digits_train_y.csv %s", b);
    EXPECT_EQ_INT(run("train", args), 0);
    snprintf(args, sizeof args, "cmp %s %s", a, b);
    EXPECT_EQ_INT(test_run_cmd(args, NULL, 0, NULL, 0), 0);
    /* --init continues from saved weights: zero epochs reproduce the same predictions */
    snprintf(args, sizeof args, "-q --epochs 0 --init %s configs/digits_mlp.ini data/digits_train_x.csv data/digits_train_y.csv %s", a, c);
    EXPECT_EQ_INT(run("train", args), 0);
    snprintf(args, sizeof args, "%s data/digits_test_x.csv", a);
    run("infer", args);
    str_copy(first, out, sizeof first);
    snprintf(args, sizeof args, "%s data/digits_test_x.csv", c);
    run("infer", args);
    EXPECT_MSG(!strncmp(first, out, sizeof first - 1), "--init model predicts differently");
}

/* A model file without the config trailer: infer needs --config, and says so. */
TEST(cli_infer_config_for_a_bare_model)
{
    char args[2048], with_cfg[4096];
    const char *model = tmp("full.bin"), *bare = tmp("bare.bin");
    snprintf(args, sizeof args, "-q configs/xor.ini data/xor_x.csv data/xor_y.csv %s", model);
    EXPECT_EQ_INT(run("train", args), 0);
    struct ModelFile mf;
    char e[512];
    EXPECT(model_load(model, &mf, e, sizeof e) == 0);
    EXPECT(mf.config_text != NULL);
    EXPECT(model_save(bare, mf.tensors, mf.n, NULL, e, sizeof e) == 0);
    model_file_free(&mf);
    snprintf(args, sizeof args, "%s data/xor_x.csv", bare);
    EXPECT_EQ_INT(run("infer", args), 1);
    EXPECT_STR_CONTAINS(err, "--config");
    snprintf(args, sizeof args, "%s data/xor_x.csv", model);
    run("infer", args);
    str_copy(with_cfg, out, sizeof with_cfg);
    snprintf(args, sizeof args, "--config configs/xor.ini %s data/xor_x.csv", bare);
    EXPECT_EQ_INT(run("infer", args), 0);
    EXPECT_MSG(!strcmp(out, with_cfg), "bare model with --config predicts %s, embedded config %s", out, with_cfg);
    /* a config describing other weights than the file holds fails before building them */
    const char *other = test_write_file(tmp("other.ini"), "[model]\ninput_dim=2\nlayer=Linear,2,100000000\n");
    snprintf(args, sizeof args, "--config %s %s data/xor_x.csv", other, bare);
    EXPECT_EQ_INT(run("infer", args), 1);
    EXPECT_STR_CONTAINS(err, "describes 300000000 weights but the file holds 42");
    /* a directory given as the config says so */
    snprintf(args, sizeof args, "%s data/xor_x.csv data/xor_y.csv %s", test_tmpdir(), tmp("m.bin"));
    EXPECT_EQ_INT(run("train", args), 1);
    EXPECT_STR_CONTAINS(err, "Is a directory");
}
