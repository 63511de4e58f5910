/* Tests of mem, utils and tensor. */
#include "test.h"
#include "mem.h"
#include "tensor.h"
#include "utils.h"

#include <stdint.h>
#include <string.h>

TEST(tensor_create_fill_get)
{
    uint64_t shape[3] = {2, 3, 4};
    struct Tensor *t = tensor_zeros(3, shape, DT_FLOAT64);
    EXPECT_EQ_INT(tensor_numel(t), 24);
    EXPECT_EQ_INT(t->stride[0], 12);
    EXPECT_EQ_INT(t->stride[2], 1);
    uint64_t idx[3] = {1, 2, 3};
    EXPECT_NEAR(tensor_get(t, idx), 0.0, 0);
    tensor_fill(t, 2.5);
    EXPECT_NEAR(tensor_get(t, idx), 2.5, 0);
    tensor_free(t);
}

/* Fills t (any dtype, contiguous) with 0, 1, 2, ... in row-major order. */
static void iota(struct Tensor *t)
{
    for (uint64_t i = 0; i < tensor_numel(t); i++)
        if (t->dtype == DT_FLOAT32) tensor_f32(t)[i] = (float)i;
        else tensor_f64(t)[i] = (double)i;
}

static double at2(const struct Tensor *t, uint64_t i, uint64_t j)
{
    uint64_t idx[2] = {i, j};
    return tensor_get(t, idx);
}

TEST(tensor_create_zeros_get_set_both_dtypes)
{
    for (uint32_t dt = 0; dt < DT_COUNT; dt++) {
        uint64_t shape[2] = {3, 4};
        struct Tensor *t = tensor_zeros(2, shape, dt);
        EXPECT_EQ_INT(dtype_size(dt), dt == DT_FLOAT32 ? 4 : 8);
        EXPECT_EQ_INT(t->dtype, dt);
        EXPECT_EQ_INT(t->flags, OWN_DATA | OWN_META);
        EXPECT_EQ_INT((uintptr_t)t->data % 64, 0);
        EXPECT(tensor_is_contiguous(t));
        for (uint64_t i = 0; i < 12; i++) EXPECT_NEAR(dt ? tensor_f64(t)[i] : tensor_f32(t)[i], 0, 0);
        uint64_t idx[2] = {2, 1};
        tensor_set(t, idx, 0.1);
        EXPECT_NEAR(tensor_get(t, idx), dt == DT_FLOAT32 ? (double)0.1f : 0.1, 0);
        /* row-major: element (2,1) is at 2*4+1 */
        EXPECT_NEAR(dt ? tensor_f64(t)[9] : tensor_f32(t)[9], dt == DT_FLOAT32 ? (double)0.1f : 0.1, 0);
        tensor_free(t);
    }
    EXPECT(!strcmp(dtype_name(DT_FLOAT32), "float32"));
    EXPECT(!strcmp(dtype_name(DT_FLOAT64), "float64"));
}

TEST(tensor_reshape_keeps_data_and_shape_str)
{
    uint64_t shape[2] = {2, 6}, to[3] = {3, 2, 2}, flat[1] = {12};
    struct Tensor *t = tensor_create(2, shape, DT_FLOAT32);
    iota(t);
    char buf[64];
    EXPECT(!strcmp(tensor_shape_str(t, buf, sizeof buf), "2x6"));
    tensor_reshape(t, 3, to);
    EXPECT(!strcmp(tensor_shape_str(t, buf, sizeof buf), "3x2x2"));
    EXPECT_EQ_INT(t->stride[0], 4);
    EXPECT_EQ_INT(t->stride[1], 2);
    uint64_t idx[3] = {2, 1, 0};
    EXPECT_NEAR(tensor_get(t, idx), 10, 0);
    tensor_reshape(t, 1, flat);
    EXPECT_EQ_INT(t->ndim, 1);
    EXPECT_EQ_INT(tensor_numel(t), 12);
    tensor_free(t);
}

