/* ew_par: the elementwise table every caller gets (kernels_get()->ew). Each entry runs
 * the ISA's own kernel (kernels_get()->ew1) over chunks of the arrays, as parallel
 * tasks when the arrays are large (threads.h). A map gives the same bits however it
 * is cut. The sum is always cut into SUM_CHUNK-element chunks, on one thread too, whose
 * partial sums are added in chunk order: the same bits on any thread count. */
#include "kernels/dispatch.h"
#include "kernels/ew.h"
#include "threads.h"

#include <string.h>

/* The sum's chunk, in elements (a multiple of every vector width and accumulator count). */
#define SUM_CHUNK ((size_t)1 << 14)
#define SUM_MAX_CHUNKS 4096

enum { OP_BIN, OP_SCAL, OP_AXPY, OP_RELU, OP_RELU_BWD, OP_RELU_BWD_SET, OP_ADAM, OP_SUM };

/* One call: the op, its operands and scalars; one switch per task, never per element. */
struct EwJob {
    int op, kind, f64;
    size_t n, chunk;
    const void *a, *b;
    void *out, *m, *v;
    double s, b1, b2, step, bc2, eps;
    double *partial;
};

static const struct EwKernels *serial(void) { return kernels_get()->ew1; }

#define AT(p, i, f64) ((f64) ? (void *)((double *)(p) + (i)) : (void *)((float *)(p) + (i)))
#define CAT(p, i, f64) ((f64) ? (const void *)((const double *)(p) + (i)) : (const void *)((const float *)(p) + (i)))

static void ew_task(void *ctx, size_t task, int worker)
{
    (void)worker;
    const struct EwJob *j = ctx;
    const struct EwKernels *k = serial();
    size_t lo = task * j->chunk, n = j->n - lo < j->chunk ? j->n - lo : j->chunk;
    int d = j->f64;
    const void *a = CAT(j->a, lo, d), *b = j->b ? CAT(j->b, lo, d) : NULL;
    void *out = j->out ? AT(j->out, lo, d) : NULL;
    switch (j->op) {
    case OP_BIN:
        if (d) k->bin_f64[j->kind](n, a, b, out);
        else k->bin_f32[j->kind](n, a, b, out);
        break;
    case OP_SCAL:
        if (d) k->scal_f64[j->kind](n, a, j->s, out);
        else k->scal_f32[j->kind](n, a, (float)j->s, out);
        break;
    case OP_AXPY:
        if (d) k->axpy_f64(n, j->s, a, out);
        else k->axpy_f32(n, (float)j->s, a, out);
        break;
    case OP_RELU:
        if (d) k->relu_f64(n, a, out);
        else k->relu_f32(n, a, out);
        break;
    case OP_RELU_BWD:
        if (d) k->relu_bwd_f64(n, a, b, out);
        else k->relu_bwd_f32(n, a, b, out);
        break;
    case OP_RELU_BWD_SET:
        if (d) k->relu_bwd_set_f64(n, a, b, out);
        else k->relu_bwd_set_f32(n, a, b, out);
        break;
    case OP_ADAM: /* out is p, a is g */
        if (d) k->adam_f64(n, out, a, AT(j->m, lo, d), AT(j->v, lo, d), j->b1, j->b2, j->step, j->bc2, j->eps);
        else k->adam_f32(n, out, a, AT(j->m, lo, d), AT(j->v, lo, d), (float)j->b1, (float)j->b2, (float)j->step,
                         (float)j->bc2, (float)j->eps);
        break;
    case OP_SUM:
        j->partial[task] = d ? k->sum_f64(n, a) : k->sum_f32(n, a);
        break;
    }
}

/* A map over n elements: in parallel chunks when it is worth it, else in one call. */
static void run_map(struct EwJob *j)
{
    j->chunk = par_map_chunk(j->n, j->f64 ? sizeof(double) : sizeof(float));
    par_run((j->n + j->chunk - 1) / j->chunk, ew_task, j);
}

static double run_sum(struct EwJob *j)
{
    size_t chunk = SUM_CHUNK;
    if (j->n / chunk >= SUM_MAX_CHUNKS) chunk = (j->n / SUM_MAX_CHUNKS + SUM_CHUNK) / SUM_CHUNK * SUM_CHUNK;
    size_t n_chunks = (j->n + chunk - 1) / chunk;
    if (n_chunks <= 1) return j->f64 ? serial()->sum_f64(j->n, j->a) : serial()->sum_f32(j->n, j->a);
    double partial[SUM_MAX_CHUNKS];
    j->chunk = chunk;
    j->partial = partial;
    par_run(n_chunks, ew_task, j);
    double s = 0;
    for (size_t i = 0; i < n_chunks; i++) s += partial[i];
    return s;
}

