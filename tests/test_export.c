/* The exporters end to end, through the real train, infer and dlexport binaries (found
 * through MINIDL_BIN): each example model exported to C, compiled with the system
 * compiler, run on test rows and compared with infer; the ONNX files decoded by the
 * small protobuf reader below and their graphs checked (nodes, attributes, shapes, and
 * initializers byte for byte against the model file); the command's errors. */
#include "test.h"
#include "mem.h"
#include "model_io.h"
#include "utils.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e.h"

/* A whole file, NUL-terminated (mem_free it), or NULL. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0, k;
    char *buf = mem_alloc(cap);
    while ((k = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += k;
        if (cap - n < 2) buf = mem_realloc(buf, cap *= 2);
    }
    fclose(f);
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

/* The numbers of a file of comma-separated rows, row-major, in v (mem_free it). */
static double *read_numbers(const char *path, uint64_t *rows, uint64_t *cols)
{
    char *text = slurp(path, NULL);
    *rows = *cols = 0;
    if (!text) return NULL;
    uint64_t n = 0, cap = 1024;
    double *v = mem_alloc(cap * sizeof *v);
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        uint64_t c = 0;
        for (char *p = line; *p;) {
            char *end;
            double x = strtod(p, &end);
            if (end == p) break;
            if (n == cap) v = mem_realloc(v, (cap *= 2) * sizeof *v);
            v[n++] = x, c++;
            p = *end == ',' ? end + 1 : end;
        }
        if (!*rows) *cols = c;
        (*rows)++;
    }
    mem_free(text);
    return v;
}

/* ---- the C export against infer ---- */

struct Case {
    const char *name;       /* also the C prefix */
    const char *config;
    const char *train_x, *train_y, *test_x;
    const char *epochs;
    int f64, classify;
    const char *sizes;      /* what dlexport must print ("N bytes of constant data ..."), or NULL */
    int bn_calls, bn_folded; /* BatchNorms run as scale and shift, and folded into the layer before */
};

/* How many times needle occurs in hay. */
static int count_str(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* Fashion-MNIST's shape without its data: 48 rows of 784 pixels 0-255, labels 0-9. */
static void write_fake_fmnist(const char *x_path, const char *y_path)
{
    FILE *fx = fopen(x_path, "w"), *fy = fopen(y_path, "w");
    uint64_t s = 12345;
    for (int r = 0; fx && fy && r < 48; r++) {
        for (int c = 0; c < 784; c++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            fprintf(fx, "%s%d", c ? "," : "", (int)((s >> 33) % 256) * ((c / 28 + r) % 3 != 0));
        }
        fprintf(fx, "\n");
        fprintf(fy, "%d\n", r % 10);
    }
    if (fx) fclose(fx);
    if (fy) fclose(fy);
}

/* A main that reads rows of T from stdin and prints the class (or 0) and the outputs. */
static void write_driver(const char *path, const struct Case *k)
{
    char upper[64];
    size_t i = 0;
    for (; k->name[i] && i + 1 < sizeof upper; i++)
        upper[i] = (char)(k->name[i] >= 'a' && k->name[i] <= 'z' ? k->name[i] - 32 : k->name[i]);
    upper[i] = 0;
    const char *T = k->f64 ? "double" : "float";
    char cls[96];
    snprintf(cls, sizeof cls, k->classify ? "%s_predict(x)" : "0", k->name);
    FILE *f = fopen(path, "w");
    if (!f) return;
    fprintf(f,
            "#include <stdio.h>\n#include <stdlib.h>\n#include \"%s.h\"\n"
            "int main(void)\n{\n    static char line[1 << 16];\n    static %s x[%s_INPUTS], y[%s_OUTPUTS];\n"
            "    while (fgets(line, sizeof line, stdin)) {\n        char *p = line;\n        int i;\n"
            "        for (i = 0; i < %s_INPUTS; i++) {\n            x[i] = (%s)strtod(p, &p);\n"
            "            if (*p == ',') p++;\n        }\n        %s_forward(x, y);\n        printf(\"%%d\", %s);\n"
            "        for (i = 0; i < %s_OUTPUTS; i++) printf(\",%%.17g\", (double)y[i]);\n"
            "        printf(\"\\n\");\n    }\n    return 0;\n}\n",
            k->name, T, upper, upper, upper, T, k->name, cls, upper);
    fclose(f);
}

/* Trains k, exports it to C, compiles and runs it on the test rows; returns the largest
 * relative error against infer (values under 1e-6 compared as if 1e-6) and counts the
 * rows whose class differs in *class_diff. -1 when a step fails. */
static double c_export_error(const struct Case *k, uint64_t *rows_out, uint64_t *class_diff)
{
    char args[4096], model[512], src[512], hdr[512], drv[512], exe[512], res[512], ref[512], cls[512];
    snprintf(model, sizeof model, "%s/%s.bin", test_tmpdir(), k->name);
    snprintf(src, sizeof src, "%s/%s.c", test_tmpdir(), k->name);
    snprintf(hdr, sizeof hdr, "%s/%s.h", test_tmpdir(), k->name);
    snprintf(drv, sizeof drv, "%s/%s_main.c", test_tmpdir(), k->name);
    snprintf(exe, sizeof exe, "%s/%s_run", test_tmpdir(), k->name);
    snprintf(res, sizeof res, "%s/%s_c.txt", test_tmpdir(), k->name);
    snprintf(ref, sizeof ref, "%s/%s_infer.txt", test_tmpdir(), k->name);
    snprintf(cls, sizeof cls, "%s/%s_class.txt", test_tmpdir(), k->name);
    snprintf(args, sizeof args, "-q -e %s %s %s %s %s", k->epochs, k->config, k->train_x, k->train_y, model);
    EXPECT_EQ_INT(run("train", args), 0);
    snprintf(args, sizeof args, "-o %s --header %s %s", src, hdr, model);
    EXPECT_EQ_INT(run("dlexport", args), 0);
    EXPECT_STR_CONTAINS(err, "bytes of constant data");
    if (k->sizes) EXPECT_STR_CONTAINS(err, k->sizes);
    char *text = slurp(src, NULL), call[96];
    snprintf(call, sizeof call, "\n    %s_batchnorm(", k->name);
    EXPECT_MSG(text && count_str(text, call) == k->bn_calls, "%s: %d BatchNorm calls, expected %d", k->name,
               text ? count_str(text, call) : -1, k->bn_calls);
    EXPECT_MSG(text && count_str(text, " folded in */\n") == k->bn_folded, "%s: %d folded BatchNorms, expected %d",
               k->name, text ? count_str(text, " folded in */\n") : -1, k->bn_folded);
    mem_free(text);
    write_driver(drv, k);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cc -std=c99 -Wall -Wextra -pedantic -Werror -O1 -I%s -o %s %s %s -lm", test_tmpdir(), exe,
             drv, src);
    int rc = test_run_cmd(cmd, out, sizeof out, err, sizeof err);
    EXPECT_MSG(rc == 0, "%s: the export does not compile cleanly: %s", k->name, err);
    snprintf(cmd, sizeof cmd, "%s < %s > %s", exe, k->test_x, res);
    EXPECT_EQ_INT(test_run_cmd(cmd, NULL, 0, NULL, 0), 0);
    snprintf(cmd, sizeof cmd, "%s/infer %s %s %s > %s", bin(), k->classify ? "--probs" : "", model, k->test_x, ref);
    EXPECT_EQ_INT(test_run_cmd(cmd, NULL, 0, NULL, 0), 0);
    snprintf(cmd, sizeof cmd, "%s/infer %s %s > %s", bin(), model, k->test_x, cls);
    EXPECT_EQ_INT(test_run_cmd(cmd, NULL, 0, NULL, 0), 0);
    if (test_failed_now()) return -1;

    uint64_t r1, c1, r2, c2, r3, c3;
    double *got = read_numbers(res, &r1, &c1), *want = read_numbers(ref, &r2, &c2), *cl = read_numbers(cls, &r3, &c3);
    double worst = -1;
    EXPECT_MSG(r1 == r2 && r1 == r3 && r1 > 0 && c1 == c2 + 1, "%s: %llu rows x %llu from C, %llu x %llu from infer",
               k->name, (unsigned long long)r1, (unsigned long long)c1, (unsigned long long)r2, (unsigned long long)c2);
    int varied = 0; /* a model that outputs a constant would make the comparison empty */
    for (uint64_t i = 1; i < r2 * c2 && !varied; i++) varied = want[i] != want[i % c2];
    EXPECT_MSG(varied || r2 < 2, "%s: infer gives every row the same outputs: retune the fixture", k->name);
    if (!test_failed_now()) {
        worst = 0;
        *class_diff = 0;
        for (uint64_t r = 0; r < r1; r++) {
            if (k->classify) *class_diff += got[r * c1] != cl[r];
            for (uint64_t c = 0; c < c2; c++) {
                double a = got[r * c1 + 1 + c], b = want[r * c2 + c], m = fmax(fmax(fabs(a), fabs(b)), 1e-6);
                worst = fmax(worst, fabs(a - b) / m);
            }
        }
        *rows_out = r1;
    }
    mem_free(got);
    mem_free(want);
    mem_free(cl);
    return worst;
}

