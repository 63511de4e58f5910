/* bench_gemm: single-threaded gemm GFLOP/s for every ISA path, square and MLP training
 * shapes, against OpenBLAS as a yardstick, plus the FMA peak (bench_peak).
 *
 * OpenBLAS is never linked: it is dlopen()ed in two child processes (this program
 * re-executed with a hidden flag), one with OPENBLAS_CORETYPE=Haswell (its AVX2 kernels)
 * and one with the variable unset (its own choice), because the library reads the
 * variable once when it loads. Our figures are compared with the faster of the two.
 * The host's clock drifts over a run, so each shape is measured on every side in turn
 * (both children for that shape alone, then each of our paths) before the next shape:
 * a ratio compares measurements taken seconds apart, not a minute.
 *
 * A subset while iterating: MINIDL_BENCH_SHAPES=a,b (shapes whose name contains a or
 * b) and MINIDL_BENCH_ISAS=avx512,avx2 (paths); the OpenBLAS children inherit both. */
#include "bench.h"
#include "bench_peak.h"
#include "math_kernels.h"
#include "mem.h"
#include "utils.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHILD_FLAG "--openblas-gemm-child"
#define CHILD_ONLY "MINIDL_BENCH_GEMM_ONLY" /* the child measures this shape index alone */

struct Shape { const char *name; int ta, tb; size_t M, N, K; double beta; };

/* The MLP 784-128-10 step as nn_layers calls it: forward x W^T, weight gradient
 * dY^T X (accumulating), input gradient dY W (accumulating); then the gemm calls of the
 * CNN step of issue 3 at batch 64 (im2col convolutions and the Linear(3136, 10)). */
static const struct Shape shapes[] = {
    {"64 sq", 0, 0, 64, 64, 64, 0}, {"128 sq", 0, 0, 128, 128, 128, 0},
    {"256 sq", 0, 0, 256, 256, 256, 0}, {"512 sq", 0, 0, 512, 512, 512, 0},
    {"1024 sq", 0, 0, 1024, 1024, 1024, 0},
    {"b64 fwd1 64x784*(128x784)^T", 0, 1, 64, 128, 784, 0},
    {"b64 wgrad1 (64x128)^T*64x784", 1, 0, 128, 784, 64, 1},
    {"b64 igrad1 64x128*128x784", 0, 0, 64, 784, 128, 1},
    {"b64 fwd2 64x128*(10x128)^T", 0, 1, 64, 10, 128, 0},
    {"b64 wgrad2 (64x10)^T*64x128", 1, 0, 10, 128, 64, 1},
    {"b64 igrad2 64x10*10x128", 0, 0, 64, 128, 10, 1},
    {"b256 fwd1 256x784*(128x784)^T", 0, 1, 256, 128, 784, 0},
    {"b256 wgrad1 (256x128)^T*256x784", 1, 0, 128, 784, 256, 1},
    {"b256 igrad1 256x128*128x784", 0, 0, 256, 784, 128, 1},
    {"b256 fwd2 256x128*(10x128)^T", 0, 1, 256, 10, 128, 0},
    {"b256 wgrad2 (256x10)^T*256x128", 1, 0, 10, 128, 256, 1},
    {"b256 igrad2 256x10*10x128", 0, 0, 256, 128, 10, 1},
    {"cnn conv1 fwd 8x50176x9 NN", 0, 0, 8, 50176, 9, 0},
    {"cnn conv1 wgrad 8x9x50176 NT", 0, 1, 8, 9, 50176, 1},
    {"cnn conv2 fwd 16x12544x72 NN", 0, 0, 16, 12544, 72, 0},
    {"cnn conv2 wgrad 16x72x12544 NT", 0, 1, 16, 72, 12544, 1},
    {"cnn conv2 igrad 72x12544x16 TN", 1, 0, 72, 12544, 16, 0},
    {"cnn lin fwd 64x10x3136 NT", 0, 1, 64, 10, 3136, 1},
    {"cnn lin wgrad 10x3136x64 TN", 1, 0, 10, 3136, 64, 1},
    {"cnn lin igrad 64x3136x10 NN", 0, 0, 64, 3136, 10, 1},
};
#define N_SHAPES (sizeof shapes / sizeof shapes[0])
#define MAX_ELEMS ((size_t)1024 * 1024)

