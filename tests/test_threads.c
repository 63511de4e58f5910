/* The worker pool, and the rule that results are the same bits on any thread count:
 * every parallel op against its one-thread result at 2, 3, 4 and 7 threads. */
#include "test.h"
#include "gradcheck.h"
#include "math_kernels.h"
#include "mem.h"
#include "nn_layers.h"
#include "threads.h"
#include "config_parser.h"
#include "dataset.h"
#include "utils.h"
#include "kernels/dispatch.h"
#include "kernels/ew.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int counts[] = {2, 3, 4, 7};
#define N_COUNTS (sizeof counts / sizeof *counts)

struct Tally { atomic_int hits[1000]; atomic_int bad_worker; int nested; };

static void nested_task(void *ctx, size_t task, int worker)
{
    struct Tally *t = ctx;
    (void)worker;
    atomic_fetch_add(&t->hits[500 + task], 1);
}

static void count_task(void *ctx, size_t task, int worker)
{
    struct Tally *t = ctx;
    if (worker < 0 || worker >= threads_count()) atomic_fetch_add(&t->bad_worker, 1);
    atomic_fetch_add(&t->hits[task], 1);
    if (t->nested && task == 3) par_run(5, nested_task, t); /* runs on this thread */
}

TEST(par_run_runs_every_task_once)
{
    for (size_t c = 0; c < N_COUNTS; c++) {
        threads_set(counts[c]);
        EXPECT_EQ_INT(threads_count(), counts[c]);
        for (int rep = 0; rep < 50; rep++) {
            static struct Tally t;
            memset(&t, 0, sizeof t);
            t.nested = rep == 7;
            size_t n = (size_t)(rep * 37 % 300) + 1;
            par_run(n, count_task, &t);
            for (size_t i = 0; i < n; i++) EXPECT_EQ_INT(atomic_load(&t.hits[i]), 1);
            EXPECT_EQ_INT(atomic_load(&t.hits[n]), 0);
            EXPECT_EQ_INT(atomic_load(&t.bad_worker), 0);
            for (size_t i = 0; t.nested && i < 5; i++) EXPECT_EQ_INT(atomic_load(&t.hits[500 + i]), 1);
        }
    }
    threads_set(1);
}

/* par_scratch: each task fills its worker's buffer with its own number, spins a little
 * and checks the buffer still holds it (another worker writing there would show); a
 * nested par_run's tasks get the outer task's worker, so they may use its buffer too. */
struct ScratchJob { size_t bytes; atomic_int bad, nested_bad; };

static int scratch_fill_check(size_t bytes, int worker, uint32_t tag)
{
    uint32_t *p = par_scratch(worker, bytes);
    size_t n = bytes / sizeof *p;
    for (size_t i = 0; i < n; i++) p[i] = tag + (uint32_t)i;
    volatile uint32_t sink = 0;
    for (int k = 0; k < 2000; k++) sink += (uint32_t)k;
    int bad = 0;
    for (size_t i = 0; i < n; i++) bad |= p[i] != tag + (uint32_t)i;
    return bad;
}

static void scratch_nested_task(void *ctx, size_t task, int worker)
{
    struct ScratchJob *j = ctx;
    if (scratch_fill_check(j->bytes, worker, 0x40000000u + (uint32_t)task * 7919u)) atomic_fetch_add(&j->nested_bad, 1);
}

static void scratch_task(void *ctx, size_t task, int worker)
{
    struct ScratchJob *j = ctx;
    if (scratch_fill_check(j->bytes + task % 3 * 4096, worker, (uint32_t)task * 104729u))
        atomic_fetch_add(&j->bad, 1);
    if (task % 10 == 3) par_run(3, scratch_nested_task, j); /* runs on this thread */
}

/* par_share_at: thread k's share of n items in tasks of grain items starts where
 * par_run starts worker k's tasks (task * grain, the share n_tasks * k / threads), at
 * 0 for the first, n for the end, never past n. */
TEST(par_share_at_follows_par_runs_shares)
{
    static const size_t cases[][2] = {{64, 4}, {64, 1}, {10, 3}, {3, 4}, {1000, 7}, {0, 5}};
    int saved = threads_count();
    for (int nt = 1; nt <= 7; nt++) {
        threads_set(nt);
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            size_t n = cases[c][0], g = cases[c][1], tasks = (n + g - 1) / g;
            EXPECT_EQ_INT(par_share_at(n, g, 0), 0);
            EXPECT_EQ_INT(par_share_at(n, g, (size_t)nt), n);
            for (int k = 1; k < nt; k++) {
                size_t at = tasks * (size_t)k / (size_t)nt * g;
                EXPECT_EQ_INT(par_share_at(n, g, (size_t)k), at < n ? at : n);
            }
        }
    }
    threads_set(saved);
}

#ifdef MINIDL_PROFILE
/* A one-task job's task, which the caller runs itself, running a job of its own. */
static void nesting_task(void *ctx, size_t task, int worker)
{
    (void)task, (void)worker;
    par_run(8, count_task, ctx);
}

/* Whether the bytes of p[0, n) are all 0xA5. */
static int untouched(const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (((const unsigned char *)p)[i] != 0xA5) return 0;
    return 1;
}

