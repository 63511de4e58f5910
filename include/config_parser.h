/* config_parser: the INI-style config DSL (SPEC section 10).
 *
 *   # comment                       [model] keys: input_dim=N | input_shape=C,H,W,
 *   [model]                           layer=Linear,in,out | layer=Conv2d,in,out,kh,kw,stride,pad,
 *   input_dim=784                     activation=ReLU|Sigmoid|Tanh|Softmax, dtype=float32|float64
 *   layer=Linear,784,64             [train] keys: optimizer=Adam|SGD, lr, epochs, batch_size,
 *   activation=ReLU                   loss=CrossEntropy|MSE, momentum, beta1, beta2, eps, seed,
 *   [train]                           shuffle=0|1, normalize=none|minmax|standard,
 *                                     lr_schedule=constant|cosine (beyond SPEC's keys),
 *                                     val_split=F (0 < F < 1), patience=N (0: off)
 *   lr=0.001
 * CRLF, a UTF-8 BOM, spaces around '=' and inline '#' comments are accepted. Errors
 * are "file:line: message" (with a "did you mean" hint for misspelt names). Each
 * layer's input is checked against the previous layer's output by its shape rule.
 *
 * The result is plain data: enums, numbers and a list of layer specs (layers.h); the
 * model module builds the network from it. */
#ifndef MINIDL_CONFIG_PARSER_H
#define MINIDL_CONFIG_PARSER_H

#include "layers.h"
#include "tensor.h"

#define CONFIG_MAX_LAYERS 64

enum OptimKind { OPT_ADAM, OPT_SGD };
enum LossKind { LOSS_MSE, LOSS_CROSS_ENTROPY };
/* Input normalisation: the network sees (x - shift) * scale, statistics of the training data. */
enum NormKind { NORM_NONE, NORM_MINMAX, NORM_STANDARD };
/* Learning-rate schedules over all steps of all epochs (optimizers.h optim_lr_at). */
enum LrSchedule { LR_CONSTANT = 0, LR_COSINE = 1 };

struct TrainConfig {
    char optimizer_name[16];   /* "Adam" or "SGD" */
    int optimizer;             /* enum OptimKind */
    double lr;
    uint64_t epochs;
    uint64_t batch_size;
    char loss_name[16];        /* "CrossEntropy" or "MSE" */
    double momentum, beta1, beta2, eps;
    uint64_t seed;
    int shuffle;
    int normalize;             /* enum NormKind */
    int lr_schedule;           /* enum LrSchedule, over all steps of all epochs */
    double val_split;          /* fraction held out for validation (0: none) */
    uint64_t patience;         /* early stopping: epochs without a lower validation loss (0: off) */
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
/* Do a and b describe the same training run? 0 if so; else 1 and, in what, the first
 * key that differs with both values ("lr: 0.001 against 0.002", "layer 3: ..."). */
int config_diff(const struct TrainConfig *a, const struct TrainConfig *b, char *what, size_t cap);

#endif
