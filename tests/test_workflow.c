/* The training workflow (issue 13), mostly through the real binaries (MINIDL_BIN):
 * validation split and its normalisation, early stopping with the best weights,
 * checkpoints that resume to the same bytes as an uninterrupted run (MLP and CNN, both
 * dtypes and optimizers, shuffling, a schedule and validation on), the signal path,
 * refused checkpoints, --metrics, infer reading standard input, and --help against the
 * man pages. */
#include "test.h"
#include "checkpoint.h"
#include "dataset.h"
#include "model_io.h"
#include "utils.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "e2e.h"

static int same_bytes(const char *a, const char *b)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cmp %s %s", a, b);
    return test_run_cmd(cmd, NULL, 0, NULL, 0) == 0;
}

static const char *digits = "data/digits_train_x.csv data/digits_train_y.csv";

/* ---- validation split ---- */

/* Ten rows whose first value is its row number: the parts are disjoint, complete, in
 * file order, of the asked sizes. */
TEST(workflow_split_sizes_and_order)
{
    const char *x = test_write_file(tmp("split_x.csv"), "0,1\n1,1\n2,1\n3,1\n4,1\n5,1\n6,1\n7,1\n8,1\n9,1\n");
    const char *y = test_write_file(tmp("split_y.csv"), "0\n1\n0\n1\n0\n1\n0\n1\n0\n1\n");
    struct Dataset ds, val;
    char e[512];
    EXPECT(dataset_load(&ds, x, y, DT_FLOAT64, 2, e, sizeof e) == 0);
    struct Rng r;
    rng_seed(&r, 7);
    dataset_split(&ds, &val, 3, &r);
    EXPECT_EQ_INT(ds.n, 7);
    EXPECT_EQ_INT(val.n, 3);
    int seen[10] = {0};
    for (uint64_t i = 0; i < ds.n; i++) {
        int row = (int)tensor_f64(ds.x)[2 * i];
        seen[row]++;
        EXPECT_EQ_INT(ds.cls[i], row % 2);
        EXPECT_EQ_INT(ds.order[i], i);
        if (i) EXPECT(tensor_f64(ds.x)[2 * i] > tensor_f64(ds.x)[2 * i - 2]);
    }
    for (uint64_t i = 0; i < val.n; i++) {
        int row = (int)tensor_f64(val.x)[2 * i];
        seen[row]++;
        EXPECT_EQ_INT(val.cls[i], row % 2);
        if (i) EXPECT(tensor_f64(val.x)[2 * i] > tensor_f64(val.x)[2 * i - 2]);
    }
    for (int i = 0; i < 10; i++) EXPECT_EQ_INT(seen[i], 1);
    dataset_free(&ds);
    dataset_free(&val);
}

/* Rows 2^0 .. 2^9: the mean train saves as input.shift is a sum of distinct powers of
 * two over the training rows, so its bit count says how many rows it covered: 7 of 10
 * with val_split=0.3 (the held-out ones never enter the statistics). */
TEST(workflow_normalisation_ignores_held_out_rows)
{
    char rows[512] = "", labels[64] = "", args[2048];
    for (int i = 0; i < 10; i++) {
        snprintf(rows + strlen(rows), sizeof rows - strlen(rows), "%d,%d\n", 1 << i, i % 3);
        snprintf(labels + strlen(labels), sizeof labels - strlen(labels), "%d\n", i % 2);
    }
    const char *x = test_write_file(tmp("pow_x.csv"), rows), *y = test_write_file(tmp("pow_y.csv"), labels);
    const char *cfg = test_write_file(tmp("pow.ini"), "[model]\ninput_dim=2\nlayer=Linear,2,1\ndtype=float64\n[train]\n"
                                                      "loss=MSE\nnormalize=standard\nval_split=0.3\nepochs=1\n");
    const char *model = tmp("pow.bin");
    snprintf(args, sizeof args, "%s %s %s %s", cfg, x, y, model);
    EXPECT_EQ_INT(run("train", args), 0);
    EXPECT_STR_CONTAINS(err, "validating on 3 samples");
    struct ModelFile mf;
    char e[512];
    EXPECT(model_load(model, &mf, e, sizeof e) == 0);
    const struct Tensor *shift = model_file_find(&mf, "input.shift");
    EXPECT(shift != NULL);
    if (shift) {
        double sum = tensor_f64(shift)[0] * 7;
        long long s = llround(sum);
        EXPECT_NEAR(sum, (double)s, 1e-9);
        EXPECT_EQ_INT(__builtin_popcountll((unsigned long long)s), 7);
    }
    model_file_free(&mf);
}

