#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
/* threads: the worker pool (include/threads.h). One pool per process, like the kernel
 * table: it holds threads, never training state. Jobs are published by a generation
 * counter. Each thread owns a contiguous share of a job's tasks and takes them first, so
 * consecutive ops cut the same way (by samples, say) give a thread the same data, still
 * in its cache; a thread done with its share takes what is left of the others', so a
 * slow thread does not hold the job up. Results never depend on who ran what. */
#include "threads.h"
#include "utils.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How long an idle worker polls for the next job before it sleeps, and after how long
 * it starts yielding the core between polls. */
#define SPIN_NS 1000000
#define YIELD_AFTER_NS 100000

struct Pool {
    int n;                          /* threads, the caller included */
    pthread_t tid[THREADS_MAX];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_ulong gen;               /* job generation: a change means a new job */
    atomic_int sleepers;            /* workers waiting on cv */
    atomic_int quit;
    /* the job, written before gen is bumped */
    par_fn fn;
    void *ctx;
    size_t n_tasks;
    struct Share {                  /* thread w's tasks: [next, end), and its scratch */
        _Alignas(64) atomic_size_t next;
        size_t end;
        void *scratch;              /* par_scratch: touched by thread w alone */
        size_t scratch_cap;
        /* the last job (generation) worker w finished, in a line of its own: the caller
         * reads each worker's instead of all of them adding to one counter in turn */
        _Alignas(64) atomic_ulong done;
    } share[THREADS_MAX];
    unsigned long gen_at_start;     /* the generation when the workers were made */
};