TEST(tensor_view_shares_data)
{
    for (uint32_t dt = 0; dt < DT_COUNT; dt++) {
        uint64_t shape[2] = {2, 6}, vshape[2] = {3, 4};
        struct Tensor *t = tensor_create(2, shape, dt);
        iota(t);
        int64_t live = mem_live_blocks();
        struct Tensor *v = tensor_view(t, 2, vshape, NULL);
        EXPECT(v->data == t->data);
        EXPECT_EQ_INT(v->flags, OWN_META);
        EXPECT_NEAR(at2(v, 2, 1), 9, 0);
        uint64_t idx[2] = {0, 3};
        tensor_set(v, idx, -7);
        EXPECT_NEAR(at2(t, 0, 3), -7, 0); /* written through the view */
        tensor_free(v);
        EXPECT_EQ_INT(mem_live_blocks(), live); /* only the view's header went */
        EXPECT_NEAR(at2(t, 1, 5), 11, 0);      /* the data is still there */
        /* A strided view: the transpose of t without copying. */
        uint64_t tshape[2] = {6, 2}, tstride[2] = {1, 6};
        struct Tensor *tv = tensor_view(t, 2, tshape, tstride);
        EXPECT(!tensor_is_contiguous(tv));
        EXPECT_NEAR(at2(tv, 4, 1), 10, 0);
        tensor_free(tv);
        tensor_free(t);
    }
}

TEST(tensor_copy_deep_and_strided)
{
    uint64_t shape[2] = {3, 5}, tshape[2] = {5, 3}, tstride[2] = {1, 5};
    struct Tensor *t = tensor_create(2, shape, DT_FLOAT64);
    iota(t);
    struct Tensor *c = tensor_copy(t);
    EXPECT(c->data != t->data);
    tensor_f64(c)[0] = 99;
    EXPECT_NEAR(tensor_f64(t)[0], 0, 0);
    EXPECT_NEAR(at2(c, 2, 4), 14, 0);
    /* Copying a strided view gives a contiguous transpose. */
    struct Tensor *v = tensor_view(t, 2, tshape, tstride);
    struct Tensor *vc = tensor_copy(v);
    EXPECT(tensor_is_contiguous(vc));
    for (uint64_t i = 0; i < 5; i++)
        for (uint64_t j = 0; j < 3; j++) EXPECT_NEAR(tensor_f64(vc)[i * 3 + j], (double)(j * 5 + i), 0);
    /* ... and copying into a strided destination writes through it. */
    struct Tensor *src = tensor_zeros(2, tshape, DT_FLOAT64);
    tensor_fill(src, 4.0);
    tensor_copy_into(v, src);
    EXPECT_NEAR(tensor_f64(t)[7], 4.0, 0);
    tensor_free(src), tensor_free(vc), tensor_free(v), tensor_free(c), tensor_free(t);
}

TEST(tensor_transpose_2d_both_dtypes)
{
    for (uint32_t dt = 0; dt < DT_COUNT; dt++) {
        uint64_t shape[2] = {3, 5};
        struct Tensor *t = tensor_create(2, shape, dt);
        iota(t);
        struct Tensor *r = tensor_transpose_2d(t);
        EXPECT_EQ_INT(r->shape[0], 5);
        EXPECT_EQ_INT(r->shape[1], 3);
        for (uint64_t i = 0; i < 3; i++)
            for (uint64_t j = 0; j < 5; j++) EXPECT_NEAR(at2(r, j, i), at2(t, i, j), 0);
        struct Tensor *rr = tensor_transpose_2d(r);
        for (uint64_t i = 0; i < 15; i++) EXPECT_NEAR(dt ? tensor_f64(rr)[i] : tensor_f32(rr)[i], (double)i, 0);
        tensor_free(rr), tensor_free(r), tensor_free(t);
    }
}

TEST(tensor_fill_strided_view_only_touches_view)
{
    uint64_t shape[2] = {4, 4}, vshape[2] = {4, 1}, vstride[2] = {4, 1};
    struct Tensor *t = tensor_zeros(2, shape, DT_FLOAT32);
    struct Tensor *col = tensor_view(t, 2, vshape, vstride); /* column 0 */
    tensor_fill(col, 3.0);
    for (uint64_t i = 0; i < 16; i++) EXPECT_NEAR(tensor_f32(t)[i], i % 4 == 0 ? 3.0 : 0.0, 0);
    tensor_free(col), tensor_free(t);
}

/* ---- mem ---- */

