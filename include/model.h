/* model: the network of a config. Builds its modules through the layer table (layers.h),
 * names their parameters for the model file, holds the input normalisation, runs the
 * forward pass (the one place that fuses layers), and prints the summary.
 *
 *   struct Model m;  model_init(&m, &cfg, seed);
 *   out = model_forward(&m, model_input(g, &m, batch), skip_final_softmax);
 *
 * Training (train.h) adds the loss, model_zero_grad, backward and the optimizer;
 * inference runs the same forward in a graph without gradients (graph_set_no_grad),
 * which saves nothing for a backward pass. */
#ifndef MINIDL_MODEL_H
#define MINIDL_MODEL_H

#include "config_parser.h"
#include "model_io.h"
#include "nn_layers.h"

/* A Model stays where model_init put it (its modules point at its run): never copy one. */
struct Model {
    struct TrainConfig cfg;
    struct Module **mods;           /* one per config layer, in order */
    uint32_t n_mods;
    struct Tensor *shift, *scale;   /* input normalisation (D), or NULL */
    uint32_t n_params;              /* every parameter tensor, module by module (what is trained) */
    struct Node **param_nodes;
    uint32_t n_named;
    struct NamedTensor *named;      /* module by module its parameters then its state, then input.shift/scale */
    char (*names)[64];
    struct LayerRun run;            /* training (1 after model_init, 0 after model_from_file) and the
                                     * generator of dropout masks, seeded from the model's seed */
};

/* Builds the modules of cfg with weights drawn from seed (cfg->seed unless overridden),
 * named linear1, conv2d1, relu1, ... (numbered per kind from 1 in config order), in
 * training mode. */
void model_init(struct Model *m, const struct TrainConfig *cfg, uint64_t seed);
/* Adds the normalisation tensors (taken over by m) and refreshes the name list. */
void model_set_norm(struct Model *m, struct Tensor *shift, struct Tensor *scale);
void model_free(struct Model *m);

/* The model saved in path: built from its embedded config (or the one at config_path,
 * when not NULL), with its weights and normalisation; a checkpoint's training state
 * (tensors "train.*", checkpoint.h) is left alone. Checks before building that the
 * config describes as many weights as the file holds. Returns 0, or -1 with the
 * message in err. */
int model_from_file(struct Model *m, const char *path, const char *config_path, char *err, size_t errlen);

/* The network's input node for a batch (rows x D): reshaped to (rows, C, H, W) for
 * convolutional models. */
struct Node *model_input(struct Graph *g, const struct Model *m, struct Tensor *batch);
/* Runs the modules over x. With skip_final_softmax a final Softmax is left out (the
 * CrossEntropy loss takes the pre-softmax values). Returns the network output. */
struct Node *model_forward(const struct Model *m, struct Node *x, int skip_final_softmax);
/* The same over any list of modules: the fusion rules (a Conv2d or a BatchNorm followed
 * by a ReLU run as one op; in inference a BatchNorm after a Conv2d or Linear is folded
 * into its weights) live here and nowhere else. */
struct Node *model_forward_modules(struct Module *const *mods, uint32_t n, struct Node *x, int skip_final_softmax);

/* Does inference fold a BatchNorm of kind next_kind into the layer of kind kind before
 * it (Conv2d then BatchNorm2d, Linear then BatchNorm1d)? */
int model_folds_batchnorm(uint32_t kind, uint32_t next_kind);
/* The weight and bias of layer (Conv2d or Linear) with the BatchNorm bn after it folded
 * in, as inference runs them, into w and b (shaped and typed as layer's parameters):
 * with y = s x + t the BatchNorm per output channel o (nn_batchnorm_fold, in double),
 * w[o] = s[o] W[o], b[o] = s[o] B[o] + t[o], each rounded once to the dtype. scratch:
 * 2 x out_channels doubles. */
void model_fold_batchnorm(const struct Module *layer, const struct Module *bn, double *scratch, struct Tensor *w,
                          struct Tensor *b);

/* Marks every parameter gradient as zero without touching it: the first backward write
 * overwrites it, and backward zeroes whatever it reached but did not write (autograd.h). */
void model_zero_grad(struct Model *m);

/* The memory a network of cfg needs, from the shape rules alone, before anything is
 * allocated: its parameters; when training their gradients and the optimizer's state
 * (Adam two copies, SGD one); each layer's outputs for `rows` samples at a time (value,
 * gradient and a temporary when training, value and a temporary otherwise) and a
 * convolution's unfolded input (twice when training); the batch buffers. A little more
 * than a step really takes: the Fashion-MNIST CNN at batch 256 is estimated at about
 * 100 MB for training. Sizes saturate at UINT64_MAX. */
struct ModelMemory {
    uint64_t total;         /* bytes */
    uint32_t largest;       /* the layer that needs the most (n_layers when there are none) */
    uint64_t largest_bytes;
};
void model_memory_estimate(const struct TrainConfig *cfg, uint64_t rows, int training, struct ModelMemory *mm);
/* The estimate against what is left of mem_limit() once `used` bytes are taken (data
 * already loaded): 0, or -1 with "FILE:LINE: the network needs N bytes (X GiB) ... but M
 * are available" in err, LINE that of the layer needing the most. filename names the
 * config in the message. */
int model_memory_check(const struct TrainConfig *cfg, const char *filename, uint64_t rows, int training,
                       uint64_t used, char *err, size_t errlen);

uint64_t model_param_count(const struct Model *m);
/* Prints the layer table (layer, output shape, parameters) on f. */
void model_print_summary(const struct Model *m, void *file);

#endif
