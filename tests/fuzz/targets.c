/* The fuzz targets (targets.h). Inputs are written to files in a private temporary
 * folder (/dev/shm where there is one) because the programs read files: the readers'
 * own open, stat, mmap and container probing are part of what is tested. */
#include "targets.h"
#include "checkpoint.h"
#include "config_parser.h"
#include "dataset.h"
#include "mem.h"
#include "model.h"
#include "model_io.h"
#include "train.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The fixed network of the model and checkpoint targets: every layer kind, C,H,W input,
 * normalisation, validation (make_seeds.sh trains its seeds with the same text). */
static const char fixed_config[] =
    "[model]\n"
    "input_shape=1,4,4\n"
    "layer=Conv2d,1,2,3,3,1,1\n"
    "activation=ReLU\n"
    "layer=Linear,32,3\n"
    "activation=Tanh\n"
    "layer=Linear,3,3\n"
    "activation=Softmax\n"
    "[train]\n"
    "epochs=3\n"
    "batch_size=2\n"
    "normalize=standard\n"
    "val_split=0.5\n";

static char dir[256];

void fuzz_cleanup(void)
{
    if (!dir[0]) return;
    static const char *const names[] = {"input", "input2", "fixed.ini", "one.csv"};
    char p[512];
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
    dir[0] = 0;
}

static const char *path_of(const char *name)
{
    static char paths[4][512];
    static int next;
    if (!dir[0]) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        snprintf(dir, sizeof dir, "%s/minidl-fuzz.XXXXXX", base);
        if (!mkdtemp(dir)) {
            perror("fuzz: mkdtemp");
            abort();
        }
        static int registered;
        if (!registered++) atexit(fuzz_cleanup);
    }
    char *p = paths[next++ % 4];
    snprintf(p, 512, "%s/%s", dir, name);
    return p;
}

/* Writes the bytes to the file name in the private folder; returns its path. */
static const char *put_file(const char *name, const void *data, size_t size)
{
    const char *p = path_of(name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size) || close(fd) != 0) {
        perror("fuzz: writing the input");
        abort();
    }
    return p;
}

/* Every block a target allocates must be freed again, error paths included. */
static void check_no_leak(int64_t before, const char *target)
{
    int64_t now = mem_live_blocks();
    if (now != before) {
        fprintf(stderr, "fuzz %s: %lld blocks leaked\n", target, (long long)(now - before));
        abort();
    }
}

int fuzz_config(const uint8_t *data, size_t size)
{
    int64_t live = mem_live_blocks();
    const char *p = put_file("input", data, size);
    char err[1024];
    size_t len;
    char *text = config_read_file(p, &len, err, sizeof err);
    if (text) {
        struct TrainConfig cfg;
        config_parse_text(text, len, p, &cfg, err, sizeof err);
        mem_free(text);
    }
    check_no_leak(live, "config");
    return 0;
}

/* What train does with its data after loading: statistics, normalisation, a batch. */
static void use_dataset(struct Dataset *ds, int norm)
{
    struct Tensor *shift, *scale;
    if (dataset_norm_stats(ds, norm, &shift, &scale)) return; /* only a file cut under us fails */
    dataset_normalize(ds, shift, scale);
    tensor_free(shift);
    tensor_free(scale);
    struct Rng rng;
    rng_seed(&rng, 42);
    dataset_shuffle_indices(ds, &rng);
    struct Batch b;
    uint64_t bs = 3, nb = dataset_num_batches(ds, bs);
    dataset_get_batch(ds, nb - 1, bs, &b); /* the last, possibly partial, batch */
}

int fuzz_csv_data(const uint8_t *data, size_t size)
{
    int64_t live = mem_live_blocks();
    const char *p = put_file("input", data, size);
    char err[1024];
    for (uint32_t dt = 0; dt < DT_COUNT; dt++) {
        struct Dataset ds;
        if (dataset_load(&ds, p, NULL, dt, 0, err, sizeof err)) continue;
        use_dataset(&ds, dt ? NORM_STANDARD : NORM_MINMAX);
        dataset_free(&ds);
    }
    check_no_leak(live, "csv_data");
    return 0;
}

