/* train: the training step and epoch, and the optimizer of a config.
 *
 * One step, in this order (llm.c's loop): forward and loss, zero grad, backward, update,
 * then read the loss and accuracy. The epoch shuffles (seeded by the config's seed and
 * the epoch number), batches, runs the steps and sets each step's learning rate from
 * the config's schedule. After the first step a step makes no heap call. */
#ifndef MINIDL_TRAIN_H
#define MINIDL_TRAIN_H

#include "dataset.h"
#include "model.h"
#include "optimizers.h"

struct Trainer {
    struct Model *model;        /* not owned */
    struct Optimizer *opt;
    struct Graph g;             /* the step's nodes and temporaries, reset after each step */
};

/* The config's optimizer over every parameter of m, and the step's graph. */
void train_init(struct Trainer *t, struct Model *m);
void train_free(struct Trainer *t);
/* The config's optimizer (Adam or SGD) over every parameter of m. */
struct Optimizer *train_optimizer_create(const struct Model *m);

/* The loss node of one batch (forward and loss; CrossEntropy takes the pre-softmax
 * values); *out (may be NULL) receives the network output. */
struct Node *train_loss(const struct Model *m, struct Graph *g, const struct Batch *b, struct Node **out);
/* The same over any list of modules and an input node, for loss_kind (enum LossKind):
 * b->cls for CrossEntropy, b->y for MSE (b->x unused). */
struct Node *train_loss_modules(struct Module *const *mods, uint32_t n, struct Node *x, const struct Batch *b,
                                int loss_kind, struct Node **out);

struct EpochStats {
    double loss;      /* mean over the samples seen */
    double accuracy;  /* classifiers: fraction of argmax hits; else 0 */
    uint64_t steps;   /* batches run (the failing one on error) */
    double bad_loss;  /* the non-finite loss that stopped the epoch */
};
/* Called after each step: batches done, batches in the epoch, mean loss so far. */
typedef void (*epoch_progress_fn)(void *ctx, uint64_t done, uint64_t total, double loss);
/* One epoch (numbered from 1) over ds, its first max_steps batches when max_steps > 0.
 * Returns 0, or -1 when the loss becomes NaN or infinite (st->steps names the batch,
 * st->bad_loss the value; that step's update is not applied). */
int train_epoch(struct Trainer *t, struct Dataset *ds, uint64_t epoch, uint64_t max_steps,
                epoch_progress_fn progress, void *ctx, struct EpochStats *st);

#endif
