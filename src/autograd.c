/* autograd: graph nodes, the arena-backed graph, elementwise/matmul/reshape ops with
 * their backward functions, and the iterative topological backward pass. */
#include "autograd.h"
#include "generic.h"
#include "kernels/dispatch.h"
#include "kernels/ew.h"
#include "math_kernels.h"
#include "utils.h"

#include <stdio.h>
#include <string.h>

static const char *const op_names[] = {
    "leaf", "add", "sub", "mul", "matmul", "relu", "sigmoid", "tanh", "softmax",
    "linear", "conv2d", "reshape", "mse_loss", "cross_entropy_loss", "conv2d_relu",
    "maxpool2d", "avgpool2d", "dropout", "batchnorm", "batchnorm_relu", "linear_relu",
};
_Static_assert(sizeof op_names / sizeof op_names[0] == OP_COUNT, "op_names out of step with enum OpKind");

const char *op_name(int op) { return op >= 0 && op < OP_COUNT ? op_names[op] : "unknown"; }

/* ---- graph and nodes ---- */

void graph_init(struct Graph *g)
{
    memset(g, 0, sizeof *g);
    arena_init(&g->arena, 1 << 20);
}

void graph_set_no_grad(struct Graph *g, int on) { g->no_grad = on != 0; }

void graph_reset(struct Graph *g)
{
    arena_reset(&g->arena);
    g->n_nodes = g->n_edges = 0;
}

void graph_free(struct Graph *g)
{
    arena_free(&g->arena);
    mem_free(g->scratch);
    memset(g, 0, sizeof *g);
}

void *graph_scratch(struct Graph *g, size_t bytes)
{
    if (bytes > g->scratch_cap) {
        mem_free(g->scratch);
        g->scratch = mem_alloc_aligned(bytes, 64);
        g->scratch_cap = bytes;
    }
    return g->scratch;
}

struct Node *node_from_tensor(struct Tensor *t, int requires_grad)
{
    struct Node *n = mem_alloc_zeroed(sizeof *n);
    n->value = t;
    n->op = OP_LEAF;
    n->requires_grad = requires_grad != 0;
    if (requires_grad) n->grad = tensor_zeros(t->ndim, t->shape, t->dtype);
    return n;
}

void node_free(struct Node *n)
{
    if (!n) return;
    CHECK(n->graph == NULL, "node_free on an arena node");
    tensor_free(n->grad);
    mem_free(n);
}

struct Node *graph_input(struct Graph *g, struct Tensor *t, int requires_grad)
{
    struct Node *n = arena_alloc_zeroed(&g->arena, sizeof *n);
    n->value = t;
    n->op = OP_LEAF;
    n->requires_grad = requires_grad && !g->no_grad;
    n->graph = g;
    g->n_nodes++;
    return n;
}

struct Node *node_new(struct Graph *g, int op, uint64_t ndim, const uint64_t *shape, uint32_t dtype,
                      uint32_t n_parents, struct Node **parents, void (*backward_fn)(struct Node *))
{
    struct Node *n = arena_alloc_zeroed(&g->arena, sizeof *n + n_parents * sizeof(struct Node *));
    n->parents = (struct Node **)(n + 1);
    n->n_parents = n_parents;
    for (uint32_t i = 0; i < n_parents; i++) {
        n->parents[i] = parents[i];
        n->requires_grad |= parents[i]->requires_grad && !g->no_grad;
        parents[i]->n_consumers++;
    }
    n->value = shape ? tensor_create_in(&g->arena, ndim, shape, dtype) : NULL;
    n->op = (uint32_t)op;
    n->graph = g;
    n->backward_fn = n->requires_grad ? backward_fn : NULL;
    g->n_nodes++;
    g->n_edges += n_parents;
    return n;
}

struct Graph *node_graph(struct Node *a, struct Node *b)
{
    if (a && a->graph) return a->graph;
    if (b && b->graph) return b->graph;
    panic("graph op on nodes that belong to no graph (wrap inputs with graph_input)");
}

void node_grad_invalidate(struct Node *n)
{
    if (n->grad) n->grad_stale = 1;
}

void node_grad_settle(struct Node *n)
{
    if (n->grad && n->grad_stale) {
        memset(n->grad->data, 0, tensor_numel(n->grad) * dtype_size(n->grad->dtype));
        n->grad_stale = 0;
    }
}

struct Tensor *node_grad(struct Node *n)
{
    node_grad_settle(n);
    if (!n->grad) {
        CHECK(n->graph != NULL, "persistent node without a gradient buffer");
        n->grad = tensor_zeros_in(&n->graph->arena, n->value->ndim, n->value->shape, n->value->dtype);
    }
    return n->grad;
}

struct Tensor *node_grad_begin(struct Node *p, int *overwrite)
{
    if (p->grad && p->grad_stale) { /* the first write after an invalidate overwrites */
        p->grad_stale = 0;
        *overwrite = 1;
        return p->grad;
    }
    *overwrite = !p->grad && p->graph && p->n_consumers == 1;
    if (!*overwrite) return node_grad(p);
    p->grad = tensor_create_in(&p->graph->arena, p->value->ndim, p->value->shape, p->value->dtype);
    return p->grad;
}

