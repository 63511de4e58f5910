/* Conv2d: NCHW cross-correlation with zero padding, as PyTorch's; weight (out_ch, in_ch,
 * kh, kw), bias (out_ch). Two paths: the direct SIMD kernels on a phase-split input
 * (kernels/conv.h) where whole vectors of each output row do work, else im2col + gemm. The
 * naive loop stays as the reference both are tested against. */
#include "nn_layers.h"
#include "generic.h"
#include "kernels/conv.h"
#include "kernels/dispatch.h"
#include "kernels/ew.h"
#include "math_kernels.h"
#include "threads.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- Conv2d: im2col + gemm per sample ---- */

struct ConvGeom { uint64_t N, C, H, W, O, kh, kw, stride, pad, Ho, Wo; };

/* Output columns [lo, hi) of a kernel tap at offset k read inside a row of n inputs:
 * 0 <= o*stride + k - pad < n. */
static void tap_range(uint64_t k, uint64_t pad, uint64_t stride, uint64_t n, uint64_t n_out, uint64_t *lo, uint64_t *hi)
{
    uint64_t l = k >= pad ? 0 : (pad - k + stride - 1) / stride;
    uint64_t h = n + pad > k ? (n + pad - k - 1) / stride + 1 : 0;
    *lo = l < n_out ? l : n_out;
    *hi = h < n_out ? h : n_out;
    if (*hi < *lo) *hi = *lo;
}

/* One sample's columns: row (c,ki,kj) of col, of row stride ld, holds the Ho*Wo input
 * pixels that kernel tap meets (zero where it falls on the padding). The valid span of
 * each output row is found once, so the inner loop has no bounds checks. */
#define IM2COL(T, sfx)                                                                    \
    static void im2col_##sfx(const struct ConvGeom *q, const void *x_, void *col_, size_t ld) \
    {                                                                                     \
        const T *x = x_;                                                                  \
        T *col = col_;                                                                    \
        for (uint64_t c = 0; c < q->C; c++)                                               \
            for (uint64_t ki = 0; ki < q->kh; ki++)                                       \
                for (uint64_t kj = 0; kj < q->kw; kj++, col += ld) {                      \
                    uint64_t hlo, hhi, wlo, whi;                                          \
                    tap_range(ki, q->pad, q->stride, q->H, q->Ho, &hlo, &hhi);            \
                    tap_range(kj, q->pad, q->stride, q->W, q->Wo, &wlo, &whi);            \
                    memset(col, 0, hlo * q->Wo * sizeof(T));                              \
                    for (uint64_t oh = hlo; oh < hhi; oh++) {                             \
                        T *dst = col + oh * q->Wo;                                        \
                        const T *src = x + (c * q->H + oh * q->stride + ki - q->pad) * q->W \
                                       + wlo * q->stride + kj - q->pad; /* first valid tap */ \
                        memset(dst, 0, wlo * sizeof(T));                                  \
                        if (q->stride == 1) memcpy(dst + wlo, src, (whi - wlo) * sizeof(T)); \
                        else for (uint64_t ow = wlo; ow < whi; ow++) dst[ow] = src[(ow - wlo) * q->stride]; \
                        memset(dst + whi, 0, (q->Wo - whi) * sizeof(T));                  \
                    }                                                                     \
                    memset(col + hhi * q->Wo, 0, (q->Ho - hhi) * q->Wo * sizeof(T));     \
                }                                                                         \
    }
GEN_BOTH(IM2COL)

/* The adjoint of im2col: gx += scatter of gcol. */
#define COL2IM(T, sfx)                                                                    \
    static void col2im_##sfx(const struct ConvGeom *q, const void *col_, size_t ld, void *gx_) \
    {                                                                                     \
        T *gx = gx_;                                                                      \
        const T *col = col_;                                                              \
        for (uint64_t c = 0; c < q->C; c++)                                               \
            for (uint64_t ki = 0; ki < q->kh; ki++)                                       \
                for (uint64_t kj = 0; kj < q->kw; kj++, col += ld) {                      \
                    uint64_t hlo, hhi, wlo, whi;                                          \
                    tap_range(ki, q->pad, q->stride, q->H, q->Ho, &hlo, &hhi);            \
                    tap_range(kj, q->pad, q->stride, q->W, q->Wo, &wlo, &whi);            \
                    for (uint64_t oh = hlo; oh < hhi; oh++) {                             \
                        const T *src = col + oh * q->Wo;                                  \
                        T *dst = gx + (c * q->H + oh * q->stride + ki - q->pad) * q->W    \
                                 + wlo * q->stride + kj - q->pad;                         \
                        for (uint64_t ow = wlo; ow < whi; ow++) dst[(ow - wlo) * q->stride] += src[ow]; \
                    }                                                                     \
                }                                                                         \
    }
GEN_BOTH(COL2IM)

/* Between the gemm's (O x N*HW) layout t and NCHW y, for samples [n0, n1):
 * y[n][o][i] = t[o][n*HW+i] + b[o] (then max(0, .) when relu); and back,
 * t[o][n*HW+i] = y[n][o][i], where mask (NCHW, not NULL) > 0 and 0 elsewhere (a fused
 * ReLU's backward in the same pass). */
