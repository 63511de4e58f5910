/* Tests of the dataset module: the CSV reader's accepted and rejected inputs, labels,
 * normalisation, shuffling and batching. */
#include "test.h"
#include "config_parser.h"
#include "dataset.h"
#include "mem.h"
#include "model_io.h"
#include "tensor.h"
#include "threads.h"
#include "utils.h"

#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *tmp_path(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", test_tmpdir(), name);
    return buf;
}

/* Writes text (len bytes, may hold NULs) to a scratch file and returns its path. */
static const char *write_bytes(char *buf, size_t cap, const char *name, const char *text, size_t len)
{
    tmp_path(buf, cap, name);
    FILE *f = fopen(buf, "wb");
    if (!f) { test_fail(__FILE__, __LINE__, "cannot write %s", buf); return buf; }
    fwrite(text, 1, len, f);
    fclose(f);
    return buf;
}

/* Reads text as CSV in dtype and compares with want (rows x cols); frees it. */
static void expect_matrix(const char *text, uint32_t dtype, uint64_t rows, uint64_t cols, const double *want)
{
    char path[512], err[512] = "";
    struct Tensor *t = NULL;
    write_bytes(path, sizeof path, "m.csv", text, strlen(text));
    int r = csv_read_matrix(path, dtype, &t, err, sizeof err);
    EXPECT_MSG(r == 0, "rejected %s: %s", text, err);
    if (r) return;
    EXPECT_EQ_INT(t->shape[0], rows);
    EXPECT_EQ_INT(t->shape[1], cols);
    EXPECT_EQ_INT(t->dtype, dtype);
    if (t->shape[0] == rows && t->shape[1] == cols)
        for (uint64_t i = 0; i < rows * cols; i++) {
            double got = tensor_at(t, i);
            double w = dtype == DT_FLOAT32 ? (double)(float)want[i] : want[i];
            EXPECT_MSG(got == w, "value %llu of %s: %.17g, expected %.17g", (unsigned long long)i, text, got, w);
        }
    tensor_free(t);
}

static void expect_both(const char *text, uint64_t rows, uint64_t cols, const double *want)
{
    expect_matrix(text, DT_FLOAT32, rows, cols, want);
    expect_matrix(text, DT_FLOAT64, rows, cols, want);
}

static const double m23[6] = {1, 2, 3, 4, 5, 6};

TEST(csv_plain_and_header)
{
    expect_both("1,2,3\n4,5,6\n", 2, 3, m23);
    expect_both("a,b,c\n1,2,3\n4,5,6\n", 2, 3, m23);
    expect_both("\"x 1\", y ,z\n1,2,3\n4,5,6\n", 2, 3, m23);
}

TEST(csv_line_endings_bom_and_blanks)
{
    expect_both("1,2,3\r\n4,5,6\r\n", 2, 3, m23);
    expect_both("\xef\xbb\xbf" "1,2,3\n4,5,6\n", 2, 3, m23);
    expect_both("\xef\xbb\xbf" "h1,h2,h3\r\n1,2,3\r\n4,5,6", 2, 3, m23);
    expect_both("1,2,3\n4,5,6", 2, 3, m23);
    expect_both("1,2,3\n4,5,6\n\n\n", 2, 3, m23);
    expect_both("1,2,3\n4,5,6\n \r\n\t\n", 2, 3, m23);
    expect_both(" 1 ,\t2,3 \n  4,5\t, 6\t\r\n", 2, 3, m23);
}

TEST(csv_number_forms)
{
    const double want[] = {1e-3, 2, -0.5, 0.5, 5, 1.5e10, -2.5e-7, 0, -0.0, 123456.789, 1e300, 3};
    expect_matrix("1e-3,+2,-0.5,.5,5.,1.5E+10,-25e-8,000,-0,123456.789,1e300,0003.000\n",
                  DT_FLOAT64, 1, 12, want);
    const double w32[] = {1e-3, 2, -0.5, 0.5, 5, 1.5e10, -2.5e-7, 0, -0.0, 123456.789, 3.4e38, 3};
    expect_matrix("1e-3,+2,-0.5,.5,5.,1.5E+10,-25e-8,000,-0,123456.789,3.4e38,0003.000\n",
                  DT_FLOAT32, 1, 12, w32);
    /* Beyond the fast path: more than 19 digits, large exponents, subnormals. */
    const double w2[] = {0.1234567890123456789012, 12345678901234567890123.0, 1e-310, 9007199254740993.0, 7e-30};
    expect_matrix("0.1234567890123456789012,12345678901234567890123,1e-310,9007199254740993,7e-30\n",
                  DT_FLOAT64, 1, 5, w2);
    expect_matrix("0.1234567890123456789012,12345678901234567890123,1e-310,9007199254740993,7e-30\n",
                  DT_FLOAT32, 1, 5, w2);
}

/* Decimal strings that lie near a float32 rounding boundary must round as strtof does. */
TEST(csv_float32_rounding_matches_strtof)
{
    const char *s[] = {"16777217", "0.1", "3.4028235e38", "1.00000017881393432617187499",
                       "1.000000178813934326171875", "1.00000017881393432617187501", "33554433", "1e-40"};
    enum { N = sizeof s / sizeof s[0] };
    char text[512] = "";
    double want[N];
    for (int i = 0; i < N; i++) {
        strcat(text, s[i]);
        strcat(text, i + 1 < N ? "," : "\n");
        want[i] = strtof(s[i], NULL);
    }
    expect_matrix(text, DT_FLOAT32, 1, N, want);
}

TEST(csv_very_long_line)
{
    enum { N = 100000 };
    char *text = mem_alloc(2 * N * 10 + 16), *p = text;
    double *want = mem_alloc(2 * N * sizeof *want);
    for (int r = 0; r < 2; r++)
        for (int i = 0; i < N; i++) {
            want[r * N + i] = (i % 1000) * 0.25 - r;
            p += sprintf(p, i + 1 < N ? "%g," : "%g\n", want[r * N + i]);
        }
    expect_both(text, 2, N, want);
    mem_free(text);
    mem_free(want);
}

/* A file whose size is a multiple of the page size is read rather than mapped (its
 * mapping would have no NUL after the last byte): the same result either way. */