/* ---- resuming ---- */

static const char *const resume_configs[] = {
    /* MLP, float32, Adam */
    "[model]\ninput_dim=64\nlayer=Linear,64,32\nactivation=ReLU\nlayer=Linear,32,10\nactivation=Softmax\n"
    "[train]\noptimizer=Adam\nlr=0.003\nepochs=4\nbatch_size=32\nlr_schedule=cosine\nval_split=0.2\n"
    "normalize=standard\nseed=3\n",
    /* MLP, float64, SGD with momentum */
    "[model]\ninput_dim=64\nlayer=Linear,64,32\nactivation=Tanh\nlayer=Linear,32,10\ndtype=float64\n"
    "[train]\noptimizer=SGD\nmomentum=0.9\nlr=0.02\nepochs=4\nbatch_size=50\nlr_schedule=cosine\nval_split=0.15\n"
    "normalize=minmax\n",
    /* CNN, float32, SGD with momentum */
    "[model]\ninput_shape=1,8,8\nlayer=Conv2d,1,4,3,3,1,1\nactivation=ReLU\nlayer=Conv2d,4,8,3,3,2,1\n"
    "activation=Tanh\nlayer=Linear,128,10\n[train]\noptimizer=SGD\nmomentum=0.8\nlr=0.01\nepochs=4\n"
    "batch_size=32\nlr_schedule=cosine\nval_split=0.25\nnormalize=standard\n",
    /* CNN, float64, Adam */
    "[model]\ninput_shape=1,8,8\nlayer=Conv2d,1,4,3,3,1,1\nactivation=ReLU\nlayer=Conv2d,4,8,3,3,2,1\n"
    "activation=ReLU\nlayer=Linear,128,10\ndtype=float64\n[train]\noptimizer=Adam\nlr=0.002\nepochs=4\n"
    "batch_size=40\nlr_schedule=cosine\nval_split=0.1\nnormalize=standard\nseed=11\n",
};

TEST(workflow_resume_gives_the_same_bytes)
{
    char args[4096], name[64];
    for (size_t i = 0; i < sizeof resume_configs / sizeof *resume_configs; i++) {
        snprintf(name, sizeof name, "resume%zu.ini", i);
        const char *cfg = test_write_file(tmp(name), resume_configs[i]);
        const char *whole = tmp("whole.bin"), *split = tmp("split.bin"), *ck = tmp("split.ckpt");
        const char *whole_ck = tmp("whole.ckpt");
        snprintf(args, sizeof args, "-q --checkpoint %s %s %s %s", whole_ck, cfg, digits, whole);
        EXPECT_EQ_INT(run("train", args), 0);
        snprintf(args, sizeof args, "-q --stop-after 2 --checkpoint %s %s %s %s", ck, cfg, digits, split);
        EXPECT_EQ_INT(run("train", args), 0);
        EXPECT_MSG(!same_bytes(whole, split), "config %zu: 2 epochs saved the model of 4", i);
        snprintf(args, sizeof args, "-q --resume %s --checkpoint %s %s %s %s", ck, ck, cfg, digits, split);
        EXPECT_EQ_INT(run("train", args), 0);
        EXPECT_MSG(same_bytes(whole, split), "config %zu: the resumed run's model differs from the whole run's", i);
        /* and its last checkpoint (current weights, optimizer, generator) the whole run's */
        EXPECT_MSG(same_bytes(whole_ck, ck), "config %zu: the resumed run's last checkpoint differs", i);
        /* infer reads the checkpoint as a model */
        snprintf(args, sizeof args, "%s data/digits_test_x.csv", ck);
        EXPECT_EQ_INT(run("infer", args), 0);
    }
}

/* Without --checkpoint, --stop-after saves the run beside the model, and the command it
 * prints resumes it; -e and -s travel with it. */
