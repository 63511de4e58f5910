/* dataset: CSV and binary loading, normalisation, shuffling and batching.
 *
 * CSV: one sample per row, comma-separated numbers. Forgiving where people's files
 * vary (a header row, CRLF, a UTF-8 BOM, no final newline, blank trailing lines,
 * spaces around values, exponents and signs, lines of any length); strict where a
 * mistake would go unnoticed (non-numbers, NaN, Inf, values that overflow float32,
 * ragged rows, empty or header-only files), every error as "file:line:column: ...".
 * Binary: the DLASM1 container (model_io.h) with tensors "data" (N x D) and "labels"
 * (N x L), recognised by its magic wherever a CSV is accepted. The path "-" reads
 * standard input (CSV only: a binary dataset is recognised in regular files alone).
 *
 * A binary dataset's "data" stored in the run's dtype at an offset aligned for it (as
 * dataset_save_binary and csv2bin write it) is not copied: x points into a shared
 * read-only mapping of the file, so the processes training on one file on a machine
 * (train-mpi's ranks) share its page cache instead of holding a private copy each. Its
 * checks (header, checksum, every value finite) still read it all once at load. When
 * another program truncates the file, reading the mapping would kill the process with
 * SIGBUS: every read of it is guarded, and the functions below that read it return -1
 * instead (the file shrank; dataset_error says so). A write (normalisation) makes the
 * data a private copy first. */
#ifndef MINIDL_DATASET_H
#define MINIDL_DATASET_H

#include "tensor.h"
#include "threads.h"
#include "utils.h"

struct Dataset {
    struct Tensor *x;       /* N x D, the dataset's dtype: on the heap, or in map */
    struct Tensor *y;       /* N x L targets, or NULL (class labels, or inference without labels) */
    uint32_t *cls;          /* N class indices, checked at load (labels loaded with n_classes > 0), or NULL */
    uint64_t n, dim, label_dim;   /* label_dim 1 for class labels */
    uint64_t *order;        /* sample order used by batching (identity until shuffled) */
    /* Batch buffers and headers, allocated once: batching touches no heap. */
    struct Tensor *bx_buf, *by_buf;
    uint32_t *bcls_buf;
    struct Tensor bx, by;   /* views into the buffers, first dim = rows in the batch */
    uint64_t bx_shape[4], bx_stride[4], by_shape[2], by_stride[2];
    uint64_t batch_cap;     /* rows the buffers hold: at most n */
    uint64_t batch_ring, batch_turn; /* bx_buf holds batch_ring copies of batch_cap rows, taken in turn */
    /* Set by the caller when every thread reads a batch whole (a model whose first op is
     * a Linear): at 2 to PAR_COPIES_MAX threads, each thread then gathers all the rows
     * into a copy of its own (Batch x_copies) instead of its share into one buffer. */
    int batch_copies;
    struct ParCopies bx_copies;
    /* The mapping x's data lies in (a binary dataset's file), or NULL: x on the heap. */
    void *map;
    size_t map_len;
    int map_fd;             /* the file, open: a file cut inside its last page reads zeros there, no fault */
    char *map_path;         /* for the error */
    int map_shrank;         /* a read found the file shorter than the mapping (sticky) */
    double map_checked;     /* when a batch last looked at the file's size (time_now) */
    int map_held;           /* holds the SIGBUS handler (util_sigbus_hold) while mapped */
};

/* One batch: views into the dataset's buffers, valid until the next dataset_get_batch. */
struct Batch {
    struct Tensor *x;       /* rows x D */
    struct Tensor *y;       /* rows x L targets, or NULL */
    const uint32_t *cls;    /* rows class indices, or NULL */
    uint64_t rows;
    uint64_t batch_rows;    /* rows of the whole batch (dataset_get_batch_part: every part's) */
    const struct ParCopies *x_copies; /* x's data, one copy per thread (copy 0 is x's), or NULL */
};

/* Reads a whole matrix file (CSV or binary "data" tensor) as float64 rows into a new
 * (rows x cols) tensor of the given dtype. Returns 0, or -1 with "file:line:col: ..." in err. */
int csv_read_matrix(const char *path, uint32_t dtype, struct Tensor **out, char *err, size_t errlen);

