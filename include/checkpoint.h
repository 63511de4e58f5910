/* checkpoint: the whole state of a training run in one DLASM1 file (model_io.h), so
 * that a resumed run goes on exactly as the uninterrupted one would have, byte for byte.
 *
 * A checkpoint is a model file with more tensors: infer and --init read it as they read
 * a model (tensors named "train.*" are training state, which they ignore). It holds
 *
 *   every tensor of model->named      weights, layer state, input.shift/scale, as a model
 *   train.counters   float64 (13, 2)  the run's integers, row by row (enum below); each
 *                                     uint64 v as two exact float64 values, its high
 *                                     and low 32 bits: v = row[0] * 2^32 + row[1]
 *   train.rng        float64 (4, 2)   the model's generator (model->run.rng, xoshiro256**
 *                                     state words), the same encoding
 *   train.reals      float64 (2)      the interrupted epoch's loss sum (sum of batch loss
 *                                     x rows), the best validation loss (0 before one)
 *   train.opt.m.NAME, train.opt.v.NAME  the optimizer's buffers of parameter NAME, its
 *                                     dtype and shape (SGD's velocity in m; Adam's
 *                                     moments m and v; none for SGD without momentum)
 *   train.best.NAME  for each tensor of model->named, its value at the best epoch
 *                                     (only with validation)
 *   the DLCFG1 trailer                the config text the run was started with
 *
 * float64 holds every integer below 2^53 exactly, but the counters may reach 2^64 (the
 * generator's words do), hence the two halves. */
#ifndef MINIDL_CHECKPOINT_H
#define MINIDL_CHECKPOINT_H

#include "model_io.h"
#include "train.h"

/* The rows of train.counters. The schedule position is not stored: it is epochs_done x
 * batches per epoch (from n_train and batch_size) + batches_done. */
enum CheckpointCounter {
    CK_VERSION,        /* CHECKPOINT_VERSION */
    CK_EPOCHS,         /* the run's length (the config's epochs, or -e) */
    CK_SEED,           /* the run's seed (the config's, or -s) */
    CK_EPOCHS_DONE,
    CK_BATCHES_DONE,   /* of the next epoch, when a signal interrupted it */
    CK_SEEN,           /* samples of those batches */
    CK_HITS,           /* their argmax hits (classifiers) */
    CK_OPT_STEPS,      /* the optimizer's step count (Adam's t) */
    CK_VALIDATE,       /* enum ValidationKind */
    CK_N_TRAIN,        /* training samples */
    CK_N_VAL,          /* validation samples */
    CK_BEST_EPOCH,     /* 0 before the first validated epoch */
    CK_SINCE_BEST,
    CK_COUNT
};
#define CHECKPOINT_VERSION 1

/* Writes the state of t and r atomically to path (model_save: a temporary file, then a
 * rename; SIGINT and SIGTERM held meanwhile, so a second signal cannot leave a partial
 * file), with the run's config text. Returns 0, or -1 with the message in err. */
int checkpoint_save(const char *path, struct Trainer *t, const struct TrainRun *r, const char *config_text,
                    char *err, size_t errlen);

/* A loaded checkpoint, checked against the run that resumes it. */
struct Checkpoint {
    const char *path;
    struct ModelFile mf;
    uint64_t counters[CK_COUNT];
};
/* Loads path and checks that it is a checkpoint (not a plain model) of a version this
 * reads, saved by a run of cfg (this run's config with -s and -e applied): the first key
 * that differs is named. The epoch count may differ under a constant schedule (a longer
 * or shorter run), not under cosine, whose rates span all epochs. */
int checkpoint_open(struct Checkpoint *ck, const char *path, const struct TrainConfig *cfg, char *err,
                    size_t errlen);
/* Checks the data against the checkpoint's (validation kind, training and validation
 * samples, the normalisation statistics the training samples give), then restores the
 * model's tensors, the optimizer, the generator and the run state into t and r (r made
 * by train_run_init for this run). */
int checkpoint_restore(struct Checkpoint *ck, struct Trainer *t, struct TrainRun *r, char *err, size_t errlen);
void checkpoint_close(struct Checkpoint *ck);

#endif