TEST(workflow_stop_after_prints_the_command_that_resumes)
{
    char args[4096], cmd[4096];
    const char *cfg = test_write_file(tmp("stop.ini"), resume_configs[0]);
    const char *whole = tmp("stop_whole.bin"), *model = tmp("stop.bin");
    snprintf(args, sizeof args, "-q -e 3 -s 9 %s %s %s", cfg, digits, whole);
    EXPECT_EQ_INT(run("train", args), 0);
    snprintf(args, sizeof args, "-e 3 -s 9 --stop-after 1 %s %s %s", cfg, digits, model);
    EXPECT_EQ_INT(run("train", args), 0);
    const char *line = strstr(err, "resume it with:\n");
    EXPECT_MSG(line != NULL, "no resume command in: %s", err);
    if (!line) return;
    line = strchr(line, '\n') + 1;
    size_t n = strcspn(line, "\n");
    snprintf(cmd, sizeof cmd, "%.*s", (int)n, line);
    EXPECT_STR_CONTAINS(cmd, "--resume");
    EXPECT_STR_CONTAINS(cmd, ".bin.ckpt");
    EXPECT_STR_CONTAINS(cmd, "-e 3");
    EXPECT_STR_CONTAINS(cmd, "-s 9");
    EXPECT_EQ_INT(test_run_cmd(cmd, NULL, 0, err, sizeof err), 0);
    EXPECT_MSG(same_bytes(whole, model), "the printed command did not resume to the whole run's model: %s", err);
}

/* ---- early stopping ---- */

/* Validation labels shifted by one class: the better the network learns the digits, the
 * higher the validation loss, so it stops `patience` epochs after its best, and the
 * model it saves is the one a run of just that many epochs saves. */
TEST(workflow_early_stopping_keeps_the_best_epoch)
{
    char args[4096], shifted[8192] = "";
    FILE *f = fopen("data/digits_test_y.csv", "r");
    EXPECT(f != NULL);
    if (!f) return;
    int c;
    char line[32];
    while (fgets(line, sizeof line, f)) {
        c = atoi(line);
        snprintf(shifted + strlen(shifted), sizeof shifted - strlen(shifted), "%d\n", (c + 1) % 10);
    }
    fclose(f);
    const char *vy = test_write_file(tmp("shifted_y.csv"), shifted);
    const char *cfg = test_write_file(tmp("early.ini"),
                                      "[model]\ninput_dim=64\nlayer=Linear,64,32\nactivation=ReLU\nlayer=Linear,32,10\n"
                                      "[train]\nlr=0.01\nepochs=30\nbatch_size=32\npatience=2\nnormalize=standard\n");
    const char *model = tmp("early.bin"), *ref = tmp("early_ref.bin");
    snprintf(args, sizeof args, "--val data/digits_test_x.csv %s %s %s %s", vy, cfg, digits, model);
    EXPECT_EQ_INT(run("train", args), 0);
    const char *best = strstr(err, "best epoch "), *stop = strstr(err, "early stopping after epoch ");
    EXPECT_MSG(best && stop, "no early stop: %s", err);
    if (!best || !stop) return;
    int b = atoi(best + strlen("best epoch ")), s = atoi(stop + strlen("early stopping after epoch "));
    EXPECT_EQ_INT(s, b + 2);
    EXPECT(s < 30);
    snprintf(args, sizeof args, "-q -e %d --val data/digits_test_x.csv %s %s %s %s", b, vy, cfg, digits, ref);
    EXPECT_EQ_INT(run("train", args), 0);
    EXPECT_MSG(same_bytes(model, ref), "the early-stopped model is not epoch %d's", b);
}

/* ---- signals ---- */

/* Starts "<bin>/train args" in the background with stderr to errfile; returns its pid. */
static pid_t spawn_train(const char *args, const char *errfile)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "exec %s/train %s 2>%s", bin(), args, errfile);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) dup2(null, 0), dup2(null, 1);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int file_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int n = 0, c;
    while ((c = fgetc(f)) != EOF) n += c == '\n';
    fclose(f);
    return n;
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits until the metrics file has its header and `rows` rows (or the child ended). */
static void wait_rows(pid_t pid, const char *metrics, int rows)
{
    for (int i = 0; i < 20000 && file_lines(metrics) < rows + 1; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid) return;
        nap_ms(1);
    }
}

static uint64_t batches_done(const char *ckpt)
{
    struct ModelFile mf;
    char e[512];
    uint64_t n = 0;
    if (model_load(ckpt, &mf, e, sizeof e)) return 0;
    const struct Tensor *c = model_file_find(&mf, "train.counters");
    if (c && c->shape[0] == CK_COUNT) n = (uint64_t)tensor_f64(c)[2 * CK_BATCHES_DONE + 1];
    model_file_free(&mf);
    return n;
}

static const char sig_config[] =
    "[model]\ninput_dim=64\nlayer=Linear,64,128\nactivation=ReLU\nlayer=Linear,128,10\n"
    "[train]\nepochs=60\nbatch_size=2\nlr=0.001\nlr_schedule=cosine\nval_split=0.1\nnormalize=standard\n";

