/* MaxPool2d(k, stride) and AvgPool2d(k, stride): k x k windows over each plane of an
 * NCHW input, no padding, floor mode, as PyTorch's nn.MaxPool2d / nn.AvgPool2d (stride
 * defaults to k). H_out = (H - k) / stride + 1. Max pooling keeps, for the backward, the
 * index of each window's maximum: the first one in row-major order, or the last NaN
 * (PyTorch's rule), and routes the gradient there. The two kinds share the geometry and
 * the shape rule, so they share this file (as the activations share theirs). */
#include "nn_layers.h"
#include "generic.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

struct PoolGeom { size_t planes, H, W, k, s, Ho, Wo; };

#define POOL_INLINE static inline __attribute__((always_inline))

/* The even or odd lanes of two vectors: GCC's __builtin_shuffle takes the mask vector,
 * clang (the fuzz build, make fuzz) only constant lanes in __builtin_shufflevector. */
#if defined(__clang__)
#define POOL_SHUFFLE_f32(a, b, mask, odd) \
    ((void)(mask), (odd) ? __builtin_shufflevector(a, b, 1, 3, 5, 7) : __builtin_shufflevector(a, b, 0, 2, 4, 6))
#define POOL_SHUFFLE_f64(a, b, mask, odd) \
    ((void)(mask), (odd) ? __builtin_shufflevector(a, b, 1, 3) : __builtin_shufflevector(a, b, 0, 2))
#else
#define POOL_SHUFFLE_f32(a, b, mask, odd) __builtin_shuffle(a, b, mask)
#define POOL_SHUFFLE_f64(a, b, mask, odd) __builtin_shuffle(a, b, mask)
#endif

/* 2x2 windows at stride 2, L outputs at a time in 16-byte vectors (GCC's generic vectors:
 * SSE2 on every x86-64): two input rows are split into the windows' four corners a b / c d
 * and the scan "take v if v > max or v is NaN" runs in that order, so the value and the
 * index are those of the scalar loop. idx: the window's offset in the plane. */