TEST(csv_page_sized_file)
{
    enum { ROWS = 16384 }; /* "d,d\n" x 16384 = 65536 bytes */
    char *text = mem_alloc(ROWS * 4 + 1);
    double *want = mem_alloc(ROWS * 2 * sizeof *want);
    for (int i = 0; i < ROWS; i++) {
        memcpy(text + 4 * i, (char[]){(char)('0' + i % 10), ',', (char)('0' + i % 7), '\n'}, 4);
        want[2 * i] = i % 10;
        want[2 * i + 1] = i % 7;
    }
    text[ROWS * 4] = 0;
    expect_both(text, ROWS, 2, want);
    text[ROWS * 4 - 1] = '9'; /* no final newline, last value 69 */
    want[2 * ROWS - 1] = 10 * ((ROWS - 1) % 7) + 9;
    expect_both(text, ROWS, 2, want);
    mem_free(text);
    mem_free(want);
}

/* Reads text and expects a rejection whose message contains want. */
static void expect_reject(const char *text, size_t len, uint32_t dtype, const char *want)
{
    char path[512], err[512] = "";
    struct Tensor *t = NULL;
    write_bytes(path, sizeof path, "bad.csv", text, len);
    EXPECT_MSG(csv_read_matrix(path, dtype, &t, err, sizeof err) == -1, "accepted \"%s\"", text);
    tensor_free(t);
    char full[600];
    snprintf(full, sizeof full, "%s%s", path, want);
    EXPECT_STR_CONTAINS(err, full);
}
#define REJECT(text, want) expect_reject(text, strlen(text), DT_FLOAT32, want)

TEST(csv_rejects_non_numbers)
{
    REJECT("1,2,3\n4,abc,6\n", ":2:3: 'abc' is not a number");
    REJECT("1,2,3\n4,1.2.3,6\n", ":2:3: '1.2.3' is not a number");
    REJECT("1,2,3\n4,5,12abc\n", ":2:5: '12abc' is not a number");
    REJECT("1,2,3\n4,,6\n", ":2:3: empty field");
    REJECT("1,2,3\n4, ,6\n", ":2:4: empty field");
    REJECT("1,2,3\n4,5 6,7\n", ":2:3: '5 6' is not a number");
    REJECT("1,2,3\n4,1e,6\n", ":2:3: '1e' is not a number");
    REJECT("1,2,3\n4,-,6\n", ":2:3: '-' is not a number");
    REJECT("1,2,3\n4,0x10,6\n", ":2:3: '0x10' is not a number");
    REJECT("\xef\xbb\xbf" "1,2,3\n4,5,x\n", ":2:5: 'x' is not a number");
    REJECT("1,2,3\n  4,5,6x\r\n", ":2:7: '6x' is not a number");
    static const char nul[] = "1,2,3\n4,5\0,6\n";
    expect_reject(nul, sizeof nul - 1, DT_FLOAT32, ":2:3: '5");
}

TEST(csv_rejects_nonfinite_and_overflow)
{
    REJECT("1,2,3\n4,NaN,6\n", ":2:3: 'NaN': NaN and Inf are not allowed");
    REJECT("1,2,3\n4,5,-inf\n", ":2:5: '-inf': NaN and Inf are not allowed");
    REJECT("1,2,3\n4,5,Infinity\n", ":2:5: 'Infinity': NaN and Inf are not allowed");
    REJECT("nan,2,3\n4,5,6\n", ":1:1: 'nan': NaN and Inf");
    REJECT("1,2,3\n4,5,1e39\n", ":2:5: '1e39' is out of range for float32");
    REJECT("1,2,3\n4,-3.5e38,6\n", ":2:3: '-3.5e38' is out of range for float32");
}

TEST(csv_float64_accepts_beyond_float32_but_not_beyond_float64)
{
    const double want[] = {1e39, -3.5e38, 1.7976931348623157e308};
    expect_matrix("1e39,-3.5e38,1.7976931348623157e308\n", DT_FLOAT64, 1, 3, want);
    expect_reject("1,2\n3,1e309\n", 12, DT_FLOAT64, ":2:3: '1e309' is out of range for float64");
    expect_reject("1,2\n3,-1e400\n", 13, DT_FLOAT64, ":2:3: '-1e400' is out of range for float64");
}

TEST(csv_rejects_ragged_rows)
{
    REJECT("1,2,3\n4,5\n", ":2: expected 3 values, found 2");
    REJECT("1,2,3\n4,5,6,7,8\n", ":2: expected 3 values, found 5");
    REJECT("1,2,3\n4,5,6,\n", ":2: expected 3 values, found 4");
    REJECT("a,b\n1,2,3\n", ":2: expected 2 values as in the header, found 3");
    REJECT("1,2,3\n\n4,5,6\n", ":2:1: blank line inside the data");
}

TEST(csv_rejects_empty_and_header_only)
{
    REJECT("", ": empty file");
    REJECT("\n\r\n  \n", ": empty file");
    REJECT("\xef\xbb\xbf", ": empty file");
    REJECT("x,y,z\n", ": no data rows, only a header");
    REJECT("x,y,z", ": no data rows, only a header");
    REJECT("x,y,z\r\n\r\n", ": no data rows, only a header");
}

TEST(csv_missing_file)
{
    char err[512] = "";
    struct Tensor *t = NULL;
    EXPECT_EQ_INT(csv_read_matrix("/nonexistent/x.csv", DT_FLOAT32, &t, err, sizeof err), -1);
    EXPECT_STR_CONTAINS(err, "/nonexistent/x.csv: No such file");
    EXPECT_EQ_INT(csv_read_matrix(test_tmpdir(), DT_FLOAT32, &t, err, sizeof err), -1);
    EXPECT_STR_CONTAINS(err, "is a directory");
}

/* ---- dataset_load ---- */

static int load_texts(struct Dataset *ds, const char *x, const char *y, uint64_t n_classes,
                      char *err, size_t errlen, char *ypath, size_t ycap)
{
    char xpath[512];
    write_bytes(xpath, sizeof xpath, "x.csv", x, strlen(x));
    write_bytes(ypath, ycap, "y.csv", y, strlen(y));
    return dataset_load(ds, xpath, ypath, DT_FLOAT32, n_classes, err, errlen);
}

