/* export_onnx: a model as an ONNX file (see export.h), the protobuf wire format
 * written by hand.
 *
 * Protobuf in brief: a message is a sequence of fields, each a key (field number << 3
 * | wire type) as a varint, then a varint (wire type 0), 4 little-endian bytes (type
 * 5), or a varint length and that many bytes (type 2: strings, bytes, sub-messages).
 * Sub-messages are built in their own buffer, so their length is known when they are
 * appended. Repeated numbers are written unpacked, as proto2 (which onnx.proto uses)
 * does by default. Field numbers are onnx.proto's (ONNX 1.12, IR version 8).
 *
 * The graph: input "input" [N, D] -> Sub(input.shift), Mul(input.scale) when the model
 * normalises -> Reshape to [N, C, H, W] for a convolutional model -> one node per layer
 * (a Flatten before a Linear on C,H,W values) -> "output" [N, outputs]. Initializers:
 * every tensor of the model file under its own name (a BatchNorm's running statistics
 * too: its node reads them), plus "input.shape" for the Reshape. */
#include "cli.h"
#include "export_impl.h"

#include <stdio.h>
#include <string.h>

enum { WIRE_VARINT = 0, WIRE_LEN = 2, WIRE_FIXED32 = 5 };

/* onnx.proto: TensorProto.DataType and AttributeProto.AttributeType */
enum { ONNX_FLOAT = 1, ONNX_INT64 = 7, ONNX_DOUBLE = 11 };
enum { ATTR_FLOAT = 1, ATTR_INT = 2, ATTR_INTS = 7 };

#define ONNX_IR_VERSION 8
#define ONNX_OPSET 13

/* ---- the wire format ---- */

static void pb_varint(struct ExportBuf *b, uint64_t v)
{
    unsigned char s[10];
    size_t n = 0;
    do {
        s[n++] = (unsigned char)((v & 0x7F) | (v > 0x7F ? 0x80 : 0));
        v >>= 7;
    } while (v);
    buf_put(b, s, n);
}

static void pb_key(struct ExportBuf *b, uint32_t field, uint32_t wire) { pb_varint(b, (uint64_t)field << 3 | wire); }

/* int32 and int64 fields alike: a negative value is its 64-bit two's complement. */
static void pb_int(struct ExportBuf *b, uint32_t field, int64_t v)
{
    pb_key(b, field, WIRE_VARINT);
    pb_varint(b, (uint64_t)v);
}

static void pb_bytes(struct ExportBuf *b, uint32_t field, const void *p, size_t n)
{
    pb_key(b, field, WIRE_LEN);
    pb_varint(b, n);
    buf_put(b, p, n);
}

static void pb_str(struct ExportBuf *b, uint32_t field, const char *s) { pb_bytes(b, field, s, strlen(s)); }

/* A float field: its IEEE bits, little-endian. */
static void pb_float(struct ExportBuf *b, uint32_t field, float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    unsigned char s[4] = {(unsigned char)u, (unsigned char)(u >> 8), (unsigned char)(u >> 16),
                          (unsigned char)(u >> 24)};
    pb_key(b, field, WIRE_FIXED32);
    buf_put(b, s, sizeof s);
}

/* Appends the sub-message sub as field and frees it. */
static void pb_msg(struct ExportBuf *b, uint32_t field, struct ExportBuf *sub)
{
    pb_bytes(b, field, sub->data, sub->len);
    export_buf_free(sub);
}

/* ---- onnx.proto's messages ---- */

/* AttributeProto: name 1, f 2, i 3, ints 8, type 20. Appended to a node's attribute list. */
static void attr_ints(struct ExportBuf *attrs, const char *name, const int64_t *v, uint32_t n)
{
    struct ExportBuf a = {0};
    pb_str(&a, 1, name);
    for (uint32_t i = 0; i < n; i++) pb_int(&a, 8, v[i]);
    pb_int(&a, 20, ATTR_INTS);
    pb_msg(attrs, 5, &a);
}

static void attr_int(struct ExportBuf *attrs, const char *name, int64_t v)
{
    struct ExportBuf a = {0};
    pb_str(&a, 1, name);
    pb_int(&a, 3, v);
    pb_int(&a, 20, ATTR_INT);
    pb_msg(attrs, 5, &a);
}

static void attr_float(struct ExportBuf *attrs, const char *name, float v)
{
    struct ExportBuf a = {0};
    pb_str(&a, 1, name);
    pb_float(&a, 2, v);
    pb_int(&a, 20, ATTR_FLOAT);
    pb_msg(attrs, 5, &a);
}