/* The profile build's recorder (make test-profile): each par_run from outside a task,
 * in order, and each of its tasks once, inside its job's times; a nested run neither a
 * job nor tasks of its own, whichever thread runs it; nothing past the caller's caps. */
TEST(par_profile_records_each_job_and_its_tasks)
{
    for (int nt = 1; nt <= 3; nt += 2) {
        threads_set(nt);
        static struct Tally t;
        memset(&t, 0, sizeof t);
        t.nested = 1; /* task 3 runs 5 tasks of its own */
        struct ParJobRecord jobs[4];
        struct ParTaskRecord tasks[40];
        memset(jobs, 0xA5, sizeof jobs);
        memset(tasks, 0xA5, sizeof tasks);
        par_profile_start(jobs, 3, tasks, 32);
        par_run(9, count_task, &t);
        EXPECT_EQ_INT(par_profile_jobs(), 1);
        t.nested = 0;
        par_run(1, count_task, &t);
        par_run(1, nesting_task, &t); /* its 8 tasks go to the pool, yet belong to its one task */
        size_t n = par_profile_stop();
        par_run(4, count_task, &t); /* after the stop: not recorded */
        EXPECT_EQ_INT(par_profile_jobs(), 3);
        EXPECT_EQ_INT(n, 11);
        EXPECT(jobs[0].fn == count_task && jobs[1].fn == count_task && jobs[2].fn == nesting_task);
        EXPECT_EQ_INT(jobs[0].n_tasks, 9);
        EXPECT_EQ_INT(jobs[1].n_tasks, 1);
        EXPECT_EQ_INT(jobs[2].n_tasks, 1);
        for (int j = 0; j < 3; j++) EXPECT(jobs[j].t0 <= jobs[j].t1 && (j == 0 || jobs[j - 1].t1 <= jobs[j].t0));
        int seen[3][9] = {{0}};
        for (size_t i = 0; i < n && i < 32; i++) {
            const struct ParTaskRecord *r = &tasks[i];
            EXPECT_MSG(r->job < 3 && r->task < jobs[r->job].n_tasks && r->worker >= 0 && r->worker < nt,
                       "%d threads: task record %zu is job %zu task %zu worker %d", nt, i, r->job, r->task,
                       r->worker);
            if (r->job >= 3 || r->task >= 9) continue;
            seen[r->job][r->task]++;
            EXPECT(jobs[r->job].t0 <= r->t0 && r->t0 <= r->t1 && r->t1 <= jobs[r->job].t1);
        }
        for (int k = 0; k < 9; k++) EXPECT_EQ_INT(seen[0][k], 1);
        EXPECT_EQ_INT(seen[1][0], 1);
        EXPECT_EQ_INT(seen[2][0], 1);
        EXPECT(untouched(jobs + 3, sizeof jobs[3]) && untouched(tasks + 11, 29 * sizeof *tasks));
        /* full arrays: the first jobs kept, and only their tasks; the task count capped */
        memset(jobs, 0xA5, sizeof jobs);
        memset(tasks, 0xA5, sizeof tasks);
        par_profile_start(jobs, 1, tasks, 32);
        par_run(9, count_task, &t);
        par_run(7, count_task, &t);
        EXPECT_EQ_INT(par_profile_stop(), 9);
        EXPECT_EQ_INT(par_profile_jobs(), 1);
        for (int i = 0; i < 9; i++) EXPECT_EQ_INT(tasks[i].job, 0);
        EXPECT(untouched(jobs + 1, 3 * sizeof *jobs) && untouched(tasks + 9, 31 * sizeof *tasks));
        memset(tasks, 0xA5, sizeof tasks);
        par_profile_start(jobs, 3, tasks, 4);
        par_run(9, count_task, &t);
        EXPECT_EQ_INT(par_profile_stop(), 4);
        EXPECT(untouched(tasks + 4, 36 * sizeof *tasks));
    }
    threads_set(1);
}
#endif

TEST(par_scratch_is_each_workers_own)
{
    for (size_t c = 0; c <= N_COUNTS; c++) {
        threads_set(c ? counts[c - 1] : 1);
        for (size_t bytes = 64; bytes <= (size_t)1 << 20; bytes *= 16) {
            struct ScratchJob j = {.bytes = bytes};
            par_run(200, scratch_task, &j);
            EXPECT_MSG(atomic_load(&j.bad) == 0 && atomic_load(&j.nested_bad) == 0,
                       "%d threads, %zu bytes: %d tasks (%d nested) found their scratch overwritten",
                       threads_count(), bytes, atomic_load(&j.bad), atomic_load(&j.nested_bad));
        }
        /* a buffer is kept while no more is asked for */
        void *a = par_scratch(0, 1000);
        EXPECT(par_scratch(0, 10) == a);
    }
    threads_set(1);
}

