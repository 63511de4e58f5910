/* grad_check: central differences in float64 over every element of a parameter. */
#include "gradcheck.h"
#include "utils.h"

#include <math.h>

void fill_uniform(struct Tensor *t, double lo, double hi, uint64_t seed)
{
    struct Rng r;
    rng_seed(&r, seed);
    uint64_t n = tensor_numel(t);
    for (uint64_t i = 0; i < n; i++) {
        double v = lo + (hi - lo) * rng_uniform(&r);
        if (t->dtype == DT_FLOAT32) tensor_f32(t)[i] = (float)v;
        else tensor_f64(t)[i] = v;
    }
}

/* L = sum(out * R) */
static double eval(build_fn build, void *ctx, struct Graph *g, const struct Tensor *R)
{
    graph_reset(g);
    struct Node *out = build(g, ctx);
    double s = 0;
    uint64_t n = tensor_numel(out->value);
    for (uint64_t i = 0; i < n; i++) s += tensor_f64(out->value)[i] * tensor_f64(R)[i];
    return s;
}

double grad_check(build_fn build, void *ctx, struct Node *param, double eps)
{
    CHECK(param->value->dtype == DT_FLOAT64 && param->grad, "grad_check needs a float64 parameter with a gradient");
    struct Graph g;
    graph_init(&g);
    struct Node *out = build(&g, ctx);
    struct Tensor *R = tensor_create(out->value->ndim, out->value->shape, DT_FLOAT64);
    fill_uniform(R, -1, 1, 1234);
    zero_grad(out);
    tensor_fill(param->grad, 0);
    backward_seeded(out, R);
    struct Tensor *analytic = tensor_copy(param->grad);

    double worst = 0, *p = tensor_f64(param->value);
    uint64_t n = tensor_numel(param->value);
    for (uint64_t i = 0; i < n; i++) {
        double keep = p[i];
        p[i] = keep + eps;
        double up = eval(build, ctx, &g, R);
        p[i] = keep - eps;
        double down = eval(build, ctx, &g, R);
        p[i] = keep;
        double num = (up - down) / (2 * eps), ana = tensor_f64(analytic)[i];
        double den = fmax(1e-3, fmax(fabs(num), fabs(ana)));
        double err = fabs(num - ana) / den;
        if (!(err <= worst)) worst = isnan(err) ? INFINITY : err;
    }
    tensor_free(analytic);
    tensor_free(R);
    graph_free(&g);
    return worst;
}

uint32_t *test_classes(const struct Tensor *y, uint32_t *buf)
{
    for (uint64_t i = 0; i < tensor_numel(y); i++) buf[i] = (uint32_t)tensor_at(y, i);
    return buf;
}

struct Node *leaf(uint64_t ndim, const uint64_t *shape, double lo, double hi, uint64_t seed)
{
    struct Tensor *t = tensor_create(ndim, shape, DT_FLOAT64);
    fill_uniform(t, lo, hi, seed);
    return node_from_tensor(t, 1);
}

void leaf_free(struct Node *n)
{
    struct Tensor *t = n->value;
    node_free(n);
    tensor_free(t);
}
