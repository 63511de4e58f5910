/* train: the training step and epoch, the optimizer of a config, validation, and the
 * state of a whole run (where it is, early stopping and the best weights).
 *
 * One step, in this order (llm.c's loop): forward and loss, zero grad, backward, update,
 * then read the loss and accuracy. The epoch shuffles (seeded by the config's seed and
 * the epoch number alone: dataset_shuffle_indices starts from the identity, so no
 * epoch's order depends on an earlier one), batches, runs the steps and sets each
 * step's learning rate from the config's schedule. After the first step a step makes
 * no heap call.
 *
 * A run is resumable at any step: what later steps read is the model's named tensors,
 * the optimizer's buffers and step count, the model's generator (model->run.rng), the
 * epoch and batch (which give the shuffle and the schedule position) and, with
 * validation, the early-stopping state; checkpoint.h saves and restores all of it. */
#ifndef MINIDL_TRAIN_H
#define MINIDL_TRAIN_H

#include "dataset.h"
#include "model.h"
#include "optimizers.h"

#include <signal.h>

/* Data-parallel training over several processes (train-mpi; src/mpi/comm_mpi.c holds
 * the MPI side, so this module needs no MPI). Each batch is cut into `size` contiguous
 * slices (dataset_get_batch_part); this process computes the gradient of slice `rank`,
 * scaled by its share of the batch's rows, and the sums below add every process's
 * contribution in rank order, so every process gets the same bits and makes the same
 * update. Each call is collective: every process makes it, in the same order. */
struct TrainComm {
    int rank, size;
    /* buf (n values of dtype) becomes the element-wise sum over the processes, in rank
     * order: one message carries the whole flat gradient. */
    void (*sum_flat)(struct TrainComm *c, void *buf, uint64_t n, uint32_t dtype);
    /* The same for a few doubles (a step's loss sum, hits and stop flag). */
    void (*sum_stats)(struct TrainComm *c, double *v, uint32_t n);
    void *impl;
};

struct Trainer {
    struct Model *model;        /* not owned */
    struct TrainComm *comm;     /* NULL: one process (train_set_comm); not owned */
    void *flat;                 /* with comm: every parameter gradient packed, allocated once */
    uint64_t flat_n;
    struct Optimizer *opt;
    struct GradHook *hooks;     /* per parameter: its update by parts (the fused step, set once), */
    uint8_t *updated;           /* whether the backward pass made it, and */
    uint32_t *uses;             /* its n_consumers before the step's forward; allocated once */
    struct Graph g;             /* the step's nodes and temporaries, reset after each step */
    struct Graph eval_g;        /* validation's: forward only (graph_set_no_grad) */
    const volatile sig_atomic_t *stop; /* non-zero: the epoch ends after the running step
                                        * (train_catch_signals points it at its flag); may be NULL */
};

/* What train_epoch returns. */
enum TrainStatus { TRAIN_OK = 0, TRAIN_DIVERGED = -1, TRAIN_READ_ERROR = -2, TRAIN_INTERRUPTED = 1 };

/* The config's optimizer over every parameter of m, and the step's graph. */
void train_init(struct Trainer *t, struct Model *m);
void train_free(struct Trainer *t);
/* From here on the steps are data parallel over c's processes (NULL: this one alone).
 * With one process the steps are the plain ones, bit for bit. */
void train_set_comm(struct Trainer *t, struct TrainComm *c);
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
    double loss_sum;  /* running sums of the batches run: sum of loss x rows, */
    uint64_t seen, hits; /* samples and argmax hits (what an interrupted epoch resumes with) */
};
/* Called after each step: batches done, batches in the epoch, mean loss so far. */
typedef void (*epoch_progress_fn)(void *ctx, uint64_t done, uint64_t total, double loss);
/* One epoch (numbered from 1) over ds, its first max_steps batches when max_steps > 0.
 * Returns TRAIN_OK; TRAIN_DIVERGED when the loss becomes NaN or infinite (st->steps
 * names the batch, st->bad_loss the value; that step's update is not applied);
 * TRAIN_READ_ERROR when a batch could not be read (the mapped file shrank: dataset_error;
 * with comm, on at least one process, and every process stops at that batch, st->steps;
 * alone, also when the file is found cut before TRAIN_OK or TRAIN_INTERRUPTED returns:
 * dataset_check);
 * or TRAIN_INTERRUPTED when *t->stop was set during a step that was not the epoch's last
 * (st holds the batches done and their sums). */