#define MAXPOOL2X2_T(T, sfx, IT, L, EVEN, ODD)                                                \
    typedef T vt_##sfx __attribute__((vector_size(16)));                                      \
    typedef IT vi_##sfx __attribute__((vector_size(16)));                                     \
    POOL_INLINE void take_##sfx(vt_##sfx v, IT k, vt_##sfx *m, vi_##sfx *code)                \
    {                                                                                         \
        vi_##sfx t = (v > *m) | (v != v);                                                     \
        *m = (vt_##sfx)(((vi_##sfx)v & t) | ((vi_##sfx)*m & ~t));                             \
        *code = (t & k) | (*code & ~t);                                                       \
    }                                                                                         \
    /* L windows whose rows start at r0 and r1: their max in y, corner codes in code */     \
    POOL_INLINE void block_##sfx(const T *r0, const T *r1, T *y, vi_##sfx *code)              \
    {                                                                                         \
        const vi_##sfx even = EVEN, odd = ODD;                                                \
        vt_##sfx x0, x1, x2, x3, m;                                                           \
        memcpy(&x0, r0, 16), memcpy(&x1, r0 + L, 16), memcpy(&x2, r1, 16), memcpy(&x3, r1 + L, 16); \
        *code = (vi_##sfx){0};                                                                \
        m = POOL_SHUFFLE_##sfx(x0, x1, even, 0);                                              \
        take_##sfx(POOL_SHUFFLE_##sfx(x0, x1, odd, 1), 1, &m, code);                          \
        take_##sfx(POOL_SHUFFLE_##sfx(x2, x3, even, 0), 2, &m, code);                         \
        take_##sfx(POOL_SHUFFLE_##sfx(x2, x3, odd, 1), 3, &m, code);                          \
        memcpy(y, &m, 16);                                                                    \
    }                                                                                         \
    /* One output row; the last partial block through copies of its inputs. */                \
    static void maxpool2x2_row_##sfx(const T *r0, const T *r1, size_t Wo, size_t W, size_t base, T *y, \
                                     uint32_t *idx)                                           \
    {                                                                                         \
        for (size_t j = 0; j < Wo; j += L) {                                                  \
            size_t n = Wo - j < L ? Wo - j : L;                                               \
            T t0[2 * L] = {0}, t1[2 * L] = {0}, ty[L];                                        \
            vi_##sfx code;                                                                    \
            if (n == L) block_##sfx(r0 + 2 * j, r1 + 2 * j, y + j, &code);                    \
            else {                                                                            \
                memcpy(t0, r0 + 2 * j, 2 * n * sizeof(T)), memcpy(t1, r1 + 2 * j, 2 * n * sizeof(T)); \
                block_##sfx(t0, t1, ty, &code);                                               \
                memcpy(y + j, ty, n * sizeof(T));                                             \
            }                                                                                 \
            if (idx)                                                                          \
                for (size_t l = 0; l < n; l++)                                                \
                    idx[j + l] = (uint32_t)(base + 2 * (j + l) + (size_t)(code[l] >> 1) * W + (size_t)(code[l] & 1)); \
        }                                                                                     \
    }
MAXPOOL2X2_T(float, f32, int32_t, 4, ((vi_f32){0, 2, 4, 6}), ((vi_f32){1, 3, 5, 7}))
MAXPOOL2X2_T(double, f64, int64_t, 2, ((vi_f64){0, 2}), ((vi_f64){1, 3}))

/* One plane: y = the max of each window, idx its offset in the plane (idx may be NULL). */
#define MAXPOOL_T(T, sfx)                                                                     \
    POOL_INLINE void maxpool_plane_##sfx(const T *x, size_t W, size_t Ho, size_t Wo, size_t k, size_t s, \
                                         T *y, uint32_t *idx)                                  \
    {                                                                                         \
        for (size_t oh = 0; oh < Ho; oh++)                                                    \
            for (size_t ow = 0; ow < Wo; ow++) {                                              \
                size_t base = oh * s * W + ow * s, bi = base;                                 \
                T best = (T)-INFINITY;                                                        \
                for (size_t i = 0; i < k; i++)                                                \
                    for (size_t j = 0; j < k; j++) {                                          \
                        T v = x[base + i * W + j];                                            \
                        if (v > best || v != v) best = v, bi = base + i * W + j;              \
                    }                                                                         \
                y[oh * Wo + ow] = best;                                                       \
                if (idx) idx[oh * Wo + ow] = (uint32_t)bi;                                    \
            }                                                                                 \
    }                                                                                         \
    static void maxpool_fwd_##sfx(const struct PoolGeom *q, const void *x_, void *y_, uint32_t *idx) \
    {                                                                                         \
        const T *x = x_;                                                                      \
        T *y = y_;                                                                            \
        size_t in = q->H * q->W, out = q->Ho * q->Wo;                                         \
        for (size_t p = 0; p < q->planes; p++) {                                              \
            uint32_t *ip = idx ? idx + p * out : NULL;                                        \
            if (q->k == 2 && q->s == 2)                                                       \
                for (size_t oh = 0; oh < q->Ho; oh++)                                         \
                    maxpool2x2_row_##sfx(x + p * in + 2 * oh * q->W, x + p * in + (2 * oh + 1) * q->W, q->Wo, q->W, \
                                         2 * oh * q->W, y + p * out + oh * q->Wo, ip ? ip + oh * q->Wo : NULL); \
            else maxpool_plane_##sfx(x + p * in, q->W, q->Ho, q->Wo, q->k, q->s, y + p * out, ip); \
        }                                                                                     \
    }                                                                                         \
    /* gx[idx] += g, plane by plane (gx zeroed first when overwrite) */                       \
    static void maxpool_bwd_##sfx(const struct PoolGeom *q, const void *g_, const uint32_t *idx, void *gx_, \
                                  int overwrite)                                              \
    {                                                                                         \
        const T *g = g_;                                                                      \
        T *gx = gx_;                                                                          \
        size_t in = q->H * q->W, out = q->Ho * q->Wo;                                         \
        if (overwrite) memset(gx, 0, q->planes * in * sizeof(T));                             \
        for (size_t p = 0; p < q->planes; p++, gx += in, g += out, idx += out)                \
            for (size_t o = 0; o < out; o++) gx[idx[o]] += g[o];                              \
    }
GEN_BOTH(MAXPOOL_T)

