/* ew_avx2: the elementwise kernels for AVX2 + FMA (compiled with -mavx2 -mfma). */
#include "kernels/ew.h"

#include <immintrin.h>
#include <math.h>

#define SIMD_F64 0
#include "kernels/simd/avx2.h"
#include "ew_template.h"

#define SIMD_F64 1
#include "kernels/simd/avx2.h"
#include "ew_template.h"

EW_DEFINE_TABLE(avx2);
