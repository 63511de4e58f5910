/* tensor: creation, ownership, views and shape handling. */
#include "tensor.h"
#include "mem.h"
#include "utils.h"

#include <stdio.h>
#include <string.h>

#define TENSOR_ALIGN 64

size_t dtype_size(uint32_t dtype)
{
    CHECK(dtype < DT_COUNT, "unknown dtype %u", dtype);
    return dtype == DT_FLOAT32 ? 4 : 8;
}

const char *dtype_name(uint32_t dtype)
{
    return dtype == DT_FLOAT32 ? "float32" : dtype == DT_FLOAT64 ? "float64" : "unknown";
}

/* The struct and its shape and stride arrays, laid out in one block. */
struct TensorMeta {
    struct Tensor t;
    uint64_t shape[TENSOR_MAX_DIM];
    uint64_t stride[TENSOR_MAX_DIM];
};

static void set_shape(struct Tensor *t, uint64_t ndim, const uint64_t *shape)
{
    CHECK(ndim <= TENSOR_MAX_DIM, "ndim %llu exceeds %d", (unsigned long long)ndim, TENSOR_MAX_DIM);
    t->ndim = ndim;
    uint64_t s = 1;
    for (uint64_t i = ndim; i-- > 0;) {
        t->shape[i] = shape[i];
        t->stride[i] = s;
        s *= shape[i];
    }
}

static uint64_t count(uint64_t ndim, const uint64_t *shape)
{
    uint64_t n = 1;
    for (uint64_t i = 0; i < ndim; i++) {
        if (shape[i] && n > UINT64_MAX / shape[i]) panic("tensor too large");
        n *= shape[i];
    }
    return n;
}

static void init_meta(struct TensorMeta *m, uint64_t ndim, const uint64_t *shape, uint32_t dtype)
{
    m->t.shape = m->shape;
    m->t.stride = m->stride;
    m->t.dtype = dtype;
    set_shape(&m->t, ndim, shape);
}

struct Tensor *tensor_create(uint64_t ndim, const uint64_t *shape, uint32_t dtype)
{
    size_t es = dtype_size(dtype);
    uint64_t n = count(ndim, shape);
    if (n > SIZE_MAX / es) panic("tensor too large");
    struct TensorMeta *m = mem_alloc(sizeof *m);
    init_meta(m, ndim, shape, dtype);
    m->t.data = mem_alloc_aligned(n * es, TENSOR_ALIGN);
    m->t.flags = OWN_DATA | OWN_META;
    return &m->t;
}

struct Tensor *tensor_zeros(uint64_t ndim, const uint64_t *shape, uint32_t dtype)
{
    struct Tensor *t = tensor_create(ndim, shape, dtype);
    memset(t->data, 0, tensor_numel(t) * dtype_size(dtype));
    return t;
}

struct Tensor *tensor_create_in(struct Arena *a, uint64_t ndim, const uint64_t *shape, uint32_t dtype)
{
    size_t es = dtype_size(dtype);
    uint64_t n = count(ndim, shape);
    struct TensorMeta *m = arena_alloc(a, sizeof *m);
    init_meta(m, ndim, shape, dtype);
    m->t.data = arena_alloc(a, n * es);
    m->t.flags = 0;
    return &m->t;
}

struct Tensor *tensor_header_in(struct Arena *a, uint64_t ndim, const uint64_t *shape, uint32_t dtype, void *data)
{
    struct TensorMeta *m = arena_alloc(a, sizeof *m);
    init_meta(m, ndim, shape, dtype);
    m->t.data = data;
    m->t.flags = 0;
    return &m->t;
}

struct Tensor *tensor_wrap(uint64_t ndim, const uint64_t *shape, uint32_t dtype, void *data)
{
    CHECK(((uintptr_t)data & (dtype_size(dtype) - 1)) == 0, "%s data at a misaligned address", dtype_name(dtype));
    struct TensorMeta *m = mem_alloc(sizeof *m);
    init_meta(m, ndim, shape, dtype);
    m->t.data = data;
    m->t.flags = OWN_META;
    return &m->t;
}