/* SIGINT in the middle of an epoch: exit 130, a checkpoint beside the model, and the
 * resumed run ends with the uninterrupted run's bytes. */
TEST(workflow_sigint_checkpoint_resumes_to_the_same_bytes)
{
    char args[4096];
    const char *cfg = test_write_file(tmp("sig.ini"), sig_config);
    const char *whole = tmp("sig_whole.bin"), *model = tmp("sig.bin"), *ck = tmp("sig.bin.ckpt");
    const char *metrics = tmp("sig.csv"), *errfile = tmp("sig.err");
    snprintf(args, sizeof args, "-q %s %s %s", cfg, digits, whole);
    EXPECT_EQ_INT(run("train", args), 0);
    /* a signal that lands between epochs is fine too, but mid-epoch is the case to test */
    uint64_t mid = 0;
    for (int attempt = 0; attempt < 4 && !mid; attempt++) {
        unlink(ck);
        snprintf(args, sizeof args, "--metrics %s %s %s %s", metrics, cfg, digits, model);
        pid_t pid = spawn_train(args, errfile);
        EXPECT(pid > 0);
        wait_rows(pid, metrics, 1);
        kill(pid, SIGINT);
        int status = 0;
        EXPECT(waitpid(pid, &status, 0) == pid);
        EXPECT_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 130, "status 0x%x", status);
        mid = batches_done(ck);
    }
    EXPECT_MSG(mid > 0, "four signals all landed between epochs");
    snprintf(args, sizeof args, "-q --resume %s --metrics %s %s %s %s", ck, metrics, cfg, digits, model);
    EXPECT_EQ_INT(run("train", args), 0);
    EXPECT_MSG(same_bytes(whole, model), "the run resumed after SIGINT differs from the uninterrupted one");
    EXPECT_EQ_INT(file_lines(metrics), 61); /* a header and each epoch once, across the two runs */
}

/* SIGTERM exits 143; two signals end the run at once and leave no temporary file. */
TEST(workflow_second_signal_leaves_no_partial_file)
{
    char args[4096];
    const char *cfg = test_write_file(tmp("sig2.ini"), sig_config);
    const char *model = tmp("sig2.bin"), *ck = tmp("sig2.ckpt"), *metrics = tmp("sig2.csv"), *errfile = tmp("sig2.err");
    snprintf(args, sizeof args, "--checkpoint %s --metrics %s %s %s %s", ck, metrics, cfg, digits, model);
    pid_t pid = spawn_train(args, errfile);
    wait_rows(pid, metrics, 1);
    kill(pid, SIGTERM);
    int status = 0;
    EXPECT(waitpid(pid, &status, 0) == pid);
    EXPECT_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 143, "SIGTERM: status 0x%x", status);

    unlink(ck);
    unlink(metrics);
    pid = spawn_train(args, errfile);
    wait_rows(pid, metrics, 2);
    kill(pid, SIGINT);
    kill(pid, SIGINT);
    EXPECT(waitpid(pid, &status, 0) == pid);
    EXPECT_MSG((WIFSIGNALED(status) && WTERMSIG(status) == SIGINT) || (WIFEXITED(status) && WEXITSTATUS(status) == 130),
               "two SIGINTs: status 0x%x", status);
    struct ModelFile mf;
    char e[512];
    EXPECT_MSG(model_load(ck, &mf, e, sizeof e) == 0, "%s", e); /* the one of an earlier epoch, whole */
    model_file_free(&mf);
    DIR *d = opendir(test_tmpdir());
    EXPECT(d != NULL);
    for (struct dirent *de; d && (de = readdir(d));)
        EXPECT_MSG(!strstr(de->d_name, ".tmp."), "left behind: %s", de->d_name);
    if (d) closedir(d);
}

/* ---- refusals and bad values ---- */

