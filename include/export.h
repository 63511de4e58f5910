/* export: a trained model as a standalone C99 file or as an ONNX file.
 *
 * Both exporters compute what infer prints: for a classifier (CrossEntropy) the softmax
 * probabilities of the pre-softmax values (a final Softmax layer is not applied twice),
 * for a regressor (MSE) the network's outputs. The input normalisation of the model
 * file, (x - shift) * scale, is built in. Each exporter reads the layer table (layers.h)
 * through its own table indexed by enum ModuleKind, guarded by a static assert on
 * MOD_COUNT: a layer kind without a row does not compile, and a row marked "cannot
 * export" gives an error naming the layer.
 *
 * C: one C99 file that includes only <math.h> and <stddef.h>: the weights as static
 *   const arrays in the model's dtype (T = float or double), two static activation
 *   buffers sized to the largest activations that live in them, and
 *     void PREFIX_forward(const T *x, T *y);   x: PREFIX_INPUTS values, y: PREFIX_OUTPUTS
 *     int PREFIX_predict(const T *x);          the class (classifiers only)
 *     #define PREFIX_INPUTS, PREFIX_OUTPUTS    (PREFIX in upper case)
 *   No allocation, no library calls but exp/tanh (expf/tanhf for float32). A BatchNorm
 *   after a Linear or Conv2d is folded into its weights, as infer folds it; any other
 *   runs as a scale and a shift per channel, rounded to the dtype as infer rounds them.
 * ONNX: protobuf written by hand; IR version 8, opset 13; input "input" [N, D], output
 *   "output" [N, outputs], N a dynamic dimension; initializers named as the model
 *   file's tensors; a convolutional model reshapes its input inside; a BatchNorm is a
 *   BatchNormalization node reading its running statistics.
 *
 * Both fill a growable byte buffer, which the caller writes out (atomically with
 * model_save_bytes). They return 0, or -1 with the message in err. */
#ifndef MINIDL_EXPORT_H
#define MINIDL_EXPORT_H

#include <stddef.h>
#include <stdint.h>

struct Model;

/* Bytes made by an exporter; owned, free with export_buf_free. */
struct ExportBuf {
    unsigned char *data;
    size_t len, cap;
};

void export_buf_free(struct ExportBuf *b);

/* What the C export needs on the target. */
struct ExportSizes {
    uint64_t const_bytes;   /* the weights and normalisation statistics (flash), as written:
                             * a folded BatchNorm costs nothing, another 2 x channels */
    uint64_t ram_bytes;     /* the static activation buffers */
    uint64_t stack_bytes;   /* PREFIX_predict's output array on the stack (0 for regressors) */
};

/* Is name usable as the C prefix (an identifier of at most 32 characters, not starting
 * with an underscore)? */
int export_prefix_ok(const char *name);

/* The C file into c (and, when h is not NULL, the header declaring its API) for the
 * model m loaded from source (named in the files' comments). */
int export_c(const struct Model *m, const char *prefix, const char *source, struct ExportBuf *c, struct ExportBuf *h,
             struct ExportSizes *sizes, char *err, size_t errlen);

/* The ONNX file of m into out. */
int export_onnx(const struct Model *m, const char *source, struct ExportBuf *out, char *err, size_t errlen);

#endif
