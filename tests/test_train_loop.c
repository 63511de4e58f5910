/* The real training loop (train.h train_epoch: batching, shuffling, forward, loss,
 * backward, optimizer) makes no heap allocation after its first epoch, and gives each
 * step the learning rate of the config's schedule. */
#include "test.h"
#include "threads.h"
#include "train.h"
#include "mem.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* A net from a config, trained on the bundled digits, as train sets it up. */
struct Rig {
    struct TrainConfig cfg;
    struct Model model;
    struct Dataset ds;
    struct Trainer tr;
};

static void rig_init_on(struct Rig *r, const char *cfg_text, const char *what, const char *x, const char *y)
{
    char err[512];
    EXPECT_MSG(config_parse_text(cfg_text, strlen(cfg_text), what, &r->cfg, err, sizeof err) == 0, "%s", err);
    model_init(&r->model, &r->cfg, r->cfg.seed);
    EXPECT_MSG(dataset_load(&r->ds, x, y, r->cfg.dtype, 10, err, sizeof err) == 0, "%s", err);
    train_init(&r->tr, &r->model);
}

static void rig_init(struct Rig *r, const char *cfg_text, const char *what)
{
    rig_init_on(r, cfg_text, what, "data/digits_train_x.csv", "data/digits_train_y.csv");
}

static void rig_free(struct Rig *r)
{
    train_free(&r->tr);
    dataset_free(&r->ds);
    model_free(&r->model);
}

static void check_epochs_without_heap(const char *cfg_text, const char *what)
{
    struct Rig r;
    rig_init(&r, cfg_text, what);
    struct EpochStats st;
    EXPECT(train_epoch(&r.tr, &r.ds, 1, 0, NULL, NULL, &st) == 0);
    double first = st.loss;
    uint64_t calls = mem_alloc_calls();
    EXPECT(train_epoch(&r.tr, &r.ds, 2, 0, NULL, NULL, &st) == 0);
    EXPECT_MSG(mem_alloc_calls() == calls, "%s: %llu heap allocations in epoch 2", what,
               (unsigned long long)(mem_alloc_calls() - calls));
    EXPECT_MSG(st.loss < first, "%s: loss %g -> %g", what, first, st.loss);
    EXPECT_EQ_INT(st.steps, (1437 + r.cfg.batch_size - 1) / r.cfg.batch_size); /* the last partial */
    rig_free(&r);
}

/* On one, two and three threads (the parallel ops size their scratch by the workers). */
TEST(train_loop_makes_no_heap_allocation_after_the_first_epoch)
{
    int saved = threads_count();
    for (int nt = 1; nt <= 3; nt++) {
        threads_set(nt);
        check_epochs_without_heap("[model]\ninput_dim=64\nlayer=Linear,64,32\nactivation=ReLU\nlayer=Linear,32,10\n"
                                  "activation=Softmax\n[train]\nbatch_size=32\n", "mlp.ini");
        check_epochs_without_heap("[model]\ninput_dim=64\nlayer=Linear,64,256\nactivation=ReLU\nlayer=Linear,256,10\n"
                                  "[train]\nbatch_size=128\nshuffle=0\n", "wide_mlp.ini"); /* copies */
        check_epochs_without_heap("[model]\ninput_shape=1,8,8\nlayer=Conv2d,1,4,3,3,1,1\nactivation=ReLU\n"
                                  "layer=Conv2d,4,8,3,3,2,1\nactivation=Tanh\nlayer=Linear,128,10\n"
                                  "[train]\noptimizer=SGD\nmomentum=0.9\nlr=0.01\nbatch_size=32\n", "cnn.ini");
        check_epochs_without_heap("[model]\ninput_shape=1,8,8\nlayer=Conv2d,1,16,3,3,1,1\nactivation=ReLU\n"
                                  "layer=Conv2d,16,16,3,3,2,1\nactivation=ReLU\nlayer=Linear,256,10\n"
                                  "[train]\nbatch_size=64\n", "wide_cnn.ini");
    }
    threads_set(saved);
}

/* A model whose first op is a Linear, trained on rows in the file's order, has the dataset
 * gather a copy of the batch for each of 2 threads, and its input node reads them (a
 * first Conv2d reads its samples' rows alone: no copies; nor shuffled rows, nor one
 * thread). */