/* The mean of each window; its backward spreads g / (k*k) over the window. */
#define AVGPOOL_T(T, sfx)                                                                     \
    POOL_INLINE void avgpool_plane_##sfx(const T *x, size_t W, size_t Ho, size_t Wo, size_t k, size_t s, T *y) \
    {                                                                                         \
        T div = (T)(k * k);                                                                   \
        for (size_t oh = 0; oh < Ho; oh++)                                                    \
            for (size_t ow = 0; ow < Wo; ow++) {                                              \
                const T *w = x + oh * s * W + ow * s;                                         \
                T sum = 0;                                                                    \
                for (size_t i = 0; i < k; i++)                                                \
                    for (size_t j = 0; j < k; j++) sum += w[i * W + j];                       \
                y[oh * Wo + ow] = sum / div;                                                  \
            }                                                                                 \
    }                                                                                         \
    POOL_INLINE void avgpool_plane_bwd_##sfx(const T *g, size_t W, size_t Ho, size_t Wo, size_t k, size_t s, T *gx) \
    {                                                                                         \
        T div = (T)(k * k);                                                                   \
        for (size_t oh = 0; oh < Ho; oh++)                                                    \
            for (size_t ow = 0; ow < Wo; ow++) {                                              \
                T *w = gx + oh * s * W + ow * s, d = g[oh * Wo + ow] / div;                   \
                for (size_t i = 0; i < k; i++)                                                \
                    for (size_t j = 0; j < k; j++) w[i * W + j] += d;                         \
            }                                                                                 \
    }                                                                                         \
    static void avgpool_fwd_##sfx(const struct PoolGeom *q, const void *x_, void *y_)         \
    {                                                                                         \
        const T *x = x_;                                                                      \
        T *y = y_;                                                                            \
        size_t in = q->H * q->W, out = q->Ho * q->Wo;                                         \
        for (size_t p = 0; p < q->planes; p++) {                                              \
            if (q->k == 2 && q->s == 2) avgpool_plane_##sfx(x + p * in, q->W, q->Ho, q->Wo, 2, 2, y + p * out); \
            else avgpool_plane_##sfx(x + p * in, q->W, q->Ho, q->Wo, q->k, q->s, y + p * out); \
        }                                                                                     \
    }                                                                                         \
    static void avgpool_bwd_##sfx(const struct PoolGeom *q, const void *g_, void *gx_, int overwrite) \
    {                                                                                         \
        const T *g = g_;                                                                      \
        T *gx = gx_;                                                                          \
        size_t in = q->H * q->W, out = q->Ho * q->Wo;                                         \
        if (overwrite) memset(gx, 0, q->planes * in * sizeof(T));                             \
        for (size_t p = 0; p < q->planes; p++) {                                              \
            if (q->k == 2 && q->s == 2) avgpool_plane_bwd_##sfx(g + p * out, q->W, q->Ho, q->Wo, 2, 2, gx + p * in); \
            else avgpool_plane_bwd_##sfx(g + p * out, q->W, q->Ho, q->Wo, q->k, q->s, gx + p * in); \
        }                                                                                     \
    }
GEN_BOTH(AVGPOOL_T)

struct PoolCtx { struct PoolGeom q; uint32_t *idx; };

static void maxpool2d_backward(struct Node *self)
{
    struct Node *x = self->parents[0];
    if (!node_wants_grad(x)) return;
    const struct PoolCtx *cx = self->ctx;
    int overwrite;
    struct Tensor *gx = node_grad_begin(x, &overwrite);
    DT_CALL(self->value->dtype, maxpool_bwd, &cx->q, self->grad->data, cx->idx, gx->data, overwrite);
}

static void avgpool2d_backward(struct Node *self)
{
    struct Node *x = self->parents[0];
    if (!node_wants_grad(x)) return;
    const struct PoolCtx *cx = self->ctx;
    int overwrite;
    struct Tensor *gx = node_grad_begin(x, &overwrite);
    DT_CALL(self->value->dtype, avgpool_bwd, &cx->q, self->grad->data, gx->data, overwrite);
}

