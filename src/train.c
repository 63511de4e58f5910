/* train: the step, the epoch, the optimizer of a config, validation, the run's state
 * and the signals that interrupt it. */
#include "train.h"
#include "losses.h"
#include "math_kernels.h"

#include <math.h>
#include <signal.h>
#include <string.h>

struct Optimizer *train_optimizer_create(const struct Model *m)
{
    struct Tensor **p = mem_alloc((m->n_params + 1) * sizeof *p), **g = mem_alloc((m->n_params + 1) * sizeof *g);
    for (uint32_t i = 0; i < m->n_params; i++) p[i] = m->param_nodes[i]->value, g[i] = m->param_nodes[i]->grad;
    const struct TrainConfig *c = &m->cfg;
    struct Optimizer *opt = c->optimizer == OPT_SGD ? optim_sgd_create(p, g, m->n_params, c->lr, c->momentum)
                                                    : optim_adam_create(p, g, m->n_params, c->lr, c->beta1, c->beta2, c->eps);
    mem_free(p);
    mem_free(g);
    return opt;
}

static void update_part(const struct GradHook *h, uint64_t lo, uint64_t n)
{
    optim_step_range(h->ctx, h->index, lo, n);
}
_Static_assert(GRAD_HOOK_ALIGN % OPTIM_RANGE_ALIGN == 0, "a hook's ranges must start where the step's runs do");

void train_init(struct Trainer *t, struct Model *m)
{
    memset(t, 0, sizeof *t);
    t->model = m;
    t->opt = train_optimizer_create(m);
    t->hooks = mem_alloc_zeroed((m->n_params + 1) * sizeof *t->hooks);
    for (uint32_t i = 0; i < m->n_params; i++) t->hooks[i] = (struct GradHook){update_part, t->opt, i};
    t->updated = mem_alloc_zeroed(m->n_params + 1);
    t->uses = mem_alloc_zeroed((m->n_params + 1) * sizeof *t->uses);
    graph_init(&t->g);
    graph_init(&t->eval_g);
    graph_set_no_grad(&t->eval_g, 1);
}

void train_free(struct Trainer *t)
{
    mem_free(t->flat);
    mem_free(t->hooks);
    mem_free(t->updated);
    mem_free(t->uses);
    graph_free(&t->g);
    graph_free(&t->eval_g);
    optim_free(t->opt);
    memset(t, 0, sizeof *t);
}

void train_set_comm(struct Trainer *t, struct TrainComm *c)
{
    struct Model *m = t->model;
    mem_free(t->flat);
    t->flat = NULL, t->flat_n = 0;
    t->comm = c && c->size > 1 ? c : NULL; /* one process: the plain step, the same bits */
    if (!t->comm) return;
    for (uint32_t i = 0; i < m->n_params; i++) t->flat_n += tensor_numel(m->param_nodes[i]->value);
    t->flat = mem_alloc((t->flat_n ? t->flat_n : 1) * dtype_size(m->cfg.dtype));
}

struct Node *train_loss_modules(struct Module *const *mods, uint32_t n, struct Node *x, const struct Batch *b,
                                int loss_kind, struct Node **out)
{
    /* CrossEntropy applies log-softmax itself: a final Softmax must not run twice. */
    int ce = loss_kind == LOSS_CROSS_ENTROPY;
    CHECK(ce ? b->cls != NULL : b->y != NULL, "the batch has no %s", ce ? "class labels" : "targets");
    struct Node *h = model_forward_modules(mods, n, x, ce);
    if (out) *out = h;
    if (ce) return loss_cross_entropy(h, b->cls);
    return loss_mse(h, graph_input(h->graph, b->y, 0));
}

struct Node *train_loss(const struct Model *m, struct Graph *g, const struct Batch *b, struct Node **out)
{
    struct Node *x = model_input(g, m, b->x);
    if (x->value->data == b->x->data) x->copies = b->x_copies;
    return train_loss_modules(m->mods, m->n_mods, x, b, m->cfg.loss, out);
}

/* Rows whose largest output is at the labelled class. */
static uint64_t count_correct(const struct Tensor *out, const uint32_t *cls)
{
    uint64_t rows = out->shape[0], C = out->shape[1], hits = 0;
    for (uint64_t r = 0; r < rows; r++) hits += tensor_row_argmax(out, r, C) == cls[r];
    return hits;
}

static void epoch_means(struct EpochStats *st)
{
    st->loss = st->seen ? st->loss_sum / (double)st->seen : 0;
    st->accuracy = st->seen ? (double)st->hits / (double)st->seen : 0;
}