/* Whether `name` matches the comma-separated substrings of environment variable `var`
 * (unset or empty: everything). */
static int selected(const char *var, const char *name)
{
    const char *list = getenv(var);
    if (!list || !*list) return 1;
    while (*list) {
        size_t len = strcspn(list, ",");
        for (const char *p = name; len && *p; p++)
            if (!strncmp(p, list, len)) return 1;
        list += len + (list[len] == ',');
    }
    return 0;
}

typedef void (*gemm_call)(const struct Shape *s, int f64, void **m);

static void call_ours(const struct Shape *s, int f64, void **m)
{
    size_t lda = s->ta ? s->M : s->K, ldb = s->tb ? s->K : s->N;
    if (f64) gemm_f64(s->ta, s->tb, s->M, s->N, s->K, 1, m[0], lda, m[1], ldb, s->beta, m[2], s->N);
    else gemm_f32(s->ta, s->tb, s->M, s->N, s->K, 1, m[0], lda, m[1], ldb, (float)s->beta, m[2], s->N);
}

/* Median GFLOP/s over several samples, each repeating the call for >= min_s seconds. */
static double measure(gemm_call fn, const struct Shape *s, int f64, void **m, int quick)
{
    double flops = 2.0 * (double)s->M * (double)s->N * (double)s->K, rate[9];
    int samples = quick ? 3 : 7;
    double min_s = quick ? 0.01 : 0.03;
    m += 3 * f64;
    fn(s, f64, m);
    double t0 = time_now();
    fn(s, f64, m);
    double one = time_now() - t0;
    long reps = (long)(min_s / (one > 1e-7 ? one : 1e-7)) + 1;
    for (int k = 0; k < samples; k++) {
        t0 = time_now();
        for (long r = 0; r < reps; r++) fn(s, f64, m);
        rate[k] = flops * (double)reps / (time_now() - t0) / 1e9;
    }
    return bench_median(rate, samples);
}

/* m[0..2] hold float A, B, C and m[3..5] double ones; call with m + 3*f64. */
static void **alloc_mats(void)
{
    static void *m[6];
    for (int i = 0; i < 6; i++) {
        m[i] = mem_alloc_aligned(MAX_ELEMS * (i < 3 ? sizeof(float) : sizeof(double)), 64);
        for (size_t j = 0; j < MAX_ELEMS; j++) {
            if (i < 3) ((float *)m[i])[j] = (float)(j % 7) * 0.1f;
            else ((double *)m[i])[j] = (double)(j % 7) * 0.1;
        }
    }
    return m;
}

static void free_mats(void **m)
{
    for (int i = 0; i < 6; i++) mem_free(m[i]);
}

/* ---- OpenBLAS in a child process ---- */

enum { CBLAS_ROW = 101, CBLAS_NT = 111, CBLAS_T = 112 };
typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *,
                         int, float, float *, int);
typedef void (*dgemm_fn)(int, int, int, int, int, int, double, const double *, int,
                         const double *, int, double, double *, int);
static sgemm_fn ob_sgemm;
static dgemm_fn ob_dgemm;

static void call_openblas(const struct Shape *s, int f64, void **m)
{
    int M = (int)s->M, N = (int)s->N, K = (int)s->K;
    int lda = s->ta ? M : K, ldb = s->tb ? K : N, ta = s->ta ? CBLAS_T : CBLAS_NT, tb = s->tb ? CBLAS_T : CBLAS_NT;
    if (f64) ob_dgemm(CBLAS_ROW, ta, tb, M, N, K, 1, m[0], lda, m[1], ldb, s->beta, m[2], N);
    else ob_sgemm(CBLAS_ROW, ta, tb, M, N, K, 1, m[0], lda, m[1], ldb, (float)s->beta, m[2], N);
}

