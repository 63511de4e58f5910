/* simd/sse2: the vector vocabulary of the SSE2 kernels (elementwise, conv), one
 * definition per dtype: SIMD_F64 0 gives float, 1 double. Included once per dtype,
 * before a kernel template; it first clears what the previous include defined. */
#include <emmintrin.h>
#include <math.h>

#include "clear.h"

#if !SIMD_F64
#define T float
#define SFX f32
#define V __m128
#define EPR 4
#define VLOAD _mm_loadu_ps
#define VSTORE _mm_storeu_ps
#define VSTREAM _mm_stream_ps
#define VSET1 _mm_set1_ps
#define VZERO _mm_setzero_ps
#define VADD _mm_add_ps
#define VSUB _mm_sub_ps
#define VMUL _mm_mul_ps
#define VDIV _mm_div_ps
#define VMAX _mm_max_ps
#define VFMA(a, b, c) _mm_add_ps(_mm_mul_ps(a, b), c)
#define VSQRT _mm_sqrt_ps
#define VSEL_GT0(x, g) _mm_and_ps(_mm_cmpgt_ps(x, _mm_setzero_ps()), g)
#define SSQRT sqrtf
#else
#define T double
#define SFX f64
#define V __m128d
#define EPR 2
#define VLOAD _mm_loadu_pd
#define VSTORE _mm_storeu_pd
#define VSTREAM _mm_stream_pd
#define VSET1 _mm_set1_pd
#define VZERO _mm_setzero_pd
#define VADD _mm_add_pd
#define VSUB _mm_sub_pd
#define VMUL _mm_mul_pd
#define VDIV _mm_div_pd
#define VMAX _mm_max_pd
#define VFMA(a, b, c) _mm_add_pd(_mm_mul_pd(a, b), c)
#define VSQRT _mm_sqrt_pd
#define VSEL_GT0(x, g) _mm_and_pd(_mm_cmpgt_pd(x, _mm_setzero_pd()), g)
#define SSQRT sqrt
/* 2^k from t = k + 0x1.8p52 (k whole, -1022 <= k <= 1023): k + 1023 into the exponent field */
#define VPOW2K(t) _mm_castsi128_pd(_mm_slli_epi64(_mm_add_epi64(_mm_castpd_si128(t), _mm_set1_epi64x(1023)), 52))
#endif
#undef SIMD_F64
