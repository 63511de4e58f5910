/* Tests of model_io: the crc, the exact byte layout, round trips, and every way a
 * file can be truncated or corrupted, and saves that fail. */
#include "test.h"
#include "mem.h"
#include "model_io.h"
#include "tensor.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers ---- */

static struct Tensor *make(uint32_t dtype, uint64_t ndim, const uint64_t *shape, double base)
{
    struct Tensor *t = tensor_create(ndim, shape, dtype);
    uint64_t n = tensor_numel(t);
    for (uint64_t i = 0; i < n; i++) {
        double v = base + 0.25 * (double)i - 1.0 / 3.0; /* not exact in float: tests bit copies */
        if (dtype == DT_FLOAT32) tensor_f32(t)[i] = (float)v;
        else tensor_f64(t)[i] = v;
    }
    return t;
}

static char *path_in(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", test_tmpdir(), name);
    return buf;
}

static unsigned char *slurp(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = mem_alloc((size_t)n);
    *size = fread(b, 1, (size_t)n, f);
    fclose(f);
    return b;
}

static void spit(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return;
    if (n) fwrite(data, 1, n, f);
    fclose(f);
}

/* Does any file in dir have ".tmp." in its name? */
static int has_temp_file(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int found = 0;
    if (!d) return 0;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp.")) found = 1;
    closedir(d);
    return found;
}

static int tensors_equal(const struct Tensor *a, const struct Tensor *b)
{
    return a && b && a->dtype == b->dtype && tensor_same_shape(a, b) &&
           memcmp(a->data, b->data, tensor_numel(a) * dtype_size(a->dtype)) == 0;
}

/* A small model: w (2x3), b (3), s (a scalar), all of one dtype. */
struct Small {
    struct Tensor *t[3];
    struct NamedTensor nt[3];
};

static void small_init(struct Small *s, uint32_t dtype)
{
    uint64_t sw[2] = {2, 3}, sb[1] = {3};
    s->t[0] = make(dtype, 2, sw, 1.5);
    s->t[1] = make(dtype, 1, sb, -7);
    s->t[2] = make(dtype, 0, NULL, 42);
    const char *names[3] = {"linear1.weight", "linear1.bias", "s"};
    for (int i = 0; i < 3; i++) s->nt[i] = (struct NamedTensor){names[i], s->t[i]};
}

static void small_free(struct Small *s)
{
    for (int i = 0; i < 3; i++) tensor_free(s->t[i]);
}

/* ---- crc ---- */

TEST(crc32_known_vectors)
{
    EXPECT_EQ_INT(crc32_ieee(0, "123456789", 9), 0xCBF43926u);
    EXPECT_EQ_INT(crc32_ieee(0, "", 0), 0);
    EXPECT_EQ_INT(crc32_ieee(0, "a", 1), 0xE8B7BE43u);
    const char *fox = "The quick brown fox jumps over the lazy dog";
    EXPECT_EQ_INT(crc32_ieee(0, fox, strlen(fox)), 0x414FA339u);
    /* Incremental use gives the same as one call (as zlib's crc32). */
    EXPECT_EQ_INT(crc32_ieee(crc32_ieee(0, fox, 10), fox + 10, strlen(fox) - 10), 0x414FA339u);
}

/* ---- layout ---- */

