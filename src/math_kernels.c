/* math_kernels: the tensor-level elementwise and reduction entry points. They check
 * shapes, then call the raw kernels of the ISA path in use (src/kernels/dispatch.c
 * chooses it; gemm's driver is src/kernels/gemm/gemm.c). */
#include "math_kernels.h"
#include "generic.h"
#include "kernels/dispatch.h"
#include "kernels/ew.h"
#include "utils.h"

#include <string.h>

/* ---- tensor-level elementwise ops ---- */

static void check_contig(const char *op, const struct Tensor *t)
{
    char s[96];
    if (!tensor_is_contiguous(t)) panic("%s: tensor %s is not contiguous", op, tensor_shape_str(t, s, sizeof s));
}

static void check_pair(const char *op, const struct Tensor *a, const struct Tensor *b)
{
    char sa[96], sb[96];
    if (!tensor_same_shape(a, b))
        panic("%s: shape mismatch: %s vs %s", op, tensor_shape_str(a, sa, sizeof sa), tensor_shape_str(b, sb, sizeof sb));
    if (a->dtype != b->dtype)
        panic("%s: dtype mismatch: %s vs %s (shape %s)", op, dtype_name(a->dtype), dtype_name(b->dtype),
              tensor_shape_str(a, sa, sizeof sa));
    check_contig(op, a);
    check_contig(op, b);
}

static void ew_binary(const char *op, int kind, struct Tensor *out, const struct Tensor *a, const struct Tensor *b)
{
    check_pair(op, a, b);
    check_pair(op, a, out);
    const struct EwKernels *k = kernels_get()->ew;
    size_t n = tensor_numel(a);
    if (a->dtype == DT_FLOAT32) k->bin_f32[kind](n, a->data, b->data, out->data);
    else k->bin_f64[kind](n, a->data, b->data, out->data);
}

static void ew_scalar(const char *op, int kind, struct Tensor *out, const struct Tensor *a, double s)
{
    check_pair(op, a, out);
    const struct EwKernels *k = kernels_get()->ew;
    size_t n = tensor_numel(a);
    if (a->dtype == DT_FLOAT32) k->scal_f32[kind](n, a->data, (float)s, out->data);
    else k->scal_f64[kind](n, a->data, s, out->data);
}

void ew_add(struct Tensor *out, const struct Tensor *a, const struct Tensor *b) { ew_binary("ew_add", EW_ADD, out, a, b); }
void ew_sub(struct Tensor *out, const struct Tensor *a, const struct Tensor *b) { ew_binary("ew_sub", EW_SUB, out, a, b); }
void ew_mul(struct Tensor *out, const struct Tensor *a, const struct Tensor *b) { ew_binary("ew_mul", EW_MUL, out, a, b); }
void ew_div(struct Tensor *out, const struct Tensor *a, const struct Tensor *b) { ew_binary("ew_div", EW_DIV, out, a, b); }
void ew_max(struct Tensor *out, const struct Tensor *a, const struct Tensor *b) { ew_binary("ew_max", EW_MAX, out, a, b); }
void ew_scalar_add(struct Tensor *out, const struct Tensor *a, double s) { ew_scalar("ew_scalar_add", EW_SADD, out, a, s); }
void ew_scalar_mul(struct Tensor *out, const struct Tensor *a, double s) { ew_scalar("ew_scalar_mul", EW_SMUL, out, a, s); }

/* ---- reductions ---- */

/* out must have t's shape without `axis`, or with it kept as size 1 (keepdim);
 * a 1-D t may also reduce into a 0-D tensor. */
static int reduced_shape_ok(const struct Tensor *t, uint64_t axis, const struct Tensor *out)
{
    if (out->ndim == t->ndim) {
        for (uint64_t d = 0; d < t->ndim; d++)
            if (out->shape[d] != (d == axis ? 1 : t->shape[d])) return 0;
        return 1;
    }
    if (t->ndim == 1) return tensor_numel(out) == 1;
    if (out->ndim + 1 != t->ndim) return 0;
    for (uint64_t d = 0, e = 0; d < t->ndim; d++)
        if (d != axis && out->shape[e++] != t->shape[d]) return 0;
    return 1;
}

static void check_reduce(const char *op, const struct Tensor *t, uint64_t axis, const struct Tensor *out)
{
    char st[96], so[96];
    if (axis >= t->ndim)
        panic("%s: axis %llu out of range for shape %s", op, (unsigned long long)axis, tensor_shape_str(t, st, sizeof st));
    if (!reduced_shape_ok(t, axis, out) || t->dtype != out->dtype)
        panic("%s over axis %llu: %s %s cannot reduce into %s %s", op, (unsigned long long)axis,
              dtype_name(t->dtype), tensor_shape_str(t, st, sizeof st), dtype_name(out->dtype),
              tensor_shape_str(out, so, sizeof so));
    CHECK(t->data != out->data, "%s: out must not alias the input", op);
    check_contig(op, t);
    check_contig(op, out);
}

/* t viewed as outer x len x inner: each row of the axis is summed by the sum kernel
 * (inner == 1), otherwise rows of `inner` elements are accumulated with add; mean then
 * scales by 1/len. */
#define REDUCE_SUM(T, sfx)                                                                    \
    static void reduce_##sfx(const void *x_, size_t outer, size_t len, size_t inner, void *o_, int mean) \
    {                                                                                         \
        const struct EwKernels *k = kernels_get()->ew;                                        \
        const T *x = x_;                                                                      \
        T *o = o_;                                                                            \
        for (size_t r = 0; r < outer; r++) {                                                  \
            const T *xr = x + r * len * inner;                                                \
            T *orow = o + r * inner;                                                          \
            if (inner == 1) { orow[0] = (T)k->sum_##sfx(len, xr); continue; }                 \
            if (len == 0) { memset(orow, 0, inner * sizeof(T)); continue; }                   \
            memcpy(orow, xr, inner * sizeof(T));                                              \
            for (size_t j = 1; j < len; j++) k->bin_##sfx[EW_ADD](inner, orow, xr + j * inner, orow); \
        }                                                                                     \
        if (mean) k->scal_##sfx[EW_SMUL](outer * inner, o, (T)(1.0 / (double)len), o);        \
    }
GEN_BOTH(REDUCE_SUM)

static void reduce_dispatch(const char *op, const struct Tensor *t, uint64_t axis, struct Tensor *out, int mean)
{
    check_reduce(op, t, axis, out);
    size_t outer = 1, inner = 1, len = t->shape[axis];
    for (uint64_t d = 0; d < axis; d++) outer *= t->shape[d];
    for (uint64_t d = axis + 1; d < t->ndim; d++) inner *= t->shape[d];
    DT_CALL(t->dtype, reduce, t->data, outer, len, inner, out->data, mean);
}

void reduce_sum(const struct Tensor *t, uint64_t axis, struct Tensor *out) { reduce_dispatch("reduce_sum", t, axis, out, 0); }
void reduce_mean(const struct Tensor *t, uint64_t axis, struct Tensor *out) { reduce_dispatch("reduce_mean", t, axis, out, 1); }