int train_epoch(struct Trainer *t, struct Dataset *ds, uint64_t epoch, uint64_t max_steps,
                epoch_progress_fn progress, void *ctx, struct EpochStats *st);
/* The same from batch st->steps on, st holding the sums of the batches before it (an
 * interrupted epoch); train_epoch is this with st zeroed. */
int train_epoch_continue(struct Trainer *t, struct Dataset *ds, uint64_t epoch, uint64_t max_steps,
                         epoch_progress_fn progress, void *ctx, struct EpochStats *st);

/* Whether ds fits the config: its rows as many values as the input, and, for MSE, its
 * targets as many as the outputs. 0, or -1 with a message naming the file (data or
 * labels) in err. */
int train_check_data(const struct Dataset *ds, const struct TrainConfig *c, const char *data, const char *labels,
                     char *err, size_t errlen);

/* Validation: the mean loss and the accuracy (classifiers) of the model on ds, forward
 * only, in inference mode (model->run.training is 0 meanwhile: no dropout, running
 * statistics); ds is read in file order. Returns TRAIN_OK, or TRAIN_READ_ERROR (this
 * process alone: no sums across processes here). */
int train_evaluate(struct Trainer *t, struct Dataset *ds, struct EpochStats *st);

/* ---- a whole run ---- */

enum ValidationKind { VAL_NONE, VAL_SPLIT, VAL_FILES }; /* none, val_split=F, --val X Y */

/* Where a run is and its early-stopping state; with the model and the optimizer, what a
 * checkpoint holds. The schedule position is epochs_done x batches per epoch +
 * partial.steps. */
struct TrainRun {
    uint64_t epochs_done;        /* whole epochs done */
    struct EpochStats partial;   /* batches done of the next epoch and their sums (interrupted), else zero */
    int validate;                /* enum ValidationKind */
    uint64_t n_train, n_val;     /* the samples it trains and validates on (checked on resume) */
    double best_loss;            /* the lowest validation loss so far (infinite before the first) */
    uint64_t best_epoch;         /* its epoch, 0 before the first */
    uint64_t since_best;         /* epochs since then */
    uint32_t n_best;
    struct Tensor **best;        /* copies of model->named at best_epoch (validation only) */
};

void train_run_init(struct TrainRun *r, const struct Model *m, int validate, uint64_t n_train, uint64_t n_val);
void train_run_free(struct TrainRun *r);
/* After epoch `epoch` with validation loss val_loss: a lower loss than any before makes
 * it the best epoch (its weights kept). Returns 1 when early stopping (patience) ends
 * the run here. */
int train_run_observe(struct TrainRun *r, const struct Model *m, uint64_t epoch, double val_loss);
/* Has early stopping ended the run? */
int train_run_stopped(const struct TrainRun *r, const struct TrainConfig *c);
/* Copies the best epoch's weights (and state) into m: nothing without validation or
 * before the first validated epoch. */
void train_run_restore_best(const struct TrainRun *r, struct Model *m);

/* ---- signals ---- */

/* From here on, SIGINT and SIGTERM set a flag that t->stop points at (the running step
 * finishes, then train_epoch returns TRAIN_INTERRUPTED); a second one ends the process at
 * once, by the signal's default action. */
void train_catch_signals(struct Trainer *t);
int train_caught_signal(void);   /* the first signal caught, or 0 */
/* Holds (1) or releases (0) both signals, so that a file being saved is written whole
 * before a second signal ends the process. */
void train_hold_signals(int hold);

#endif
