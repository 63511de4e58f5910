/* comm_mpi: data-parallel training on MPI for train-mpi (src/mpi/comm_mpi.c, built only
 * by `make mpi` with mpicc; this header needs no MPI). It fills train.h's TrainComm and
 * makes the program's few agreements collective:
 *
 *   c = comm_mpi_init(&argc, &argv);   every rank; ranks other than 0 print nothing
 *   ... parse, load ...   comm_mpi_agree(c, bad, err);   after each step that may fail on one rank
 *   comm_mpi_compare(c, &id);          the same config, data shape and version everywhere
 *   train_set_comm(&trainer, c);  ...  comm_mpi_check_params(c, model, epoch) after each epoch
 *   comm_mpi_report(c); comm_mpi_finalize(c);
 *
 * The gradient sum: a reduce-scatter done by hand (MPI_Alltoallv: rank k receives chunk k
 * of every rank's flat gradient and adds them in rank order 0, 1, ...) then an
 * MPI_Allgatherv of the summed chunks. MPI_Allreduce is not used: it promises no order,
 * and the ranks would drift apart. Each rank sends 2 (R-1)/R x P values per step, as a
 * ring all-reduce does. A failure agreed on stops every rank, rank 0 printing the
 * failing rank's message once, with MPI_Finalize and exit status 1. */
#ifndef MINIDL_COMM_MPI_H
#define MINIDL_COMM_MPI_H

#include "model.h"
#include "train.h"

/* Starts MPI. Ranks other than 0 get /dev/null for stdout and stderr: their logs and any
 * error every rank would print alike (a bad option, a bad config) come from rank 0 only. */
struct TrainComm *comm_mpi_init(int *argc, char ***argv);
/* Collective: if any rank passes bad != 0, rank 0 prints the lowest such rank's msg
 * ("rank 2: data.csv: ...") and every rank ends (exit 1); otherwise returns. */
void comm_mpi_agree(struct TrainComm *c, int bad, const char *msg);

/* What must be the same on every rank. */
struct CommIdentity {
    uint32_t config_crc;        /* of the config text (crc32_ieee) */
    uint64_t seed, epochs;      /* as the options leave them */
    uint64_t n, dim, label_dim; /* the training data */
    uint64_t val_n;             /* the --val data's samples (0 without) */
};
/* Collective: stops every rank, naming what differs from rank 0 (config, data shape,
 * minidl version), if anything does. */
void comm_mpi_compare(struct TrainComm *c, const struct CommIdentity *id);
/* With MINIDL_MPI_CHECK=1: every rank's crc32 of the model's named tensors, compared;
 * rank 0 prints "mpi-check: epoch E: parameters crc32 X on all R ranks" (or each rank's). */
void comm_mpi_check_params(struct TrainComm *c, const struct Model *m, uint64_t epoch);
/* Rank 0, on stderr: the steps' traffic and time spent in the sums, per step. */
void comm_mpi_report(struct TrainComm *c, int quiet);
void comm_mpi_finalize(struct TrainComm *c);

#endif