#define CONV_LAYOUT(T, sfx)                                                               \
    static void conv_to_nchw_##sfx(const struct ConvGeom *q, uint64_t n0, uint64_t n1, const T *t, const T *b, \
                                   int relu, T *y)                                        \
    {                                                                                     \
        size_t HW = q->Ho * q->Wo, NHW = q->N * HW;                                       \
        for (uint64_t n = n0; n < n1; n++)                                                \
            for (uint64_t o = 0; o < q->O; o++) {                                         \
                T *yr = y + (n * q->O + o) * HW, bias = b ? b[o] : 0;                     \
                const T *tr = t + o * NHW + n * HW;                                       \
                for (size_t i = 0; i < HW; i++) yr[i] = tr[i] + bias;                     \
            }                                                                             \
        if (relu) kernels_get()->ew->relu_##sfx((n1 - n0) * q->O * HW, y + n0 * q->O * HW, y + n0 * q->O * HW); \
    }                                                                                     \
    static void conv_to_gemm_##sfx(const struct ConvGeom *q, uint64_t n0, uint64_t n1, const T *y, const T *mask, \
                                   T *t)                                                  \
    {                                                                                     \
        size_t HW = q->Ho * q->Wo, NHW = q->N * HW;                                       \
        for (uint64_t n = n0; n < n1; n++)                                                \
            for (uint64_t o = 0; o < q->O; o++) {                                         \
                size_t at = (n * q->O + o) * HW;                                          \
                T *tr = t + o * NHW + n * HW;                                             \
                if (mask) kernels_get()->ew->relu_bwd_set_##sfx(HW, mask + at, y + at, tr); \
                else memcpy(tr, y + at, HW * sizeof(T));                                  \
            }                                                                             \
    }
GEN_BOTH(CONV_LAYOUT)

/* ---- the direct path: a phase-split padded input and the SIMD kernels of kernels/conv.h,
 * one sample at a time (its buffers stay in cache), no im2col, NCHW in and out ---- */

/* Above this many weights (O*K) the weight gradient's partial sums would crowd the cache
 * the direct kernels rely on: im2col + gemm instead. */
#define CONV_DIRECT_MAX_WEIGHTS ((size_t)1 << 16)

/* The columns of the whole batch, (C*kh*kw) x (N*Ho*Wo), kept for the weight gradient
 * (gemm path); or the direct kernels, the split layout (kernels/conv.h) and its tap offsets. */
struct ConvCtx {
    struct ConvGeom q;
    void *cols;
    const struct ConvKernels *ck;   /* NULL: im2col + gemm */
    struct ConvDims d;
    void *xs;                       /* the split input of every sample, for the weight gradient */
    const size_t *ig_tap;           /* the input gradient's tap order (see conv_direct_setup) */
    struct ConvDims dg;             /* d with the offsets in that order */
    int relu;                       /* fused ReLU: y = max(0, conv), g masked by y > 0 */
};

/* The direct kernels compute whole vectors of each output row: they pay when more than
 * half the lanes of a row do work (and the weight gradient's partial sums stay small).
 * Returns their vector lanes, or 0 (cx->ck NULL): im2col + gemm. */
static size_t conv_pick_path(struct ConvCtx *cx, uint32_t dt)
{
    const struct ConvGeom *q = &cx->q;
    const struct ConvKernels *ck = kernels_get()->conv;
    cx->ck = NULL;
    if (!ck) return 0;
    size_t lanes = (size_t)(dt == DT_FLOAT32 ? ck->lanes_f32 : ck->lanes_f64);
    size_t vec_row = (q->Wo + lanes - 1) / lanes * lanes;
    if (2 * q->Wo <= vec_row || q->O * q->C * q->kh * q->kw > CONV_DIRECT_MAX_WEIGHTS) return 0;
    cx->ck = ck;
    return lanes;
}

static size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

/* The split layout of kernels/conv.h: slots of whole vectors (aligned rows) long enough for a
 * phase's padded columns and for the leading padding of the next slot. */
static void conv_direct_setup(struct ConvCtx *cx, size_t lanes, struct Arena *a)
{
    const struct ConvGeom *q = &cx->q;
    size_t s = q->stride, p = q->pad, K = q->C * q->kh * q->kw;
    size_t phase_len = (q->W + 2 * p + s - 1) / s, lead_max = (p + s - 1) / s, data = (q->W + s - 1) / s;
    size_t len = round_up(phase_len > data + lead_max ? phase_len : data + lead_max, lanes);
    size_t rows = q->H + 2 * p, lead = round_up(lead_max, lanes);
    size_t *off = arena_alloc(a, K * sizeof *off), t = 0;
    for (uint64_t c = 0; c < q->C; c++)
        for (uint64_t ki = 0; ki < q->kh; ki++)
            for (uint64_t kj = 0; kj < q->kw; kj++) {
                size_t r = kj % s, lp = r < p ? (p - r + s - 1) / s : 0;
                off[t++] = lead + ((c * rows + ki) * s + r) * len + kj / s - lp;
            }
    cx->d = (struct ConvDims){q->O, K, q->Ho, q->Wo, s * s * len, off, q->C, q->H, q->W, s, p, rows, len, lead, 2 * lanes,
                              cx->relu, q->Wo};
    /* The input gradient adds each tap's tile into the split gradient by load-add-store.
     * Taps of one channel overlap there (one element or row apart), and a load that
     * overlaps a store just before it waits for that store; taken kernel position first,
     * channel last, a block of taps lands in different channels' planes instead. */
    size_t *tap = arena_alloc(a, K * sizeof *tap), *ig_off = arena_alloc(a, K * sizeof *ig_off);
    t = 0;
    for (uint64_t ki = 0; ki < q->kh; ki++)
        for (uint64_t kj = 0; kj < q->kw; kj++)
            for (uint64_t c = 0; c < q->C; c++, t++) {
                tap[t] = (c * q->kh + ki) * q->kw + kj;
                ig_off[t] = off[tap[t]];
            }
    cx->ig_tap = tap;
    cx->dg = cx->d;
    cx->dg.off = ig_off;
}