static void expect_label_reject(const char *y, uint64_t n_classes, const char *want)
{
    struct Dataset ds;
    char err[512] = "", ypath[512], full[700];
    EXPECT_EQ_INT(load_texts(&ds, "1,2\n3,4\n5,6\n", y, n_classes, err, sizeof err, ypath, sizeof ypath), -1);
    snprintf(full, sizeof full, "%s%s", ypath, want);
    EXPECT_STR_CONTAINS(err, full);
    EXPECT(ds.x == NULL && ds.y == NULL && ds.order == NULL);
}

/* A NUL byte ends a read (pipes, devices, files of whole pages) with its place, so that
 * /dev/zero is refused at once instead of filling the memory. */
TEST(dataset_load_stops_at_a_nul_byte)
{
    struct Dataset ds;
    char err[512] = "", path[512];
    EXPECT_EQ_INT(dataset_load(&ds, "/dev/zero", NULL, DT_FLOAT32, 0, err, sizeof err), -1);
    EXPECT_STR_CONTAINS(err, "/dev/zero:1:1: a NUL byte: not a text file");
    size_t len = (size_t)sysconf(_SC_PAGESIZE); /* a whole page: read, not mapped */
    char *text = mem_alloc(len);
    for (size_t i = 0; i < len; i += 4) memcpy(text + i, "1,2\n", 4);
    text[6] = 0;
    write_bytes(path, sizeof path, "nul.csv", text, len);
    mem_free(text);
    EXPECT_EQ_INT(dataset_load(&ds, path, NULL, DT_FLOAT32, 0, err, sizeof err), -1);
    EXPECT_STR_CONTAINS(err, "nul.csv:2:3: a NUL byte");
}

TEST(dataset_load_classes)
{
    struct Dataset ds;
    char err[512] = "", ypath[512];
    int r = load_texts(&ds, "x1,x2\n1,2\n3,4\n5,6\n", "label\n2\n0\n1\n", 3, err, sizeof err, ypath, sizeof ypath);
    EXPECT_MSG(r == 0, "%s", err);
    if (r) return;
    EXPECT_EQ_INT(ds.n, 3);
    EXPECT_EQ_INT(ds.dim, 2);
    EXPECT_EQ_INT(ds.label_dim, 1);
    EXPECT(ds.y == NULL && ds.cls != NULL); /* class labels are integers from load time on */
    if (ds.cls) EXPECT(ds.cls[0] == 2 && ds.cls[1] == 0 && ds.cls[2] == 1);
    EXPECT_NEAR(tensor_f32(ds.x)[5], 6, 0);
    for (uint64_t i = 0; i < 3; i++) EXPECT_EQ_INT(ds.order[i], i);
    dataset_free(&ds);
}

TEST(dataset_load_rejects_bad_labels)
{
    expect_label_reject("0\n3\n1\n", 3, ":2:1: '3': class label out of range (expected 0 to 2)");
    expect_label_reject("0\n1\n -1\n", 3, ":3:2: '-1': a class label cannot be negative");
    expect_label_reject("0\n1.5\n1\n", 3, ":2:1: '1.5': a class label must be a whole number");
    expect_label_reject("0,1\n1,0\n1,1\n", 3, ":1: expected 1 value per row (a class index), found 2");
    struct Dataset ds;
    char err[512] = "", ypath[512];
    EXPECT_EQ_INT(load_texts(&ds, "1,2\n3,4\n5,6\n", "0\n1\n", 3, err, sizeof err, ypath, sizeof ypath), -1);
    EXPECT_STR_CONTAINS(err, "x.csv has 3 rows but ");
    EXPECT_STR_CONTAINS(err, "y.csv has 2");
}

TEST(dataset_load_regression_targets)
{
    struct Dataset ds;
    char err[512] = "", ypath[512];
    int r = load_texts(&ds, "1,2\n3,4\n", "0.5,-1\n2.25,1e2\n", 0, err, sizeof err, ypath, sizeof ypath);
    EXPECT_MSG(r == 0, "%s", err);
    if (r) return;
    EXPECT_EQ_INT(ds.label_dim, 2);
    EXPECT_NEAR(tensor_f32(ds.y)[1], -1, 0);
    EXPECT_NEAR(tensor_f32(ds.y)[3], 100, 0);
    dataset_free(&ds);
}

TEST(dataset_load_without_labels)
{
    struct Dataset ds;
    char path[512], err[512] = "";
    write_bytes(path, sizeof path, "x.csv", "1,2\n3,4\n", 8);
    EXPECT_EQ_INT(dataset_load(&ds, path, NULL, DT_FLOAT64, 0, err, sizeof err), 0);
    EXPECT(ds.y == NULL);
    EXPECT_EQ_INT(ds.label_dim, 0);
    struct Batch b;
    memset(&b, 0xff, sizeof b);
    dataset_get_batch(&ds, 0, 4, &b);
    EXPECT(b.y == NULL && b.cls == NULL);
    EXPECT_EQ_INT(b.x->shape[0], 2);
    EXPECT_EQ_INT(b.rows, 2);
    EXPECT_NEAR(tensor_f64(b.x)[3], 4, 0);
    dataset_free(&ds);
}

/* ---- normalisation, shuffling, batching ---- */

/* A 4 x 3 dataset built in memory: column 0 = 1,2,3,4; column 1 constant 7; column 2 = 0,0,0,8. */
static void make_ds(struct Dataset *ds, uint32_t dtype)
{
    static const double xs[12] = {1, 7, 0, 2, 7, 0, 3, 7, 0, 4, 7, 8};
    memset(ds, 0, sizeof *ds);
    ds->x = tensor_create(2, (uint64_t[]){4, 3}, dtype);
    ds->y = tensor_create(2, (uint64_t[]){4, 1}, dtype);
    for (int i = 0; i < 12; i++) tensor_set(ds->x, (uint64_t[]){i / 3, i % 3}, xs[i]);
    for (int i = 0; i < 4; i++) tensor_set(ds->y, (uint64_t[]){i, 0}, 10 + i);
    ds->n = 4;
    ds->dim = 3;
    ds->label_dim = 1;
    ds->order = mem_alloc(4 * sizeof *ds->order);
    for (int i = 0; i < 4; i++) ds->order[i] = i;
}

