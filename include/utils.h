/* utils: errors, logging, checks and the string helpers the readers build on.
 *
 * Three ways to stop, all printed on stderr with the program name first, none
 * compiled out:
 *   panic(fmt, ...)      internal error; also prints the source file and line
 *   fatal(fmt, ...)      user-facing error (bad input, bad path); exit 1, no source location
 *   CHECK(cond, fmt, ...) invariant; on failure prints the condition, file and line
 * User-facing messages name the input's own file:line:column themselves. */
#ifndef MINIDL_UTILS_H
#define MINIDL_UTILS_H

#include <stddef.h>
#include <stdint.h>

void util_set_progname(const char *argv0); /* basename of argv0 prefixes every message */
const char *util_progname(void);

_Noreturn void util_panic(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
_Noreturn void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Formats a message into err (when err and errlen are non-zero) and returns -1: the
 * error path of functions that report through an err buffer. */
int err_set(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));  /* stdout */
void log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));   /* stderr, prefixed */

#define panic(...) util_panic(__FILE__, __LINE__, __VA_ARGS__)
#define CHECK(cond, ...)                                                          \
    do {                                                                          \
        if (!(cond)) util_panic(__FILE__, __LINE__, "check failed: " #cond ": " __VA_ARGS__); \
    } while (0)

int str_cmp(const char *a, const char *b);            /* as strcmp */
int str_casecmp(const char *a, const char *b);        /* ASCII case-insensitive */
size_t str_len(const char *s);
size_t str_copy(char *dst, const char *src, size_t cap); /* always NUL-terminates; returns strlen(src) */
char *str_trim(char *s);                              /* strips ASCII blanks both ends, in place */
int str_edit_distance(const char *a, const char *b);  /* for "did you mean" hints */

/* Whole-string number parsing: the entire string must be the number (no blanks,
 * no trailing junk). Returns STR_OK and writes *out, or an error code and leaves
 * *out alone. str_to_float also rejects NaN and Inf. */
enum { STR_OK = 0, STR_EMPTY, STR_JUNK, STR_RANGE, STR_NONFINITE };
int str_to_int(const char *s, int64_t *out);
int str_to_float(const char *s, double *out);
const char *str_error(int code); /* "no digits", "trailing characters", ... */

/* Seeded generator (xoshiro256**), state held by the caller: no global state. */
struct Rng { uint64_t s[4]; };
void rng_seed(struct Rng *r, uint64_t seed);
uint64_t rng_next(struct Rng *r);
double rng_uniform(struct Rng *r);              /* [0, 1) with 53 random bits */
uint64_t rng_below(struct Rng *r, uint64_t n);  /* uniform in [0, n), n > 0, unbiased */

double time_now(void); /* monotonic seconds */

/* Runs fn(arg) and returns what it returns, or UTIL_SIGBUS when it touched a page of a
 * mapped file that is no longer there (another program truncated the file): the
 * signal that would kill the process becomes an error return. fn must leave nothing
 * half-done that a jump out of it would lose (no allocation in flight, no lock held, and no
 * par_run task reading unguarded: a jump out of a task would leave its job running on a
 * dead frame, so a parallel job guards each task itself). Threads may guard
 * at once; the SIGBUS disposition before the first is back once the last returns. */
#define UTIL_SIGBUS (-2)
int util_catch_sigbus(int (*fn)(void *), void *arg);
/* Keeps the handler installed between guards (0, or -1 when it cannot be), so that a
 * reader guarding every step (a mapped dataset's batches) does not install and restore
 * it each time; each hold is undone by one release. A guard then makes no system call
 * unless the read faults. */
int util_sigbus_hold(void);
void util_sigbus_release(void);
/* util_catch_sigbus for a caller that holds the handler (util_sigbus_hold succeeded):
 * no lock is taken, so threads that guard at once (a parallel batch gather, every
 * step) do not pass the lock's cache line between them. */
int util_catch_sigbus_held(int (*fn)(void *), void *arg);

#endif
