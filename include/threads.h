/* threads: the worker pool every parallel op runs on, and the rule that keeps results
 * the same on any number of threads.
 *
 * par_run(n, fn, ctx) calls fn(ctx, task, worker) once for every task < n, spread over
 * the pool's threads (the caller is worker 0 and works too), and returns when all are
 * done. Tasks must be independent: each writes its own part of the output, and what a
 * task computes must not depend on how many tasks or threads there are. So an op is
 * split over outputs (rows, channels, output tiles), never inside a reduction; where a
 * sum over samples cannot be avoided it runs in fixed-size chunks whose partial sums
 * are added in chunk order by one task. `worker` (< threads_count()) only picks where
 * a task keeps or reads its own data (par_scratch, par_copy), never what it computes.
 *
 * The pool holds threads_count() - 1 workers. Between jobs they spin for about a
 * millisecond, then sleep on a condition variable: no core stays busy while training
 * waits on I/O. par_run from inside a task runs the tasks on the calling thread. */
#ifndef MINIDL_THREADS_H
#define MINIDL_THREADS_H

#include <stddef.h>

#define THREADS_MAX 1024

/* The cores this process may run on: its affinity mask, capped by a cgroup CPU quota
 * (cgroup v2 cpu.max or v1 cfs_quota_us/cfs_period_us), at least 1. */
int threads_available(void);
/* Sets the pool's size (1..THREADS_MAX), starting or stopping workers; not from a task. */
void threads_set(int n);
int threads_count(void);
/* MINIDL_THREADS, or threads_available() when unset. Returns -1 when the variable is
 * set but not a whole number in 1..THREADS_MAX. */
int threads_from_env(void);
/* Parses an option value "N" (1..THREADS_MAX): the count, or -1. */
int threads_parse(const char *s);

typedef void (*par_fn)(void *ctx, size_t task, int worker);
void par_run(size_t n_tasks, par_fn fn, void *ctx);

/* A buffer of at least `bytes` for the worker's own use inside a task (a split input,
 * partial sums): allocated by the thread that asks, kept between jobs, and grown (its
 * contents lost) when more is asked for. Call it with the task's `worker`, from inside
 * the task. Made with posix_memalign, not mem.h's allocators: their debug counters
 * belong to the main thread, and a worker may grow its buffer during a job. On this
 * project's 2-core VM a worker's scratch carved from one buffer the main thread
 * allocated made the conv backward's 2-thread time 515 us, its own buffer 345-355 us
 * (one thread: 550 us), for reasons not found; see the README. */
void *par_scratch(int worker, size_t bytes);

/* Copies of one buffer, one per worker: copy[w] (copy[0] the buffer itself) holds the
 * same bytes, for worker w's tasks to read. Data that every thread reads whole (a
 * batch: each thread's part of a gemm over it reads all its rows) then crosses between
 * the cores once, as each thread makes its own copy from the source, instead of in
 * every op that reads it. Worth it at 2 threads on this project's VM (the README); with
 * more, each thread's copying would grow with the count while the crossing it saves
 * does not. */
#define PAR_COPIES_MAX 2
struct ParCopies {
    int n;
    const void *copy[PAR_COPIES_MAX];
};

/* Worker w's copy of buffer p, whose copies c holds (c NULL: there are none). */
static inline const void *par_copy(const struct ParCopies *c, const void *p, int worker)
{
    return c && worker < c->n ? c->copy[worker] : p;
}

/* Below this much work (in bytes touched or flops, the caller's measure) an op runs
 * on the calling thread: a job's start and barrier cost a few microseconds. */
#define PAR_MIN_WORK ((size_t)1 << 15)
/* How many tasks to cut `work` units into: enough for every thread (a few each, for
 * balance), none smaller than min_per_task units; 1 when threads are off or the work
 * is small. The count may depend on the thread count: tasks must not. */
size_t par_tasks(size_t work, size_t min_per_task);
/* A map's chunk: elements per task for n elements of elem_bytes each, the tasks
 * par_tasks gives (none under PAR_MAP_MIN_BYTES), rounded up to whole 64-element runs
 * (whole cache lines and vectors for both dtypes); at least 1. */
#define PAR_MAP_MIN_BYTES ((size_t)16 << 10)
size_t par_map_chunk(size_t n, size_t elem_bytes);
/* Where thread k's share starts (k = threads_count(): the end) when n items are run as
 * par_run tasks of grain items each: the items its worker runs unless it is late and
 * another takes them. A producer that cuts its output here leaves each item on the
 * thread that will read it (gemm_mask's row_grain). */
size_t par_share_at(size_t n, size_t grain, size_t k);

#ifdef MINIDL_PROFILE
/* The pool's jobs as they run, for a developer's profile of a step: only in a library
 * built with MINIDL_PROFILE (make profile; bench/profile/profile_step.c reads it).
 * Between par_profile_start and par_profile_stop, each par_run of one or more tasks
 * from outside a task is recorded in call order with its function, task count, and
 * start and end (ns of CLOCK_MONOTONIC), and each of its tasks with the worker that ran
 * it and when, until the caller's arrays are full; a par_run inside a task is part of
 * that task. Start and stop from outside a task. A recorded task costs two clock reads
 * and an atomic add (some 80 ns): the profiled step is a little slower than the default
 * build's. */
struct ParJobRecord {
    par_fn fn;
    size_t n_tasks;
    unsigned long long t0, t1;
};
struct ParTaskRecord {
    size_t job;  /* its job's index in the job records */
    size_t task;
    int worker;
    unsigned long long t0, t1;
};
void par_profile_start(struct ParJobRecord *jobs, size_t job_cap, struct ParTaskRecord *tasks, size_t task_cap);
/* The jobs recorded so far (a step's boundaries, read between steps). */
size_t par_profile_jobs(void);
/* Stops recording; the tasks recorded (their order is the order they ended in). */
size_t par_profile_stop(void);
#endif

#endif
