/* FMA peak loops, one file per ISA (compiled with that ISA's flags); call only on a CPU
 * that has it. Each runs independent FMAs for about `seconds` and returns GFLOP/s. */
#ifndef MINIDL_BENCH_PEAK_H
#define MINIDL_BENCH_PEAK_H

double bench_fma_avx512(int f64, double seconds);
double bench_fma_avx2(int f64, double seconds);

#endif
