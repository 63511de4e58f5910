/* FMA peak with 512-bit vectors: 16 independent accumulators hide the FMA latency. */
#include "bench_peak.h"
#include "utils.h"

#include <immintrin.h>

#define PEAK_TYPE __m512
#define PEAK_TYPE_D __m512d
#define PEAK_FN bench_fma_avx512
#define PEAK_N 16
#define PEAK_P(name) _mm512_##name
#include "bench_peak_impl.h"
