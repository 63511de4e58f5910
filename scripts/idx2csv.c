/* idx2csv: an IDX file of unsigned bytes (the MNIST / Fashion-MNIST format) as CSV.
 *
 *   idx2csv [FILE|-]  > out.csv
 *
 * Reads FILE (or standard input; gzip'ed files through `gzip -dc FILE | idx2csv`) and
 * writes one row per item of the first dimension: images of N x 28 x 28 become N rows of
 * 784 values 0-255, labels of N become N rows of one value. Stand-alone (libc only), so
 * scripts/fmnist.sh can build it with any C compiler. Exit 0, or 1 with a message. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *prog = "idx2csv";

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "%s: %s: %s\n", prog, what, msg);
    exit(1);
}

/* The whole stream in memory (an IDX file is at most tens of megabytes). */
static unsigned char *read_all(FILE *f, const char *name, size_t *len)
{
    size_t cap = 1 << 20, n = 0;
    unsigned char *buf = malloc(cap);
    if (!buf) die(name, "out of memory");
    for (;;) {
        n += fread(buf + n, 1, cap - n, f);
        if (ferror(f)) die(name, strerror(errno));
        if (n < cap) break;
        unsigned char *bigger = realloc(buf, cap *= 2);
        if (!bigger) die(name, "out of memory");
        buf = bigger;
    }
    *len = n;
    return buf;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Checks the header against the file size; returns rows and columns. */
static const unsigned char *parse_header(const unsigned char *buf, size_t len, const char *name,
                                         uint64_t *rows, uint64_t *cols)
{
    if (len < 4 || buf[0] || buf[1]) die(name, "not an IDX file (bad magic)");
    if (buf[2] != 0x08) die(name, "only unsigned-byte IDX data (type 0x08) is supported");
    unsigned ndim = buf[3];
    if (ndim < 1 || len < 4 + 4 * (size_t)ndim) die(name, "truncated IDX header");
    *rows = be32(buf + 4);
    *cols = 1;
    for (unsigned i = 1; i < ndim; i++) *cols *= be32(buf + 4 + 4 * i);
    size_t head = 4 + 4 * (size_t)ndim;
    if (*cols == 0 || (len - head) / *cols < *rows || (len - head) != *rows * *cols) {
        char msg[160];
        snprintf(msg, sizeof msg, "header promises %llu x %llu bytes but the file holds %zu",
                 (unsigned long long)*rows, (unsigned long long)*cols, len - head);
        die(name, msg);
    }
    return buf + head;
}

static void write_csv(const unsigned char *data, uint64_t rows, uint64_t cols)
{
    char num[256][4];
    for (int v = 0; v < 256; v++) snprintf(num[v], sizeof num[v], "%d", v);
    size_t cap = (size_t)cols * 4 + 1;
    char *line = malloc(cap);
    if (!line) die("stdout", "out of memory");
    for (uint64_t r = 0; r < rows; r++) {
        char *p = line;
        for (uint64_t c = 0; c < cols; c++) {
            for (const char *s = num[data[r * cols + c]]; *s; s++) *p++ = *s;
            *p++ = c + 1 < cols ? ',' : '\n';
        }
        if (fwrite(line, 1, (size_t)(p - line), stdout) != (size_t)(p - line)) die("stdout", strerror(errno));
    }
    free(line);
    if (fflush(stdout) != 0 || ferror(stdout)) die("stdout", strerror(errno));
}

int main(int argc, char **argv)
{
    if (argc > 2 || (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))) {
        fprintf(stderr, "usage: %s [FILE|-] > out.csv   (gzip'ed: gzip -dc FILE | %s)\n", prog, prog);
        return argc > 2 ? 2 : 0;
    }
    const char *name = argc == 2 ? argv[1] : "-";
    FILE *f = strcmp(name, "-") ? fopen(name, "rb") : stdin;
    if (!f) die(name, strerror(errno));
    size_t len;
    unsigned char *buf = read_all(f, name, &len);
    if (f != stdin) fclose(f);
    if (len >= 2 && buf[0] == 0x1f && buf[1] == 0x8b) die(name, "gzip data: use gzip -dc FILE | idx2csv");
    uint64_t rows, cols;
    const unsigned char *data = parse_header(buf, len, name, &rows, &cols);
    write_csv(data, rows, cols);
    free(buf);
    return 0;
}
