/* grad_check: analytic gradients against central differences, in float64. */
#ifndef MINIDL_GRADCHECK_H
#define MINIDL_GRADCHECK_H

#include "autograd.h"

/* Builds the graph under test in g from persistent nodes held in ctx; returns its output. */
typedef struct Node *(*build_fn)(struct Graph *g, void *ctx);

/* For L = sum(out * R) with a fixed random R, the largest relative error
 * |analytic - numeric| / max(|analytic|, |numeric|, 1e-3) over every element of
 * param (a persistent float64 node with requires_grad). */
double grad_check(build_fn build, void *ctx, struct Node *param, double eps);

/* The class labels held in y (whole numbers, one per element) as integers in buf,
 * which has room for numel(y); returns buf. */
uint32_t *test_classes(const struct Tensor *y, uint32_t *buf);

/* Fills a tensor with uniform values in [lo, hi) from a fixed seed. */
void fill_uniform(struct Tensor *t, double lo, double hi, uint64_t seed);

/* A persistent f64 leaf with a gradient, filled uniformly in [lo, hi); leaf_free frees
 * the node and its tensor. */
struct Node *leaf(uint64_t ndim, const uint64_t *shape, double lo, double hi, uint64_t seed);
void leaf_free(struct Node *n);

#endif
