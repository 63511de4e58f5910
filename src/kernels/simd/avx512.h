/* simd/avx512: the vector vocabulary of the AVX512 kernels (elementwise, conv), one
 * definition per dtype: SIMD_F64 0 gives float, 1 double. Included once per dtype,
 * before a kernel template; it first clears what the previous include defined. */
#include <immintrin.h>
#include <math.h>

#include "clear.h"

#if !SIMD_F64
#define T float
#define SFX f32
#define V __m512
#define EPR 16
#define VLOAD _mm512_loadu_ps
#define VSTORE _mm512_storeu_ps
#define VSTREAM _mm512_stream_ps
#define VSET1 _mm512_set1_ps
#define VZERO _mm512_setzero_ps
#define VADD _mm512_add_ps
#define VSUB _mm512_sub_ps
#define VMUL _mm512_mul_ps
#define VDIV _mm512_div_ps
#define VMAX _mm512_max_ps
#define VFMA _mm512_fmadd_ps
#define VSQRT _mm512_sqrt_ps
#define VSEL_GT0(x, g) _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ), g)
#define VLOAD_MASK(m, p) _mm512_maskz_loadu_ps((__mmask16)(m), p)
#define VSTORE_MASK(p, m, v) _mm512_mask_storeu_ps(p, (__mmask16)(m), v)
#define VPERM2(a, idx, b) _mm512_permutex2var_ps(a, idx, b)
#define VSHUF128(a, b, imm) _mm512_shuffle_f32x4(a, b, imm)
#define SSQRT sqrtf
#else
#define T double
#define SFX f64
#define V __m512d
#define EPR 8
#define VLOAD _mm512_loadu_pd
#define VSTORE _mm512_storeu_pd
#define VSTREAM _mm512_stream_pd
#define VSET1 _mm512_set1_pd
#define VZERO _mm512_setzero_pd
#define VADD _mm512_add_pd
#define VSUB _mm512_sub_pd
#define VMUL _mm512_mul_pd
#define VDIV _mm512_div_pd
#define VMAX _mm512_max_pd
#define VFMA _mm512_fmadd_pd
#define VSQRT _mm512_sqrt_pd
#define VSEL_GT0(x, g) _mm512_maskz_mov_pd(_mm512_cmp_pd_mask(x, _mm512_setzero_pd(), _CMP_GT_OQ), g)
#define VLOAD_MASK(m, p) _mm512_maskz_loadu_pd((__mmask8)(m), p)
#define VSTORE_MASK(p, m, v) _mm512_mask_storeu_pd(p, (__mmask8)(m), v)
#define VPERM2(a, idx, b) _mm512_permutex2var_pd(a, idx, b)
#define VSHUF128(a, b, imm) _mm512_shuffle_f64x2(a, b, imm)
#define SSQRT sqrt
/* 2^k from t = k + 0x1.8p52 (k whole, -1022 <= k <= 1023): k + 1023 into the exponent field */
#define VPOW2K(t) \
    _mm512_castsi512_pd(_mm512_slli_epi64(_mm512_add_epi64(_mm512_castpd_si512(t), _mm512_set1_epi64(1023)), 52))
#endif
#undef SIMD_F64