TEST(model_exact_bytes)
{
    char path[512];
    uint64_t shape[1] = {2};
    struct Tensor *t = tensor_create(1, shape, DT_FLOAT32);
    tensor_f32(t)[0] = 1.0f;
    tensor_f32(t)[1] = -2.0f;
    struct NamedTensor nt = {"w", t};
    char err[256] = "";
    EXPECT_EQ_INT(model_save(path_in(path, sizeof path, "exact.bin"), &nt, 1, "x=1\n", err, sizeof err), 0);
    static const unsigned char want[] = {
        'D', 'L', 'A', 'S', 'M', '1', 0, 1, 0, 0, 0,  /* magic, n_tensors 1 */
        1, 0, 0, 0, 'w', 0, 0, 0, 0, 1, 0, 0, 0,      /* name_len, name, dtype 0, ndim 1 */
        2, 0, 0, 0, 0, 0, 0, 0,                       /* shape[0] = 2 */
        0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0,              /* 1.0f, -2.0f */
        'D', 'L', 'C', 'F', 'G', '1', 0, 4, 0, 0, 0,  /* trailer magic, len 4 */
        'x', '=', '1', '\n'};
    size_t n = 0;
    unsigned char *got = slurp(path, &n);
    EXPECT_EQ_INT(n, sizeof want + 4);
    if (got && n == sizeof want + 4) {
        EXPECT(memcmp(got, want, sizeof want) == 0);
        uint32_t crc = crc32_ieee(0, want, sizeof want);
        const unsigned char *c = got + sizeof want;
        EXPECT_EQ_INT((uint32_t)c[0] | (uint32_t)c[1] << 8 | (uint32_t)c[2] << 16 | (uint32_t)c[3] << 24, crc);
    }
    mem_free(got);
    tensor_free(t);
}

/* ---- round trips ---- */

static void round_trip(uint32_t dtype, const char *config)
{
    char path[512], err[256] = "";
    struct Small s;
    small_init(&s, dtype);
    path_in(path, sizeof path, "rt.bin");
    EXPECT_EQ_INT(model_save(path, s.nt, 3, config, err, sizeof err), 0);
    struct ModelFile mf;
    EXPECT_EQ_INT(model_load(path, &mf, err, sizeof err), 0);
    EXPECT_EQ_INT(mf.n, 3);
    for (uint32_t i = 0; i < mf.n && i < 3; i++) {
        EXPECT(strcmp(mf.tensors[i].name, s.nt[i].name) == 0);
        EXPECT(tensors_equal(mf.tensors[i].t, s.t[i]));
        EXPECT(model_file_find(&mf, s.nt[i].name) == mf.tensors[i].t);
    }
    EXPECT(model_file_find(&mf, "nope") == NULL);
    uint64_t held = 0;
    for (int i = 0; i < 3; i++) held += tensor_numel(s.t[i]) * dtype_size(dtype);
    EXPECT(model_file_bytes(&mf) == held);
    if (!config) {
        EXPECT(mf.config_text == NULL);
        EXPECT_EQ_INT(mf.config_len, 0);
    } else {
        EXPECT_EQ_INT(mf.config_len, strlen(config));
        EXPECT(mf.config_text && memcmp(mf.config_text, config, strlen(config) + 1) == 0);
    }
    EXPECT(model_is_container(path));
    EXPECT(!has_temp_file(test_tmpdir()));
    model_file_free(&mf);
    small_free(&s);
}

/* CRLF, a BOM, tabs, UTF-8 and an empty config are all kept byte for byte. */
TEST(model_round_trip_f32) { round_trip(DT_FLOAT32, NULL); round_trip(DT_FLOAT32, "[net]\r\n\xEF\xBB\xBFlr = 0.1\t# caf\xC3\xA9\n"); }
TEST(model_round_trip_f64) { round_trip(DT_FLOAT64, NULL); round_trip(DT_FLOAT64, "[train]\nepochs=3"); round_trip(DT_FLOAT64, ""); }

TEST(model_save_strided_view_row_major)
{
    char path[512], err[256] = "";
    uint64_t shape[2] = {2, 3}, tshape[2] = {3, 2}, tstride[2] = {1, 3};
    struct Tensor *t = make(DT_FLOAT64, 2, shape, 0);
    struct Tensor *v = tensor_view(t, 2, tshape, tstride);
    struct Tensor *want = tensor_transpose_2d(t);
    struct NamedTensor nt = {"wt", v};
    EXPECT_EQ_INT(model_save(path_in(path, sizeof path, "view.bin"), &nt, 1, NULL, err, sizeof err), 0);
    struct ModelFile mf;
    EXPECT_EQ_INT(model_load(path, &mf, err, sizeof err), 0);
    EXPECT(mf.n == 1 && tensors_equal(mf.tensors[0].t, want));
    model_file_free(&mf);
    tensor_free(want);
    tensor_free(v);
    tensor_free(t);
}