static size_t conv_split_size(const struct ConvCtx *cx)
{
    return cx->d.lead + cx->q.C * cx->d.rows * cx->q.stride * cx->d.len + cx->d.slack;
}

/* A row of the output gradient in whole vectors (kernels/conv.h), and one sample's worth */
static size_t conv_grad_row(const struct ConvCtx *cx, size_t es)
{
    return round_up(cx->q.Wo, (size_t)(es == sizeof(float) ? cx->ck->lanes_f32 : cx->ck->lanes_f64));
}

static size_t conv_grad_rows_size(const struct ConvCtx *cx, size_t es)
{
    return cx->q.O * cx->q.Ho * conv_grad_row(cx, es);
}

/* n elements of scratch rounded up to whole pairs of cache lines: the chunks' sums, each
 * written by the chunk's worker, share no line (nor the pair a core's prefetcher fetches
 * together), and the parts of a worker's own buffer start on whole lines. */
#define SCRATCH_LINES 128
static size_t scratch_lines(size_t n, size_t es) { return round_up(n * es, SCRATCH_LINES) / es; }

/* ---- the direct path's work, cut into parallel tasks (threads.h) ----
 * Forward: by samples (each sample's output is its own). Backward: by chunks of samples
 * whose size depends on the batch alone (nn_conv_chunk), never on the thread count: a
 * chunk's task pads each sample's gradient, takes its input gradient and adds its weight
 * gradient into lane partial sums, all while the sample is in cache; the chunk's sums
 * are then kept per weight, and one last pass adds the chunks in chunk order. So each
 * weight's sum is the same on any number of threads, and no thread reads another's
 * samples. */
struct ConvJob {
    const struct ConvCtx *cx;
    uint32_t dt;
    const void *x, *w, *b, *g, *ymask, *xmask;
    void *y, *xs_all, *gw, *gb, *gx;
    void *wt;           /* fwd: weights transposed; bwd: in igrad's tap order */
    void *chunk_sums;   /* bwd: per chunk, the weight then bias gradient sums */
    size_t n_chunks, n_w;   /* bwd: chunks; weight and bias sums per chunk */
    size_t sum_span;        /* bwd: sums added per task */
    size_t at_sums;     /* elements from one chunk's sums to the next: whole lines */
    /* Each worker's own buffers (par_scratch), in elements: a split input (xs in fwd
     * without kept inputs, gxs in bwd), then in bwd the lane partial sums and a sample's
     * padded gradient; each a whole number of lines. */
    size_t at_xs, at_part, at_gp;
    int w_overwrite, b_overwrite, overwrite, pad;
    size_t per_task;    /* samples per task (fwd) or per chunk (bwd) */
};

#define CONV_DIRECT_FWD(T, sfx)                                                                \
    static void conv_fwd_sample_##sfx(const struct ConvJob *j, uint64_t n, int worker)         \
    {                                                                                          \
        const struct ConvCtx *cx = j->cx;                                                      \
        const struct ConvGeom *q = &cx->q;                                                     \
        size_t xsn = conv_split_size(cx), yn = q->O * q->Ho * q->Wo;                           \
        T *xs = j->xs_all ? (T *)j->xs_all + n * xsn : (T *)par_scratch(worker, j->at_xs * sizeof(T)); \
        cx->ck->split_##sfx(&cx->d, (const T *)j->x + n * q->C * q->H * q->W, xs);             \
        cx->ck->fwd_##sfx(&cx->d, xs, j->wt, j->b, (T *)j->y + n * yn);                        \
    }                                                                                          \
    static void conv_transpose_w_##sfx(const struct ConvCtx *cx, const T *w, T *wt)            \
    {                                                                                          \
        for (size_t o = 0; o < cx->q.O; o++)                                                   \
            for (size_t t = 0; t < cx->d.K; t++) wt[t * cx->q.O + o] = w[o * cx->d.K + t];     \
    }
GEN_BOTH(CONV_DIRECT_FWD)

/* The lane partial sums of gw (and of gb) summed into them, = when overwrite. */
#define CONV_REDUCE(T, sfx)                                                                    \
    static void conv_reduce_##sfx(size_t n, size_t lanes, const T *part, T *out, int overwrite) \
    {                                                                                          \
        for (size_t i = 0; i < n; i++) {                                                       \
            T sum = 0;                                                                         \
            for (size_t l = 0; l < lanes; l++) sum += part[i * lanes + l];                     \
            out[i] = overwrite ? sum : out[i] + sum;                                           \
        }                                                                                      \
    }
GEN_BOTH(CONV_REDUCE)

/* One sample's output gradient: padded into whole-vector rows (the ReLU's mask applied on
 * the way) when the input gradient or a mask needs it, kept at gp for the weight gradient;
 * then the input gradient through the worker's split buffer. */
#define CONV_DIRECT_IGRAD(T, sfx)                                                              \
    static void conv_igrad_sample_##sfx(const struct ConvJob *j, uint64_t n, T *gp, T *gxs)    \
    {                                                                                          \
        const struct ConvCtx *cx = j->cx;                                                      \
        const struct ConvGeom *q = &cx->q;                                                     \
        size_t xn = q->C * q->H * q->W, xsn = conv_split_size(cx), gn = q->O * q->Ho * q->Wo;  \
        const T *gs = (const T *)j->g + n * gn, *xs = j->xs_all ? (const T *)j->xs_all + n * xsn : NULL; \
        if (j->pad) {                                                                          \
            cx->ck->pad_grad_##sfx(&cx->d, gs, j->ymask ? (const T *)j->ymask + n * gn : NULL, gp); \
            gs = gp;                                                                           \
        }                                                                                      \
        if (!j->gx) return;                                                                    \
        T *gx = (T *)j->gx + n * xn;                                                           \
        memset(gxs, 0, xsn * sizeof(T));                                                       \
        cx->ck->igrad_##sfx(&cx->dg, j->wt, gs, gxs);                                          \
        /* the kept xs is the fused input's ReLU output: a mask in the split layout */         \
        if (j->xmask && xs) cx->ck->unsplit_smask_##sfx(&cx->d, gxs, xs, gx);                  \
        else if (j->xmask) cx->ck->unsplit_mask_##sfx(&cx->d, gxs, (const T *)j->xmask + n * xn, gx); \
        else cx->ck->unsplit_##sfx(&cx->d, gxs, gx, j->overwrite);                             \
    }
