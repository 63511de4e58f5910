/* utils: errors, logging, string helpers, the seeded generator and a clock. */
#include "utils.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *progname = "minidl";

void util_set_progname(const char *argv0)
{
    const char *slash = strrchr(argv0, '/');
    progname = slash ? slash + 1 : argv0;
}

const char *util_progname(void) { return progname; }

/* "prog: message[suffix]" on stderr, after flushing stdout so the order holds. */
static void report(const char *suffix, const char *fmt, va_list ap)
{
    fflush(stdout);
    fprintf(stderr, "%s: ", progname);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "%s\n", suffix);
}

void util_panic(const char *file, int line, const char *fmt, ...)
{
    char where[300];
    va_list ap;
    snprintf(where, sizeof where, " [%s:%d]", file, line);
    va_start(ap, fmt);
    report(where, fmt, ap);
    va_end(ap);
    exit(1);
}

void fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report("", fmt, ap);
    va_end(ap);
    exit(1);
}

int err_set(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void log_info(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
}

void log_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report("", fmt, ap);
    va_end(ap);
}

int str_cmp(const char *a, const char *b)
{
    while (*a && *a == *b) a++, b++;
    return (unsigned char)*a - (unsigned char)*b;
}

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

int str_casecmp(const char *a, const char *b)
{
    while (*a && lower((unsigned char)*a) == lower((unsigned char)*b)) a++, b++;
    return lower((unsigned char)*a) - lower((unsigned char)*b);
}

size_t str_len(const char *s)
{
    const char *p = s;
    while (*p) p++;
    return (size_t)(p - s);
}

size_t str_copy(char *dst, const char *src, size_t cap)
{
    size_t n = str_len(src);
    if (cap) {
        size_t k = n < cap - 1 ? n : cap - 1;
        memcpy(dst, src, k);
        dst[k] = 0;
    }
    return n;
}

static int is_blank(int c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

char *str_trim(char *s)
{
    while (is_blank((unsigned char)*s)) s++;
    size_t n = str_len(s);
    while (n && is_blank((unsigned char)s[n - 1])) s[--n] = 0;
    return s;
}

int str_edit_distance(const char *a, const char *b)
{
    size_t la = str_len(a), lb = str_len(b);
    if (la > 63 || lb > 63) return 99;
    int row[64];
    for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            int cost = lower((unsigned char)a[i - 1]) != lower((unsigned char)b[j - 1]);
            int best = diag + cost;
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

int str_to_int(const char *s, int64_t *out)
{
    if (!*s) return STR_EMPTY;
    const char *p = s;
    if (*p == '+' || *p == '-') p++;
    if (*p < '0' || *p > '9') return STR_EMPTY;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*end) return STR_JUNK;
    if (errno == ERANGE) return STR_RANGE;
    *out = (int64_t)v;
    return STR_OK;
}

int str_to_float(const char *s, double *out)
{
    if (!*s) return STR_EMPTY;
    const char *p = s;
    if (*p == '+' || *p == '-') p++;
    /* digits or a point followed by a digit: refuses "inf", "nan", "0x..". */
    if (!((*p >= '0' && *p <= '9') || (*p == '.' && p[1] >= '0' && p[1] <= '9'))) {
        if (!str_casecmp(p, "inf") || !str_casecmp(p, "infinity") || !str_casecmp(p, "nan"))
            return STR_NONFINITE;
        return STR_EMPTY;
    }
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) return STR_JUNK;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (*end) return STR_JUNK;
    if (errno == ERANGE && (v == HUGE_VAL || v == -HUGE_VAL)) return STR_RANGE;
    if (!isfinite(v)) return STR_NONFINITE;
    *out = v;
    return STR_OK;
}

const char *str_error(int code)
{
    switch (code) {
    case STR_OK: return "ok";
    case STR_EMPTY: return "not a number";
    case STR_JUNK: return "trailing characters after the number";
    case STR_RANGE: return "number out of range";
    case STR_NONFINITE: return "NaN or Inf is not allowed";
    }
    return "unknown error";
}

/* xoshiro256** (Blackman and Vigna), seeded through splitmix64. */
static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void rng_seed(struct Rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t rng_next(struct Rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double rng_uniform(struct Rng *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }

uint64_t rng_below(struct Rng *r, uint64_t n)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = rng_next(r); while (x >= limit);
    return x % n;
}

double time_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- surviving a mapped file that shrinks ---- */

/* SIGBUS from a fault is delivered to the thread that faulted: one jump target each,
 * and the signal mask the fault struck under, which the jump out must put back (the
 * handler runs with SIGBUS blocked and, under a sanitizer's wrapper, more). The handler
 * takes it from the interrupted context, so a guard need not save the mask itself: a
 * system call per guard, 1.2 us on this project's VM, on every batch of a mapped
 * dataset. */
static _Thread_local sigjmp_buf *sigbus_target;
static _Thread_local sigset_t sigbus_mask;

static void on_sigbus(int sig, siginfo_t *info, void *context)
{
    (void)sig, (void)info;
    if (sigbus_target) {
        sigbus_mask = ((const ucontext_t *)context)->uc_sigmask;
        siglongjmp(*sigbus_target, 1);
    }
    signal(SIGBUS, SIG_DFL); /* not ours: die of it as without the handler */
    raise(SIGBUS);
}

/* The handler is process-wide and threads guard their own reads at once (the parallel
 * CSV parse guards every task): the first guard in installs it, the last one out puts
 * the old disposition back, so no thread restores it under another that still reads. */
static pthread_mutex_t sigbus_lock = PTHREAD_MUTEX_INITIALIZER;
static int sigbus_users;
static struct sigaction sigbus_before;

static int sigbus_arm(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    int ok = 1;
    pthread_mutex_lock(&sigbus_lock);
    if (sigbus_users == 0) ok = sigaction(SIGBUS, &sa, &sigbus_before) == 0;
    sigbus_users += ok;
    pthread_mutex_unlock(&sigbus_lock);
    return ok;
}

static void sigbus_disarm(void)
{
    pthread_mutex_lock(&sigbus_lock);
    if (--sigbus_users == 0) sigaction(SIGBUS, &sigbus_before, NULL);
    pthread_mutex_unlock(&sigbus_lock);
}

int util_sigbus_hold(void) { return sigbus_arm() ? 0 : -1; }
void util_sigbus_release(void) { sigbus_disarm(); }

int util_catch_sigbus(int (*fn)(void *), void *arg)
{
    if (!sigbus_arm()) return fn(arg);
    int r = util_catch_sigbus_held(fn, arg);
    sigbus_disarm();
    return r;
}

int util_catch_sigbus_held(int (*fn)(void *), void *arg)
{
    sigjmp_buf here, *outer = sigbus_target;
    volatile int r = UTIL_SIGBUS;
    if (sigsetjmp(here, 0) == 0) {
        sigbus_target = &here;
        r = fn(arg);
    } else {
        pthread_sigmask(SIG_SETMASK, &sigbus_mask, NULL); /* the handler's mask must not outlive it */
    }
    sigbus_target = outer;
    return r;
}