/* ---- truncation and corruption ---- */

/* Saves the small model and returns its bytes. */
static unsigned char *small_bytes(uint32_t dtype, const char *config, size_t *n)
{
    char path[512], err[256];
    struct Small s;
    small_init(&s, dtype);
    model_save(path_in(path, sizeof path, "src.bin"), s.nt, 3, config, err, sizeof err);
    small_free(&s);
    return slurp(path, n);
}

/* Loads bytes written to a file; returns model_load's result, message in err. */
static int load_bytes(const unsigned char *b, size_t n, char *err, size_t cap)
{
    char path[512];
    struct ModelFile mf;
    spit(path_in(path, sizeof path, "bad.bin"), b, n);
    int64_t live = mem_live_blocks();
    err[0] = 0;
    int rc = model_load(path, &mf, err, cap);
    if (rc != 0) {
        EXPECT_EQ_INT(mem_live_blocks(), live); /* nothing left behind on error */
        EXPECT_STR_CONTAINS(err, path);
    }
    model_file_free(&mf);
    return rc;
}

TEST(model_every_truncation_rejected)
{
    char err[512];
    size_t n = 0;
    unsigned char *b = small_bytes(DT_FLOAT32, NULL, &n);
    EXPECT(n > 60);
    for (size_t len = 0; len < n; len++) {
        int rc = load_bytes(b, len, err, sizeof err);
        EXPECT_MSG(rc == -1, "a file cut to %zu of %zu bytes was accepted", len, n);
        EXPECT_MSG(strstr(err, "truncated") || strstr(err, "bad magic"), "len %zu: %s", len, err);
    }
    EXPECT_EQ_INT(load_bytes(b, n, err, sizeof err), 0);
    /* With a trailer, only the cut right where the tensors end is a valid (trailer-less) file. */
    mem_free(b);
    b = small_bytes(DT_FLOAT64, "[net]\nlayers=1\n", &n);
    size_t tensors_end = n - (7 + 4 + strlen("[net]\nlayers=1\n") + 4);
    for (size_t len = 0; len < n; len++) {
        int rc = load_bytes(b, len, err, sizeof err);
        if (len == tensors_end) EXPECT_MSG(rc == 0, "cut at the trailer: %s", err);
        else EXPECT_MSG(rc == -1, "a file cut to %zu of %zu bytes was accepted", len, n);
    }
    load_bytes(b, tensors_end + 3, err, sizeof err);
    EXPECT_STR_CONTAINS(err, "trailing garbage");
    load_bytes(b, n - 2, err, sizeof err);
    EXPECT_STR_CONTAINS(err, "truncated at byte");
    EXPECT_STR_CONTAINS(err, "checksum");
    mem_free(b);
}

TEST(model_checksum_mismatch)
{
    char err[512];
    const char *cfg = "[train]\nlr=0.01\n";
    size_t n = 0;
    unsigned char *b = small_bytes(DT_FLOAT32, cfg, &n);
    size_t text = n - 4 - strlen(cfg);
    size_t at[3] = {text + 3, 60, n - 1}; /* config text, tensor data, the crc itself */
    for (int i = 0; i < 3; i++) {
        b[at[i]] ^= 0x10;
        EXPECT_EQ_INT(load_bytes(b, n, err, sizeof err), -1);
        EXPECT_STR_CONTAINS(err, "checksum mismatch");
        b[at[i]] ^= 0x10;
    }
    EXPECT_EQ_INT(load_bytes(b, n, err, sizeof err), 0);
    unsigned char *longer = mem_alloc(n + 1);
    memcpy(longer, b, n);
    longer[n] = 0;
    EXPECT_EQ_INT(load_bytes(longer, n + 1, err, sizeof err), -1);
    EXPECT_STR_CONTAINS(err, "trailing garbage");
    mem_free(longer);
    mem_free(b);
}

static void put32(unsigned char *b, uint32_t v)
{
    for (int i = 0; i < 4; i++) b[i] = (unsigned char)(v >> (8 * i));
}

