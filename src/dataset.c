/* dataset: the CSV reader, the binary dataset format, normalisation, shuffling and
 * batching.
 *
 * The CSV reader holds the whole file in memory (one read), counts its newlines to size
 * the output once, and parses every value with its own scanner: digits go into a uint64
 * mantissa and a decimal exponent, and when both are small enough (Clinger's fast path)
 * one exact multiplication or division gives the correctly rounded result; anything
 * else goes to strtod/strtof. Only the error paths look back at the text. */
#include "dataset.h"
#include "threads.h"
#include "config_parser.h"
#include "generic.h"
#include "mem.h"
#include "model_io.h"
#include "utils.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>


/* ---- reading the file ---- */

/* A file's bytes followed by a NUL, so the scanner may look one byte past any value. */
struct Text {
    char *buf;
    size_t len;
    size_t map_len; /* > 0: buf is mapped */
    int fd;         /* of the mapped file (to notice it shrank), else -1 */
};

static int too_big(const char *path, size_t limit, char *err, size_t errlen)
{
    return err_set(err, errlen, "%s: more than %zu MB of input: it would not fit in memory "
                   "(the text and the matrix read from it must both fit)", path, limit >> 20);
}

static int shrank_error(const char *path, char *err, size_t errlen)
{
    return err_set(err, errlen, "%s: the file shrank while it was being read (another program changed it)", path);
}

/* Through a read loop: pipes, devices, and files whose size is a multiple of the page
 * size (their mapping has no zero byte after the end). A pipe can bring any amount:
 * the text may take half the memory, leaving the other half for the matrix. */
static int text_read(struct Text *t, int fd, const char *path, char *err, size_t errlen)
{
    size_t limit = mem_limit() / 2, expect = t->len;
    if (limit < 2) limit = 2;
    size_t cap = t->len ? t->len + 2 : 1 << 16, n = 0;
    if (cap > limit) return too_big(path, limit, err, errlen);
    char *buf = mem_alloc(cap);
    for (;;) {
        ssize_t got = read(fd, buf + n, cap - 1 - n);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            mem_free(buf);
            return err_set(err, errlen, "%s: read error: %s", path, strerror(errno));
        }
        if (got == 0) break;
        /* Text has no NUL bytes: stop at one (/dev/zero would fill the memory). */
        const char *z = memchr(buf + n, 0, (size_t)got);
        if (z) {
            unsigned long long line = 1;
            const char *bol = buf;
            for (const char *q = buf; q < z; q++)
                if (*q == '\n') line++, bol = q + 1;
            int r = err_set(err, errlen, "%s:%llu:%llu: a NUL byte: not a text file", path, line,
                            (unsigned long long)(z - bol + 1));
            mem_free(buf);
            return r;
        }
        n += (size_t)got;
        if (n == cap - 1) {
            if (cap >= limit) {
                mem_free(buf);
                return too_big(path, limit, err, errlen);
            }
            cap = cap > limit / 2 ? limit : cap * 2;
            buf = mem_realloc(buf, cap);
        }
    }
    if (n < expect) { /* a regular file cut short under us: its end is missing */
        mem_free(buf);
        return shrank_error(path, err, errlen);
    }
    buf[n] = 0;
    t->buf = buf;
    t->len = n;
    return 0;
}

/* Maps a regular file (no copy, no zeroed pages: several times faster than reading it
 * for a file in the page cache), reads anything else. */
