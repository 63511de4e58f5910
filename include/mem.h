/* mem: the one allocator family of minidl, and a bump arena for per-step data.
 *
 * Every heap block in the product comes from mem_alloc / mem_alloc_aligned and goes
 * back through mem_free. Allocation failure panics, naming the size: callers never
 * see NULL. A debug counter of live blocks and of allocation calls lets tests assert
 * that nothing leaks and that a steady-state training step does not touch the heap;
 * mem_fail_after() injects a failure for tests of the error paths. */
#ifndef MINIDL_MEM_H
#define MINIDL_MEM_H

#include <stddef.h>
#include <stdint.h>

void *mem_alloc(size_t size);                        /* never NULL; size 0 is allowed */
void *mem_alloc_zeroed(size_t size);                 /* as mem_alloc, all bytes zero */
void *mem_alloc_aligned(size_t size, size_t align);  /* align: power of two >= 8 */
void *mem_realloc(void *p, size_t size);             /* p from mem_alloc (not aligned) */
void mem_free(void *p);                              /* any block from above; NULL is a no-op */

int64_t mem_live_blocks(void);       /* blocks allocated and not yet freed */
uint64_t mem_alloc_calls(void);      /* allocation calls since start (monotonic) */
void mem_fail_after(int64_t n);      /* the (n+1)-th allocation from now fails; -1: never */
size_t mem_peak_bytes(void);         /* most heap bytes live at once since the last reset */
void mem_reset_peak(void);           /* peak := what is live now */

/* The most bytes this process can hold: the smallest of physical memory, RLIMIT_AS,
 * RLIMIT_DATA and the cgroup's memory.max. Input readers check what they are about to
 * allocate against it, so input too large for memory is a clear error rather than an
 * out-of-memory panic or a kill by the kernel (overcommit lets malloc succeed).
 * mem_set_limit(n) overrides it (tests); 0 goes back to the system's. */
size_t mem_limit(void);
void mem_set_limit(size_t n);

/* Arena: a bump allocator for the nodes, tensors and temporaries of one step.
 * Blocks are chained while a step grows it; arena_reset() frees everything at once
 * and, if the step needed more than one block, replaces them by one block as large
 * as the high-water mark, so the next identical step makes no heap call at all. */
struct Arena {
    char *base;       /* current block */
    size_t cap, used; /* of the current block */
    struct ArenaBlock *old; /* blocks filled earlier in this step */
    size_t total;     /* bytes handed out since the last reset */
    size_t high;      /* largest total seen at a reset */
};

void arena_init(struct Arena *a, size_t initial_cap);
void *arena_alloc(struct Arena *a, size_t size);   /* 64-byte aligned, uninitialised */
void *arena_alloc_zeroed(struct Arena *a, size_t size);
void arena_reset(struct Arena *a);
void arena_free(struct Arena *a);

#endif
