#!/usr/bin/env bash
# test_interop.sh: `make test-interop`. Every example model (and the exporters' test
# fixtures: every layer kind, both dtypes) is trained, exported to ONNX, checked by
# onnx.checker.check_model(full_check=True) and run in ONNX Runtime on its test rows
# against infer --probs (regressors: infer): the same class on every row, every value
# within 1e-5 relative (scripts/ort_check.js says how small values are compared).
#
# Needs what `make tests` does not: python3 with the onnx module (Debian python3-onnx)
# and node with the npm package onnxruntime-node in $ORT_DIR/node_modules, installed
# with `npm install --prefix $ORT_DIR --ignore-scripts onnxruntime-node` (the package
# bundles its CPU library; its install script only fetches GPU builds). Either part is
# skipped, with a message, when its tool is missing; exit status 1 only on a mismatch.
#
# Environment: MINIDL_BIN (default build), ORT_DIR (default $MINIDL_BIN/interop).
set -u
cd "$(dirname "$0")/.."
BIN=${MINIDL_BIN:-build}
ORT_DIR=${ORT_DIR:-$BIN/interop}

PY=
for p in python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import onnx' >/dev/null 2>&1; then PY=$p; break; fi
done
ORT=
if command -v node >/dev/null 2>&1 &&
    NODE_PATH="$ORT_DIR/node_modules" node -e "require('onnxruntime-node')" >/dev/null 2>&1; then ORT=1; fi
if [ -z "$PY" ] && [ -z "$ORT" ]; then
    echo "test-interop: SKIPPED: neither python3 with onnx (apt-get install python3-onnx) nor onnxruntime-node" \
        "in $ORT_DIR/node_modules (npm install --prefix $ORT_DIR --ignore-scripts onnxruntime-node)"
    exit 0
fi
[ -n "$PY" ] || echo "test-interop: onnx.checker part skipped: no python3 with the onnx module (apt-get install python3-onnx)"
[ -n "$ORT" ] || echo "test-interop: ONNX Runtime part skipped: no onnxruntime-node in $ORT_DIR/node_modules" \
    "(npm install --prefix $ORT_DIR --ignore-scripts onnxruntime-node)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/minidl-interop-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
passed=0 failed=0 skipped=0

# Fashion-MNIST's shape without its data: 64 rows of 784 pixels 0-255, labels 0-9.
awk 'BEGIN { s = 7; for (r = 0; r < 64; r++) { line = "";
        for (c = 0; c < 784; c++) { s = (s * 69069 + 1) % 4294967296;
            line = line (c ? "," : "") (((int(c / 28) + r) % 3) ? int(s / 16777216) : 0) }
        print line > "'"$WORK"'/fm_x.csv"; print r % 10 > "'"$WORK"'/fm_y.csv" } }'

# name config train_x train_y test_x epochs
MODELS="
xor configs/xor.ini data/xor_x.csv data/xor_y.csv data/xor_x.csv 300
digits_mlp configs/digits_mlp.ini data/digits_train_x.csv data/digits_train_y.csv data/digits_test_x.csv 30
diabetes_mse configs/diabetes_mse.ini data/diabetes_train_x.csv data/diabetes_train_y.csv data/diabetes_test_x.csv 200
fmnist_mlp configs/fmnist_mlp.ini $WORK/fm_x.csv $WORK/fm_y.csv $WORK/fm_x.csv 3
fmnist_cnn configs/fmnist_cnn.ini $WORK/fm_x.csv $WORK/fm_y.csv $WORK/fm_x.csv 3
kinds_f32 tests/fixtures/export_kinds_f32.ini data/digits_train_x.csv data/digits_train_y.csv data/digits_test_x.csv 10
kinds_f64 tests/fixtures/export_kinds_f64.ini data/digits_train_x.csv data/digits_train_y.csv data/digits_test_x.csv 10
mlp_f64 tests/fixtures/export_mlp_f64.ini data/diabetes_train_x.csv data/diabetes_train_y.csv data/diabetes_test_x.csv 100
bn_mlp_f32 tests/fixtures/export_bn_mlp_f32.ini data/digits_train_x.csv data/digits_train_y.csv data/digits_test_x.csv 1
bn_mlp_f64 tests/fixtures/export_bn_mlp_f64.ini data/digits_train_x.csv data/digits_train_y.csv data/digits_test_x.csv 1
bn_cnn_f32 tests/fixtures/export_bn_cnn_f32.ini data/digits_train_x.csv data/digits_train_y.csv data/digits_test_x.csv 1
bn_cnn_f64 tests/fixtures/export_bn_cnn_f64.ini data/digits_train_x.csv data/digits_train_y.csv data/digits_test_x.csv 1
fmnist_lenet configs/fmnist_lenet.ini $WORK/fm_x.csv $WORK/fm_y.csv $WORK/fm_x.csv 1
"

fail() { echo "test-interop: FAIL $1: $2"; failed=$((failed + 1)); }

while read -r name config tx ty test epochs; do
    [ -n "$name" ] || continue
    m=$WORK/$name
    if ! "$BIN/train" -q -e "$epochs" "$config" "$tx" "$ty" "$m.bin" ||
        ! "$BIN/dlexport" -q -o "$m.onnx" "$m.bin"; then
        fail "$name" "train or dlexport failed"
        continue
    fi
    if [ -n "$PY" ]; then
        if out=$("$PY" -c 'import sys, onnx; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)' \
            "$m.onnx" 2>&1); then
            echo "test-interop: ok $name: onnx.checker.check_model(full_check=True)"
            passed=$((passed + 1))
        else
            fail "$name" "onnx.checker: $(echo "$out" | tail -1)"
        fi
    fi
    [ -n "$ORT" ] || continue
    classes=1 # CrossEntropy, the default, unless the config says MSE
    if grep -Eq '^[[:space:]]*loss[[:space:]]*=[[:space:]]*MSE' "$config"; then classes=; fi
    if [ -n "$classes" ]; then
        "$BIN/infer" --probs "$m.bin" "$test" > "$m.values" && "$BIN/infer" "$m.bin" "$test" > "$m.classes"
    else
        "$BIN/infer" "$m.bin" "$test" > "$m.values" && rm -f "$m.classes"
    fi
    out=$(NODE_PATH="$ORT_DIR/node_modules" node scripts/ort_check.js "$m.onnx" "$test" "$m.values" \
        ${classes:+"$m.classes"} 2>&1)
    rc=$?
    out=${out//$WORK\//}
    if [ $rc -eq 0 ]; then
        echo "test-interop: ok $out"
        passed=$((passed + 1))
    elif [ $rc -eq 2 ] && [[ $out == *"implementation for Conv"* ]] && grep -q '^dtype=float64' "$config"; then
        echo "test-interop: skip $name in ONNX Runtime: its CPU provider has no float64 Conv ($out)"
        skipped=$((skipped + 1))
    else
        fail "$name" "$out"
    fi
done <<< "$MODELS"

echo "test-interop: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
