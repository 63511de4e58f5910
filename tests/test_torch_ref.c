/* minidl against PyTorch: outputs, losses and every gradient of tiny MLPs and CNNs
 * (every activation, both losses) compared with numbers PyTorch 1.13 computed in
 * float64 (tests/fixtures/torch_ref.txt, made by scripts/torch_fixture.py). */
#include "test.h"
#include "gradcheck.h"
#include "activations.h"
#include "losses.h"
#include "train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURE "tests/fixtures/torch_ref.txt"
#define MAX_T 32

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

/* Builds the architecture of the "arch" line with the fixture's parameters. */
static uint32_t build_modules(struct Fixture *f, struct Module **mods)
{
    uint32_t n = 0;
    int n_lin = 0, n_conv = 0;
    struct Rng rng;
    rng_seed(&rng, 1);
    char arch[256];
    str_copy(arch, f->arch, sizeof arch);
    for (char *tok = strtok(arch, " \n"); tok; tok = strtok(NULL, " \n")) {
        char key[48];
        struct Module *m;
        if (!strcmp(tok, "linear")) {
            snprintf(key, sizeof key, "linear%d.weight", ++n_lin);
            struct Tensor *w = fx_get(f, key);
            m = nn_linear_create(w->shape[1], w->shape[0], DT_FLOAT64, &rng);
            snprintf(m->name, sizeof m->name, "linear%d", n_lin);
        } else if (!strncmp(tok, "conv2d", 6)) {
            unsigned long long stride = 1, pad = 0;
            sscanf(tok, "conv2d:%llu:%llu", &stride, &pad);
            snprintf(key, sizeof key, "conv2d%d.weight", ++n_conv);
            struct Tensor *w = fx_get(f, key);
            m = nn_conv2d_create(w->shape[1], w->shape[0], w->shape[2], w->shape[3], stride, pad, DT_FLOAT64, &rng);
            snprintf(m->name, sizeof m->name, "conv2d%d", n_conv);
        } else {
            uint32_t kind = !strcmp(tok, "relu") ? MOD_RELU : !strcmp(tok, "sigmoid") ? MOD_SIGMOID
                          : !strcmp(tok, "tanh") ? MOD_TANH : MOD_SOFTMAX;
            mods[n++] = act_module_create(kind);
            continue;
        }
        for (int j = 0; j < 2; j++) {
            snprintf(key, sizeof key, "%s.%s", m->name, j ? "bias" : "weight");
            tensor_copy_into(m->params[j], fx_get(f, key));
        }
        mods[n++] = m;
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

TEST_ISA(matches_pytorch_fixture)
{
    FILE *in = fopen(FIXTURE, "r");
    EXPECT_MSG(in != NULL, "cannot open %s (run the tests from the repository root)", FIXTURE);
    if (!in) return;
    struct Fixture f;
    int cases = 0;
    while (fx_read(in, &f)) {
        check_case(&f);
        fx_free(&f);
        cases++;
    }
    fclose(in);
    EXPECT_EQ_INT(cases, 4);
}