/* Offsets in the small model: tensor 0 "linear1.weight" starts at byte 11. */
enum { OFF_N = 7, OFF_NAMELEN = 11, OFF_NAME = 15, OFF_DTYPE = 29, OFF_NDIM = 33, OFF_SHAPE = 37 };

/* A corrupted field must be rejected with the given words, allocating at most max_allocs. */
static void expect_bad_field(size_t off, const void *val, size_t len, const char *words, uint64_t max_allocs)
{
    char err[512];
    size_t n = 0;
    unsigned char *b = small_bytes(DT_FLOAT32, NULL, &n);
    memcpy(b + off, val, len);
    uint64_t calls = mem_alloc_calls();
    EXPECT_EQ_INT(load_bytes(b, n, err, sizeof err), -1);
    EXPECT_MSG(mem_alloc_calls() - calls <= max_allocs, "%llu allocations for a corrupt file (%s)",
               (unsigned long long)(mem_alloc_calls() - calls), err);
    EXPECT_STR_CONTAINS(err, words);
    mem_free(b);
}

TEST(model_corrupt_lengths_rejected_before_allocating)
{
    unsigned char v[8];
    put32(v, 0xFFFFFFFFu);
    expect_bad_field(OFF_N, v, 4, "4294967295 tensors", 0);
    v[3] = 0x80;
    expect_bad_field(OFF_N + 3, v + 3, 1, "tensors but only", 0); /* a flipped bit */
    put32(v, 0x7FFFFFF0u);
    expect_bad_field(OFF_NAMELEN, v, 4, "tensor #0: name length 2147483632", 1);
    put32(v, 0);
    expect_bad_field(OFF_NAMELEN, v, 4, "tensor #0: name length 0", 1);
    put32(v, 2);
    expect_bad_field(OFF_DTYPE, v, 4, "tensor 'linear1.weight': unknown dtype 2", 1);
    put32(v, 9);
    expect_bad_field(OFF_NDIM, v, 4, "tensor 'linear1.weight': 9 dimensions", 1);
    put32(v, 200);
    expect_bad_field(OFF_NDIM, v, 4, "tensor 'linear1.weight': 200 dimensions", 1);
    uint64_t huge = 1ull << 40; /* 4 TB of data: must not be allocated */
    memcpy(v, &huge, 8);
    expect_bad_field(OFF_SHAPE, v, 8, "tensor 'linear1.weight' data at byte 53 needs 13194139533312 bytes", 1);
    huge = 1ull << 62; /* 2^62 x 3 elements overflows */
    memcpy(v, &huge, 8);
    expect_bad_field(OFF_SHAPE, v, 8, "tensor 'linear1.weight': shape 4611686018427387904x3 is too large", 1);
    expect_bad_field(OFF_NAME + 3, "\0", 1, "tensor #0: name contains a NUL byte", 1);
    expect_bad_field(0, "DLASM2", 6, "not a DLASM1 model file", 0);
}

TEST(model_duplicate_names_rejected)
{
    char err[512], path[512];
    size_t n = 0;
    unsigned char *b;
    /* A real clash: two one-letter names. */
    uint64_t sh[1] = {1};
    struct Tensor *t1 = make(DT_FLOAT32, 1, sh, 0), *t2 = make(DT_FLOAT32, 1, sh, 1);
    struct NamedTensor nt[2] = {{"a", t1}, {"b", t2}};
    EXPECT_EQ_INT(model_save(path_in(path, sizeof path, "dup.bin"), nt, 2, NULL, err, sizeof err), 0);
    b = slurp(path, &n);
    size_t second = 11 + 4 + 1 + 4 + 4 + 8 + 4; /* after tensor "a" */
    EXPECT_EQ_INT(b[second + 4], 'b');
    b[second + 4] = 'a';
    EXPECT_EQ_INT(load_bytes(b, n, err, sizeof err), -1);
    EXPECT_STR_CONTAINS(err, "tensor 'a' appears more than once");
    mem_free(b);
    /* Saving duplicates, or a bad name, is refused before any file is made. */
    nt[1].name = "a";
    EXPECT_EQ_INT(model_save(path_in(path, sizeof path, "dup2.bin"), nt, 2, NULL, err, sizeof err), -1);
    EXPECT_STR_CONTAINS(err, "tensor 'a' appears more than once");
    nt[1].name = "";
    EXPECT_EQ_INT(model_save(path, nt, 2, NULL, err, sizeof err), -1);
    EXPECT_STR_CONTAINS(err, "tensor #1: empty name");
    EXPECT(access(path, F_OK) != 0);
    tensor_free(t1);
    tensor_free(t2);
}

