/* kernels/dispatch: the kernel table of the ISA path in use (internal to the library).
 *
 * One table per ISA path, filled once, on first use, from __builtin_cpu_supports
 * (MINIDL_ISA forces a path; math_kernels.h declares the ISA enum and the selection
 * functions) and read-only afterwards. The families' tables are declared in
 * kernels/ew.h, kernels/gemm.h and kernels/conv.h: include the ones you call. */
#ifndef MINIDL_KERNELS_DISPATCH_H
#define MINIDL_KERNELS_DISPATCH_H

struct EwKernels;
struct GemmKernels;
struct ConvKernels;

/* Everything dispatched for one ISA path; gemm and conv are NULL on the reference path
 * (gemm then runs its reference loops, Conv2d its im2col + gemm path). */
struct KernelTable {
    int isa;
    const struct EwKernels *ew;     /* the ISA's elementwise kernels, cut over the threads (ew_par.c) */
    const struct EwKernels *ew1;    /* the ISA's own, on the calling thread: for code already in a task */
    const struct GemmKernels *gemm;
    const struct ConvKernels *conv;
};

const struct KernelTable *kernels_get(void);

#endif