TEST(workflow_refuses_a_foreign_checkpoint)
{
    char args[4096], text[2048];
    const char *cfg = test_write_file(tmp("own.ini"), resume_configs[0]);
    const char *ck = tmp("own.ckpt"), *model = tmp("own.bin"), *other = tmp("other.ini");
    snprintf(args, sizeof args, "-q --stop-after 1 --checkpoint %s %s %s %s", ck, cfg, digits, model);
    EXPECT_EQ_INT(run("train", args), 0);
    /* another learning rate */
    snprintf(text, sizeof text, "%s", resume_configs[0]);
    memcpy(strstr(text, "lr=0.003"), "lr=0.004", 8);
    test_write_file(other, text);
    snprintf(args, sizeof args, "--resume %s %s %s %s", ck, other, digits, model);
    EXPECT_EQ_INT(run("train", args), 1);
    EXPECT_STR_CONTAINS(err, "lr: 0.003 against 0.004");
    /* another layer */
    snprintf(text, sizeof text, "%s", resume_configs[0]);
    memcpy(strstr(text, "activation=ReLU"), "activation=Tanh", 15);
    test_write_file(other, text);
    snprintf(args, sizeof args, "--resume %s %s %s %s", ck, other, digits, model);
    EXPECT_EQ_INT(run("train", args), 1);
    EXPECT_STR_CONTAINS(err, "layer 2");
    /* another seed, another epoch count under the cosine schedule */
    snprintf(args, sizeof args, "--resume %s -s 4 %s %s %s", ck, cfg, digits, model);
    EXPECT_EQ_INT(run("train", args), 1);
    EXPECT_STR_CONTAINS(err, "seed: 3 against 4");
    snprintf(args, sizeof args, "--resume %s -e 6 %s %s %s", ck, cfg, digits, model);
    EXPECT_EQ_INT(run("train", args), 1);
    EXPECT_STR_CONTAINS(err, "epochs cannot change");
    /* other data: fewer rows */
    snprintf(args, sizeof args, "head -700 data/digits_train_x.csv > %s; head -700 data/digits_train_y.csv > %s",
             tmp("few_x.csv"), tmp("few_y.csv"));
    EXPECT_EQ_INT(test_run_cmd(args, NULL, 0, NULL, 0), 0);
    snprintf(args, sizeof args, "--resume %s %s %s %s %s", ck, cfg, tmp("few_x.csv"), tmp("few_y.csv"), model);
    EXPECT_EQ_INT(run("train", args), 1);
    EXPECT_STR_CONTAINS(err, "trained on 1150 samples");
    /* a model is no checkpoint; a truncated checkpoint says where */
    snprintf(args, sizeof args, "--resume %s %s %s %s", model, cfg, digits, tmp("x.bin"));
    EXPECT_EQ_INT(run("train", args), 1);
    EXPECT_STR_CONTAINS(err, "not a checkpoint");
    snprintf(args, sizeof args, "head -c 5000 %s > %s", ck, tmp("cut.ckpt"));
    EXPECT_EQ_INT(test_run_cmd(args, NULL, 0, NULL, 0), 0);
    snprintf(args, sizeof args, "--resume %s %s %s %s", tmp("cut.ckpt"), cfg, digits, model);
    EXPECT_EQ_INT(run("train", args), 1);
    EXPECT_STR_CONTAINS(err, "cut.ckpt: truncated at byte 5000");
    /* --init and --resume */
    snprintf(args, sizeof args, "--init %s --resume %s %s %s %s", model, ck, cfg, digits, model);
    EXPECT_EQ_INT(run("train", args), 2);
}

TEST(workflow_bad_values_name_file_and_line)
{
    static const struct { const char *text, *want; } cases[] = {
        {"[train]\nval_split=1\n", "bad.ini:5: val_split must be between 0 and 1"},
        {"[train]\nval_split=0\n", "bad.ini:5: val_split must be greater than 0"},
        {"[train]\nval_split=half\n", "bad.ini:5: val_split"},
        {"[train]\npatience=-1\n", "bad.ini:5: patience must be at least 0"},
        {"[train]\npatience=2\n", "patience=2 stops on the validation loss"},
    };
    char args[4096], text[512];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        snprintf(text, sizeof text, "[model]\ninput_dim=2\nlayer=Linear,2,2\n%s", cases[i].text);
        const char *cfg = test_write_file(tmp("bad.ini"), text);
        snprintf(args, sizeof args, "%s data/xor_x.csv data/xor_y.csv %s", cfg, tmp("bad.bin"));
        EXPECT_EQ_INT(run("train", args), 1);
        EXPECT_STR_CONTAINS(err, cases[i].want);
    }
    /* val_split and --val together; a split that leaves no sample on one side */
    const char *both = test_write_file(tmp("both.ini"), "[model]\ninput_dim=2\nlayer=Linear,2,2\n[train]\nval_split=0.5\n");
    snprintf(args, sizeof args, "--val data/xor_x.csv data/xor_y.csv %s data/xor_x.csv data/xor_y.csv %s", both, tmp("b.bin"));
    EXPECT_EQ_INT(run("train", args), 1);
    EXPECT_STR_CONTAINS(err, "give one");
    const char *tiny = test_write_file(tmp("tiny.ini"), "[model]\ninput_dim=2\nlayer=Linear,2,2\n[train]\nval_split=0.1\n");
    snprintf(args, sizeof args, "%s data/xor_x.csv data/xor_y.csv %s", tiny, tmp("b.bin"));
    EXPECT_EQ_INT(run("train", args), 1);
    EXPECT_STR_CONTAINS(err, "none to validate on");
    EXPECT_EQ_INT(run("train", "--stop-after 0 a b c d"), 2);
    EXPECT_EQ_INT(run("train", "--val onlyone"), 2);
}