struct Tensor *tensor_zeros_in(struct Arena *a, uint64_t ndim, const uint64_t *shape, uint32_t dtype)
{
    struct Tensor *t = tensor_create_in(a, ndim, shape, dtype);
    memset(t->data, 0, tensor_numel(t) * dtype_size(dtype));
    return t;
}

void tensor_free(struct Tensor *t)
{
    if (!t) return;
    if (t->flags & OWN_DATA) mem_free(t->data);
    if (t->flags & OWN_META) mem_free(t);
}

uint64_t tensor_numel(const struct Tensor *t) { return count(t->ndim, t->shape); }

int tensor_is_contiguous(const struct Tensor *t)
{
    uint64_t s = 1;
    for (uint64_t i = t->ndim; i-- > 0;) {
        if (t->shape[i] != 1 && t->stride[i] != s) return 0;
        s *= t->shape[i];
    }
    return 1;
}

int tensor_same_shape(const struct Tensor *a, const struct Tensor *b)
{
    if (a->ndim != b->ndim) return 0;
    for (uint64_t i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

char *tensor_shape_str(const struct Tensor *t, char *buf, size_t cap)
{
    size_t at = 0;
    buf[0] = 0;
    if (t->ndim == 0) { str_copy(buf, "scalar", cap); return buf; }
    for (uint64_t i = 0; i < t->ndim && at < cap; i++)
        at += (size_t)snprintf(buf + at, cap - at, i ? "x%llu" : "%llu", (unsigned long long)t->shape[i]);
    return buf;
}

/* Offset in elements of a multi-index. */
static uint64_t offset_of(const struct Tensor *t, const uint64_t *idx)
{
    uint64_t off = 0;
    for (uint64_t i = 0; i < t->ndim; i++) {
        CHECK(idx[i] < t->shape[i], "index %llu out of range in dim %llu",
              (unsigned long long)idx[i], (unsigned long long)i);
        off += idx[i] * t->stride[i];
    }
    return off;
}

double tensor_get(const struct Tensor *t, const uint64_t *idx)
{
    uint64_t o = offset_of(t, idx);
    return t->dtype == DT_FLOAT32 ? tensor_f32(t)[o] : tensor_f64(t)[o];
}

void tensor_set(struct Tensor *t, const uint64_t *idx, double v)
{
    uint64_t o = offset_of(t, idx);
    if (t->dtype == DT_FLOAT32) tensor_f32(t)[o] = (float)v;
    else tensor_f64(t)[o] = v;
}

/* Walks every multi-index of t in row-major order, calling fn with the element offset. */
#define FOR_EACH_OFFSET(t, off, body)                                          \
    do {                                                                       \
        uint64_t idx_[TENSOR_MAX_DIM] = {0}, n_ = tensor_numel(t);             \
        for (uint64_t k_ = 0; k_ < n_; k_++) {                                 \
            uint64_t off = 0;                                                  \
            for (uint64_t d_ = 0; d_ < (t)->ndim; d_++) off += idx_[d_] * (t)->stride[d_]; \
            body;                                                              \
            for (uint64_t d_ = (t)->ndim; d_-- > 0;) {                         \
                if (++idx_[d_] < (t)->shape[d_]) break;                        \
                idx_[d_] = 0;                                                  \
            }                                                                  \
        }                                                                      \
    } while (0)

struct Tensor *tensor_copy(const struct Tensor *t)
{
    struct Tensor *c = tensor_create(t->ndim, t->shape, t->dtype);
    tensor_copy_into(c, t);
    return c;
}

void tensor_copy_into(struct Tensor *dst, const struct Tensor *src)
{
    char a[64], b[64];
    if (!tensor_same_shape(dst, src) || dst->dtype != src->dtype)
        panic("tensor_copy_into: %s %s into %s %s", tensor_shape_str(src, a, sizeof a),
              dtype_name(src->dtype), tensor_shape_str(dst, b, sizeof b), dtype_name(dst->dtype));
    size_t es = dtype_size(src->dtype);
    if (tensor_is_contiguous(dst) && tensor_is_contiguous(src)) {
        memmove(dst->data, src->data, tensor_numel(src) * es);
        return;
    }
    /* Strided: walk both in row-major order. */
    uint64_t n = tensor_numel(src), k = 0;
    char *tmp = mem_alloc(n * es);
    FOR_EACH_OFFSET(src, off, memcpy(tmp + (k++) * es, (char *)src->data + off * es, es));
    k = 0;
    FOR_EACH_OFFSET(dst, off, memcpy((char *)dst->data + off * es, tmp + (k++) * es, es));
    mem_free(tmp);
}

void tensor_fill(struct Tensor *t, double value)
{
    if (t->dtype == DT_FLOAT32) {
        float v = (float)value, *p = tensor_f32(t);
        FOR_EACH_OFFSET(t, off, p[off] = v);
    } else {
        double *p = tensor_f64(t);
        FOR_EACH_OFFSET(t, off, p[off] = value);
    }
}

void tensor_reshape(struct Tensor *t, uint64_t ndim, const uint64_t *shape)
{
    char a[96], b[96];
    struct Tensor want = {0};
    uint64_t ws[TENSOR_MAX_DIM], wst[TENSOR_MAX_DIM];
    want.shape = ws;
    want.stride = wst;
    if (ndim > TENSOR_MAX_DIM) panic("tensor_reshape: %llu dimensions (at most %d)", (unsigned long long)ndim, TENSOR_MAX_DIM);
    set_shape(&want, ndim, shape);
    if (tensor_numel(&want) != tensor_numel(t))
        panic("tensor_reshape: cannot reshape %s (%llu elements) to %s (%llu elements)",
              tensor_shape_str(t, a, sizeof a), (unsigned long long)tensor_numel(t),
              tensor_shape_str(&want, b, sizeof b), (unsigned long long)tensor_numel(&want));
    if (!tensor_is_contiguous(t)) panic("tensor_reshape: tensor %s is not contiguous", tensor_shape_str(t, a, sizeof a));
    set_shape(t, ndim, shape);
}

struct Tensor *tensor_view(struct Tensor *t, uint64_t ndim, const uint64_t *shape, const uint64_t *stride)
{
    struct TensorMeta *m = mem_alloc(sizeof *m);
    init_meta(m, ndim, shape, t->dtype);
    if (stride) {
        /* Every reachable element must lie inside t's data. */
        uint64_t last = 0;
        for (uint64_t i = 0; i < ndim; i++) {
            m->stride[i] = stride[i];
            if (shape[i]) last += (shape[i] - 1) * stride[i];
        }
        CHECK(count(ndim, shape) == 0 || last < tensor_numel(t), "view reaches past the data");
    } else {
        CHECK(count(ndim, shape) <= tensor_numel(t), "view larger than its tensor");
    }
    m->t.data = t->data;
    m->t.flags = OWN_META;
    return &m->t;
}

struct Tensor *tensor_transpose_2d(const struct Tensor *t)
{
    char a[64];
    if (t->ndim != 2) panic("tensor_transpose_2d: expected a 2-D tensor, got %s", tensor_shape_str(t, a, sizeof a));
    uint64_t m = t->shape[0], n = t->shape[1], shape[2] = {n, m};
    struct Tensor *r = tensor_create(2, shape, t->dtype);
    for (uint64_t i = 0; i < m; i++)
        for (uint64_t j = 0; j < n; j++) {
            uint64_t src = i * t->stride[0] + j * t->stride[1], dst = j * m + i;
            if (t->dtype == DT_FLOAT32) tensor_f32(r)[dst] = tensor_f32(t)[src];
            else tensor_f64(r)[dst] = tensor_f64(t)[src];
        }
    return r;
}
