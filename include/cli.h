/* cli: what train and infer share: a network assembled from a config (modules,
 * parameter names, normalisation statistics), its input node, and the version line. */
#ifndef MINIDL_CLI_H
#define MINIDL_CLI_H

#include "config_parser.h"
#include "dataset.h"
#include "model_io.h"
#include "optimizers.h"

#define MINIDL_VERSION "0.1.0"

struct Net {
    struct TrainConfig cfg;
    struct Module **mods;
    uint32_t n_mods;
    struct Tensor *shift, *scale;   /* input normalisation (D), or NULL */
    uint32_t n_named;
    struct NamedTensor *named;      /* every parameter, then input.shift/scale */
    char (*names)[64];
};

/* Builds the modules of cfg with weights drawn from seed (cfg->seed unless overridden). */
void net_init(struct Net *net, const struct TrainConfig *cfg, uint64_t seed);
/* Adds the normalisation tensors (taken over by net) and refreshes the name list. */
void net_set_norm(struct Net *net, struct Tensor *shift, struct Tensor *scale);
void net_free(struct Net *net);
/* The network's input node for a batch (rows x D): reshaped to (rows, C, H, W) for
 * convolutional models. */
struct Node *net_input(struct Graph *g, const struct Net *net, struct Tensor *batch);
/* Parameter count of the whole network. */
uint64_t net_param_count(const struct Net *net);
/* Prints the layer table (layer, output shape, parameters) on f. */
void net_print_summary(const struct Net *net, void *file);
/* The config's optimizer (Adam or SGD) over every parameter of net. */
struct Optimizer *net_optimizer_create(const struct Net *net);

struct EpochStats {
    double loss;      /* mean over the samples seen */
    double accuracy;  /* classifiers: fraction of argmax hits; else 0 */
    uint64_t steps;   /* batches run (the failing one on error) */
    double bad_loss;  /* the non-finite loss that stopped the epoch */
};
/* Called after each step: batches done, batches in the epoch, mean loss so far. */
typedef void (*epoch_progress_fn)(void *ctx, uint64_t done, uint64_t total, double loss);
/* One epoch over ds (its first max_steps batches when max_steps > 0): shuffled with a seed
 * derived from the config's seed and the epoch number when the config shuffles; per batch
 * forward, loss, zero grads, backward, step, graph reset. Returns 0, or -1 when the loss
 * becomes NaN or infinite (st->steps names the batch, st->bad_loss the value). */
int net_train_epoch(struct Net *net, struct Dataset *ds, struct Optimizer *opt, struct Graph *g, uint64_t epoch,
                    uint64_t max_steps, epoch_progress_fn progress, void *ctx, struct EpochStats *st);

/* "prog: <fmt with arg>" and a --help hint on stderr, exit 2. */
_Noreturn void cli_usage_error(const char *fmt, const char *arg);
/* Handles option argv[*i] (and any value after it, advancing *i): 1 if taken, 0 if unknown. */
typedef int (*cli_option_fn)(void *ctx, int argc, char **argv, int *i);
/* The argument rules train and infer share: exactly n_pos positionals into pos (a lone "-"
 * is one, "--" ends the options), -h/--help prints usage and -V/--version the version (exit
 * 0), any other option goes to opt; an unknown option or a wrong count is a usage error. */
void cli_parse_args(int argc, char **argv, const char *prog, const char *usage, const char **pos, int n_pos,
                    cli_option_fn opt, void *ctx);
/* The value after option argv[*i] (advancing *i); without one, the usage error
 * "option '<opt>' needs <what>". */
const char *cli_option_value(int argc, char **argv, int *i, const char *what);
/* "train 0.1.0 (minidl), kernels: avx512" */
void cli_print_version(const char *prog);

#endif
