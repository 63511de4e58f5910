/* cli: what train and infer share: a network assembled from a config (modules,
 * parameter names, normalisation statistics), its input node, and the version line. */
#ifndef MINIDL_CLI_H
#define MINIDL_CLI_H

#include "config_parser.h"
#include "model_io.h"

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
/* The whole file as a NUL-terminated heap string (length in *len); exits 1 with the
 * path and the reason if it cannot be read. */
char *cli_read_file(const char *path, size_t *len);
/* "prog: <fmt with arg>" and a --help hint on stderr, exit 2. */
_Noreturn void cli_usage_error(const char *fmt, const char *arg);
/* "train 0.1.0 (minidl), kernels: avx512" */
void cli_print_version(const char *prog);

#endif
