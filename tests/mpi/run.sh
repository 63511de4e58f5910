#!/usr/bin/env bash
# make test-mpi: train-mpi at 1, 2, 3 and 4 ranks against train, and its faults.
# Needs mpirun (Open MPI); runs every rank on this machine (--oversubscribe), one
# thread each. Closes with "N passed, N failed"; exit 1 if any failed.
set -u
cd "$(dirname "$0")/../.."
BIN=${MINIDL_BIN:-build}
TRAIN=$BIN/train MPITRAIN=$BIN/train-mpi CMP=$BIN/mpi_modelcmp
MPIRUN=(mpirun --oversubscribe)
[ "$(id -u)" = 0 ] && MPIRUN+=(--allow-run-as-root)
export OMPI_MCA_rmaps_base_oversubscribe=1
T=$(mktemp -d /tmp/minidl-test-mpi.XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }

X=data/digits_train_x.csv Y=data/digits_train_y.csv
sed 's/^dtype=.*//; s/^\[model\]/[model]\ndtype=float64/' configs/digits_mlp.ini > "$T/mlp64.ini"
sed 's/^dtype=float32/dtype=float64/' tests/mpi/digits_cnn.ini > "$T/cnn64.ini"
cp configs/digits_mlp.ini "$T/mlp32.ini"
cp tests/mpi/digits_cnn.ini "$T/cnn32.ini"
mpi() { local r=$1; shift; "${MPIRUN[@]}" -np "$r" "$MPITRAIN" --threads 1 -q "$@"; }

# Against one process: -np 1 writes train's bytes; R ranks agree with it after one epoch
# (1e-5 relative float32, 1e-12 float64), write the same bytes on every run, and hold
# the same parameters on every rank after every epoch.
for c in mlp32 mlp64 cnn32 cnn64; do
    tol=1e-5; case $c in *64) tol=1e-12 ;; esac
    "$TRAIN" -q --threads 1 -e 1 "$T/$c.ini" $X $Y "$T/$c.ref.bin" || bad "$c: train"
    mpi 1 -e 1 "$T/$c.ini" $X $Y "$T/$c.np1.bin" 2>/dev/null
    check "$c: -np 1 writes train's bytes" cmp -s "$T/$c.ref.bin" "$T/$c.np1.bin"
    for r in 2 3 4; do
        mpi $r -e 1 "$T/$c.ini" $X $Y "$T/$c.$r.bin" 2>/dev/null || bad "$c: -np $r exit status"
        out=$("$CMP" "$T/$c.ref.bin" "$T/$c.$r.bin" $tol) || bad "$c: -np $r against train: $out (tolerance $tol)"
        [ -n "${VERBOSE:-}" ] && echo "$c -np $r: $out"
        ok
        MINIDL_MPI_CHECK=1 mpi $r -e 2 "$T/$c.ini" $X $Y "$T/$c.$r.a.bin" 2> "$T/log" || bad "$c: -np $r -e 2"
        check "$c: -np $r: the same parameters on every rank after each epoch" \
            test "$(grep -c "^mpi-check: epoch [12]: parameters crc32 [0-9a-f]* on all $r ranks" "$T/log")" = 2
        case $c in *32)
            MINIDL_MPI_CHECK=1 mpi $r -e 2 "$T/$c.ini" $X $Y "$T/$c.$r.b.bin" 2>/dev/null
            check "$c: -np $r: the same bytes on every run" cmp -s "$T/$c.$r.a.bin" "$T/$c.$r.b.bin" ;;
        esac
    done
done

# Threads inside ranks change nothing; batches smaller than the rank count (empty slices).
"${MPIRUN[@]}" -np 2 "$MPITRAIN" --threads 2 -q -e 2 "$T/cnn32.ini" $X $Y "$T/thr.bin"
check "--threads 2 per rank: the bytes of --threads 1" cmp -s "$T/thr.bin" "$T/cnn32.2.a.bin"
head -101 $X > "$T/x101.csv"; head -101 $Y > "$T/y101.csv"
sed 's/^batch_size=.*/batch_size=2/' configs/digits_mlp.ini > "$T/b2.ini"
"$TRAIN" -q --threads 1 -e 1 "$T/b2.ini" "$T/x101.csv" "$T/y101.csv" "$T/b2.ref.bin"
MINIDL_MPI_CHECK=1 mpi 3 -e 1 "$T/b2.ini" "$T/x101.csv" "$T/y101.csv" "$T/b2.3.bin" 2> "$T/log"
check "batch 2 on 3 ranks: the same parameters everywhere" grep -q "on all 3 ranks" "$T/log"
check "batch 2 on 3 ranks: agrees with train" "$CMP" "$T/b2.ref.bin" "$T/b2.3.bin" 1e-5 >/dev/null

# Validation, a checkpoint and resume with the same rank count: the run made in one go.
{ cat tests/mpi/digits_cnn.ini; echo "val_split=0.2"; } > "$T/val.ini"
mpi 2 -e 3 "$T/val.ini" $X $Y "$T/val.bin"
mpi 2 -e 3 --stop-after 1 --checkpoint "$T/val.ckpt" "$T/val.ini" $X $Y "$T/val1.bin"
mpi 2 -e 3 --resume "$T/val.ckpt" "$T/val.ini" $X $Y "$T/val1.bin"
check "validation, stop after epoch 1 and resume on 2 ranks: the bytes of one run" cmp -s "$T/val.bin" "$T/val1.bin"