TEST(mem_live_counter_and_calls)
{
    int64_t live = mem_live_blocks();
    uint64_t calls = mem_alloc_calls();
    char *a = mem_alloc(10), *b = mem_alloc_zeroed(100);
    double *c = mem_alloc_aligned(64 * sizeof(double), 64);
    EXPECT_EQ_INT(mem_live_blocks() - live, 3);
    EXPECT_EQ_INT(mem_alloc_calls() - calls, 3);
    EXPECT_EQ_INT((uintptr_t)c % 64, 0);
    int zero = 1;
    for (int i = 0; i < 100; i++) zero &= b[i] == 0;
    EXPECT(zero);
    memcpy(a, "123456789", 10);
    a = mem_realloc(a, 5000);
    EXPECT(!strcmp(a, "123456789"));
    EXPECT_EQ_INT(mem_live_blocks() - live, 3);
    mem_free(a), mem_free(b), mem_free(c);
    mem_free(NULL);
    EXPECT_EQ_INT(mem_live_blocks(), live);
}

static void alloc_after_fail(void *arg)
{
    mem_fail_after(*(int64_t *)arg);
    void *p = mem_alloc(16), *q = mem_alloc(32);
    void *r = mem_alloc_aligned(12345, 64);
    mem_free(p), mem_free(q), mem_free(r);
}

TEST(mem_fail_after_panics_naming_size)
{
    char err[512];
    int64_t n = 2; /* the third allocation, of 12345 bytes, fails */
    int rc = test_run_child(alloc_after_fail, &n, err, sizeof err);
    EXPECT(rc != 0);
    EXPECT_STR_CONTAINS(err, "12345");
    n = 0; /* the first, of 16 bytes */
    rc = test_run_child(alloc_after_fail, &n, err, sizeof err);
    EXPECT(rc != 0);
    EXPECT_STR_CONTAINS(err, "16 bytes");
    n = -1; /* never */
    rc = test_run_child(alloc_after_fail, &n, err, sizeof err);
    EXPECT_EQ_INT(rc, 0);
}

/* One "step": a few tensors and scratch blocks, more than the initial block holds. */
static void arena_step(struct Arena *a)
{
    uint64_t shape[2] = {64, 100};
    for (int i = 0; i < 6; i++) {
        struct Tensor *t = tensor_zeros_in(a, 2, shape, DT_FLOAT32);
        EXPECT_EQ_INT(t->flags, 0);
        EXPECT_EQ_INT((uintptr_t)t->data % 64, 0);
        char *p = arena_alloc(a, 1000 + 13 * (size_t)i);
        EXPECT_EQ_INT((uintptr_t)p % 64, 0);
        memset(p, 1, 1000);
    }
}

TEST(arena_alloc_reset_reuses_one_block)
{
    struct Arena a;
    arena_init(&a, 4096);
    int64_t live = mem_live_blocks();
    uint64_t calls = mem_alloc_calls();
    arena_step(&a);
    EXPECT(mem_alloc_calls() > calls); /* the first step grew the arena */
    arena_reset(&a);
    EXPECT_EQ_INT(mem_live_blocks(), live); /* grown blocks merged into one */
    for (int step = 0; step < 3; step++) {
        calls = mem_alloc_calls();
        arena_step(&a);
        EXPECT_EQ_INT(mem_alloc_calls(), calls); /* steady state: no heap call */
        arena_reset(&a);
        EXPECT_EQ_INT(mem_alloc_calls(), calls);
    }
    int *z = arena_alloc_zeroed(&a, 256 * sizeof(int));
    int zero = 1;
    for (int i = 0; i < 256; i++) zero &= z[i] == 0;
    EXPECT(zero);
    arena_free(&a);
}

/* ---- utils ---- */

