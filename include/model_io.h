/* model_io: the DLASM1 container of named tensors, with the optional DLCFG1 trailer.
 *
 *   "DLASM1\0" | uint32 n_tensors |
 *   n_tensors x { uint32 name_len | name (no NUL) | uint32 dtype | uint32 ndim |
 *                 uint64 shape[ndim] | raw row-major data }
 *   optional: "DLCFG1\0" | uint32 len | config text | uint32 crc32 of every byte before it
 * All integers little-endian, no padding. The same container holds binary datasets
 * (tensors "data" and "labels").
 *
 * Loading validates every length against the file size before allocating, checks the
 * checksum, and reports errors as "path: tensor 'name': ..." in err. Saving writes a
 * temporary file in the same directory, checks every write, fsyncs and renames: a failed
 * save leaves any old file intact and no temporary file behind. Functions returning int
 * give 0 on success and -1 with a message in err. */
#ifndef MINIDL_MODEL_IO_H
#define MINIDL_MODEL_IO_H

#include "tensor.h"

#define MODEL_MAX_NAME 255

struct NamedTensor {
    const char *name;
    struct Tensor *t;
};

struct ModelFile {
    uint32_t n;
    struct NamedTensor *tensors;  /* names and tensors owned by the ModelFile */
    char *config_text;            /* NUL-terminated, or NULL without trailer */
    size_t config_len;
    /* model_load_mapped: the file's read-only mapping that one tensor's data lies in, and
     * the file, still open; map NULL when nothing is mapped. model_file_free unmaps and
     * closes them unless the caller took them (map set to NULL). */
    void *map;
    size_t map_len;
    int map_fd;
};

uint32_t crc32_ieee(uint32_t crc, const void *data, size_t n); /* zlib's crc32: start with 0 */

int model_save(const char *path, const struct NamedTensor *ts, uint32_t n,
               const char *config_text, char *err, size_t errlen);
/* The same atomic save for any bytes (the exporters' C and ONNX files): the file is
 * either the old one or all n bytes, never a part. */
int model_save_bytes(const char *path, const void *data, size_t n, char *err, size_t errlen);
int model_load(const char *path, struct ModelFile *mf, char *err, size_t errlen);
/* As model_load, except for the tensor called `name` when it is stored in `dtype` at a
 * file offset aligned for that dtype: its data is not read but mapped (a shared
 * read-only mapping of the whole file, mf->map), so processes that load one file share
 * its page cache instead of holding a copy each; the tensor points into the mapping and
 * does not own it. Everything else is checked and read as model_load does. Reading the
 * mapped data faults (SIGBUS) once another program truncates the file: such reads go
 * through util_catch_sigbus. */
int model_load_mapped(const char *path, const char *name, uint32_t dtype, struct ModelFile *mf, char *err,
                      size_t errlen);
void model_file_free(struct ModelFile *mf);
const struct Tensor *model_file_find(const struct ModelFile *mf, const char *name);
/* The bytes its tensors hold in memory (what loading it took, beyond the names). */
uint64_t model_file_bytes(const struct ModelFile *mf);
/* Copies each dst tensor from the tensor of the same name in mf, checking that it
 * exists with dst's dtype and shape; the error names the tensor and both shapes. */
int model_assign(const struct ModelFile *mf, const struct NamedTensor *dst, uint32_t n,
                 const char *path, char *err, size_t errlen);
/* Checks an output path for model_save. An existing path must be a regular file or a
 * directory: renaming over a device node, FIFO or socket would replace it (model_save
 * refuses those itself), and a directory cannot be replaced (rename says so). It must
 * not be the same file (device and inode, so through links too) as any of the n_inputs
 * paths (NULL entries are skipped). A path that does not exist passes: whether its
 * directory takes a new file is the caller's check. */
int model_check_output(const char *path, const char *const *inputs, uint32_t n_inputs, char *err, size_t errlen);
/* Is the file a DLASM1 container (by its magic)? */
int model_is_container(const char *path);

#endif