static void check_c_export(const struct Case *k)
{
    uint64_t rows = 0, class_diff = 0;
    double e = c_export_error(k, &rows, &class_diff);
    if (e < 0) return;
    /* float64: the same arithmetic up to summation order; float32: within 1e-5 */
    double tol = k->f64 ? 1e-12 : 1e-5;
    EXPECT_MSG(e <= tol, "%s: C export differs from infer by %.3g relative (tolerance %g)", k->name, e, tol);
    EXPECT_MSG(class_diff == 0, "%s: %llu of %llu rows get another class than infer's", k->name,
               (unsigned long long)class_diff, (unsigned long long)rows);
    EXPECT(rows > 0);
}

TEST(export_c_xor)
{
    struct Case k = {"xor", "configs/xor.ini", "data/xor_x.csv", "data/xor_y.csv", "data/xor_x.csv", "300", 0, 1,
                     NULL, 0, 0};
    check_c_export(&k);
}

TEST(export_c_digits_mlp)
{
    struct Case k = {"digits", "configs/digits_mlp.ini", "data/digits_train_x.csv", "data/digits_train_y.csv",
                     "data/digits_test_x.csv", "5", 0, 1, NULL, 0, 0};
    check_c_export(&k);
}

TEST(export_c_diabetes_regressor)
{
    struct Case k = {"diabetes", "configs/diabetes_mse.ini", "data/diabetes_train_x.csv", "data/diabetes_train_y.csv",
                     "data/diabetes_test_x.csv", "30", 0, 0, NULL, 0, 0};
    check_c_export(&k);
}

TEST(export_c_fmnist_mlp_cnn_and_lenet)
{
    const char *x = tmp("fake_fmnist_x.csv"), *y = tmp("fake_fmnist_y.csv");
    write_fake_fmnist(x, y);
    struct Case mlp = {"fmnist_mlp", "configs/fmnist_mlp.ini", x, y, x, "2", 0, 1, NULL, 0, 0};
    check_c_export(&mlp);
    struct Case cnn = {"fmnist_cnn", "configs/fmnist_cnn.ini", x, y, x, "2", 0, 1, NULL, 0, 0};
    check_c_export(&cnn);
    /* both BatchNorm2d folded: 2x784 + 16x25+16 + 32x16x25+32 + 1568x128+128 + 128x10+10 values */
    struct Case lenet = {"fmnist_lenet", "configs/fmnist_lenet.ini", x, y, x, "2", 0, 1, "867752 bytes of constant data",
                         0, 2};
    check_c_export(&lenet);
}

/* Conv2d with and without padding and stride, Tanh, ReLU, Sigmoid, a Softmax inside,
 * none at the end: both dtypes. */
