/* The test runner: runs every registered test (TEST_ISA ones once per ISA path the
 * CPU supports), checks each for leaks, prints failures with file:line and closes
 * with "N passed, N failed". Exit status 1 if anything failed.
 * Usage: tests [substring]   runs only tests whose name contains substring. */
#define _GNU_SOURCE
#include "test.h"
#include "threads.h"
#include "math_kernels.h"
#include "mem.h"
#include "utils.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_TESTS 1024

struct TestCase { const char *name, *file; test_fn fn; int per_isa; };

static struct TestCase cases[MAX_TESTS];
static int n_cases;
static int current_failed;
static char tmpdir[256];

void test_register(const char *name, const char *file, test_fn fn, int per_isa)
{
    if (n_cases == MAX_TESTS) { fprintf(stderr, "too many tests\n"); exit(2); }
    cases[n_cases++] = (struct TestCase){name, file, fn, per_isa};
}

void test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    if (current_failed < 5) {
        fprintf(stderr, "    %s:%d: ", file, line);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
    }
    current_failed++;
}

int test_failed_now(void) { return current_failed > 0; }

static void read_all(int fd, char *buf, size_t cap)
{
    size_t at = 0;
    char sink[4096];
    for (;;) {
        ssize_t n = at + 1 < cap ? read(fd, buf + at, cap - 1 - at) : read(fd, sink, sizeof sink);
        if (n <= 0) break;
        if (at + 1 < cap) at += (size_t)n;
    }
    if (cap) buf[at] = 0;
}

int test_run_child(void (*fn)(void *), void *arg, char *err, size_t cap)
{
    int fds[2];
    fflush(stdout);
    fflush(stderr);
    if (pipe(fds) != 0) { perror("pipe"); exit(2); }
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); exit(2); }
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 2);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) dup2(devnull, 1);
        fn(arg);
        fflush(stderr);
        _exit(0);
    }
    close(fds[1]);
    char dummy[1];
    read_all(fds[0], err ? err : dummy, err ? cap : 1);
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int test_run_cmd(const char *cmd, char *out, size_t out_cap, char *err, size_t err_cap)
{
    char outf[512], errf[512], full[8192];
    snprintf(outf, sizeof outf, "%s/cmd.out", tmpdir);
    snprintf(errf, sizeof errf, "%s/cmd.err", tmpdir);
    snprintf(full, sizeof full, "(%s) >%s 2>%s </dev/null", cmd, outf, errf);
    int st = system(full);
    int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    const char *files[2] = {outf, errf};
    char *bufs[2] = {out, err};
    size_t caps[2] = {out_cap, err_cap};
    for (int i = 0; i < 2; i++) {
        if (!bufs[i] || !caps[i]) continue;
        bufs[i][0] = 0;
        FILE *f = fopen(files[i], "rb");
        if (!f) continue;
        size_t n = fread(bufs[i], 1, caps[i] - 1, f);
        bufs[i][n] = 0;
        fclose(f);
    }
    return rc;
}

const char *test_tmpdir(void) { return tmpdir; }

const char *test_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(2); }
    fputs(text, f);
    fclose(f);
    return path;
}

#define MAX_ERR_BODY(T)                                                     \
    double worst = 0;                                                       \
    for (size_t i = 0; i < n; i++) {                                        \
        double d = fabs((double)a[i] - (double)b[i]);                       \
        double e = d / (atol + rtol * fabs((double)b[i]));                  \
        if (!(e <= worst)) worst = e; /* NaN makes it NaN-proof: worst = NaN */ \
        if (isnan(e)) return INFINITY;                                      \
    }                                                                       \
    return worst;

double test_max_err_f32(const float *a, const float *b, size_t n, double atol, double rtol) { MAX_ERR_BODY(float) }
double test_max_err_f64(const double *a, const double *b, size_t n, double atol, double rtol) { MAX_ERR_BODY(double) }

static int run_one(const struct TestCase *c, const char *isa)
{
    int64_t live = mem_live_blocks();
    current_failed = 0;
    c->fn();
    int64_t leaked = mem_live_blocks() - live;
    if (leaked) test_fail(c->file, 0, "%lld block(s) leaked", (long long)leaked);
    if (current_failed)
        fprintf(stderr, "FAIL %s%s%s (%s)\n", c->name, isa ? " @" : "", isa ? isa : "", c->file);
    return current_failed == 0;
}

int main(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    util_set_progname("tests");
    /* Before the scratch directory: an unusable MINIDL_ISA exits here and must leave nothing behind. */
    int dflt = kernels_isa(); /* honours MINIDL_ISA */
    snprintf(tmpdir, sizeof tmpdir, "/tmp/minidl-tests-XXXXXX");
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 2; }
    setenv("MINIDL_TEST_TMP", tmpdir, 1);

    int passed = 0, failed = 0;
    int forced = getenv("MINIDL_ISA") ? dflt : -1;
    for (int i = 0; i < n_cases; i++) {
        const struct TestCase *c = &cases[i];
        if (filter && !strstr(c->name, filter)) continue;
        if (!c->per_isa) {
            int ok = run_one(c, NULL);
            passed += ok, failed += !ok;
            continue;
        }
        /* every ISA path, on one thread and on three (the parallel splits) */
        for (int isa = ISA_SSE2; isa < ISA_COUNT; isa++)
            for (int nt = 1; nt <= 3; nt += 2) {
                if (!kernels_isa_supported(isa) || (forced >= 0 && isa != forced)) continue;
                char label[32];
                snprintf(label, sizeof label, nt == 1 ? "%s" : "%s, 3 threads", isa_name(isa));
                kernels_select(isa);
                threads_set(nt);
                int ok = run_one(c, label);
                passed += ok, failed += !ok;
            }
        threads_set(1);
        kernels_select(dflt);
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
