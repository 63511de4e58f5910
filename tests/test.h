/* test: a tiny test framework. Tests register themselves (one file per area, no
 * shared list to edit); the runner prints each failure with file:line and closes
 * with "N passed, N failed". TEST_ISA tests run once per ISA path the CPU has.
 * Every test must free what it allocates: the runner fails a test that leaks. */
#ifndef MINIDL_TEST_H
#define MINIDL_TEST_H

#include <math.h>
#include <stddef.h>

typedef void (*test_fn)(void);
void test_register(const char *name, const char *file, test_fn fn, int per_isa);
void test_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int test_failed_now(void); /* has the running test failed yet */

#define TEST_(name, per_isa)                                                           \
    static void name(void);                                                            \
    __attribute__((constructor)) static void reg_##name(void) { test_register(#name, __FILE__, name, per_isa); } \
    static void name(void)
#define TEST(name) TEST_(name, 0)
#define TEST_ISA(name) TEST_(name, 1)

#define EXPECT(cond) do { if (!(cond)) test_fail(__FILE__, __LINE__, "expected %s", #cond); } while (0)
#define EXPECT_MSG(cond, ...) do { if (!(cond)) test_fail(__FILE__, __LINE__, __VA_ARGS__); } while (0)
#define EXPECT_EQ_INT(a, b) do { long long a_ = (long long)(a), b_ = (long long)(b); \
    if (a_ != b_) test_fail(__FILE__, __LINE__, "%s == %lld, expected %s == %lld", #a, a_, #b, b_); } while (0)
#define EXPECT_NEAR(a, b, tol) do { double a_ = (double)(a), b_ = (double)(b); \
    if (!(fabs(a_ - b_) <= (tol))) test_fail(__FILE__, __LINE__, "%s = %.17g, expected %.17g (tol %g)", #a, a_, b_, (double)(tol)); } while (0)
#define EXPECT_STR_CONTAINS(hay, needle) do { const char *h_ = (hay); \
    if (!h_ || !strstr(h_, (needle))) test_fail(__FILE__, __LINE__, "expected \"%s\" in \"%s\"", (needle), h_ ? h_ : "(null)"); } while (0)

/* Runs fn(arg) in a child process. Returns the child's exit status (or 128+signal)
 * and stores what it wrote on stderr (NUL-terminated, truncated to cap) in err. */
int test_run_child(void (*fn)(void *), void *arg, char *err, size_t cap);
/* Runs a shell command; returns its exit status and captures stdout and stderr
 * (either may be NULL). */
int test_run_cmd(const char *cmd, char *out, size_t out_cap, char *err, size_t err_cap);
/* A fresh scratch directory for the test (removed by the runner at exit). */
const char *test_tmpdir(void);
/* Writes text to path (a test helper); returns path. */
const char *test_write_file(const char *path, const char *text);

/* Largest |a-b| / (atol + rtol*|b|) over n elements: <= 1 means within tolerance. */
double test_max_err_f32(const float *a, const float *b, size_t n, double atol, double rtol);
double test_max_err_f64(const double *a, const double *b, size_t n, double atol, double rtol);

#endif
