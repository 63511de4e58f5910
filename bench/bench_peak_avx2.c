/* FMA peak with 256-bit vectors: 12 independent accumulators (of 16 ymm registers). */
#include "bench_peak.h"
#include "utils.h"

#include <immintrin.h>

#define PEAK_TYPE __m256
#define PEAK_TYPE_D __m256d
#define PEAK_FN bench_fma_avx2
#define PEAK_N 12
#define PEAK_P(name) _mm256_##name
#include "bench_peak_impl.h"