TEST(dataset_norm_minmax_and_standard)
{
    for (uint32_t dt = 0; dt < DT_COUNT; dt++) {
        struct Dataset ds;
        struct Tensor *shift, *scale;
        make_ds(&ds, dt);
        dataset_norm_stats(&ds, NORM_MINMAX, &shift, &scale);
        const double ms[3] = {1, 7, 0}, mc[3] = {1.0 / 3, 1, 1.0 / 8};
        for (uint64_t j = 0; j < 3; j++) {
            EXPECT_NEAR(tensor_get(shift, &j), ms[j], 1e-7);
            EXPECT_NEAR(tensor_get(scale, &j), mc[j], 1e-7);
        }
        tensor_free(shift);
        tensor_free(scale);
        dataset_norm_stats(&ds, NORM_STANDARD, &shift, &scale);
        /* column 0: mean 2.5, population std sqrt(1.25); column 2: mean 2, std sqrt(12) */
        const double ss[3] = {2.5, 7, 2}, sc[3] = {1 / sqrt(1.25), 1, 1 / sqrt(12)};
        for (uint64_t j = 0; j < 3; j++) {
            EXPECT_NEAR(tensor_get(shift, &j), ss[j], 1e-6);
            EXPECT_NEAR(tensor_get(scale, &j), sc[j], 1e-6);
        }
        dataset_normalize(&ds, shift, scale);
        /* each non-constant column now has mean 0 and variance 1; the constant one is 0 */
        for (uint64_t j = 0; j < 3; j++) {
            double s = 0, s2 = 0;
            for (uint64_t i = 0; i < 4; i++) {
                double v = tensor_get(ds.x, (uint64_t[]){i, j});
                s += v;
                s2 += v * v;
            }
            EXPECT_NEAR(s / 4, 0, 1e-6);
            EXPECT_NEAR(s2 / 4, j == 1 ? 0 : 1, 1e-6);
        }
        EXPECT_NEAR(tensor_get(ds.x, (uint64_t[]){3, 2}), 6 / sqrt(12), 1e-6);
        tensor_free(shift);
        tensor_free(scale);
        dataset_free(&ds);
    }
}

TEST(dataset_shuffle_is_a_seeded_permutation)
{
    struct Dataset a, b;
    memset(&a, 0, sizeof a);
    a.n = 1000;
    a.order = mem_alloc(a.n * sizeof *a.order);
    b = a;
    b.order = mem_alloc(b.n * sizeof *b.order);
    struct Rng r1, r2;
    rng_seed(&r1, 42);
    rng_seed(&r2, 42);
    dataset_shuffle_indices(&a, &r1);
    dataset_shuffle_indices(&b, &r2);
    char *seen = mem_alloc_zeroed(a.n);
    uint64_t moved = 0;
    for (uint64_t i = 0; i < a.n; i++) {
        EXPECT_EQ_INT(a.order[i], b.order[i]);
        if (a.order[i] < a.n) seen[a.order[i]]++;
        moved += a.order[i] != i;
    }
    for (uint64_t i = 0; i < a.n; i++) EXPECT_EQ_INT(seen[i], 1);
    EXPECT(moved > 900);
    /* the next epoch's order differs, and a different seed gives another order */
    dataset_shuffle_indices(&b, &r2);
    uint64_t same = 0;
    for (uint64_t i = 0; i < a.n; i++) same += a.order[i] == b.order[i];
    EXPECT(same < 50);
    rng_seed(&r2, 43);
    dataset_shuffle_indices(&b, &r2);
    same = 0;
    for (uint64_t i = 0; i < a.n; i++) same += a.order[i] == b.order[i];
    EXPECT(same < 50);
    mem_free(seen);
    mem_free(a.order);
    mem_free(b.order);
}

TEST(dataset_batches_with_partial_last)
{
    struct Dataset ds;
    make_ds(&ds, DT_FLOAT64);
    EXPECT_EQ_INT(dataset_num_batches(&ds, 3), 2);
    EXPECT_EQ_INT(dataset_num_batches(&ds, 4), 1);
    EXPECT_EQ_INT(dataset_num_batches(&ds, 1), 4);
    EXPECT_EQ_INT(dataset_num_batches(&ds, 100), 1);
    const uint64_t order[4] = {2, 0, 3, 1};
    memcpy(ds.order, order, sizeof order);
    ds.cls = mem_alloc(4 * sizeof *ds.cls); /* class labels are gathered the same way */
    for (uint32_t i = 0; i < 4; i++) ds.cls[i] = 20 + i;
    struct Batch bt;
    dataset_get_batch(&ds, 0, 3, &bt);
    uint64_t calls = mem_alloc_calls();
    struct Tensor *x = bt.x, *y = bt.y;
    EXPECT_EQ_INT(bt.rows, 3);
    EXPECT_EQ_INT(x->shape[0], 3);
    EXPECT_EQ_INT(x->shape[1], 3);
    EXPECT_EQ_INT(y->shape[0], 3);
    EXPECT_EQ_INT(y->shape[1], 1);
    EXPECT_NEAR(tensor_f64(x)[0], 3, 0);  /* row 2 */
    EXPECT_NEAR(tensor_f64(x)[3], 1, 0);  /* row 0 */
    EXPECT_NEAR(tensor_f64(x)[8], 8, 0);  /* row 3, column 2 */
    EXPECT_NEAR(tensor_f64(y)[0], 12, 0);
    EXPECT_NEAR(tensor_f64(y)[2], 13, 0);
    EXPECT(bt.cls[0] == 22 && bt.cls[1] == 20 && bt.cls[2] == 23);
    dataset_get_batch(&ds, 1, 3, &bt);
    x = bt.x, y = bt.y;
    EXPECT_EQ_INT(x->shape[0], 1);
    EXPECT_EQ_INT(y->shape[0], 1);
    EXPECT_NEAR(tensor_f64(x)[0], 2, 0);  /* row 1 */
    EXPECT_NEAR(tensor_f64(y)[0], 11, 0);
    EXPECT_EQ_INT(bt.cls[0], 21);
    dataset_get_batch(&ds, 3, 1, &bt); /* smaller batches reuse the buffers */
    EXPECT_NEAR(tensor_f64(bt.y)[0], 11, 0);
    EXPECT_EQ_INT(mem_alloc_calls(), calls);
    EXPECT(bt.x == &ds.bx && bt.y == &ds.by);
    dataset_free(&ds);
}

