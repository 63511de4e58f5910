/* model_io: the DLASM1 container (see include/model_io.h and SPEC section 9).
 *
 * Loading streams the file once: every length is checked against the bytes that remain
 * before anything is allocated, and tensor data is read straight into the tensor's
 * aligned buffer (no per-element work, so a 188 MB dataset loads at disk/page-cache
 * speed), or, for the one tensor model_load_mapped asks for, skipped and left in a
 * mapping of the file. The checksum covers the whole file, so it is computed in a second
 * pass, only when a trailer is present (models, which are small). */
#include "model_io.h"
#include "mem.h"
#include "utils.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Tensor data is written and read as raw memory: the format is little-endian. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "model_io assumes a little-endian host");

static const char MODEL_MAGIC[7] = {'D', 'L', 'A', 'S', 'M', '1', 0};
static const char CFG_MAGIC[7] = {'D', 'L', 'C', 'F', 'G', '1', 0};
/* The smallest tensor record: name_len, a 1-byte name, dtype, ndim 0, 4 data bytes. */
#define MIN_TENSOR_BYTES 17u
#define PREFAULT_MIN_BYTES (1u << 20)

/* ---- crc32 (IEEE 802.3, reflected, as zlib's), table built at compile time ---- */

#define CRC_POLY 0xEDB88320u
#define CRC_B(c) (((c) >> 1) ^ (CRC_POLY & (0u - ((c) & 1u))))
#define CRC_E(n) CRC_B(CRC_B(CRC_B(CRC_B(CRC_B(CRC_B(CRC_B(CRC_B((uint32_t)(n)))))))))
#define CRC_4(n) CRC_E(n), CRC_E(n + 1), CRC_E(n + 2), CRC_E(n + 3)
#define CRC_16(n) CRC_4(n), CRC_4(n + 4), CRC_4(n + 8), CRC_4(n + 12)
#define CRC_64(n) CRC_16(n), CRC_16(n + 16), CRC_16(n + 32), CRC_16(n + 48)
static const uint32_t crc_table[256] = {CRC_64(0), CRC_64(64), CRC_64(128), CRC_64(192)};

uint32_t crc32_ieee(uint32_t crc, const void *data, size_t n)
{
    const unsigned char *p = data;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) crc = crc_table[(crc ^ p[i]) & 0xFFu] ^ (crc >> 8);
    return ~crc;
}

/* ---- little helpers ---- */