static struct Pool pool = {.n = 1, .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
static _Thread_local int in_task, my_worker; /* my_worker: the thread's index while in a task */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

#ifdef MINIDL_PROFILE
#define PROF_NO_JOB ((size_t)-1)
static struct {
    struct ParJobRecord *jobs;
    struct ParTaskRecord *tasks;
    size_t job_cap, task_cap, n_jobs;
    atomic_size_t n_tasks;
    atomic_int on;
    /* The job whose tasks are recorded now, or PROF_NO_JOB: set by the thread that
     * publishes jobs before each one (so a worker sees it with the job), put back after. */
    size_t cur;
} prof = {.cur = PROF_NO_JOB};
static _Thread_local int prof_depth; /* tasks of this thread under way: only the outermost are recorded */

/* The record of a par_run about to start from outside a task, or NULL: none while
 * recording is off, the records are full, or the caller is inside a task of its own
 * (a one-task job runs its task on the caller, whose par_runs are then nested). */
static struct ParJobRecord *prof_job(size_t n_tasks, par_fn fn)
{
    if (!n_tasks || prof_depth || !atomic_load_explicit(&prof.on, memory_order_relaxed) || prof.n_jobs == prof.job_cap)
        return NULL;
    struct ParJobRecord *r = &prof.jobs[prof.n_jobs++];
    *r = (struct ParJobRecord){fn, n_tasks, now_ns(), 0};
    return r;
}

/* One task, timed, as a task of the current job: only an outermost task of a recorded job. */
static void prof_task(par_fn fn, void *ctx, size_t task, int worker)
{
    size_t job = prof.cur;
    if (job == PROF_NO_JOB || prof_depth) {
        fn(ctx, task, worker);
        return;
    }
    unsigned long long t0 = now_ns();
    prof_depth++;
    fn(ctx, task, worker);
    prof_depth--;
    size_t i = atomic_fetch_add_explicit(&prof.n_tasks, 1, memory_order_relaxed);
    if (i < prof.task_cap) prof.tasks[i] = (struct ParTaskRecord){job, task, worker, t0, now_ns()};
}

void par_profile_start(struct ParJobRecord *jobs, size_t job_cap, struct ParTaskRecord *tasks, size_t task_cap)
{
    CHECK(!in_task && !prof_depth, "par_profile_start from inside a parallel task");
    prof.jobs = jobs, prof.job_cap = job_cap, prof.n_jobs = 0;
    prof.tasks = tasks, prof.task_cap = task_cap;
    atomic_store(&prof.n_tasks, 0);
    atomic_store(&prof.on, 1);
}

size_t par_profile_jobs(void) { return prof.n_jobs; }

size_t par_profile_stop(void)
{
    CHECK(!in_task && !prof_depth, "par_profile_stop from inside a parallel task");
    atomic_store(&prof.on, 0);
    size_t n = atomic_load(&prof.n_tasks);
    return n < prof.task_cap ? n : prof.task_cap;
}
#define RUN_TASK(fn, ctx, task, worker) prof_task(fn, ctx, task, worker)
#else
#define RUN_TASK(fn, ctx, task, worker) (fn)(ctx, task, worker)
#endif

static void run_tasks(int worker)
{
    in_task = 1;
    my_worker = worker;
    for (int k = 0; k < pool.n; k++) { /* its own share, then the others' */
        struct Share *s = &pool.share[(worker + k) % pool.n];
        for (;;) {
            /* Another's share is looked at before a claim: threads that find it empty
             * then share its line instead of taking it from each other in turn. */
            if (k && atomic_load_explicit(&s->next, memory_order_relaxed) >= s->end) break;
            size_t t = atomic_fetch_add_explicit(&s->next, 1, memory_order_relaxed);
            if (t >= s->end) break;
            RUN_TASK(pool.fn, pool.ctx, t, worker);
        }
    }
    in_task = 0;
}

/* Waits until the generation differs from seen (or quit); returns the new one. */
static unsigned long wait_job(unsigned long seen)
{
    uint64_t start = now_ns(), t = start;
    for (int i = 0;; i++) {
        unsigned long g = atomic_load_explicit(&pool.gen, memory_order_acquire);
        if (g != seen || atomic_load(&pool.quit)) return g;
        if ((i & 63) == 63) {
            if ((t = now_ns()) - start > SPIN_NS) break;
            /* Past a short pure spin (the gap between a step's ops), yield: on a machine
             * with more threads than cores the others run. Sooner, a yield would hand
             * the core to any background process for a whole time slice. */
            if (t - start > YIELD_AFTER_NS) sched_yield();
        }
        cpu_relax();
    }
    pthread_mutex_lock(&pool.mu);
    atomic_fetch_add(&pool.sleepers, 1);
    unsigned long g;
    while ((g = atomic_load(&pool.gen)) == seen && !atomic_load(&pool.quit)) pthread_cond_wait(&pool.cv, &pool.mu);
    atomic_fetch_sub(&pool.sleepers, 1);
    pthread_mutex_unlock(&pool.mu);
    return g;
}

static void *worker_main(void *arg)
{
    /* Signals sent to the process (Ctrl-C, SIGTERM) go to the main thread, whose handlers
     * expect to run there; faults (SIGBUS of a shrinking mapped file) stay the thread's. */
    sigset_t all;
    sigfillset(&all);
    sigdelset(&all, SIGBUS), sigdelset(&all, SIGSEGV), sigdelset(&all, SIGFPE), sigdelset(&all, SIGILL);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    int id = (int)(intptr_t)arg;
    /* not the current generation: a job may have started before this thread ran */
    unsigned long seen = pool.gen_at_start;
    for (;;) {
        seen = wait_job(seen);
        if (atomic_load(&pool.quit)) break;
        run_tasks(id);
        atomic_store_explicit(&pool.share[id].done, seen, memory_order_release);
    }
    return NULL;
}

static void pool_stop(void)
{
    if (pool.n <= 1) return;
    pthread_mutex_lock(&pool.mu);
    atomic_store(&pool.quit, 1);
    pthread_cond_broadcast(&pool.cv);
    pthread_mutex_unlock(&pool.mu);
    for (int i = 1; i < pool.n; i++) {
        pthread_join(pool.tid[i], NULL);
        free(pool.share[i].scratch);
        pool.share[i].scratch = NULL, pool.share[i].scratch_cap = 0;
    }
    atomic_store(&pool.quit, 0);
    pool.n = 1;
}

/* A forked child has the caller's thread only: it runs alone (test children, and any
 * fork a user of the library makes). */
static void after_fork_child(void)
{
    pool.n = 1;
    pthread_mutex_init(&pool.mu, NULL);
    pthread_cond_init(&pool.cv, NULL);
    atomic_store(&pool.sleepers, 0);
}

void threads_set(int n)
{
    static int registered;
    if (!registered) registered = !pthread_atfork(NULL, NULL, after_fork_child);
    CHECK(n >= 1 && n <= THREADS_MAX, "thread count %d", n);
    CHECK(!in_task, "threads_set from inside a parallel task");
    if (n == pool.n) return;
    pool_stop();
    pool.gen_at_start = atomic_load(&pool.gen);
    for (int i = 1; i < n; i++) {
        int rc = pthread_create(&pool.tid[i], NULL, worker_main, (void *)(intptr_t)i);
        if (rc) fatal("cannot start thread %d of %d: %s", i + 1, n, strerror(rc));
        pool.n = i + 1;
    }
}

int threads_count(void) { return pool.n; }

/* Worker w's first task of n_tasks (w = pool.n: the end): the shares par_run hands out,
 * and par_share_at tells producers about. */
static size_t share_first(size_t n_tasks, size_t w) { return n_tasks * w / (size_t)pool.n; }

static void run_job(size_t n_tasks, par_fn fn, void *ctx)
{
    if (n_tasks == 0) return;
    if (pool.n == 1 || n_tasks == 1 || in_task) { /* inside a task: that task's worker */
        for (size_t t = 0; t < n_tasks; t++) RUN_TASK(fn, ctx, t, in_task ? my_worker : 0);
        return;
    }
    pool.fn = fn;
    pool.ctx = ctx;
    pool.n_tasks = n_tasks;
    for (int w = 0; w < pool.n; w++) {
        atomic_store_explicit(&pool.share[w].next, share_first(n_tasks, (size_t)w), memory_order_relaxed);
        pool.share[w].end = share_first(n_tasks, (size_t)w + 1);
    }
    unsigned long gen = atomic_fetch_add(&pool.gen, 1) + 1; /* seq_cst: pairs with a sleeper's count and check */
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.mu);
        pthread_cond_broadcast(&pool.cv);
        pthread_mutex_unlock(&pool.mu);
    }
    run_tasks(0);
    /* A worker descheduled by other work on the machine holds the job up: past a short
     * spin, give it the core. */
    uint64_t t0 = 0;
    for (int w = 1, i = 0; w < pool.n; i++) {
        if (atomic_load_explicit(&pool.share[w].done, memory_order_acquire) == gen) {
            w++;
            continue;
        }
        if ((i & 63) == 63) {
            uint64_t t = now_ns();
            if (!t0) t0 = t;
            else if (t - t0 > YIELD_AFTER_NS) sched_yield();
        }
        cpu_relax();
    }
}