TEST(export_c_every_layer_kind_both_dtypes)
{
    struct Case f32 = {"kinds32", "tests/fixtures/export_kinds_f32.ini", "data/digits_train_x.csv",
                       "data/digits_train_y.csv", "data/digits_test_x.csv", "3", 0, 1, NULL, 0, 0};
    check_c_export(&f32);
    struct Case f64 = {"kinds64", "tests/fixtures/export_kinds_f64.ini", "data/digits_train_x.csv",
                       "data/digits_train_y.csv", "data/digits_test_x.csv", "3", 1, 1, NULL, 0, 0};
    check_c_export(&f64);
    struct Case mse = {"mse64", "tests/fixtures/export_mlp_f64.ini", "data/diabetes_train_x.csv",
                       "data/diabetes_train_y.csv", "data/diabetes_test_x.csv", "20", 1, 0, NULL, 0, 0};
    check_c_export(&mse);
}

/* The model file name.bin holds n BatchNorms whose running statistics moved away from
 * their start (mean 0, var 1) in at least 3 of 4 channels (a constant input feature
 * keeps its mean). */
static void check_running_stats_trained(const char *name, int n)
{
    struct ModelFile mf;
    char e[512], path[600];
    snprintf(path, sizeof path, "%s.bin", name);
    int loaded = model_load(path, &mf, e, sizeof e) == 0;
    EXPECT_MSG(loaded, "%s", e);
    if (!loaded) return;
    int found = 0;
    for (uint32_t i = 0; i < mf.n; i++) {
        const char *dot = strrchr(mf.tensors[i].name, '.');
        int var = dot && !strcmp(dot, ".running_var");
        if (!var && !(dot && !strcmp(dot, ".running_mean"))) continue;
        found += var;
        const struct Tensor *t = mf.tensors[i].t;
        uint64_t moved = 0;
        for (uint64_t k = 0; k < tensor_numel(t); k++) moved += tensor_at(t, k) != (var ? 1.0 : 0.0);
        EXPECT_MSG(moved * 4 >= tensor_numel(t) * 3, "%s: %s: %llu of %llu values moved from the start", path,
                   mf.tensors[i].name, (unsigned long long)moved, (unsigned long long)tensor_numel(t));
    }
    EXPECT_EQ_INT(found, n);
    model_file_free(&mf);
}

/* BatchNorm1d and BatchNorm2d trained an epoch (45 steps: running statistics far from 0
 * and 1, and probabilities not yet so extreme that float32 rounding in infer itself nears
 * 1e-5), in every place the exporter treats differently: folded into the Linear or Conv2d
 * before it, as infer folds it, else run as scale and shift. Constant data (float32,
 * doubled for float64): MLP: the input statistics 2x64, batchnorm1d1, 3 and 4 2x64 +
 * 2x16 + 2x16, linear1-3 (folded or not) 64x32+32 + 32x16+16 + 16x10+10 = 3098 values;
 * CNN: 2x64, batchnorm2d1 2x1, conv2d1 4x9+4, batchnorm2d3 2x4, conv2d2 6x4x9+6, linear1
 * 24x10+10 = 650 values. */
TEST(export_c_batchnorm_both_dtypes)
{
    const char *x = "data/digits_train_x.csv", *y = "data/digits_train_y.csv", *t = "data/digits_test_x.csv";
    struct Case cases[] = {
        {"bnmlp32", "tests/fixtures/export_bn_mlp_f32.ini", x, y, t, "1", 0, 1, "12392 bytes of constant data", 3, 2},
        {"bnmlp64", "tests/fixtures/export_bn_mlp_f64.ini", x, y, t, "1", 1, 1, "24784 bytes of constant data", 3, 2},
        {"bncnn32", "tests/fixtures/export_bn_cnn_f32.ini", x, y, t, "1", 0, 1, "2600 bytes of constant data", 2, 3},
        {"bncnn64", "tests/fixtures/export_bn_cnn_f64.ini", x, y, t, "1", 1, 1, "5200 bytes of constant data", 2, 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        check_c_export(&cases[i]);
        check_running_stats_trained(tmp(cases[i].name), 5);
    }
}

/* What the issue promises of the file itself: two includes, no allocation, the API. */
TEST(export_c_file_is_self_contained)
{
    char args[2048];
    const char *model = tmp("self.bin"), *src = tmp("self.c");
    snprintf(args, sizeof args, "-q -e 1 configs/digits_mlp.ini data/digits_train_x.csv data/digits_train_y.csv %s",
             model);
    EXPECT_EQ_INT(run("train", args), 0);
    snprintf(args, sizeof args, "-o %s --name net %s", src, model);
    EXPECT_EQ_INT(run("dlexport", args), 0);
    /* 64x64 + 64 + 10x64 + 10 weights and 2 x 64 statistics, 4 bytes each; buffers 64 + 64 */
    EXPECT_STR_CONTAINS(err, "19752 bytes of constant data (weights), 512 bytes of RAM");
    char *text = slurp(src, NULL);
    EXPECT(text != NULL);
    if (!text) return;
    int includes = 0;
    for (const char *p = text; (p = strstr(p, "#include")); p++) includes++;
    EXPECT_EQ_INT(includes, 2);
    EXPECT_STR_CONTAINS(text, "#include <math.h>\n#include <stddef.h>\n");
    EXPECT(!strstr(text, "malloc") && !strstr(text, "printf") && !strstr(text, "FILE"));
    EXPECT_STR_CONTAINS(text, "#define NET_INPUTS 64\n#define NET_OUTPUTS 10\n");
    EXPECT_STR_CONTAINS(text, "void net_forward(const float *x, float *y)\n{");
    EXPECT_STR_CONTAINS(text, "int net_predict(const float *x)\n{");
    EXPECT_STR_CONTAINS(text, "static const float net_linear1_weight[4096] = {");
    EXPECT_STR_CONTAINS(text, "static const float net_input_scale[64] = {");
    EXPECT_STR_CONTAINS(text, "static float net_buf0[64];");
    mem_free(text);
    /* clang too, when the machine has it */
    if (test_run_cmd("command -v clang", NULL, 0, NULL, 0) == 0) {
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "clang -std=c99 -Wall -Wextra -pedantic -Werror -c -o %s %s", tmp("self.o"), src);
        EXPECT_MSG(test_run_cmd(cmd, out, sizeof out, err, sizeof err) == 0, "clang: %s", err);
    }
}