GEN_BOTH(CONV_DIRECT_IGRAD)

/* One chunk of samples: each one's input gradient, then its weight (and bias) gradient
 * into the worker's lane partial sums, whose totals become the chunk's sums. */
#define CONV_DIRECT_CHUNK(T, sfx)                                                              \
    static void conv_bwd_chunk_##sfx(const struct ConvJob *j, size_t c, int worker)            \
    {                                                                                          \
        const struct ConvCtx *cx = j->cx;                                                      \
        const struct ConvGeom *q = &cx->q;                                                     \
        size_t K = cx->d.K, xsn = conv_split_size(cx), pl = CONV_PART_BYTES / sizeof(T);       \
        size_t gn = q->O * q->Ho * q->Wo, n_part = (q->O * K + q->O) * pl;                      \
        struct ConvDims dw = cx->d;                                                            \
        dw.g_row = j->pad ? conv_grad_row(cx, sizeof(T)) : q->Wo;                              \
        T *gxs = par_scratch(worker, (j->at_xs + j->at_part + j->at_gp) * sizeof(T));          \
        T *part = gxs + j->at_xs, *partb = j->gb ? part + q->O * K * pl : NULL, *gp = part + j->at_part; \
        if (j->gw) memset(part, 0, n_part * sizeof(T));                                        \
        uint64_t n1 = (c + 1) * j->per_task < q->N ? (c + 1) * j->per_task : q->N;             \
        for (uint64_t n = c * j->per_task; n < n1; n++) {                                      \
            if (j->pad) conv_igrad_sample_##sfx(j, n, gp, gxs);                                \
            if (j->gw)                                                                         \
                cx->ck->wgrad_##sfx(&dw, (const T *)j->xs_all + n * xsn,                       \
                                    j->pad ? gp : (const T *)j->g + n * gn, part, partb);      \
        }                                                                                      \
        if (!j->gw) return;                                                                    \
        T *sums = (T *)j->chunk_sums + c * j->at_sums;                                         \
        conv_reduce_##sfx(q->O * K, pl, part, sums, 1);                                        \
        if (partb) conv_reduce_##sfx(q->O, pl, partb, sums + q->O * K, 1);                     \
    }                                                                                          \
    /* gradient [i0, i1) of the weights then biases (+)= the chunks' sums, in chunk order */   \
    static void conv_sum_chunks_##sfx(const struct ConvJob *j, size_t i0, size_t i1)           \
    {                                                                                          \
        size_t OK = j->cx->q.O * j->cx->d.K;                                                   \
        const T *sums = j->chunk_sums;                                                         \
        for (size_t i = i0; i < i1; i++) {                                                     \
            T s = sums[i];                                                                     \
            for (size_t c = 1; c < j->n_chunks; c++) s += sums[c * j->at_sums + i];             \
            T *out = i < OK ? (T *)j->gw + i : (T *)j->gb + (i - OK);                          \
            int ow = i < OK ? j->w_overwrite : j->b_overwrite;                                 \
            *out = ow ? s : *out + s;                                                          \
        }                                                                                      \
    }
GEN_BOTH(CONV_DIRECT_CHUNK)

static void conv_fwd_task(void *ctx, size_t task, int worker)
{
    const struct ConvJob *j = ctx;
    for (uint64_t n = task * j->per_task; n < j->cx->q.N && n < (task + 1) * j->per_task; n++)
        DT_CALL(j->dt, conv_fwd_sample, j, n, worker);
}

static void conv_bwd_task(void *ctx, size_t task, int worker)
{
    const struct ConvJob *j = ctx;
    DT_CALL(j->dt, conv_bwd_chunk, j, task, worker);
}

/* The chunks' sums are added in even slices of the gradient, whole cache lines each
 * (a slice's sums do not depend on the slicing): 1024 and 144 of the Fashion-MNIST
 * CNN's 1168 took the 2 threads 8.3 and 2.2 us. */
static void conv_sum_task(void *ctx, size_t task, int worker)
{
    (void)worker;
    const struct ConvJob *j = ctx;
    size_t i0 = task * j->sum_span, i1 = i0 + j->sum_span < j->n_w ? i0 + j->sum_span : j->n_w;
    DT_CALL(j->dt, conv_sum_chunks, j, i0, i1);
}

/* Samples per backward chunk: a few, so that a batch of 64 feeds 16 threads, and at most
 * 64 chunks, which bounds the memory their sums take. A function of the batch alone. */
size_t nn_conv_chunk(uint64_t N)
{
    size_t c = (size_t)((N + 63) / 64);
    return c < 4 ? 4 : c;
}

/* Tasks of whole samples for work spread evenly over n samples; sets j->per_task. */
static size_t conv_sample_tasks(struct ConvJob *j, size_t work_per_sample)
{
    uint64_t N = j->cx->q.N;
    size_t tasks = par_tasks(N * work_per_sample, work_per_sample);
    if (tasks > N) tasks = N;
    j->per_task = (N + tasks - 1) / tasks;
    return (N + j->per_task - 1) / j->per_task;
}

