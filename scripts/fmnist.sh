#!/bin/sh
# fmnist.sh: Fashion-MNIST for minidl, from Debian's dataset-fashion-mnist package.
#
# Usage: scripts/fmnist.sh OUTDIR [IDXDIR]
#
#   IDXDIR  the IDX files, default /usr/share/datasets/fashion-mnist
#           (sudo apt install dataset-fashion-mnist)
#   OUTDIR  receives
#             fmnist_train_x.csv  fmnist_test_x.csv   one image per row: 784 pixels 0-255
#             fmnist_train_y.csv  fmnist_test_y.csv   one class index 0-9 per row
#             fmnist_train.bin    fmnist_test.bin     the same as binary datasets (DLASM1
#                                                     tensors "data" and "labels", float32)
#
# Then, for example:
#   ./train configs/fmnist_mlp.ini OUTDIR/fmnist_train.bin OUTDIR/fmnist_train.bin mlp.bin
#   ./infer --labels OUTDIR/fmnist_test_y.csv mlp.bin OUTDIR/fmnist_test.bin > pred.txt
# (a binary dataset serves as both the data and the labels argument; the CSVs work too,
# the binary loads about twenty times faster).
#
# Needs gzip and a C compiler (CC, default cc) for scripts/idx2csv.c; the .bin files
# need the csv2bin tool (make csv2bin, found in $MINIDL_BIN, default build/), and are
# skipped with a warning without it.
set -eu

usage() { echo "usage: $0 OUTDIR [IDXDIR]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
case "$1" in -h|--help) usage ;; esac
out=$1
idx=${2:-/usr/share/datasets/fashion-mnist}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${MINIDL_BIN:-$root/build}

for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    if [ ! -r "$idx/$f.gz" ] && [ ! -r "$idx/$f" ]; then
        echo "$0: $idx/$f.gz not found (install dataset-fashion-mnist, or give IDXDIR)" >&2
        exit 1
    fi
done
mkdir -p "$out"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
${CC:-cc} -O2 -o "$tmp/idx2csv" "$root/scripts/idx2csv.c"

# idx FILE-STEM OUT.csv: decompresses if needed, converts, and renames only on success.
idx() {
    if [ -r "$idx/$1.gz" ]; then gzip -dc "$idx/$1.gz"; else cat "$idx/$1"; fi |
        "$tmp/idx2csv" > "$2.tmp"
    mv "$2.tmp" "$2"
}

for split in train:train test:t10k; do
    name=${split%%:*} stem=${split#*:}
    idx "$stem-images-idx3-ubyte" "$out/fmnist_${name}_x.csv"
    idx "$stem-labels-idx1-ubyte" "$out/fmnist_${name}_y.csv"
    echo "wrote $out/fmnist_${name}_x.csv, $out/fmnist_${name}_y.csv"
done

if [ ! -x "$bin/csv2bin" ]; then
    echo "$0: warning: $bin/csv2bin not found (run make csv2bin): no .bin files" >&2
    exit 0
fi
for name in train test; do
    "$bin/csv2bin" "$out/fmnist_${name}_x.csv" "$out/fmnist_${name}_y.csv" "$out/fmnist_${name}.bin"
    echo "wrote $out/fmnist_${name}.bin"
done
