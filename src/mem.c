/* mem: allocator family with a debug counter, and the step arena. */
#include "mem.h"
#include "utils.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

/* Debug counters. They describe the process's heap use, not training state. */
static int64_t live_blocks;
static uint64_t alloc_calls;
static int64_t fail_countdown = -1;
static size_t live_bytes, peak_bytes; /* usable sizes, as glibc reports them */
static size_t limit_override;

/* A large block (a dataset, a parse's matrix) asks for 2 MB pages where the kernel makes
 * them on request (transparent huge pages in "madvise" mode, Debian's default): a page
 * fault costs microseconds on a virtual machine, and a 188 MB dataset takes 47 000 of
 * them in 4 KB pages, 94 in 2 MB ones (its load here: 0.51 s -> 0.06-0.3 s). Only the
 * whole 2 MB pages inside the block are asked for; a hint, ignored where unsupported.
 * Every allocator calls it (through note_live) as soon as it has the block: glibc maps
 * blocks this large fresh, so a new one is not written yet; a grown one gets the hint
 * for the pages it has not touched. */
#define HUGE_MIN_BYTES ((size_t)4 << 20)
#define HUGE_PAGE ((uintptr_t)2 << 20)

static void huge_hint(void *p, size_t size)
{
#ifdef MADV_HUGEPAGE
    if (size < HUGE_MIN_BYTES) return;
    uintptr_t lo = ((uintptr_t)p + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1), hi = ((uintptr_t)p + size) & ~(HUGE_PAGE - 1);
    if (hi > lo) (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
#else
    (void)p, (void)size;
#endif
}

static void note_live(void *p)
{
    size_t size = malloc_usable_size(p);
    huge_hint(p, size);
    live_bytes += size;
    if (live_bytes > peak_bytes) peak_bytes = live_bytes;
}

static void note_alloc(size_t size)
{
    alloc_calls++;
    if (fail_countdown == 0) {
        fail_countdown = -1;
        panic("out of memory allocating %zu bytes (injected failure)", size);
    }
    if (fail_countdown > 0) fail_countdown--;
}

void *mem_alloc(size_t size)
{
    note_alloc(size);
    void *p = malloc(size ? size : 1);
    if (!p) panic("out of memory allocating %zu bytes", size);
    live_blocks++;
    note_live(p);
    return p;
}

void *mem_alloc_zeroed(size_t size)
{
    note_alloc(size);
    void *p = calloc(1, size ? size : 1);
    if (!p) panic("out of memory allocating %zu bytes", size);
    live_blocks++;
    note_live(p);
    return p;
}

void *mem_alloc_aligned(size_t size, size_t align)
{
    CHECK(align >= sizeof(void *) && (align & (align - 1)) == 0, "bad alignment %zu", align);
    note_alloc(size);
    void *p = NULL;
    if (posix_memalign(&p, align, size ? size : 1) != 0)
        panic("out of memory allocating %zu bytes aligned to %zu", size, align);
    live_blocks++;
    note_live(p);
    return p;
}

void *mem_realloc(void *p, size_t size)
{
    if (!p) return mem_alloc(size);
    note_alloc(size);
    size_t old = malloc_usable_size(p);
    void *q = realloc(p, size ? size : 1);
    if (!q) panic("out of memory reallocating to %zu bytes", size);
    live_bytes -= old;
    note_live(q);
    return q;
}

void mem_free(void *p)
{
    if (!p) return;
    live_blocks--;
    live_bytes -= malloc_usable_size(p);
    free(p);
}

int64_t mem_live_blocks(void) { return live_blocks; }
uint64_t mem_alloc_calls(void) { return alloc_calls; }
void mem_fail_after(int64_t n) { fail_countdown = n; }
size_t mem_peak_bytes(void) { return peak_bytes; }
void mem_reset_peak(void) { peak_bytes = live_bytes; }

/* ---- how much memory there is ---- */

static size_t min_size(size_t a, uint64_t b) { return b < a ? (size_t)b : a; }

/* A cgroup's limit (v2 in a cgroup namespace, or v1), best effort: SIZE_MAX without one. */
static size_t cgroup_limit(void)
{
    static const char *const files[] = {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        FILE *f = fopen(files[i], "r");
        if (!f) continue;
        unsigned long long v;
        int ok = fscanf(f, "%llu", &v) == 1; /* "max" reads as no number: no limit */
        fclose(f);
        return ok ? min_size(SIZE_MAX, v) : SIZE_MAX;
    }
    return SIZE_MAX;
}

size_t mem_limit(void)
{
    if (limit_override) return limit_override;
    size_t n = SIZE_MAX;
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0) n = min_size(n, (uint64_t)pages * (uint64_t)page);
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) n = min_size(n, rl.rlim_cur);
    if (getrlimit(RLIMIT_DATA, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) n = min_size(n, rl.rlim_cur);
    return min_size(n, cgroup_limit());
}

void mem_set_limit(size_t n) { limit_override = n; }

/* ---- arena ---- */

struct ArenaBlock {
    struct ArenaBlock *next;
    char *base;
};

#define ARENA_ALIGN 64

void arena_init(struct Arena *a, size_t initial_cap)
{
    memset(a, 0, sizeof *a);
    if (initial_cap < 4096) initial_cap = 4096;
    a->base = mem_alloc_aligned(initial_cap, ARENA_ALIGN);
    a->cap = initial_cap;
}

static void arena_grow(struct Arena *a, size_t need)
{
    struct ArenaBlock *b = mem_alloc(sizeof *b);
    b->base = a->base;
    b->next = a->old;
    a->old = b;
    size_t cap = a->cap * 2;
    if (cap < need) cap = need;
    a->base = mem_alloc_aligned(cap, ARENA_ALIGN);
    a->cap = cap;
    a->used = 0;
}

void *arena_alloc(struct Arena *a, size_t size)
{
    size = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (size == 0) size = ARENA_ALIGN;
    if (a->used + size > a->cap) arena_grow(a, size);
    void *p = a->base + a->used;
    a->used += size;
    a->total += size;
    return p;
}

void *arena_alloc_zeroed(struct Arena *a, size_t size)
{
    void *p = arena_alloc(a, size);
    memset(p, 0, size);
    return p;
}

static void arena_free_old(struct Arena *a)
{
    while (a->old) {
        struct ArenaBlock *b = a->old;
        a->old = b->next;
        mem_free(b->base);
        mem_free(b);
    }
}

void arena_reset(struct Arena *a)
{
    if (a->total > a->high) a->high = a->total;
    if (a->old) {
        arena_free_old(a);
        /* One block that holds the whole step: the next step needs no heap. */
        mem_free(a->base);
        a->cap = a->high + a->high / 8;
        a->base = mem_alloc_aligned(a->cap, ARENA_ALIGN);
    }
    a->used = 0;
    a->total = 0;
}

void arena_free(struct Arena *a)
{
    arena_free_old(a);
    mem_free(a->base);
    memset(a, 0, sizeof *a);
}
