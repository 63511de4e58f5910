/* conv_avx512: the direct convolution kernels for AVX-512F/DQ/BW/VL (32 zmm registers:
 * 16 accumulators per tile leave room for the loaded rows). */
#include "kernels.h"

#include <immintrin.h>

#define T float
#define SFX f32
#define V __m512
#define EPR 16
#define VLOAD _mm512_loadu_ps
#define VSTORE _mm512_storeu_ps
#define VSET1 _mm512_set1_ps
#define VZERO _mm512_setzero_ps
#define VADD _mm512_add_ps
#define VFMA _mm512_fmadd_ps
#define VLOAD_PART(p, n) _mm512_maskz_loadu_ps((__mmask16)((1u << (n)) - 1), p)
#define VSTORE_PART(p, v, n) _mm512_mask_storeu_ps(p, (__mmask16)((1u << (n)) - 1), v)
#define CONV_FWD_ACC 16
#define CONV_WG_OB 4
#define CONV_WG_TB 4
#define CONV_IG_ACC 16
#include "conv_template.h"

#define T double
#define SFX f64
#define V __m512d
#define EPR 8
#define VLOAD _mm512_loadu_pd
#define VSTORE _mm512_storeu_pd
#define VSET1 _mm512_set1_pd
#define VZERO _mm512_setzero_pd
#define VADD _mm512_add_pd
#define VFMA _mm512_fmadd_pd
#define VLOAD_PART(p, n) _mm512_maskz_loadu_pd((__mmask8)((1u << (n)) - 1), p)
#define VSTORE_PART(p, v, n) _mm512_mask_storeu_pd(p, (__mmask8)((1u << (n)) - 1), v)
#define CONV_FWD_ACC 16
#define CONV_WG_OB 4
#define CONV_WG_TB 4
#define CONV_IG_ACC 16
#include "conv_template.h"

CONV_DEFINE_TABLE(avx512);
