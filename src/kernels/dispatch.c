/* dispatch: the one place that decides which kernels each ISA path uses. The table is
 * chosen once, on first use, from __builtin_cpu_supports (or MINIDL_ISA) and is
 * read-only afterwards; kernels_select() switches it (the test runner does so to run
 * every path). */
#include "kernels/dispatch.h"
#include "kernels/conv.h"
#include "kernels/ew.h"
#include "kernels/gemm.h"
#include "math_kernels.h"
#include "utils.h"

#include <stdlib.h>

static const char *const isa_names[ISA_COUNT] = {"ref", "sse2", "avx2", "avx512"};
static const struct KernelTable *current;

const char *isa_name(int isa) { return isa >= 0 && isa < ISA_COUNT ? isa_names[isa] : "unknown"; }

int isa_from_name(const char *name)
{
    for (int i = 0; i < ISA_COUNT; i++)
        if (!str_cmp(name, isa_names[i])) return i;
    return -1;
}

int kernels_isa_supported(int isa)
{
    __builtin_cpu_init();
    switch (isa) {
    case ISA_REF: case ISA_SSE2: return 1;
    case ISA_AVX2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case ISA_AVX512: return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                            __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                            __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return 0;
}

/* The one place that decides which kernels each ISA path uses. */
static const struct KernelTable tables[ISA_COUNT] = {
    {ISA_REF, &ew_kernels_par, &ew_kernels_ref, NULL, NULL},
    {ISA_SSE2, &ew_kernels_par, &ew_kernels_sse2, &gemm_kernels_sse2, &conv_kernels_sse2},
    {ISA_AVX2, &ew_kernels_par, &ew_kernels_avx2, &gemm_kernels_avx2, &conv_kernels_avx2},
    {ISA_AVX512, &ew_kernels_par, &ew_kernels_avx512, &gemm_kernels_avx512, &conv_kernels_avx512},
};

void kernels_select(int isa)
{
    if (isa < 0 || isa >= ISA_COUNT) panic("unknown ISA %d", isa);
    if (!kernels_isa_supported(isa))
        fatal("this CPU does not support the %s kernels (MINIDL_ISA=%s)", isa_names[isa], isa_names[isa]);
    current = &tables[isa];
}

static void kernels_init(void)
{
    const char *env = getenv("MINIDL_ISA");
    if (env && *env) {
        int isa = isa_from_name(env);
        if (isa < 0) fatal("MINIDL_ISA=%s: unknown ISA path; expected sse2, avx2, avx512 or ref", env);
        kernels_select(isa);
        return;
    }
    int best = ISA_SSE2;
    for (int i = ISA_AVX512; i > ISA_SSE2; i--)
        if (kernels_isa_supported(i)) { best = i; break; }
    kernels_select(best);
}

const struct KernelTable *kernels_get(void)
{
    if (!current) kernels_init();
    return current;
}

int kernels_isa(void) { return kernels_get()->isa; }