/* ---- metrics and pipelines ---- */

static int count_fields(const char *line)
{
    int n = 1;
    for (; *line && *line != '\n'; line++) n += *line == ',';
    return n;
}

TEST(workflow_metrics_rows)
{
    char args[4096], text[8192];
    const char *cfg = test_write_file(tmp("m.ini"), resume_configs[0]), *metrics = tmp("m.csv");
    snprintf(args, sizeof args, "-q --metrics %s %s %s %s", metrics, cfg, digits, tmp("m.bin"));
    EXPECT_EQ_INT(run("train", args), 0);
    snprintf(args, sizeof args, "cat %s", metrics);
    test_run_cmd(args, text, sizeof text, NULL, 0);
    const char *header = "epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds\n";
    EXPECT_MSG(!strncmp(text, header, strlen(header)), "metrics: %s", text);
    int rows = 0;
    for (char *l = strchr(text, '\n'); l && l[1]; l = strchr(l + 1, '\n')) {
        rows++;
        EXPECT_EQ_INT(count_fields(l + 1), 7);
        EXPECT_EQ_INT(atoi(l + 1), rows);
        double v[7];
        EXPECT_EQ_INT(sscanf(l + 1, "%lf,%lf,%lf,%lf,%lf,%lf,%lf", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6]), 7);
        EXPECT(v[2] > 0 && v[2] <= 1 && v[4] > 0 && v[4] <= 1 && v[5] > 0);
    }
    EXPECT_EQ_INT(rows, 4);
    /* a regressor without validation: the accuracy and validation fields are empty */
    snprintf(args, sizeof args, "-q -e 2 --metrics %s configs/diabetes_mse.ini data/diabetes_train_x.csv "
             "data/diabetes_train_y.csv %s", metrics, tmp("r.bin"));
    EXPECT_EQ_INT(run("train", args), 0);
    snprintf(args, sizeof args, "cat %s", metrics);
    test_run_cmd(args, text, sizeof text, NULL, 0);
    EXPECT_STR_CONTAINS(text, "\n1,");
    EXPECT_STR_CONTAINS(strstr(text, "\n1,"), ",,,,");
    EXPECT_EQ_INT(file_lines(metrics), 3);
}

TEST(workflow_infer_reads_standard_input)
{
    char args[4096], want[OUT_CAP];
    const char *model = tmp("pipe.bin");
    snprintf(args, sizeof args, "-q -e 3 configs/digits_mlp.ini %s %s", digits, model);
    EXPECT_EQ_INT(run("train", args), 0);
    snprintf(args, sizeof args, "--probs %s data/digits_test_x.csv", model);
    EXPECT_EQ_INT(run("infer", args), 0);
    str_copy(want, out, sizeof want);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cat data/digits_test_x.csv | %s/infer --probs %s -", bin(), model);
    EXPECT_EQ_INT(test_run_cmd(cmd, out, sizeof out, err, sizeof err), 0);
    EXPECT_MSG(!strcmp(out, want), "infer - printed other rows than infer FILE");
    /* its errors name the input as '-' */
    snprintf(cmd, sizeof cmd, "printf '1,2\\n' | %s/infer %s -", bin(), model);
    EXPECT_EQ_INT(test_run_cmd(cmd, out, sizeof out, err, sizeof err), 1);
    EXPECT_STR_CONTAINS(err, "-: rows have 2 values");
}

/* ---- man pages ---- */

