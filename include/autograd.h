/* autograd: the computation graph and reverse-mode differentiation.
 *
 * A Graph owns an arena: every node, output tensor, gradient and temporary of one
 * step comes from it, and graph_reset() takes them all back at once, so after the
 * first step a training step makes no heap call. Parameter nodes are made once with
 * node_from_tensor() and live on the heap with their gradient buffer.
 *
 * Every op is a forward function that checks shapes (panicking with both shapes),
 * computes its output, and returns a node whose backward_fn (defined right below the
 * forward, in the op's own module) accumulates (+=) into the gradients of the
 * parents that need one and skips the others. Ops find their graph through their
 * parents (node->graph); at least one parent must belong to a graph. */
#ifndef MINIDL_AUTOGRAD_H
#define MINIDL_AUTOGRAD_H

#include "mem.h"
#include "tensor.h"

/* One enum of op kinds with a name table (op_name), so a graph can be printed. */
enum OpKind {
    OP_LEAF, OP_ADD, OP_SUB, OP_MUL, OP_MATMUL, OP_RELU, OP_SIGMOID, OP_TANH, OP_SOFTMAX,
    OP_LINEAR, OP_CONV2D, OP_FLATTEN, OP_MSE_LOSS, OP_CROSS_ENTROPY_LOSS, OP_CONV2D_RELU,
    OP_MAXPOOL2D, OP_AVGPOOL2D, OP_DROPOUT, OP_BATCHNORM, OP_BATCHNORM_RELU, OP_LINEAR_RELU, OP_COUNT
};
const char *op_name(int op);

struct Graph;
struct ParCopies;

/* A parameter's update as its gradient is written (train's step, when nothing reads the
 * gradients between the backward pass and the update): an op whose backward writes the
 * parameter's gradient whole may call update(hook, lo, n) for elements [lo, lo + n),
 * each once, on the thread that wrote them, while they are in cache, lo a multiple of
 * GRAD_HOOK_ALIGN elements, and then clears the node's grad_hook (a Linear's weight,
 * where its gemm is cut by rows); the caller updates the parameters whose hook is left.
 * Only for a parameter that one op of the step consumes (a model's modules). */
#define GRAD_HOOK_ALIGN 64
struct GradHook {
    void (*update)(const struct GradHook *hook, uint64_t lo, uint64_t n);
    void *ctx;
    uint32_t index;
};

struct Node {
    struct Tensor *value;
    struct Tensor *grad;            /* NULL until needed (arena nodes) */
    void (*backward_fn)(struct Node *self);
    uint32_t n_parents;
    struct Node **parents;
    uint32_t visited;               /* scratch for the topological sort; 0 at rest */
    uint32_t op;                    /* enum OpKind */
    uint32_t requires_grad;         /* this node, or something it depends on, needs a gradient */
    struct Graph *graph;            /* NULL for persistent (heap) nodes */
    uint32_t n_consumers;           /* nodes of the graph that take this one as a parent */
    uint32_t grad_stale;            /* the gradient's contents are void and read as zero */
    uint32_t grad_masked;           /* set by the consumer that wrote the gradient whole (see below) */
    void *ctx;                      /* op-specific saved data (arena) */
    const struct ParCopies *copies; /* a batch's input: value's data, one copy per thread (threads.h), or NULL */
    const struct GradHook *grad_hook; /* a parameter's update, while its step is taken by parts (or NULL) */
};

struct Graph {
    struct Arena arena;
    void *scratch;          /* one buffer sized to the largest need (im2col), reused */
    size_t scratch_cap;
    uint64_t n_nodes, n_edges; /* made since the last reset: bounds a graph walk */
    int no_grad;            /* forward only: no node needs a gradient, nothing is saved for backward */
};

void graph_init(struct Graph *g);
void graph_reset(struct Graph *g);  /* frees every node of the step at once */
/* Forward only (inference): nodes made in g need no gradient, whatever their parents
 * (the parameters) need, so ops keep nothing for a backward pass that will not run. */
void graph_set_no_grad(struct Graph *g, int on);
void graph_free(struct Graph *g);
/* Scratch of at least `bytes`, grown (never shrunk) on demand; contents unspecified. */
void *graph_scratch(struct Graph *g, size_t bytes);

