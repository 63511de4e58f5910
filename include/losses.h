/* losses: MSE and CrossEntropy as graph ops (train.h builds the training graph).
 *
 * loss_mse(pred, target): mean over all elements of (pred - target)^2 (PyTorch MSELoss).
 * loss_cross_entropy(logits, target): logits (B x C), target (B) or (B x 1) holding class
 *   indices as numbers; fused max-subtracted log-softmax, mean over the batch
 *   (PyTorch CrossEntropyLoss). */
#ifndef MINIDL_LOSSES_H
#define MINIDL_LOSSES_H

#include "autograd.h"

struct Node *loss_mse(struct Node *pred, struct Node *target);
struct Node *loss_cross_entropy(struct Node *logits, const struct Tensor *target);

#endif