/* Every long option --help lists appears in the program's man page. */
static void check_man_page(const char *prog, const char *page)
{
    char cmd[1024], man[OUT_CAP];
    snprintf(cmd, sizeof cmd, "sed 's/\\\\-/-/g' man/%s", page);
    EXPECT_MSG(test_run_cmd(cmd, man, sizeof man, NULL, 0) == 0, "no man/%s", page);
    snprintf(cmd, sizeof cmd, "%s/%s --help", bin(), prog);
    test_run_cmd(cmd, out, sizeof out, NULL, 0);
    int n = 0;
    for (const char *p = out; (p = strstr(p, "--")); n++) {
        size_t len = 2 + strspn(p + 2, "abcdefghijklmnopqrstuvwxyz-");
        char opt[64];
        snprintf(opt, sizeof opt, "%.*s", (int)len, p);
        p += len;
        if (len == 2) continue;
        EXPECT_MSG(strstr(man, opt) != NULL, "%s --help lists %s but man/%s does not", prog, opt, page);
    }
    EXPECT_MSG(n > 0, "%s --help lists no options", prog);
}

TEST(workflow_man_pages_follow_help)
{
    check_man_page("train", "minidl-train.1");
    check_man_page("infer", "minidl-infer.1");
    check_man_page("csv2bin", "minidl-csv2bin.1");
}

/* ---- the checkpoint's fields ---- */

/* Every field comes back exactly, the 64-bit ones (generator words, step count) above
 * 2^53 included, which float64 alone could not hold. */
TEST(workflow_checkpoint_round_trips_every_field)
{
    const char *text = resume_configs[0];
    struct TrainConfig cfg;
    char e[512];
    EXPECT(config_parse_text(text, strlen(text), "rt.ini", &cfg, e, sizeof e) == 0);
    struct Model m, m2;
    struct Trainer t, t2;
    struct TrainRun r, r2;
    model_init(&m, &cfg, cfg.seed);
    train_init(&t, &m);
    train_run_init(&r, &m, VAL_SPLIT, 1150, 287);
    const uint64_t words[4] = {UINT64_MAX, (1ull << 63) | 12345, 0, (1ull << 53) + 1};
    memcpy(m.run.rng.s, words, sizeof words);
    optim_set_steps(t.opt, (1ull << 40) + 3);
    struct Tensor *m0 = optim_buffer(t.opt, 1, 1);
    tensor_fill(m0, 0.25);
    tensor_free(m0);
    r.epochs_done = 2, r.partial.steps = 7, r.partial.seen = 224, r.partial.hits = 101, r.partial.loss_sum = 1.0 / 3;
    r.best_loss = 0.125, r.best_epoch = 1, r.since_best = 1;
    const char *path = tmp("rt.ckpt");
    EXPECT_MSG(checkpoint_save(path, &t, &r, text, e, sizeof e) == 0, "%s", e);

    model_init(&m2, &cfg, 99);
    train_init(&t2, &m2);
    train_run_init(&r2, &m2, VAL_SPLIT, 1150, 287);
    struct Checkpoint ck;
    EXPECT_MSG(checkpoint_open(&ck, path, &cfg, e, sizeof e) == 0, "%s", e);
    EXPECT_MSG(checkpoint_restore(&ck, &t2, &r2, e, sizeof e) == 0, "%s", e);
    checkpoint_close(&ck);
    EXPECT(!memcmp(m2.run.rng.s, words, sizeof words));
    EXPECT(optim_steps(t2.opt) == (1ull << 40) + 3);
    struct Tensor *v = optim_buffer(t2.opt, 1, 1);
    EXPECT(tensor_at(v, 0) == 0.25);
    tensor_free(v);
    EXPECT(!memcmp(m.named[0].t->data, m2.named[0].t->data, tensor_numel(m.named[0].t) * 4));
    EXPECT_EQ_INT(r2.epochs_done, 2);
    EXPECT_EQ_INT(r2.partial.steps, 7);
    EXPECT_EQ_INT(r2.partial.seen, 224);
    EXPECT_EQ_INT(r2.partial.hits, 101);
    EXPECT(r2.partial.loss_sum == 1.0 / 3 && r2.best_loss == 0.125);
    EXPECT_EQ_INT(r2.best_epoch, 1);
    EXPECT_EQ_INT(r2.since_best, 1);
    /* another run's data sizes are refused */
    train_run_free(&r2);
    train_run_init(&r2, &m2, VAL_SPLIT, 1000, 287);
    EXPECT(checkpoint_open(&ck, path, &cfg, e, sizeof e) == 0);
    EXPECT(checkpoint_restore(&ck, &t2, &r2, e, sizeof e) != 0);
    EXPECT_STR_CONTAINS(e, "trained on 1150 samples");
    checkpoint_close(&ck);

    train_run_free(&r2);
    train_free(&t2);
    model_free(&m2);
    train_run_free(&r);
    train_free(&t);
    model_free(&m);
}

