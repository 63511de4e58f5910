/* minidl against PyTorch: outputs, losses and every gradient of tiny MLPs and CNNs
 * (every activation, both losses) compared with numbers PyTorch 1.13 computed in
 * float64 (tests/fixtures/torch_ref.txt, made by scripts/torch_fixture.py); and a net of
 * every layer with state or modes (pooling, batch normalisation, dropout): its forward in
 * inference and in training, one training step's gradients, the running statistics after
 * it, an SGD step, and inference after the step. */
#include "test.h"
#include "gradcheck.h"
#include "activations.h"
#include "losses.h"
#include "optimizers.h"
#include "train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURE "tests/fixtures/torch_ref.txt"
#define MAX_T 80

struct Fixture {
    char name[32], loss[16], arch[256];
    int n;
    char names[MAX_T][48];
    struct Tensor *t[MAX_T];
};

static struct Tensor *fx_get(struct Fixture *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->names[i], name)) return f->t[i];
    test_fail(__FILE__, __LINE__, "fixture %s has no tensor %s", f->name, name);
    return NULL;
}

static void fx_free(struct Fixture *f)
{
    for (int i = 0; i < f->n; i++) tensor_free(f->t[i]);
    f->n = 0;
}

/* Reads the next case; returns 0 at the end of the file. */
static int fx_read(FILE *in, struct Fixture *f)
{
    char line[256];
    memset(f, 0, sizeof *f);
    long pos = ftell(in);
    while (fgets(line, sizeof line, in)) {
        if (!strncmp(line, "case ", 5)) {
            if (f->name[0]) { fseek(in, pos, SEEK_SET); return 1; }
            sscanf(line, "case %31s %15s", f->name, f->loss);
        } else if (!strncmp(line, "arch ", 5)) {
            str_copy(f->arch, line + 5, sizeof f->arch);
        } else if (!strncmp(line, "tensor ", 7) && f->n < MAX_T) {
            int off = 0;
            uint64_t ndim, shape[4] = {0};
            sscanf(line, "tensor %47s %llu%n", f->names[f->n], (unsigned long long *)&ndim, &off);
            char *p = line + 7 + strlen(f->names[f->n]) + 1;
            strtoull(p, &p, 10);
            for (uint64_t d = 0; d < ndim; d++) shape[d] = strtoull(p, &p, 10);
            struct Tensor *t = tensor_create(ndim, shape, DT_FLOAT64);
            for (uint64_t i = 0; i < tensor_numel(t); i++)
                if (fscanf(in, "%lf", &tensor_f64(t)[i]) != 1) { tensor_free(t); return 0; }
            f->t[f->n++] = t;
        }
        pos = ftell(in);
    }
    return f->name[0] != 0;
}

/* Does the fixture hold a tensor of that name? (fx_get fails the test when not.) */
static struct Tensor *fx_find(struct Fixture *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->names[i], name)) return f->t[i];
    return NULL;
}

/* The module of one token of the "arch" line: a table row's prefix, then its arguments
 * after colons (conv2d:STRIDE:PADDING, maxpool2d:K:STRIDE, dropout:P); sizes come from
 * the fixture's weights. Returns NULL for an unknown token. */