static struct Node *pool_node(const char *what, int op, struct Node *x, uint64_t k, uint64_t stride,
                              void (*bwd)(struct Node *))
{
    char sx[96];
    struct Tensor *X = x->value;
    if (X->ndim != 4 || k == 0 || stride == 0 || k > X->shape[2] || k > X->shape[3])
        panic("%s: a %llux%llu window (stride %llu) does not fit input %s (expected N x C x H x W, H and W >= k)",
              what, (unsigned long long)k, (unsigned long long)k, (unsigned long long)stride,
              tensor_shape_str(X, sx, sizeof sx));
    CHECK(tensor_is_contiguous(X), "%s input must be contiguous", what);
    CHECK(X->shape[2] * X->shape[3] <= UINT32_MAX, "%s: planes of more than 2^32 values", what);
    struct Graph *g = node_graph(x, NULL);
    struct PoolGeom q = {X->shape[0] * X->shape[1], X->shape[2], X->shape[3], k, stride,
                         (X->shape[2] - k) / stride + 1, (X->shape[3] - k) / stride + 1};
    uint64_t shape[4] = {X->shape[0], X->shape[1], q.Ho, q.Wo};
    struct Node *y = node_new(g, op, 4, shape, X->dtype, 1, &x, bwd);
    struct PoolCtx *cx = arena_alloc(&g->arena, sizeof *cx);
    cx->q = q;
    cx->idx = NULL;
    y->ctx = cx;
    return y;
}

struct Node *nn_maxpool2d(struct Node *x, uint64_t k, uint64_t stride)
{
    struct Node *y = pool_node("maxpool2d", OP_MAXPOOL2D, x, k, stride, maxpool2d_backward);
    struct PoolCtx *cx = y->ctx;
    if (y->requires_grad) cx->idx = arena_alloc(&y->graph->arena, tensor_numel(y->value) * sizeof *cx->idx);
    DT_CALL(x->value->dtype, maxpool_fwd, &cx->q, x->value->data, y->value->data, cx->idx);
    return y;
}

struct Node *nn_avgpool2d(struct Node *x, uint64_t k, uint64_t stride)
{
    struct Node *y = pool_node("avgpool2d", OP_AVGPOOL2D, x, k, stride, avgpool2d_backward);
    const struct PoolCtx *cx = y->ctx;
    DT_CALL(x->value->dtype, avgpool_fwd, &cx->q, x->value->data, y->value->data);
    return y;
}

/* ---- the layers ---- */

static void maxpool2d_forward(struct Module *m, struct Node *input, struct Node **output)
{
    *output = nn_maxpool2d(input, m->spec.args.pool.k, m->spec.args.pool.stride);
}

static void avgpool2d_forward(struct Module *m, struct Node *input, struct Node **output)
{
    *output = nn_avgpool2d(input, m->spec.args.pool.k, m->spec.args.pool.stride);
}

static int pool_shape(const struct LayerSpec *l, const struct LayerShape *in, int first, struct LayerShape *out,
                      uint64_t *n_params, char *err, size_t errlen)
{
    const char *name = layer_type(l->kind)->name;
    uint64_t k = l->args.pool.k, s = l->args.pool.stride;
    char note[80];
    if (in->ndim != 3) {
        if (first) return err_set(err, errlen, "%s needs a C,H,W input: give input_shape=C,H,W instead of input_dim", name);
        return err_set(err, errlen, "%s cannot follow a Linear layer: its output is flat (%llu values)", name,
                       (unsigned long long)in->d[0]);
    }
    if (k > in->d[1] || k > in->d[2]) {
        layer_shape_note(note, sizeof note, in);
        return err_set(err, errlen, "%s window %llux%llu is larger than its input %llux%llu%s", name,
                       (unsigned long long)k, (unsigned long long)k, (unsigned long long)in->d[1],
                       (unsigned long long)in->d[2], note);
    }
    *out = (struct LayerShape){3, {in->d[0], (in->d[1] - k) / s + 1, (in->d[2] - k) / s + 1}};
    *n_params = 0;
    return 0;
}

static struct Module *pool_create(const struct LayerSpec *l, uint32_t dtype, struct Rng *rng)
{
    (void)dtype, (void)rng;
    CHECK(l->args.pool.k && l->args.pool.stride, "pool sizes must be positive");
    return module_new(l);
}

/* stride, when left out, is k */
static const struct LayerArgDef pool_args[] = {{"k", 1, LAYER_ARG_COUNT, 0}, {"stride", 1, LAYER_ARG_COUNT, 1}};

const struct LayerType layer_maxpool2d = {
    .name = "MaxPool2d", .prefix = "maxpool2d", .n_args = 2, .args = pool_args, .shape = pool_shape,
    .create = pool_create, .forward = maxpool2d_forward, .backward = maxpool2d_backward,
};
const struct LayerType layer_avgpool2d = {
    .name = "AvgPool2d", .prefix = "avgpool2d", .n_args = 2, .args = pool_args, .shape = pool_shape,
    .create = pool_create, .forward = avgpool2d_forward, .backward = avgpool2d_backward,
};