/* ---- a small protobuf reader, for the ONNX files ---- */

struct Pb { const unsigned char *p, *end; };
struct PbField {
    uint32_t num, wire;
    uint64_t v;                     /* varint and fixed values */
    const unsigned char *data;      /* length-delimited */
    size_t len;
};

static int pb_varint(struct Pb *pb, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && pb->p < pb->end; shift += 7) {
        unsigned char b = *pb->p++;
        *v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) return 0;
    }
    return -1;
}

/* The next field: 1, 0 at the end, -1 when malformed. */
static int pb_next(struct Pb *pb, struct PbField *f)
{
    uint64_t key;
    if (pb->p == pb->end) return 0;
    if (pb_varint(pb, &key)) return -1;
    f->num = (uint32_t)(key >> 3), f->wire = (uint32_t)(key & 7), f->data = NULL, f->len = 0;
    switch (f->wire) {
    case 0: return pb_varint(pb, &f->v) ? -1 : 1;
    case 2:
        if (pb_varint(pb, &f->v) || f->v > (uint64_t)(pb->end - pb->p)) return -1;
        f->data = pb->p, f->len = (size_t)f->v, pb->p += f->len;
        return 1;
    case 5:
        if (pb->end - pb->p < 4) return -1;
        f->v = (uint64_t)pb->p[0] | (uint64_t)pb->p[1] << 8 | (uint64_t)pb->p[2] << 16 | (uint64_t)pb->p[3] << 24;
        pb->p += 4;
        return 1;
    default: return -1;
    }
}

static struct Pb pb_sub(const struct PbField *f) { return (struct Pb){f->data, f->data + f->len}; }

/* The n-th (from 0) field num of a message, or 0. Malformed input fails the test. */
static int pb_find(struct Pb m, uint32_t num, int n, struct PbField *f)
{
    int r;
    while ((r = pb_next(&m, f)) == 1)
        if (f->num == num && n-- == 0) return 1;
    EXPECT_MSG(r == 0, "malformed protobuf");
    return 0;
}

static int pb_count(struct Pb m, uint32_t num)
{
    struct PbField f;
    int n = 0, r;
    while ((r = pb_next(&m, &f)) == 1) n += f.num == num;
    EXPECT_MSG(r == 0, "malformed protobuf");
    return n;
}

static int pb_str_is(const struct PbField *f, const char *s)
{
    return f->wire == 2 && f->len == strlen(s) && !memcmp(f->data, s, f->len);
}

/* A string field of a message, copied into buf ("" when absent). */
static const char *pb_str(struct Pb m, uint32_t num, int n, char *buf, size_t cap)
{
    struct PbField f;
    buf[0] = 0;
    if (pb_find(m, num, n, &f) && f.wire == 2) snprintf(buf, cap, "%.*s", (int)f.len, (const char *)f.data);
    return buf;
}

/* ---- the ONNX graph ---- */

/* "Sub Mul Gemm Relu ...": the nodes' op types in order. */
static void node_ops(struct Pb graph, char *buf, size_t cap)
{
    struct PbField nd;
    char op[64];
    size_t at = 0;
    buf[0] = 0;
    for (int i = 0; pb_find(graph, 1, i, &nd); i++)
        at += (size_t)snprintf(buf + at, at < cap ? cap - at : 0, "%s%s", i ? " " : "", pb_str(pb_sub(&nd), 4, 0, op, sizeof op));
}

/* The node named name, or 0. */
static int find_node(struct Pb graph, const char *name, struct PbField *nd)
{
    char s[64];
    for (int i = 0; pb_find(graph, 1, i, nd); i++)
        if (!strcmp(pb_str(pb_sub(nd), 3, 0, s, sizeof s), name)) return 1;
    return 0;
}

/* "a b c": a node's inputs in order. */
static void node_inputs(const struct PbField *nd, char *buf, size_t cap)
{
    struct PbField f;
    size_t at = 0;
    buf[0] = 0;
    for (int i = 0; pb_find(pb_sub(nd), 1, i, &f); i++)
        at += (size_t)snprintf(buf + at, at < cap ? cap - at : 0, "%s%.*s", i ? " " : "", (int)f.len,
                               (const char *)f.data);
}

/* The attribute name of a node, or 0. */
static int find_attr(const struct PbField *node, const char *name, struct PbField *a)
{
    struct PbField f;
    for (int i = 0; pb_find(pb_sub(node), 5, i, a); i++)
        if (pb_find(pb_sub(a), 1, 0, &f) && pb_str_is(&f, name)) return 1;
    return 0;
}

/* The ints of a node's attribute ("kernel_shape"), or the single int (type INT); n of them. */
static int attr_ints(const struct PbField *node, const char *name, int64_t *v, int cap)
{
    struct PbField a, f;
    if (!find_attr(node, name, &a)) return 0;
    int n = 0;
    if (pb_find(pb_sub(&a), 3, 0, &f)) v[n++] = (int64_t)f.v;
    for (int j = 0; n < cap && pb_find(pb_sub(&a), 8, j, &f); j++) v[n++] = (int64_t)f.v;
    return n;
}

/* A float attribute (type FLOAT, its value in field f as 4 bytes): 1 and the value, or 0. */
static int attr_float(const struct PbField *node, const char *name, float *v)
{
    struct PbField a, f;
    if (!find_attr(node, name, &a) || !pb_find(pb_sub(&a), 20, 0, &f) || f.v != 1) return 0;
    if (!pb_find(pb_sub(&a), 2, 0, &f) || f.wire != 5) return 0;
    uint32_t u = (uint32_t)f.v;
    memcpy(v, &u, sizeof u);
    return 1;
}

