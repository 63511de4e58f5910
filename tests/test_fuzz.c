/* The fuzz targets' committed inputs, replayed in make tests through the same target
 * functions the libFuzzer binaries run (tests/fuzz/targets.c), so no clang is needed:
 * the seed corpora (tests/fuzz/corpus/TARGET) show the targets work, the inputs long runs
 * found new code with (tests/fuzz/found/TARGET) keep that code covered, and every input
 * a fuzzing run failed on (tests/fuzz/regressions/TARGET) stays fixed. Each target's inputs
 * run in a child process: a crash or a panic's exit fails the test, naming the input. */
#include "test.h"
#include "fuzz/targets.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct Replay { const struct FuzzTarget *t; const char *dir; };

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The files of dir, sorted (none if it does not exist); free with free_names. */
static char **list_files(const char *dir, size_t *n)
{
    size_t cap = 16;
    char **names = malloc(cap * sizeof *names);
    *n = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.' || !strcmp(e->d_name, "README.md")) continue;
        if (*n == cap) names = realloc(names, (cap *= 2) * sizeof *names);
        names[(*n)++] = strdup(e->d_name);
    }
    if (d) closedir(d);
    qsort(names, *n, sizeof *names, by_name);
    return names;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

static int read_file(const char *path, unsigned char **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t cap = 1 << 16;
    *data = malloc(cap);
    *size = 0;
    for (size_t k; (k = fread(*data + *size, 1, cap - *size, f)) > 0;)
        if ((*size += k) == cap) *data = realloc(*data, cap *= 2);
    fclose(f);
    return 0;
}

/* In the child: every input of one folder through one target. */
static void replay_child(void *arg)
{
    const struct Replay *r = arg;
    size_t n;
    char **names = list_files(r->dir, &n), path[1024];
    for (size_t i = 0; i < n; i++) {
        unsigned char *data;
        size_t size;
        snprintf(path, sizeof path, "%s/%s", r->dir, names[i]);
        if (read_file(path, &data, &size)) continue;
        fprintf(stderr, "%s\n", path); /* the last one named is the one that failed */
        r->t->run(data, size);
        free(data);
    }
    free_names(names, n);
    fuzz_cleanup();
    fprintf(stderr, "ok %zu\n", n);
}

/* Replays tests/fuzz/KIND/TARGET for every target; returns the inputs replayed. */
static size_t replay_all(const char *kind)
{
    static char err[1 << 16];
    size_t total = 0;
    for (size_t i = 0; i < fuzz_n_targets; i++) {
        char dir[256];
        snprintf(dir, sizeof dir, "tests/fuzz/%s/%s", kind, fuzz_targets[i].name);
        struct Replay r = {&fuzz_targets[i], dir};
        int rc = test_run_child(replay_child, &r, err, sizeof err);
        const char *ok = strstr(err, "ok ");
        EXPECT_MSG(rc == 0 && ok, "fuzz target %s: exit %d replaying %s; its stderr ends: %s", fuzz_targets[i].name,
                   rc, dir, strlen(err) > 1500 ? err + strlen(err) - 1500 : err);
        if (ok) total += strtoul(ok + 3, NULL, 10);
    }
    return total;
}

TEST(fuzz_corpora_replay)
{
    EXPECT_MSG(replay_all("corpus") >= 50, "the seed corpora under tests/fuzz/corpus/ are missing");
}

/* What the long runs found (tests/fuzz/found/TARGET): inputs that reached new code. */
TEST(fuzz_found_replay)
{
    EXPECT_MSG(replay_all("found") >= 2000, "the found corpora under tests/fuzz/found/ are missing");
}

TEST(fuzz_regressions_replay)
{
    replay_all("regressions");
}
