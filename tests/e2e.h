/* e2e: what the end-to-end tests share to run the real programs (found through
 * MINIDL_BIN, set by make tests) and to name scratch files. Each test file that
 * includes it gets its own output buffers. */
#ifndef MINIDL_E2E_H
#define MINIDL_E2E_H

#include "test.h"

#include <stdio.h>
#include <stdlib.h>

#define OUT_CAP (1 << 16)

static char out[OUT_CAP], err[OUT_CAP];

static inline const char *bin(void)
{
    const char *b = getenv("MINIDL_BIN");
    return b && *b ? b : "build";
}

/* Runs "<bin>/<prog> args" into out and err; returns the exit status (128+ for a signal). */
static inline int run(const char *prog, const char *args)
{
    static char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s/%s %s", bin(), prog, args);
    return test_run_cmd(cmd, out, sizeof out, err, sizeof err);
}

/* "<test dir>/name", from a ring of 16 buffers (a test may hold that many at once). */
static inline const char *tmp(const char *name)
{
    static char paths[16][512];
    static int next;
    char *p = paths[next++ % 16];
    snprintf(p, 512, "%s/%s", test_tmpdir(), name);
    return p;
}

#endif