int fuzz_csv_labels(const uint8_t *data, size_t size)
{
    int64_t live = mem_live_blocks();
    const char *p = put_file("input", data, size), *one = put_file("one.csv", "1\n", 2);
    char err[1024];
    /* Class indices (10 classes, and many), then regression targets, in both dtypes.
     * The data has one row, so most inputs end at the row-count check, after the labels
     * were read in full; the input as its own data goes on to batching. */
    static const uint64_t classes[3] = {10, 70000, 0};
    for (uint32_t dt = 0; dt < DT_COUNT; dt++)
        for (int k = 0; k < 3; k++) {
            struct Dataset ds;
            if (!dataset_load(&ds, one, p, dt, classes[k], err, sizeof err)) dataset_free(&ds);
            if (dataset_load(&ds, p, p, dt, classes[k], err, sizeof err)) continue;
            struct Batch b;
            dataset_get_batch(&ds, 0, 2, &b);
            dataset_free(&ds);
        }
    check_no_leak(live, "csv_labels");
    return 0;
}

int fuzz_bin_dataset(const uint8_t *data, size_t size)
{
    int64_t live = mem_live_blocks();
    const char *p = put_file("input", data, size), *one = put_file("one.csv", "1\n", 2);
    char err[1024];
    for (uint32_t dt = 0; dt < DT_COUNT; dt++) {
        struct Dataset ds;
        if (!dataset_load(&ds, p, NULL, dt, 0, err, sizeof err)) { /* alone, as infer reads data */
            use_dataset(&ds, NORM_STANDARD);
            dataset_free(&ds);
        }
        static const uint64_t classes[2] = {0, 10};
        for (int k = 0; k < 2; k++) {
            if (!dataset_load(&ds, p, p, dt, classes[k], err, sizeof err)) { /* data and labels together */
                use_dataset(&ds, NORM_MINMAX);
                dataset_free(&ds);
            }
            if (!dataset_load(&ds, one, p, dt, classes[k], err, sizeof err)) dataset_free(&ds); /* labels only */
        }
    }
    check_no_leak(live, "bin_dataset");
    return 0;
}

static uint32_t rd32(const uint8_t *b) { return b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24; }

/* The input with its trailer's checksum made right, or NULL when it has no trailer or
 * the checksum already holds. Mutations inside a model file almost never keep the CRC
 * of every byte valid: without this the fuzzer would not get past it to the config. */
static uint8_t *fix_trailer_crc(const uint8_t *data, size_t size)
{
    for (size_t at = size >= 15 ? size - 15 : 0; size >= 15; at--) {
        if (!memcmp(data + at, "DLCFG1", 7) && (uint64_t)at + 15 + rd32(data + at + 7) == size) {
            uint32_t crc = crc32_ieee(0, data, size - 4);
            if (crc == rd32(data + size - 4)) return NULL;
            uint8_t *fixed = malloc(size);
            memcpy(fixed, data, size);
            for (int i = 0; i < 4; i++) fixed[size - 4 + i] = (uint8_t)(crc >> (8 * i));
            return fixed;
        }
        if (at == 0) break;
    }
    return NULL;
}

/* infer and dlexport: the model built from its own config, or from --config. */
static void load_model(const char *p, const char *config)
{
    struct Model m;
    char err[1024];
    if (!model_from_file(&m, p, config, err, sizeof err)) model_free(&m);
}

/* train --init: the file's weights assigned to a network built from a fixed config. */
static void init_from(const char *p, const struct TrainConfig *cfg)
{
    struct Model m;
    struct ModelFile mf;
    char err[1024];
    model_init(&m, cfg, 1);
    if (!model_load(p, &mf, err, sizeof err)) {
        model_assign(&mf, m.named, m.n_named, p, err, sizeof err);
        model_file_free(&mf);
    }
    model_free(&m);
}