/* "N,64": the shape of a graph input or output (value info). */
static void value_shape(const struct PbField *vi, char *buf, size_t cap, uint64_t *elem)
{
    struct PbField type, tensor, shape, dim, f;
    size_t at = 0;
    buf[0] = 0;
    *elem = 0;
    if (!pb_find(pb_sub(vi), 2, 0, &type) || !pb_find(pb_sub(&type), 1, 0, &tensor)) return;
    if (pb_find(pb_sub(&tensor), 1, 0, &f)) *elem = f.v;
    if (!pb_find(pb_sub(&tensor), 2, 0, &shape)) return;
    for (int i = 0; pb_find(pb_sub(&shape), 1, i, &dim); i++) {
        char s[64];
        if (pb_find(pb_sub(&dim), 1, 0, &f)) snprintf(s, sizeof s, "%llu", (unsigned long long)f.v);
        else pb_str(pb_sub(&dim), 2, 0, s, sizeof s);
        at += (size_t)snprintf(buf + at, at < cap ? cap - at : 0, "%s%s", i ? "," : "", s);
    }
}

/* Every tensor of the model file is an initializer of the same name, dims, type and bytes. */
static void check_initializers(struct Pb graph, const char *model_path, uint64_t elem)
{
    struct ModelFile mf;
    char e[512];
    EXPECT_MSG(model_load(model_path, &mf, e, sizeof e) == 0, "%s", e);
    for (uint32_t i = 0; i < mf.n; i++) {
        const struct Tensor *t = mf.tensors[i].t;
        struct PbField init, f;
        int found = 0;
        for (int j = 0; !found && pb_find(graph, 5, j, &init); j++)
            found = pb_find(pb_sub(&init), 8, 0, &f) && pb_str_is(&f, mf.tensors[i].name);
        EXPECT_MSG(found, "no initializer '%s'", mf.tensors[i].name);
        if (!found) continue;
        struct Pb ip = pb_sub(&init);
        EXPECT_EQ_INT(pb_count(ip, 1), t->ndim);
        for (uint64_t d = 0; d < t->ndim; d++)
            EXPECT_MSG(pb_find(ip, 1, (int)d, &f) && f.v == t->shape[d], "%s: dim %llu", mf.tensors[i].name,
                       (unsigned long long)d);
        EXPECT(pb_find(ip, 2, 0, &f) && f.v == elem);
        size_t bytes = tensor_numel(t) * dtype_size(t->dtype);
        EXPECT_MSG(pb_find(ip, 9, 0, &f) && f.len == bytes && !memcmp(f.data, t->data, bytes),
                   "initializer '%s': raw_data differs from the model file's bytes", mf.tensors[i].name);
    }
    model_file_free(&mf);
}

struct OnnxWant {
    const char *ops;        /* node op types in order */
    const char *in_shape, *out_shape;
    uint64_t elem;          /* 1 float, 11 double */
};

/* Trains config (k epochs), exports it to ONNX and checks the file; returns its graph's
 * bytes through *file (mem_free) for further checks. */
static struct Pb export_onnx_checked(const char *name, const char *config, const char *x, const char *y,
                                     const char *epochs, const struct OnnxWant *w, char **file)
{
    char args[4096];
    char model[512], onnx[512];
    snprintf(model, sizeof model, "%s/%s.bin", test_tmpdir(), name);
    snprintf(onnx, sizeof onnx, "%s/%s.onnx", test_tmpdir(), name);
    snprintf(args, sizeof args, "-q -e %s %s %s %s %s", epochs, config, x, y, model);
    EXPECT_EQ_INT(run("train", args), 0);
    snprintf(args, sizeof args, "-o %s %s", onnx, model);
    EXPECT_EQ_INT(run("dlexport", args), 0);
    size_t len = 0;
    *file = slurp(onnx, &len);
    struct Pb m = {(const unsigned char *)*file, (const unsigned char *)*file + len}, g = {NULL, NULL};
    struct PbField f, graph;
    if (!*file) {
        EXPECT_MSG(0, "no file %s", onnx);
        return g;
    }
    EXPECT(pb_find(m, 1, 0, &f) && f.v == 8);                               /* ir_version */
    EXPECT(pb_find(m, 8, 0, &f) && pb_find(pb_sub(&f), 2, 0, &f) && f.v == 13); /* opset */
    EXPECT(pb_find(m, 2, 0, &f) && pb_str_is(&f, "minidl"));                /* producer */
    if (!pb_find(m, 7, 0, &graph)) {
        EXPECT_MSG(0, "no graph");
        return g;
    }
    g = pb_sub(&graph);
    char ops[512], shape[128];
    node_ops(g, ops, sizeof ops);
    EXPECT_MSG(!strcmp(ops, w->ops), "%s: nodes '%s', expected '%s'", name, ops, w->ops);
    uint64_t elem;
    EXPECT_EQ_INT(pb_count(g, 11), 1);
    EXPECT_EQ_INT(pb_count(g, 12), 1);
    EXPECT(pb_find(g, 11, 0, &f) && pb_find(pb_sub(&f), 1, 0, &graph) && pb_str_is(&graph, "input"));
    value_shape(&f, shape, sizeof shape, &elem);
    EXPECT_MSG(!strcmp(shape, w->in_shape) && elem == w->elem, "input shape %s type %llu", shape,
               (unsigned long long)elem);
    EXPECT(pb_find(g, 12, 0, &f) && pb_find(pb_sub(&f), 1, 0, &graph) && pb_str_is(&graph, "output"));
    value_shape(&f, shape, sizeof shape, &elem);
    EXPECT_MSG(!strcmp(shape, w->out_shape) && elem == w->elem, "output shape %s type %llu", shape,
               (unsigned long long)elem);
    check_initializers(g, model, w->elem);
    return g;
}

