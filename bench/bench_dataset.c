/* bench dataset: loading Fashion-MNIST train (60000 x 784) from CSV and from the binary
 * format, float32, median of several loads in this process.
 *
 * The files come from scripts/fmnist.sh DIR (bench_fmnist_dir); without them the part
 * says how to make them and skips. */
#include "bench.h"
#include "dataset.h"
#include "tensor.h"
#include "utils.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

void bench_dataset(int quick);

/* Median seconds of reps loads of path; -1 if it cannot be read. */
static double time_load(const char *path, int reps, uint64_t *rows, uint64_t *cols)
{
    double t[16];
    char err[512];
    for (int i = 0; i < reps; i++) {
        struct Tensor *x;
        double t0 = time_now();
        if (csv_read_matrix(path, DT_FLOAT32, &x, err, sizeof err)) {
            printf("  %s\n", err);
            return -1;
        }
        t[i] = time_now() - t0;
        *rows = x->shape[0];
        *cols = x->shape[1];
        tensor_free(x);
    }
    return bench_median(t, reps);
}

void bench_dataset(int quick)
{
    const char *dir = bench_fmnist_dir();
    char csv[1024], bin[1024];
    snprintf(csv, sizeof csv, "%s/fmnist_train_x.csv", dir);
    snprintf(bin, sizeof bin, "%s/fmnist_train.bin", dir);
    printf("== dataset: Fashion-MNIST train load, float32 ==\n");
    struct stat st;
    if (stat(csv, &st) != 0 || stat(bin, &st) != 0) {
        printf("  skipped: no %s or %s (make csv2bin; scripts/fmnist.sh %s, or set MINIDL_FMNIST_DIR)\n",
               csv, bin, dir);
        return;
    }
    int reps = quick ? 3 : 7;
    const char *paths[2] = {csv, bin}, *kinds[2] = {"CSV", "binary"};
    const double targets[2] = {0.5, 0.1};
    for (int k = 0; k < 2; k++) {
        uint64_t rows = 0, cols = 0;
        double s = time_load(paths[k], reps, &rows, &cols);
        if (s < 0) continue;
        printf("  %-7s %llu x %llu  %.3f s median of %d  (target <= %.1f s)\n", kinds[k],
               (unsigned long long)rows, (unsigned long long)cols, s, reps, targets[k]);
    }
}