#define PACK(T, sfx)                                                                \
    static void pack_##sfx(void *dst, const void *src, uint64_t n, double scale)  \
    {                                                                           \
        T *d = dst;                                                             \
        const T *s = src;                                                       \
        for (uint64_t i = 0; i < n; i++) d[i] = (T)((double)s[i] * scale);      \
    }
PACK(float, f32)
PACK(double, f64)

/* The parameter gradients into t->flat, each times share (0 < share <= 1), or zeros. */
static void pack_grads(struct Trainer *t, double share)
{
    struct Model *m = t->model;
    size_t es = dtype_size(m->cfg.dtype);
    char *p = t->flat;
    if (share == 0) {
        memset(p, 0, t->flat_n * es);
        return;
    }
    for (uint32_t i = 0; i < m->n_params; i++) {
        const struct Tensor *g = m->param_nodes[i]->grad;
        uint64_t n = tensor_numel(g);
        (m->cfg.dtype == DT_FLOAT64 ? pack_f64 : pack_f32)(p, g->data, n, share);
        p += n * es;
    }
}

/* t->flat back into the parameter gradients. */
static void unpack_grads(struct Trainer *t)
{
    struct Model *m = t->model;
    size_t es = dtype_size(m->cfg.dtype);
    const char *p = t->flat;
    for (uint32_t i = 0; i < m->n_params; i++) {
        struct Node *pn = m->param_nodes[i];
        uint64_t n = tensor_numel(pn->grad);
        memcpy(pn->grad->data, p, n * es);
        pn->grad_stale = 0;
        p += n * es;
    }
}

/* One data-parallel step (t->comm): this process's slice, its gradient times its share
 * of the rows, the sums over all processes in rank order, then the update every process
 * makes alike. The loss, hits, stop flag and read failures travel in their own small sum
 * first, so a non-finite loss or a failed read on any process stops every one before
 * the update. */
static int step_shared(struct Trainer *t, struct Dataset *ds, uint64_t b, double lr, struct EpochStats *st)
{
    struct Model *m = t->model;
    struct TrainComm *c = t->comm;
    struct Batch bt;
    /* the file's size looked at every step (dataset_check), so that the ranks agree on it below */
    int unread = dataset_get_batch_part(ds, b, m->cfg.batch_size, (uint64_t)c->rank, (uint64_t)c->size, &bt) != 0 ||
                 dataset_check(ds) != 0;
    uint64_t rows = bt.batch_rows;
    double sums[4] = {0, 0, t->stop && *t->stop, unread}; /* loss x rows, hits, stop, read failures */
    double share = 0;
    if (bt.rows && !unread) {
        struct Node *out, *loss = train_loss(m, &t->g, &bt, &out);
        double l = tensor_at(loss->value, 0);
        sums[0] = l * (double)bt.rows;
        if (isfinite(l)) {
            model_zero_grad(m);
            backward(loss);
            share = (double)bt.rows / (double)rows;
            if (m->cfg.loss == LOSS_CROSS_ENTROPY) sums[1] = (double)count_correct(out->value, bt.cls);
        }
    }
    pack_grads(t, share);
    graph_reset(&t->g);
    c->sum_stats(c, sums, 4);
    if (sums[3] > 0) {
        st->steps = b + 1;
        return TRAIN_READ_ERROR;
    }
    if (!isfinite(sums[0])) {
        st->steps = b + 1, st->bad_loss = sums[0] / (double)rows;
        return TRAIN_DIVERGED;
    }
    c->sum_flat(c, t->flat, t->flat_n, m->cfg.dtype);
    unpack_grads(t);
    optim_set_lr(t->opt, lr);
    t->opt->step(t->opt);
    st->loss_sum += sums[0];
    st->seen += rows;
    st->hits += (uint64_t)sums[1];
    st->steps = b + 1;
    return sums[2] > 0 ? TRAIN_INTERRUPTED : TRAIN_OK;
}

/* The gradients, then the update. With one process the update goes by parts: an op that
 * writes a parameter's gradient whole updates it as it goes, each part on the thread that
 * wrote it while it is in cache (a Linear's weight: autograd.h GradHook), and the step
 * updates the rest after. Only a parameter that one op of the step read (t->uses, taken
 * before the forward) gets a hook: with two, the first to write would update it from
 * half its gradient. The same bits as the whole step after the backward pass (the
 * update is elementwise); only data-parallel processes, which sum the gradients first,
 * and an optimizer step of the caller's own take the whole step. */
