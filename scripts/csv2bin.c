/* csv2bin: converts a CSV dataset into minidl's binary dataset (the DLASM1 container
 * with tensors "data" and, given a labels file, "labels", after a scalar "align" that
 * puts the data at byte 64, where it can be memory-mapped), which loads many times
 * faster and can stand wherever a CSV is accepted.
 *
 *   csv2bin [--dtype float32|float64] [--threads N] data.csv [labels.csv] out.bin
 *
 * The CSVs are checked exactly as train and infer check them. Labels are stored as they
 * are (class indices or regression targets). Default dtype float32: pixel values and
 * class indices are exact in it, and the file is half the size. Exit 0, 1 on a bad
 * input or a failed write, 2 on a usage error. */
#include "cli.h"
#include "dataset.h"
#include "utils.h"

#include <stdio.h>
#include <string.h>

static int usage(FILE *f, int code)
{
    fprintf(f, "usage: %s [--dtype float32|float64] [--threads N] data.csv [labels.csv] out.bin\n"
               "Converts a CSV dataset (and its labels) into a binary dataset. --threads N: worker\n"
               "threads for parsing (default: MINIDL_THREADS, else every core this process may use).\n",
            util_progname());
    return code;
}

int main(int argc, char **argv)
{
    util_set_progname(argv[0]);
    uint32_t dtype = DT_FLOAT32;
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return usage(stdout, 0);
        if (cli_take_threads(argc, argv, &i)) continue;
        if (!strcmp(argv[i], "--dtype")) {
            const char *v = cli_option_value(argc, argv, &i, "float32 or float64");
            if (!strcmp(v, "float32")) dtype = DT_FLOAT32;
            else if (!strcmp(v, "float64")) dtype = DT_FLOAT64;
            else cli_option_error("--dtype", "unknown dtype '%s' (float32 or float64)", v);
            continue;
        }
        cli_usage_error("unknown option '%s'", argv[i]);
    }
    cli_threads_start();
    int rest = argc - i;
    if (rest < 2 || rest > 3) return usage(stderr, 2);
    const char *x_path = argv[i], *y_path = rest == 3 ? argv[i + 1] : NULL, *out = argv[argc - 1];
    char err[1024];
    struct Dataset ds;
    if (dataset_load(&ds, x_path, y_path, dtype, 0, err, sizeof err)) {
        log_err("%s", err);
        return 1;
    }
    int r = dataset_save_binary(&ds, out, err, sizeof err);
    if (r) log_err("%s", err);
    else log_err("%llu samples of %llu features%s to %s", (unsigned long long)ds.n, (unsigned long long)ds.dim,
                 ds.y ? " with labels" : "", out);
    dataset_free(&ds);
    return r ? 1 : 0;
}