TEST(thread_counts_parse_and_default)
{
    EXPECT_EQ_INT(threads_parse("1"), 1);
    EXPECT_EQ_INT(threads_parse("1024"), 1024);
    EXPECT_EQ_INT(threads_parse("0"), -1);
    EXPECT_EQ_INT(threads_parse("1025"), -1);
    EXPECT_EQ_INT(threads_parse("abc"), -1);
    EXPECT_EQ_INT(threads_parse("2x"), -1);
    EXPECT_EQ_INT(threads_parse("-3"), -1);
    EXPECT_EQ_INT(threads_parse(""), -1);
    EXPECT(threads_available() >= 1);
}

/* gemm through every path (dot, small, blocked on either tile and orientation), at
 * shapes large enough to be cut into parts, gives one thread's bits on any count. */
TEST_ISA(gemm_same_bits_on_any_thread_count)
{
    static const size_t shapes[][3] = {
        {64, 128, 784}, {64, 784, 128}, {128, 784, 64}, {64, 10, 128}, {256, 10, 128}, {10, 128, 256},
        {256, 128, 784}, {97, 203, 301}, {8, 3136, 72}, {16, 200, 9}, {301, 64, 1000}, {33, 47, 2000},
    };
    int saved = threads_count();
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int tr = 0; tr < 4; tr++)
            for (uint32_t dt = 0; dt < 2; dt++) {
                size_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                int ta = tr & 1, tb = tr >> 1;
                uint64_t sa[2] = {ta ? K : M, ta ? M : K}, sb[2] = {tb ? N : K, tb ? K : N}, sc[2] = {M, N};
                struct Tensor *A = tensor_create(2, sa, dt), *B = tensor_create(2, sb, dt), *C0 = tensor_create(2, sc, dt);
                fill_uniform(A, -1, 1, 11 + s);
                fill_uniform(B, -1, 1, 12 + s);
                fill_uniform(C0, -1, 1, 13 + s);
                struct Tensor *C1 = tensor_copy(C0), *C = tensor_copy(C0);
                threads_set(1);
                gemm(ta, tb, 0.75, A, B, 0.5, C1);
                for (size_t c = 0; c < N_COUNTS; c++) {
                    threads_set(counts[c]);
                    tensor_copy_into(C, C0);
                    gemm(ta, tb, 0.75, A, B, 0.5, C);
                    EXPECT_MSG(!memcmp(C->data, C1->data, M * N * dtype_size(dt)),
                               "%zux%zux%zu ta %d tb %d %s: %d threads differ from one", M, N, K, ta, tb,
                               dtype_name(dt), counts[c]);
                }
                tensor_free(A), tensor_free(B), tensor_free(C0), tensor_free(C1), tensor_free(C);
            }
    threads_set(saved);
}

/* Conv2d on both paths, with and without the fused ReLU: the same output and gradient
 * bits on any thread count. The direct path's backward runs by chunks of samples
 * (batches of one chunk, of a short last chunk and of many: chunks of 5); the gemm
 * path's copies around its gemms are cut by samples. */
TEST_ISA(conv_same_bits_on_any_thread_count)
{
    static const uint64_t batches[] = {3, 7, 64, 300};
    /* {H, W, stride, pad}: Wo 9 takes the direct path, Wo 2 the gemm path */
    static const uint64_t geoms[2][4] = {{13, 17, 2, 1}, {9, 2, 1, 1}};
    int saved = threads_count();
    for (uint32_t dt = 0; dt < 2; dt++)
        for (size_t gi = 0; gi < 2; gi++)
            for (size_t bi = 0; bi < 4; bi++) {
                const uint64_t *gm = geoms[gi];
                int relu = (int)((gi + bi) % 2);
                uint64_t N = batches[bi], sx[4] = {N, 3, gm[0], gm[1]}, sw[4] = {6, 3, 3, 3}, sb[1] = {6};
                struct Tensor *x = tensor_create(4, sx, dt), *w = tensor_create(4, sw, dt), *b = tensor_create(1, sb, dt);
                fill_uniform(x, -1, 1, 21 + bi), fill_uniform(w, -1, 1, 22 + bi), fill_uniform(b, -1, 1, 23 + bi);
                struct Tensor *ref[4] = {NULL, NULL, NULL, NULL};
                for (size_t c = 0; c <= N_COUNTS; c++) {
                    threads_set(c ? counts[c - 1] : 1);
                    struct Graph g;
                    graph_init(&g);
                    struct Node *wn = node_from_tensor(w, 1), *bn = node_from_tensor(b, 1), *xn = graph_input(&g, x, 1);
                    struct Node *y = relu ? nn_conv2d_relu(xn, wn, bn, gm[2], gm[3]) : nn_conv2d(xn, wn, bn, gm[2], gm[3]);
                    fill_uniform(node_grad(y), -1, 1, 24 + bi);
                    tensor_fill(wn->grad, 0.5), tensor_fill(bn->grad, 0.5); /* accumulated into */
                    y->backward_fn(y);
                    struct Tensor *got[4] = {y->value, wn->grad, bn->grad, xn->grad};
                    for (int k = 0; k < 4; k++) {
                        if (!c) ref[k] = tensor_copy(got[k]);
                        else EXPECT_MSG(!memcmp(got[k]->data, ref[k]->data, tensor_numel(got[k]) * dtype_size(dt)),
                                        "%s path, batch %llu %s%s: %s with %d threads differs from one thread's",
                                        gi ? "gemm" : "direct", (unsigned long long)N, dtype_name(dt),
                                        relu ? ", ReLU" : "", (const char *[]){"output", "dW", "db", "dx"}[k],
                                        counts[c - 1]);
                    }
                    node_free(wn), node_free(bn);
                    graph_free(&g);
                }
                for (int k = 0; k < 4; k++) tensor_free(ref[k]);
                tensor_free(x), tensor_free(w), tensor_free(b);
            }
    threads_set(saved);
}

