/* conv_avx512_ops: the conv template's own vocabulary (conv_template.h) for AVX-512,
 * written once in simd/avx512.h's per-dtype names; conv_avx512.c includes it after each
 * dtype's simd/avx512.h. No include guard on purpose (the template #undefs all of it). */
#define VLOAD_PART(p, n) VLOAD_MASK((1u << (n)) - 1, p)
#define VSTORE_PART(p, v, n) VSTORE_MASK(p, (1u << (n)) - 1, v)
#define CONV_FWD_ACC 16
#define CONV_WG_OB 4
#define CONV_WG_TB 5
#define CONV_IG_ACC 16
#define VDEINT2(a, b, ev, od) do { V a_ = (a), b_ = (b);                                       \
    ev = VPERM2(a_, CONV_IDX(even), b_), od = VPERM2(a_, CONV_IDX(odd), b_); } while (0)
#define VINT2(ev, od, a, b) do { V e_ = (ev), o_ = (od);                                       \
    a = VPERM2(e_, CONV_IDX(lo), o_), b = VPERM2(e_, CONV_IDX(hi), o_); } while (0)
/* 128-bit blocks: h = (v0+v2, v1+v3, ..), then (v0+v2) + (v1+v3) in block 0, added to
 * p's 16 bytes by 128-bit moves (masked ones cost the weight gradient 1.5%) */
#undef CONV_ADD128 /* the other dtype's */
#if EPR == 16
#define CONV_ADD128(p, q) _mm_storeu_ps(p, _mm_add_ps(_mm_loadu_ps(p), _mm512_castps512_ps128(q)))
#else
#define CONV_ADD128(p, q) _mm_storeu_pd(p, _mm_add_pd(_mm_loadu_pd(p), _mm512_castpd512_pd128(q)))
#endif
#define VFOLD_ADD(p, v) do { V v_ = (v), h_ = VADD(v_, VSHUF128(v_, v_, 0x4E));                 \
    CONV_ADD128(p, VADD(h_, VSHUF128(h_, h_, 0xB1))); } while (0)
/* ab = (a0+a2, a1+a3, b0+b2, b1+b3), then the pairs of ab and cd: the same sums in the
 * same order as VFOLD_ADD, four at a time */
#define VFOLD4_ADD(p, a, b, c, d) do { V a_ = (a), b_ = (b), c_ = (c), d_ = (d);               \
    V ab_ = VADD(VSHUF128(a_, b_, 0x44), VSHUF128(a_, b_, 0xEE));                              \
    V cd_ = VADD(VSHUF128(c_, d_, 0x44), VSHUF128(c_, d_, 0xEE));                              \
    V s_ = VADD(VSHUF128(ab_, cd_, 0x88), VSHUF128(ab_, cd_, 0xDD));                           \
    VSTORE(p, VADD(VLOAD(p), s_)); } while (0)