#define EW_PAR(T, sfx, F64)                                                                          \
    static void bin_##sfx(int kind, size_t n, const T *a, const T *b, T *out)                        \
    {                                                                                                \
        run_map(&(struct EwJob){.op = OP_BIN, .kind = kind, .f64 = F64, .n = n, .a = a, .b = b, .out = out}); \
    }                                                                                                \
    static void add_##sfx(size_t n, const T *a, const T *b, T *o) { bin_##sfx(EW_ADD, n, a, b, o); }  \
    static void sub_##sfx(size_t n, const T *a, const T *b, T *o) { bin_##sfx(EW_SUB, n, a, b, o); }  \
    static void mul_##sfx(size_t n, const T *a, const T *b, T *o) { bin_##sfx(EW_MUL, n, a, b, o); }  \
    static void div_##sfx(size_t n, const T *a, const T *b, T *o) { bin_##sfx(EW_DIV, n, a, b, o); }  \
    static void max_##sfx(size_t n, const T *a, const T *b, T *o) { bin_##sfx(EW_MAX, n, a, b, o); }  \
    static void sadd_##sfx(size_t n, const T *a, T s, T *o)                                          \
    {                                                                                                \
        run_map(&(struct EwJob){.op = OP_SCAL, .kind = EW_SADD, .f64 = F64, .n = n, .a = a, .s = s, .out = o}); \
    }                                                                                                \
    static void smul_##sfx(size_t n, const T *a, T s, T *o)                                          \
    {                                                                                                \
        run_map(&(struct EwJob){.op = OP_SCAL, .kind = EW_SMUL, .f64 = F64, .n = n, .a = a, .s = s, .out = o}); \
    }                                                                                                \
    static double sum_##sfx(size_t n, const T *a)                                                    \
    {                                                                                                \
        return run_sum(&(struct EwJob){.op = OP_SUM, .f64 = F64, .n = n, .a = a});                   \
    }                                                                                                \
    static void axpy_##sfx(size_t n, T alpha, const T *x, T *y)                                      \
    {                                                                                                \
        run_map(&(struct EwJob){.op = OP_AXPY, .f64 = F64, .n = n, .a = x, .s = alpha, .out = y});   \
    }                                                                                                \
    static void relu_##sfx(size_t n, const T *x, T *o)                                               \
    {                                                                                                \
        run_map(&(struct EwJob){.op = OP_RELU, .f64 = F64, .n = n, .a = x, .out = o});               \
    }                                                                                                \
    static void relu_bwd_##sfx(size_t n, const T *x, const T *g, T *gx)                              \
    {                                                                                                \
        run_map(&(struct EwJob){.op = OP_RELU_BWD, .f64 = F64, .n = n, .a = x, .b = g, .out = gx});  \
    }                                                                                                \
    static void relu_bwd_set_##sfx(size_t n, const T *x, const T *g, T *gx)                          \
    {                                                                                                \
        run_map(&(struct EwJob){.op = OP_RELU_BWD_SET, .f64 = F64, .n = n, .a = x, .b = g, .out = gx}); \
    }                                                                                                \
    static void adam_##sfx(size_t n, T *p, const T *g, T *m, T *v, T b1, T b2, T step, T bc2, T eps) \
    {                                                                                                \
        run_map(&(struct EwJob){.op = OP_ADAM, .f64 = F64, .n = n, .a = g, .out = p, .m = m, .v = v,  \
                                .b1 = b1, .b2 = b2, .step = step, .bc2 = bc2, .eps = eps});           \
    }                                                                                                \
    /* batch normalisation's passes run over one channel's run at a time (small): the ISA's       \
     * kernel itself, on the calling thread, so cdot's sum is the same bits on any thread count */ \
    static double cdot_##sfx(size_t n, const T *a, T ca, const T *b, T cb)                         \
    {                                                                                                \
        return serial()->cdot_##sfx(n, a, ca, b, cb);                                                \
    }                                                                                                \
    static void affine_##sfx(size_t n, const T *x, T s, T c, T *y, int relu)                         \
    {                                                                                                \
        serial()->affine_##sfx(n, x, s, c, y, relu);                                                 \
    }                                                                                                \
    static void affine2_##sfx(size_t n, T s, const T *g, T t, const T *x, T c, T *out, int acc)       \
    {                                                                                                \
        serial()->affine2_##sfx(n, s, g, t, x, c, out, acc);                                         \
    }
EW_PAR(float, f32, 0)
EW_PAR(double, f64, 1)

/* small (a softmax's row): the ISA's kernel on the calling thread */
static void expneg_f64(size_t n, const double *x, double *y) { serial()->expneg_f64(n, x, y); }

const struct EwKernels ew_kernels_par = EW_TABLE;