/* ---- the walk ---- */

struct Frame { struct Node *node; uint32_t next; };

/* Nodes reachable from root through nodes that need a gradient, parents before
 * children, by an explicit-stack depth-first walk (no recursion: a chain of 100 000
 * nodes must not overflow the C stack). Arrays come from the root's arena. */
static uint64_t topo_sort(struct Node *root, struct Node ***order_out)
{
    struct Graph *g = root->graph;
    CHECK(g != NULL, "backward from a node outside any graph");
    uint64_t cap = g->n_nodes + g->n_edges + 1;
    struct Node **order = arena_alloc(&g->arena, cap * sizeof *order);
    struct Frame *stack = arena_alloc(&g->arena, cap * sizeof *stack);
    uint64_t n = 0, sp = 0;
    root->visited = 1;
    stack[sp++] = (struct Frame){root, 0};
    while (sp) {
        struct Frame *top = &stack[sp - 1];
        if (top->next < top->node->n_parents) {
            struct Node *p = top->node->parents[top->next++];
            if (p->requires_grad && !p->visited) {
                p->visited = 1;
                stack[sp++] = (struct Frame){p, 0};
            }
        } else {
            order[n++] = top->node;
            sp--;
        }
    }
    for (uint64_t i = 0; i < n; i++) order[i]->visited = 0;
    *order_out = order;
    return n;
}

static void grad_zero(struct Tensor *t)
{
    memset(t->data, 0, tensor_numel(t) * dtype_size(t->dtype));
}

void zero_grad(struct Node *root)
{
    struct Node **order;
    uint64_t n = topo_sort(root, &order);
    for (uint64_t i = 0; i < n; i++)
        if (order[i]->grad) grad_zero(order[i]->grad), order[i]->grad_stale = 0;
}

static void run_backward(struct Node *out, const struct Tensor *seed)
{
    if (!out->requires_grad) return;
    struct Node **order;
    uint64_t n = topo_sort(out, &order);
    /* Intermediate gradients are per pass; only persistent nodes accumulate across passes. */
    for (uint64_t i = 0; i < n; i++)
        if (order[i]->graph && order[i]->grad) grad_zero(order[i]->grad);
    if (seed) tensor_copy_into(node_grad(out), seed);
    else tensor_fill(node_grad(out), 1.0);
    for (uint64_t i = n; i-- > 0;)
        if (order[i]->backward_fn) order[i]->backward_fn(order[i]);
    /* A persistent gradient marked zero that no backward function wrote is zero now. */
    for (uint64_t i = 0; i < n; i++)
        if (!order[i]->graph) node_grad_settle(order[i]);
}

void backward(struct Node *loss)
{
    CHECK(tensor_numel(loss->value) == 1, "backward needs a scalar loss");
    run_backward(loss, NULL);
}

void backward_seeded(struct Node *out, const struct Tensor *seed)
{
    char a[96], b[96];
    if (!tensor_same_shape(out->value, seed) || out->value->dtype != seed->dtype)
        panic("backward_seeded: seed %s does not match output %s", tensor_shape_str(seed, a, sizeof a),
              tensor_shape_str(out->value, b, sizeof b));
    run_backward(out, seed);
}

void graph_print(struct Node *root, void *file)
{
    FILE *f = file;
    struct Node **order;
    uint64_t n = topo_sort(root, &order);
    for (uint64_t i = 0; i < n; i++) {
        char s[96];
        fprintf(f, "%3llu %-20s %-14s %s\n", (unsigned long long)i, op_name((int)order[i]->op),
                tensor_shape_str(order[i]->value, s, sizeof s), dtype_name(order[i]->value->dtype));
    }
}

/* ---- elementwise ops ---- */

static void check_same(const char *op, struct Node *a, struct Node *b)
{
    char sa[96], sb[96];
    if (!tensor_same_shape(a->value, b->value) || a->value->dtype != b->value->dtype)
        panic("%s: shapes %s (%s) and %s (%s) differ", op, tensor_shape_str(a->value, sa, sizeof sa),
              dtype_name(a->value->dtype), tensor_shape_str(b->value, sb, sizeof sb), dtype_name(b->value->dtype));
}

static void accumulate(struct Node *p, const struct Tensor *g, double alpha)
{
    if (!node_wants_grad(p)) return;
    const struct EwKernels *k = kernels_get()->ew;
    size_t n = tensor_numel(g);
    struct Tensor *gp = node_grad(p);
    if (g->dtype == DT_FLOAT32) k->axpy_f32(n, (float)alpha, g->data, gp->data);
    else k->axpy_f64(n, alpha, g->data, gp->data);
}

static struct Node *ew_node(int op, struct Node *a, struct Node *b, int kind, void (*bwd)(struct Node *))
{
    check_same(op_name(op), a, b);
    struct Node *parents[2] = {a, b};
    struct Tensor *va = a->value;
    struct Node *out = node_new(node_graph(a, b), op, va->ndim, va->shape, va->dtype, 2, parents, bwd);
    const struct EwKernels *k = kernels_get()->ew;
    size_t n = tensor_numel(va);
    if (va->dtype == DT_FLOAT32) k->bin_f32[kind](n, va->data, b->value->data, out->value->data);
    else k->bin_f64[kind](n, va->data, b->value->data, out->value->data);
    return out;
}

