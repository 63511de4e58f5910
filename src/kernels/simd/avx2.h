/* simd/avx2: the vector vocabulary of the AVX2 kernels (elementwise, conv), one
 * definition per dtype: SIMD_F64 0 gives float, 1 double. Included once per dtype,
 * before a kernel template; it first clears what the previous include defined. */
#include <immintrin.h>
#include <math.h>

#include "clear.h"

#if !SIMD_F64
#define T float
#define SFX f32
#define V __m256
#define EPR 8
#define VLOAD _mm256_loadu_ps
#define VSTORE _mm256_storeu_ps
#define VSTREAM _mm256_stream_ps
#define VSET1 _mm256_set1_ps
#define VZERO _mm256_setzero_ps
#define VADD _mm256_add_ps
#define VSUB _mm256_sub_ps
#define VMUL _mm256_mul_ps
#define VDIV _mm256_div_ps
#define VMAX _mm256_max_ps
#define VFMA _mm256_fmadd_ps
#define VSQRT _mm256_sqrt_ps
#define VSEL_GT0(x, g) _mm256_and_ps(_mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ), g)
#define SSQRT sqrtf
#else
#define T double
#define SFX f64
#define V __m256d
#define EPR 4
#define VLOAD _mm256_loadu_pd
#define VSTORE _mm256_storeu_pd
#define VSTREAM _mm256_stream_pd
#define VSET1 _mm256_set1_pd
#define VZERO _mm256_setzero_pd
#define VADD _mm256_add_pd
#define VSUB _mm256_sub_pd
#define VMUL _mm256_mul_pd
#define VDIV _mm256_div_pd
#define VMAX _mm256_max_pd
#define VFMA _mm256_fmadd_pd
#define VSQRT _mm256_sqrt_pd
#define VSEL_GT0(x, g) _mm256_and_pd(_mm256_cmp_pd(x, _mm256_setzero_pd(), _CMP_GT_OQ), g)
#define SSQRT sqrt
/* 2^k from t = k + 0x1.8p52 (k whole, -1022 <= k <= 1023): k + 1023 into the exponent field */
#define VPOW2K(t) \
    _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi64(_mm256_castpd_si256(t), _mm256_set1_epi64x(1023)), 52))
#endif
#undef SIMD_F64
