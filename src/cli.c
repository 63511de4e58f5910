/* cli: the argument handling train, infer and csv2bin share. */
#include "cli.h"
#include "math_kernels.h"
#include "threads.h"
#include "utils.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cli_usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "%s: ", util_progname());
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry '%s --help' for more information.\n", util_progname());
    exit(2);
}

/* --threads N as given (0: not given); read by cli_threads_start and the version line. */
static int threads_opt;

int cli_take_threads(int argc, char **argv, int *i)
{
    if (strcmp(argv[*i], "--threads")) return 0;
    const char *v = cli_option_value(argc, argv, i, "a thread count");
    threads_opt = threads_parse(v);
    if (threads_opt < 0) cli_usage_error("option '--threads': '%s' is not a whole number from 1 to 1024", v);
    return 1;
}

/* The count the pool gets: --threads, else MINIDL_THREADS, else the cores available. */
static int threads_wanted(void)
{
    if (threads_opt) return threads_opt;
    int n = threads_from_env();
    if (n < 0) cli_usage_error("MINIDL_THREADS=%s: expected a whole number from 1 to 1024", getenv("MINIDL_THREADS"));
    return n;
}

void cli_threads_start(void) { threads_set(threads_wanted()); }

void cli_parse_args(int argc, char **argv, const char *prog, const char *usage, const char **pos, int n_pos,
                    cli_option_fn opt, void *ctx)
{
    int got = 0, only_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || !a[1]) {
            if (got == n_pos) cli_usage_error("unexpected argument '%s'", a);
            pos[got++] = a;
        } else if (!strcmp(a, "--")) only_pos = 1;
        else if (cli_take_threads(argc, argv, &i)) continue;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { fputs(usage, stdout); exit(0); }
        else if (!strcmp(a, "-V") || !strcmp(a, "--version")) { cli_print_version(prog); exit(0); }
        else if (!opt(ctx, argc, argv, &i)) cli_usage_error("unknown option '%s'", a);
    }
    if (got < n_pos) { /* too many was refused above, at the first extra one */
        char fmt[64];
        snprintf(fmt, sizeof fmt, "expected %d arguments, got %%s", n_pos);
        cli_usage_error(fmt, "fewer");
    }
    cli_threads_start();
}

const char *cli_option_value(int argc, char **argv, int *i, const char *what)
{
    if (*i + 1 >= argc) {
        char fmt[64];
        snprintf(fmt, sizeof fmt, "option '%%s' needs %s", what);
        cli_usage_error(fmt, argv[*i]);
    }
    return argv[++*i];
}

void cli_option_error(const char *opt, const char *what, const char *value)
{
    char msg[1024];
    int k = snprintf(msg, sizeof msg, "option '%s': ", opt);
    if (k > 0 && (size_t)k < sizeof msg) snprintf(msg + k, sizeof msg - (size_t)k, what, value);
    cli_usage_error("%s", msg);
}

uint64_t cli_option_uint(int argc, char **argv, int *i, uint64_t min, uint64_t max)
{
    const char *opt = argv[*i], *v = cli_option_value(argc, argv, i, "a number");
    int64_t n;
    int r = str_to_int(v, &n);
    if (r == STR_OK && n >= 0 && (uint64_t)n >= min && (uint64_t)n <= max) return (uint64_t)n;
    char what[128];
    if (r == STR_OK || r == STR_RANGE)
        snprintf(what, sizeof what, "'%%s' is out of range (%llu to %llu)", (unsigned long long)min,
                 (unsigned long long)max);
    else
        snprintf(what, sizeof what, "invalid number '%%s' (a whole number from %llu)", (unsigned long long)min);
    cli_option_error(opt, what, v);
}

void cli_print_version(const char *prog)
{
    int n = threads_wanted();
    printf("%s %s (minidl), kernels: %s, threads: %d\n", prog, MINIDL_VERSION, isa_name(kernels_isa()), n);
}