static struct TrainConfig fixed;
static const char *fixed_path;

static void fixed_init(void)
{
    char err[1024];
    if (fixed_path) return;
    fixed_path = put_file("fixed.ini", fixed_config, sizeof fixed_config - 1);
    if (config_parse_text(fixed_config, sizeof fixed_config - 1, "fixed.ini", &fixed, err, sizeof err)) {
        fprintf(stderr, "fuzz: the fixed config: %s\n", err);
        abort();
    }
}

int fuzz_model(const uint8_t *data, size_t size)
{
    fixed_init();
    int64_t live = mem_live_blocks();
    const char *p = put_file("input", data, size);
    load_model(p, NULL);
    load_model(p, fixed_path);
    init_from(p, &fixed);
    uint8_t *fixed_crc = fix_trailer_crc(data, size);
    if (fixed_crc) {
        const char *q = put_file("input2", fixed_crc, size);
        free(fixed_crc);
        load_model(q, NULL);
    }
    check_no_leak(live, "model");
    return 0;
}

/* The input's own statistics (when they have the model's shape) stand for the data's:
 * with others check_norm stops the restore, as it should for other data. */
static void copy_norm(struct Model *m, const struct ModelFile *mf)
{
    uint64_t d = m->cfg.input_dim;
    struct Tensor *t[2];
    const char *names[2] = {"input.shift", "input.scale"};
    for (int i = 0; i < 2; i++) {
        const struct Tensor *f = model_file_find(mf, names[i]);
        t[i] = tensor_zeros(1, &d, m->cfg.dtype);
        if (f && f->dtype == t[i]->dtype && tensor_same_shape(f, t[i]))
            memcpy(t[i]->data, f->data, d * dtype_size(f->dtype));
    }
    model_set_norm(m, t[0], t[1]);
}

/* train --resume: the checkpoint opened against the fixed config, then restored into
 * its network, optimizer and run, as train does once its data is loaded. */
static void resume(const char *p)
{
    struct Checkpoint ck;
    char err[1024];
    if (!checkpoint_open(&ck, p, &fixed, err, sizeof err)) {
        struct Model m;
        struct Trainer tr;
        struct TrainRun run;
        const uint64_t *c = ck.counters;
        model_init(&m, &fixed, fixed.seed);
        copy_norm(&m, &ck.mf);
        train_init(&tr, &m);
        /* the samples the checkpoint names (bounded), else the check stops at once */
        train_run_init(&run, &m, (int)c[CK_VALIDATE], c[CK_N_TRAIN] < 1000 ? c[CK_N_TRAIN] : 3,
                       c[CK_N_VAL] < 1000 ? c[CK_N_VAL] : 3);
        checkpoint_restore(&ck, &tr, &run, err, sizeof err);
        train_run_free(&run);
        train_free(&tr);
        model_free(&m);
    }
    checkpoint_close(&ck);
}

int fuzz_checkpoint(const uint8_t *data, size_t size)
{
    fixed_init();
    int64_t live = mem_live_blocks();
    resume(put_file("input", data, size));
    uint8_t *fixed_crc = fix_trailer_crc(data, size);
    if (fixed_crc) {
        resume(put_file("input2", fixed_crc, size));
        free(fixed_crc);
    }
    check_no_leak(live, "checkpoint");
    return 0;
}

const struct FuzzTarget fuzz_targets[] = {
    {"config", fuzz_config},       {"csv_data", fuzz_csv_data}, {"csv_labels", fuzz_csv_labels},
    {"bin_dataset", fuzz_bin_dataset}, {"model", fuzz_model}, {"checkpoint", fuzz_checkpoint},
};
const size_t fuzz_n_targets = sizeof fuzz_targets / sizeof *fuzz_targets;

const struct FuzzTarget *fuzz_target(const char *name)
{
    for (size_t i = 0; i < fuzz_n_targets; i++)
        if (!strcmp(fuzz_targets[i].name, name)) return &fuzz_targets[i];
    return NULL;
}
