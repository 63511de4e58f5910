#!/bin/sh
# seeds.sh: how much a classifier config's test accuracy owes to its seed. Trains the
# config once per seed and prints each run's test accuracy, then their mean, standard
# deviation and range: one run's accuracy differs from the next seed's by a few tenths
# of a percent, so settings are compared by the mean.
#
# Usage: scripts/seeds.sh [-n N] CONFIG TRAIN TEST
#
#   CONFIG  a classifier config (loss=CrossEntropy)
#   TRAIN   a binary dataset with data and labels (scripts/fmnist.sh makes them)
#   TEST    the same for the test set
#   -n N    seeds 1..N (default 8), and the config's own seed first
#
# Example (about 5 s a run for the CNN):
#   scripts/seeds.sh -n 16 configs/fmnist_cnn.ini /tmp/minidl-fmnist/fmnist_train.bin \
#       /tmp/minidl-fmnist/fmnist_test.bin
#
# Needs `make` first (MINIDL_BIN names the build directory, default build/). Exit
# status 0, 1 if a run fails, 2 on a usage error.
set -u

usage() { echo "usage: $0 [-n N] CONFIG TRAIN TEST" >&2; exit 2; }
n=8
if [ "${1:-}" = "-n" ]; then
    [ $# -ge 2 ] || usage
    n=$2
    shift 2
fi
[ $# -eq 3 ] || usage
case "$n" in '' | *[!0-9]*) usage ;; esac
[ "$n" -ge 1 ] || usage
cfg=$1 train=$2 test=$3
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${MINIDL_BIN:-$root/build}
for p in train infer; do
    [ -x "$bin/$p" ] || { echo "$0: $bin/$p not found: run make first" >&2; exit 1; }
done
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

# One run: prints "seed accuracy"; no seed argument = the config's own.
run() {
    label=$1
    shift
    if ! "$bin/train" -q "$@" "$cfg" "$train" "$train" "$tmp/m.bin" 2>"$tmp/err"; then
        cat "$tmp/err" >&2
        return 1
    fi
    "$bin/infer" --labels "$test" "$tmp/m.bin" "$test" 2>"$tmp/err" >/dev/null || { cat "$tmp/err" >&2; return 1; }
    acc=$(sed -n 's/^.*accuracy[^0-9]*\([0-9.]*\).*$/\1/p' "$tmp/err" | head -n 1)
    [ -n "$acc" ] || { echo "$0: infer printed no accuracy (is $cfg a classifier?)" >&2; return 1; }
    echo "$label $acc"
}

{
    run config || exit 1
    s=1
    while [ "$s" -le "$n" ]; do
        run "$s" --seed "$s" || exit 1
        s=$((s + 1))
    done
} | tee "$tmp/acc" | awk '{ printf "seed %-7s test accuracy %s\n", $1, $2 }'
[ "$(wc -l <"$tmp/acc")" -eq $((n + 1)) ] || exit 1
awk '{ s += $2; q += $2 * $2; k++; if (k == 1 || $2 < lo) lo = $2; if (k == 1 || $2 > hi) hi = $2 }
     END { m = s / k; v = q / k - m * m; if (v < 0) v = 0
           printf "%d runs: mean %.4f  sd %.4f  range %.4f-%.4f\n", k, m, sqrt(v), lo, hi }' "$tmp/acc"