TEST(train_loop_gives_a_first_linear_the_threads_copies)
{
    static const char *const cfgs[3] = {
        "[model]\ninput_dim=64\nlayer=Linear,64,32\nactivation=ReLU\nlayer=Linear,32,10\n[train]\nbatch_size=32\n"
        "shuffle=0\n",
        "[model]\ninput_shape=1,8,8\nlayer=Conv2d,1,4,3,3,1,1\nactivation=ReLU\nlayer=Linear,256,10\n"
        "[train]\nbatch_size=32\nshuffle=0\n",
        "[model]\ninput_dim=64\nlayer=Linear,64,32\nactivation=ReLU\nlayer=Linear,32,10\n[train]\nbatch_size=32\n"
        "shuffle=1\n"};
    int saved = threads_count();
    for (int v = 0; v < 6; v++) {
        int nt = 1 + v / 3, kind = v % 3, linear = kind == 0;
        threads_set(nt);
        struct Rig r;
        rig_init(&r, cfgs[kind], kind == 1 ? "cnn.ini" : "mlp.ini");
        struct EpochStats st;
        EXPECT(train_epoch(&r.tr, &r.ds, 1, 2, NULL, NULL, &st) == 0);
        EXPECT_EQ_INT(r.ds.batch_copies, linear);
        struct Batch bt;
        EXPECT(dataset_get_batch(&r.ds, 1, r.cfg.batch_size, &bt) == 0);
        struct Node *out, *x;
        train_loss(&r.model, &r.tr.g, &bt, &out);
        for (x = out; x->n_parents; x = x->parents[0]) {} /* the input, under the ops' first operands */
        int copies = nt == 2 && linear;
        EXPECT_MSG(copies ? bt.x_copies && x->copies == bt.x_copies : !bt.x_copies && !x->copies,
                   "%s at %d threads: batch copies %p, the input node's %p",
                   kind == 1 ? "CNN" : kind ? "shuffled MLP" : "MLP", nt, (const void *)bt.x_copies,
                   (const void *)x->copies);
        graph_reset(&r.tr.g);
        rig_free(&r);
    }
    threads_set(saved);
}

/* At 2 threads the step updates a Linear's weight as the gemm writes its gradient, each
 * part of rows on its thread (autograd.h GradHook), and the rest after: the model is
 * the same bits as one thread's whole step, for Adam and SGD with momentum, in float32
 * and float64. The 128 x 1024 weight's gradient is the call that the gemm cuts by rows
 * at 2 threads (on one thread nothing is updated by parts). A later epoch allocates
 * nothing. */
TEST(train_loop_updates_a_linear_weight_as_its_gradient_is_written)
{
    static const char *const opts[4] = {"", "optimizer=SGD\nmomentum=0.9\nlr=0.01\n", "", "optimizer=SGD\nlr=0.01\n"};
    int saved = threads_count();
    for (int v = 0; v < 4; v++) {
        char cfg[512];
        snprintf(cfg, sizeof cfg,
                 "[model]\ninput_shape=1,8,8\n%slayer=Conv2d,1,16,3,3,1,1\nactivation=ReLU\nlayer=Linear,1024,128\n"
                 "activation=ReLU\nlayer=Linear,128,10\n[train]\nbatch_size=32\n%s",
                 v >= 2 ? "dtype=float64\n" : "", opts[v]);
        struct Tensor *first[8] = {0};
        for (int nt = 1; nt <= 3; nt++) {
            threads_set(nt);
            struct Rig r;
            rig_init(&r, cfg, "fused.ini");
            struct EpochStats st;
            EXPECT(train_epoch(&r.tr, &r.ds, 1, 12, NULL, NULL, &st) == 0);
            EXPECT_EQ_INT(r.model.n_params, 6);
            for (uint32_t i = 0; i < r.model.n_params && i < 8; i++) {
                const struct Tensor *p = r.model.param_nodes[i]->value;
                int by_parts = r.tr.updated[i], want = nt == 2 && i == 2; /* the first Linear's weight */
                if (nt <= 2) EXPECT_MSG(by_parts == want, "%s at %d threads: parameter %u updated by parts %d",
                                        cfg, nt, i, by_parts);
                EXPECT(r.model.param_nodes[i]->grad_hook == NULL);
                if (nt == 1) first[i] = tensor_copy(p);
                else
                    EXPECT_MSG(!memcmp(p->data, first[i]->data, tensor_numel(p) * dtype_size(p->dtype)),
                               "%s at %d threads: parameter %u is not one thread's", cfg, nt, i);
            }
            uint64_t calls = mem_alloc_calls(); /* and the steps by parts allocate nothing */
            EXPECT(train_epoch(&r.tr, &r.ds, 2, 3, NULL, NULL, &st) == 0);
            EXPECT_EQ_INT(mem_alloc_calls() - calls, 0);
            rig_free(&r);
        }
        for (int i = 0; i < 8; i++) tensor_free(first[i]);
    }
    threads_set(saved);
}

/* A spy in place of the optimizer's step records the rate each step runs with. */
static struct { void (*step)(struct Optimizer *); double lr[128]; uint64_t n; } spy;

static void spy_step(struct Optimizer *o)
{
    if (spy.n < sizeof spy.lr / sizeof spy.lr[0]) spy.lr[spy.n] = optim_lr(o);
    spy.n++;
    spy.step(o);
}