/* A CSV of 50 rows r, 100 + r, 200 + r (r = 0..49) at path. */
static void write_rows_csv(char *path, size_t cap, const char *name)
{
    char text[4096] = "", *p = text;
    for (int r = 0; r < 50; r++) p += sprintf(p, "%d,%d,%d\n", r, 100 + r, 200 + r);
    write_bytes(path, cap, name, text, strlen(text));
}

/* With threads the batches take turns in copies of the batch buffer (a writer then does
 * not wait for the readers of the batch before): every batch still holds its own rows,
 * a batch stays readable while the next ones are taken (up to the turns), the copies
 * are made once, and one thread keeps a single buffer. */
TEST(dataset_batches_take_turns_in_copies_with_threads)
{
    char path[512], err[512] = "";
    write_rows_csv(path, sizeof path, "turns.csv");
    int saved = threads_count();
    for (int nt = 1; nt <= 3; nt += 2) {
        threads_set(nt);
        struct Dataset ds;
        EXPECT_MSG(dataset_load(&ds, path, NULL, DT_FLOAT32, 0, err, sizeof err) == 0, "%s", err);
        if (!ds.x) break;
        struct Batch bt;
        const float *first = NULL;
        uint64_t calls = 0;
        for (uint64_t k = 0; k < 11; k++) { /* 7 rows a batch: 8 batches, the last of one row */
            uint64_t b = k % 8;
            dataset_get_batch(&ds, b, 7, &bt);
            if (k == 0) first = tensor_f32(bt.x), calls = mem_alloc_calls();
            EXPECT_EQ_INT(bt.x->shape[0], b == 7 ? 1 : 7);
            for (uint64_t r = 0; r < bt.x->shape[0]; r++)
                for (int c = 0; c < 3; c++)
                    EXPECT_NEAR(tensor_f32(bt.x)[r * 3 + c], (double)(100 * c + (int)(7 * b + r)), 0);
            /* batch 3 lies in a copy of its own with threads, and batch 0 is still there;
             * batch 4 takes batch 0's turn */
            if (k == 3) EXPECT(nt == 1 ? tensor_f32(bt.x) == first : tensor_f32(bt.x) != first);
            if (k == 3 && nt > 1) EXPECT_NEAR(first[1], 100, 0);
            if (k == 4) EXPECT(tensor_f32(bt.x) == first);
        }
        EXPECT_EQ_INT(ds.batch_ring, nt == 1 ? 1 : 4);
        EXPECT_EQ_INT(ds.bx_buf->shape[0], 7 * ds.batch_ring);
        EXPECT_EQ_INT(mem_alloc_calls(), calls);
        dataset_free(&ds);
    }
    threads_set(saved);
}

/* With batch_copies at 2 threads each thread gathers the whole batch into a copy of its
 * own: both hold the batch's rows in the shuffled order, copy 0 is the batch's x, a
 * part of a batch is copied alike, and nothing is allocated after the first batch. On
 * one thread, on three (past PAR_COPIES_MAX) or without batch_copies there are none. */
TEST(dataset_batch_copies_hold_the_whole_batch_for_each_thread)
{
    char path[512], err[512] = "";
    write_rows_csv(path, sizeof path, "copies.csv");
    int saved = threads_count();
    for (int v = 0; v < 4; v++) {
        int nt = v == 3 ? 3 : v == 0 ? 1 : 2, wanted = v != 2;
        threads_set(nt);
        struct Dataset ds;
        EXPECT_MSG(dataset_load(&ds, path, NULL, DT_FLOAT32, 0, err, sizeof err) == 0, "%s", err);
        if (!ds.x) break;
        for (uint64_t i = 0; i < ds.n; i++) ds.order[i] = (i * 7 + 3) % ds.n;
        ds.batch_copies = wanted;
        struct Batch bt;
        uint64_t calls = 0;
        for (uint64_t k = 0; k < 9; k++) { /* 7 rows a batch; the last two calls take parts of batch 2 */
            uint64_t b = k < 7 ? k % 8 : 2, first = 7 * b + (k == 8 ? 3 : 0);
            if (k < 7) dataset_get_batch(&ds, b, 7, &bt);
            else dataset_get_batch_part(&ds, b, 7, k - 7, 2, &bt);
            if (k == 0) calls = mem_alloc_calls();
            int copies = nt == 2 && wanted;
            EXPECT_MSG(copies ? bt.x_copies && bt.x_copies->n == 2 && bt.x_copies->copy[0] == bt.x->data
                              : !bt.x_copies, "%d threads, batch_copies %d: copies %p", nt, wanted,
                       (const void *)bt.x_copies);
            for (int w = 0; w < (copies ? 2 : 1); w++) {
                const float *x = w ? bt.x_copies->copy[w] : tensor_f32(bt.x);
                for (uint64_t r = 0; r < bt.rows; r++)
                    for (int c = 0; c < 3; c++)
                        EXPECT_NEAR(x[r * 3 + c], (double)(100 * c + (int)ds.order[first + r]), 0);
            }
        }
        EXPECT_EQ_INT(mem_alloc_calls(), calls);
        dataset_free(&ds);
    }
    threads_set(saved);
}

/* ---- the binary format ---- */