TEST(model_load_errors_name_the_file)
{
    char path[512], err[512];
    struct ModelFile mf;
    EXPECT_EQ_INT(model_load(path_in(path, sizeof path, "missing.bin"), &mf, err, sizeof err), -1);
    EXPECT_STR_CONTAINS(err, "missing.bin: cannot open: No such file or directory");
    EXPECT_EQ_INT(model_load(test_tmpdir(), &mf, err, sizeof err), -1);
    EXPECT_STR_CONTAINS(err, "not a regular file");
    test_write_file(path_in(path, sizeof path, "text.csv"), "1,2,3\n4,5,6\n");
    EXPECT_EQ_INT(model_load(path, &mf, err, sizeof err), -1);
    EXPECT_STR_CONTAINS(err, "text.csv: not a DLASM1 model file");
    EXPECT(!model_is_container(path));
    EXPECT(!model_is_container(path_in(path, sizeof path, "missing.bin")));
    spit(path_in(path, sizeof path, "short.bin"), "DLA", 3);
    EXPECT(!model_is_container(path));
}

/* ---- model_assign ---- */

TEST(model_assign_checks_name_dtype_shape)
{
    char path[512], err[512] = "";
    struct Small s;
    small_init(&s, DT_FLOAT32);
    path_in(path, sizeof path, "model.bin");
    EXPECT_EQ_INT(model_save(path, s.nt, 3, NULL, err, sizeof err), 0);
    struct ModelFile mf;
    EXPECT_EQ_INT(model_load(path, &mf, err, sizeof err), 0);

    uint64_t sw[2] = {2, 3}, sw2[2] = {3, 2}, sb[1] = {3};
    struct Tensor *w = tensor_zeros(2, sw, DT_FLOAT32), *b = tensor_zeros(1, sb, DT_FLOAT32);
    struct NamedTensor dst[2] = {{"linear1.weight", w}, {"linear1.bias", b}};
    EXPECT_EQ_INT(model_assign(&mf, dst, 2, path, err, sizeof err), 0);
    EXPECT(tensors_equal(w, s.t[0]) && tensors_equal(b, s.t[1]));

    struct Tensor *wrong_shape = tensor_zeros(2, sw2, DT_FLOAT32);
    struct Tensor *wrong_dtype = tensor_zeros(1, sb, DT_FLOAT64);
    struct NamedTensor bad_shape[1] = {{"linear1.weight", wrong_shape}};
    struct NamedTensor bad_dtype[1] = {{"linear1.bias", wrong_dtype}};
    struct NamedTensor bad_name[1] = {{"linear2.bias", b}};
    EXPECT_EQ_INT(model_assign(&mf, bad_shape, 1, "model.bin", err, sizeof err), -1);
    EXPECT_STR_CONTAINS(err, "model.bin: tensor 'linear1.weight' has shape 2x3, expected 3x2");
    EXPECT_EQ_INT(model_assign(&mf, bad_dtype, 1, "model.bin", err, sizeof err), -1);
    EXPECT_STR_CONTAINS(err, "model.bin: tensor 'linear1.bias' is float32, expected float64");
    EXPECT_EQ_INT(model_assign(&mf, bad_name, 1, "model.bin", err, sizeof err), -1);
    EXPECT_STR_CONTAINS(err, "model.bin: tensor 'linear2.bias' not found (the file has: linear1.weight, linear1.bias, s)");
    /* A failed assign copies nothing, even into the tensors listed before the bad one. */
    struct NamedTensor mixed[2] = {{"linear1.bias", wrong_dtype}, {"linear1.weight", wrong_shape}};
    tensor_fill(wrong_dtype, 5);
    EXPECT_EQ_INT(model_assign(&mf, mixed, 2, "m", err, sizeof err), -1);
    EXPECT_EQ_INT(tensor_f64(wrong_dtype)[0], 5);

    tensor_free(wrong_shape);
    tensor_free(wrong_dtype);
    tensor_free(w);
    tensor_free(b);
    model_file_free(&mf);
    small_free(&s);
}