static void backward_and_step(struct Trainer *t, struct Node *loss)
{
    struct Model *m = t->model;
    model_zero_grad(m);
    if (!optim_step_begin(t->opt)) {
        backward(loss);
        t->opt->step(t->opt);
        return;
    }
    for (uint32_t i = 0; i < m->n_params; i++) /* a parameter that one op of the step read */
        if (m->param_nodes[i]->n_consumers - t->uses[i] == 1) m->param_nodes[i]->grad_hook = &t->hooks[i];
    backward(loss);
    for (uint32_t i = 0; i < m->n_params; i++) {
        t->updated[i] = m->param_nodes[i]->grad_hook == NULL;
        m->param_nodes[i]->grad_hook = NULL;
    }
    optim_step_finish(t->opt, t->updated);
}

int train_epoch_continue(struct Trainer *t, struct Dataset *ds, uint64_t epoch, uint64_t max_steps,
                         epoch_progress_fn progress, void *ctx, struct EpochStats *st)
{
    struct Model *m = t->model;
    const struct TrainConfig *c = &m->cfg;
    uint64_t nb = dataset_num_batches(ds, c->batch_size);
    uint64_t first = (epoch - 1) * nb, total = c->epochs * nb; /* the schedule's steps */
    if (max_steps && max_steps < nb) nb = max_steps;
    /* A first Linear reads the batch whole on every thread (its weight gradient sums over
     * all the rows): each thread gathers a copy of its own, when the rows come in the
     * file's order. Shuffled, each row of each copy is a miss to memory, and two threads
     * reading every row cost more than the rows crossing between the cores save: at 2
     * threads on Fashion-MNIST the gather took 30-34 us a step with copies against 17-18
     * without, and the MLP b64 epoch was 2.8% faster without (145.7 -> 142.4 ms). */
    ds->batch_copies = m->n_mods && m->mods[0]->kind == MOD_LINEAR && !c->shuffle;
    CHECK(st->steps <= nb, "resuming at batch %llu of %llu", (unsigned long long)st->steps, (unsigned long long)nb);
    if (c->shuffle) {
        struct Rng r;
        rng_seed(&r, c->seed * 1000003u + epoch);
        dataset_shuffle_indices(ds, &r);
    }
    for (uint64_t b = st->steps; b < nb; b++) {
        if (t->comm) {
            int rc = step_shared(t, ds, b, optim_lr_at(c->lr_schedule, c->lr, first + b, total), st);
            if (rc == TRAIN_DIVERGED || rc == TRAIN_READ_ERROR) return rc;
            if (progress) progress(ctx, b + 1, nb, st->loss_sum / (double)st->seen);
            if (rc == TRAIN_INTERRUPTED && b + 1 < nb) {
                epoch_means(st);
                return rc;
            }
            continue;
        }
        struct Batch bt;
        if (dataset_get_batch(ds, b, c->batch_size, &bt)) {
            st->steps = b + 1;
            return TRAIN_READ_ERROR;
        }
        for (uint32_t i = 0; i < m->n_params; i++) t->uses[i] = m->param_nodes[i]->n_consumers;
        struct Node *out, *loss = train_loss(m, &t->g, &bt, &out);
        double l = tensor_at(loss->value, 0);
        if (!isfinite(l)) {
            graph_reset(&t->g);
            st->steps = b + 1, st->bad_loss = l;
            return TRAIN_DIVERGED;
        }
        optim_set_lr(t->opt, optim_lr_at(c->lr_schedule, c->lr, first + b, total));
        backward_and_step(t, loss);
        st->loss_sum += l * (double)bt.rows;
        st->seen += bt.rows;
        if (c->loss == LOSS_CROSS_ENTROPY) st->hits += count_correct(out->value, bt.cls);
        st->steps = b + 1;
        graph_reset(&t->g);
        if (progress) progress(ctx, b + 1, nb, st->loss_sum / (double)st->seen);
        if (t->stop && *t->stop && b + 1 < nb) {
            epoch_means(st);
            return dataset_check(ds) ? TRAIN_READ_ERROR : TRAIN_INTERRUPTED; /* before the caller saves */
        }
    }
    epoch_means(st);
    /* What this epoch read was read whole if the file is whole now (the batches look at
     * its size only now and then: dataset_get_batch); the caller saves next. */
    return !t->comm && dataset_check(ds) ? TRAIN_READ_ERROR : TRAIN_OK;
}

int train_epoch(struct Trainer *t, struct Dataset *ds, uint64_t epoch, uint64_t max_steps,
                epoch_progress_fn progress, void *ctx, struct EpochStats *st)
{
    memset(st, 0, sizeof *st);
    return train_epoch_continue(t, ds, epoch, max_steps, progress, ctx, st);
}