TEST(dataset_binary_round_trip)
{
    for (uint32_t dt = 0; dt < DT_COUNT; dt++) {
        struct Dataset a, b, c;
        char x[512], y[512], bin[512], err[512] = "";
        const char *xt = "h1,h2,h3\n1,2.5,3\n4,5,-6e-3\n7,8,9\n", *yt = "2\n0\n1\n";
        write_bytes(x, sizeof x, "x.csv", xt, strlen(xt));
        write_bytes(y, sizeof y, "y.csv", yt, strlen(yt));
        tmp_path(bin, sizeof bin, "d.bin");
        EXPECT_EQ_INT(dataset_load(&a, x, y, dt, 3, err, sizeof err), 0);
        EXPECT_MSG(dataset_save_binary(&a, bin, err, sizeof err) == 0, "%s", err);
        /* the same file serves as data and labels, in either dtype */
        EXPECT_MSG(dataset_load(&b, bin, bin, dt, 3, err, sizeof err) == 0, "%s", err);
        EXPECT_MSG(dataset_load(&c, bin, bin, 1 - dt, 3, err, sizeof err) == 0, "%s", err);
        EXPECT_EQ_INT(b.n, 3);
        EXPECT_EQ_INT(b.dim, 3);
        EXPECT_EQ_INT(b.label_dim, 1);
        EXPECT_EQ_INT(c.x->dtype, 1 - dt);
        for (uint64_t i = 0; i < 9 && b.x && c.x; i++) {
            EXPECT_NEAR(tensor_get(b.x, (uint64_t[]){i / 3, i % 3}), tensor_get(a.x, (uint64_t[]){i / 3, i % 3}), 0);
            EXPECT_NEAR(tensor_get(c.x, (uint64_t[]){i / 3, i % 3}), tensor_get(a.x, (uint64_t[]){i / 3, i % 3}), 1e-9);
        }
        EXPECT(a.cls && b.cls && c.cls);
        for (uint64_t i = 0; i < 3 && a.cls && b.cls && c.cls; i++) EXPECT(b.cls[i] == a.cls[i] && c.cls[i] == a.cls[i]);
        /* csv_read_matrix reads the "data" tensor; labels out of range are caught */
        struct Tensor *t = NULL;
        EXPECT_EQ_INT(csv_read_matrix(bin, dt, &t, err, sizeof err), 0);
        if (t) EXPECT_EQ_INT(t->shape[1], 3);
        tensor_free(t);
        struct Dataset d;
        EXPECT_EQ_INT(dataset_load(&d, bin, bin, dt, 2, err, sizeof err), -1);
        EXPECT_STR_CONTAINS(err, "d.bin: tensor 'labels': row 1: 2 is not a class index from 0 to 1");
        EXPECT_EQ_INT(dataset_load(&d, bin, y, dt, 3, err, sizeof err), 0);
        dataset_free(&d);
        dataset_free(&a);
        dataset_free(&b);
        dataset_free(&c);
    }
}

TEST(dataset_binary_rejects_bad_contents)
{
    char bin[512], err[512] = "";
    tmp_path(bin, sizeof bin, "bad.bin");
    struct Tensor *t = tensor_create(2, (uint64_t[]){2, 2}, DT_FLOAT64);
    const double v[4] = {1, 2, 3, NAN};
    memcpy(t->data, v, sizeof v);
    struct NamedTensor nt = {"data", t};
    EXPECT_EQ_INT(model_save(bin, &nt, 1, NULL, err, sizeof err), 0);
    struct Tensor *out = NULL;
    EXPECT_EQ_INT(csv_read_matrix(bin, DT_FLOAT64, &out, err, sizeof err), -1);
    EXPECT_STR_CONTAINS(err, "bad.bin: tensor 'data': row 2, column 2: nan (NaN and Inf are not allowed)");
    tensor_f64(t)[3] = 1e39;
    EXPECT_EQ_INT(model_save(bin, &nt, 1, NULL, err, sizeof err), 0);
    EXPECT_EQ_INT(csv_read_matrix(bin, DT_FLOAT32, &out, err, sizeof err), -1);
    EXPECT_STR_CONTAINS(err, "bad.bin: tensor 'data': row 2, column 2: 1e+39 is out of range for float32");
    nt.name = "weights";
    EXPECT_EQ_INT(model_save(bin, &nt, 1, NULL, err, sizeof err), 0);
    EXPECT_EQ_INT(csv_read_matrix(bin, DT_FLOAT32, &out, err, sizeof err), -1);
    EXPECT_STR_CONTAINS(err, "bad.bin: no tensor 'data' in this binary dataset");
    tensor_reshape(t, 1, (uint64_t[]){4});
    nt.name = "data";
    EXPECT_EQ_INT(model_save(bin, &nt, 1, NULL, err, sizeof err), 0);
    EXPECT_EQ_INT(csv_read_matrix(bin, DT_FLOAT64, &out, err, sizeof err), 0);
    if (out) EXPECT_EQ_INT(out->shape[0], 4);
    if (out) EXPECT_EQ_INT(out->shape[1], 1);
    tensor_free(out);
    tensor_reshape(t, 3, (uint64_t[]){1, 2, 2});
    EXPECT_EQ_INT(model_save(bin, &nt, 1, NULL, err, sizeof err), 0);
    EXPECT_EQ_INT(csv_read_matrix(bin, DT_FLOAT64, &out, err, sizeof err), -1);
    EXPECT_STR_CONTAINS(err, "bad.bin: tensor 'data' has shape 1x2x2, expected rows x columns");
    tensor_free(t);
}

/* A DLASM1 file with one float32 tensor "data" of shape rows x cols and no data bytes. */
static const char *write_empty_matrix(char *buf, size_t cap, uint64_t rows, uint64_t cols)
{
    unsigned char b[43] = {'D', 'L', 'A', 'S', 'M', '1', 0, 1, 0, 0, 0, 4, 0, 0, 0, 'd', 'a', 't', 'a',
                           0, 0, 0, 0, 2, 0, 0, 0};
    for (int i = 0; i < 8; i++) {
        b[27 + i] = (unsigned char)(rows >> (8 * i));
        b[35 + i] = (unsigned char)(cols >> (8 * i));
    }
    return write_bytes(buf, cap, "empty.bin", (const char *)b, sizeof b);
}

/* Found by fuzzing: rows x 0 has no bytes to check against the file size, and
 * 2^61 + 1 rows wrapped the sample-order allocation into a heap overflow. */
TEST(dataset_binary_rejects_zero_columns)
{
    const uint64_t rows[] = {4, 1ull << 40, (1ull << 61) + 1};
    for (int i = 0; i < 3; i++) {
        char bin[512], err[512] = "";
        struct Dataset ds;
        write_empty_matrix(bin, sizeof bin, rows[i], 0);
        EXPECT_EQ_INT(dataset_load(&ds, bin, NULL, DT_FLOAT32, 0, err, sizeof err), -1);
        EXPECT_STR_CONTAINS(err, "x0, expected rows x columns");
        struct Tensor *t = NULL;
        EXPECT_EQ_INT(csv_read_matrix(bin, DT_FLOAT64, &t, err, sizeof err), -1);
        EXPECT(t == NULL);
    }
}

/* ---- binary datasets left in a mapping of the file ---- */

/* n rows of d values (eighths: exact in either dtype) with class labels 0..2, saved by
 * dataset_save_binary in dtype, which puts "data" at byte 64 of the file. */
