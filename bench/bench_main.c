/* make bench: single-threaded figures for each ISA path, with yardsticks measured in
 * the same run (the part threads: 1 to all cores). Usage: bench_minidl [--quick] [part ...]
 * (parts: peak gemm ew layers step train dataset threads) */
#include "bench.h"
#include "math_kernels.h"
#include "utils.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

const char *bench_fmnist_dir(void)
{
    const char *dir = getenv("MINIDL_FMNIST_DIR");
    return dir && *dir ? dir : "/tmp/minidl-fmnist";
}

int main(int argc, char **argv)
{
    util_set_progname("bench");
    int quick = 0, any = 0;
    struct { const char *name; void (*fn)(int); } parts[] = {
        {"peak", bench_peak}, {"gemm", bench_gemm}, {"ew", bench_ew}, {"layers", bench_layers},
        {"step", bench_step}, {"train", bench_train}, {"dataset", bench_dataset}, {"threads", bench_threads},
    };
    int n_parts = (int)(sizeof parts / sizeof parts[0]);
    for (int i = 1; i < argc; i++) if (!strcmp(argv[i], "--quick")) quick = 1; else any = 1;
    printf("minidl bench: default ISA path %s\n", isa_name(kernels_isa()));
    for (int p = 0; p < n_parts; p++) {
        int wanted = !any;
        for (int i = 1; i < argc; i++) if (!strcmp(argv[i], parts[p].name)) wanted = 1;
        if (!wanted) continue;
        if (!parts[p].fn) { printf("\n[%s] not built\n", parts[p].name); continue; }
        printf("\n");
        fflush(stdout);
        parts[p].fn(quick);
        fflush(stdout);
    }
    return 0;
}