/* The losses cut by rows (CrossEntropy's rows, MSE's gradient by elements): the same
 * loss and gradient bits on any thread count, and the values of plain double loops,
 * at sizes on both sides of the cut (64 x 10 is cut in the float64 forward only; 300 x 37
 * in float32 cuts the exponentials' runs across rows at other places per thread count). */
#include "losses.h"

TEST(losses_same_bits_on_any_thread_count)
{
    static const uint64_t sizes[][2] = {{5, 3}, {64, 10}, {300, 37}, {1000, 1}};
    int saved = threads_count();
    for (uint32_t dt = 0; dt < 2; dt++)
        for (size_t si = 0; si < 4; si++) {
            uint64_t B = sizes[si][0], C = sizes[si][1], shape[2] = {B, C};
            struct Tensor *x = tensor_create(2, shape, dt), *t = tensor_create(2, shape, dt);
            fill_uniform(x, -4, 4, 31 + si), fill_uniform(t, -1, 1, 32 + si);
            uint32_t *cls = mem_alloc(B * sizeof *cls);
            for (uint64_t r = 0; r < B; r++) cls[r] = (uint32_t)((r * 7 + si) % C);
            /* the values, by plain double loops */
            double ce = 0, mse = 0, tol = dt == DT_FLOAT32 ? 1e-5 : 1e-12, *gce = mem_alloc(B * C * sizeof *gce);
            for (uint64_t r = 0; r < B; r++) {
                double m = -1e300, s = 0;
                for (uint64_t c = 0; c < C; c++) m = fmax(m, tensor_at(x, r * C + c));
                for (uint64_t c = 0; c < C; c++) s += exp(tensor_at(x, r * C + c) - m);
                ce += m + log(s) - tensor_at(x, r * C + cls[r]);
                for (uint64_t c = 0; c < C; c++)
                    gce[r * C + c] = (exp(tensor_at(x, r * C + c) - m) / s - (c == cls[r])) / (double)B;
            }
            for (uint64_t i = 0; i < B * C; i++) mse += pow(tensor_at(x, i) - tensor_at(t, i), 2);
            ce /= (double)B, mse /= (double)(B * C);
            struct Tensor *ref[4] = {NULL, NULL, NULL, NULL};
            for (size_t c = 0; c <= N_COUNTS; c++) {
                threads_set(c ? counts[c - 1] : 1);
                struct Graph g;
                graph_init(&g);
                struct Node *xn = graph_input(&g, x, 1), *tn = graph_input(&g, t, 1);
                struct Node *lc = loss_cross_entropy(xn, cls), *lm = loss_mse(xn, tn);
                tensor_fill(node_grad(lc), 1), tensor_fill(node_grad(lm), 0.5);
                lm->backward_fn(lm); /* xn's gradient: the MSE's, then the CE's added */
                lc->backward_fn(lc);
                struct Tensor *got[4] = {lc->value, lm->value, xn->grad, tn->grad};
                if (!c) {
                    EXPECT_NEAR(tensor_at(lc->value, 0), ce, tol * fabs(ce));
                    EXPECT_NEAR(tensor_at(lm->value, 0), mse, tol * mse);
                    double worst = 0;
                    for (uint64_t i = 0; i < B * C; i++) {
                        double d = tensor_at(x, i) - tensor_at(t, i), gm = 2 * 0.5 * d / (double)(B * C);
                        worst = fmax(worst, fabs(tensor_at(xn->grad, i) - (gm + gce[i])));
                        worst = fmax(worst, fabs(tensor_at(tn->grad, i) + gm));
                    }
                    EXPECT_MSG(worst <= tol / (double)B, "%llu x %llu %s: gradient off by %.3g", (unsigned long long)B,
                               (unsigned long long)C, dtype_name(dt), worst);
                }
                for (int k = 0; k < 4; k++) {
                    if (!c) ref[k] = tensor_copy(got[k]);
                    else EXPECT_MSG(!memcmp(got[k]->data, ref[k]->data, tensor_numel(got[k]) * dtype_size(dt)),
                                    "%llu x %llu %s: %s with %d threads differs from one thread's",
                                    (unsigned long long)B, (unsigned long long)C, dtype_name(dt),
                                    (const char *[]){"CE loss", "MSE loss", "input gradient", "target gradient"}[k],
                                    counts[c - 1]);
                }
                graph_free(&g);
            }
            for (int k = 0; k < 4; k++) tensor_free(ref[k]);
            tensor_free(x), tensor_free(t);
            mem_free(cls), mem_free(gce);
        }
    threads_set(saved);
}

