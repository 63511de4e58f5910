/* optimizers: SGD with momentum and Adam, exactly PyTorch's formulas, and the
 * learning-rate schedules (cosine as PyTorch's CosineAnnealingLR with eta_min 0, per step).
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
/* The learning rate of the next steps (a schedule sets it step by step), and reading it. */
void optim_set_lr(struct Optimizer *opt, double lr);
double optim_lr(const struct Optimizer *opt);

/* A step taken by parts, for a caller that updates a parameter as soon as its gradient
 * is final (train's step: a Linear's weight as the gemm writes its gradient), with the
 * same bits as the whole step. optim_step_begin counts the step (Adam's t) and returns 1,
 * or returns 0 and does nothing when opt->step is not the optimizer's own (the caller
 * then calls it); optim_step_range updates elements [lo, lo + n) of parameter i, lo a
 * multiple of OPTIM_RANGE_ALIGN, where the whole step's runs start (any thread, ranges
 * apart); optim_step_finish updates every parameter i with done[i] == 0 and ends it. */
#define OPTIM_RANGE_ALIGN 64
int optim_step_begin(struct Optimizer *opt);
void optim_step_range(struct Optimizer *opt, uint32_t i, uint64_t lo, uint64_t n);
void optim_step_finish(struct Optimizer *opt, const uint8_t *done);

/* The state a checkpoint saves and restores (train.h): per parameter, optim_buffers
 * buffers shaped like it (0 for SGD without momentum, 1 for SGD's velocity, 2 for
 * Adam's m then v); optim_buffer is buffer `which` of parameter i as a view (shares the
 * optimizer's memory: free the view with tensor_free, never the memory); and the steps
 * taken (Adam's t in the bias corrections; SGD counts none). */
uint32_t optim_buffers(const struct Optimizer *opt);
struct Tensor *optim_buffer(struct Optimizer *opt, uint32_t i, uint32_t which);
uint64_t optim_steps(const struct Optimizer *opt);
void optim_set_steps(struct Optimizer *opt, uint64_t steps);

/* The rate at step `step` of a run of `total` under a schedule (config_parser.h enum
 * LrSchedule): constant, or cosine decay from lr at step 0 towards 0 at step total
 * (lr * (1 + cos(pi * step / total)) / 2). */
double optim_lr_at(int schedule, double lr, uint64_t step, uint64_t total);

#endif
