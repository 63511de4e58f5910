/* layers: the table of layer kinds, which everything that knows about layers reads.
 *
 * A layer kind is one source file under src/layers/ holding its shape rule, its
 * constructor, and its forward and backward, and one row (struct LayerType) in the
 * table of src/nn_layers.c. The config parser reads a row's name and arguments and
 * runs its shape rule; the model builds modules with its constructor, runs its
 * forward, names parameters with its prefix and parameter names, and prints the
 * summary from it; the exporters will read it too. Adding a layer: its file, its
 * enum value below, its row.
 *
 * This header is plain data and function pointers: it includes no graph or tensor
 * code, so the config parser can use it without depending on the network. */
#ifndef MINIDL_LAYERS_H
#define MINIDL_LAYERS_H

#include <stddef.h>
#include <stdint.h>

/* Layer kinds, in table order. */
enum ModuleKind {
    MOD_LINEAR, MOD_CONV2D, MOD_RELU, MOD_SIGMOID, MOD_TANH, MOD_SOFTMAX,
    MOD_MAXPOOL2D, MOD_AVGPOOL2D, MOD_DROPOUT, MOD_BATCHNORM1D, MOD_BATCHNORM2D, MOD_COUNT
};

/* Caps that keep every size product far from uint64 overflow and refuse layers that
 * could never be allocated: each per-sample output and each layer's parameters. */
#define LAYER_MAX_ELEMS (1ULL << 32)
#define LAYER_MAX_ARGS 6

/* A layer's arguments as the config lists them (v: whole numbers, r: the reals of
 * LAYER_ARG_REAL_UNIT arguments, at the same index), and by name. */
union LayerArgs {
    uint64_t v[LAYER_MAX_ARGS];
    double r[LAYER_MAX_ARGS];
    struct { uint64_t in, out; } linear;
    struct { uint64_t in_ch, out_ch, kh, kw, stride, padding; } conv2d;
    struct { uint64_t k, stride; } pool;        /* MaxPool2d, AvgPool2d: k x k windows */
    struct { double p; } dropout;
    struct { uint64_t n; } batchnorm;           /* features (1d) or channels (2d) */
};

/* What one sample looks like between layers: (features) or (C, H, W). */
struct LayerShape {
    uint32_t ndim;      /* 1 or 3 */
    uint64_t d[3];
};

/* One layer of a config: plain data, made by the config parser. */
struct LayerSpec {
    uint32_t kind;          /* enum ModuleKind */
    union LayerArgs args;
    struct LayerShape out;  /* per sample, from the shape rule */
    uint64_t n_params;      /* values the model file holds for the layer: parameters and state */
    int line;               /* of the config, for messages */
};

/* How an argument is read: a whole number of at least min, or a real in [0, 1). */
enum LayerArgType { LAYER_ARG_COUNT = 0, LAYER_ARG_REAL_UNIT };

struct LayerArgDef {
    const char *name;       /* in messages: "in_ch" */
    uint64_t min;           /* smallest value accepted (padding may be 0); whole numbers only */
    uint32_t type;          /* enum LayerArgType */
    uint32_t default_to;    /* 0: required; i + 1: may be left out (trailing arguments only),
                             * and then takes the value of argument i (a pool's stride: k) */
};

struct Module;
struct Node;
struct Rng;

struct LayerType {
    const char *name;       /* in the config and the summary: "Linear", "ReLU" */
    int activation;         /* given as activation=Name (1) or layer=Name,args (0) */
    const char *prefix;     /* module names (linear1) and so parameter names (linear1.weight) */
    uint32_t n_args;
    const struct LayerArgDef *args;
    uint32_t n_params;
    const char *const *param_names;   /* "weight", "bias", in the module's params order */
    /* State: tensors saved in the model file (after the parameters) but not trained by
     * the optimizer, such as running statistics ("running_mean"). */
    uint32_t n_state;
    const char *const *state_names;
    /* The shape rule: l's per-sample output from its input in (first: in is the
     * network's input, for messages); sets out and *n_params (parameter and state
     * values), or returns -1 with a message (no file or line) in err. */
    int (*shape)(const struct LayerSpec *l, const struct LayerShape *in, int first, struct LayerShape *out,
                 uint64_t *n_params, char *err, size_t errlen);
    /* The module of a checked spec, its parameters drawn from rng (PyTorch's default
     * initialisation), in dtype. */
    struct Module *(*create)(const struct LayerSpec *l, uint32_t dtype, struct Rng *rng);
    /* Adds the layer's op to input's graph (struct Module's forward). */
    void (*forward)(struct Module *m, struct Node *input, struct Node **output);
    /* The backward of the op forward makes (set on its nodes; listed here so the table
     * shows the whole layer). */
    void (*backward)(struct Node *self);
};

/* The row of a kind (kind < MOD_COUNT). */
const struct LayerType *layer_type(uint32_t kind);

/* "Linear(784, 128)", "Dropout(0.25)": a layer as the config gives it (every argument,
 * defaults filled in); an activation by its name. */
void layer_spec_str(char *buf, size_t cap, const struct LayerSpec *l);

/* "(16x14x14)" for a C,H,W shape, "" for a flat one: how messages show a shape. */
void layer_shape_note(char *buf, size_t cap, const struct LayerShape *s);
/* "16x14x14" or "784": how the summary shows one. */
void layer_shape_str(char *buf, size_t cap, const struct LayerShape *s);
uint64_t layer_shape_numel(const struct LayerShape *s);
/* What feeds a layer in messages: "the input has" or "the previous layer outputs". */
const char *layer_source(int first);

#endif
