#!/usr/bin/env bash
# tests/fuzz/make_seeds.sh [BIN_DIR]: writes the committed seed corpora under
# tests/fuzz/corpus/ from the example configs and data and from models trained here by
# BIN_DIR's train and csv2bin (default build/): small valid inputs of each kind, and
# truncated and bit-flipped variants, so a fuzzing run starts deep. Run from anywhere;
# rerun after a format changes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=$(cd "${1:-$root/build}" && pwd)
cd "$root"
c=$here/corpus
rm -rf "$c"
mkdir -p "$c"/{config,csv_data,csv_labels,bin_dataset,model,checkpoint}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Variants of file $1 into folder $2 with stem $3: cut in half, cut before the last
# byte, and single bytes flipped at a few offsets.
variants() {
    local f=$1 d=$2 s=$3 n
    n=$(stat -c %s "$f")
    head -c $((n / 2)) "$f" >"$d/$s.half"
    head -c $((n - 1)) "$f" >"$d/$s.cut1"
    for off in 7 11 $((n / 3)) $((n - 3)); do
        [ "$off" -lt "$n" ] || continue
        cp "$f" "$d/$s.flip$off"
        printf '\xa5' | dd of="$d/$s.flip$off" bs=1 seek="$off" conv=notrunc status=none
    done
}

# config: the examples, the test fixtures, a few edges
for f in configs/*.ini tests/fixtures/*.ini; do cp "$f" "$c/config/$(basename "$f")"; done
printf '\xef\xbb\xbf[model]\r\ninput_dim = 4\r\nlayer=Linear,4,2 # x\r\n' >"$c/config/bom_crlf.ini"
printf '[model]\ninput_shape=3,32,32\nlayer=Conv2d,3,8,5,5,2,2\nactivation=ReLU\nlayer=Linear,2048,10\n[train]\nlr_schedule=cosine\n' >"$c/config/conv.ini"
variants configs/fmnist_cnn.ini "$c/config" fmnist_cnn

# the fixed network of the model target (targets.c), and data of its shape
cat >"$tmp/fixed.ini" <<'INI'
[model]
input_shape=1,4,4
layer=Conv2d,1,2,3,3,1,1
activation=ReLU
layer=Linear,32,3
activation=Tanh
layer=Linear,3,3
activation=Softmax
[train]
epochs=3
batch_size=2
normalize=standard
val_split=0.5
INI
for r in 0 1 2 3 4 5; do seq -s, $r $((r + 15)); done >"$tmp/fx.csv"
printf '0\n1\n2\n0\n1\n2\n' >"$tmp/fy.csv"

# csv_data and csv_labels
cp data/xor_x.csv "$c/csv_data/xor_x.csv"
head -n 5 data/digits_train_x.csv >"$c/csv_data/digits5.csv"
head -n 5 data/diabetes_train_x.csv >"$c/csv_data/diabetes5.csv"
cp tests/fixtures/v0_diabetes8.csv "$c/csv_data/"
cp "$tmp/fx.csv" "$c/csv_data/fixed.csv"
printf 'a,b\r\n1, 2\r\n-3.5e2 ,+4\r\n\r\n\r\n' >"$c/csv_data/header_crlf.csv"
printf '\xef\xbb\xbf1,2\n3,4' >"$c/csv_data/bom_nonl.csv"
printf '1,2\n3\n' >"$c/csv_data/ragged.csv"
printf '1,nan\n' >"$c/csv_data/nan.csv"
variants data/xor_x.csv "$c/csv_data" xor_x
cp data/xor_y.csv "$c/csv_labels/xor_y.csv"
head -n 12 data/digits_train_y.csv >"$c/csv_labels/digits12.csv"
head -n 5 data/diabetes_train_y.csv >"$c/csv_labels/diabetes5.csv"
printf 'label\r\n0\r\n9\r\n' >"$c/csv_labels/header.csv"
printf '0\n1.5\n' >"$c/csv_labels/fraction.csv"
printf '0\n10\n' >"$c/csv_labels/range.csv"
printf '0,1\n1,0\n' >"$c/csv_labels/onehot.csv"
printf '1e39\n' >"$c/csv_labels/overflow.csv"

# bin_dataset: csv2bin's output, both dtypes, with and without labels
"$bin/csv2bin" data/xor_x.csv data/xor_y.csv "$c/bin_dataset/xor.bin" 2>/dev/null
"$bin/csv2bin" --dtype float64 data/xor_x.csv data/xor_y.csv "$c/bin_dataset/xor64.bin" 2>/dev/null
"$bin/csv2bin" data/xor_x.csv "$c/bin_dataset/xor_data.bin" 2>/dev/null
"$bin/csv2bin" "$c/csv_data/digits5.csv" <(head -n 5 data/digits_train_y.csv) "$c/bin_dataset/digits5.bin" 2>/dev/null
"$bin/csv2bin" --dtype float64 "$c/csv_data/diabetes5.csv" "$c/csv_labels/diabetes5.csv" "$c/bin_dataset/diabetes5.bin" 2>/dev/null
variants "$c/bin_dataset/xor.bin" "$c/bin_dataset" xor
variants "$c/bin_dataset/xor64.bin" "$c/bin_dataset" xor64

# model: trained examples of each kind (MLP, regressor with normalisation, CNN, float64),
# the fixed network with and without its trailer, and the old-format fixtures
"$bin/train" -q -e 2 configs/xor.ini data/xor_x.csv data/xor_y.csv "$c/model/xor.bin"
"$bin/train" -q -e 2 configs/diabetes_mse.ini data/diabetes_train_x.csv data/diabetes_train_y.csv "$c/model/diabetes.bin"
"$bin/train" -q -e 1 tests/fixtures/export_kinds_f64.ini <(head -n 40 data/digits_train_x.csv) \
    <(head -n 40 data/digits_train_y.csv) "$c/model/kinds64.bin"
"$bin/train" -q -e 1 "$tmp/fixed.ini" "$tmp/fx.csv" "$tmp/fy.csv" "$c/model/fixed.bin"
n=$(stat -c %s "$c/model/fixed.bin")
head -c $((n - 15 - $(stat -c %s "$tmp/fixed.ini"))) "$c/model/fixed.bin" >"$c/model/fixed_notrailer.bin"
cp tests/fixtures/v0_cnn_f32.bin tests/fixtures/v0_mse_f64.bin "$c/model/"
variants "$c/model/xor.bin" "$c/model" xor
variants "$c/model/fixed.bin" "$c/model" fixed
variants "$c/model/fixed_notrailer.bin" "$c/model" fixed_notrailer
cp "$c/model/xor.bin" "$c/bin_dataset/model_xor.bin" # a container without data

# checkpoint: the fixed network's run stopped after each epoch (validation, Adam), and
# variants; one as a model too (infer reads checkpoints)
for e in 1 2; do
    "$bin/train" -q --stop-after $e "$tmp/fixed.ini" "$tmp/fx.csv" "$tmp/fy.csv" "$tmp/ck$e.bin"
    cp "$tmp/ck$e.bin.ckpt" "$c/checkpoint/fixed_e$e.ckpt"
done
variants "$c/checkpoint/fixed_e1.ckpt" "$c/checkpoint" fixed_e1
cp "$c/checkpoint/fixed_e2.ckpt" "$c/model/fixed_e2.ckpt"

for d in "$c"/*; do echo "$(basename "$d"): $(ls "$d" | wc -l) seeds, $(du -sk "$d" | cut -f1) KB"; done