int train_check_data(const struct Dataset *ds, const struct TrainConfig *c, const char *data, const char *labels,
                     char *err, size_t errlen)
{
    if (ds->dim != c->input_dim)
        return err_set(err, errlen, "%s: rows have %llu values but the config's input is %llu", data,
                       (unsigned long long)ds->dim, (unsigned long long)c->input_dim);
    if (ds->y && c->loss == LOSS_MSE && ds->label_dim != c->output_dim)
        return err_set(err, errlen, "%s: rows have %llu targets but the network outputs %llu", labels,
                       (unsigned long long)ds->label_dim, (unsigned long long)c->output_dim);
    return 0;
}

int train_evaluate(struct Trainer *t, struct Dataset *ds, struct EpochStats *st)
{
    struct Model *m = t->model;
    const uint64_t bs = 256;
    int training = m->run.training, rc = TRAIN_OK;
    memset(st, 0, sizeof *st);
    m->run.training = 0;
    for (uint64_t b = 0; b < dataset_num_batches(ds, bs); b++) {
        struct Batch bt;
        if (dataset_get_batch(ds, b, bs, &bt)) {
            rc = TRAIN_READ_ERROR;
            break;
        }
        struct Node *out, *loss = train_loss(m, &t->eval_g, &bt, &out);
        st->loss_sum += tensor_at(loss->value, 0) * (double)bt.rows;
        st->seen += bt.rows;
        if (m->cfg.loss == LOSS_CROSS_ENTROPY) st->hits += count_correct(out->value, bt.cls);
        st->steps++;
        graph_reset(&t->eval_g);
    }
    if (rc == TRAIN_OK && dataset_check(ds)) rc = TRAIN_READ_ERROR; /* the losses came from whole rows */
    m->run.training = training;
    epoch_means(st);
    return rc;
}

/* ---- a whole run ---- */

void train_run_init(struct TrainRun *r, const struct Model *m, int validate, uint64_t n_train, uint64_t n_val)
{
    memset(r, 0, sizeof *r);
    r->validate = validate;
    r->n_train = n_train, r->n_val = n_val;
    r->best_loss = INFINITY;
    if (validate == VAL_NONE) return;
    r->n_best = m->n_named;
    r->best = mem_alloc_zeroed((r->n_best ? r->n_best : 1) * sizeof *r->best);
    for (uint32_t i = 0; i < r->n_best; i++) r->best[i] = tensor_copy(m->named[i].t);
}

void train_run_free(struct TrainRun *r)
{
    for (uint32_t i = 0; i < r->n_best; i++) tensor_free(r->best[i]);
    mem_free(r->best);
    memset(r, 0, sizeof *r);
}

int train_run_observe(struct TrainRun *r, const struct Model *m, uint64_t epoch, double val_loss)
{
    CHECK(r->validate != VAL_NONE && r->n_best == m->n_named, "no validation, or another model");
    if (val_loss < r->best_loss) { /* a NaN loss is never lower */
        r->best_loss = val_loss;
        r->best_epoch = epoch;
        r->since_best = 0;
        for (uint32_t i = 0; i < r->n_best; i++) tensor_copy_into(r->best[i], m->named[i].t);
    } else {
        r->since_best++;
    }
    return train_run_stopped(r, &m->cfg);
}

int train_run_stopped(const struct TrainRun *r, const struct TrainConfig *c)
{
    return r->validate != VAL_NONE && c->patience && r->since_best >= c->patience;
}

void train_run_restore_best(const struct TrainRun *r, struct Model *m)
{
    if (r->validate == VAL_NONE || !r->best_epoch) return;
    CHECK(r->n_best == m->n_named, "%u best tensors for %u", r->n_best, m->n_named);
    for (uint32_t i = 0; i < r->n_best; i++) tensor_copy_into(m->named[i].t, r->best[i]);
}

/* ---- signals ---- */

/* The one global: a handler can reach nothing else. */
static volatile sig_atomic_t caught_signal;

static void on_signal(int sig)
{
    if (caught_signal) { /* the second: at once, as if never caught */
        signal(sig, SIG_DFL);
        raise(sig); /* blocked in the handler: delivered as it returns */
        return;
    }
    caught_signal = sig;
}

static void signal_set(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
}

void train_catch_signals(struct Trainer *t)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    signal_set(&sa.sa_mask);
    sa.sa_flags = SA_RESTART; /* reads and writes carry on; the loop looks at the flag */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    t->stop = &caught_signal;
}

int train_caught_signal(void) { return caught_signal; }

void train_hold_signals(int hold)
{
    sigset_t set;
    signal_set(&set);
    sigprocmask(hold ? SIG_BLOCK : SIG_UNBLOCK, &set, NULL);
}
