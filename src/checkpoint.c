/* checkpoint: a training run's whole state in a DLASM1 file (include/checkpoint.h). */
#include "checkpoint.h"
#include "mem.h"
#include "utils.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define CK_NAME 128
#define TWO32 4294967296.0

static const char *const validation_names[] = {"has no validation", "holds out val_split", "validates on --val files"};

/* A uint64 as two exact float64 values: its high and low 32 bits. */
static void pair_put(double *row, uint64_t v)
{
    row[0] = (double)(v >> 32);
    row[1] = (double)(v & 0xffffffffu);
}

static int pair_get(const double *row, uint64_t *v)
{
    for (int i = 0; i < 2; i++)
        if (!(row[i] >= 0 && row[i] < TWO32 && row[i] == floor(row[i]))) return -1;
    *v = (uint64_t)row[0] << 32 | (uint64_t)row[1];
    return 0;
}

static struct Tensor *pairs_tensor(const uint64_t *v, uint64_t n)
{
    struct Tensor *t = tensor_create(2, (uint64_t[]){n, 2}, DT_FLOAT64);
    for (uint64_t i = 0; i < n; i++) pair_put(tensor_f64(t) + 2 * i, v[i]);
    return t;
}

/* The name of parameter i in the model file (linear1.weight). */
static const char *param_name(const struct Model *m, uint32_t i)
{
    for (uint32_t k = 0; k < m->n_named; k++)
        if (m->named[k].t == m->param_nodes[i]->value) return m->named[k].name;
    panic("parameter %u has no name", i);
}

/* The tensors of a checkpoint beyond the model's: names, and the tensors made for them. */
struct CkList {
    struct NamedTensor *ts;
    char (*names)[CK_NAME];
    struct Tensor **owned;
    uint32_t n, n_owned;
};

static void list_add(struct CkList *l, const char *name, struct Tensor *t, int owned)
{
    snprintf(l->names[l->n], CK_NAME, "%s", name);
    l->ts[l->n] = (struct NamedTensor){l->names[l->n], t};
    l->n++;
    if (owned) l->owned[l->n_owned++] = t;
}

static void list_free(struct CkList *l)
{
    for (uint32_t i = 0; i < l->n_owned; i++) tensor_free(l->owned[i]);
    mem_free(l->ts);
    mem_free(l->names);
    mem_free(l->owned);
}

static void counters_of(const struct Trainer *t, const struct TrainRun *r, uint64_t *c)
{
    const struct TrainConfig *cfg = &t->model->cfg;
    memset(c, 0, CK_COUNT * sizeof *c);
    c[CK_VERSION] = CHECKPOINT_VERSION;
    c[CK_EPOCHS] = cfg->epochs;
    c[CK_SEED] = cfg->seed;
    c[CK_EPOCHS_DONE] = r->epochs_done;
    c[CK_BATCHES_DONE] = r->partial.steps;
    c[CK_SEEN] = r->partial.seen;
    c[CK_HITS] = r->partial.hits;
    c[CK_OPT_STEPS] = optim_steps(t->opt);
    c[CK_VALIDATE] = (uint64_t)r->validate;
    c[CK_N_TRAIN] = r->n_train;
    c[CK_N_VAL] = r->n_val;
    c[CK_BEST_EPOCH] = r->best_epoch;
    c[CK_SINCE_BEST] = r->since_best;
}

int checkpoint_save(const char *path, struct Trainer *t, const struct TrainRun *r, const char *config_text,
                    char *err, size_t errlen)
{
    struct Model *m = t->model;
    uint32_t nb = optim_buffers(t->opt), cap = m->n_named + 3 + m->n_params * nb + r->n_best;
    struct CkList l = {mem_alloc(cap * sizeof *l.ts), mem_alloc(cap * sizeof *l.names),
                       mem_alloc(cap * sizeof *l.owned), 0, 0};
    for (uint32_t k = 0; k < m->n_named; k++) list_add(&l, m->named[k].name, m->named[k].t, 0);
    uint64_t c[CK_COUNT];
    counters_of(t, r, c);
    list_add(&l, "train.counters", pairs_tensor(c, CK_COUNT), 1);
    list_add(&l, "train.rng", pairs_tensor(m->run.rng.s, 4), 1);
    struct Tensor *reals = tensor_create(1, (uint64_t[]){2}, DT_FLOAT64);
    tensor_f64(reals)[0] = r->partial.loss_sum;
    tensor_f64(reals)[1] = r->best_epoch ? r->best_loss : 0; /* finite: infinite before the first best */
    list_add(&l, "train.reals", reals, 1);
    char name[CK_NAME];
    for (uint32_t i = 0; i < m->n_params; i++)
        for (uint32_t w = 0; w < nb; w++) {
            snprintf(name, sizeof name, "train.opt.%s.%s", w ? "v" : "m", param_name(m, i));
            list_add(&l, name, optim_buffer(t->opt, i, w), 1);
        }
    for (uint32_t k = 0; k < r->n_best; k++) {
        snprintf(name, sizeof name, "train.best.%s", m->named[k].name);
        list_add(&l, name, r->best[k], 0);
    }
    train_hold_signals(1);
    int rc = model_save(path, l.ts, l.n, config_text, err, errlen);
    train_hold_signals(0);
    list_free(&l);
    return rc;
}

