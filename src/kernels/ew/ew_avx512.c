/* ew_avx512: the elementwise kernels for AVX-512F/DQ/BW/VL (compiled with those flags). */
#include "kernels/ew.h"

#include <immintrin.h>
#include <math.h>

#define SIMD_F64 0
#include "kernels/simd/avx512.h"
#include "ew_template.h"

#define SIMD_F64 1
#include "kernels/simd/avx512.h"
#include "ew_template.h"

EW_DEFINE_TABLE(avx512);