TEST(train_loop_follows_the_lr_schedule)
{
    struct Rig r;
    rig_init(&r, "[model]\ninput_dim=64\nlayer=Linear,64,10\n[train]\nbatch_size=32\nlr=0.004\nepochs=2\n"
                 "lr_schedule=cosine\n", "cos.ini");
    spy.step = r.tr.opt->step, spy.n = 0;
    r.tr.opt->step = spy_step;
    struct EpochStats st;
    EXPECT(train_epoch(&r.tr, &r.ds, 1, 0, NULL, NULL, &st) == 0);
    EXPECT(train_epoch(&r.tr, &r.ds, 2, 0, NULL, NULL, &st) == 0);
    EXPECT_EQ_INT(spy.n, 90); /* 2 epochs of 45 batches */
    for (uint64_t k = 0; k < spy.n && k < 90; k++)
        EXPECT_NEAR(spy.lr[k], 0.002 * (1 + cos(M_PI * (double)k / 90)), 1e-18);
    EXPECT(spy.lr[89] < 0.004 * 0.001);
    rig_free(&r);
}

/* A binary dataset left in its file's mapping trains as the CSV does, bit for bit and
 * with no heap allocation after the first epoch (the guarded gather needs none). Once
 * another program cuts the file, an epoch and a validation end with TRAIN_READ_ERROR
 * where the process would have died of SIGBUS. */
TEST(train_loop_on_mapped_data)
{
    static const char cfg[] = "[model]\ninput_dim=64\nlayer=Linear,64,32\nactivation=ReLU\nlayer=Linear,32,10\n"
                              "[train]\nbatch_size=32\n";
    char bin[512], err[512] = "";
    snprintf(bin, sizeof bin, "%s/digits.bin", test_tmpdir());
    struct Rig csv, map;
    rig_init(&csv, cfg, "mlp.ini");
    EXPECT_MSG(dataset_save_binary(&csv.ds, bin, err, sizeof err) == 0, "%s", err);
    rig_init_on(&map, cfg, "mlp.ini", bin, bin);
    EXPECT(map.ds.map != NULL);
    struct EpochStats a, b;
    for (uint64_t e = 1; e <= 2; e++) {
        uint64_t calls = mem_alloc_calls();
        EXPECT_EQ_INT(train_epoch(&map.tr, &map.ds, e, 0, NULL, NULL, &b), TRAIN_OK);
        if (e == 2) EXPECT_EQ_INT(mem_alloc_calls(), calls);
        EXPECT_EQ_INT(train_epoch(&csv.tr, &csv.ds, e, 0, NULL, NULL, &a), TRAIN_OK);
        EXPECT(a.loss == b.loss && a.hits == b.hits);
    }
    for (uint32_t i = 0; i < csv.model.n_named; i++) {
        const struct Tensor *p = csv.model.named[i].t, *q = map.model.named[i].t;
        EXPECT(memcmp(p->data, q->data, tensor_numel(p) * dtype_size(p->dtype)) == 0);
    }
    EXPECT_EQ_INT(train_evaluate(&map.tr, &map.ds, &b), TRAIN_OK);
    /* A file cut inside its last page reads zeros there, no fault, and batches look at its
     * size only now and then (here never: their last look is in the future): an epoch, an
     * interrupted one and a validation (6 batches of 256) each look before they return
     * what was read. */
    char cut[512];
    snprintf(cut, sizeof cut, "%s/digits_cut.bin", test_tmpdir());
    for (int v = 0; v < 3; v++) {
        struct Rig r;
        EXPECT_MSG(dataset_save_binary(&csv.ds, cut, err, sizeof err) == 0, "%s", err);
        rig_init_on(&r, cfg, "mlp.ini", cut, cut);
        EXPECT(r.ds.map != NULL && truncate(cut, (off_t)r.ds.map_len - 10) == 0);
        r.ds.map_checked = 1e300;
        volatile sig_atomic_t stop = 1;
        if (v == 1) r.tr.stop = &stop;
        int rc = v == 2 ? train_evaluate(&r.tr, &r.ds, &b) : train_epoch(&r.tr, &r.ds, 1, 3, NULL, NULL, &b);
        EXPECT_MSG(rc == TRAIN_READ_ERROR && b.steps == (v == 1 ? 1u : v == 2 ? 6u : 3u), "%s: status %d after %llu batches",
                   (const char *[]){"an epoch", "an interrupted epoch", "a validation"}[v], rc,
                   (unsigned long long)b.steps);
        rig_free(&r);
    }
    EXPECT(truncate(bin, 5000) == 0);
    EXPECT_EQ_INT(train_epoch(&map.tr, &map.ds, 3, 0, NULL, NULL, &b), TRAIN_READ_ERROR);
    EXPECT_EQ_INT(b.steps, 1); /* the first batch */
    EXPECT_EQ_INT(train_evaluate(&map.tr, &map.ds, &b), TRAIN_READ_ERROR);
    EXPECT_EQ_INT(dataset_error(&map.ds, err, sizeof err), -1);
    EXPECT_STR_CONTAINS(err, "digits.bin: the file shrank while it was being read");
    rig_free(&csv);
    rig_free(&map);
}