static struct Module *module_of_token(struct Fixture *f, const char *tok, uint32_t *count, struct Rng *rng)
{
    char prefix[24], key[96];
    size_t len = strcspn(tok, ":");
    snprintf(prefix, sizeof prefix, "%.*s", (int)len, tok);
    uint32_t kind = 0;
    while (kind < MOD_COUNT && strcmp(layer_type(kind)->prefix, prefix)) kind++;
    if (kind == MOD_COUNT) return NULL;
    struct LayerSpec l = {.kind = kind};
    snprintf(key, sizeof key, "%s%u.weight", prefix, count[kind] + 1);
    struct Tensor *w = layer_type(kind)->n_params ? fx_get(f, key) : NULL;
    if (layer_type(kind)->n_params && !w) return NULL;
    unsigned long long a = 1, b = 0;
    double p = 0;
    if (kind == MOD_LINEAR) l.args.linear.in = w->shape[1], l.args.linear.out = w->shape[0];
    else if (kind == MOD_CONV2D) {
        sscanf(tok, "conv2d:%llu:%llu", &a, &b);
        uint64_t v[6] = {w->shape[1], w->shape[0], w->shape[2], w->shape[3], a, b};
        memcpy(l.args.v, v, sizeof v);
    } else if (kind == MOD_MAXPOOL2D || kind == MOD_AVGPOOL2D) {
        sscanf(tok + len, ":%llu:%llu", &a, &b);
        l.args.pool.k = a, l.args.pool.stride = b;
    } else if (kind == MOD_DROPOUT) {
        sscanf(tok, "dropout:%lf", &p);
        l.args.dropout.p = p;
    } else if (kind == MOD_BATCHNORM1D || kind == MOD_BATCHNORM2D) l.args.batchnorm.n = w->shape[0];
    struct Module *m = module_create(&l, DT_FLOAT64, rng);
    snprintf(m->name, sizeof m->name, "%s%u", prefix, ++count[kind]);
    const struct LayerType *lt = layer_type(kind);
    for (uint32_t j = 0; j < m->n_params; j++) {
        snprintf(key, sizeof key, "%s.%s", m->name, lt->param_names[j]);
        struct Tensor *t = fx_get(f, key);
        if (t) tensor_copy_into(m->params[j], t);
    }
    for (uint32_t j = 0; j < m->n_state; j++) {
        snprintf(key, sizeof key, "%s.%s", m->name, lt->state_names[j]);
        struct Tensor *t = fx_find(f, key);
        if (t) tensor_copy_into(m->state[j], t);
    }
    return m;
}

/* Builds the architecture of the "arch" line with the fixture's parameters and state. */
static uint32_t build_modules(struct Fixture *f, struct Module **mods)
{
    uint32_t n = 0, count[MOD_COUNT] = {0};
    struct Rng rng;
    rng_seed(&rng, 1);
    char arch[256];
    str_copy(arch, f->arch, sizeof arch);
    for (char *tok = strtok(arch, " \n"); tok && n < 16; tok = strtok(NULL, " \n")) {
        struct Module *m = module_of_token(f, tok, count, &rng);
        EXPECT_MSG(m != NULL, "%s: cannot build '%s'", f->name, tok);
        if (m) mods[n++] = m;
    }
    return n;
}

static void expect_close(struct Fixture *f, const char *what, const struct Tensor *got, const char *ref_name)
{
    struct Tensor *ref = fx_get(f, ref_name);
    if (!ref) return;
    EXPECT_MSG(tensor_numel(got) == tensor_numel(ref), "%s %s: %llu elements, PyTorch %llu", f->name, what,
               (unsigned long long)tensor_numel(got), (unsigned long long)tensor_numel(ref));
    if (tensor_numel(got) != tensor_numel(ref)) return;
    double err = test_max_err_f64(got->data, ref->data, tensor_numel(ref), 1e-12, 1e-9);
    EXPECT_MSG(err <= 1, "%s %s differs from PyTorch (%.3g of tolerance)", f->name, what, err);
}

static void check_case(struct Fixture *f)
{
    struct Module *mods[16];
    uint32_t n = build_modules(f, mods);
    int loss_kind = !strcmp(f->loss, "MSE") ? LOSS_MSE : LOSS_CROSS_ENTROPY;
    struct Node *x = node_from_tensor(fx_get(f, "x"), 1);
    struct Graph g;
    graph_init(&g);
    struct Node *out;
    struct Tensor *y = fx_get(f, "y");
    uint32_t *cls = loss_kind == LOSS_CROSS_ENTROPY ? test_classes(y, mem_alloc(tensor_numel(y) * sizeof *cls)) : NULL;
    struct Batch b = {.y = y, .cls = cls};
    struct Node *loss = train_loss_modules(mods, n, graph_attach(&g, x), &b, loss_kind, &out);
    zero_grad(loss);
    backward(loss);
    expect_close(f, "loss", loss->value, "loss");
    /* infer's output: the whole network, final Softmax included */
    struct Node *full = model_forward_modules(mods, n, graph_attach(&g, x), 0);
    expect_close(f, "output", full->value, "out");
    expect_close(f, "grad of x", x->grad, "grad.x");
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < mods[i]->n_params; j++) {
            char key[64];
            snprintf(key, sizeof key, "grad.%s.%s", mods[i]->name, j ? "bias" : "weight");
            expect_close(f, key, mods[i]->param_nodes[j]->grad, key);
        }
    graph_free(&g);
    mem_free(cls);
    node_free(x);
    for (uint32_t i = 0; i < n; i++) module_free(mods[i]);
}

