/* comm_mpi: train.h's TrainComm on MPI, and the collective checks of train-mpi
 * (include/comm_mpi.h). Compiled only by `make mpi`, with mpicc. */
#include "comm_mpi.h"
#include "cli.h"
#include "mem.h"
#include "model_io.h"
#include "utils.h"

#include <fcntl.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MSG_MAX 1024

struct MpiState {
    struct TrainComm c;
    int *counts, *displs;     /* per rank: elements of its chunk and where the chunk starts */
    int *rcounts, *rdispls;   /* what the all-to-all brings: this rank's chunk from each rank */
    void *recv;               /* size x this rank's chunk, allocated once */
    uint64_t n_cap;           /* the flat length the tables are for */
    uint32_t dtype;
    double *stats;            /* size x a few doubles */
    uint64_t steps, bytes;    /* sums made and bytes this rank sent */
    double flat_s, stats_s;   /* spent in the gradient sums, and in the stats' (where a rank
                               * waits for the slower ones: the step's first collective) */
};

static struct MpiState *state(struct TrainComm *c) { return c->impl; }

/* Chunk k of n elements over size ranks: [n k / size, n (k + 1) / size). */
static void set_tables(struct MpiState *s, uint64_t n, uint32_t dtype)
{
    int R = s->c.size, me = s->c.rank;
    CHECK(n <= (uint64_t)INT32_MAX, "%llu gradient values: more than one MPI message can count",
          (unsigned long long)n);
    for (int k = 0; k < R; k++) {
        uint64_t lo = n * (uint64_t)k / (uint64_t)R, hi = n * (uint64_t)(k + 1) / (uint64_t)R;
        s->counts[k] = (int)(hi - lo), s->displs[k] = (int)lo;
    }
    for (int r = 0; r < R; r++) s->rcounts[r] = s->counts[me], s->rdispls[r] = r * s->counts[me];
    mem_free(s->recv);
    s->recv = mem_alloc(((size_t)R * (size_t)s->counts[me] + 1) * dtype_size(dtype));
    s->n_cap = n, s->dtype = dtype;
}

#define SUM_CHUNKS(T, sfx)                                                                \
    /* dst[i] = src[0][i] + src[1][i] + ... + src[R-1][i], added in rank order. */       \
    static void sum_chunks_##sfx(void *dst, const void *src, int R, int n)              \
    {                                                                                   \
        T *d = dst;                                                                     \
        const T *s = src;                                                               \
        for (int i = 0; i < n; i++) d[i] = s[i];                                        \
        for (int r = 1; r < R; r++)                                                     \
            for (int i = 0; i < n; i++) d[i] += s[(size_t)r * (size_t)n + (size_t)i];   \
    }
SUM_CHUNKS(float, f32)
SUM_CHUNKS(double, f64)

static void sum_flat(struct TrainComm *c, void *buf, uint64_t n, uint32_t dtype)
{
    struct MpiState *s = state(c);
    double t0 = MPI_Wtime();
    if (n != s->n_cap || dtype != s->dtype || !s->recv) set_tables(s, n, dtype);
    MPI_Datatype mt = dtype == DT_FLOAT64 ? MPI_DOUBLE : MPI_FLOAT;
    int me = c->rank, R = c->size, mine = s->counts[me];
    size_t es = dtype_size(dtype);
    /* reduce-scatter: chunk k of every rank goes to rank k, which adds them in rank order */
    MPI_Alltoallv(buf, s->counts, s->displs, mt, s->recv, s->rcounts, s->rdispls, mt, MPI_COMM_WORLD);
    char *my_chunk = (char *)buf + (size_t)s->displs[me] * es;
    if (dtype == DT_FLOAT64) sum_chunks_f64(my_chunk, s->recv, R, mine);
    else sum_chunks_f32(my_chunk, s->recv, R, mine);
    /* every rank gets every summed chunk */
    MPI_Allgatherv(MPI_IN_PLACE, 0, mt, buf, s->counts, s->displs, mt, MPI_COMM_WORLD);
    s->bytes += 2 * (n - (uint64_t)mine) * es;
    s->flat_s += MPI_Wtime() - t0;
}