/* The fused ReLU's mask for the output gradient (the output, > 0 where it passes), or
 * NULL: no ReLU, or the consuming conv masked the gradient already. */
static const void *conv_out_mask(const struct Node *self)
{
    const struct ConvCtx *cx = self->ctx;
    return cx->relu && !self->grad_masked ? self->value->data : NULL;
}

/* The masked output gradient whole (a copy in the arena), for the bias of frozen weights
 * alone; the other backward paths mask on the way instead. */
static const void *conv_out_grad(struct Node *self)
{
    const void *m = conv_out_mask(self);
    if (!m) return self->grad->data;
    size_t n = tensor_numel(self->value);
    void *gm = arena_alloc(&self->graph->arena, n * dtype_size(self->value->dtype));
    const struct EwKernels *k = kernels_get()->ew;
    if (self->value->dtype == DT_FLOAT32) k->relu_bwd_set_f32(n, m, tensor_f32(self->grad), gm);
    else k->relu_bwd_set_f64(n, m, tensor_f64(self->grad), gm);
    return gm;
}

/* When the input x is a fused Conv2d + ReLU whose gradient this backward writes whole
 * (overwrite), its mask is applied here, sample by sample while the gradient is in
 * cache, and x's backward told so: returns x's output (the mask) or NULL. */
static const void *conv_premask(struct Node *x, int overwrite)
{
    if (x->op != OP_CONV2D_RELU) return NULL;
    x->grad_masked = (uint32_t)overwrite;
    return overwrite ? x->value->data : NULL;
}

/* The backward pass by chunks of samples (above); the bias of frozen weights alone below. */
static void conv2d_backward_direct(struct Node *self)
{
    struct Node *x = self->parents[0], *w = self->parents[1], *b = self->n_parents > 2 ? self->parents[2] : NULL;
    const struct ConvCtx *cx = self->ctx;
    const struct ConvGeom *q = &cx->q;
    uint32_t dt = self->grad->dtype;
    int want_w = node_wants_grad(w), want_x = node_wants_grad(x), want_b = b && node_wants_grad(b);
    size_t es = dtype_size(dt), HW = q->Ho * q->Wo, K = cx->d.K, xsn = conv_split_size(cx);
    struct ConvJob j = {.cx = cx, .dt = dt, .g = self->grad->data, .ymask = conv_out_mask(self)};
    j.gw = want_w ? node_grad_begin(w, &j.w_overwrite)->data : NULL;
    j.gb = want_w && want_b ? node_grad_begin(b, &j.b_overwrite)->data : NULL;
    j.gx = want_x ? node_grad_begin(x, &j.overwrite)->data : NULL;
    j.xmask = want_x ? conv_premask(x, j.overwrite) : NULL;
    j.xs_all = cx->xs;
    j.pad = j.ymask || j.gx;
    j.per_task = nn_conv_chunk(q->N);
    j.n_chunks = (q->N + j.per_task - 1) / j.per_task;
    j.n_w = want_w ? q->O * K + (j.gb ? q->O : 0) : 0;
    size_t pl = CONV_PART_BYTES / es;
    j.at_part = want_w ? scratch_lines((q->O * K + q->O) * pl, es) : 0;
    j.at_gp = j.pad ? scratch_lines(conv_grad_rows_size(cx, es), es) : 0;
    j.at_xs = want_x ? scratch_lines(xsn, es) : 0;
    j.at_sums = scratch_lines(j.n_w, es);
    size_t n_wt = want_x ? scratch_lines(q->O * K, es) : 0;
    char *s = graph_scratch(self->graph, (n_wt + j.n_chunks * j.at_sums) * es);
    j.wt = s;
    j.chunk_sums = s + n_wt * es;
    for (size_t i = 0; want_x && i < q->O * K; i++) /* weights in igrad's tap order */
        memcpy((char *)j.wt + i * es, (const char *)w->value->data + (i - i % K + cx->ig_tap[i % K]) * es, es);
    if (want_x || want_w) par_run(j.n_chunks, conv_bwd_task, &j);
    if (want_w) {
        size_t tasks = par_tasks(j.n_w * j.n_chunks * es, (size_t)4 << 10);
        j.sum_span = ((j.n_w + tasks - 1) / tasks + 15) / 16 * 16;
        par_run((j.n_w + j.sum_span - 1) / j.sum_span, conv_sum_task, &j);
    }
    if (!want_b || want_w) return;
    /* a bias without its weight's gradient (frozen weights): sums of g alone */
    int b_overwrite;
    void *gb = node_grad_begin(b, &b_overwrite)->data;
    const struct EwKernels *k = kernels_get()->ew;
    const char *g = conv_out_grad(self);
    if (b_overwrite) memset(gb, 0, q->O * es);
    for (uint64_t n = 0; n < q->N; n++)
        for (uint64_t o = 0; o < q->O; o++) {
            const char *gp = g + (n * q->O + o) * HW * es;
            if (dt == DT_FLOAT32) ((float *)gb)[o] += (float)k->sum_f32(HW, (const float *)(const void *)gp);
            else ((double *)gb)[o] += k->sum_f64(HW, (const double *)(const void *)gp);
        }
}

/* ---- the gemm path: the gemms cut themselves; the copies around them are cut here by
 * samples (the bias sums by output channels). Each item is written by one task, in the
 * same order on any number of threads. ---- */

enum conv_gemm_stage { CG_IM2COL, CG_TO_NCHW, CG_TO_GEMM, CG_COL2IM, CG_BIAS };