/* Linear's backward: the bias gradient cut by column ranges (each column summed over the
 * rows in order), its input and weight gradients by the gemm: values of plain double
 * loops, and the same bits on any thread count, written whole and added to. */
TEST(linear_backward_same_bits_on_any_thread_count)
{
    static const uint64_t sizes[][3] = {{64, 784, 128}, {67, 33, 300}, {5, 7, 10}, {200, 16, 1000}};
    int saved = threads_count();
    for (uint32_t dt = 0; dt < 2; dt++)
        for (size_t si = 0; si < 4; si++) {
            uint64_t B = sizes[si][0], in = sizes[si][1], out = sizes[si][2];
            uint64_t xs[2] = {B, in}, gs[2] = {B, out};
            struct Tensor *x = tensor_create(2, xs, dt), *seed = tensor_create(2, gs, dt);
            fill_uniform(x, -1, 1, 41 + si), fill_uniform(seed, -1, 1, 42 + si);
            struct Rng r;
            rng_seed(&r, 43 + si);
            struct Module *m = nn_linear_create(in, out, dt, &r);
            double tol = dt == DT_FLOAT32 ? 1e-5 : 1e-12, worst = 0;
            struct Tensor *ref[2] = {NULL, NULL};
            for (size_t c = 0; c <= N_COUNTS; c++) {
                threads_set(c ? counts[c - 1] : 1);
                for (int pass = 0; pass < 2; pass++) { /* written whole, then added to */
                    struct Graph g;
                    graph_init(&g);
                    struct Node *w = m->param_nodes[0], *b = m->param_nodes[1];
                    for (int k = 0; k < 2 && !pass; k++) { /* what a pass leaves out stays NaN */
                        struct Node *p = k ? b : w;
                        if (p->grad) tensor_fill(p->grad, NAN);
                        node_grad_invalidate(p);
                    }
                    struct Node *y = nn_linear(graph_input(&g, x, 0), w, b);
                    backward_seeded(y, seed);
                    struct Tensor *gb = m->param_nodes[1]->grad;
                    if (!c) /* the bias gradient: pass + 1 times the column sums */
                        for (uint64_t j = 0; j < out; j++) {
                            double sum = 0;
                            for (uint64_t i = 0; i < B; i++) sum += tensor_at(seed, i * out + j);
                            worst = fmax(worst, fabs(tensor_at(gb, j) - (pass + 1) * sum) / (double)B);
                        }
                    if (!c && pass) ref[0] = tensor_copy(gb), ref[1] = tensor_copy(m->param_nodes[0]->grad);
                    if (c && pass) {
                        EXPECT_MSG(!memcmp(gb->data, ref[0]->data, out * dtype_size(dt)),
                                   "%llu x %llu -> %llu %s: bias gradient with %d threads differs",
                                   (unsigned long long)B, (unsigned long long)in, (unsigned long long)out,
                                   dtype_name(dt), counts[c - 1]);
                        EXPECT_MSG(!memcmp(m->param_nodes[0]->grad->data, ref[1]->data, out * in * dtype_size(dt)),
                                   "%llu x %llu -> %llu %s: weight gradient with %d threads differs",
                                   (unsigned long long)B, (unsigned long long)in, (unsigned long long)out,
                                   dtype_name(dt), counts[c - 1]);
                    }
                    graph_free(&g);
                }
            }
            EXPECT_MSG(worst <= tol, "%llu x %llu -> %llu %s: bias gradient off by %.3g", (unsigned long long)B,
                       (unsigned long long)in, (unsigned long long)out, dtype_name(dt), worst);
            tensor_free(ref[0]), tensor_free(ref[1]);
            tensor_free(x), tensor_free(seed);
            module_free(m);
        }
    threads_set(saved);
}

/* Normalisation: the statistics cut by groups of features (each summed over every
 * sample in order), the data by rows: the same bits on any thread count, and the
 * statistics of plain double loops. */