static int text_open(struct Text *t, const char *path, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    t->fd = -1;
    int fd = strcmp(path, "-") ? open(path, O_RDONLY) : dup(STDIN_FILENO); /* "-": standard input */
    if (fd < 0) return err_set(err, errlen, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
        close(fd);
        return err_set(err, errlen, "%s: %s", path, S_ISDIR(st.st_mode) ? "is a directory" : strerror(errno));
    }
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (S_ISREG(st.st_mode)) t->len = (size_t)st.st_size;
    if (S_ISREG(st.st_mode) && t->len % page != 0 && strcmp(path, "-")) {
        void *m = mmap(NULL, t->len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
        if (m != MAP_FAILED) {
            t->fd = fd;
            t->buf = m;
            t->map_len = t->len;
            return 0; /* the rest of the last page reads as zeros */
        }
    }
    int r = text_read(t, fd, path, err, errlen);
    close(fd);
    return r;
}

/* Did the mapped file get shorter than its mapping? Pages past its new end fault
 * (SIGBUS, caught while parsing) and the rest of its last page reads as zeros. */
static int text_shrank(const struct Text *t)
{
    struct stat st;
    return t->map_len && fstat(t->fd, &st) == 0 && (uint64_t)st.st_size < t->map_len;
}

static void text_close(struct Text *t)
{
    if (t->map_len) munmap(t->buf, t->map_len);
    else mem_free(t->buf);
    if (t->fd >= 0) close(t->fd);
    memset(t, 0, sizeof *t);
    t->fd = -1;
}

/* ---- numbers ---- */

struct Num {
    uint64_t mant;  /* the first 19 significant digits */
    int64_t exp10;  /* value = mant * 10^exp10 while digits <= 19 */
    int digits;     /* significant digits seen */
    int neg;
};

static inline int is_digit(char c) { return (unsigned)(c - '0') < 10; }
static inline int is_blank(char c) { return c == ' ' || c == '\t'; }
static inline const char *skip_blanks(const char *p)
{
    while (is_blank(*p)) p++;
    return p;
}

/* Scans [sign] digits [. digits] [e [sign] digits] at p; returns its end, or NULL when
 * no number starts at p. "5." and ".5" are numbers, "." is not. */
static inline const char *num_scan(const char *p, struct Num *n)
{
    uint64_t m = 0;
    int64_t e = 0;
    int nd = 0, any = 0;
    n->neg = *p == '-';
    if (*p == '-' || *p == '+') p++;
    for (; *p == '0'; p++) any = 1; /* leading zeros are not significant */
    for (; is_digit(*p); p++, nd++, any = 1) {
        if (nd < 19) m = m * 10 + (uint64_t)(*p - '0');
        else e++;
    }
    if (*p == '.') {
        p++;
        if (nd == 0)
            for (; *p == '0'; p++, e--) any = 1;
        for (; is_digit(*p); p++, nd++, any = 1)
            if (nd < 19) { m = m * 10 + (uint64_t)(*p - '0'); e--; }
    }
    if (!any) return NULL;
    if ((*p | 32) == 'e') {
        const char *q = p + 1;
        int eneg = *q == '-';
        if (*q == '-' || *q == '+') q++;
        if (is_digit(*q)) {
            int64_t x = 0;
            for (; is_digit(*q); q++)
                if (x < 1000000) x = x * 10 + (*q - '0');
            e += eneg ? -x : x;
            p = q;
        }
    }
    n->mant = m;
    n->exp10 = e;
    n->digits = nd;
    return p;
}

static const double pow10_exact[23] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* Clinger: a mantissa below 2^53 and 10^|e| <= 10^22 are both exact doubles, so one
 * IEEE multiply or divide rounds the true value correctly. Returns 0 when it does not
 * apply. */
static inline int num_fast(const struct Num *n, double *v)
{
    if (n->digits > 19 || n->mant > (1ULL << 53)) return 0;
    double d = (double)n->mant;
    if (n->mant && n->exp10) {
        if (n->exp10 < -22 || n->exp10 > 22) return 0;
        d = n->exp10 < 0 ? d / pow10_exact[-n->exp10] : d * pow10_exact[n->exp10];
    }
    *v = n->neg ? -d : d;
    return 1;
}

/* Each returns 0, or -1 when the value overflows the type. */
static int num_to_f64(const char *tok, const struct Num *n, double *out)
{
    double d;
    if (!num_fast(n, &d)) {
        d = strtod(tok, NULL);
        if (isinf(d)) return -1;
    }
    *out = d;
    return 0;
}

/* Rounding the correctly rounded double again to float equals rounding the decimal
 * directly unless the double lies exactly halfway between two floats: those, the float
 * subnormals and values near overflow go to strtof. A value overflows when it rounds to
 * infinity (3.4028235e38, FLT_MAX printed with 8 digits, is accepted). */
static int num_to_f32(const char *tok, const struct Num *n, float *out)
{
    double d;
    if (n->exp10 == 0 && n->digits <= 7) { /* integers below 10^7: exact in float */
        *out = n->neg ? -(float)n->mant : (float)n->mant;
        return 0;
    }
    if (num_fast(n, &d)) {
        uint64_t bits;
        memcpy(&bits, &d, sizeof bits);
        double a = fabs(d);
        if ((bits & 0x1fffffff) != 0x10000000 && ((a >= FLT_MIN && a <= FLT_MAX) || a == 0)) {
            *out = (float)d;
            return 0;
        }
    }
    float f = strtof(tok, NULL);
    if (isinf(f)) return -1;
    *out = f;
    return 0;
}

/* ---- the CSV parser ---- */

struct Csv {
    const char *path;
    const char *p, *end;      /* cursor; end points at the terminating NUL */
    const char *line_start;   /* for column numbers */
    uint64_t line;            /* 1-based */
    uint64_t cols;
    uint64_t n_classes;       /* > 0: every value must be a class index in [0, n_classes) */
    uint64_t stop_rows;       /* > 0: a chunk of a parallel parse, this many rows */
    char *err;
    size_t errlen;
};

static uint64_t col_of(const struct Csv *c, const char *at) { return (uint64_t)(at - c->line_start) + 1; }

static inline int is_line_end(const struct Csv *c, const char *p)
{
    return *p == '\n' || (*p == '\r' && p[1] == '\n') || p == c->end;
}

/* After a value: a comma, a line end, or trailing blanks before either. */
static inline int is_value_end(const struct Csv *c, const char *p)
{
    p = skip_blanks(p);
    return *p == ',' || is_line_end(c, p);
}

static const char *token_end(const struct Csv *c, const char *tok)
{
    const char *p = tok;
    while (*p != ',' && !is_line_end(c, p)) p++;
    while (p > tok && is_blank(p[-1])) p--;
    return p;
}

static int word_is(const char *s, int len, const char *w)
{
    if (len != (int)strlen(w)) return 0;
    for (int i = 0; i < len; i++)
        if ((s[i] | 32) != w[i]) return 0;
    return 1;
}

static int is_nonfinite_word(const char *s, int len)
{
    if (len && (*s == '+' || *s == '-')) { s++; len--; }
    return word_is(s, len, "nan") || word_is(s, len, "inf") || word_is(s, len, "infinity");
}

static int bad_value(const struct Csv *c, const char *tok)
{
    const char *e = token_end(c, tok);
    int len = (int)(e - tok);
    unsigned long long line = c->line, col = col_of(c, tok);
    if (len == 0) return err_set(c->err, c->errlen, "%s:%llu:%llu: empty field, expected a number", c->path, line, col);
    if (is_nonfinite_word(tok, len))
        return err_set(c->err, c->errlen, "%s:%llu:%llu: '%.*s': NaN and Inf are not allowed", c->path, line, col, len, tok);
    return err_set(c->err, c->errlen, "%s:%llu:%llu: '%.*s' is not a number", c->path, line, col, len > 40 ? 40 : len, tok);
}

static int out_of_range(const struct Csv *c, const char *tok, uint32_t dtype)
{
    const char *e = token_end(c, tok);
    return err_set(c->err, c->errlen, "%s:%llu:%llu: '%.*s' is out of range for %s", c->path,
                   (unsigned long long)c->line, (unsigned long long)col_of(c, tok),
                   (int)(e - tok) > 40 ? 40 : (int)(e - tok), tok, dtype_name(dtype));
}

/* Counts the values on the line at p (commas + 1). */
static uint64_t count_fields(const struct Csv *c, const char *p)
{
    uint64_t n = 1;
    for (; !is_line_end(c, p); p++) n += *p == ',';
    return n;
}

static int ragged(const struct Csv *c, uint64_t found)
{
    return err_set(c->err, c->errlen, "%s:%llu: expected %llu values, found %llu", c->path,
                   (unsigned long long)c->line, (unsigned long long)c->cols, (unsigned long long)found);
}

static int bad_label(const struct Csv *c, const char *tok, double v)
{
    const char *e = token_end(c, tok);
    const char *why = v < 0 ? "a class label cannot be negative"
                    : v != floor(v) ? "a class label must be a whole number"
                    : "class label out of range";
    return err_set(c->err, c->errlen, "%s:%llu:%llu: '%.*s': %s (expected 0 to %llu)", c->path,
                   (unsigned long long)c->line, (unsigned long long)col_of(c, tok),
                   (int)(e - tok) > 40 ? 40 : (int)(e - tok), tok, why,
                   (unsigned long long)c->n_classes - 1);
}

static int label_ok(double v, uint64_t n_classes) { return v >= 0 && v == floor(v) && v < (double)n_classes; }

/* Moves past the line end at c->p (the caller checked it is one). */
static void next_line(struct Csv *c)
{
    if (*c->p == '\r') c->p++;
    if (*c->p == '\n') c->p++;
    c->line++;
    c->line_start = c->p;
}

static int only_blank_from(const struct Csv *c, const char *p)
{
    for (; p < c->end; p++)
        if (!is_blank(*p) && *p != '\r' && *p != '\n') return 0;
    return 1;
}

/* At the start of a row: a blank line ends the data if nothing but blank lines
 * follows; inside the data it is an error (it would shift every later row against
 * its label). Returns 1 at the end, 0 for a row, -1 on error. */
static int at_data_end(struct Csv *c)
{
    const char *p = skip_blanks(c->p);
    if (!is_line_end(c, p)) return 0;
    if (only_blank_from(c, p)) return 1;
    return err_set(c->err, c->errlen, "%s:%llu:1: blank line inside the data (only trailing blank lines are allowed)",
                   c->path, (unsigned long long)c->line);
}

/* After the last value of a row: the line must end here. */
static int end_row(struct Csv *c)
{
    if (*c->p == ',') return ragged(c, c->cols + count_fields(c, c->p + 1));
    if (c->p != c->end) next_line(c);
    return 0;
}

/* The common case of image data: a small unsigned integer with a comma or newline
 * right after it. Returns the end, or NULL to take the general path. */
static inline const char *scan_small_uint(const char *p, uint32_t *out)
{
    if (!is_digit(*p)) return NULL;
    uint32_t m = (uint32_t)(*p++ - '0');
    while (is_digit(*p) && m < 100000) m = m * 10 + (uint32_t)(*p++ - '0');
    if (*p != ',' && *p != '\n') return NULL;
    *out = m;
    return p;
}

/* Any value at c->p, with blanks around it; returns the end after trailing blanks. */
#define PARSE_VALUE(T, sfx)                                                               \
    static const char *parse_value_##sfx(const struct Csv *c, T *out, uint32_t dtype)     \
    {                                                                                     \
        struct Num n;                                                                     \
        const char *tok = skip_blanks(c->p);                                              \
        const char *q = num_scan(tok, &n);                                                \
        if (!q || !is_value_end(c, q)) { bad_value(c, tok); return NULL; }                \
        if (num_to_##sfx(tok, &n, out)) { out_of_range(c, tok, dtype); return NULL; }     \
        return skip_blanks(q);                                                            \
    }
GEN_BOTH(PARSE_VALUE)

/* The rows from c->p to the end into out (room for max_rows x cols). */
#define PARSE_ROWS(T, sfx)                                                                    \
    static int parse_rows_##sfx(struct Csv *c, T *out, uint64_t max_rows, uint64_t *rows_out, \
                                uint32_t dtype)                                               \
    {                                                                                         \
        uint64_t cols = c->cols;                                                              \
        for (uint64_t r = 0;; r++) {                                                          \
            if (c->stop_rows && r == c->stop_rows) { *rows_out = r; return 0; }               \
            int end = at_data_end(c);                                                         \
            if (end) { *rows_out = r; return end < 0 ? -1 : 0; }                              \
            if (r == max_rows) /* more rows than counted: the text changed under us */       \
                return err_set(c->err, c->errlen, "%s: the file changed while it was being read "\
                               "(another program changed it)", c->path);                      \
            T *row = out + r * cols;                                                          \
            for (uint64_t j = 0;; j++) {                                                      \
                uint32_t m;                                                                   \
                const char *q = scan_small_uint(c->p, &m);                                    \
                if (q) row[j] = (T)m;                                                         \
                else if (!(q = parse_value_##sfx(c, &row[j], dtype))) return -1;              \
                if (c->n_classes && !label_ok(row[j], c->n_classes))                          \
                    return bad_label(c, skip_blanks(c->p), row[j]);                           \
                c->p = q;                                                                     \
                if (j + 1 == cols) break;                                                     \
                if (*q != ',') return ragged(c, j + 1);                                       \
                c->p++;                                                                       \
            }                                                                                 \
            if (end_row(c)) return -1;                                                        \
        }                                                                                     \
    }
GEN_BOTH(PARSE_ROWS)

/* A first line that is not all numbers is a header. NaN and Inf count as numbers
 * here, so a first row holding them is reported rather than skipped. */
static int is_header(const struct Csv *c)
{
    const char *p = c->p;
    for (;;) {
        const char *tok = skip_blanks(p);
        struct Num n;
        const char *q = num_scan(tok, &n);
        const char *e = token_end(c, tok);
        if (!(q && is_value_end(c, q)) && !is_nonfinite_word(tok, (int)(e - tok))) return 1;
        while (*p != ',' && !is_line_end(c, p)) p++;
        if (*p != ',') return 0;
        p++;
    }
}

static uint64_t count_newlines(const char *p, const char *end)
{
    uint64_t n = 0;
    while ((p = memchr(p, '\n', (size_t)(end - p)))) { n++; p++; }
    return n;
}

/* Skips a BOM and a header, sets c->cols from the first data row. */
static int csv_start(struct Csv *c, uint64_t want_cols)
{
    if (!strncmp(c->p, "\xef\xbb\xbf", 3)) c->p += 3; /* strncmp: stops at the NUL of a short file */
    c->line_start = c->p;
    if (only_blank_from(c, c->p)) return err_set(c->err, c->errlen, "%s: empty file, expected rows of comma-separated numbers", c->path);
    int r = at_data_end(c);
    if (r) return -1;
    uint64_t header_fields = 0;
    if (is_header(c)) {
        header_fields = count_fields(c, c->p);
        while (!is_line_end(c, c->p)) c->p++;
        next_line(c);
        if (only_blank_from(c, c->p))
            return err_set(c->err, c->errlen, "%s: no data rows, only a header on line 1", c->path);
        if (at_data_end(c)) return -1;
    }
    c->cols = count_fields(c, c->p);
    if (header_fields && header_fields != c->cols)
        return err_set(c->err, c->errlen, "%s:%llu: expected %llu values as in the header, found %llu", c->path,
                       (unsigned long long)c->line, (unsigned long long)header_fields, (unsigned long long)c->cols);
    if (want_cols && c->cols != want_cols)
        return err_set(c->err, c->errlen, "%s:%llu: expected %llu value per row (a class index), found %llu", c->path,
                       (unsigned long long)c->line, (unsigned long long)want_cols, (unsigned long long)c->cols);
    return 0;
}

/* Where the data ends: trailing blank lines (the only blank lines allowed) hold no
 * row, so a file followed by a million newlines is sized by its rows. */
static const char *data_end(const char *p, const char *end)
{
    while (end > p && (is_blank(end[-1]) || end[-1] == '\r' || end[-1] == '\n')) end--;
    return end;
}

/* How a read is guarded: not at all (the heap), or against SIGBUS when it reads a
 * file's mapping, by a guard that installs the handler, or one under a dataset's hold
 * of it (map_held). */
enum { READ_HEAP, READ_MAPPED, READ_MAPPED_HELD };

/* fn(arg), guarded as `how` says (utils.h): fn's result, or UTIL_SIGBUS when the file
 * shrank under the read. A par_run task calls it itself: the fault lands on the thread
 * that read. */
static int read_guarded(int how, int (*fn)(void *), void *arg)
{
    return how == READ_MAPPED_HELD ? util_catch_sigbus_held(fn, arg) : how == READ_MAPPED ? util_catch_sigbus(fn, arg)
                                                                                          : fn(arg);
}

static int read_guard_of(const struct Dataset *ds)
{
    return !ds->map ? READ_HEAP : ds->map_held ? READ_MAPPED_HELD : READ_MAPPED;
}

/* One parse, in a form util_catch_sigbus can run: the matrix is recorded as soon as it
 * exists, so the caller frees it whichever way the parse ends. */
struct CsvJob {
    const char *path;
    const struct Text *text;
    uint32_t dtype;
    uint64_t n_classes;
    struct Tensor *volatile t;
    char *err;
    size_t errlen;
};

/* ---- parsing in parallel: chunks of whole lines ----
 * Above CSV_PAR_BYTES the data rows are cut at line starts into chunks; their newlines
 * (one row each: a blank line inside the data is an error) give every chunk its first
 * line number and row, and the chunks are parsed as parallel tasks into their rows of
 * the matrix. Each keeps its own first error; the first chunk in the file that has one
 * wins, so the message is the one a single pass would give. */
#define CSV_PAR_BYTES ((size_t)1 << 20)
#define CSV_MAX_CHUNKS 256

struct CsvChunks {
    const struct Csv *c;          /* the parse after the header: cols, path, flags */
    void *out;                    /* the matrix */
    uint32_t dtype;
    size_t n;
    int mapped;                   /* reads may fault: every task guards its own */
    int counting;                 /* the pass: newlines, then rows */
    const char *at[CSV_MAX_CHUNKS + 1];   /* chunk starts; at[n] = end of the data */
    uint64_t lines[CSV_MAX_CHUNKS];      /* newlines in each chunk, then its first row */
    int bad[CSV_MAX_CHUNKS];
    char err[CSV_MAX_CHUNKS][512];
};

/* One task of either pass: counting the chunk's newlines, or parsing its rows. */
static int chunk_work(void *arg)
{
    struct CsvChunks *j = ((void **)arg)[0];
    size_t k = (size_t)(uintptr_t)((void **)arg)[1];
    if (j->counting) {
        j->lines[k] = count_newlines(j->at[k], j->at[k + 1]);
        return 0;
    }
    struct Csv c = *j->c;
    c.p = c.line_start = j->at[k];
    c.line = j->c->line + j->lines[k];
    c.err = j->err[k], c.errlen = sizeof j->err[k];
    uint64_t rows = k + 1 < j->n ? j->lines[k + 1] - j->lines[k] : 0, got = 0;
    c.stop_rows = rows;
    size_t off = (size_t)j->lines[k] * c.cols * dtype_size(j->dtype);
    return DT_CALL(j->dtype, parse_rows, &c, (void *)((char *)j->out + off), k + 1 < j->n ? rows : UINT64_MAX, &got,
                   j->dtype);
}

static void chunk_task(void *ctx, size_t k, int worker)
{
    (void)worker;
    struct CsvChunks *j = ctx;
    void *arg[2] = {j, (void *)(uintptr_t)k};
    /* A fault in a mapped file that shrank lands on the thread that read it, and must be
     * caught there: a jump out of the task would abandon the parallel job. */
    int r = read_guarded(j->mapped, chunk_work, arg);
    if (r == UTIL_SIGBUS) err_set(j->err[k], sizeof j->err[k], "%s: the file shrank while it was being read", j->c->path);
    j->bad[k] = r != 0;
}

/* The first chunk in the file with an error gives the message; -1 then. */
static int chunk_error(const struct CsvChunks *j, struct Csv *c)
{
    for (size_t i = 0; i < j->n; i++)
        if (j->bad[i]) return err_set(c->err, c->errlen, "%s", j->err[i]);
    return 0;
}

/* Cuts the rows from c->p to dend into chunks and counts their newlines, the chunks in
 * parallel: 1 and the count in *newlines when it did (0: too little for threads; the
 * caller counts and parses in one pass), -1 on an error. This pass is the first to read
 * the file: run by one thread ahead of the parse, it took a third of the 2-thread load
 * of the 22 MB Fashion-MNIST test set (10 of 30 ms; again over the same mapping, 0.6). */
static int csv_chunks_count(struct CsvChunks *j, struct Csv *c, const char *dend, int mapped, uint64_t *newlines)
{
    size_t bytes = (size_t)(dend - c->p), n = par_tasks(bytes, CSV_PAR_BYTES / 4);
    if (threads_count() == 1 || bytes < CSV_PAR_BYTES || n < 2) return 0;
    n = n > CSV_MAX_CHUNKS ? CSV_MAX_CHUNKS : n;
    j->c = c, j->mapped = mapped;
    size_t k = 0;
    j->at[0] = c->p;
    for (size_t i = 1; i < n; i++) { /* each cut just after a newline, past the one before */
        const char *want = c->p + bytes / n * i, *nl;
        if (want <= j->at[k] || !(nl = memchr(want, '\n', (size_t)(dend - want)))) continue;
        if (nl + 1 < dend) j->at[++k] = nl + 1;
    }
    j->n = k + 1;
    j->at[j->n] = dend;
    memset(j->bad, 0, sizeof j->bad);
    j->counting = 1;
    par_run(j->n, chunk_task, j);
    if (chunk_error(j, c)) return -1;
    uint64_t sum = 0;
    for (size_t i = 0; i < j->n; i++) { /* newlines -> the rows before each chunk */
        uint64_t nl = j->lines[i];
        j->lines[i] = sum;
        sum += nl;
    }
    *newlines = sum;
    return 1;
}

/* Parses the chunks csv_chunks_count cut into out (room for all their rows); 0, or -1 on
 * an error. */
static int csv_chunks_parse(struct CsvChunks *j, struct Csv *c, void *out, uint32_t dtype)
{
    j->out = out, j->dtype = dtype;
    j->counting = 0;
    par_run(j->n, chunk_task, j);
    return chunk_error(j, c) ? -1 : 0;
}

static int csv_parse(void *arg)
{
    static _Thread_local struct CsvChunks chunks; /* 130 KB of messages: not on the stack */
    struct CsvJob *j = arg;
    struct Csv c = {.path = j->path, .p = j->text->buf, .end = j->text->buf + j->text->len, .line = 1,
                    .n_classes = j->n_classes, .err = j->err, .errlen = j->errlen};
    if (csv_start(&c, j->n_classes ? 1 : 0)) return -1;
    const char *dend = data_end(c.p, c.end);
    uint64_t newlines = 0;
    int par = csv_chunks_count(&chunks, &c, dend, j->text->map_len != 0, &newlines);
    if (par < 0) return -1;
    if (!par) newlines = count_newlines(c.p, dend);
    uint64_t max_rows = newlines + 1, rows = max_rows, bytes; /* the last row ends at dend, without a newline */
    if (__builtin_mul_overflow(max_rows, c.cols, &bytes) ||
        __builtin_mul_overflow(bytes, dtype_size(j->dtype), &bytes) || bytes > mem_limit())
        return err_set(j->err, j->errlen, "%s: %llu rows of %llu values would not fit in memory (%zu MB)", j->path,
                       (unsigned long long)max_rows, (unsigned long long)c.cols, mem_limit() >> 20);
    j->t = tensor_create(2, (uint64_t[]){max_rows, c.cols}, j->dtype);
    if (par && csv_chunks_parse(&chunks, &c, j->t->data, j->dtype)) return -1;
    if (!par && DT_CALL(j->dtype, parse_rows, &c, j->t->data, max_rows, &rows, j->dtype)) return -1;
    j->t->shape[0] = rows;
    return 0;
}

/* ---- the binary format ---- */

#define CHECK_VALUES(T, sfx)                                                          \
    /* The first non-finite value, or a bad class label; returns its index or n. */  \
    static uint64_t check_values_##sfx(const void *v, uint64_t n, uint64_t n_classes) \
    {                                                                                 \
        const T *x = v;                                                               \
        uint64_t bad = 0;                                                             \
        for (uint64_t i = 0; i < n; i++) bad |= !isfinite(x[i]);                      \
        if (n_classes)                                                                \
            for (uint64_t i = 0; i < n; i++) bad |= !label_ok(x[i], n_classes);       \
        if (!bad) return n;                                                           \
        for (uint64_t i = 0; i < n; i++)                                              \
            if (!isfinite(x[i]) || (n_classes && !label_ok(x[i], n_classes))) return i; \
        return n;                                                                     \
    }
GEN_BOTH(CHECK_VALUES)

static int check_binary_values(const char *path, const char *name, const struct Tensor *t,
                               uint64_t n_classes, char *err, size_t errlen)
{
    uint64_t n = tensor_numel(t), cols = t->shape[1];
    uint64_t i = DT_CALL(t->dtype, check_values, t->data, n, n_classes);
    if (i == n) return 0;
    double v = tensor_at(t, i);
    unsigned long long row = i / cols + 1, col = i % cols + 1;
    if (!isfinite(v))
        return err_set(err, errlen, "%s: tensor '%s': row %llu, column %llu: %g (NaN and Inf are not allowed)",
                       path, name, row, col, v);
    return err_set(err, errlen, "%s: tensor '%s': row %llu: %.17g is not a class index from 0 to %llu",
                   path, name, row, v, (unsigned long long)n_classes - 1);
}

/* The tensor as a new rows x cols matrix in dtype; a 1-d tensor is one column. The
 * loaded tensor itself is kept when its dtype matches (model_file_free skips it). */
static int take_matrix(struct ModelFile *mf, uint32_t k, const char *path, uint32_t dtype,
                       struct Tensor **out, char *err, size_t errlen)
{
    struct Tensor *t = mf->tensors[k].t;
    const char *name = mf->tensors[k].name;
    char shape[64];
    /* A zero-column matrix holds no bytes, so its row count is not bounded by the file
     * size: rejecting it keeps the per-row buffers that follow (order) in bounds. */
    if (t->ndim < 1 || t->ndim > 2 || t->shape[0] == 0 || (t->ndim == 2 && t->shape[1] == 0))
        return err_set(err, errlen, "%s: tensor '%s' has shape %s, expected rows x columns", path, name,
                       tensor_shape_str(t, shape, sizeof shape));
    uint64_t dims[2] = {t->shape[0], t->ndim == 2 ? t->shape[1] : 1};
    if (t->dtype == dtype) {
        mf->tensors[k].t = NULL;
        tensor_reshape(t, 2, dims);
        *out = t;
        return 0;
    }
    struct Tensor *c = tensor_create(2, dims, dtype);
    uint64_t n = tensor_numel(c);
    if (dtype == DT_FLOAT64) {
        for (uint64_t i = 0; i < n; i++) tensor_f64(c)[i] = tensor_f32(t)[i];
    } else {
        for (uint64_t i = 0; i < n; i++) {
            double v = tensor_f64(t)[i];
            if (fabs(v) > FLT_MAX && isfinite(v)) {
                tensor_free(c);
                return err_set(err, errlen, "%s: tensor '%s': row %llu, column %llu: %g is out of range for float32",
                               path, name, (unsigned long long)(i / dims[1] + 1),
                               (unsigned long long)(i % dims[1] + 1), v);
            }
            tensor_f32(c)[i] = (float)v;
        }
    }
    *out = c;
    return 0;
}

static uint32_t find_tensor(const struct ModelFile *mf, const char *name)
{
    uint32_t k = 0;
    while (k < mf->n && strcmp(mf->tensors[k].name, name)) k++;
    return k;
}

struct ValueCheck {
    const char *path, *name;
    const struct Tensor *t;
    uint64_t n_classes;
    char *err;
    size_t errlen;
};

static int value_check(void *arg)
{
    const struct ValueCheck *c = arg;
    return check_binary_values(c->path, c->name, c->t, c->n_classes, c->err, c->errlen);
}

struct Copy { void *dst; const void *src; size_t bytes; };

static int copy_work(void *arg)
{
    const struct Copy *c = arg;
    memcpy(c->dst, c->src, c->bytes);
    return 0;
}

/* A private heap copy of t, whose data may lie in a file's mapping (mapped: the reads are
 * guarded). 0, or -1 (*out NULL) when the file shrank under the copy. */
static int copy_tensor(const struct Tensor *t, int mapped, struct Tensor **out)
{
    *out = tensor_create(t->ndim, t->shape, t->dtype);
    struct Copy c = {(*out)->data, t->data, tensor_numel(t) * dtype_size(t->dtype)};
    if (read_guarded(mapped, copy_work, &c) == 0) return 0;
    tensor_free(*out);
    *out = NULL;
    return -1;
}

/* Tensor `name` of a loaded binary dataset (or `alt` when it has none), checked. */
static int binary_take(struct ModelFile *mf, const char *path, uint32_t dtype, uint64_t n_classes,
                       const char *name, const char *alt, struct Tensor **out, char *err, size_t errlen)
{
    const char *got = name;
    uint32_t k = find_tensor(mf, name);
    if (k == mf->n && alt) k = find_tensor(mf, got = alt);
    int r = k == mf->n ? err_set(err, errlen, "%s: no tensor '%s' in this binary dataset", path, name)
                       : take_matrix(mf, k, path, dtype, out, err, errlen);
    if (r) return -1;
    if (n_classes && (*out)->shape[1] != 1)
        r = err_set(err, errlen, "%s: tensor '%s' has %llu columns, expected 1 (a class index per row)", path,
                    got, (unsigned long long)(*out)->shape[1]);
    struct ValueCheck vc = {path, got, *out, n_classes, err, errlen};
    if (!r) r = read_guarded(mf->map != NULL, value_check, &vc);
    if (r == UTIL_SIGBUS) r = shrank_error(path, err, errlen);
    if (r) {
        tensor_free(*out);
        *out = NULL;
    }
    return r;
}

/* The file's mapping, which x's data lies in, passes from mf to ds. */
static void take_map(struct Dataset *ds, struct ModelFile *mf, const char *path)
{
    size_t len = strlen(path) + 1;
    ds->map = mf->map, ds->map_len = mf->map_len, ds->map_fd = mf->map_fd;
    ds->map_held = util_sigbus_hold() == 0; /* every batch is guarded: no sigaction per batch */
    ds->map_path = mem_alloc(len);
    memcpy(ds->map_path, path, len);
    mf->map = NULL;
}

/* map_to non-NULL: the tensor may stay in a mapping of the file, which goes to map_to. */
static int read_binary(const char *path, uint32_t dtype, uint64_t n_classes, const char *name,
                       const char *alt, struct Tensor **out, struct Dataset *map_to, char *err, size_t errlen)
{
    struct ModelFile mf;
    if (model_load_mapped(path, map_to ? name : NULL, dtype, &mf, err, errlen)) return -1;
    int r = binary_take(&mf, path, dtype, n_classes, name, alt, out, err, errlen);
    if (!r && mf.map) take_map(map_to, &mf, path);
    model_file_free(&mf);
    return r;
}

/* One binary dataset given as both data and labels is read once, not twice. */
static int same_container(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && S_ISREG(sa.st_mode) && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino && model_is_container(a);
}

static int read_binary_both(const char *path, uint32_t dtype, uint64_t n_classes, struct Dataset *ds, char *err,
                            size_t errlen)
{
    struct ModelFile mf;
    if (model_load_mapped(path, "data", dtype, &mf, err, errlen)) return -1;
    int r = binary_take(&mf, path, dtype, 0, "data", NULL, &ds->x, err, errlen);
    uint32_t k = find_tensor(&mf, "data");
    /* Without a "labels" tensor the labels are the data, whose tensor may just have been
     * handed to x: they get a copy of their own. */
    if (!r && find_tensor(&mf, "labels") == mf.n && !mf.tensors[k].t &&
        copy_tensor(ds->x, mf.map != NULL, &mf.tensors[k].t))
        r = shrank_error(path, err, errlen);
    if (!r) r = binary_take(&mf, path, dtype, n_classes, "labels", "data", &ds->y, err, errlen);
    if (!r && mf.map) take_map(ds, &mf, path);
    model_file_free(&mf);
    return r;
}

/* The matrix in a CSV file or binary dataset; n_classes > 0 asks for one class index per
 * row. Labels come from a binary file's "labels" tensor, or its "data" without one.
 * map_to non-NULL: a binary file's "data" may stay in a mapping, which goes to map_to. */
static int read_matrix(const char *path, uint32_t dtype, uint64_t n_classes, int labels,
                       struct Tensor **out, struct Dataset *map_to, char *err, size_t errlen)
{
    struct stat st;
    /* Only a regular file is probed: probing a pipe would eat its first bytes. */
    if (strcmp(path, "-") && stat(path, &st) == 0 && S_ISREG(st.st_mode) && model_is_container(path))
        return read_binary(path, dtype, n_classes, labels ? "labels" : "data", labels ? "data" : NULL,
                           out, labels ? NULL : map_to, err, errlen);
    struct Text text;
    if (text_open(&text, path, err, errlen)) return -1;
    struct CsvJob job = {path, &text, dtype, n_classes, NULL, err, errlen};
    /* Another program truncating a mapped file would kill the parse with SIGBUS. */
    int r = read_guarded(text.map_len != 0, csv_parse, &job);
    if (r == UTIL_SIGBUS || text_shrank(&text)) r = shrank_error(path, err, errlen);
    text_close(&text);
    if (r) tensor_free(job.t);
    else *out = job.t;
    return r;
}

int csv_read_matrix(const char *path, uint32_t dtype, struct Tensor **out, char *err, size_t errlen)
{
    return read_matrix(path, dtype, 0, 0, out, NULL, err, errlen);
}

/* ---- the dataset ---- */

/* After a read of ds's mapping: did it fault, or is the file now shorter than the
 * mapping (the rest of a cut file's last page reads as zeros, without a fault)? Either
 * is recorded; -1 then. */
static int map_read_done(struct Dataset *ds, int faulted)
{
    struct stat st;
    if (faulted || fstat(ds->map_fd, &st) != 0 || (uint64_t)st.st_size < ds->map_len) ds->map_shrank = 1;
    return ds->map_shrank ? -1 : 0;
}

int dataset_check(struct Dataset *ds)
{
    return ds->map ? map_read_done(ds, 0) : 0;
}

/* map_read_done after a batch's reads: the size looked at every DATASET_CHECK_S. */
static int map_batch_done(struct Dataset *ds, int faulted)
{
    double t = time_now();
    if (!faulted && t - ds->map_checked < DATASET_CHECK_S) return ds->map_shrank ? -1 : 0;
    ds->map_checked = t;
    return map_read_done(ds, faulted);
}

static void map_close(struct Dataset *ds)
{
    if (!ds->map) return;
    munmap(ds->map, ds->map_len);
    close(ds->map_fd);
    if (ds->map_held) util_sigbus_release();
    mem_free(ds->map_path);
    ds->map = NULL, ds->map_len = 0, ds->map_fd = -1, ds->map_path = NULL, ds->map_shrank = 0, ds->map_held = 0;
}

/* x becomes a private heap copy (what writing it needs); the mapping goes. */
static int map_to_heap(struct Dataset *ds)
{
    if (!ds->map) return 0;
    struct Tensor *c;
    if (map_read_done(ds, copy_tensor(ds->x, 1, &c) != 0)) {
        tensor_free(c);
        return -1;
    }
    tensor_free(ds->x);
    ds->x = c;
    map_close(ds);
    return 0;
}

int dataset_error(const struct Dataset *ds, char *err, size_t errlen)
{
    return ds->map_shrank ? shrank_error(ds->map_path, err, errlen) : 0;
}

/* Class labels (checked whole numbers in range by the reader) become integers once. */
static void take_classes(struct Dataset *ds)
{
    ds->cls = mem_alloc((ds->n ? ds->n : 1) * sizeof *ds->cls);
    for (uint64_t i = 0; i < ds->n; i++) ds->cls[i] = (uint32_t)tensor_at(ds->y, i);
    tensor_free(ds->y);
    ds->y = NULL;
}

int dataset_load(struct Dataset *ds, const char *x_path, const char *y_path, uint32_t dtype,
                 uint64_t n_classes, char *err, size_t errlen)
{
    memset(ds, 0, sizeof *ds);
    int bad = y_path && same_container(x_path, y_path)
                  ? read_binary_both(x_path, dtype, n_classes, ds, err, errlen)
                  : read_matrix(x_path, dtype, 0, 0, &ds->x, ds, err, errlen) ||
                        (y_path && read_matrix(y_path, dtype, n_classes, 1, &ds->y, NULL, err, errlen));
    if (!bad && ds->map && map_read_done(ds, 0)) bad = dataset_error(ds, err, errlen);
    if (bad) {
        dataset_free(ds);
        return -1;
    }
    ds->n = ds->x->shape[0];
    ds->dim = ds->x->shape[1];
    if (ds->y && ds->y->shape[0] != ds->n) {
        err_set(err, errlen, "%s has %llu rows but %s has %llu: each sample needs one label row",
                x_path, (unsigned long long)ds->n, y_path, (unsigned long long)ds->y->shape[0]);
        dataset_free(ds);
        return -1;
    }
    ds->label_dim = ds->y ? ds->y->shape[1] : 0;
    if (ds->y && n_classes) take_classes(ds);
    ds->order = mem_alloc(ds->n * sizeof *ds->order);
    for (uint64_t i = 0; i < ds->n; i++) ds->order[i] = i;
    return 0;
}

int dataset_save_binary(const struct Dataset *ds, const char *path, char *err, size_t errlen)
{
    /* Mapped data is written from a copy: a fault inside the save could not be caught. */
    struct Tensor *x = NULL, *cls = NULL;
    if (ds->map && copy_tensor(ds->x, 1, &x)) return shrank_error(ds->map_path, err, errlen);
    if (ds->cls) { /* the container holds numbers: class indices as one column */
        cls = tensor_create(2, (uint64_t[]){ds->n, 1}, ds->x->dtype);
        for (uint64_t i = 0; i < ds->n; i++) tensor_set(cls, (uint64_t[]){i, 0}, ds->cls[i]);
    }
    /* A scalar before "data" puts its values at byte 64 of the file, aligned for either
     * dtype, where model_load_mapped can leave them in a mapping. */
    struct Tensor *align = tensor_create(0, NULL, DT_FLOAT32);
    tensor_fill(align, 64);
    struct NamedTensor ts[3] = {{"align", align}, {"data", x ? x : ds->x}, {"labels", cls ? cls : ds->y}};
    int r = model_save(path, ts, ts[2].t ? 3 : 2, NULL, err, errlen);
    tensor_free(align);
    tensor_free(x);
    tensor_free(cls);
    return r;
}

uint64_t dataset_bytes(const struct Dataset *ds)
{
    uint64_t b = ds->n * (sizeof *ds->order + (ds->cls ? sizeof *ds->cls : 0));
    if (ds->x) b += tensor_numel(ds->x) * dtype_size(ds->x->dtype);
    if (ds->y) b += tensor_numel(ds->y) * dtype_size(ds->y->dtype);
    return b;
}

void dataset_free(struct Dataset *ds)
{
    tensor_free(ds->x);
    map_close(ds);
    tensor_free(ds->y);
    tensor_free(ds->bx_buf);
    tensor_free(ds->by_buf);
    mem_free(ds->cls);
    mem_free(ds->bcls_buf);
    mem_free(ds->order);
    memset(ds, 0, sizeof *ds);
}

/* ---- normalisation ---- */

/* Per-feature min, max and mean in one pass, then the variance about the mean, for
 * features [j0, j1); tmp holds 4 d doubles (allocated by the caller: a guarded read may
 * end in a jump). Each feature's sums run over every sample in order, whoever takes it. */
#define NORM_STATS(T, sfx)                                                                \
    static void norm_stats_##sfx(const void *xv, uint64_t n, uint64_t d, uint64_t j0, uint64_t j1, int kind, \
                                 void *shiftv, void *scalev, double *tmp)                 \
    {                                                                                     \
        const T *x = xv;                                                                  \
        T *shift = shiftv, *scale = scalev;                                               \
        double *lo = tmp, *hi = lo + d, *acc = hi + d;                                    \
        for (uint64_t j = j0; j < j1; j++) { lo[j] = hi[j] = x[j]; acc[j] = 0; }          \
        for (uint64_t i = 0; i < n; i++)                                                  \
            for (uint64_t j = j0; j < j1; j++) {                                          \
                double v = x[i * d + j];                                                  \
                lo[j] = v < lo[j] ? v : lo[j];                                            \
                hi[j] = v > hi[j] ? v : hi[j];                                            \
                acc[j] += v;                                                              \
            }                                                                             \
        for (uint64_t j = j0; j < j1; j++) acc[j] /= (double)n;                           \
        if (kind == NORM_STANDARD) {                                                      \
            double *var = acc + d;                                                        \
            for (uint64_t j = j0; j < j1; j++) var[j] = 0;                                \
            for (uint64_t i = 0; i < n; i++)                                              \
                for (uint64_t j = j0; j < j1; j++) {                                      \
                    double u = x[i * d + j] - acc[j];                                     \
                    var[j] += u * u;                                                      \
                }                                                                         \
            for (uint64_t j = j0; j < j1; j++) {                                          \
                shift[j] = (T)acc[j];                                                     \
                scale[j] = lo[j] == hi[j] ? 1 : (T)(1 / sqrt(var[j] / (double)n));        \
            }                                                                             \
        } else if (kind == NORM_MINMAX) {                                                 \
            for (uint64_t j = j0; j < j1; j++) {                                          \
                shift[j] = (T)lo[j];                                                      \
                scale[j] = lo[j] == hi[j] ? 1 : (T)(1 / (hi[j] - lo[j]));                 \
            }                                                                             \
        } else {                                                                          \
            for (uint64_t j = j0; j < j1; j++) { shift[j] = 0; scale[j] = 1; }            \
        }                                                                                 \
    }
GEN_BOTH(NORM_STATS)

/* The statistics are cut by features, in groups of NORM_GROUP (a cache line of the
 * doubles each task writes); the normalisation itself by rows. Where the data is mapped,
 * every task guards its own reads (utils.h). */
#define NORM_GROUP 8

struct NormJob {
    const struct Dataset *ds;
    int kind;
    struct Tensor *shift, *scale;
    double *tmp;
    uint64_t per_task;      /* features per task */
    atomic_int fault;       /* a task's read of the mapping faulted */
};

struct NormPart { const struct NormJob *j; size_t task; };

static int norm_stats_part(void *arg)
{
    const struct NormPart *p = arg;
    const struct NormJob *j = p->j;
    const struct Dataset *ds = j->ds;
    uint64_t j0 = p->task * j->per_task, j1 = j0 + j->per_task < ds->dim ? j0 + j->per_task : ds->dim;
    DT_CALL(ds->x->dtype, norm_stats, ds->x->data, ds->n, ds->dim, j0, j1, j->kind, j->shift->data, j->scale->data,
            j->tmp);
    return 0;
}

static void norm_stats_task(void *ctx, size_t task, int worker)
{
    (void)worker;
    struct NormJob *j = ctx;
    struct NormPart p = {j, task};
    if (read_guarded(read_guard_of(j->ds), norm_stats_part, &p) == UTIL_SIGBUS) atomic_store(&j->fault, 1);
}

int dataset_norm_stats(struct Dataset *ds, int kind, struct Tensor **shift, struct Tensor **scale)
{
    CHECK(ds->n > 0, "no samples");
    uint64_t d = ds->dim, groups = (d + NORM_GROUP - 1) / NORM_GROUP;
    struct NormJob j = {ds, kind, tensor_create(1, &d, ds->x->dtype), tensor_create(1, &d, ds->x->dtype),
                        mem_alloc(4 * d * sizeof(double)), 0, 0};
    size_t tasks = par_tasks(ds->n * d * dtype_size(ds->x->dtype), (size_t)16 << 10);
    if (tasks > groups) tasks = groups ? groups : 1;
    j.per_task = (groups + tasks - 1) / tasks * NORM_GROUP;
    if (d) par_run((d + j.per_task - 1) / j.per_task, norm_stats_task, &j);
    int r = ds->map ? map_read_done(ds, atomic_load(&j.fault)) : 0;
    mem_free(j.tmp);
    if (r) {
        tensor_free(j.shift);
        tensor_free(j.scale);
        j.shift = j.scale = NULL;
    }
    *shift = j.shift, *scale = j.scale;
    return r;
}

#define NORMALIZE(T, sfx)                                                                     \
    static void normalize_##sfx(void *xv, uint64_t n, uint64_t d, const void *sv, const void *cv) \
    {                                                                                         \
        T *x = xv;                                                                            \
        const T *shift = sv, *scale = cv;                                                     \
        for (uint64_t i = 0; i < n; i++, x += d)                                              \
            for (uint64_t j = 0; j < d; j++) x[j] = (x[j] - shift[j]) * scale[j];             \
    }
GEN_BOTH(NORMALIZE)

struct NormalizeJob { struct Dataset *ds; const struct Tensor *shift, *scale; uint64_t per_task; };

static void normalize_task(void *ctx, size_t task, int worker)
{
    (void)worker;
    const struct NormalizeJob *j = ctx;
    uint64_t i0 = task * j->per_task, n = j->ds->n - i0 < j->per_task ? j->ds->n - i0 : j->per_task;
    char *x = (char *)j->ds->x->data + i0 * j->ds->dim * dtype_size(j->ds->x->dtype);
    DT_CALL(j->ds->x->dtype, normalize, x, n, j->ds->dim, j->shift->data, j->scale->data);
}

int dataset_normalize(struct Dataset *ds, const struct Tensor *shift, const struct Tensor *scale)
{
    uint32_t dt = ds->x->dtype;
    CHECK(shift->dtype == dt && scale->dtype == dt, "normalisation statistics in %s for %s data",
          dtype_name(shift->dtype), dtype_name(dt));
    CHECK(tensor_numel(shift) == ds->dim && tensor_numel(scale) == ds->dim,
          "%llu statistics for %llu features", (unsigned long long)tensor_numel(shift), (unsigned long long)ds->dim);
    if (map_to_heap(ds)) return -1;
    if (!ds->n) return 0;
    struct NormalizeJob j = {ds, shift, scale, 0};
    size_t tasks = par_tasks(ds->n * ds->dim * dtype_size(dt), (size_t)16 << 10);
    if (tasks > ds->n) tasks = ds->n;
    j.per_task = (ds->n + tasks - 1) / tasks;
    par_run((ds->n + j.per_task - 1) / j.per_task, normalize_task, &j);
    return 0;
}

/* ---- shuffling and batching ---- */

/* Starts from the identity, so the order depends on the generator's state alone. */
void dataset_shuffle_indices(struct Dataset *ds, struct Rng *rng)
{
    uint64_t *o = ds->order;
    for (uint64_t i = 0; i < ds->n; i++) o[i] = i;
    for (uint64_t i = ds->n; i > 1; i--) {
        uint64_t j = rng_below(rng, i), t = o[i - 1];
        o[i - 1] = o[j];
        o[j] = t;
    }
}

uint64_t dataset_num_batches(const struct Dataset *ds, uint64_t batch_size)
{
    CHECK(batch_size > 0, "batch size 0");
    return (ds->n + batch_size - 1) / batch_size;
}

static void batch_header(struct Tensor *h, struct Tensor *buf, uint64_t *shape, uint64_t *stride,
                         uint64_t rows, uint64_t cols)
{
    h->data = buf->data;
    h->ndim = 2;
    h->shape = shape;
    h->stride = stride;
    shape[0] = rows;
    shape[1] = cols;
    stride[0] = cols;
    stride[1] = 1;
    h->dtype = buf->dtype;
    h->flags = 0;
}

#define GATHER_PREFETCH_BYTES 4096

/* Rows [lo, hi) of a gather. Shuffled rows are scattered over the whole set, so each
 * starts with a cache miss: touching the row two ahead while copying this one overlaps
 * those misses. */
static void gather_range(char *d, const char *s, const uint64_t *idx, uint64_t lo, uint64_t hi, size_t row_bytes)
{
    size_t ahead = row_bytes < GATHER_PREFETCH_BYTES ? row_bytes : GATHER_PREFETCH_BYTES;
    for (uint64_t r = lo; r < hi; r++) {
        if (r + 2 < hi)
            for (size_t o = 0; o < ahead; o += 64) __builtin_prefetch(s + idx[r + 2] * row_bytes + o);
        memcpy(d + r * row_bytes, s + idx[r] * row_bytes, row_bytes);
    }
}

struct GatherJob {
    char *d;
    const char *s;
    const uint64_t *idx;
    uint64_t rows, per_task;
    size_t row_bytes;
    size_t copy_bytes;   /* 0: task t gathers its rows into d; else all rows into d + t * copy_bytes */
    int guard;           /* how every task guards its reads (read_guarded) */
    atomic_int fault;    /* a task's read faulted (the file shrank) */
};

struct GatherPart { const struct GatherJob *j; size_t task; };

static int gather_part(void *arg)
{
    const struct GatherPart *p = arg;
    const struct GatherJob *j = p->j;
    if (j->copy_bytes) {
        gather_range(j->d + p->task * j->copy_bytes, j->s, j->idx, 0, j->rows, j->row_bytes);
        return 0;
    }
    uint64_t lo = p->task * j->per_task, hi = lo + j->per_task < j->rows ? lo + j->per_task : j->rows;
    gather_range(j->d, j->s, j->idx, lo, hi, j->row_bytes);
    return 0;
}

static void gather_task(void *ctx, size_t task, int worker)
{
    (void)worker;
    struct GatherJob *j = ctx;
    struct GatherPart p = {j, task};
    /* A fault lands on the thread that read: it is caught there, not by a jump out of
     * the task (as the parallel CSV parse does). */
    if (read_guarded(j->guard, gather_part, &p) == UTIL_SIGBUS) atomic_store(&j->fault, 1);
}

/* A copy: the threads split the rows, one task each (rows cost alike). Returns 0, or -1
 * when a read of mapped src faulted. */
static int gather_rows(void *dst, const struct Tensor *src, const uint64_t *idx, uint64_t rows, uint64_t cols,
                       int guard)
{
    struct GatherJob j = {dst, src->data, idx, rows, rows, cols * dtype_size(src->dtype), 0, guard, 0};
    size_t tasks = par_tasks(rows * j.row_bytes, 16 << 10);
    if (tasks > (size_t)threads_count()) tasks = (size_t)threads_count();
    j.per_task = (rows + tasks - 1) / (tasks ? tasks : 1);
    if (!j.per_task) return 0;
    par_run((rows + j.per_task - 1) / j.per_task, gather_task, &j);
    return atomic_load(&j.fault) ? -1 : 0;
}

/* The rows gathered whole into n copies, copy w at dst + w * copy_bytes, by task w (on
 * worker w, as the pool hands out tasks, unless another thread helps). Returns as
 * gather_rows. */
static int gather_copies(char *dst, size_t copy_bytes, int n, const struct Tensor *src, const uint64_t *idx,
                         uint64_t rows, uint64_t cols, int guard)
{
    struct GatherJob j = {dst, src->data, idx, rows, rows, cols * dtype_size(src->dtype), copy_bytes, guard, 0};
    par_run((size_t)n, gather_task, &j);
    return atomic_load(&j.fault) ? -1 : 0;
}

/* Part `part` of `parts` of batch batch_index into the batch buffers. */
static int get_rows(struct Dataset *ds, uint64_t batch_index, uint64_t batch_size, uint64_t part, uint64_t parts,
                    struct Batch *b);

int dataset_get_batch(struct Dataset *ds, uint64_t batch_index, uint64_t batch_size, struct Batch *b)
{
    return get_rows(ds, batch_index, batch_size, 0, 1, b);
}

int dataset_get_batch_part(struct Dataset *ds, uint64_t batch_index, uint64_t batch_size, uint64_t part,
                           uint64_t parts, struct Batch *b)
{
    CHECK(part < parts, "part %llu of %llu", (unsigned long long)part, (unsigned long long)parts);
    return get_rows(ds, batch_index, batch_size, part, parts, b);
}

/* With threads, batches take turns in BATCH_RING copies of the batch buffer: a thread
 * that writes its rows of a batch where the last one lay first waits for every other
 * core that read it to give its lines up. On this project's VM, at 2 threads, the
 * MLP's 200 KB gather took 10.3-14.9 us in one buffer and 7.2-8.5 us in turns of 4
 * (one thread: 7.9-9.0 either way). Small batches only: each copy costs memory. With
 * ds->batch_copies, the first copies are the threads' own (struct ParCopies) instead:
 * each is written and read by one thread alone, so it needs no turns. */
#define BATCH_RING 4
#define BATCH_RING_BYTES ((uint64_t)1 << 20)

static int get_rows(struct Dataset *ds, uint64_t batch_index, uint64_t batch_size, uint64_t part, uint64_t parts,
                    struct Batch *b)
{
    CHECK(batch_index < dataset_num_batches(ds, batch_size), "batch %llu of %llu",
          (unsigned long long)batch_index, (unsigned long long)dataset_num_batches(ds, batch_size));
    /* No batch holds more rows than the dataset, whatever the batch size asks. */
    uint64_t cap = batch_size < ds->n ? batch_size : ds->n;
    if (cap > ds->batch_cap) {
        tensor_free(ds->bx_buf);
        tensor_free(ds->by_buf);
        mem_free(ds->bcls_buf);
        uint64_t bytes = cap * ds->dim * dtype_size(ds->x->dtype);
        ds->batch_ring = threads_count() > 1 && bytes <= BATCH_RING_BYTES ? BATCH_RING : 1;
        ds->bx_buf = tensor_create(2, (uint64_t[]){cap * ds->batch_ring, ds->dim}, ds->x->dtype);
        ds->by_buf = ds->y ? tensor_create(2, (uint64_t[]){cap, ds->label_dim}, ds->y->dtype) : NULL;
        ds->bcls_buf = ds->cls ? mem_alloc(cap * sizeof *ds->bcls_buf) : NULL;
        ds->batch_cap = cap;
    }
    uint64_t first = batch_index * batch_size;
    uint64_t all = ds->n - first < batch_size ? ds->n - first : batch_size;
    uint64_t lo = all * part / parts, rows = all * (part + 1) / parts - lo;
    const uint64_t *idx = ds->order + first + lo;
    batch_header(&ds->bx, ds->bx_buf, ds->bx_shape, ds->bx_stride, rows, ds->dim);
    size_t slot = ds->batch_cap * ds->dim * dtype_size(ds->x->dtype);
    int t = threads_count();
    int copies = ds->batch_copies && t > 1 && t <= PAR_COPIES_MAX && (uint64_t)t <= ds->batch_ring;
    uint64_t turn = ds->batch_ring > 1 && !copies ? ds->batch_turn++ % ds->batch_ring : 0;
    ds->bx.data = (char *)ds->bx.data + turn * slot;
    *b = (struct Batch){.x = &ds->bx, .rows = rows, .batch_rows = all};
    if (ds->y) { /* labels are never mapped */
        gather_rows(ds->by_buf->data, ds->y, idx, rows, ds->label_dim, READ_HEAP);
        batch_header(&ds->by, ds->by_buf, ds->by_shape, ds->by_stride, rows, ds->label_dim);
        b->y = &ds->by;
    }
    if (ds->cls) {
        for (uint64_t r = 0; r < rows; r++) ds->bcls_buf[r] = ds->cls[idx[r]];
        b->cls = ds->bcls_buf;
    }
    int fault;
    if (copies) {
        ds->bx_copies.n = t;
        for (int w = 0; w < t; w++) ds->bx_copies.copy[w] = (char *)ds->bx.data + (size_t)w * slot;
        b->x_copies = &ds->bx_copies;
        fault = gather_copies(ds->bx.data, slot, t, ds->x, idx, rows, ds->dim, read_guard_of(ds));
    } else {
        fault = gather_rows(ds->bx.data, ds->x, idx, rows, ds->dim, read_guard_of(ds));
    }
    return ds->map ? map_batch_done(ds, fault) : 0;
}

/* ---- holding samples out ---- */

/* *dst: a new dataset of src's rows idx[0..n), in that order, on the heap. Returns 0, or
 * -1 when src is mapped and its file shrank. */
static int take_rows(struct Dataset *dst, struct Dataset *src, const uint64_t *idx, uint64_t n)
{
    memset(dst, 0, sizeof *dst);
    dst->n = n, dst->dim = src->dim, dst->label_dim = src->label_dim;
    dst->x = tensor_create(2, (uint64_t[]){n, src->dim}, src->x->dtype);
    int fault = gather_rows(dst->x->data, src->x, idx, n, src->dim, read_guard_of(src));
    if (src->y) {
        dst->y = tensor_create(2, (uint64_t[]){n, src->label_dim}, src->y->dtype);
        gather_rows(dst->y->data, src->y, idx, n, src->label_dim, READ_HEAP);
    }
    if (src->cls) {
        dst->cls = mem_alloc(n * sizeof *dst->cls);
        for (uint64_t i = 0; i < n; i++) dst->cls[i] = src->cls[idx[i]];
    }
    dst->order = mem_alloc(n * sizeof *dst->order);
    for (uint64_t i = 0; i < n; i++) dst->order[i] = i;
    return src->map ? map_read_done(src, fault) : 0;
}

int dataset_split(struct Dataset *ds, struct Dataset *held, uint64_t n_held, struct Rng *rng)
{
    uint64_t n = ds->n, n_keep = n - n_held;
    CHECK(n_held > 0 && n_held < n, "holding out %llu of %llu samples", (unsigned long long)n_held,
          (unsigned long long)n);
    memset(held, 0, sizeof *held);
    uint64_t *perm = mem_alloc(2 * n * sizeof *perm), *idx = perm + n;
    unsigned char *out = mem_alloc_zeroed(n);
    for (uint64_t i = 0; i < n; i++) perm[i] = i;
    for (uint64_t i = n; i > 1; i--) {
        uint64_t j = rng_below(rng, i), t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
    for (uint64_t i = n_keep; i < n; i++) out[perm[i]] = 1;
    uint64_t k = 0, h = n_keep; /* kept rows first, then the held-out ones, each in file order */
    for (uint64_t i = 0; i < n; i++) idx[out[i] ? h++ : k++] = i;
    struct Dataset keep;
    int r = take_rows(&keep, ds, idx, n_keep) || take_rows(held, ds, idx + n_keep, n_held) ? -1 : 0;
    mem_free(perm);
    mem_free(out);
    if (r) {
        dataset_free(&keep);
        dataset_free(held);
        return -1;
    }
    dataset_free(ds);
    *ds = keep;
    return 0;
}