/* TensorProto: dims 1, data_type 2, name 8, raw_data 9 (little-endian). */
static void tensor_proto(struct ExportBuf *b, uint32_t field, const char *name, int32_t type, uint32_t ndim,
                         const uint64_t *dims, const void *raw, size_t bytes)
{
    struct ExportBuf t = {0};
    for (uint32_t i = 0; i < ndim; i++) pb_int(&t, 1, (int64_t)dims[i]);
    pb_int(&t, 2, type);
    pb_str(&t, 8, name);
    pb_bytes(&t, 9, raw, bytes);
    pb_msg(b, field, &t);
}

/* ValueInfoProto (name 1, type 2) of a [N, n] tensor: TypeProto.tensor_type 1 {elem_type
 * 1, shape 2 {dim 1 {dim_value 1 | dim_param 2}}}. */
static void value_info(struct ExportBuf *b, uint32_t field, const char *name, int32_t elem, uint64_t n)
{
    struct ExportBuf dim_n = {0}, dim = {0}, shape = {0}, tensor = {0}, type = {0}, vi = {0};
    pb_str(&dim_n, 2, "N");
    pb_int(&dim, 1, (int64_t)n);
    pb_msg(&shape, 1, &dim_n);
    pb_msg(&shape, 1, &dim);
    pb_int(&tensor, 1, elem);
    pb_msg(&tensor, 2, &shape);
    pb_msg(&type, 1, &tensor);
    pb_str(&vi, 1, name);
    pb_msg(&vi, 2, &type);
    pb_msg(b, field, &vi);
}

/* ---- the graph ---- */

struct OGen {
    struct ExportBuf nodes;     /* GraphProto.node entries (field 1) */
    struct ExportBuf inits;     /* GraphProto.initializer entries (field 5) */
    int32_t elem;               /* ONNX_FLOAT or ONNX_DOUBLE */
};

/* NodeProto: input 1, output 2, name 3, op_type 4, attribute 5 (attrs, taken over). */
static void node(struct OGen *g, const char *op, const char *name, const char *const *in, uint32_t n_in,
                 const char *out, struct ExportBuf *attrs)
{
    struct ExportBuf nd = {0};
    for (uint32_t i = 0; i < n_in; i++) pb_str(&nd, 1, in[i]);
    pb_str(&nd, 2, out);
    pb_str(&nd, 3, name);
    pb_str(&nd, 4, op);
    if (attrs) {
        buf_put(&nd, attrs->data, attrs->len);
        export_buf_free(attrs);
    }
    pb_msg(&g->nodes, 1, &nd);
}

/* "linear1.weight": a parameter's initializer, as the model file names it. */
static void param_name(char *buf, size_t cap, const struct ExportStep *s, uint32_t j)
{
    snprintf(buf, cap, "%s.%s", s->name, layer_type(s->kind)->param_names[j]);
}

/* ---- the table: how each layer kind is exported ---- */

typedef void (*onnx_emit_fn)(struct OGen *g, const struct ExportStep *s, const char *in, const char *out);

struct ORow {
    onnx_emit_fn emit;          /* the step's nodes; NULL: cannot export */
    const char *cannot;         /* why not, when emit is NULL */
    int identity;               /* no node at inference (Dropout is left out) */
};

static void emit_linear(struct OGen *g, const struct ExportStep *s, const char *in, const char *out)
{
    char w[96], b[96], flat[64];
    param_name(w, sizeof w, s, 0);
    param_name(b, sizeof b, s, 1);
    if (s->in.ndim == 3) { /* Gemm takes [N, C*H*W]: the same bytes, per sample in NCHW order */
        char name[64];
        snprintf(name, sizeof name, "%s.flatten", s->name);
        snprintf(flat, sizeof flat, "%s.flat", s->name);
        struct ExportBuf attrs = {0};
        attr_int(&attrs, "axis", 1);
        node(g, "Flatten", name, &in, 1, flat, &attrs);
        in = flat;
    }
    const char *ins[3] = {in, w, b};
    struct ExportBuf attrs = {0};
    attr_int(&attrs, "transB", 1);
    node(g, "Gemm", s->name, ins, 3, out, &attrs);
}