/* Child: prints "core <name>" then one "f32 f64" GFLOP/s line per shape. */
static void openblas_child(int quick)
{
    void *h = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!h) { printf("none\n"); exit(0); }
    void (*set_threads)(int) = (void (*)(int))dlsym(h, "openblas_set_num_threads");
    char *(*corename)(void) = (char *(*)(void))dlsym(h, "openblas_get_corename");
    ob_sgemm = (sgemm_fn)dlsym(h, "cblas_sgemm");
    ob_dgemm = (dgemm_fn)dlsym(h, "cblas_dgemm");
    if (!ob_sgemm || !ob_dgemm) { printf("none\n"); exit(0); }
    if (set_threads) set_threads(1);
    printf("core %s\n", corename ? corename() : "?");
    void **m = alloc_mats();
    const char *only = getenv(CHILD_ONLY);
    for (size_t i = 0; i < N_SHAPES; i++) {
        if (!selected("MINIDL_BENCH_SHAPES", shapes[i].name) || (only && strtoul(only, NULL, 10) != i)) {
            printf("0 0\n");
            continue;
        }
        printf("%f %f\n", measure(call_openblas, &shapes[i], 0, m, quick), measure(call_openblas, &shapes[i], 1, m, quick));
    }
    free_mats(m);
    exit(0);
}

/* The hidden flag is seen before main() (glibc passes argc/argv to constructors). */
__attribute__((constructor)) static void child_hook(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], CHILD_FLAG)) openblas_child(argc >= 3);
}

/* Runs the child with OPENBLAS_CORETYPE set to `coretype` (NULL: unset) on shape
 * `only`; fills rate[only][dtype] and core; returns 0 if OpenBLAS is not available. */