void par_run(size_t n_tasks, par_fn fn, void *ctx)
{
#ifdef MINIDL_PROFILE
    if (in_task) { /* inline, inside a task that is recorded (or not) as a whole */
        run_job(n_tasks, fn, ctx);
        return;
    }
    size_t outer = prof.cur;
    struct ParJobRecord *r = prof_job(n_tasks, fn);
    prof.cur = r ? (size_t)(r - prof.jobs) : PROF_NO_JOB;
    run_job(n_tasks, fn, ctx);
    if (r) r->t1 = now_ns();
    prof.cur = outer;
#else
    run_job(n_tasks, fn, ctx);
#endif
}

void *par_scratch(int worker, size_t bytes)
{
    CHECK(worker >= 0 && worker < pool.n, "scratch of worker %d of %d", worker, pool.n);
    struct Share *s = &pool.share[worker];
    if (bytes > s->scratch_cap) {
        free(s->scratch);
        s->scratch = NULL, s->scratch_cap = 0;
        /* whole pages: no other allocation shares a line or page with it */
        size_t cap = (bytes + 4095) & ~(size_t)4095;
        if (posix_memalign(&s->scratch, 4096, cap)) fatal("out of memory: %zu bytes of thread scratch", cap);
        s->scratch_cap = cap;
    }
    return s->scratch;
}

size_t par_tasks(size_t work, size_t min_per_task)
{
    size_t n = (size_t)pool.n;
    if (n == 1 || work < PAR_MIN_WORK) return 1;
    size_t by_size = work / (min_per_task ? min_per_task : 1);
    size_t want = 4 * n;
    return by_size < 1 ? 1 : by_size < want ? by_size : want;
}

size_t par_map_chunk(size_t n, size_t elem_bytes)
{
    size_t tasks = par_tasks(n * elem_bytes, PAR_MAP_MIN_BYTES);
    size_t chunk = (n + tasks - 1) / tasks;
    chunk = (chunk + 63) / 64 * 64;
    return chunk ? chunk : 1;
}

size_t par_share_at(size_t n, size_t grain, size_t k)
{
    size_t at = share_first((n + grain - 1) / grain, k) * grain;
    return at < n ? at : n;
}

/* ---- how many threads ---- */

/* A cgroup CPU quota in whole cores (rounded up), or 0 when there is none. */
static int cgroup_cores(void)
{
    char buf[128];
    long long quota = -1, period = 0;
    FILE *f = fopen("/sys/fs/cgroup/cpu.max", "r");
    if (f) {
        if (fgets(buf, sizeof buf, f) && strncmp(buf, "max", 3) && sscanf(buf, "%lld %lld", &quota, &period) != 2)
            quota = -1;
        fclose(f);
    } else if ((f = fopen("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "r"))) {
        if (fscanf(f, "%lld", &quota) != 1) quota = -1;
        fclose(f);
        if ((f = fopen("/sys/fs/cgroup/cpu/cpu.cfs_period_us", "r"))) {
            if (fscanf(f, "%lld", &period) != 1) period = 0;
            fclose(f);
        }
    }
    if (quota <= 0 || period <= 0) return 0;
    long long cores = (quota + period - 1) / period;
    return cores > THREADS_MAX ? THREADS_MAX : (int)cores;
}

int threads_available(void)
{
    int n = 1;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
    int q = cgroup_cores();
    if (q > 0 && q < n) n = q;
    if (n < 1) n = 1;
    return n > THREADS_MAX ? THREADS_MAX : n;
}

int threads_parse(const char *s)
{
    int64_t v;
    if (!s || str_to_int(s, &v) != STR_OK || v < 1 || v > THREADS_MAX) return -1;
    return (int)v;
}

int threads_from_env(void)
{
    const char *s = getenv("MINIDL_THREADS");
    if (!s) return threads_available();
    return threads_parse(s);
}
