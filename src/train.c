/* train: the step, the epoch and the optimizer of a config. */
#include "train.h"
#include "losses.h"
#include "math_kernels.h"

#include <math.h>
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

void train_init(struct Trainer *t, struct Model *m)
{
    memset(t, 0, sizeof *t);
    t->model = m;
    t->opt = train_optimizer_create(m);
    graph_init(&t->g);
}

void train_free(struct Trainer *t)
{
    graph_free(&t->g);
    optim_free(t->opt);
    memset(t, 0, sizeof *t);
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
    return train_loss_modules(m->mods, m->n_mods, model_input(g, m, b->x), b, m->cfg.loss, out);
}

/* Rows whose largest output is at the labelled class. */
static uint64_t count_correct(const struct Tensor *out, const uint32_t *cls)
{
    uint64_t rows = out->shape[0], C = out->shape[1], hits = 0;
    for (uint64_t r = 0; r < rows; r++) hits += tensor_row_argmax(out, r, C) == cls[r];
    return hits;
}

int train_epoch(struct Trainer *t, struct Dataset *ds, uint64_t epoch, uint64_t max_steps,
                epoch_progress_fn progress, void *ctx, struct EpochStats *st)
{
    struct Model *m = t->model;
    const struct TrainConfig *c = &m->cfg;
    uint64_t nb = dataset_num_batches(ds, c->batch_size), hits = 0, seen = 0;
    uint64_t first = (epoch - 1) * nb, total = c->epochs * nb; /* the schedule's steps */
    if (max_steps && max_steps < nb) nb = max_steps;
    double sum = 0;
    memset(st, 0, sizeof *st);
    if (c->shuffle) {
        struct Rng r;
        rng_seed(&r, c->seed * 1000003u + epoch);
        dataset_shuffle_indices(ds, &r);
    }
    for (uint64_t b = 0; b < nb; b++) {
        struct Batch bt;
        dataset_get_batch(ds, b, c->batch_size, &bt);
        struct Node *out, *loss = train_loss(m, &t->g, &bt, &out);
        double l = tensor_at(loss->value, 0);
        if (!isfinite(l)) {
            graph_reset(&t->g);
            st->steps = b + 1, st->bad_loss = l;
            return -1;
        }
        model_zero_grad(m);
        backward(loss);
        optim_set_lr(t->opt, optim_lr_at(c->lr_schedule, c->lr, first + b, total));
        t->opt->step(t->opt);
        sum += l * (double)bt.rows;
        seen += bt.rows;
        if (c->loss == LOSS_CROSS_ENTROPY) hits += count_correct(out->value, bt.cls);
        graph_reset(&t->g);
        if (progress) progress(ctx, b + 1, nb, sum / (double)seen);
    }
    st->steps = nb;
    st->loss = seen ? sum / (double)seen : 0;
    st->accuracy = seen ? (double)hits / (double)seen : 0;
    return 0;
}