/* ---- resuming ---- */

static int read_counters(struct Checkpoint *ck, char *err, size_t errlen)
{
    const struct Tensor *c = model_file_find(&ck->mf, "train.counters");
    if (!c)
        return err_set(err, errlen, "%s: not a checkpoint (no training state; a model file?): checkpoints come from "
                       "--checkpoint, --stop-after or an interrupted run", ck->path);
    if (c->dtype != DT_FLOAT64 || c->ndim != 2 || c->shape[1] != 2 || c->shape[0] < 1)
        return err_set(err, errlen, "%s: tensor 'train.counters' is not float64 rows of 2", ck->path);
    uint64_t version;
    if (pair_get(tensor_f64(c), &version) || version != CHECKPOINT_VERSION)
        return err_set(err, errlen, "%s: checkpoint version %.17g; this train reads version %d", ck->path,
                       tensor_f64(c)[0] * TWO32 + tensor_f64(c)[1], CHECKPOINT_VERSION);
    if (c->shape[0] != CK_COUNT)
        return err_set(err, errlen, "%s: tensor 'train.counters' has %llu rows, expected %d", ck->path,
                       (unsigned long long)c->shape[0], CK_COUNT);
    for (uint32_t i = 0; i < CK_COUNT; i++)
        if (pair_get(tensor_f64(c) + 2 * i, &ck->counters[i]))
            return err_set(err, errlen, "%s: tensor 'train.counters' row %u is not a pair of 32-bit halves", ck->path, i);
    if (ck->counters[CK_VALIDATE] > VAL_FILES)
        return err_set(err, errlen, "%s: unknown validation kind %llu", ck->path,
                       (unsigned long long)ck->counters[CK_VALIDATE]);
    return 0;
}

int checkpoint_open(struct Checkpoint *ck, const char *path, const struct TrainConfig *cfg, char *err, size_t errlen)
{
    memset(ck, 0, sizeof *ck);
    ck->path = path;
    if (model_load(path, &ck->mf, err, errlen)) return -1;
    if (read_counters(ck, err, errlen)) return -1;
    if (!ck->mf.config_text) return err_set(err, errlen, "%s: the checkpoint has no config trailer", path);
    struct TrainConfig saved;
    char name[4200], what[512];
    snprintf(name, sizeof name, "%s (embedded config)", path);
    if (config_parse_text(ck->mf.config_text, ck->mf.config_len, name, &saved, err, errlen)) return -1;
    saved.seed = ck->counters[CK_SEED];
    saved.epochs = ck->counters[CK_EPOCHS];
    if (cfg->lr_schedule == LR_CONSTANT && saved.lr_schedule == LR_CONSTANT) saved.epochs = cfg->epochs;
    if (saved.epochs != cfg->epochs && saved.lr_schedule == cfg->lr_schedule)
        return err_set(err, errlen, "%s: the checkpoint's run has %llu epochs, this one %llu: epochs cannot change "
                       "under lr_schedule=%s, whose rates span all the run's steps (give -e %llu)", path,
                       (unsigned long long)saved.epochs, (unsigned long long)cfg->epochs,
                       cfg->lr_schedule == LR_COSINE ? "cosine" : "?", (unsigned long long)saved.epochs);
    if (config_diff(&saved, cfg, what, sizeof what))
        return err_set(err, errlen, "%s: the checkpoint comes from another config: %s (the checkpoint's against "
                       "this run's, -s and -e included)", path, what);
    return 0;
}

/* The statistics of these training data must be the checkpoint's (else other data). */
static int check_norm(struct Checkpoint *ck, const struct Model *m, char *err, size_t errlen)
{
    const struct Tensor *mine[2] = {m->shift, m->scale};
    const char *names[2] = {"input.shift", "input.scale"};
    for (int i = 0; i < 2 && mine[i]; i++) {
        const struct Tensor *f = model_file_find(&ck->mf, names[i]);
        if (f && f->dtype == mine[i]->dtype && tensor_same_shape(f, mine[i]) &&
            memcmp(f->data, mine[i]->data, tensor_numel(f) * dtype_size(f->dtype)))
            return err_set(err, errlen, "%s: these training data have other normalisation statistics (%s) than "
                           "the checkpoint's run: other data", ck->path, names[i]);
    }
    return 0;
}