static void sum_stats(struct TrainComm *c, double *v, uint32_t n)
{
    struct MpiState *s = state(c);
    double t0 = MPI_Wtime();
    CHECK(n <= 4, "%u values", n);
    MPI_Allgather(v, (int)n, MPI_DOUBLE, s->stats, (int)n, MPI_DOUBLE, MPI_COMM_WORLD);
    for (uint32_t i = 0; i < n; i++) {
        double sum = s->stats[i];
        for (int r = 1; r < c->size; r++) sum += s->stats[(size_t)r * n + i];
        v[i] = sum;
    }
    s->steps++;
    s->bytes += (uint64_t)(c->size - 1) * n * sizeof(double);
    s->stats_s += MPI_Wtime() - t0;
}

/* stdout and stderr to /dev/null (ranks other than 0). */
static void mute(void)
{
    int fd = open("/dev/null", O_WRONLY);
    if (fd < 0) return;
    fflush(stdout);
    fflush(stderr);
    dup2(fd, 1);
    dup2(fd, 2);
    close(fd);
}

struct TrainComm *comm_mpi_init(int *argc, char ***argv)
{
    MPI_Init(argc, argv);
    struct MpiState *s = mem_alloc_zeroed(sizeof *s);
    MPI_Comm_rank(MPI_COMM_WORLD, &s->c.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &s->c.size);
    s->c.sum_flat = sum_flat;
    s->c.sum_stats = sum_stats;
    s->c.impl = s;
    int R = s->c.size;
    s->counts = mem_alloc((size_t)R * sizeof *s->counts);
    s->displs = mem_alloc((size_t)R * sizeof *s->displs);
    s->rcounts = mem_alloc((size_t)R * sizeof *s->rcounts);
    s->rdispls = mem_alloc((size_t)R * sizeof *s->rdispls);
    s->stats = mem_alloc((size_t)R * 4 * sizeof *s->stats);
    if (s->c.rank) mute();
    return &s->c;
}

/* Every rank ends here together: the sums are done, nobody waits on anybody. */
static _Noreturn void stop_all(struct TrainComm *c)
{
    fflush(stderr);
    MPI_Finalize();
    exit(1);
}