TEST(export_onnx_digits_graph)
{
    struct OnnxWant w = {"Sub Mul Gemm Relu Gemm Softmax", "N,64", "N,10", 1};
    char *file;
    struct Pb g = export_onnx_checked("digits", "configs/digits_mlp.ini", "data/digits_train_x.csv",
                                      "data/digits_train_y.csv", "1", &w, &file);
    struct PbField nd, f;
    int64_t v[4];
    if (g.p && find_node(g, "linear2", &nd)) {
        EXPECT(attr_ints(&nd, "transB", v, 4) == 1 && v[0] == 1);
        EXPECT(pb_find(pb_sub(&nd), 1, 0, &f) && pb_str_is(&f, "relu1"));
        EXPECT(pb_find(pb_sub(&nd), 1, 1, &f) && pb_str_is(&f, "linear2.weight"));
        EXPECT(pb_find(pb_sub(&nd), 1, 2, &f) && pb_str_is(&f, "linear2.bias"));
    } else {
        EXPECT_MSG(0, "no node linear2");
    }
    /* the model's final Softmax, on the feature axis, makes the output */
    EXPECT(g.p && find_node(g, "softmax1", &nd) && attr_ints(&nd, "axis", v, 4) == 1 && v[0] == 1);
    EXPECT(g.p && pb_find(pb_sub(&nd), 2, 0, &f) && pb_str_is(&f, "output"));
    EXPECT(g.p && find_node(g, "input.sub", &nd) && pb_find(pb_sub(&nd), 1, 1, &f) && pb_str_is(&f, "input.shift"));
    mem_free(file);
}

TEST(export_onnx_cnn_graph)
{
    struct OnnxWant w = {"Sub Mul Reshape Conv Relu Conv Relu Flatten Gemm Softmax", "N,784", "N,10", 1};
    const char *x = tmp("fake_fmnist_x.csv"), *y = tmp("fake_fmnist_y.csv");
    write_fake_fmnist(x, y);
    char *file;
    struct Pb g = export_onnx_checked("cnn", "configs/fmnist_cnn.ini", x, y, "1", &w, &file);
    struct PbField nd, f;
    int64_t v[4];
    if (g.p && find_node(g, "conv2d2", &nd)) {
        EXPECT(attr_ints(&nd, "kernel_shape", v, 4) == 2 && v[0] == 3 && v[1] == 3);
        EXPECT(attr_ints(&nd, "strides", v, 4) == 2 && v[0] == 2 && v[1] == 2);
        EXPECT(attr_ints(&nd, "pads", v, 4) == 4 && v[0] == 1 && v[1] == 1 && v[2] == 1 && v[3] == 1);
    } else {
        EXPECT_MSG(0, "no node conv2d2");
    }
    /* the reshape to N,1,28,28 from an int64 initializer */
    struct PbField init;
    int found = 0;
    for (int j = 0; g.p && !found && pb_find(g, 5, j, &init); j++)
        found = pb_find(pb_sub(&init), 8, 0, &f) && pb_str_is(&f, "input.shape");
    EXPECT(found && pb_find(pb_sub(&init), 2, 0, &f) && f.v == 7);
    EXPECT(found && pb_find(pb_sub(&init), 9, 0, &f) && f.len == 32);
    if (found && f.len == 32) {
        int64_t s[4];
        memcpy(s, f.data, sizeof s);
        EXPECT(s[0] == -1 && s[1] == 1 && s[2] == 28 && s[3] == 28);
    }
    /* no Softmax in the model: infer --probs' softmax is added as the output */
    EXPECT(g.p && find_node(g, "output_softmax", &nd));
    mem_free(file);
}

TEST(export_onnx_every_kind_float64)
{
    struct OnnxWant w = {"Sub Mul Reshape Conv Tanh Conv Relu Flatten Gemm Sigmoid Gemm Softmax Gemm Softmax",
                         "N,64", "N,10", 11};
    char *file;
    struct Pb g = export_onnx_checked("kinds64", "tests/fixtures/export_kinds_f64.ini", "data/digits_train_x.csv",
                                      "data/digits_train_y.csv", "1", &w, &file);
    (void)g;
    mem_free(file);
    struct OnnxWant r = {"Sub Mul Gemm Tanh Gemm Sigmoid Gemm Relu Gemm Softmax Gemm", "N,10", "N,1", 11};
    g = export_onnx_checked("mlp64", "tests/fixtures/export_mlp_f64.ini", "data/diabetes_train_x.csv",
                            "data/diabetes_train_y.csv", "1", &r, &file);
    mem_free(file);
}

/* Every BatchNormalization node of g: n of them, in order those of names, each reading
 * the one before it (first_in for the first), its layer's four tensors (initializers,
 * checked by check_initializers), with PyTorch's eps and momentum as ONNX has them. */
static void check_bn_nodes(struct Pb g, const char *const *names, int n, const char *first_in)
{
    struct PbField nd, f;
    char op[64], want[512], got[512], prev[64];
    int k = 0;
    str_copy(prev, first_in, sizeof prev);
    for (int i = 0; g.p && pb_find(g, 1, i, &nd); i++) {
        struct Pb np = pb_sub(&nd);
        if (strcmp(pb_str(np, 4, 0, op, sizeof op), "BatchNormalization")) {
            pb_str(np, 2, 0, prev, sizeof prev);
            continue;
        }
        EXPECT_MSG(k < n, "more than %d BatchNormalization nodes", n);
        if (k >= n) return;
        const char *s = names[k++];
        EXPECT(pb_find(np, 3, 0, &f) && pb_str_is(&f, s));
        snprintf(want, sizeof want, "%s %s.weight %s.bias %s.running_mean %s.running_var", prev, s, s, s, s);
        node_inputs(&nd, got, sizeof got);
        EXPECT_MSG(!strcmp(got, want), "%s: inputs '%s', expected '%s'", s, got, want);
        float eps = 0, momentum = 0;
        EXPECT_MSG(attr_float(&nd, "epsilon", &eps) && eps == 1e-5f, "%s: epsilon %.9g", s, eps);
        EXPECT_MSG(attr_float(&nd, "momentum", &momentum) && momentum == 0.9f, "%s: momentum %.9g", s, momentum);
        pb_str(np, 2, 0, prev, sizeof prev);
    }
    EXPECT_EQ_INT(k, n);
}

/* BatchNorm1d and BatchNorm2d (their fixtures, see export_c_batchnorm_both_dtypes) as
 * BatchNormalization nodes, a Dropout left out, both dtypes. */