static void emit_conv2d(struct OGen *g, const struct ExportStep *s, const char *in, const char *out)
{
    char w[96], b[96];
    param_name(w, sizeof w, s, 0);
    param_name(b, sizeof b, s, 1);
    const struct LayerSpec *l = &s->mod->spec;
    int64_t k[2] = {(int64_t)l->args.conv2d.kh, (int64_t)l->args.conv2d.kw};
    int64_t st = (int64_t)l->args.conv2d.stride, p = (int64_t)l->args.conv2d.padding;
    int64_t strides[2] = {st, st}, pads[4] = {p, p, p, p};
    struct ExportBuf attrs = {0};
    attr_ints(&attrs, "kernel_shape", k, 2);
    attr_ints(&attrs, "strides", strides, 2);
    attr_ints(&attrs, "pads", pads, 4);
    const char *ins[3] = {in, w, b};
    node(g, "Conv", s->name, ins, 3, out, &attrs);
}

static void emit_relu(struct OGen *g, const struct ExportStep *s, const char *in, const char *out)
{
    node(g, "Relu", s->name, &in, 1, out, NULL);
}

static void emit_sigmoid(struct OGen *g, const struct ExportStep *s, const char *in, const char *out)
{
    node(g, "Sigmoid", s->name, &in, 1, out, NULL);
}

static void emit_tanh(struct OGen *g, const struct ExportStep *s, const char *in, const char *out)
{
    node(g, "Tanh", s->name, &in, 1, out, NULL);
}

/* minidl's Softmax takes a flat input (the shape rule), so the feature axis is 1. */
static void emit_softmax(struct OGen *g, const struct ExportStep *s, const char *in, const char *out)
{
    struct ExportBuf attrs = {0};
    attr_int(&attrs, "axis", 1);
    node(g, "Softmax", s->name, &in, 1, out, &attrs);
}

static void emit_pool(struct OGen *g, const struct ExportStep *s, const char *in, const char *out)
{
    const struct LayerSpec *l = &s->mod->spec;
    int64_t k[2] = {(int64_t)l->args.pool.k, (int64_t)l->args.pool.k};
    int64_t st[2] = {(int64_t)l->args.pool.stride, (int64_t)l->args.pool.stride};
    struct ExportBuf attrs = {0};
    attr_ints(&attrs, "kernel_shape", k, 2);
    attr_ints(&attrs, "strides", st, 2);
    node(g, s->kind == MOD_MAXPOOL2D ? "MaxPool" : "AveragePool", s->name, &in, 1, out, &attrs);
}

/* BatchNormalization (opset 9, the one of opset 13) in inference mode: inputs X, scale,
 * B, input_mean, input_var on axis 1, as N x C and N x C x H x W put their channels.
 * ONNX's momentum weighs the old running value: 1 - PyTorch's. */
static void emit_batchnorm(struct OGen *g, const struct ExportStep *s, const char *in, const char *out)
{
    const struct LayerType *lt = layer_type(s->kind);
    char names[4][96];
    const char *ins[5] = {in, names[0], names[1], names[2], names[3]};
    for (uint32_t j = 0; j < 4; j++)
        snprintf(names[j], sizeof names[j], "%s.%s", s->name, j < 2 ? lt->param_names[j] : lt->state_names[j - 2]);
    struct ExportBuf attrs = {0};
    attr_float(&attrs, "epsilon", (float)NN_BATCHNORM_EPS);
    attr_float(&attrs, "momentum", (float)(1 - NN_BATCHNORM_MOMENTUM));
    node(g, "BatchNormalization", s->name, ins, 5, out, &attrs);
}

static const struct ORow onnx_rows[] = {
    [MOD_LINEAR] = {emit_linear, NULL},   [MOD_CONV2D] = {emit_conv2d, NULL}, [MOD_RELU] = {emit_relu, NULL},
    [MOD_SIGMOID] = {emit_sigmoid, NULL}, [MOD_TANH] = {emit_tanh, NULL},     [MOD_SOFTMAX] = {emit_softmax, NULL},
    [MOD_MAXPOOL2D] = {emit_pool, NULL, 0}, [MOD_AVGPOOL2D] = {emit_pool, NULL, 0},
    [MOD_DROPOUT] = {NULL, NULL, 1},
    [MOD_BATCHNORM1D] = {emit_batchnorm, NULL}, [MOD_BATCHNORM2D] = {emit_batchnorm, NULL},
};
_Static_assert(sizeof onnx_rows / sizeof *onnx_rows == MOD_COUNT, "the ONNX exporter needs a row per layer kind");

/* Sub and Mul by the statistics, then the reshape of a convolutional input. Returns
 * the name of the network's input. */