struct ConvGemmJob {
    const struct ConvGeom *q;
    uint32_t dt;
    enum conv_gemm_stage stage;
    const void *src;    /* x, t, the output gradient, dcols, t */
    const void *aux;    /* to_nchw: the bias or NULL; to_gemm: the ReLU mask or NULL */
    void *dst;          /* cols, y, t, gx, the bias gradient */
    int relu;
    size_t per_task;    /* samples (channels for CG_BIAS) per task */
};

static void conv_gemm_task(void *ctx, size_t task, int worker)
{
    (void)worker;
    const struct ConvGemmJob *j = ctx;
    const struct ConvGeom *q = j->q;
    uint64_t items = j->stage == CG_BIAS ? q->O : q->N;
    uint64_t i0 = task * j->per_task, i1 = i0 + j->per_task < items ? i0 + j->per_task : items;
    size_t es = dtype_size(j->dt), HW = q->Ho * q->Wo, NHW = q->N * HW, CHW = q->C * q->H * q->W;
    const char *src = j->src;
    char *dst = j->dst;
    switch (j->stage) {
    case CG_IM2COL:
        for (uint64_t n = i0; n < i1; n++) DT_CALL(j->dt, im2col, q, src + n * CHW * es, dst + n * HW * es, NHW);
        break;
    case CG_TO_NCHW: DT_CALL(j->dt, conv_to_nchw, q, i0, i1, j->src, j->aux, j->relu, j->dst); break;
    case CG_TO_GEMM: DT_CALL(j->dt, conv_to_gemm, q, i0, i1, j->src, j->aux, j->dst); break;
    case CG_COL2IM:
        for (uint64_t n = i0; n < i1; n++) DT_CALL(j->dt, col2im, q, src + n * HW * es, NHW, dst + n * CHW * es);
        break;
    case CG_BIAS: {
        const struct EwKernels *k = kernels_get()->ew;
        for (uint64_t o = i0; o < i1; o++) {
            if (j->dt == DT_FLOAT32)
                ((float *)j->dst)[o] += (float)k->sum_f32(NHW, (const float *)(const void *)src + o * NHW);
            else ((double *)j->dst)[o] += k->sum_f64(NHW, (const double *)(const void *)src + o * NHW);
        }
        break;
    }
    }
}

/* Runs one stage, touching bytes_per_item per sample (or channel). */
static void conv_gemm_run(struct ConvGemmJob *j, size_t bytes_per_item)
{
    uint64_t items = j->stage == CG_BIAS ? j->q->O : j->q->N;
    size_t tasks = par_tasks(items * bytes_per_item, (size_t)16 << 10);
    if (tasks > items) tasks = items;
    j->per_task = (items + tasks - 1) / tasks;
    par_run((items + j->per_task - 1) / j->per_task, conv_gemm_task, j);
}

/* ---- the gemm path's backward and forward ---- */

static void conv2d_backward_gemm(struct Node *self)
{
    struct Node *x = self->parents[0], *w = self->parents[1], *b = self->n_parents > 2 ? self->parents[2] : NULL;
    struct ConvCtx *cx = self->ctx;
    const struct ConvGeom *q = &cx->q;
    uint32_t dt = self->grad->dtype;
    size_t es = dtype_size(dt), K = q->C * q->kh * q->kw, HW = q->Ho * q->Wo, NHW = q->N * HW;
    int want_x = node_wants_grad(x);
    char *gt = graph_scratch(self->graph, (q->O + (want_x ? K : 0)) * NHW * es);
    void *gcol = gt + q->O * NHW * es;
    struct ConvGemmJob j = {.q = q, .dt = dt, .stage = CG_TO_GEMM, .src = self->grad->data,
                            .aux = conv_out_mask(self), .dst = gt};
    conv_gemm_run(&j, 2 * q->O * HW * es);
    if (node_wants_grad(w))   /* dW += g cols^T */
        DT_CALL(dt, gemm, 0, 1, q->O, K, NHW, 1, (void *)gt, NHW, cx->cols, NHW, 1, node_grad(w)->data, K);
    if (b && node_wants_grad(b)) {
        j.stage = CG_BIAS;
        j.src = gt;
        j.dst = node_grad(b)->data;
        conv_gemm_run(&j, NHW * es);
    }
    if (!want_x) return;
    /* dcols = W^T g, scattered back into dx sample by sample */
    DT_CALL(dt, gemm, 1, 0, K, NHW, q->O, 1, w->value->data, K, (void *)gt, NHW, 0, gcol, NHW);
    j.stage = CG_COL2IM;
    j.src = gcol;
    j.dst = node_grad(x)->data;
    conv_gemm_run(&j, 2 * K * HW * es);
}

static void conv2d_backward(struct Node *self)
{
    const struct ConvCtx *cx = self->ctx;
    if (cx->ck) conv2d_backward_direct(self);
    else conv2d_backward_gemm(self);
}

/* The one place a convolution's output size is computed: n inputs (padded by pad on both
 * sides) under a kernel of k at stride s; the caller checks k <= n + 2*pad first. */
static uint64_t conv_out_size(uint64_t n, uint64_t k, uint64_t stride, uint64_t pad)
{
    return (n + 2 * pad - k) / stride + 1;
}

