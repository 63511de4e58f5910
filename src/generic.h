/* generic: one source for both dtypes. A template macro M(T, sfx) is instantiated for
 * float (_f32) and double (_f64); DT_CALL picks the instance by dtype once per call,
 * never inside a per-element loop. Template functions take data as void pointers. */
#ifndef MINIDL_GENERIC_H
#define MINIDL_GENERIC_H

#include "tensor.h"

#define GEN_BOTH(M) M(float, f32) M(double, f64)
#define DT_CALL(dt, fn, ...) ((dt) == DT_FLOAT32 ? fn##_f32(__VA_ARGS__) : fn##_f64(__VA_ARGS__))

#endif