/* ---- binary datasets left in a mapping of the file (issue 12, 3) ---- */

static const char mapped_net[] = "[model]\n%sinput_dim=64\nlayer=Linear,64,32\nactivation=ReLU\nlayer=Linear,32,10\n"
                                 "activation=Softmax\n[train]\nbatch_size=32\n%s";

/* csv2bin's files in both dtypes: training on the one stored in the run's dtype (left
 * in a mapping), on the other (read and converted) and on the CSV writes one model,
 * byte for byte, with the data mapped through the whole run and with normalisation and
 * val_split (which make private copies); infer prints the same from all three, and the
 * files are never written. */
TEST(workflow_mapped_binary_trains_as_the_csv)
{
    static const char *const variants[4][2] = {
        {"", ""}, {"", "normalize=standard\nval_split=0.2\n"},
        {"dtype=float64\n", ""}, {"dtype=float64\n", "normalize=minmax\nval_split=0.2\n"},
    };
    /* tmp() hands out a ring of 16 buffers: the paths the loop uses are kept here */
    enum { B32, B64, KEEP32, KEEP64, INI, REF, MODEL, N_PATHS };
    static const char *const names[N_PATHS] = {"d32.bin", "d64.bin", "d32.keep", "d64.keep", "mapped.ini",
                                               "mapped_ref.bin", "mapped.bin"};
    char paths[N_PATHS][512], args[4096], ini_text[512];
    for (int i = 0; i < N_PATHS; i++) snprintf(paths[i], sizeof paths[i], "%s", tmp(names[i]));
    const char *b32 = paths[B32], *b64 = paths[B64], *keep32 = paths[KEEP32], *keep64 = paths[KEEP64];
    const char *ini = paths[INI], *ref = paths[REF], *model = paths[MODEL];
    static char ref_out[OUT_CAP];
    snprintf(args, sizeof args, "%s %s", digits, b32);
    EXPECT_EQ_INT(run("csv2bin", args), 0);
    snprintf(args, sizeof args, "--dtype float64 %s %s", digits, b64);
    EXPECT_EQ_INT(run("csv2bin", args), 0);
    snprintf(args, sizeof args, "cp %s %s && cp %s %s", b32, keep32, b64, keep64);
    EXPECT_EQ_INT(test_run_cmd(args, NULL, 0, NULL, 0), 0);
    for (int v = 0; v < 4; v++) {
        snprintf(ini_text, sizeof ini_text, mapped_net, variants[v][0], variants[v][1]);
        test_write_file(ini, ini_text);
        snprintf(args, sizeof args, "-q -e 2 %s %s %s", ini, digits, ref);
        EXPECT_EQ_INT(run("train", args), 0);
        snprintf(args, sizeof args, "%s data/digits_train_x.csv", ref);
        EXPECT_EQ_INT(run("infer", args), 0);
        snprintf(ref_out, sizeof ref_out, "%s", out);
        for (int f = 0; f < 2; f++) {
            const char *data = f ? b64 : b32;
            snprintf(args, sizeof args, "-q -e 2 %s %s %s %s", ini, data, data, model);
            EXPECT_MSG(run("train", args) == 0, "%s", err);
            EXPECT_MSG(same_bytes(ref, model), "config %d on %s: another model than on the CSV", v, data);
            snprintf(args, sizeof args, "%s %s", ref, data);
            EXPECT_EQ_INT(run("infer", args), 0);
            EXPECT_MSG(strlen(out) > 1000 && !strcmp(out, ref_out), "config %d: infer on %s differs", v, data);
        }
    }
    EXPECT(same_bytes(b32, keep32));
    EXPECT(same_bytes(b64, keep64));
    /* train's log says which file it mapped: the one in the run's dtype (float32 here) */
    snprintf(ini_text, sizeof ini_text, mapped_net, "", "");
    test_write_file(ini, ini_text);
    snprintf(args, sizeof args, "-e 0 %s %s %s %s", ini, b32, b32, model);
    EXPECT_EQ_INT(run("train", args), 0);
    EXPECT_STR_CONTAINS(err, "loaded 1437 samples x 64 features in ");
    EXPECT_STR_CONTAINS(err, " s (mapped, not copied)\n");
    snprintf(args, sizeof args, "-e 0 %s %s %s %s", ini, b64, b64, model);
    EXPECT_EQ_INT(run("train", args), 0);
    EXPECT(strstr(err, "loaded 1437 samples") && !strstr(err, "(mapped"));
}