static void conv_geometry(const struct Tensor *X, const struct Tensor *W, uint64_t stride, uint64_t pad,
                          struct ConvGeom *q)
{
    char sx[96], sw[96];
    if (X->ndim != 4 || W->ndim != 4 || X->shape[1] != W->shape[1] || X->dtype != W->dtype || stride == 0)
        panic("conv2d: input %s does not fit weight %s (expected N x %llu x H x W)", tensor_shape_str(X, sx, sizeof sx),
              tensor_shape_str(W, sw, sizeof sw), (unsigned long long)(W->ndim == 4 ? W->shape[1] : 0));
    *q = (struct ConvGeom){X->shape[0], X->shape[1], X->shape[2], X->shape[3], W->shape[0], W->shape[2],
                           W->shape[3], stride, pad, 0, 0};
    if (q->H + 2 * pad < q->kh || q->W + 2 * pad < q->kw)
        panic("conv2d: kernel %llux%llu larger than the padded input %llux%llu", (unsigned long long)q->kh,
              (unsigned long long)q->kw, (unsigned long long)(q->H + 2 * pad), (unsigned long long)(q->W + 2 * pad));
    q->Ho = conv_out_size(q->H, q->kh, stride, pad);
    q->Wo = conv_out_size(q->W, q->kw, stride, pad);
}

static struct Node *conv2d_op(struct Node *x, struct Node *w, struct Node *b, uint64_t stride, uint64_t padding,
                              int relu)
{
    struct ConvGeom q;
    conv_geometry(x->value, w->value, stride, padding, &q);
    CHECK(!b || (b->value->ndim == 1 && b->value->shape[0] == q.O), "conv2d bias must have out_ch elements");
    CHECK(tensor_is_contiguous(x->value), "conv2d input must be contiguous");
    struct Graph *g = node_graph(x, w);
    uint64_t shape[4] = {q.N, q.O, q.Ho, q.Wo};
    struct Node *parents[3] = {x, w, b};
    uint32_t dt = x->value->dtype;
    struct Node *y = node_new(g, relu ? OP_CONV2D_RELU : OP_CONV2D, 4, shape, dt, b ? 3 : 2, parents, conv2d_backward);
    size_t es = dtype_size(dt), K = q.C * q.kh * q.kw, HW = q.Ho * q.Wo, NHW = q.N * HW;
    struct ConvCtx *cx = arena_alloc(&g->arena, sizeof *cx);
    cx->q = q;
    cx->relu = relu;
    y->ctx = cx;
    size_t lanes = conv_pick_path(cx, dt);
    if (lanes) {
        conv_direct_setup(cx, lanes, &g->arena);
        size_t xsn = conv_split_size(cx);
        cx->xs = y->requires_grad && node_wants_grad(w) ? arena_alloc(&g->arena, q.N * xsn * es) : NULL;
        struct ConvJob j = {.cx = cx, .dt = dt, .x = x->value->data, .b = b ? b->value->data : NULL,
                            .y = y->value->data, .xs_all = cx->xs};
        size_t tasks = conv_sample_tasks(&j, 2 * q.O * cx->d.K * HW);
        j.at_xs = scratch_lines(xsn, es);
        j.wt = graph_scratch(g, q.O * cx->d.K * es);
        DT_CALL(dt, conv_transpose_w, cx, w->value->data, j.wt);
        par_run(tasks, conv_fwd_task, &j);
        return y;
    }
    /* One gemm for the whole batch: out (O x N*HW) = W (O x K) cols (K x N*HW). The
     * columns stay in the arena when a weight gradient will need them. */
    char *tmp = graph_scratch(g, (q.O + (y->requires_grad ? 0 : K)) * NHW * es);
    cx->cols = y->requires_grad ? arena_alloc(&g->arena, K * NHW * es) : tmp + q.O * NHW * es;
    struct ConvGemmJob j = {.q = &q, .dt = dt, .stage = CG_IM2COL, .src = x->value->data, .dst = cx->cols};
    conv_gemm_run(&j, (q.C * q.H * q.W + K * HW) * es);
    DT_CALL(dt, gemm, 0, 0, q.O, NHW, K, 1, w->value->data, K, cx->cols, NHW, 0, (void *)tmp, NHW);
    j = (struct ConvGemmJob){.q = &q, .dt = dt, .stage = CG_TO_NCHW, .src = tmp, .aux = b ? b->value->data : NULL,
                             .dst = y->value->data, .relu = relu};
    conv_gemm_run(&j, 2 * q.O * HW * es);
    return y;
}

struct Node *nn_conv2d(struct Node *x, struct Node *w, struct Node *b, uint64_t stride, uint64_t padding)
{
    return conv2d_op(x, w, b, stride, padding, 0);
}

struct Node *nn_conv2d_relu(struct Node *x, struct Node *w, struct Node *b, uint64_t stride, uint64_t padding)
{
    return conv2d_op(x, w, b, stride, padding, 1);
}

#define CONV_NAIVE(T, sfx)                                                                     \
    static void conv_naive_##sfx(const struct ConvGeom *q, const void *x_, const void *w_,     \
                                 const void *b_, void *y_)                                     \
    {                                                                                          \
        const T *x = x_, *w = w_, *b = b_;                                                     \
        T *y = y_;                                                                             \
        for (uint64_t n = 0; n < q->N; n++)                                                    \
            for (uint64_t o = 0; o < q->O; o++)                                                \
                for (uint64_t oh = 0; oh < q->Ho; oh++)                                        \
                    for (uint64_t ow = 0; ow < q->Wo; ow++) {                                  \
                        T s = b ? b[o] : 0;                                                    \
                        for (uint64_t c = 0; c < q->C; c++)                                    \
                            for (uint64_t ki = 0; ki < q->kh; ki++)                            \
                                for (uint64_t kj = 0; kj < q->kw; kj++) {                      \
                                    int64_t ih = (int64_t)(oh * q->stride + ki) - (int64_t)q->pad; \
                                    int64_t iw = (int64_t)(ow * q->stride + kj) - (int64_t)q->pad; \
                                    if (ih < 0 || iw < 0 || ih >= (int64_t)q->H || iw >= (int64_t)q->W) continue; \
                                    s += x[((n * q->C + c) * q->H + (uint64_t)ih) * q->W + (uint64_t)iw] * \
                                         w[((o * q->C + c) * q->kh + ki) * q->kw + kj];          \
                                }                                                              \
                        y[((n * q->O + o) * q->Ho + oh) * q->Wo + ow] = s;                     \
                    }                                                                          \
    }