/* A persistent node owning nothing of t (t must outlive it); with requires_grad a
 * zeroed gradient of t's shape is allocated once and owned by the node. */
struct Node *node_from_tensor(struct Tensor *t, int requires_grad);
void node_free(struct Node *n);     /* persistent nodes only; frees the gradient */
/* A node of graph g wrapping t (not owned). */
struct Node *graph_input(struct Graph *g, struct Tensor *t, int requires_grad);

/* An identity node in g over a persistent node p (same data; the gradient flows to
 * p): how a graph op is applied to persistent nodes alone. */
struct Node *graph_attach(struct Graph *g, struct Node *p);

/* Helpers for ops: a new arena node with an output of the given shape and dtype
 * (uninitialised), the given parents and op kind. requires_grad is derived from
 * the parents. */
struct Node *node_new(struct Graph *g, int op, uint64_t ndim, const uint64_t *shape, uint32_t dtype,
                      uint32_t n_parents, struct Node **parents, void (*backward_fn)(struct Node *));
struct Graph *node_graph(struct Node *a, struct Node *b);   /* the graph of a or b; panics if none */
/* The gradient of n, allocated zeroed in the arena on first use. */
struct Tensor *node_grad(struct Node *n);
/* Marks a persistent node's gradient as zero without touching it: the next
 * node_grad_begin overwrites it, node_grad zeroes it first, and backward() zeroes it if
 * nothing it ran wrote it. Cheaper than zeroing when backward will write it anyway (the
 * weight gradient of every layer): model_zero_grad is this over every parameter. */
void node_grad_invalidate(struct Node *n);
/* Zeroes the gradient if it is still marked stale (nothing wrote it). */
void node_grad_settle(struct Node *n);
/* For a backward function about to write p's gradient: if p is an arena node whose
 * only consumer is the caller and whose gradient does not exist yet, returns an
 * uninitialised buffer and sets *overwrite, so the caller writes (=) instead of
 * accumulating (+=) and nothing needs zeroing; otherwise node_grad(p), *overwrite = 0. */
struct Tensor *node_grad_begin(struct Node *p, int *overwrite);
/* Gradient ownership. A node's gradient is written by its consumers' backward
 * functions and read by its own. The first (and, for a sole consumer, only) writer may
 * overwrite instead of accumulate (node_grad_begin). A writer that does so may also
 * apply the node's own output mask on the way (a fused Conv2d + ReLU's or Linear +
 * ReLU's y > 0, while the gradient is in cache) and then sets p->grad_masked, so that
 * the node's backward does
 * not apply it again; nothing else of one node's state is written by another. */

/* Does parent p want a gradient? (KANN's kad_is_back) */
static inline int node_wants_grad(const struct Node *p) { return p->requires_grad; }

/* Elementwise ops (same shapes): out = a + b, a - b, a * b. Matmul: (M x K)(K x N). */
struct Node *ag_add(struct Node *a, struct Node *b);
struct Node *ag_sub(struct Node *a, struct Node *b);
struct Node *ag_mul(struct Node *a, struct Node *b);
struct Node *ag_matmul(struct Node *a, struct Node *b);
/* Same data, another shape of the same element count (a view; the gradient flows back
 * unchanged). ag_flatten: (B, ...) -> (B, prod(...)). */
struct Node *ag_reshape(struct Node *x, uint64_t ndim, const uint64_t *shape);
struct Node *ag_flatten(struct Node *x);

/* Zero the gradients of every node reachable from root. */
void zero_grad(struct Node *root);
/* Seed d(loss)/d(loss) = 1 (loss must have one element), sort the reachable graph
 * topologically without recursion, run the backward functions in reverse, and settle
 * (node_grad_settle) every persistent node it reached. */
void backward(struct Node *loss);
/* The vector-Jacobian product: backward from out seeded with d(L)/d(out) = seed
 * (same shape as out), as if L = sum(out * seed). backward(loss) is the seed 1. */
void backward_seeded(struct Node *out, const struct Tensor *seed);
/* Print the graph reachable from root (op kinds and shapes), for debugging. */
void graph_print(struct Node *root, void *file /* FILE* */);

#endif