static uint32_t get_u32(const unsigned char *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint64_t get_u64(const unsigned char *b) { return get_u32(b) | (uint64_t)get_u32(b + 4) << 32; }

static void put_u32(unsigned char *b, uint32_t v)
{
    for (int i = 0; i < 4; i++) b[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *b, uint64_t v)
{
    put_u32(b, (uint32_t)v);
    put_u32(b + 4, (uint32_t)(v >> 32));
}

/* Is the name acceptable (non-empty, short enough, no NUL)? NULL if so, else why not. */
static const char *name_problem(const char *name, size_t len)
{
    if (len == 0) return "empty name";
    if (len > MODEL_MAX_NAME) return "name longer than 255 bytes";
    if (memchr(name, 0, len)) return "name contains a NUL byte";
    return NULL;
}

/* ---- loading ---- */

struct Reader {
    FILE *f;
    const char *path;
    uint64_t pos, size;
    char *err;
    size_t errlen;
    /* model_load_mapped: the file's mapping, the tensor whose data may stay in it, and
     * whether one does */
    const char *map_name;
    uint32_t map_dtype;
    char *map;
    int mapped;
};

static uint64_t rd_left(const struct Reader *r) { return r->size - r->pos; }

static int rd_truncated(struct Reader *r, uint64_t need, const char *what, const char *name)
{
    return err_set(r->err, r->errlen, "%s: truncated at byte %llu (%s%s%s%s at byte %llu needs %llu bytes)",
                r->path, (unsigned long long)r->size, name ? "tensor '" : "", name ? name : "",
                name ? "' " : "", what, (unsigned long long)r->pos, (unsigned long long)need);
}

/* Reads exactly n bytes (already known to fit in the file, or checked here). */
static int rd_bytes(struct Reader *r, void *dst, uint64_t n, const char *what, const char *name)
{
    if (n > rd_left(r)) return rd_truncated(r, n, what, name);
    if (n && fread(dst, 1, n, r->f) != n)
        return err_set(r->err, r->errlen, "%s: read error at byte %llu: %s", r->path,
                    (unsigned long long)r->pos, ferror(r->f) ? strerror(errno) : "file shrank while reading");
    r->pos += n;
    return 0;
}

/* Moves past n bytes (known to fit in the file) without reading them. */
static int rd_skip(struct Reader *r, uint64_t n)
{
    if (n > (uint64_t)INT64_MAX || fseeko(r->f, (off_t)n, SEEK_CUR) != 0)
        return err_set(r->err, r->errlen, "%s: cannot seek: %s", r->path, strerror(errno));
    r->pos += n;
    return 0;
}

static int rd_u32(struct Reader *r, uint32_t *v, const char *what, const char *name)
{
    unsigned char b[4];
    if (rd_bytes(r, b, 4, what, name)) return -1;
    *v = get_u32(b);
    return 0;
}

/* Element count of a shape, or -1 on overflow (of the count or of its byte size). */
static int shape_bytes(uint64_t ndim, const uint64_t *shape, size_t es, uint64_t *bytes)
{
    uint64_t n = 1;
    for (uint64_t i = 0; i < ndim; i++) {
        if (shape[i] && n > UINT64_MAX / shape[i]) return -1;
        n *= shape[i];
    }
    if (n > UINT64_MAX / es) return -1;
    *bytes = n * es;
    return 0;
}

/* dtype, ndim and shape of one tensor record, validated. */
static int read_tensor_header(struct Reader *r, const char *name, uint32_t *dtype, uint32_t *ndim,
                              uint64_t *shape, uint64_t *bytes)
{
    if (rd_u32(r, dtype, "dtype", name) || rd_u32(r, ndim, "ndim", name)) return -1;
    if (*dtype >= DT_COUNT)
        return err_set(r->err, r->errlen, "%s: tensor '%s': unknown dtype %u (expected 0 = float32 or 1 = float64)",
                    r->path, name, *dtype);
    if (*ndim > TENSOR_MAX_DIM)
        return err_set(r->err, r->errlen, "%s: tensor '%s': %u dimensions (at most %d)", r->path, name, *ndim,
                    TENSOR_MAX_DIM);
    unsigned char b[8 * TENSOR_MAX_DIM];
    if (rd_bytes(r, b, 8ull * *ndim, "shape", name)) return -1;
    for (uint32_t i = 0; i < *ndim; i++) shape[i] = get_u64(b + 8 * i);
    if (shape_bytes(*ndim, shape, dtype_size(*dtype), bytes)) {
        char s[256];
        struct Tensor hdr = {.ndim = *ndim, .shape = shape}; /* the tensor does not exist yet */
        return err_set(r->err, r->errlen, "%s: tensor '%s': shape %s is too large", r->path, name,
                       tensor_shape_str(&hdr, s, sizeof s));
    }
    if (*bytes > rd_left(r)) return rd_truncated(r, *bytes, "data", name);
    if (*bytes > mem_limit())
        return err_set(r->err, r->errlen, "%s: tensor '%s': %llu MB of data would not fit in memory (%zu MB)", r->path,
                       name, (unsigned long long)(*bytes >> 20), mem_limit() >> 20);
    return 0;
}

/* A fresh buffer that a read is about to fill takes one page fault per 4 KB page; for a
 * large one (a dataset) asking the kernel to map all its pages in one call is ~10% of the
 * load faster (188 MB: 0.087 -> 0.078 s, medians). Only a hint: older kernels refuse it. */
static void prefault(void *data, uint64_t bytes)
{
#ifdef MADV_POPULATE_WRITE
    const uintptr_t page = 4096;
    uintptr_t lo = ((uintptr_t)data + page - 1) & ~(page - 1), hi = ((uintptr_t)data + bytes) & ~(page - 1);
    if (bytes >= PREFAULT_MIN_BYTES && hi > lo) (void)madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE);
#else
    (void)data, (void)bytes;
#endif
}

static int read_tensor(struct Reader *r, uint32_t index, struct NamedTensor *nt)
{
    uint32_t len, dtype, ndim;
    char name[MODEL_MAX_NAME + 1];
    char label[32];
    snprintf(label, sizeof label, "tensor #%u name length", index);
    if (rd_u32(r, &len, label, NULL)) return -1;
    snprintf(label, sizeof label, "tensor #%u name", index);
    if (len == 0 || len > MODEL_MAX_NAME)
        return err_set(r->err, r->errlen, "%s: tensor #%u: name length %u (must be 1 to %d)", r->path, index, len,
                    MODEL_MAX_NAME);
    if (rd_bytes(r, name, len, label, NULL)) return -1;
    if (memchr(name, 0, len))
        return err_set(r->err, r->errlen, "%s: tensor #%u: name contains a NUL byte", r->path, index);
    name[len] = 0;

    uint64_t shape[TENSOR_MAX_DIM], bytes = 0;
    if (read_tensor_header(r, name, &dtype, &ndim, shape, &bytes)) return -1;
    char *owned = mem_alloc(len + 1);
    memcpy(owned, name, len + 1);
    nt->name = owned;
    if (r->map && !strcmp(name, r->map_name) && dtype == r->map_dtype && r->pos % dtype_size(dtype) == 0) {
        nt->t = tensor_wrap(ndim, shape, dtype, r->map + r->pos);
        r->mapped = 1;
        return rd_skip(r, bytes);
    }
    nt->t = tensor_create(ndim, shape, dtype);
    prefault(nt->t->data, bytes);
    return rd_bytes(r, nt->t->data, bytes, "data", name);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp((*(const struct NamedTensor *const *)a)->name, (*(const struct NamedTensor *const *)b)->name);
}

/* Sorting keeps this O(n log n) for files with very many tensors. */
static int check_duplicates(struct Reader *r, const struct ModelFile *mf)
{
    if (mf->n < 2) return 0;
    const struct NamedTensor **v = mem_alloc(mf->n * sizeof *v);
    for (uint32_t i = 0; i < mf->n; i++) v[i] = &mf->tensors[i];
    qsort(v, mf->n, sizeof *v, cmp_names);
    int rc = 0;
    for (uint32_t i = 1; i < mf->n && !rc; i++)
        if (strcmp(v[i - 1]->name, v[i]->name) == 0)
            rc = err_set(r->err, r->errlen, "%s: tensor '%s' appears more than once", r->path, v[i]->name);
    mem_free(v);
    return rc;
}

/* crc32 of the first n bytes of the file, read again in chunks. */
static int file_crc(struct Reader *r, uint64_t n, uint32_t *crc)
{
    unsigned char buf[1 << 14];
    *crc = 0;
    if (fseek(r->f, 0, SEEK_SET) != 0)
        return err_set(r->err, r->errlen, "%s: cannot seek: %s", r->path, strerror(errno));
    while (n) {
        size_t k = n < sizeof buf ? (size_t)n : sizeof buf;
        if (fread(buf, 1, k, r->f) != k)
            return err_set(r->err, r->errlen, "%s: read error while checking the checksum", r->path);
        *crc = crc32_ieee(*crc, buf, k);
        n -= k;
    }
    return 0;
}

static int read_trailer(struct Reader *r, struct ModelFile *mf)
{
    char magic[7];
    uint32_t len, stored, crc;
    if (rd_left(r) == 0) return 0;
    if (rd_left(r) < sizeof magic || fread(magic, 1, sizeof magic, r->f) != sizeof magic ||
        memcmp(magic, CFG_MAGIC, sizeof magic) != 0)
        return err_set(r->err, r->errlen, "%s: %llu bytes of trailing garbage at byte %llu (expected end of file or a DLCFG1 trailer)",
                    r->path, (unsigned long long)rd_left(r), (unsigned long long)r->pos);
    r->pos += sizeof magic;
    if (rd_u32(r, &len, "config length", NULL)) return -1;
    if (len > rd_left(r)) return rd_truncated(r, len, "config text", NULL);
    mf->config_text = mem_alloc((size_t)len + 1);
    mf->config_len = len;
    if (rd_bytes(r, mf->config_text, len, "config text", NULL)) return -1;
    mf->config_text[len] = 0;
    uint64_t crc_pos = r->pos;
    if (rd_u32(r, &stored, "checksum", NULL)) return -1;
    if (rd_left(r))
        return err_set(r->err, r->errlen, "%s: %llu bytes of trailing garbage at byte %llu (after the DLCFG1 trailer)",
                    r->path, (unsigned long long)rd_left(r), (unsigned long long)r->pos);
    if (file_crc(r, crc_pos, &crc)) return -1;
    if (crc != stored)
        return err_set(r->err, r->errlen, "%s: checksum mismatch (stored 0x%08x, computed 0x%08x): the file is corrupt",
                    r->path, stored, crc);
    return 0;
}

static int read_body(struct Reader *r, struct ModelFile *mf)
{
    char magic[7];
    uint32_t n;
    if (r->size < sizeof magic || fread(magic, 1, sizeof magic, r->f) != sizeof magic ||
        memcmp(magic, MODEL_MAGIC, sizeof magic) != 0)
        return err_set(r->err, r->errlen, "%s: not a DLASM1 model file (bad magic)", r->path);
    r->pos = sizeof magic;
    if (rd_u32(r, &n, "tensor count", NULL)) return -1;
    if (n > rd_left(r) / MIN_TENSOR_BYTES)
        return err_set(r->err, r->errlen, "%s: header says %u tensors but only %llu bytes follow (corrupt or truncated)",
                    r->path, n, (unsigned long long)rd_left(r));
    mf->tensors = mem_alloc_zeroed((size_t)n * sizeof *mf->tensors);
    mf->n = n;
    for (uint32_t i = 0; i < n; i++)
        if (read_tensor(r, i, &mf->tensors[i])) return -1;
    if (check_duplicates(r, mf)) return -1;
    return read_trailer(r, mf);
}

static const char *file_kind(mode_t m)
{
    return S_ISDIR(m) ? "a directory" : S_ISFIFO(m) ? "a FIFO" : S_ISSOCK(m) ? "a socket"
         : S_ISCHR(m) ? "a character device" : S_ISBLK(m) ? "a block device" : "not a regular file";
}

/* Opens a regular file for reading. The type is checked before the open (opening a
 * FIFO would wait for a writer) and again on the descriptor, opened non-blocking in
 * case a FIFO took the file's place in between. */
static FILE *open_regular(const char *path, struct stat *st, char *err, size_t errlen)
{
    if (stat(path, st) == 0 && !S_ISREG(st->st_mode)) {
        err_set(err, errlen, "%s: not a regular file (%s)", path, file_kind(st->st_mode));
        return NULL;
    }
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) {
        err_set(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    FILE *f = NULL;
    if (fstat(fd, st) != 0) err_set(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
    else if (!S_ISREG(st->st_mode)) err_set(err, errlen, "%s: not a regular file (%s)", path, file_kind(st->st_mode));
    else if (fcntl(fd, F_SETFL, 0) != 0 || !(f = fdopen(fd, "rb")))
        err_set(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    if (!f) close(fd);
    return f;
}

/* The mapping is made before the file is parsed, through the same descriptor, so the
 * tensor that points into it is the one the checks saw. A file that cannot be mapped
 * is read. */
int model_load_mapped(const char *path, const char *name, uint32_t dtype, struct ModelFile *mf, char *err,
                      size_t errlen)
{
    memset(mf, 0, sizeof *mf);
    struct stat st;
    FILE *f = open_regular(path, &st, err, errlen);
    if (!f) return -1;
    struct Reader r = {f, path, 0, (uint64_t)st.st_size, err, errlen, name, dtype, NULL, 0};
    if (name && r.size > 0) {
        void *m = mmap(NULL, (size_t)r.size, PROT_READ, MAP_SHARED, fileno(f), 0);
        if (m != MAP_FAILED) r.map = m;
    }
    int rc = read_body(&r, mf);
    if (r.mapped) {
        mf->map = r.map, mf->map_len = (size_t)r.size;
        mf->map_fd = dup(fileno(f));
        if (mf->map_fd < 0) rc = err_set(err, errlen, "%s: %s", path, strerror(errno));
    } else if (r.map) {
        munmap(r.map, (size_t)r.size);
    }
    fclose(f);
    if (rc) model_file_free(mf);
    return rc;
}

int model_load(const char *path, struct ModelFile *mf, char *err, size_t errlen)
{
    return model_load_mapped(path, NULL, 0, mf, err, errlen);
}

void model_file_free(struct ModelFile *mf)
{
    if (!mf) return;
    for (uint32_t i = 0; mf->tensors && i < mf->n; i++) {
        mem_free((char *)mf->tensors[i].name);
        tensor_free(mf->tensors[i].t);
    }
    mem_free(mf->tensors);
    mem_free(mf->config_text);
    if (mf->map) {
        munmap(mf->map, mf->map_len);
        if (mf->map_fd >= 0) close(mf->map_fd);
    }
    memset(mf, 0, sizeof *mf);
}

uint64_t model_file_bytes(const struct ModelFile *mf)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < mf->n; i++)
        if (mf->tensors[i].t) n += tensor_numel(mf->tensors[i].t) * dtype_size(mf->tensors[i].t->dtype);
    return n;
}

const struct Tensor *model_file_find(const struct ModelFile *mf, const char *name)
{
    for (uint32_t i = 0; i < mf->n; i++)
        if (strcmp(mf->tensors[i].name, name) == 0) return mf->tensors[i].t;
    return NULL;
}

/* "a, b, c" (as many names as fit) for a "missing tensor" message. */
static void list_names(const struct ModelFile *mf, char *buf, size_t cap)
{
    size_t at = 0;
    buf[0] = 0;
    for (uint32_t i = 0; i < mf->n && at + 1 < cap; i++) {
        int w = snprintf(buf + at, cap - at, "%s%s", i ? ", " : "", mf->tensors[i].name);
        if (w < 0) break;
        at += (size_t)w;
    }
    if (mf->n == 0) snprintf(buf, cap, "none");
}

/* A checksum proves the bytes are the ones written, not that they are numbers: a NaN
 * weight would make every prediction class 0. */
static int check_finite(const struct Tensor *t, const char *name, const char *path, char *err, size_t errlen)
{
    uint64_t n = tensor_numel(t), i = 0;
    if (t->dtype == DT_FLOAT32)
        while (i < n && isfinite(tensor_f32(t)[i])) i++;
    else
        while (i < n && isfinite(tensor_f64(t)[i])) i++;
    if (i == n) return 0;
    return err_set(err, errlen, "%s: tensor '%s': value %llu of %llu is %g: the weights must be finite numbers",
                   path, name, (unsigned long long)i + 1, (unsigned long long)n, tensor_at(t, i));
}

int model_assign(const struct ModelFile *mf, const struct NamedTensor *dst, uint32_t n,
                 const char *path, char *err, size_t errlen)
{
    char a[160], b[160];
    for (uint32_t i = 0; i < n; i++) {
        const struct Tensor *src = model_file_find(mf, dst[i].name), *d = dst[i].t;
        if (!src) {
            list_names(mf, a, sizeof a);
            return err_set(err, errlen, "%s: tensor '%s' not found (the file has: %s)", path, dst[i].name, a);
        }
        if (src->dtype != d->dtype)
            return err_set(err, errlen, "%s: tensor '%s' is %s, expected %s", path, dst[i].name,
                        dtype_name(src->dtype), dtype_name(d->dtype));
        if (!tensor_same_shape(src, d))
            return err_set(err, errlen, "%s: tensor '%s' has shape %s, expected %s", path, dst[i].name,
                        tensor_shape_str(src, a, sizeof a), tensor_shape_str(d, b, sizeof b));
        if (check_finite(src, dst[i].name, path, err, errlen)) return -1;
    }
    for (uint32_t i = 0; i < n; i++) tensor_copy_into(dst[i].t, model_file_find(mf, dst[i].name));
    return 0;
}

int model_is_container(const char *path)
{
    char magic[sizeof MODEL_MAGIC];
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    int ok = fread(magic, 1, sizeof magic, f) == sizeof magic && memcmp(magic, MODEL_MAGIC, sizeof magic) == 0;
    fclose(f);
    return ok;
}

/* ---- saving ---- */

/* Buffered writes that remember the first error (errno) and keep the running crc
 * (only when a trailer will need it: a big dataset is saved without one). */
struct Writer {
    FILE *f;
    int err;
    int do_crc;
    uint32_t crc;
};

static void wr(struct Writer *w, const void *p, size_t n)
{
    if (w->err || n == 0) return;
    errno = 0;
    if (fwrite(p, 1, n, w->f) != n) {
        w->err = errno ? errno : EIO;
        return;
    }
    if (w->do_crc) w->crc = crc32_ieee(w->crc, p, n);
}

static void wr_u32(struct Writer *w, uint32_t v)
{
    unsigned char b[4];
    put_u32(b, v);
    wr(w, b, 4);
}

static void write_tensor(struct Writer *w, const struct NamedTensor *nt)
{
    const struct Tensor *t = nt->t;
    size_t len = strlen(nt->name);
    unsigned char shape[8 * TENSOR_MAX_DIM];
    wr_u32(w, (uint32_t)len);
    wr(w, nt->name, len);
    wr_u32(w, t->dtype);
    wr_u32(w, (uint32_t)t->ndim);
    for (uint64_t i = 0; i < t->ndim; i++) put_u64(shape + 8 * i, t->shape[i]);
    wr(w, shape, 8 * t->ndim);
    /* A strided view is written in row-major order through a contiguous copy. */
    struct Tensor *c = tensor_is_contiguous(t) ? NULL : tensor_copy(t);
    wr(w, c ? c->data : t->data, tensor_numel(t) * dtype_size(t->dtype));
    tensor_free(c);
}

static void write_body(struct Writer *w, const struct NamedTensor *ts, uint32_t n, const char *config)
{
    wr(w, MODEL_MAGIC, sizeof MODEL_MAGIC);
    wr_u32(w, n);
    for (uint32_t i = 0; i < n; i++) write_tensor(w, &ts[i]);
    if (!config) return;
    size_t len = strlen(config);
    wr(w, CFG_MAGIC, sizeof CFG_MAGIC);
    wr_u32(w, (uint32_t)len);
    wr(w, config, len);
    wr_u32(w, w->crc);
}

/* Checks what would make an unloadable file, before touching the disk. */
static int check_save_args(const char *path, const struct NamedTensor *ts, uint32_t n, const char *config,
                           char *err, size_t errlen)
{
    for (uint32_t i = 0; i < n; i++) {
        const char *why = name_problem(ts[i].name, strlen(ts[i].name));
        if (why) return err_set(err, errlen, "%s: tensor #%u: %s", path, i, why);
        if (ts[i].t->dtype >= DT_COUNT || ts[i].t->ndim > TENSOR_MAX_DIM)
            return err_set(err, errlen, "%s: tensor '%s': bad dtype or ndim", path, ts[i].name);
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(ts[i].name, ts[j].name) == 0)
                return err_set(err, errlen, "%s: tensor '%s' appears more than once", path, ts[i].name);
    }
    if (config && strlen(config) > UINT32_MAX)
        return err_set(err, errlen, "%s: config text too long", path);
    return 0;
}

/* The new file gets the old file's permissions, or the usual 0666 minus umask. */
static void set_mode(int fd, const char *path)
{
    struct stat st;
    mode_t mode;
    if (stat(path, &st) == 0) {
        mode = st.st_mode & 07777;
    } else {
        mode_t mask = umask(0);
        umask(mask);
        mode = 0666 & ~mask;
    }
    (void)fchmod(fd, mode); /* best effort: mkstemp's 0600 is still a safe fallback */
}

/* What a save writes: a model (tensors and config) or plain bytes. */
struct SaveBody {
    const struct NamedTensor *ts;
    uint32_t n;
    const char *config;
    const void *bytes;
    size_t n_bytes;
};

/* Writes, flushes, fsyncs and closes the temporary file; returns 0 or an errno. */
static int write_temp(int fd, const struct SaveBody *body)
{
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        int e = errno;
        close(fd);
        return e;
    }
    struct Writer w = {f, 0, body->config != NULL, 0};
    if (body->bytes) wr(&w, body->bytes, body->n_bytes);
    else write_body(&w, body->ts, body->n, body->config);
    if (!w.err && fflush(f) != 0) w.err = errno;
    if (!w.err && fsync(fileno(f)) != 0) w.err = errno;
    if (fclose(f) != 0 && !w.err) w.err = errno;
    return w.err;
}