TEST(export_onnx_batchnorm)
{
    const char *x = "data/digits_train_x.csv", *y = "data/digits_train_y.csv";
    const char *mlp_ops = "Sub Mul BatchNormalization Gemm BatchNormalization Relu Gemm BatchNormalization Tanh "
                          "BatchNormalization Relu Gemm BatchNormalization Softmax";
    const char *cnn_ops = "Sub Mul Reshape BatchNormalization Conv BatchNormalization Relu MaxPool BatchNormalization "
                          "Conv BatchNormalization Tanh Flatten Gemm BatchNormalization Softmax";
    const char *mlp_bn[] = {"batchnorm1d1", "batchnorm1d2", "batchnorm1d3", "batchnorm1d4", "batchnorm1d5"};
    const char *cnn_bn[] = {"batchnorm2d1", "batchnorm2d2", "batchnorm2d3", "batchnorm2d4", "batchnorm1d1"};
    for (int f64 = 0; f64 < 2; f64++) {
        char name[32], config[128];
        struct OnnxWant w = {mlp_ops, "N,64", "N,10", f64 ? 11 : 1};
        snprintf(name, sizeof name, "bnmlp_onnx%d", f64);
        snprintf(config, sizeof config, "tests/fixtures/export_bn_mlp_f%s.ini", f64 ? "64" : "32");
        char *file;
        struct Pb g = export_onnx_checked(name, config, x, y, "1", &w, &file);
        check_bn_nodes(g, mlp_bn, 5, "input.normalised");
        struct PbField nd, f;
        /* the Dropout left out: the BatchNorm after it reads the Linear before it */
        EXPECT(g.p && find_node(g, "batchnorm1d3", &nd) && pb_find(pb_sub(&nd), 1, 0, &f) && pb_str_is(&f, "linear2"));
        mem_free(file);
        w = (struct OnnxWant){cnn_ops, "N,64", "N,10", f64 ? 11 : 1};
        snprintf(name, sizeof name, "bncnn_onnx%d", f64);
        snprintf(config, sizeof config, "tests/fixtures/export_bn_cnn_f%s.ini", f64 ? "64" : "32");
        g = export_onnx_checked(name, config, x, y, "1", &w, &file);
        check_bn_nodes(g, cnn_bn, 5, "input.nchw");
        mem_free(file);
    }
}

/* ---- the command ---- */

TEST(export_cli_formats_and_names)
{
    char args[2048];
    const char *model = tmp("cli.bin");
    snprintf(args, sizeof args, "-q -e 1 configs/xor.ini data/xor_x.csv data/xor_y.csv %s", model);
    EXPECT_EQ_INT(run("train", args), 0);
    /* no -o: C on standard output, prefix "model" */
    snprintf(args, sizeof args, "%s", model);
    EXPECT_EQ_INT(run("dlexport", args), 0);
    EXPECT_STR_CONTAINS(out, "void model_forward(const float *x, float *y)");
    EXPECT_STR_CONTAINS(err, "dlexport: standard output: ");
    EXPECT_STR_CONTAINS(out, "of the model cli.bin,\n"); /* the file's base name, not its path */
    snprintf(args, sizeof args, "-q -o - %s", model);
    EXPECT_EQ_INT(run("dlexport", args), 0);
    EXPECT_STR_CONTAINS(out, "int model_predict(const float *x)");
    /* the format and the prefix from -o */
    snprintf(args, sizeof args, "-o %s %s", tmp("my_net.onnx"), model);
    EXPECT_EQ_INT(run("dlexport", args), 0);
    size_t len;
    char *onnx = slurp(tmp("my_net.onnx"), &len);
    EXPECT(onnx && len > 2 && onnx[0] == 0x08 && onnx[1] == 8); /* field 1 (ir_version) = 8 */
    mem_free(onnx);
    snprintf(args, sizeof args, "-q -o %s %s", tmp("my_net.c"), model);
    EXPECT_EQ_INT(run("dlexport", args), 0);
    EXPECT_MSG(err[0] == 0, "-q printed: %s", err);
    char *c = slurp(tmp("my_net.c"), NULL);
    EXPECT_STR_CONTAINS(c, "int my_net_predict(const float *x)");
    mem_free(c);
    /* --format wins over the extension; --name over the file name */
    snprintf(args, sizeof args, "--format c --name tiny -o %s %s", tmp("x.onnx"), model);
    EXPECT_EQ_INT(run("dlexport", args), 0);
    c = slurp(tmp("x.onnx"), NULL);
    EXPECT_STR_CONTAINS(c, "#define TINY_OUTPUTS 2");
    mem_free(c);
    EXPECT_EQ_INT(run("dlexport", "--help"), 0);
    EXPECT_STR_CONTAINS(out, "usage: dlexport");
}

TEST(export_cli_usage_errors)
{
    EXPECT_EQ_INT(run("dlexport", ""), 2);
    EXPECT_STR_CONTAINS(err, "dlexport: expected 1 arguments");
    EXPECT_EQ_INT(run("dlexport", "--format tflite m.bin"), 2);
    EXPECT_STR_CONTAINS(err, "unknown format 'tflite'");
    EXPECT_EQ_INT(run("dlexport", "--name 9lives m.bin"), 2);
    EXPECT_STR_CONTAINS(err, "'9lives' is not a usable prefix");
    EXPECT_EQ_INT(run("dlexport", "--format onnx --header m.h -o m.onnx m.bin"), 2);
    EXPECT_STR_CONTAINS(err, "--header goes with the C format");
    EXPECT_EQ_INT(run("dlexport", "-o"), 2);
    EXPECT_STR_CONTAINS(err, "option '-o' needs a file");
}

