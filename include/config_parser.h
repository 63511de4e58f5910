/* config_parser: the INI-style config DSL (SPEC section 10).
 *
 *   # comment                       [model] keys: input_dim=N | input_shape=C,H,W,
 *   [model]                           layer=Linear,in,out | layer=Conv2d,in,out,kh,kw,stride,pad,
 *   input_dim=784                     activation=ReLU|Sigmoid|Tanh|Softmax, dtype=float32|float64
 *   layer=Linear,784,64             [train] keys: optimizer=Adam|SGD, lr, epochs, batch_size,
 *   activation=ReLU                   loss=CrossEntropy|MSE, momentum, beta1, beta2, eps, seed,
 *   [train]                           shuffle=0|1, normalize=none|minmax|standard,
 *                                     lr_schedule=constant|cosine (beyond SPEC's keys)
 *   lr=0.001
 * CRLF, a UTF-8 BOM, spaces around '=' and inline '#' comments are accepted. Errors
 * are "file:line: message" (with a "did you mean" hint for misspelt names). Each
 * layer's input is checked against the previous layer's output. */
#ifndef MINIDL_CONFIG_PARSER_H
#define MINIDL_CONFIG_PARSER_H

#include "nn_layers.h"
#include "optimizers.h"   /* enum LrSchedule */

#define CONFIG_MAX_LAYERS 64

struct LayerSpec {
    uint32_t kind;          /* enum ModuleKind */
    uint64_t args[6];       /* Linear: in, out; Conv2d: in_ch, out_ch, kh, kw, stride, padding */
    uint64_t out_shape[3];  /* output per sample: (C,H,W) or (features) */
    uint32_t out_ndim;      /* 1 or 3 */
    uint64_t n_params;
    int line;
};

struct TrainConfig {
    char optimizer_name[16];   /* "Adam" or "SGD" */
    double lr;
    uint64_t epochs;
    uint64_t batch_size;
    char loss_name[16];        /* "CrossEntropy" or "MSE" */
    double momentum, beta1, beta2, eps;
    uint64_t seed;
    int shuffle;
    int normalize;             /* enum NormKind */
    int lr_schedule;           /* enum LrSchedule, over all steps of all epochs */
    uint32_t dtype;            /* DT_FLOAT32 or DT_FLOAT64 */
    uint32_t input_ndim;       /* 1 (input_dim) or 3 (input_shape) */
    uint64_t input_shape[3];
    uint64_t input_dim;        /* product of input_shape */
    uint64_t output_dim;       /* features out of the last layer */
    int loss;                  /* enum LossKind */
    uint32_t n_layers;
    struct LayerSpec layers[CONFIG_MAX_LAYERS];
};

/* Defaults: Adam, lr 0.001, epochs 10, batch_size 64, CrossEntropy, momentum 0,
 * beta1 0.9, beta2 0.999, eps 1e-8, seed 42, shuffle 1, normalize none, lr_schedule
 * constant, float32. */
void config_defaults(struct TrainConfig *cfg);
int config_parse_text(const char *text, size_t len, const char *filename,
                      struct TrainConfig *cfg, char *err, size_t errlen);
/* A config file's text, NUL-terminated (length in *len; free with mem_free), or NULL
 * and the path and reason in err: it cannot be read, or it is over 1 MiB (/dev/zero). */
char *config_read_file(const char *path, size_t *len, char *err, size_t errlen);
int config_parse_file(const char *path, struct TrainConfig *cfg, char *err, size_t errlen);
/* Builds the modules in config order, parameters drawn from rng and named linear1,
 * conv2d1, ... Returns a heap array of n_layers modules; free with config_free_modules. */
struct Module **config_build_modules(const struct TrainConfig *cfg, struct Rng *rng);
void config_free_modules(struct Module **mods, uint32_t n);

#endif
