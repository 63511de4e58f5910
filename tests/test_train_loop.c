/* The real training loop (cli.h net_train_epoch: batching, shuffling, forward, loss,
 * backward, optimizer) makes no heap allocation after its first epoch, and gives each
 * step the learning rate of the config's schedule. */
#include "test.h"
#include "cli.h"
#include "mem.h"

#include <math.h>
#include <string.h>

static void check_epochs_without_heap(const char *cfg_text, const char *what)
{
    struct TrainConfig cfg;
    char err[512];
    EXPECT_MSG(config_parse_text(cfg_text, strlen(cfg_text), what, &cfg, err, sizeof err) == 0, "%s", err);
    struct Net net;
    net_init(&net, &cfg, cfg.seed);
    struct Dataset ds;
    EXPECT_MSG(dataset_load(&ds, "data/digits_train_x.csv", "data/digits_train_y.csv", cfg.dtype, 10, err,
                            sizeof err) == 0, "%s", err);
    struct Optimizer *opt = net_optimizer_create(&net);
    struct Graph g;
    graph_init(&g);
    struct EpochStats st;
    EXPECT(net_train_epoch(&net, &ds, opt, &g, 1, 0, NULL, NULL, &st) == 0);
    double first = st.loss;
    uint64_t calls = mem_alloc_calls();
    EXPECT(net_train_epoch(&net, &ds, opt, &g, 2, 0, NULL, NULL, &st) == 0);
    EXPECT_MSG(mem_alloc_calls() == calls, "%s: %llu heap allocations in epoch 2", what,
               (unsigned long long)(mem_alloc_calls() - calls));
    EXPECT_MSG(st.loss < first, "%s: loss %g -> %g", what, first, st.loss);
    EXPECT_EQ_INT(st.steps, 45); /* 1437 rows in batches of 32, the last partial */
    graph_free(&g);
    optim_free(opt);
    dataset_free(&ds);
    net_free(&net);
}

TEST(train_loop_makes_no_heap_allocation_after_the_first_epoch)
{
    check_epochs_without_heap("[model]\ninput_dim=64\nlayer=Linear,64,32\nactivation=ReLU\nlayer=Linear,32,10\n"
                              "activation=Softmax\n[train]\nbatch_size=32\n", "mlp.ini");
    check_epochs_without_heap("[model]\ninput_shape=1,8,8\nlayer=Conv2d,1,4,3,3,1,1\nactivation=ReLU\n"
                              "layer=Conv2d,4,8,3,3,2,1\nactivation=Tanh\nlayer=Linear,128,10\n"
                              "[train]\noptimizer=SGD\nmomentum=0.9\nlr=0.01\nbatch_size=32\n", "cnn.ini");
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
    const char *text = "[model]\ninput_dim=64\nlayer=Linear,64,10\n[train]\nbatch_size=32\nlr=0.004\n"
                       "epochs=2\nlr_schedule=cosine\n";
    struct TrainConfig cfg;
    char err[512];
    EXPECT_MSG(config_parse_text(text, strlen(text), "cos.ini", &cfg, err, sizeof err) == 0, "%s", err);
    struct Net net;
    net_init(&net, &cfg, cfg.seed);
    struct Dataset ds;
    EXPECT_MSG(dataset_load(&ds, "data/digits_train_x.csv", "data/digits_train_y.csv", cfg.dtype, 10, err,
                            sizeof err) == 0, "%s", err);
    struct Optimizer *opt = net_optimizer_create(&net);
    spy.step = opt->step, spy.n = 0;
    opt->step = spy_step;
    struct Graph g;
    graph_init(&g);
    struct EpochStats st;
    EXPECT(net_train_epoch(&net, &ds, opt, &g, 1, 0, NULL, NULL, &st) == 0);
    EXPECT(net_train_epoch(&net, &ds, opt, &g, 2, 0, NULL, NULL, &st) == 0);
    EXPECT_EQ_INT(spy.n, 90); /* 2 epochs of 45 batches */
    for (uint64_t k = 0; k < spy.n && k < 90; k++)
        EXPECT_NEAR(spy.lr[k], 0.002 * (1 + cos(M_PI * (double)k / 90)), 1e-18);
    EXPECT(spy.lr[89] < 0.004 * 0.001);
    graph_free(&g);
    optim_free(opt);
    dataset_free(&ds);
    net_free(&net);
}
