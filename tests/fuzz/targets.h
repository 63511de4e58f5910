/* Fuzz targets: each feeds one input, through a file as the programs get it, to the
 * entry points train and infer use (config_read_file + config_parse_text,
 * dataset_load, model_load, model_from_file, model_assign). A clean error return is
 * success; a crash, a sanitizer report, an exit (a panic), a leak, a hang or a large
 * allocation is a finding.
 *
 * The same functions serve the libFuzzer binaries (make fuzz, fuzz_main.c) and the
 * replay of committed inputs in make tests (tests/test_fuzz.c), so a finding is
 * replayed exactly as it was found. */
#ifndef MINIDL_FUZZ_TARGETS_H
#define MINIDL_FUZZ_TARGETS_H

#include <stddef.h>
#include <stdint.h>

/* Each returns 0 (libFuzzer's convention); findings abort or crash. */
int fuzz_config(const uint8_t *data, size_t size);      /* a config file */
int fuzz_csv_data(const uint8_t *data, size_t size);    /* a data CSV, both dtypes, then normalised and batched */
int fuzz_csv_labels(const uint8_t *data, size_t size);  /* a labels CSV: class indices and regression targets */
int fuzz_bin_dataset(const uint8_t *data, size_t size); /* a binary dataset alone, and as data and labels together */
int fuzz_model(const uint8_t *data, size_t size);       /* a model file with its own trailer config and a fixed one */
int fuzz_checkpoint(const uint8_t *data, size_t size);  /* a checkpoint resumed (train --resume) by a fixed config */
/* A new reader gets a function here, a row in fuzz_targets[], a name in the Makefile's
 * FUZZ_TARGETS and seeds under tests/fuzz/corpus/NAME (make_seeds.sh). */

struct FuzzTarget {
    const char *name;   /* its corpus and regressions folder under tests/fuzz/ */
    int (*run)(const uint8_t *data, size_t size);
};
extern const struct FuzzTarget fuzz_targets[];
extern const size_t fuzz_n_targets;

/* The target called name, or NULL. */
const struct FuzzTarget *fuzz_target(const char *name);
/* Removes the temporary folder (also done at exit, which a test's child skips). */
void fuzz_cleanup(void);

#endif