TEST(str_to_int_good_and_bad)
{
    static const struct { const char *s; int rc; int64_t v; } cases[] = {
        {"0", STR_OK, 0}, {"42", STR_OK, 42}, {"-17", STR_OK, -17}, {"+8", STR_OK, 8},
        {"9223372036854775807", STR_OK, INT64_MAX}, {"-9223372036854775808", STR_OK, INT64_MIN},
        {"", STR_EMPTY, 0}, {"  ", STR_EMPTY, 0}, {"abc", STR_EMPTY, 0}, {"-", STR_EMPTY, 0},
        {" 5", STR_EMPTY, 0}, {"12abc", STR_JUNK, 0}, {"5 ", STR_JUNK, 0}, {"1.5", STR_JUNK, 0},
        {"0x10", STR_JUNK, 0}, {"9223372036854775808", STR_RANGE, 0}, {"-99999999999999999999", STR_RANGE, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t v = 12345;
        int rc = str_to_int(cases[i].s, &v);
        EXPECT_MSG(rc == cases[i].rc, "str_to_int(\"%s\") = %d, expected %d", cases[i].s, rc, cases[i].rc);
        EXPECT_MSG(v == (cases[i].rc == STR_OK ? cases[i].v : 12345), "str_to_int(\"%s\") wrote %lld", cases[i].s, (long long)v);
    }
}

TEST(str_to_float_good_and_bad)
{
    static const struct { const char *s; int rc; double v; } cases[] = {
        {"0", STR_OK, 0}, {"1.5", STR_OK, 1.5}, {"-2.5e3", STR_OK, -2500}, {".25", STR_OK, 0.25},
        {"1e-3", STR_OK, 1e-3}, {"+7", STR_OK, 7}, {"1E2", STR_OK, 100},
        {"", STR_EMPTY, 0}, {"  ", STR_EMPTY, 0}, {"abc", STR_EMPTY, 0}, {".", STR_EMPTY, 0},
        {"e5", STR_EMPTY, 0}, {"1.5x", STR_JUNK, 0}, {"2 ", STR_JUNK, 0}, {"0x10", STR_JUNK, 0},
        {"1e999", STR_RANGE, 0}, {"-1e999", STR_RANGE, 0}, {"nan", STR_NONFINITE, 0},
        {"NaN", STR_NONFINITE, 0}, {"inf", STR_NONFINITE, 0}, {"-Infinity", STR_NONFINITE, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double v = 12345;
        int rc = str_to_float(cases[i].s, &v);
        EXPECT_MSG(rc == cases[i].rc, "str_to_float(\"%s\") = %d, expected %d", cases[i].s, rc, cases[i].rc);
        EXPECT_MSG(v == (cases[i].rc == STR_OK ? cases[i].v : 12345), "str_to_float(\"%s\") wrote %g", cases[i].s, v);
    }
    for (int code = STR_EMPTY; code <= STR_NONFINITE; code++) {
        EXPECT(str_len(str_error(code)) > 0);
        EXPECT(str_cmp(str_error(code), str_error(STR_OK)) != 0);
    }
}

TEST(str_trim_edit_distance_copy)
{
    char a[] = "  \t hello world \n ", b[] = "   ", c[] = "x";
    EXPECT(!strcmp(str_trim(a), "hello world"));
    EXPECT(!strcmp(str_trim(b), ""));
    EXPECT(!strcmp(str_trim(c), "x"));
    EXPECT_EQ_INT(str_edit_distance("kitten", "sitting"), 3);
    EXPECT_EQ_INT(str_edit_distance("", "abc"), 3);
    EXPECT_EQ_INT(str_edit_distance("adam", "adam"), 0);
    EXPECT_EQ_INT(str_edit_distance("Adam", "adam"), 0); /* hints ignore case */
    EXPECT_EQ_INT(str_edit_distance("lnear", "linear"), 1);
    char buf[5];
    EXPECT_EQ_INT(str_copy(buf, "abcdefgh", sizeof buf), 8);
    EXPECT(!strcmp(buf, "abcd"));
    EXPECT(str_casecmp("ReLU", "relu") == 0);
    EXPECT(str_cmp("a", "b") < 0);
}

TEST(rng_deterministic_and_in_range)
{
    struct Rng r1, r2, r3;
    rng_seed(&r1, 1234);
    rng_seed(&r2, 1234);
    rng_seed(&r3, 1235);
    int same = 1, differ = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = rng_next(&r1), y = rng_next(&r2), z = rng_next(&r3);
        same &= x == y;
        differ += x != z;
    }
    EXPECT(same);
    EXPECT(differ > 95);
    int counts[10] = {0}, in_range = 1;
    for (int i = 0; i < 20000; i++) {
        double u = rng_uniform(&r1);
        in_range &= u >= 0 && u < 1;
        uint64_t k = rng_below(&r1, 10);
        in_range &= k < 10;
        if (k < 10) counts[k]++;
    }
    EXPECT(in_range);
    for (int k = 0; k < 10; k++) EXPECT_MSG(counts[k] > 1700 && counts[k] < 2300, "bucket %d: %d of 20000", k, counts[k]);
}
