/* The real training loop (train.h train_epoch: batching, shuffling, forward, loss,
 * backward, optimizer) makes no heap allocation after its first epoch, and gives each
 * step the learning rate of the config's schedule. */
#include "test.h"
#include "threads.h"
#include "train.h"
#include "mem.h"

#include <math.h>
#include <string.h>

/* A net from a config, trained on the bundled digits, as train sets it up. */
struct Rig {
    struct TrainConfig cfg;
    struct Model model;
    struct Dataset ds;
    struct Trainer tr;
};

static void rig_init(struct Rig *r, const char *cfg_text, const char *what)
{
    char err[512];
    EXPECT_MSG(config_parse_text(cfg_text, strlen(cfg_text), what, &r->cfg, err, sizeof err) == 0, "%s", err);
    model_init(&r->model, &r->cfg, r->cfg.seed);
    EXPECT_MSG(dataset_load(&r->ds, "data/digits_train_x.csv", "data/digits_train_y.csv", r->cfg.dtype, 10, err,
                            sizeof err) == 0, "%s", err);
    train_init(&r->tr, &r->model);
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
                                  "[train]\nbatch_size=128\n", "wide_mlp.ini");
        check_epochs_without_heap("[model]\ninput_shape=1,8,8\nlayer=Conv2d,1,4,3,3,1,1\nactivation=ReLU\n"
                                  "layer=Conv2d,4,8,3,3,2,1\nactivation=Tanh\nlayer=Linear,128,10\n"
                                  "[train]\noptimizer=SGD\nmomentum=0.9\nlr=0.01\nbatch_size=32\n", "cnn.ini");
        check_epochs_without_heap("[model]\ninput_shape=1,8,8\nlayer=Conv2d,1,16,3,3,1,1\nactivation=ReLU\n"
                                  "layer=Conv2d,16,16,3,3,2,1\nactivation=ReLU\nlayer=Linear,256,10\n"
                                  "[train]\nbatch_size=64\n", "wide_cnn.ini");
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