TEST(normalisation_same_bits_on_any_thread_count)
{
    const uint64_t n = 700, d = 99; /* 13 groups of 8 features, the last short */
    int saved = threads_count();
    for (uint32_t dt = 0; dt < 2; dt++)
        for (int kind = NORM_MINMAX; kind <= NORM_STANDARD; kind++) {
            struct Tensor *x = tensor_create(2, (uint64_t[]){n, d}, dt), *ref[3] = {NULL, NULL, NULL};
            fill_uniform(x, -3, 5, 40 + (uint64_t)kind);
            for (uint64_t i = 0; i < n; i++) tensor_set(x, (uint64_t[]){i, 5}, 2.5); /* a constant feature */
            for (size_t c = 0; c <= N_COUNTS; c++) {
                threads_set(c ? counts[c - 1] : 1);
                struct Dataset ds = {0};
                ds.x = tensor_copy(x), ds.n = n, ds.dim = d;
                struct Tensor *shift = NULL, *scale = NULL;
                EXPECT_EQ_INT(dataset_norm_stats(&ds, kind, &shift, &scale), 0);
                EXPECT_EQ_INT(shift ? dataset_normalize(&ds, shift, scale) : -1, 0);
                if (!shift) { tensor_free(ds.x); continue; }
                if (!c) {
                    double worst = 0, tol = dt == DT_FLOAT32 ? 1e-6 : 1e-13;
                    for (uint64_t j = 0; j < d; j++) {
                        double lo = 1e300, hi = -1e300, s = 0, v2 = 0;
                        for (uint64_t i = 0; i < n; i++) {
                            double v = tensor_at(x, i * d + j);
                            lo = fmin(lo, v), hi = fmax(hi, v), s += v;
                        }
                        for (uint64_t i = 0; i < n; i++) v2 += pow(tensor_at(x, i * d + j) - s / (double)n, 2);
                        double want_shift = kind == NORM_STANDARD ? s / (double)n : lo;
                        double want_scale = lo == hi ? 1 : kind == NORM_STANDARD ? 1 / sqrt(v2 / (double)n) : 1 / (hi - lo);
                        worst = fmax(worst, fabs(tensor_at(shift, j) - want_shift) / fmax(1, fabs(want_shift)));
                        worst = fmax(worst, fabs(tensor_at(scale, j) - want_scale) / fmax(1, fabs(want_scale)));
                    }
                    EXPECT_MSG(worst <= tol, "%s kind %d: statistics off by %.3g", dtype_name(dt), kind, worst);
                }
                struct Tensor *got[3] = {shift, scale, ds.x};
                for (int k = 0; k < 3; k++) {
                    if (!c) ref[k] = tensor_copy(got[k]);
                    else EXPECT_MSG(!memcmp(got[k]->data, ref[k]->data, tensor_numel(got[k]) * dtype_size(dt)),
                                    "%s kind %d: %s with %d threads differs from one thread's", dtype_name(dt), kind,
                                    (const char *[]){"shift", "scale", "normalised data"}[k], counts[c - 1]);
                }
                tensor_free(shift), tensor_free(scale), tensor_free(ds.x);
            }
            for (int k = 0; k < 3; k++) tensor_free(ref[k]);
            tensor_free(x);
        }
    threads_set(saved);
}

/* The parallel elementwise table: maps give the ISA kernel's bits; the sum gives the
 * same bits on any thread count (and the plain sum's value to rounding). */