static const char *save_fixture(char *path, size_t cap, const char *name, uint64_t n, uint64_t d, uint32_t dtype)
{
    char err[512] = "";
    struct Dataset ds;
    memset(&ds, 0, sizeof ds);
    ds.n = n, ds.dim = d, ds.label_dim = 1;
    ds.x = tensor_create(2, (uint64_t[]){n, d}, dtype);
    for (uint64_t i = 0; i < n * d; i++) {
        double v = (double)((i * 37 + i / d) % 101) / 8 - 5;
        if (dtype == DT_FLOAT32) tensor_f32(ds.x)[i] = (float)v;
        else tensor_f64(ds.x)[i] = v;
    }
    ds.cls = mem_alloc(n * sizeof *ds.cls);
    for (uint64_t i = 0; i < n; i++) ds.cls[i] = (uint32_t)(i % 3);
    tmp_path(path, cap, name);
    EXPECT_MSG(dataset_save_binary(&ds, path, err, sizeof err) == 0, "%s", err);
    dataset_free(&ds);
    return path;
}

/* crc32 of a whole file (0 if it cannot be read). */
static uint32_t file_crc32(const char *path)
{
    unsigned char buf[1 << 14];
    uint32_t crc = 0;
    size_t n;
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) crc = crc32_ieee(crc, buf, n);
    fclose(f);
    return crc;
}

enum { MAP_N = 3000, MAP_D = 16 };

/* m: the file stored in dt, mapped; r: the same values stored in the other dtype, read
 * and converted (today's path). Both in dtype dt. */
static int load_pair(uint32_t dt, struct Dataset *m, struct Dataset *r)
{
    char f32[512], f64[512], err[512] = "";
    save_fixture(f32, sizeof f32, "m32.bin", MAP_N, MAP_D, DT_FLOAT32);
    save_fixture(f64, sizeof f64, "m64.bin", MAP_N, MAP_D, DT_FLOAT64);
    const char *same = dt == DT_FLOAT32 ? f32 : f64, *other = dt == DT_FLOAT32 ? f64 : f32;
    int bad = dataset_load(m, same, same, dt, 3, err, sizeof err);
    EXPECT_MSG(!bad, "%s", err);
    if (!bad) bad = dataset_load(r, other, other, dt, 3, err, sizeof err);
    EXPECT_MSG(!bad, "%s", err);
    if (!bad) EXPECT(m->map != NULL && r->map == NULL);
    return bad;
}

TEST(dataset_binary_mapped_batches_match_the_read_path)
{
    int saved = threads_count();
    for (uint32_t dt = 0; dt < DT_COUNT; dt++) {
        struct Dataset m, r;
        if (load_pair(dt, &m, &r)) continue;
        size_t es = dtype_size(dt), row = MAP_D * es;
        EXPECT((char *)m.x->data == (char *)m.map + 64 && !(m.x->flags & OWN_DATA)); /* in place: no copy */
        EXPECT(memcmp(m.x->data, r.x->data, MAP_N * row) == 0);
        EXPECT(memcmp(m.cls, r.cls, MAP_N * sizeof *m.cls) == 0);
        EXPECT_EQ_INT(dataset_bytes(&m), dataset_bytes(&r)); /* mapped bytes count as the read ones */
        /* shuffled batches on one thread and on four (the gather's tasks guard their
         * reads each), and the parts train-mpi's ranks take of them */
        for (int threads = 1; threads <= 4; threads += 3) {
            threads_set(threads);
            struct Rng r1, r2;
            rng_seed(&r1, 5), rng_seed(&r2, 5);
            dataset_shuffle_indices(&m, &r1);
            dataset_shuffle_indices(&r, &r2);
            for (uint64_t b = 0; b < dataset_num_batches(&m, 1024); b++) {
                struct Batch bm, br;
                EXPECT_EQ_INT(dataset_get_batch(&m, b, 1024, &bm), 0);
                EXPECT_EQ_INT(dataset_get_batch(&r, b, 1024, &br), 0);
                EXPECT_EQ_INT(bm.rows, br.rows);
                EXPECT_EQ_INT(bm.batch_rows, b < 2 ? 1024 : MAP_N - 2048);
                EXPECT(memcmp(bm.x->data, br.x->data, br.rows * row) == 0);
                EXPECT(memcmp(bm.cls, br.cls, br.rows * sizeof *bm.cls) == 0);
                for (uint64_t p = 0; p < 3; p++) {
                    uint64_t lo = br.rows * p / 3;
                    EXPECT_EQ_INT(dataset_get_batch_part(&m, b, 1024, p, 3, &bm), 0);
                    EXPECT_EQ_INT(bm.batch_rows, br.rows);
                    EXPECT_EQ_INT(bm.rows, br.rows * (p + 1) / 3 - lo);
                    EXPECT(memcmp(bm.x->data, (char *)br.x->data + lo * row, bm.rows * row) == 0);
                    EXPECT(memcmp(bm.cls, br.cls + lo, bm.rows * sizeof *bm.cls) == 0);
                }
            }
        }
        threads_set(saved);
        /* a file whose "data" does not start aligned for its dtype (model_save puts it
         * at byte 43, as csv2bin did before) is read, not mapped */
        char old[512], err[512] = "";
        struct NamedTensor nt = {"data", m.x};
        EXPECT_MSG(model_save(tmp_path(old, sizeof old, "old.bin"), &nt, 1, NULL, err, sizeof err) == 0, "%s", err);
        struct Dataset o;
        EXPECT_MSG(dataset_load(&o, old, NULL, dt, 0, err, sizeof err) == 0, "%s", err);
        if (o.x) EXPECT(o.map == NULL && memcmp(o.x->data, r.x->data, MAP_N * row) == 0);
        dataset_free(&o);
        dataset_free(&m);
        dataset_free(&r);
    }
}