static int run_openblas(const char *coretype, int quick, size_t only, double rate[][2], char *core, size_t cap)
{
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    int fd[2];
    if (len <= 0 || pipe(fd)) return 0;
    exe[len] = 0;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        if (coretype) setenv("OPENBLAS_CORETYPE", coretype, 1);
        else unsetenv("OPENBLAS_CORETYPE");
        setenv("OPENBLAS_NUM_THREADS", "1", 1);
        char idx[32];
        snprintf(idx, sizeof idx, "%zu", only);
        setenv(CHILD_ONLY, idx, 1);
        execl(exe, exe, CHILD_FLAG, quick ? "quick" : (char *)NULL, (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    FILE *f = fdopen(fd[0], "r");
    int ok = f && fscanf(f, "core %63s", core) == 1 && cap > 63;
    double r[2];
    for (size_t i = 0; ok && i < N_SHAPES; i++) {
        ok = fscanf(f, "%lf %lf", &r[0], &r[1]) == 2;
        if (ok && i == only) rate[i][0] = r[0], rate[i][1] = r[1];
    }
    if (f) fclose(f);
    waitpid(pid, NULL, 0);
    return ok;
}

static const int isas[] = {ISA_SSE2, ISA_AVX2, ISA_AVX512};
#define N_ISAS 3

/* The widest path's FMA peak, measured just before that path's run of a shape (the host's
 * clock drifts over a run), and that path's percentage of it. */
static int peak_isa(void)
{
    if (kernels_isa_supported(ISA_AVX512) && selected("MINIDL_BENCH_ISAS", "avx512")) return ISA_AVX512;
    if (kernels_isa_supported(ISA_AVX2) && selected("MINIDL_BENCH_ISAS", "avx2")) return ISA_AVX2;
    return -1;
}

static double shape_peak(int isa, int f64)
{
    double r[3];
    for (int k = 0; k < 3; k++) r[k] = isa == ISA_AVX512 ? bench_fma_avx512(f64, 0.02) : bench_fma_avx2(f64, 0.02);
    return bench_median(r, 3);
}

static void print_table(int f64, double ours[][N_ISAS][2], double peak[][2], int have_ob,
                        double ob[2][N_SHAPES][2], const char *core[2])
{
    int pi = peak_isa(), pk = pi == ISA_AVX512 ? 2 : 1;
    printf("\n%s GFLOP/s (median)   [OpenBLAS: Haswell = forced AVX2 kernels, auto = %s; %%peak: %s]\n",
           f64 ? "float64" : "float32", core[1], pi < 0 ? "-" : isa_name(pi));
    printf("| %-32s | %7s | %7s | %7s | %6s | %8s | %8s | %9s | %9s |\n", "shape (M x N x K)", "sse2", "avx2",
           "avx512", "%peak", "OB hsw", "OB auto", "best/OB", "avx2/hsw");
    printf("|----------------------------------|---------|---------|---------|--------|----------|----------|-----------|-----------|\n");
    for (size_t i = 0; i < N_SHAPES; i++) {
        const struct Shape *s = &shapes[i];
        if (!selected("MINIDL_BENCH_SHAPES", s->name)) continue;
        char label[64];
        snprintf(label, sizeof label, "%s", s->name);
        double best = 0;
        printf("| %-32s |", label);
        for (int k = 0; k < N_ISAS; k++) {
            if (ours[i][k][f64] > 0) printf(" %7.1f |", ours[i][k][f64]);
            else printf(" %7s |", "-");
            if (ours[i][k][f64] > best) best = ours[i][k][f64];
        }
        if (pi >= 0 && peak[i][f64] > 0) printf(" %5.1f%% |", 100 * ours[i][pk][f64] / peak[i][f64]);
        else printf(" %6s |", "-");
        if (have_ob) {
            double h = ob[0][i][f64], a = ob[1][i][f64], obb = h > a ? h : a;
            printf(" %8.1f | %8.1f | %8.2fx | %8.2fx |\n", h, a, best / obb,
                   ours[i][1][f64] > 0 ? ours[i][1][f64] / h : 0);
        } else {
            printf(" %8s | %8s | %9s | %9s |\n", "n/a", "n/a", "", "");
        }
    }
}

void bench_gemm(int quick)
{
    static double ours[N_SHAPES][N_ISAS][2], ob[2][N_SHAPES][2], peak[N_SHAPES][2];
    char cores[2][64] = {"", ""};
    const char *core[2] = {cores[0], cores[1]};
    int saved = kernels_isa(), have_ob = 1;
    printf("[gemm] single thread; shapes are M x N x K as gemm(ta, tb) is called by the MLP layers\n");
    fflush(stdout);
    void **m = alloc_mats();
    for (size_t i = 0; i < N_SHAPES; i++) {
        if (!selected("MINIDL_BENCH_SHAPES", shapes[i].name)) continue;
        have_ob = have_ob && run_openblas("Haswell", quick, i, ob[0], cores[0], sizeof cores[0]) &&
                  run_openblas(NULL, quick, i, ob[1], cores[1], sizeof cores[1]);
        for (int k = 0; k < N_ISAS; k++) {
            if (!kernels_isa_supported(isas[k]) || !selected("MINIDL_BENCH_ISAS", isa_name(isas[k]))) continue;
            kernels_select(isas[k]);
            for (int d = 0; d < 2; d++) {
                if (isas[k] == peak_isa()) peak[i][d] = shape_peak(isas[k], d);
                ours[i][k][d] = measure(call_ours, &shapes[i], d, m, quick);
            }
        }
    }
    free_mats(m);
    if (!have_ob) printf("OpenBLAS (libopenblas.so.0) not found: no yardstick\n");
    kernels_select(saved);
    print_table(0, ours, peak, have_ob, ob, core);
    print_table(1, ours, peak, have_ob, ob, core);
}

void bench_peak(int quick)
{
    int runs = quick ? 3 : 5;
    double secs = quick ? 0.05 : 0.1;
    printf("[peak] FMA peak, one core, independent FMAs (median of %d runs), GFLOP/s\n", runs);
    for (int isa = ISA_AVX2; isa <= ISA_AVX512; isa++) {
        if (!kernels_isa_supported(isa)) { printf("%-7s not supported by this CPU\n", isa_name(isa)); continue; }
        double r[2][8];
        for (int d = 0; d < 2; d++)
            for (int k = 0; k < runs; k++)
                r[d][k] = isa == ISA_AVX512 ? bench_fma_avx512(d, secs) : bench_fma_avx2(d, secs);
        printf("%-7s f32 %7.1f   f64 %7.1f\n", isa_name(isa), bench_median(r[0], runs), bench_median(r[1], runs));
    }
}