# Faults: one message (rank 0's line, naming what is wrong), exit status 1, the old
# model left as it was. MPMD launches give one rank other arguments.
fault() { # name, expected text, mpirun arguments...
    local name=$1 want=$2; shift 2
    echo old > "$T/old.bin"
    "${MPIRUN[@]}" "$@" > "$T/out" 2> "$T/err"
    local rc=$?
    local n; n=$(grep -c "^train-mpi: " "$T/err")
    if [ $rc = 1 ] && [ "$n" = 1 ] && grep -q "$want" "$T/err" && [ "$(cat "$T/old.bin")" = old ]; then ok
    else bad "$name: exit $rc, $n messages, want '$want': $(grep '^train-mpi' "$T/err")"; fi
}
A=(-q "$T/mlp32.ini")
fault "data missing on rank 1" "rank 1 (and 1 more): $T/none.csv" \
    -np 1 "$MPITRAIN" "${A[@]}" $X $Y "$T/old.bin" : -np 2 "$MPITRAIN" "${A[@]}" "$T/none.csv" $Y "$T/old.bin"
sed 's/^lr=.*/lr=0.002/' configs/digits_mlp.ini > "$T/other.ini"
fault "another config on rank 2" "rank 2 has another config" \
    -np 2 "$MPITRAIN" "${A[@]}" $X $Y "$T/old.bin" : -np 1 "$MPITRAIN" -q "$T/other.ini" $X $Y "$T/old.bin"
fault "another data shape on rank 1" "rank 1's data are 101 samples" \
    -np 1 "$MPITRAIN" "${A[@]}" $X $Y "$T/old.bin" : -np 1 "$MPITRAIN" "${A[@]}" "$T/x101.csv" "$T/y101.csv" "$T/old.bin"
fault "another seed on rank 1" "rank 1 runs seed 7" \
    -np 1 "$MPITRAIN" "${A[@]}" $X $Y "$T/old.bin" : -np 1 "$MPITRAIN" -s 7 "${A[@]}" $X $Y "$T/old.bin"
sed 's/^lr=.*/lr=1e30/' configs/digits_mlp.ini > "$T/div.ini"
fault "a non-finite loss" "the loss became" -np 3 "$MPITRAIN" -q "$T/div.ini" $X $Y "$T/old.bin"
fault "a bad label on rank 0 alone" "rank 0 (and" \
    -np 2 "$MPITRAIN" "${A[@]}" $X "$T/x101.csv" "$T/old.bin" : -np 1 "$MPITRAIN" "${A[@]}" $X $Y "$T/old.bin"

# A binary dataset stays in a mapping of the file on every rank (its page cache shared):
# the bytes of the CSV run. Cut while the ranks train (after epoch 1, seen in the
# metrics), it stops them all with one message naming it, the old model untouched.
"$BIN/csv2bin" $X $Y "$T/d.bin" 2>/dev/null
mpi 2 -e 1 "$T/mlp32.ini" "$T/d.bin" "$T/d.bin" "$T/bin.2.bin"
check "-np 2 on a binary dataset: the bytes of the CSV run" cmp -s "$T/mlp32.2.bin" "$T/bin.2.bin"
"${MPIRUN[@]}" -np 2 "$MPITRAIN" --threads 1 -e 0 "$T/mlp32.ini" "$T/d.bin" "$T/d.bin" "$T/bin.0.bin" 2> "$T/log"
check "-np 2: the binary dataset is mapped, not copied" grep -q "(mapped, not copied)" "$T/log"
sed '/^normalize=/d; s/^epochs=.*/epochs=1000000/' configs/digits_mlp.ini > "$T/long.ini"
cp "$T/d.bin" "$T/cut.bin"
echo old > "$T/old.bin"
rm -f "$T/cut.metrics"
( for _ in $(seq 1200); do [ "$(cat "$T/cut.metrics" 2>/dev/null | wc -l)" -ge 2 ] && break; sleep 0.1; done
  truncate -s 5000 "$T/cut.bin" ) &
timeout 300 "${MPIRUN[@]}" -np 2 "$MPITRAIN" --threads 1 -q --metrics "$T/cut.metrics" "$T/long.ini" "$T/cut.bin" \
    "$T/cut.bin" "$T/old.bin" > "$T/out" 2> "$T/err"
rc=$?
wait
n=$(grep -c "^train-mpi: " "$T/err")
if [ $rc = 1 ] && [ "$n" = 1 ] && grep -q "cut.bin: the file shrank while it was being read" "$T/err" &&
    [ "$(cat "$T/old.bin")" = old ]; then ok
else bad "a binary dataset cut while the ranks train: exit $rc, $n messages: $(grep '^train-mpi' "$T/err")"; fi

echo "$pass passed, $fail failed"
[ $fail = 0 ]