static void add_backward(struct Node *self)
{
    accumulate(self->parents[0], self->grad, 1.0);
    accumulate(self->parents[1], self->grad, 1.0);
}

struct Node *ag_add(struct Node *a, struct Node *b) { return ew_node(OP_ADD, a, b, EW_ADD, add_backward); }

static void sub_backward(struct Node *self)
{
    accumulate(self->parents[0], self->grad, 1.0);
    accumulate(self->parents[1], self->grad, -1.0);
}

struct Node *ag_sub(struct Node *a, struct Node *b) { return ew_node(OP_SUB, a, b, EW_SUB, sub_backward); }

/* gx += g * other */
#define MUL_GRAD(T, sfx)                                                        \
    static void mul_grad_##sfx(size_t n, const void *g_, const void *o_, void *gx_) \
    {                                                                           \
        const T *g = g_, *o = o_;                                               \
        T *gx = gx_;                                                            \
        for (size_t i = 0; i < n; i++) gx[i] += g[i] * o[i];                    \
    }
GEN_BOTH(MUL_GRAD)

static void mul_backward(struct Node *self)
{
    struct Node *a = self->parents[0], *b = self->parents[1];
    size_t n = tensor_numel(self->grad);
    uint32_t dt = self->grad->dtype;
    if (node_wants_grad(a)) DT_CALL(dt, mul_grad, n, self->grad->data, b->value->data, node_grad(a)->data);
    if (node_wants_grad(b)) DT_CALL(dt, mul_grad, n, self->grad->data, a->value->data, node_grad(b)->data);
}

struct Node *ag_mul(struct Node *a, struct Node *b) { return ew_node(OP_MUL, a, b, EW_MUL, mul_backward); }

/* ---- matmul ---- */

static void matmul_backward(struct Node *self)
{
    struct Node *a = self->parents[0], *b = self->parents[1];
    /* dA += dC B^T ; dB += A^T dC */
    if (node_wants_grad(a)) gemm(0, 1, 1.0, self->grad, b->value, 1.0, node_grad(a));
    if (node_wants_grad(b)) gemm(1, 0, 1.0, a->value, self->grad, 1.0, node_grad(b));
}

struct Node *ag_matmul(struct Node *a, struct Node *b)
{
    char sa[96], sb[96];
    struct Tensor *A = a->value, *B = b->value;
    if (A->ndim != 2 || B->ndim != 2 || A->shape[1] != B->shape[0] || A->dtype != B->dtype)
        panic("matmul: cannot multiply %s (%s) by %s (%s)", tensor_shape_str(A, sa, sizeof sa), dtype_name(A->dtype),
              tensor_shape_str(B, sb, sizeof sb), dtype_name(B->dtype));
    uint64_t shape[2] = {A->shape[0], B->shape[1]};
    struct Node *parents[2] = {a, b};
    struct Node *out = node_new(node_graph(a, b), OP_MATMUL, 2, shape, A->dtype, 2, parents, matmul_backward);
    matmul(out->value, A, B);
    return out;
}

/* ---- reshape (a view: same data, same gradient layout) ---- */

/* A sole consumer lends its gradient buffer to the parent instead of copying it. */
static void reshape_backward(struct Node *self)
{
    struct Node *p = self->parents[0];
    if (!node_wants_grad(p)) return;
    if (!p->grad && p->graph && p->n_consumers == 1) {
        p->grad = tensor_header_in(&p->graph->arena, p->value->ndim, p->value->shape, p->value->dtype, self->grad->data);
        return;
    }
    accumulate(p, self->grad, 1.0);
}

struct Node *ag_reshape(struct Node *x, uint64_t ndim, const uint64_t *shape)
{
    char a[96];
    struct Graph *g = node_graph(x, NULL);
    CHECK(tensor_is_contiguous(x->value), "reshape of a non-contiguous tensor");
    struct Node *out = node_new(g, OP_FLATTEN, 0, NULL, 0, 1, &x, reshape_backward);
    out->value = tensor_header_in(&g->arena, ndim, shape, x->value->dtype, x->value->data);
    if (tensor_numel(out->value) != tensor_numel(x->value))
        panic("reshape: cannot view %s as %llu elements", tensor_shape_str(x->value, a, sizeof a),
              (unsigned long long)tensor_numel(out->value));
    return out;
}

struct Node *graph_attach(struct Graph *g, struct Node *p)
{
    struct Node *out = node_new(g, OP_FLATTEN, 0, NULL, 0, 1, &p, reshape_backward);
    out->value = tensor_header_in(&g->arena, p->value->ndim, p->value->shape, p->value->dtype, p->value->data);
    return out;
}

struct Node *ag_flatten(struct Node *x)
{
    uint64_t b = x->value->ndim ? x->value->shape[0] : 1;
    uint64_t shape[2] = {b, b ? tensor_numel(x->value) / b : 0};
    return ag_reshape(x, 2, shape);
}