/* ---- failed saves ---- */

TEST(model_save_to_missing_dir_fails_cleanly)
{
    char path[512], err[512] = "";
    struct Small s;
    small_init(&s, DT_FLOAT32);
    path_in(path, sizeof path, "no/such/dir/model.bin");
    EXPECT_EQ_INT(model_save(path, s.nt, 3, "x", err, sizeof err), -1);
    EXPECT_STR_CONTAINS(err, path);
    EXPECT_STR_CONTAINS(err, "No such file or directory");
    small_free(&s);
}

struct SaveArgs {
    const char *path;
    int ok;
};

/* In a child: a file-size limit makes the writes fail part way (EFBIG). */
static void save_with_size_limit(void *arg)
{
    struct SaveArgs *a = arg;
    struct rlimit rl = {100, 100};
    signal(SIGXFSZ, SIG_IGN);
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(3);
    uint64_t shape[1] = {4096};
    struct Tensor *t = tensor_zeros(1, shape, DT_FLOAT32);
    struct NamedTensor nt = {"big", t};
    char err[512];
    int rc = model_save(a->path, &nt, 1, "cfg", err, sizeof err);
    fprintf(stderr, "%s", err);
    tensor_free(t);
    _exit(rc == -1 ? 0 : 1);
}

TEST(model_failed_save_keeps_old_file)
{
    char dir[512], path[600], err[1024] = "";
    snprintf(dir, sizeof dir, "%s/keep", test_tmpdir());
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/model.bin", dir);
    const char *old = "the old model, which must survive";
    test_write_file(path, old);
    struct SaveArgs a = {path, 0};
    EXPECT_EQ_INT(test_run_child(save_with_size_limit, &a, err, sizeof err), 0);
    EXPECT_STR_CONTAINS(err, "model.bin: cannot write: File too large (any old file is unchanged)");
    size_t n = 0;
    unsigned char *b = slurp(path, &n);
    EXPECT(b && n == strlen(old) && memcmp(b, old, n) == 0);
    mem_free(b);
    EXPECT(!has_temp_file(dir));

    /* rename fails (the target is a non-empty directory): the temporary file goes too. */
    char sub[700];
    snprintf(path, sizeof path, "%s/adir", dir);
    mkdir(path, 0755);
    snprintf(sub, sizeof sub, "%s/inside", path);
    test_write_file(sub, "x");
    struct Small s;
    small_init(&s, DT_FLOAT64);
    EXPECT_EQ_INT(model_save(path, s.nt, 3, NULL, err, sizeof err), -1);
    EXPECT_STR_CONTAINS(err, "adir: cannot replace:");
    EXPECT(!has_temp_file(dir));
    /* And a normal save over the old file replaces it, keeping its permissions. */
    snprintf(path, sizeof path, "%s/model.bin", dir);
    chmod(path, 0640);
    EXPECT_EQ_INT(model_save(path, s.nt, 3, NULL, err, sizeof err), 0);
    struct stat st;
    EXPECT(stat(path, &st) == 0 && (st.st_mode & 0777) == 0640);
    EXPECT(model_is_container(path));
    EXPECT(!has_temp_file(dir));
    small_free(&s);
}

/* ---- one tensor left in a mapping of the file ---- */

/* "w" (float32, 5 values) has its data at byte 32, aligned for either dtype; "b" (3
 * values) at byte 73, aligned for neither. */
