/* cli: the argument handling train, infer and csv2bin share. */
#include "cli.h"
#include "math_kernels.h"
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
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { fputs(usage, stdout); exit(0); }
        else if (!strcmp(a, "-V") || !strcmp(a, "--version")) { cli_print_version(prog); exit(0); }
        else if (!opt(ctx, argc, argv, &i)) cli_usage_error("unknown option '%s'", a);
    }
    if (got < n_pos) { /* too many was refused above, at the first extra one */
        char fmt[64];
        snprintf(fmt, sizeof fmt, "expected %d arguments, got %%s", n_pos);
        cli_usage_error(fmt, "fewer");
    }
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

void cli_print_version(const char *prog)
{
    printf("%s %s (minidl), kernels: %s\n", prog, MINIDL_VERSION, isa_name(kernels_isa()));
}