/* Inference in a forward-only graph (BatchNorm folded where it follows a Conv2d or Linear)
 * and in a training graph (not folded): both PyTorch's eval-mode output. */
static void check_inference(struct Fixture *f, struct Module **mods, uint32_t n, struct Node *x, const char *ref)
{
    for (int no_grad = 0; no_grad < 2; no_grad++) {
        struct Graph g;
        graph_init(&g);
        graph_set_no_grad(&g, no_grad);
        struct Node *out = model_forward_modules(mods, n, graph_attach(&g, x), 0);
        expect_close(f, no_grad ? "inference (folded)" : "inference", out->value, ref);
        graph_free(&g);
    }
}

/* The net with modes and state: see the file comment and scripts/torch_fixture.py. */
static void check_modes_case(struct Fixture *f)
{
    struct Module *mods[16];
    uint32_t n = build_modules(f, mods), drop = n;
    struct LayerRun run = {.training = 0};
    for (uint32_t i = 0; i < n; i++) {
        mods[i]->run = &run;
        if (mods[i]->kind == MOD_DROPOUT) drop = i;
    }
    struct Tensor *mask = fx_get(f, "dropout1.mask"), *y = fx_get(f, "y");
    EXPECT_MSG(drop < n && mask, "%s: no dropout layer or mask", f->name);
    if (drop == n || !mask) goto done;
    struct Node *x = node_from_tensor(fx_get(f, "x"), 1);
    check_inference(f, mods, n, x, "out.eval");
    /* training: the layers before the dropout, PyTorch's mask, the layers after it */
    run.training = 1;
    struct Graph g;
    graph_init(&g);
    uint32_t *cls = test_classes(y, mem_alloc(tensor_numel(y) * sizeof *cls));
    struct Node *h = model_forward_modules(mods, drop, graph_attach(&g, x), 0);
    h = model_forward_modules(mods + drop + 1, n - drop - 1, nn_dropout_masked(h, mask), 1);
    struct Node *loss = loss_cross_entropy(h, cls);
    zero_grad(loss);
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < mods[i]->n_params; j++) tensor_fill(mods[i]->param_nodes[j]->grad, 0);
    backward(loss);
    expect_close(f, "training output", h->value, "out");
    expect_close(f, "loss", loss->value, "loss");
    expect_close(f, "grad of x", x->grad, "grad.x");
    struct Tensor *ps[32], *gs[32];
    uint32_t np = 0;
    char key[80];
    for (uint32_t i = 0; i < n; i++) {
        const struct LayerType *lt = layer_type(mods[i]->kind);
        for (uint32_t j = 0; j < mods[i]->n_params && np < 32; j++, np++) {
            snprintf(key, sizeof key, "grad.%s.%s", mods[i]->name, lt->param_names[j]);
            expect_close(f, key, mods[i]->param_nodes[j]->grad, key);
            ps[np] = mods[i]->params[j], gs[np] = mods[i]->param_nodes[j]->grad;
        }
        for (uint32_t j = 0; j < mods[i]->n_state; j++) {
            snprintf(key, sizeof key, "after.%s.%s", mods[i]->name, lt->state_names[j]);
            expect_close(f, key, mods[i]->state[j], key);
        }
    }
    /* one SGD step moves the parameters, not the running statistics */
    struct Optimizer *opt = optim_sgd_create(ps, gs, np, 0.1, 0);
    opt->step(opt);
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < mods[i]->n_params; j++) {
            snprintf(key, sizeof key, "step.%s.%s", mods[i]->name, layer_type(mods[i]->kind)->param_names[j]);
            expect_close(f, key, mods[i]->params[j], key);
        }
    optim_free(opt);
    run.training = 0;
    check_inference(f, mods, n, x, "out.eval.step");
    graph_free(&g);
    mem_free(cls);
    node_free(x);
done:
    for (uint32_t i = 0; i < n; i++) module_free(mods[i]);
}

TEST_ISA(matches_pytorch_fixture)
{
    FILE *in = fopen(FIXTURE, "r");
    EXPECT_MSG(in != NULL, "cannot open %s (run the tests from the repository root)", FIXTURE);
    if (!in) return;
    struct Fixture f;
    int cases = 0;
    while (fx_read(in, &f)) {
        if (fx_find(&f, "out.eval")) check_modes_case(&f);
        else check_case(&f);
        fx_free(&f);
        cases++;
    }
    fclose(in);
    EXPECT_EQ_INT(cases, 5);
}
