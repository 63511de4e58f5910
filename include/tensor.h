/* tensor: n-dimensional arrays of float32 or float64.
 *
 * Shapes and strides count elements, row-major. Data blocks are 64-byte aligned (data
 * that tensor_wrap puts a header on: at least to its dtype).
 * Ownership is in flags: OWN_DATA (tensor_free frees the data), OWN_META (the
 * struct with its shape and stride arrays is one heap block that tensor_free frees).
 * Tensors made in an arena own nothing: arena_reset() takes them all at once.
 * A view shares its parent's data and never frees it. No broadcasting anywhere
 * except the documented bias add of Linear and Conv2d. */
#ifndef MINIDL_TENSOR_H
#define MINIDL_TENSOR_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

struct Arena;

enum { DT_FLOAT32 = 0, DT_FLOAT64 = 1, DT_COUNT };
enum { OWN_DATA = 1, OWN_META = 2 };
#define TENSOR_MAX_DIM 8

struct Tensor {
    void *data;
    uint64_t ndim;
    uint64_t *shape;  /* ndim entries (room for TENSOR_MAX_DIM) */
    uint64_t *stride; /* in elements */
    uint32_t dtype;
    uint32_t flags;
};

size_t dtype_size(uint32_t dtype);          /* 4 or 8 */
const char *dtype_name(uint32_t dtype);     /* "float32", "float64" */

/* New contiguous tensor; contents unspecified. ndim 0..TENSOR_MAX_DIM. */
struct Tensor *tensor_create(uint64_t ndim, const uint64_t *shape, uint32_t dtype);
struct Tensor *tensor_zeros(uint64_t ndim, const uint64_t *shape, uint32_t dtype);
/* As tensor_create but struct and data from the arena (flags 0). */
struct Tensor *tensor_create_in(struct Arena *a, uint64_t ndim, const uint64_t *shape, uint32_t dtype);
struct Tensor *tensor_zeros_in(struct Arena *a, uint64_t ndim, const uint64_t *shape, uint32_t dtype);
/* A contiguous header from the arena over existing data (owns nothing). */
struct Tensor *tensor_header_in(struct Arena *a, uint64_t ndim, const uint64_t *shape, uint32_t dtype, void *data);
/* A contiguous heap header over data that something else owns (a file's mapping, at an
 * address aligned for the dtype): tensor_free frees the header, never the data. */
struct Tensor *tensor_wrap(uint64_t ndim, const uint64_t *shape, uint32_t dtype, void *data);
void tensor_free(struct Tensor *t);         /* frees what the flags say it owns; NULL ok */

struct Tensor *tensor_copy(const struct Tensor *t);          /* deep, contiguous */
void tensor_copy_into(struct Tensor *dst, const struct Tensor *src); /* same shape+dtype */
void tensor_fill(struct Tensor *t, double value);
uint64_t tensor_numel(const struct Tensor *t);
int tensor_is_contiguous(const struct Tensor *t);
int tensor_same_shape(const struct Tensor *a, const struct Tensor *b);

/* In place; t must be contiguous. Panics naming both shapes if the counts differ. */
void tensor_reshape(struct Tensor *t, uint64_t ndim, const uint64_t *shape);
/* A view on t's data with the given shape and strides (NULL: row-major). Shares
 * data, never frees it; free the view itself with tensor_free. */
struct Tensor *tensor_view(struct Tensor *t, uint64_t ndim, const uint64_t *shape,
                           const uint64_t *stride);
/* New contiguous (n x m) tensor holding the transpose of the (m x n) tensor t. */
struct Tensor *tensor_transpose_2d(const struct Tensor *t);

/* Slow element access by multi-index, for tests and tools. */
double tensor_get(const struct Tensor *t, const uint64_t *idx);
void tensor_set(struct Tensor *t, const uint64_t *idx, double v);
/* "64x784" into buf; returns buf. */
char *tensor_shape_str(const struct Tensor *t, char *buf, size_t cap);

static inline float *tensor_f32(const struct Tensor *t) { return (float *)t->data; }
static inline double *tensor_f64(const struct Tensor *t) { return (double *)t->data; }
/* Element i of the data (row-major offset, no stride arithmetic) as a double: for
 * scalars, labels and printing, not for kernels. */
static inline double tensor_at(const struct Tensor *t, uint64_t i)
{
    return t->dtype == DT_FLOAT32 ? tensor_f32(t)[i] : tensor_f64(t)[i];
}
/* The column of row r's largest value in a rows x cols matrix (the first of equals; NaNs
 * never win): a classifier's predicted class. */
static inline uint64_t tensor_row_argmax(const struct Tensor *t, uint64_t r, uint64_t cols)
{
    uint64_t best = 0;
    double m = -INFINITY;
    for (uint64_t c = 0; c < cols; c++)
        if (tensor_at(t, r * cols + c) > m) m = tensor_at(t, r * cols + c), best = c;
    return best;
}

#endif
