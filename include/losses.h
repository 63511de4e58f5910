/* losses: MSE and CrossEntropy, and the one function that builds a training graph.
 *
 * loss_mse(pred, target): mean over all elements of (pred - target)^2 (PyTorch MSELoss).
 * loss_cross_entropy(logits, target): logits (B x C), target (B) or (B x 1) holding class
 *   indices as numbers; fused max-subtracted log-softmax, mean over the batch
 *   (PyTorch CrossEntropyLoss). */
#ifndef MINIDL_LOSSES_H
#define MINIDL_LOSSES_H

#include "nn_layers.h"

enum LossKind { LOSS_MSE, LOSS_CROSS_ENTROPY };

struct Node *loss_mse(struct Node *pred, struct Node *target);
struct Node *loss_cross_entropy(struct Node *logits, const struct Tensor *target);

/* Runs the modules over x in g. With for_loss == LOSS_CROSS_ENTROPY a final Softmax is
 * skipped: the loss takes the pre-softmax values (the rule lives here and nowhere
 * else). Returns the network output (pre-softmax when skipped). */
struct Node *net_forward(struct Module **mods, uint32_t n_mods, struct Node *x, int skip_final_softmax);
/* Builds forward + loss for training; *out (may be NULL) receives the network output. */
struct Node *loss_build_graph(struct Module **mods, uint32_t n_mods, struct Node *x,
                              const struct Tensor *y, int loss_kind, struct Node **out);

#endif