GEN_BOTH(CONV_NAIVE)

void conv2d_forward_naive(const struct Tensor *x, const struct Tensor *w, const struct Tensor *b,
                          uint64_t stride, uint64_t padding, struct Tensor *out)
{
    struct ConvGeom q;
    conv_geometry(x, w, stride, padding, &q);
    CHECK(out->ndim == 4 && out->shape[0] == q.N && out->shape[1] == q.O && out->shape[2] == q.Ho &&
          out->shape[3] == q.Wo, "conv2d_forward_naive: wrong output shape");
    DT_CALL(x->dtype, conv_naive, &q, x->data, w->data, b ? b->data : NULL, out->data);
}


/* ---- the layer ---- */

static void conv2d_forward(struct Module *m, struct Node *input, struct Node **output)
{
    *output = nn_conv2d(input, m->param_nodes[0], m->param_nodes[1], m->spec.args.conv2d.stride,
                        m->spec.args.conv2d.padding);
}

static int conv2d_shape(const struct LayerSpec *l, const struct LayerShape *in, int first, struct LayerShape *out,
                        uint64_t *n_params, char *err, size_t errlen)
{
    char note[80];
    const uint64_t in_ch = l->args.conv2d.in_ch, out_ch = l->args.conv2d.out_ch, kh = l->args.conv2d.kh,
                   kw = l->args.conv2d.kw, s = l->args.conv2d.stride, p = l->args.conv2d.padding;
    if (in->ndim != 3) {
        if (first) return err_set(err, errlen, "Conv2d needs a C,H,W input: give input_shape=C,H,W instead of input_dim");
        return err_set(err, errlen, "Conv2d cannot follow a Linear layer: its output is flat (%llu values)",
                       (unsigned long long)in->d[0]);
    }
    layer_shape_note(note, sizeof note, in);
    if (in_ch != in->d[0])
        return err_set(err, errlen, "Conv2d expects %llu input channels but %s %llu%s", (unsigned long long)in_ch,
                       layer_source(first), (unsigned long long)in->d[0], note);
    uint64_t ph = in->d[1] + 2 * p, pw = in->d[2] + 2 * p;
    if (kh > ph || kw > pw)
        return err_set(err, errlen,
                       "Conv2d kernel %llux%llu is larger than its padded input %llux%llu (%llux%llu plus padding %llu)",
                       (unsigned long long)kh, (unsigned long long)kw, (unsigned long long)ph, (unsigned long long)pw,
                       (unsigned long long)in->d[1], (unsigned long long)in->d[2], (unsigned long long)p);
    *out = (struct LayerShape){3, {out_ch, conv_out_size(in->d[1], kh, s, p), conv_out_size(in->d[2], kw, s, p)}};
    uint64_t w, o;
    if (__builtin_mul_overflow(in_ch * out_ch, kh * kw, &w) || w > LAYER_MAX_ELEMS ||
        __builtin_mul_overflow(out_ch, out->d[1] * out->d[2], &o) || o > LAYER_MAX_ELEMS)
        return err_set(err, errlen, "Conv2d is too large (more than %llu weights or output values)", LAYER_MAX_ELEMS);
    *n_params = w + out_ch;
    return 0;
}

static struct Module *conv2d_create(const struct LayerSpec *l, uint32_t dtype, struct Rng *rng)
{
    const uint64_t in_ch = l->args.conv2d.in_ch, out_ch = l->args.conv2d.out_ch, kh = l->args.conv2d.kh,
                   kw = l->args.conv2d.kw, ws[4] = {out_ch, in_ch, kh, kw};
    CHECK(in_ch && out_ch && kh && kw && l->args.conv2d.stride, "Conv2d sizes must be positive");
    struct Module *m = module_new(l);
    double bound = 1.0 / sqrt((double)(in_ch * kh * kw));
    module_set_param(m, 0, tensor_create(4, ws, dtype), bound, rng);
    module_set_param(m, 1, tensor_create(1, &out_ch, dtype), bound, rng);
    return m;
}

struct Module *nn_conv2d_create(uint64_t in_ch, uint64_t out_ch, uint64_t kh, uint64_t kw,
                                uint64_t stride, uint64_t padding, uint32_t dtype, struct Rng *rng)
{
    struct LayerSpec l = {.kind = MOD_CONV2D, .args.conv2d = {in_ch, out_ch, kh, kw, stride, padding}};
    return conv2d_create(&l, dtype, rng);
}

static const struct LayerArgDef conv2d_args[] = {
    {"in_ch", 1, LAYER_ARG_COUNT, 0}, {"out_ch", 1, LAYER_ARG_COUNT, 0}, {"kh", 1, LAYER_ARG_COUNT, 0},
    {"kw", 1, LAYER_ARG_COUNT, 0},    {"stride", 1, LAYER_ARG_COUNT, 0}, {"padding", 0, LAYER_ARG_COUNT, 0}};
static const char *const weight_bias[] = {"weight", "bias"};

const struct LayerType layer_conv2d = {
    .name = "Conv2d", .prefix = "conv2d", .n_args = 6, .args = conv2d_args, .n_params = 2,
    .param_names = weight_bias, .shape = conv2d_shape, .create = conv2d_create, .forward = conv2d_forward,
    .backward = conv2d_backward,
};
