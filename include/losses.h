/* losses: MSE and CrossEntropy as graph ops (train.h builds the training graph).
 *
 * loss_mse(pred, target): mean over all elements of (pred - target)^2 (PyTorch MSELoss).
 * loss_cross_entropy(logits, cls): logits (B x C), cls the B class indices (each < C, as
 *   the dataset checked at load); fused max-subtracted log-softmax, mean over the batch
 *   (PyTorch CrossEntropyLoss). cls must outlive the graph's step. */
#ifndef MINIDL_LOSSES_H
#define MINIDL_LOSSES_H

#include "autograd.h"

struct Node *loss_mse(struct Node *pred, struct Node *target);
struct Node *loss_cross_entropy(struct Node *logits, const uint32_t *cls);

#endif
