/* dlexport: a saved model as a standalone C file or an ONNX file (export.h).
 * Exit status: 0 success, 1 error, 2 usage error. */
#include "cli.h"
#include "export.h"
#include "model.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: dlexport [options] <model.bin>\n"
    "\n"
    "Writes the model as one dependency-free C99 file (PREFIX_forward, PREFIX_predict,\n"
    "PREFIX_INPUTS, PREFIX_OUTPUTS) or as an ONNX file (input \"input\" [N, D], output\n"
    "\"output\"), both computing what infer --probs prints for a classifier and what\n"
    "infer prints for a regressor.\n"
    "\n"
    "options:\n"
    "  -h, --help          show this help and exit\n"
    "  -V, --version       show the version and exit\n"
    "  -f, --format FMT    c or onnx (default: from -o's extension, .c or .onnx, else c)\n"
    "  -o, --output FILE   write to FILE, atomically (default, or -: standard output)\n"
    "  -n, --name PREFIX   prefix of the C names (default: -o's base name when it is a\n"
    "                      C identifier, else \"model\")\n"
    "      --header FILE   also write a C header declaring the API\n"
    "  -c, --config FILE   the model's config, for files saved without one\n"
    "  -q, --quiet         do not print the sizes on stderr\n";

enum { FMT_NONE, FMT_C, FMT_ONNX };

struct Options { const char *model, *out, *name, *header, *config; int format, quiet; };

static int take_option(void *ctx, int argc, char **argv, int *i)
{
    struct Options *o = ctx;
    const char *a = argv[*i];
    if (!strcmp(a, "-f") || !strcmp(a, "--format")) {
        const char *v = cli_option_value(argc, argv, i, "c or onnx");
        if (!strcmp(v, "c")) o->format = FMT_C;
        else if (!strcmp(v, "onnx")) o->format = FMT_ONNX;
        else cli_option_error(a, "unknown format '%s' (expected c or onnx)", v);
    } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) o->out = cli_option_value(argc, argv, i, "a file");
    else if (!strcmp(a, "-n") || !strcmp(a, "--name")) o->name = cli_option_value(argc, argv, i, "a prefix");
    else if (!strcmp(a, "--header")) o->header = cli_option_value(argc, argv, i, "a file");
    else if (!strcmp(a, "-c") || !strcmp(a, "--config")) o->config = cli_option_value(argc, argv, i, "a file");
    else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) o->quiet = 1;
    else return 0;
    return 1;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* The base name of path without its extension, when it is a usable prefix. */
static const char *prefix_from_path(const char *path, char *buf, size_t cap)
{
    const char *base = strrchr(path, '/');
    str_copy(buf, base ? base + 1 : path, cap);
    char *dot = strrchr(buf, '.');
    if (dot) *dot = 0;
    return export_prefix_ok(buf) ? buf : "model";
}

static void parse_args(int argc, char **argv, struct Options *o, char *prefix, size_t cap)
{
    memset(o, 0, sizeof *o);
    cli_parse_args(argc, argv, "dlexport", usage, &o->model, 1, take_option, o);
    if (o->out && !strcmp(o->out, "-")) o->out = NULL; /* standard output, as without -o */
    if (o->format == FMT_NONE) o->format = o->out && ends_with(o->out, ".onnx") ? FMT_ONNX : FMT_C;
    if (o->name && !export_prefix_ok(o->name))
        cli_option_error("--name", "'%s' is not a usable prefix (a C identifier of at most 32 characters, not starting with _)",
                         o->name);
    if (o->header && o->format != FMT_C) cli_usage_error("%s", "--header goes with the C format");
    if (!o->out && o->format == FMT_ONNX && isatty(STDOUT_FILENO))
        cli_usage_error("%s", "an ONNX file is binary: give -o FILE or redirect standard output");
    o->name = o->name ? o->name : o->out ? prefix_from_path(o->out, prefix, cap) : "model";
}

/* To path atomically, or to standard output when path is NULL. */
static void write_out(const char *path, const struct ExportBuf *b)
{
    char err[1024];
    if (path) {
        if (model_save_bytes(path, b->data, b->len, err, sizeof err)) fatal("%s", err);
        return;
    }
    if (fwrite(b->data, 1, b->len, stdout) != b->len || fflush(stdout) != 0)
        fatal("error writing to standard output: %s", strerror(errno));
}

int main(int argc, char **argv)
{
    util_set_progname(argv[0]);
    struct Options o;
    char prefix[256], err[1024];
    parse_args(argc, argv, &o, prefix, sizeof prefix);
    struct Model m;
    if (model_from_file(&m, o.model, o.config, err, sizeof err)) fatal("%s", err);
    struct ExportBuf out = {0}, header = {0};
    struct ExportSizes sz;
    const char *dest = o.out ? o.out : "standard output";
    int bad = o.format == FMT_C ? export_c(&m, o.name, o.model, &out, o.header ? &header : NULL, &sz, err, sizeof err)
                                : export_onnx(&m, o.model, &out, err, sizeof err);
    model_free(&m);
    if (bad) fatal("%s: %s", o.model, err);
    write_out(o.out, &out);
    if (o.header) write_out(o.header, &header);
    if (!o.quiet && o.format == FMT_C) {
        char stack[128] = "";
        if (sz.stack_bytes)
            snprintf(stack, sizeof stack, ", and %llu bytes of stack in %s_predict", (unsigned long long)sz.stack_bytes,
                     o.name);
        log_err("%s: %llu bytes of constant data (weights), %llu bytes of RAM (activation buffers)%s", dest,
                (unsigned long long)sz.const_bytes, (unsigned long long)sz.ram_bytes, stack);
    } else if (!o.quiet) {
        log_err("%s: %zu bytes of ONNX", dest, out.len);
    }
    export_buf_free(&out);
    export_buf_free(&header);
    return 0;
}
