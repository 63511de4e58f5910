/* conv_avx512: the direct convolution kernels for AVX-512F/DQ/BW/VL (32 zmm registers:
 * 16 accumulators per tile leave room for the loaded rows). */
#include "kernels/conv.h"

#include <immintrin.h>
#include <stdint.h>

/* permutex2var indices: element i of (a, b) is a[i] below the lane count, else b */
static const int32_t even_f32[16] = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
static const int32_t odd_f32[16] = {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31};
static const int32_t lo_f32[16] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23};
static const int32_t hi_f32[16] = {8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
static const int64_t even_f64[8] = {0, 2, 4, 6, 8, 10, 12, 14}, odd_f64[8] = {1, 3, 5, 7, 9, 11, 13, 15};
static const int64_t lo_f64[8] = {0, 8, 1, 9, 2, 10, 3, 11}, hi_f64[8] = {4, 12, 5, 13, 6, 14, 7, 15};
#define CONV_IDX_(name, sfx) _mm512_loadu_si512((const void *)name##_##sfx)
#define CONV_IDX_SFX(name, sfx) CONV_IDX_(name, sfx)
#define CONV_IDX(name) CONV_IDX_SFX(name, SFX) /* the table for the dtype in hand */

#define SIMD_F64 0
#include "kernels/simd/avx512.h"
#include "conv_avx512_ops.h"
#include "conv_template.h"

#define SIMD_F64 1
#include "kernels/simd/avx512.h"
#include "conv_avx512_ops.h"
#include "conv_template.h"

CONV_DEFINE_TABLE(avx512);
