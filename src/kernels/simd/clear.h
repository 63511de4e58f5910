/* simd/clear: forgets the vector vocabulary of the previous simd/<isa>.h include, so
 * the next one (the other dtype) can define it afresh. No include guard on purpose. */
#undef T
#undef SFX
#undef V
#undef EPR
#undef VLOAD
#undef VSTORE
#undef VSTREAM
#undef VSET1
#undef VZERO
#undef VADD
#undef VSUB
#undef VMUL
#undef VDIV
#undef VMAX
#undef VFMA
#undef VSQRT
#undef VSEL_GT0
#undef VLOAD_MASK
#undef VSTORE_MASK
#undef VPERM2
#undef VSHUF128
#undef SSQRT
#undef VPOW2K