#define EW_PAR_TEST(T, sfx, tol)                                                                  \
    TEST_ISA(ew_parallel_table_##sfx)                                                             \
    {                                                                                             \
        const struct EwKernels *k = kernels_get()->ew, *k1 = kernels_get()->ew1;                  \
        static const size_t sizes[] = {70001, 300007};                                            \
        int saved = threads_count();                                                              \
        for (size_t si = 0; si < 2; si++) {                                                       \
            size_t n = sizes[si];                                                                 \
            T *a = mem_alloc(n * sizeof(T)), *b = mem_alloc(n * sizeof(T)), *o = mem_alloc(n * sizeof(T)); \
            T *o1 = mem_alloc(n * sizeof(T)), *m = mem_alloc(n * sizeof(T)), *v = mem_alloc(n * sizeof(T)); \
            T *m1 = mem_alloc(n * sizeof(T)), *v1 = mem_alloc(n * sizeof(T));                     \
            struct Rng r;                                                                         \
            rng_seed(&r, 5 + si);                                                                 \
            for (size_t i = 0; i < n; i++) { a[i] = (T)(rng_uniform(&r) - 0.5); b[i] = (T)(rng_uniform(&r) + 0.5); } \
            threads_set(1);                                                                       \
            double s1 = k->sum_##sfx(n, a), plain = k1->sum_##sfx(n, a);                          \
            EXPECT_NEAR(s1, plain, tol * n);                                                      \
            for (size_t c = 0; c < N_COUNTS; c++) {                                               \
                threads_set(counts[c]);                                                           \
                EXPECT(k->sum_##sfx(n, a) == s1);                                                 \
                int bad = 0;                                                                      \
                for (int op = 0; op < EW_BIN_COUNT; op++) {                                       \
                    k->bin_##sfx[op](n, a, b, o), k1->bin_##sfx[op](n, a, b, o1);                 \
                    bad += memcmp(o, o1, n * sizeof(T)) != 0;                                     \
                }                                                                                 \
                k->scal_##sfx[EW_SMUL](n, a, (T)1.5, o), k1->scal_##sfx[EW_SMUL](n, a, (T)1.5, o1); \
                bad += memcmp(o, o1, n * sizeof(T)) != 0;                                         \
                memcpy(o, b, n * sizeof(T)), memcpy(o1, b, n * sizeof(T));                        \
                k->axpy_##sfx(n, (T)-0.25, a, o), k1->axpy_##sfx(n, (T)-0.25, a, o1);             \
                bad += memcmp(o, o1, n * sizeof(T)) != 0;                                         \
                k->relu_bwd_set_##sfx(n, a, b, o), k1->relu_bwd_set_##sfx(n, a, b, o1);           \
                bad += memcmp(o, o1, n * sizeof(T)) != 0;                                         \
                memcpy(o, b, n * sizeof(T)), memcpy(o1, b, n * sizeof(T));                        \
                memset(m, 0, n * sizeof(T)), memset(v, 0, n * sizeof(T));                         \
                memset(m1, 0, n * sizeof(T)), memset(v1, 0, n * sizeof(T));                       \
                k->adam_##sfx(n, o, a, m, v, (T)0.9, (T)0.999, (T)0.01, (T)0.03, (T)1e-8);        \
                k1->adam_##sfx(n, o1, a, m1, v1, (T)0.9, (T)0.999, (T)0.01, (T)0.03, (T)1e-8);    \
                bad += memcmp(o, o1, n * sizeof(T)) != 0 || memcmp(v, v1, n * sizeof(T)) != 0;     \
                EXPECT_MSG(bad == 0, "%zu elements, %d threads: %d maps differ", n, counts[c], bad); \
            }                                                                                     \
            mem_free(a), mem_free(b), mem_free(o), mem_free(o1), mem_free(m), mem_free(v), mem_free(m1), mem_free(v1); \
        }                                                                                         \
        threads_set(saved);                                                                       \
    }
EW_PAR_TEST(float, f32, 1e-6)
EW_PAR_TEST(double, f64, 1e-14)

#include "e2e.h"

/* ---- end to end: the programs give the same bytes on any thread count ---- */


/* Trains cfg on (x, y) with 1, 2, 3, 4 and 7 threads on the default ISA path and 1 and 3
 * on the others; every model file and every infer --probs output must equal the
 * one-thread run's on that path. */
static void check_same_model_bytes(const char *name, const char *cfg_text, const char *x, const char *y)
{
    char cfg[512], cmd[2048], ref_out[1 << 14], got[1 << 14];
    snprintf(cfg, sizeof cfg, "%s/%s.ini", test_tmpdir(), name);
    test_write_file(cfg, cfg_text);
    for (int isa = ISA_SSE2; isa < ISA_COUNT; isa++) {
        if (!kernels_isa_supported(isa)) continue;
        static const int nts[] = {1, 3, 2, 4, 7};
        size_t n_counts = isa == kernels_isa() ? 5 : 2;
        for (size_t k = 0; k < n_counts; k++) {
            snprintf(cmd, sizeof cmd,
                     "MINIDL_ISA=%s %s/train -q --threads %d %s %s %s %s/%s_%d.bin && "
                     "MINIDL_ISA=%s %s/infer --threads %d -p %s/%s_%d.bin %s && cmp -s %s/%s_1.bin %s/%s_%d.bin",
                     isa_name(isa), bin(), nts[k], cfg, x, y, test_tmpdir(), name, nts[k], isa_name(isa), bin(),
                     nts[k], test_tmpdir(), name, nts[k], x, test_tmpdir(), name, test_tmpdir(), name, nts[k]);
            int rc = test_run_cmd(cmd, k ? got : ref_out, sizeof got, NULL, 0);
            EXPECT_MSG(rc == 0, "%s on %s with %d threads: the model differs from one thread's (or a run failed)", name,
                       isa_name(isa), nts[k]);
            if (k) EXPECT_MSG(!strcmp(got, ref_out), "%s on %s: infer with %d threads prints other bytes", name,
                              isa_name(isa), nts[k]);
        }
    }
}

TEST(models_are_the_same_bytes_on_any_thread_count)
{
    check_same_model_bytes("mlp", "[model]\ninput_dim=64\nlayer=Linear,64,96\nactivation=ReLU\nlayer=Linear,96,10\n"
                           "activation=Softmax\n[train]\nepochs=2\nbatch_size=128\nnormalize=standard\n",
                           "data/digits_train_x.csv", "data/digits_train_y.csv");
    check_same_model_bytes("cnn", "[model]\ninput_shape=1,8,8\nlayer=Conv2d,1,16,3,3,1,1\nactivation=ReLU\n"
                           "layer=Conv2d,16,16,3,3,2,1\nactivation=ReLU\nlayer=Linear,256,10\n"
                           "[train]\nepochs=2\nbatch_size=64\nlr_schedule=cosine\n",
                           "data/digits_train_x.csv", "data/digits_train_y.csv");
    check_same_model_bytes("mse64", "[model]\ninput_dim=10\ndtype=float64\nlayer=Linear,10,64\nactivation=Tanh\n"
                           "layer=Linear,64,1\n[train]\nepochs=3\nbatch_size=64\nloss=MSE\nnormalize=standard\n"
                           "optimizer=SGD\nmomentum=0.9\nlr=0.001\n",
                           "data/diabetes_train_x.csv", "data/diabetes_train_y.csv");
}

/* ---- the CSV reader in chunks ---- */

/* A CSV of rows x 12 values (about 3 MB at 60000 rows), with text[i] put on line
 * lines[i] (1-based) instead of its first value. */
static char *make_csv(size_t rows, const size_t *lines, const char *const *text, size_t n_bad, size_t *len)
{
    size_t cap = rows * 64 + 64, k = 0;
    char *s = mem_alloc(cap);
    for (size_t r = 1; r <= rows; r++) {
        const char *first = NULL;
        for (size_t i = 0; i < n_bad; i++)
            if (lines[i] == r) first = text[i];
        if (first) k += (size_t)snprintf(s + k, cap - k, "%s", first);
        else k += (size_t)snprintf(s + k, cap - k, "%zu.5", r % 97);
        for (int c = 1; c < 12; c++) k += (size_t)snprintf(s + k, cap - k, ",%d", (int)((r * 31 + (size_t)c) % 251));
        s[k++] = '\n';
    }
    *len = k;
    return s;
}

/* Loads the text on 1 thread and on 3 (chunks): the same matrix, or the same message. */
static void check_csv_chunks(const char *what, const size_t *lines, const char *const *text, size_t n_bad,
                             const char *want)
{
    size_t len;
    char *csv = make_csv(60000, lines, text, n_bad, &len), path[512], err1[512] = "", err3[512] = "";
    snprintf(path, sizeof path, "%s/chunks.csv", test_tmpdir());
    FILE *f = fopen(path, "wb");
    EXPECT(f && fwrite(csv, 1, len, f) == len);
    if (f) fclose(f);
    mem_free(csv);
    struct Tensor *t1 = NULL, *t3 = NULL;
    int saved = threads_count();
    threads_set(1);
    int r1 = csv_read_matrix(path, DT_FLOAT32, &t1, err1, sizeof err1);
    threads_set(3);
    int r3 = csv_read_matrix(path, DT_FLOAT32, &t3, err3, sizeof err3);
    threads_set(saved);
    EXPECT_MSG(r1 == r3 && !strcmp(err1, err3), "%s: one thread said \"%s\", three \"%s\"", what, err1, err3);
    if (want) EXPECT_STR_CONTAINS(err3, want);
    else EXPECT_MSG(r3 == 0 && t1 && t3 && t3->shape[0] == 60000 && !memcmp(t1->data, t3->data, 60000 * 12 * 4),
                    "%s: the matrices differ", what);
    tensor_free(t1), tensor_free(t3);
}

TEST(csv_chunks_read_the_same_and_report_the_first_error)
{
    check_csv_chunks("clean", NULL, NULL, 0, NULL);
    static const char *const bad[] = {"1x"};
    check_csv_chunks("first chunk", (size_t[]){7}, bad, 1, "chunks.csv:7:1: ");
    check_csv_chunks("middle chunk", (size_t[]){31000}, bad, 1, "chunks.csv:31000:1: ");
    check_csv_chunks("last chunk", (size_t[]){59998}, bad, 1, "chunks.csv:59998:1: ");
    static const char *const two[] = {"nan", "1e999"};
    check_csv_chunks("two chunks", (size_t[]){45001, 20000}, two, 2, "chunks.csv:20000:1: ");
    static const char *const ragged[] = {"1,2"};
    check_csv_chunks("ragged", (size_t[]){40000}, ragged, 1, "chunks.csv:40000:");
}

/* --threads and MINIDL_THREADS: bad values are usage errors naming the option (exit 2);
 * --version says how many threads run. */
TEST(thread_options_and_environment)
{
    char cmd[1024];
    static const char *const bad[] = {"0", "abc", "1025", "-1", "2.5"};
    static const char *const progs[] = {"train", "infer", "csv2bin"};
    for (size_t p = 0; p < 3; p++)
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
            snprintf(cmd, sizeof cmd, "%s/%s --threads %s a b c d", bin(), progs[p], bad[i]);
            EXPECT_EQ_INT(test_run_cmd(cmd, out, sizeof out, err, sizeof err), 2);
            EXPECT_STR_CONTAINS(err, "option '--threads'");
            EXPECT_STR_CONTAINS(err, bad[i]);
        }
    snprintf(cmd, sizeof cmd, "MINIDL_THREADS=abc %s/train c.ini x.csv y.csv m.bin", bin());
    EXPECT_EQ_INT(test_run_cmd(cmd, out, sizeof out, err, sizeof err), 2);
    EXPECT_STR_CONTAINS(err, "MINIDL_THREADS=abc");
    snprintf(cmd, sizeof cmd, "MINIDL_THREADS=0 %s/csv2bin x.csv y.bin", bin());
    EXPECT_EQ_INT(test_run_cmd(cmd, out, sizeof out, err, sizeof err), 2);
    EXPECT_STR_CONTAINS(err, "MINIDL_THREADS=0");
    snprintf(cmd, sizeof cmd, "MINIDL_THREADS=5 %s/infer --version", bin());
    EXPECT_EQ_INT(test_run_cmd(cmd, out, sizeof out, err, sizeof err), 0);
    EXPECT_STR_CONTAINS(out, "threads: 5");
    snprintf(cmd, sizeof cmd, "MINIDL_THREADS=5 %s/train --threads 3 --version", bin());
    EXPECT_EQ_INT(test_run_cmd(cmd, out, sizeof out, err, sizeof err), 0);
    EXPECT_STR_CONTAINS(out, "threads: 3");
    snprintf(cmd, sizeof cmd, "taskset -c 0 %s/train --version", bin());
    if (test_run_cmd(cmd, out, sizeof out, err, sizeof err) == 0) EXPECT_STR_CONTAINS(out, "threads: 1");
}
