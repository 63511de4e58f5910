#!/usr/bin/env bash
# make bench-mpi: one epoch of the Fashion-MNIST MLP and CNN at batch 256 (and the
# configs' 64) on 1 and 2 ranks of one thread each, beside train --threads 1 and 2; the
# epoch times, the speed-up of 2 ranks, and per step the bytes each rank sent and the
# microseconds it spent in the gradient sum, then in the small loss sum that opens the
# step's communication (where a rank waits for the slower one).
# FMNIST_DIR (default /tmp/minidl-fmnist, from scripts/fmnist.sh) holds fmnist_train.bin.
# Usage: bench/mpi.sh [-r RUNS]  (the best of RUNS runs of each, default 3)
set -u
cd "$(dirname "$0")/.."
BIN=${MINIDL_BIN:-build}
DIR=${FMNIST_DIR:-/tmp/minidl-fmnist}
RUNS=3
[ "${1:-}" = -r ] && RUNS=$2
DATA=$DIR/fmnist_train.bin
[ -f "$DATA" ] || { echo "bench-mpi: no $DATA: run scripts/fmnist.sh $DIR first"; exit 1; }
MPIRUN=(mpirun --oversubscribe --bind-to core)
[ "$(id -u)" = 0 ] && MPIRUN+=(--allow-run-as-root)
T=$(mktemp -d /tmp/minidl-bench-mpi.XXXXXX)
trap 'rm -rf "$T"' EXIT

epoch_s() { sed -n 's/.*epoch 1\/1 .*  \([0-9.]*\) s .*/\1/p' "$1" | head -1; }
# best-of-RUNS epoch time; the log of the best run stays in $T/best.log
best() {
    local b="" s
    for _ in $(seq "$RUNS"); do
        "$@" 2> "$T/run.log" || { cat "$T/run.log"; exit 1; }
        s=$(epoch_s "$T/run.log")
        if [ -z "$b" ] || awk "BEGIN{exit !($s < $b)}"; then b=$s; cp "$T/run.log" "$T/best.log"; fi
    done
    echo "$b"
}

printf "%-12s %5s  %10s %10s %10s %10s  %7s  %14s %12s\n" config batch "train -t1" "train -t2" "1 rank" "2 ranks" speedup "bytes/step" "us/step: sum + wait"
for cfg in fmnist_mlp fmnist_cnn; do
    for bs in 64 256; do
        sed "s/^batch_size=.*/batch_size=$bs/" "configs/$cfg.ini" > "$T/c.ini"
        t1=$(best "$BIN/train" --threads 1 -e 1 "$T/c.ini" "$DATA" "$DATA" "$T/m.bin")
        t2=$(best "$BIN/train" --threads 2 -e 1 "$T/c.ini" "$DATA" "$DATA" "$T/m.bin")
        r1=$(best "${MPIRUN[@]}" -np 1 "$BIN/train-mpi" --threads 1 -e 1 "$T/c.ini" "$DATA" "$DATA" "$T/m.bin")
        r2=$(best "${MPIRUN[@]}" -np 2 "$BIN/train-mpi" --threads 1 -e 1 "$T/c.ini" "$DATA" "$DATA" "$T/m.bin")
        bytes=$(sed -n 's/.*per step \([0-9]*\) bytes sent.*/\1/p' "$T/best.log")
        us=$(sed -n 's/.*, \([0-9]*\) us in the gradient sum.* and \([0-9]*\) us in the loss sum.*/\1 + \2/p' "$T/best.log")
        printf "%-12s %5s  %9ss %9ss %9ss %9ss  %6.2fx  %14s %12s\n" "$cfg" "$bs" "$t1" "$t2" "$r1" "$r2" \
            "$(awk "BEGIN{print $r1 / $r2}")" "$bytes" "$us"
    done
done
