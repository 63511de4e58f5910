/* ew_sse2: the elementwise kernels for the x86-64 baseline (SSE2, no FMA). */
#include "kernels/ew.h"

#include <emmintrin.h>
#include <math.h>

#define SIMD_F64 0
#include "kernels/simd/sse2.h"
#include "ew_template.h"

#define SIMD_F64 1
#include "kernels/simd/sse2.h"
#include "ew_template.h"

EW_DEFINE_TABLE(sse2);
