/* The benchmark program's parts; each lives in its own file and is optional. */
#ifndef MINIDL_BENCH_H
#define MINIDL_BENCH_H

/* Each part prints its own table on stdout. quick != 0: fewer repetitions. */
void bench_peak(int quick) __attribute__((weak));
void bench_gemm(int quick) __attribute__((weak));
void bench_ew(int quick) __attribute__((weak));
void bench_step(int quick) __attribute__((weak));
void bench_train(int quick) __attribute__((weak));
void bench_dataset(int quick) __attribute__((weak));
void bench_threads(int quick) __attribute__((weak));
void bench_layers(int quick) __attribute__((weak));

double bench_median(double *v, int n); /* sorts v */
/* Where scripts/fmnist.sh put the Fashion-MNIST files: $MINIDL_FMNIST_DIR, else
 * /tmp/minidl-fmnist (as scripts/compare_torch.sh uses). */
const char *bench_fmnist_dir(void);

#endif
