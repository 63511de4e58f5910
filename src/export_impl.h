/* export_impl: what the C and ONNX exporters share: the byte buffer they fill and the
 * plan, the model's layers as the exporters walk them. */
#ifndef MINIDL_EXPORT_IMPL_H
#define MINIDL_EXPORT_IMPL_H

#include "export.h"
#include "model.h"

void buf_put(struct ExportBuf *b, const void *p, size_t n);
void buf_printf(struct ExportBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* One layer as exported. A classifier's plan ends in an output softmax: the model's
 * final Softmax if it has one, else one the exporter adds (mod NULL), so the export
 * computes infer --probs whether or not the model ends in Softmax. */
struct ExportStep {
    uint32_t kind;              /* enum ModuleKind */
    const struct Module *mod;   /* NULL for an added output softmax */
    struct LayerShape in, out;  /* per sample */
    char name[32];              /* "linear1", or "output_softmax" when added */
};

struct ExportPlan {
    const struct Model *m;
    char source[128];                /* the model file's base name, printable ASCII, for comments */
    uint32_t dtype;
    int classify;                    /* steps[n - 1] is the output softmax */
    struct LayerShape input;
    uint64_t inputs, outputs;        /* per sample */
    uint32_t n;
    struct ExportStep steps[CONFIG_MAX_LAYERS + 1];
};

/* The plan of m, loaded from the file source; fails when a weight is not finite or a
 * BatchNorm's running variance is negative (no export could reproduce infer's NaNs). */
int export_plan(const struct Model *m, const char *source, struct ExportPlan *p, char *err, size_t errlen);
/* "layer 'dropout1' (Dropout) cannot be exported to <format>: <why>" in err; returns -1. */
int export_cannot(const struct ExportStep *s, const char *format, const char *why, char *err, size_t errlen);
/* "Linear(64, 10)" or "ReLU": a step as the config gives it. */
void export_step_str(char *buf, size_t cap, const struct ExportStep *s);

#endif