static const char *emit_input(struct OGen *g, const struct ExportPlan *p)
{
    const char *cur = "input";
    if (p->m->shift) {
        const char *sub[2] = {cur, "input.shift"}, *mul[2] = {"input.centred", "input.scale"};
        node(g, "Sub", "input.sub", sub, 2, "input.centred", NULL);
        node(g, "Mul", "input.mul", mul, 2, "input.normalised", NULL);
        cur = "input.normalised";
    }
    if (p->input.ndim == 3) {
        int64_t shape[4] = {-1, (int64_t)p->input.d[0], (int64_t)p->input.d[1], (int64_t)p->input.d[2]};
        uint64_t four = 4;
        tensor_proto(&g->inits, 5, "input.shape", ONNX_INT64, 1, &four, shape, sizeof shape);
        const char *in[2] = {cur, "input.shape"};
        node(g, "Reshape", "input.reshape", in, 2, "input.nchw", NULL);
        cur = "input.nchw";
    }
    return cur;
}

static void emit_initializers(struct OGen *g, const struct Model *m)
{
    for (uint32_t i = 0; i < m->n_named; i++) {
        const struct Tensor *t = m->named[i].t;
        tensor_proto(&g->inits, 5, m->named[i].name, g->elem, (uint32_t)t->ndim, t->shape, t->data,
                     tensor_numel(t) * dtype_size(t->dtype));
    }
}

/* GraphProto: node 1, name 2, initializer 5, doc_string 10, input 11, output 12. */
static int emit_graph(struct OGen *g, const struct ExportPlan *p, struct ExportBuf *graph,
                      char *err, size_t errlen)
{
    const char *cur = emit_input(g, p);
    char outs[2][40]; /* the last node's output (cur) and the next one's, in turn */
    uint32_t last = p->n, k = 0; /* the step whose output is "output"; nodes so far */
    for (uint32_t i = 0; i < p->n; i++)
        if (!onnx_rows[p->steps[i].kind].identity) last = i;
    for (uint32_t i = 0; i < p->n; i++) {
        const struct ExportStep *s = &p->steps[i];
        const struct ORow *row = &onnx_rows[s->kind];
        if (row->identity) continue;
        if (!row->emit) return export_cannot(s, "ONNX", row->cannot, err, errlen);
        char *out = outs[k++ % 2]; /* not by i: a left-out Dropout would make it cur */
        str_copy(out, i == last ? "output" : s->name, sizeof outs[0]);
        row->emit(g, s, cur, out);
        cur = out;
    }
    if (last == p->n) node(g, "Identity", "output", &cur, 1, "output", NULL); /* no layer does anything */
    emit_initializers(g, p->m);
    buf_put(graph, g->nodes.data, g->nodes.len);
    pb_str(graph, 2, "minidl");
    buf_put(graph, g->inits.data, g->inits.len);
    char doc[512];
    snprintf(doc, sizeof doc, "%s, exported by dlexport %s: output is the %s", p->source, MINIDL_VERSION,
             p->classify ? "class probabilities (as infer --probs)" : "regression outputs (as infer)");
    pb_str(graph, 10, doc);
    value_info(graph, 11, "input", g->elem, p->inputs);
    value_info(graph, 12, "output", g->elem, p->outputs);
    return 0;
}

/* ModelProto: ir_version 1, producer_name 2, producer_version 3, graph 7, opset_import 8
 * (OperatorSetIdProto: domain 1, "" by default, version 2). */
int export_onnx(const struct Model *m, const char *source, struct ExportBuf *out, char *err, size_t errlen)
{
    struct ExportPlan p;
    if (export_plan(m, source, &p, err, errlen)) return -1;
    struct OGen g = {{0}, {0}, p.dtype == DT_FLOAT32 ? ONNX_FLOAT : ONNX_DOUBLE};
    struct ExportBuf graph = {0}, opset = {0};
    int bad = emit_graph(&g, &p, &graph, err, errlen);
    export_buf_free(&g.nodes);
    export_buf_free(&g.inits);
    if (bad) {
        export_buf_free(&graph);
        return -1;
    }
    pb_int(out, 1, ONNX_IR_VERSION);
    pb_str(out, 2, "minidl");
    pb_str(out, 3, MINIDL_VERSION);
    pb_msg(out, 7, &graph);
    pb_int(&opset, 2, ONNX_OPSET);
    pb_msg(out, 8, &opset);
    return 0;
}
