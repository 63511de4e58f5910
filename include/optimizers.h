/* optimizers: SGD with momentum and Adam, exactly PyTorch's formulas.
 *
 * SGD:  v = momentum*v + g;  p -= lr*v          (momentum 0: p -= lr*g; no state)
 * Adam: m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2;
 *       p -= lr * (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps)
 * The optimizer points at the caller's parameter and gradient tensors (it owns
 * neither); its state is allocated once, at creation. Both dtypes. */
#ifndef MINIDL_OPTIMIZERS_H
#define MINIDL_OPTIMIZERS_H

#include "tensor.h"

struct Optimizer {
    uint32_t n_params;
    struct Tensor **params;
    struct Tensor **grads;
    void (*step)(struct Optimizer *);
    void (*zero_grad)(struct Optimizer *);
    void *state;
};

struct Optimizer *optim_sgd_create(struct Tensor **params, struct Tensor **grads, uint32_t n,
                                   double lr, double momentum);
struct Optimizer *optim_adam_create(struct Tensor **params, struct Tensor **grads, uint32_t n,
                                    double lr, double beta1, double beta2, double eps);
void optim_free(struct Optimizer *opt);

#endif