TEST(dataset_binary_mapped_normalize_copies_and_leaves_the_file)
{
    for (uint32_t dt = 0; dt < DT_COUNT; dt++) {
        struct Dataset m, r;
        if (load_pair(dt, &m, &r)) continue;
        char path[512];
        tmp_path(path, sizeof path, dt == DT_FLOAT32 ? "m32.bin" : "m64.bin");
        uint32_t before = file_crc32(path);
        for (int kind = NORM_MINMAX; kind <= NORM_STANDARD; kind++) {
            struct Tensor *ms, *mc, *rs, *rc;
            EXPECT_EQ_INT(dataset_norm_stats(&m, kind, &ms, &mc), 0);
            EXPECT_EQ_INT(dataset_norm_stats(&r, kind, &rs, &rc), 0);
            EXPECT(memcmp(ms->data, rs->data, MAP_D * dtype_size(dt)) == 0);
            EXPECT(memcmp(mc->data, rc->data, MAP_D * dtype_size(dt)) == 0);
            EXPECT_EQ_INT(dataset_normalize(&m, ms, mc), 0);
            EXPECT_EQ_INT(dataset_normalize(&r, rs, rc), 0);
            EXPECT(m.map == NULL && (m.x->flags & OWN_DATA)); /* a private copy, written */
            EXPECT(memcmp(m.x->data, r.x->data, MAP_N * MAP_D * dtype_size(dt)) == 0);
            tensor_free(ms), tensor_free(mc), tensor_free(rs), tensor_free(rc);
        }
        struct Batch b;
        EXPECT_EQ_INT(dataset_get_batch(&m, 2, 1024, &b), 0);
        EXPECT_EQ_INT(file_crc32(path), before); /* the file was never written */
        dataset_free(&m);
        dataset_free(&r);
    }
}

TEST(dataset_binary_mapped_split_matches_the_read_path)
{
    for (uint32_t dt = 0; dt < DT_COUNT; dt++) {
        struct Dataset m, r, mv, rv;
        if (load_pair(dt, &m, &r)) continue;
        struct Rng r1, r2;
        rng_seed(&r1, 9), rng_seed(&r2, 9);
        EXPECT_EQ_INT(dataset_split(&m, &mv, 600, &r1), 0);
        EXPECT_EQ_INT(dataset_split(&r, &rv, 600, &r2), 0);
        EXPECT(m.n == MAP_N - 600 && mv.n == 600 && r.n == m.n && rv.n == 600);
        EXPECT(m.map == NULL && mv.map == NULL); /* both parts are copies */
        size_t row = MAP_D * dtype_size(dt);
        EXPECT(memcmp(m.x->data, r.x->data, m.n * row) == 0);
        EXPECT(memcmp(mv.x->data, rv.x->data, mv.n * row) == 0);
        EXPECT(memcmp(m.cls, r.cls, m.n * sizeof *m.cls) == 0);
        EXPECT(memcmp(mv.cls, rv.cls, mv.n * sizeof *mv.cls) == 0);
        dataset_free(&m), dataset_free(&r), dataset_free(&mv), dataset_free(&rv);
    }
}

/* Another program truncates the file under a mapped dataset: every read of it returns
 * -1 (the fault that would kill the process caught on the thread that read, on four at
 * once), the message names the file, and the dataset can still be freed. */
TEST(dataset_binary_mapped_file_cut_under_the_reads)
{
    int saved = threads_count();
    for (uint32_t dt = 0; dt < DT_COUNT; dt++) {
        char path[512], err[512] = "";
        struct Dataset m;
        struct Batch b;
        /* cut in the last page (the labels' end): no read faults, the size says it; a
         * batch looks at it once DATASET_CHECK_S has passed since the last look,
         * dataset_check at once */
        for (int now = 0; now < 2; now++) {
            save_fixture(path, sizeof path, "cut.bin", MAP_N, MAP_D, dt);
            EXPECT_MSG(dataset_load(&m, path, path, dt, 3, err, sizeof err) == 0 && m.map, "%s", err);
            if (!m.map) break;
            EXPECT_EQ_INT(dataset_get_batch(&m, 0, 64, &b), 0);
            EXPECT(truncate(path, (off_t)m.map_len - 10) == 0);
            if (now) {
                EXPECT_EQ_INT(dataset_check(&m), -1);
            } else {
                usleep((useconds_t)(2e6 * DATASET_CHECK_S));
                EXPECT_EQ_INT(dataset_get_batch(&m, 0, 64, &b), -1);
            }
            EXPECT_EQ_INT(dataset_get_batch(&m, 1, 64, &b), -1); /* it stays cut */
            EXPECT_EQ_INT(dataset_error(&m, err, sizeof err), -1);
            EXPECT_STR_CONTAINS(err, path);
            EXPECT_STR_CONTAINS(err, ": the file shrank while it was being read");
            dataset_free(&m);
        }
        /* cut to 5000 bytes: the rows past it fault */
        save_fixture(path, sizeof path, "cut.bin", MAP_N, MAP_D, dt);
        EXPECT_MSG(dataset_load(&m, path, path, dt, 3, err, sizeof err) == 0 && m.map, "%s", err);
        if (!m.map) continue;
        EXPECT(truncate(path, 5000) == 0);
        threads_set(4);
        EXPECT_EQ_INT(dataset_get_batch(&m, 0, MAP_N, &b), -1);
        EXPECT_EQ_INT(dataset_get_batch_part(&m, 0, 1024, 1, 2, &b), -1);
        struct Tensor *shift = NULL, *scale = NULL;
        EXPECT_EQ_INT(dataset_norm_stats(&m, NORM_STANDARD, &shift, &scale), -1); /* 2 tasks of 8 features */
        EXPECT(shift == NULL && scale == NULL);
        threads_set(saved);
        shift = tensor_zeros(1, (uint64_t[]){MAP_D}, dt), scale = tensor_zeros(1, (uint64_t[]){MAP_D}, dt);
        EXPECT_EQ_INT(dataset_normalize(&m, shift, scale), -1);
        EXPECT(m.map != NULL); /* unchanged */
        tensor_free(shift), tensor_free(scale);
        struct Dataset held;
        struct Rng rng;
        rng_seed(&rng, 1);
        EXPECT_EQ_INT(dataset_split(&m, &held, 100, &rng), -1);
        EXPECT(held.n == 0 && held.x == NULL && m.n == MAP_N);
        err[0] = 0;
        EXPECT_EQ_INT(dataset_error(&m, err, sizeof err), -1);
        EXPECT_STR_CONTAINS(err, "cut.bin: the file shrank while it was being read");
        dataset_free(&m);
        struct Dataset again;
        EXPECT_EQ_INT(dataset_load(&again, path, path, dt, 3, err, sizeof err), -1); /* and loading it now */
        EXPECT_STR_CONTAINS(err, "cut.bin: truncated at byte 5000");
    }
}