/* Loads features and (optionally, y_path may be NULL) labels. n_classes > 0 means the
 * labels are class indices: one integer per row in [0, n_classes), kept as integers
 * (ds->cls) from here on. Checks that the row counts agree. */
int dataset_load(struct Dataset *ds, const char *x_path, const char *y_path, uint32_t dtype,
                 uint64_t n_classes, char *err, size_t errlen);
void dataset_free(struct Dataset *ds);
/* Bytes the loaded dataset holds (features, labels, order): what memory checks count as
 * used. Mapped features count too: they take address space and, to train at speed,
 * memory (page cache, which the processes mapping the file share). */
uint64_t dataset_bytes(const struct Dataset *ds);
/* -1 with "file: the file shrank while it was being read ..." in err when a read of ds's
 * mapped file failed (a function below returned -1 for ds), else 0. */
int dataset_error(const struct Dataset *ds, char *err, size_t errlen);

/* Per-feature statistics (kind: config_parser.h enum NormKind) from ds->x: the network sees (x - shift) * scale.
 * minmax: shift = min, scale = 1/(max-min); standard: shift = mean, scale = 1/std
 * (population std); a constant feature gets scale 1. New tensors of shape (D).
 * Returns 0, or -1 (both NULL) when the mapped file shrank. */
int dataset_norm_stats(struct Dataset *ds, int kind, struct Tensor **shift, struct Tensor **scale);
/* In place; mapped data becomes a private copy first (the file is never written).
 * Returns 0, or -1 when the mapped file shrank (ds unchanged). */
int dataset_normalize(struct Dataset *ds, const struct Tensor *shift, const struct Tensor *scale);

void dataset_shuffle_indices(struct Dataset *ds, struct Rng *rng);  /* Fisher-Yates on order */
uint64_t dataset_num_batches(const struct Dataset *ds, uint64_t batch_size); /* last partial one counts */
/* Gathers batch batch_index (in `order`) into the dataset's batch buffers and points b
 * at them (b->y and b->cls NULL where the dataset has none). No heap use after the
 * first call with this batch_size. Returns 0, or -1 when the mapped file shrank (b's
 * shape is set, its values are not). A read past the end of a cut file faults and is
 * caught; a file cut inside a page reads zeros there without one, and only its size
 * tells: a batch looks at the size when DATASET_CHECK_S has passed since it was last
 * looked at (an fstat: 2.6 us on the calling thread between the gather and the step,
 * on this project's VM, where the MLP's step at 2 threads takes 95-150 us), and
 * dataset_check looks now. So a caller that trusts what it read (to save a model, to
 * print results) calls dataset_check first: a batch read before a check that finds
 * the file whole was read whole. */
#define DATASET_CHECK_S 1e-3
int dataset_get_batch(struct Dataset *ds, uint64_t batch_index, uint64_t batch_size, struct Batch *b);
/* 0, or -1 when a read of ds's mapped file faulted or the file is shorter now than when
 * it was mapped; 0 for data on the heap. */
int dataset_check(struct Dataset *ds);

/* Part `part` of `parts` of the same batch: its contiguous rows [rows x part / parts,
 * rows x (part + 1) / parts) (data-parallel training: train.h TrainComm), rows being
 * b->batch_rows; b->rows may be 0. Returns as dataset_get_batch. */
int dataset_get_batch_part(struct Dataset *ds, uint64_t batch_index, uint64_t batch_size, uint64_t part,
                           uint64_t parts, struct Batch *b);

/* Holds n_held samples out of ds (0 < n_held < ds->n) into *held: a Fisher-Yates
 * permutation drawn from rng picks its last n_held as the held-out ones; both parts
 * keep the file's order. ds keeps the rest (its order reset to the identity). Both parts
 * are private copies (mapped data too). Returns 0, or -1 when the mapped file shrank
 * (ds unchanged, held empty). */
int dataset_split(struct Dataset *ds, struct Dataset *held, uint64_t n_held, struct Rng *rng);

/* Writes ds as a DLASM1 binary dataset. */
int dataset_save_binary(const struct Dataset *ds, const char *path, char *err, size_t errlen);

#endif
