/* modelcmp A.bin B.bin TOL: how far two model files of the same network differ. The
 * test: per tensor, the relative difference of the whole tensor |a - b| / |a| (2-norms),
 * the largest over the tensors, at most TOL (exit 0; 1 when larger, also on an error).
 * Also printed: the largest element-wise |a - b| / max(|a|, |b|, 1e-3 x the tensor's
 * largest magnitude), which float32 rounding alone moves by some 1e-5 after an epoch of
 * Adam (train's own SSE2 and AVX-512 paths differ that much). For tests/mpi/run.sh. */
#include "model_io.h"
#include "utils.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    struct ModelFile a, b;
    char err[1024];
    util_set_progname(argv[0]);
    if (argc != 4) fatal("usage: modelcmp A.bin B.bin TOL");
    if (model_load(argv[1], &a, err, sizeof err) || model_load(argv[2], &b, err, sizeof err)) fatal("%s", err);
    if (a.n != b.n) fatal("%u tensors against %u", a.n, b.n);
    double worst = 0, worst_norm = 0;
    const char *where = "", *where_norm = "";
    for (uint32_t i = 0; i < a.n; i++) {
        const struct Tensor *x = a.tensors[i].t, *y = model_file_find(&b, a.tensors[i].name);
        if (!y || tensor_numel(y) != tensor_numel(x)) fatal("%s: not in %s with its shape", a.tensors[i].name, argv[2]);
        uint64_t n = tensor_numel(x);
        double big = 0, dd = 0, nn = 0;
        for (uint64_t k = 0; k < n; k++) big = fmax(big, fabs(tensor_at(x, k)));
        for (uint64_t k = 0; k < n; k++) {
            double u = tensor_at(x, k), v = tensor_at(y, k);
            dd += (u - v) * (u - v), nn += u * u;
        }
        if (nn > 0 && !(sqrt(dd / nn) <= worst_norm)) worst_norm = sqrt(dd / nn), where_norm = a.tensors[i].name;
        for (uint64_t k = 0; k < n; k++) {
            double u = tensor_at(x, k), v = tensor_at(y, k);
            double d = fabs(u - v) / fmax(fmax(fabs(u), fabs(v)), fmax(1e-3 * big, 1e-300));
            if (!(d <= worst)) worst = d, where = a.tensors[i].name;
        }
    }
    printf("max relative difference %.3g (%s), of the norms %.3g (%s)\n", worst, where, worst_norm, where_norm);
    model_file_free(&a);
    model_file_free(&b);
    return worst_norm <= atof(argv[3]) ? 0 : 1;
}