static int check_data(struct Checkpoint *ck, const struct Trainer *t, const struct TrainRun *r, char *err,
                      size_t errlen)
{
    const uint64_t *c = ck->counters;
    if (c[CK_VALIDATE] != (uint64_t)r->validate)
        return err_set(err, errlen, "%s: the checkpoint's run %s, this one %s", ck->path, validation_names[c[CK_VALIDATE]],
                       validation_names[r->validate]);
    if (c[CK_N_TRAIN] != r->n_train || c[CK_N_VAL] != r->n_val)
        return err_set(err, errlen, "%s: the checkpoint's run trained on %llu samples and validated on %llu; these "
                       "data give %llu and %llu", ck->path, (unsigned long long)c[CK_N_TRAIN],
                       (unsigned long long)c[CK_N_VAL], (unsigned long long)r->n_train, (unsigned long long)r->n_val);
    uint64_t nb = (r->n_train + t->model->cfg.batch_size - 1) / t->model->cfg.batch_size;
    if (c[CK_BATCHES_DONE] >= nb || c[CK_SEEN] > r->n_train || c[CK_HITS] > c[CK_SEEN])
        return err_set(err, errlen, "%s: batch %llu of an epoch of %llu: a damaged checkpoint", ck->path,
                       (unsigned long long)c[CK_BATCHES_DONE], (unsigned long long)nb);
    return check_norm(ck, t->model, err, errlen);
}

/* The optimizer's buffers, from train.opt.m.NAME and train.opt.v.NAME. */
static int restore_optimizer(struct Checkpoint *ck, struct Trainer *t, char *err, size_t errlen)
{
    const struct Model *m = t->model;
    uint32_t nb = optim_buffers(t->opt);
    int rc = 0;
    for (uint32_t i = 0; i < m->n_params && !rc; i++)
        for (uint32_t w = 0; w < nb && !rc; w++) {
            char name[CK_NAME];
            snprintf(name, sizeof name, "train.opt.%s.%s", w ? "v" : "m", param_name(m, i));
            struct NamedTensor nt = {name, optim_buffer(t->opt, i, w)};
            rc = model_assign(&ck->mf, &nt, 1, ck->path, err, errlen);
            tensor_free(nt.t);
        }
    optim_set_steps(t->opt, ck->counters[CK_OPT_STEPS]);
    return rc;
}

static int restore_best(struct Checkpoint *ck, const struct Model *m, struct TrainRun *r, char *err, size_t errlen)
{
    int rc = 0;
    for (uint32_t k = 0; k < r->n_best && !rc; k++) {
        char name[CK_NAME];
        snprintf(name, sizeof name, "train.best.%s", m->named[k].name);
        struct NamedTensor nt = {name, r->best[k]};
        rc = model_assign(&ck->mf, &nt, 1, ck->path, err, errlen);
    }
    return rc;
}

int checkpoint_restore(struct Checkpoint *ck, struct Trainer *t, struct TrainRun *r, char *err, size_t errlen)
{
    struct Model *m = t->model;
    const uint64_t *c = ck->counters;
    if (check_data(ck, t, r, err, errlen)) return -1;
    if (model_assign(&ck->mf, m->named, m->n_named, ck->path, err, errlen)) return -1;
    struct Tensor *rng = tensor_create(2, (uint64_t[]){4, 2}, DT_FLOAT64);
    struct Tensor *reals = tensor_create(1, (uint64_t[]){2}, DT_FLOAT64);
    struct NamedTensor nt[2] = {{"train.rng", rng}, {"train.reals", reals}};
    int rc = model_assign(&ck->mf, nt, 2, ck->path, err, errlen);
    for (int i = 0; i < 4 && !rc; i++)
        if (pair_get(tensor_f64(rng) + 2 * i, &m->run.rng.s[i]))
            rc = err_set(err, errlen, "%s: tensor 'train.rng' row %d is not a pair of 32-bit halves", ck->path, i);
    if (!rc) rc = restore_optimizer(ck, t, err, errlen);
    if (!rc) rc = restore_best(ck, m, r, err, errlen);
    if (!rc) {
        r->epochs_done = c[CK_EPOCHS_DONE];
        memset(&r->partial, 0, sizeof r->partial);
        r->partial.steps = c[CK_BATCHES_DONE];
        r->partial.seen = c[CK_SEEN];
        r->partial.hits = c[CK_HITS];
        r->partial.loss_sum = tensor_f64(reals)[0];
        r->best_loss = c[CK_BEST_EPOCH] ? tensor_f64(reals)[1] : INFINITY;
        r->best_epoch = c[CK_BEST_EPOCH];
        r->since_best = c[CK_SINCE_BEST];
    }
    tensor_free(rng);
    tensor_free(reals);
    return rc ? -1 : 0;
}

void checkpoint_close(struct Checkpoint *ck)
{
    model_file_free(&ck->mf);
    memset(ck, 0, sizeof *ck);
}