void comm_mpi_agree(struct TrainComm *c, int bad, const char *msg)
{
    int flag = bad != 0, any = 0, first = c->size;
    MPI_Allreduce(&flag, &any, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (!any) return;
    int mine = flag ? c->rank : c->size;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    char text[MSG_MAX] = "";
    if (c->rank == first) str_copy(text, msg ? msg : "failed", sizeof text);
    MPI_Bcast(text, sizeof text, MPI_CHAR, first, MPI_COMM_WORLD);
    if (c->rank == 0) {
        if (c->size > 1 && any > 1) fprintf(stderr, "%s: rank %d (and %d more): %s\n", util_progname(), first, any - 1, text);
        else if (c->size > 1) fprintf(stderr, "%s: rank %d: %s\n", util_progname(), first, text);
        else fprintf(stderr, "%s: %s\n", util_progname(), text);
    }
    stop_all(c);
}

/* What is compared: the identity and the version string. */
struct Hello {
    struct CommIdentity id;
    char version[32];
};

/* The first way rank r's hello differs from rank 0's, into msg; 0 when none. */
static int differs(const struct Hello *a, const struct Hello *b, int r, char *msg, size_t len)
{
    const struct CommIdentity *x = &a->id, *y = &b->id;
    if (strcmp(a->version, b->version))
        return snprintf(msg, len, "rank %d runs minidl %s, rank 0 minidl %s", r, b->version, a->version), 1;
    if (x->config_crc != y->config_crc)
        return snprintf(msg, len, "rank %d has another config than rank 0 (crc32 %08x against %08x)", r,
                        (unsigned)y->config_crc, (unsigned)x->config_crc), 1;
    if (x->seed != y->seed || x->epochs != y->epochs)
        return snprintf(msg, len, "rank %d runs seed %llu for %llu epochs, rank 0 seed %llu for %llu epochs", r,
                        (unsigned long long)y->seed, (unsigned long long)y->epochs, (unsigned long long)x->seed,
                        (unsigned long long)x->epochs), 1;
    if (x->n != y->n || x->dim != y->dim || x->label_dim != y->label_dim)
        return snprintf(msg, len, "rank %d's data are %llu samples x %llu features (labels %llu wide), rank 0's "
                        "%llu x %llu (labels %llu wide)", r, (unsigned long long)y->n, (unsigned long long)y->dim,
                        (unsigned long long)y->label_dim, (unsigned long long)x->n, (unsigned long long)x->dim,
                        (unsigned long long)x->label_dim), 1;
    if (x->val_n != y->val_n)
        return snprintf(msg, len, "rank %d validates on %llu samples, rank 0 on %llu", r,
                        (unsigned long long)y->val_n, (unsigned long long)x->val_n), 1;
    return 0;
}

void comm_mpi_compare(struct TrainComm *c, const struct CommIdentity *id)
{
    struct Hello me, *all = mem_alloc((size_t)c->size * sizeof *all);
    memset(&me, 0, sizeof me);
    me.id = *id;
    str_copy(me.version, MINIDL_VERSION, sizeof me.version);
    MPI_Allgather(&me, (int)sizeof me, MPI_BYTE, all, (int)sizeof me, MPI_BYTE, MPI_COMM_WORLD);
    char msg[MSG_MAX];
    for (int r = 1; r < c->size; r++) {
        if (!differs(&all[0], &all[r], r, msg, sizeof msg)) continue;
        mem_free(all);
        if (c->rank == 0) fprintf(stderr, "%s: %s: every rank must train the same run\n", util_progname(), msg);
        stop_all(c);
    }
    mem_free(all);
}

void comm_mpi_check_params(struct TrainComm *c, const struct Model *m, uint64_t epoch)
{
    const char *e = getenv("MINIDL_MPI_CHECK");
    if (!e || strcmp(e, "1")) return;
    uint32_t crc = 0, *all = mem_alloc((size_t)c->size * sizeof *all);
    for (uint32_t i = 0; i < m->n_named; i++) {
        const struct Tensor *t = m->named[i].t;
        crc = crc32_ieee(crc, t->data, tensor_numel(t) * dtype_size(t->dtype));
    }
    MPI_Allgather(&crc, 1, MPI_UINT32_T, all, 1, MPI_UINT32_T, MPI_COMM_WORLD);
    if (c->rank == 0) {
        int same = 1;
        for (int r = 1; r < c->size; r++) same &= all[r] == all[0];
        if (same) {
            fprintf(stderr, "mpi-check: epoch %llu: parameters crc32 %08x on all %d ranks\n",
                    (unsigned long long)epoch, (unsigned)crc, c->size);
        } else {
            fprintf(stderr, "mpi-check: epoch %llu: parameters differ:", (unsigned long long)epoch);
            for (int r = 0; r < c->size; r++) fprintf(stderr, " rank %d %08x", r, (unsigned)all[r]);
            fputc('\n', stderr);
        }
    }
    mem_free(all);
}

void comm_mpi_report(struct TrainComm *c, int quiet)
{
    struct MpiState *s = state(c);
    if (quiet || c->rank || !s->steps || c->size < 2) return;
    double st = (double)s->steps;
    log_err("mpi: %d ranks, %llu steps: per step %.0f bytes sent per rank, %.0f us in the gradient sum "
            "(%llu values) and %.0f us in the loss sum (waiting for the slowest rank included)", c->size,
            (unsigned long long)s->steps, (double)s->bytes / st, 1e6 * s->flat_s / st, (unsigned long long)s->n_cap,
            1e6 * s->stats_s / st);
}

void comm_mpi_finalize(struct TrainComm *c)
{
    struct MpiState *s = state(c);
    mem_free(s->counts);
    mem_free(s->displs);
    mem_free(s->rcounts);
    mem_free(s->rdispls);
    mem_free(s->recv);
    mem_free(s->stats);
    mem_free(s);
    MPI_Finalize();
}