/* Makes the rename durable; failure here cannot undo the save, so it is ignored. */
static void sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t len = !slash ? 1 : slash == path ? 1 : (size_t)(slash - path);
    char *dir = mem_alloc(len + 1);
    memcpy(dir, slash ? path : ".", len);
    dir[len] = 0;
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    mem_free(dir);
}

int model_check_output(const char *path, const char *const *inputs, uint32_t n_inputs, char *err, size_t errlen)
{
    struct stat out, in;
    if (stat(path, &out) != 0) return 0; /* a new file; whether it can be created is for the caller */
    /* a directory is safe: rename() cannot replace it by a file, and says why */
    if (!S_ISREG(out.st_mode) && !S_ISDIR(out.st_mode))
        return err_set(err, errlen, "%s: not a regular file (%s): saving would replace it; give the path of a file",
                       path, file_kind(out.st_mode));
    for (uint32_t i = 0; i < n_inputs; i++)
        if (inputs[i] && stat(inputs[i], &in) == 0 && in.st_dev == out.st_dev && in.st_ino == out.st_ino)
            return err_set(err, errlen, "%s: the same file as the input %s: saving would overwrite it", path, inputs[i]);
    return 0;
}

/* The temporary file beside path, written, fsynced and renamed over path. */
static int save_atomic(const char *path, const struct SaveBody *body, char *err, size_t errlen)
{
    /* rename() replaces whatever the path names: a device or FIFO must stay what it is */
    if (model_check_output(path, NULL, 0, err, errlen)) return -1;
    size_t plen = strlen(path);
    char *tmp = mem_alloc(plen + sizeof ".tmp.XXXXXX");
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", sizeof ".tmp.XXXXXX");
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        mem_free(tmp);
        return err_set(err, errlen, "%s: cannot create a temporary file beside it: %s", path, strerror(e));
    }
    set_mode(fd, path);
    int e = write_temp(fd, body);
    const char *what = "cannot write";
    if (!e && rename(tmp, path) != 0) e = errno, what = "cannot replace";
    if (e) {
        unlink(tmp);
        mem_free(tmp);
        return err_set(err, errlen, "%s: %s: %s (any old file is unchanged)", path, what, strerror(e));
    }
    mem_free(tmp);
    sync_dir(path);
    return 0;
}

int model_save(const char *path, const struct NamedTensor *ts, uint32_t n,
               const char *config_text, char *err, size_t errlen)
{
    if (check_save_args(path, ts, n, config_text, err, errlen)) return -1;
    struct SaveBody body = {ts, n, config_text, NULL, 0};
    return save_atomic(path, &body, err, errlen);
}

int model_save_bytes(const char *path, const void *data, size_t n, char *err, size_t errlen)
{
    static const char empty[1];
    struct SaveBody body = {NULL, 0, NULL, n ? data : empty, n};
    return save_atomic(path, &body, err, errlen);
}