TEST(export_cli_bad_input)
{
    char args[2048], e[512];
    const char *model = tmp("bad.bin"), *trunc = tmp("truncated.bin");
    snprintf(args, sizeof args, "-q -e 1 configs/xor.ini data/xor_x.csv data/xor_y.csv %s", model);
    EXPECT_EQ_INT(run("train", args), 0);
    /* a truncated model */
    size_t len;
    char *bytes = slurp(model, &len);
    EXPECT(bytes && model_save_bytes(trunc, bytes, len / 2, e, sizeof e) == 0);
    mem_free(bytes);
    snprintf(args, sizeof args, "-o %s %s", tmp("t.c"), trunc);
    EXPECT_EQ_INT(run("dlexport", args), 1);
    EXPECT_STR_CONTAINS(err, "dlexport: ");
    EXPECT_STR_CONTAINS(err, "truncated");
    /* an unknown layer in the embedded config: named, with its line */
    struct NamedTensor none[1];
    EXPECT(model_save(tmp("unknown.bin"), none, 0, "[model]\ninput_dim=4\nlayer=Pancake,4,2\n", e, sizeof e) == 0);
    snprintf(args, sizeof args, "%s", tmp("unknown.bin"));
    EXPECT_EQ_INT(run("dlexport", args), 1);
    EXPECT_STR_CONTAINS(err, "Pancake");
    EXPECT_STR_CONTAINS(err, ":3:");
    /* an unwritable output path: a missing directory, and a directory in the file's place */
    snprintf(args, sizeof args, "-o %s/no/such/dir/x.c %s", test_tmpdir(), model);
    EXPECT_EQ_INT(run("dlexport", args), 1);
    EXPECT_STR_CONTAINS(err, "cannot create a temporary file");
    snprintf(args, sizeof args, "-o %s %s", test_tmpdir(), model);
    EXPECT_EQ_INT(run("dlexport", args), 1);
    EXPECT_STR_CONTAINS(err, "cannot replace");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "ls -d %s.tmp.* %s/no/such/dir/x.c.tmp.* 2>/dev/null | wc -l", test_tmpdir(),
             test_tmpdir());
    EXPECT_EQ_INT(test_run_cmd(cmd, out, sizeof out, NULL, 0), 0);
    EXPECT_MSG(atoi(out) == 0, "temporary files left behind: %s", out); /* the failed saves cleaned up */
    /* a missing model file */
    EXPECT_EQ_INT(run("dlexport", "no/such/model.bin"), 1);
    EXPECT_STR_CONTAINS(err, "cannot open");
}

/* The model file src saved again as dst with value at index k of its tensor name. */
static void set_model_value(const char *src, const char *dst, const char *name, uint64_t k, double value)
{
    struct ModelFile mf;
    char e[512];
    EXPECT_MSG(model_load(src, &mf, e, sizeof e) == 0, "%s", e);
    struct Tensor *t = (struct Tensor *)model_file_find(&mf, name);
    EXPECT_MSG(t && k < tensor_numel(t), "%s: no %s[%llu]", src, name, (unsigned long long)k);
    if (t && k < tensor_numel(t)) {
        if (t->dtype == DT_FLOAT32) tensor_f32(t)[k] = (float)value;
        else tensor_f64(t)[k] = value;
    }
    EXPECT_MSG(model_save(dst, mf.tensors, mf.n, mf.config_text, e, sizeof e) == 0, "%s", e);
    model_file_free(&mf);
}

/* BatchNorm statistics no export could reproduce: a negative running variance (infer
 * takes its square root), and a scale or folded weight beyond float32. Errors name the
 * file and the layer or tensor. */
TEST(export_batchnorm_bad_statistics)
{
    char args[2048];
    const char *model = tmp("bnbad.bin"), *neg = tmp("bnbad_var.bin"), *big = tmp("bnbad_big.bin");
    snprintf(args, sizeof args, "-q -e 1 tests/fixtures/export_bn_mlp_f32.ini data/digits_train_x.csv "
             "data/digits_train_y.csv %s", model);
    EXPECT_EQ_INT(run("train", args), 0);
    set_model_value(model, neg, "batchnorm1d3.running_var", 3, -2);
    for (int onnx = 0; onnx < 2; onnx++) {
        snprintf(args, sizeof args, "-o %s %s", tmp(onnx ? "bnbad.onnx" : "bnbad.c"), neg);
        EXPECT_EQ_INT(run("dlexport", args), 1);
        EXPECT_STR_CONTAINS(err, "bnbad_var.bin: tensor 'batchnorm1d3.running_var' holds -2 at index 3: a running "
                                 "variance cannot be negative");
    }
    /* a variance of 0 divides by sqrt(1e-5): weight 3e38 gives a scale beyond float32 */
    set_model_value(model, big, "batchnorm1d1.weight", 5, 3e38);
    set_model_value(big, big, "batchnorm1d1.running_var", 5, 0);
    snprintf(args, sizeof args, "-o %s %s", tmp("bnbad.c"), big);
    EXPECT_EQ_INT(run("dlexport", args), 1);
    EXPECT_STR_CONTAINS(err, "bnbad_big.bin: layer 'batchnorm1d1' (BatchNorm1d) cannot be exported to C: its scale is "
                             "not finite (inf at channel 5)");
    /* the same folded into linear1 makes its weights overflow */
    set_model_value(model, big, "batchnorm1d2.weight", 0, 3e38);
    set_model_value(big, big, "batchnorm1d2.running_var", 0, 0);
    snprintf(args, sizeof args, "-o %s %s", tmp("bnbad.c"), big);
    EXPECT_EQ_INT(run("dlexport", args), 1);
    EXPECT_STR_CONTAINS(err, "bnbad_big.bin: layer 'batchnorm1d2' (BatchNorm1d) cannot be exported to C: folded into "
                             "linear1, it gives a weight that is not finite");
}

TEST(export_save_bytes_is_atomic)
{
    char e[512];
    const char *path = tmp("atomic.txt");
    EXPECT(model_save_bytes(path, "old", 3, e, sizeof e) == 0);
    EXPECT(model_save_bytes(path, "new text", 8, e, sizeof e) == 0);
    char *text = slurp(path, NULL);
    EXPECT(text && !strcmp(text, "new text"));
    mem_free(text);
    EXPECT(model_save_bytes(test_tmpdir(), "x", 1, e, sizeof e) == -1); /* a directory stays one */
    EXPECT_STR_CONTAINS(e, "any old file is unchanged");
    EXPECT(model_save_bytes(path, "", 0, e, sizeof e) == 0);
    text = slurp(path, NULL);
    EXPECT(text && text[0] == 0);
    mem_free(text);
}