static const char *save_mappable(char *path, size_t cap, const char *config)
{
    struct Tensor *w = make(DT_FLOAT32, 1, (uint64_t[]){5}, 2), *b = make(DT_FLOAT32, 1, (uint64_t[]){3}, -1);
    struct NamedTensor nt[2] = {{"w", w}, {"b", b}};
    char err[256];
    EXPECT_MSG(model_save(path_in(path, cap, "mappable.bin"), nt, 2, config, err, sizeof err) == 0, "%s", err);
    tensor_free(w);
    tensor_free(b);
    return path;
}

TEST(model_load_mapped_maps_the_named_aligned_tensor)
{
    char path[512], err[512] = "";
    save_mappable(path, sizeof path, "[net]\n");
    struct ModelFile ref, mf;
    EXPECT_MSG(model_load(path, &ref, err, sizeof err) == 0, "%s", err);
    EXPECT(ref.map == NULL);
    int64_t live = mem_live_blocks();
    EXPECT_MSG(model_load_mapped(path, "w", DT_FLOAT32, &mf, err, sizeof err) == 0, "%s", err);
    const struct Tensor *w = model_file_find(&mf, "w"), *b = model_file_find(&mf, "b");
    EXPECT(mf.map != NULL && w && b);
    if (mf.map && w && b) {
        EXPECT(w->data == (char *)mf.map + 32); /* no copy */
        EXPECT(!(w->flags & OWN_DATA));
        EXPECT(b->flags & OWN_DATA); /* the others are read as model_load reads them */
        EXPECT(tensors_equal(w, model_file_find(&ref, "w")));
        EXPECT(tensors_equal(b, model_file_find(&ref, "b")));
        EXPECT_STR_CONTAINS(mf.config_text, "[net]");
    }
    model_file_free(&mf);
    EXPECT_EQ_INT(mem_live_blocks(), live);
    /* stored in another dtype, or misaligned: read, nothing mapped */
    EXPECT_MSG(model_load_mapped(path, "w", DT_FLOAT64, &mf, err, sizeof err) == 0, "%s", err);
    EXPECT(mf.map == NULL && tensors_equal(model_file_find(&mf, "w"), model_file_find(&ref, "w")));
    model_file_free(&mf);
    EXPECT_MSG(model_load_mapped(path, "b", DT_FLOAT32, &mf, err, sizeof err) == 0, "%s", err);
    EXPECT(mf.map == NULL && tensors_equal(model_file_find(&mf, "b"), model_file_find(&ref, "b")));
    model_file_free(&mf);
    model_file_free(&ref);
}

/* The checks are model_load's: the checksum covers the mapped bytes, and a cut file is
 * refused wherever it is cut, except where the trailer starts (a file without one). */
TEST(model_load_mapped_checks_as_model_load)
{
    char path[512], err[512] = "";
    size_t n = 0;
    save_mappable(path, sizeof path, "[net]\n");
    unsigned char *bytes = slurp(path, &n);
    if (!bytes) return;
    bytes[33] ^= 0x10; /* inside the mapped tensor's data */
    spit(path, bytes, n);
    struct ModelFile mf;
    EXPECT_EQ_INT(model_load_mapped(path, "w", DT_FLOAT32, &mf, err, sizeof err), -1);
    EXPECT_STR_CONTAINS(err, "checksum mismatch");
    bytes[33] ^= 0x10;
    int64_t live = mem_live_blocks();
    size_t tensors_end = n - (7 + 4 + strlen("[net]\n") + 4);
    for (size_t len = 0; len < n; len++) {
        spit(path, bytes, len);
        int rc = model_load_mapped(path, "w", DT_FLOAT32, &mf, err, sizeof err);
        EXPECT_MSG(rc == (len == tensors_end ? 0 : -1), "a file cut to %zu of %zu bytes: %d (%s)", len, n, rc, err);
        if (!rc) EXPECT(mf.map != NULL);
        if (!rc) model_file_free(&mf);
    }
    EXPECT_EQ_INT(mem_live_blocks(), live);
    mem_free(bytes);
}
