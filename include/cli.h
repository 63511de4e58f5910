/* cli: the argument rules train and infer share, usage errors and the version line.
 * The network is model.h's, the training loop train.h's. */
#ifndef MINIDL_CLI_H
#define MINIDL_CLI_H

#include <stdint.h>

#define MINIDL_VERSION "0.1.0"

/* "prog: <fmt with arg>" and a --help hint on stderr, exit 2. */
_Noreturn void cli_usage_error(const char *fmt, const char *arg);
/* Handles option argv[*i] (and any value after it, advancing *i): 1 if taken, 0 if unknown. */
typedef int (*cli_option_fn)(void *ctx, int argc, char **argv, int *i);
/* The argument rules train and infer share: exactly n_pos positionals into pos (a lone "-"
 * is one, "--" ends the options), -h/--help prints usage and -V/--version the version (exit
 * 0), any other option goes to opt; an unknown option or a wrong count is a usage error. */
void cli_parse_args(int argc, char **argv, const char *prog, const char *usage, const char **pos, int n_pos,
                    cli_option_fn opt, void *ctx);
/* Takes "--threads N" at argv[*i] (1 if it was that option; a bad N is a usage error
 * naming the option). cli_parse_args does this itself, and then cli_threads_start. */
int cli_take_threads(int argc, char **argv, int *i);
/* Starts the worker pool: --threads N, else MINIDL_THREADS (a bad value is a usage
 * error), else every core the process may run on (threads.h threads_available). */
void cli_threads_start(void);
/* The value after option argv[*i] (advancing *i); without one, the usage error
 * "option '<opt>' needs <what>". */
const char *cli_option_value(int argc, char **argv, int *i, const char *what);
/* The usage error "option '<opt>': <what with value>", e.g. "option '--seed': invalid
 * number 'abc'": every error about an option's value names the option as given. */
_Noreturn void cli_option_error(const char *opt, const char *what, const char *value);
/* The whole number in [min, max] after option argv[*i] (advancing *i); anything else is
 * cli_option_error's "invalid number" or "out of range" naming the option. */
uint64_t cli_option_uint(int argc, char **argv, int *i, uint64_t min, uint64_t max);
/* "train 0.1.0 (minidl), kernels: avx512, threads: 2" */
void cli_print_version(const char *prog);

#endif
