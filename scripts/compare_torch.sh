#!/bin/sh
# compare_torch.sh: minidl against PyTorch on the same Fashion-MNIST training work,
# both on one core, in one invocation, so that the ratios come from one run.
#
# Usage: scripts/compare_torch.sh [--quick] [--lenet] [DIR]
#
#   DIR      where the Fashion-MNIST data is prepared once (default /tmp/minidl-fmnist)
#            by scripts/fmnist.sh, from Debian's dataset-fashion-mnist
#   --quick  1 epoch per network on both sides instead of 5 (10 with --lenet)
#   --lenet  only configs/fmnist_lenet.ini (convolutions, batch normalisation, pooling,
#            dropout) against scripts/torch_lenet.py, the same network in PyTorch (Adam
#            1e-3, batch 64, per-pixel standardisation, as the config), 10 epochs
#
# Needs `make` first (build/train, build/infer, build/csv2bin; MINIDL_BIN names another
# build directory). PyTorch is optional: /usr/bin/python3 with python3-torch and the
# yardstick scripts torch_mlp.py / torch_cnn.py from ../shared/bench (or
# $MINIDL_SHARED_BENCH). Without it only minidl's figures are printed.
#
# What runs, each pinned to CPU $MINIDL_CPU (default 0) when taskset works:
#   minidl   train -e N configs/fmnist_{mlp,cnn}.ini on DIR/fmnist_train.bin, then
#            infer --labels on DIR/fmnist_test.bin for the test accuracy
#   PyTorch  torch_{mlp,cnn}.py --threads 1 --batch 64 --coretype auto --shuffle
#            --epochs N --csv DIR/torch (its best one-core setting, with the allocator
#            settings that keep np.loadtxt from slowing its epochs down)
# Both sides train with Adam, batch 64, a new shuffle each epoch, on the same 60000
# training and 10000 test images: minidl with its configs' settings (the CNN's lr 0.004
# with a cosine decay, beta2 0.98, per-pixel standardisation), the yardstick scripts with
# theirs (Adam 1e-3, constant). Seconds per epoch are the median over all
# epochs; ratio = PyTorch / minidl (above 1: minidl is faster). Peak RSS comes from
# /usr/bin/time -v when present. Logs stay in DIR/logs.
#
# Exit status: 0 on success (also without PyTorch), 1 if a run fails, 2 usage error.
set -u

usage() { echo "usage: $0 [--quick] [--lenet] [DIR]" >&2; exit 2; }
quick=0
lenet=0
dir=
for a in "$@"; do
    case "$a" in
        --quick) quick=1 ;;
        --lenet) lenet=1 ;;
        -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
        -*) usage ;;
        *) [ -z "$dir" ] || usage; dir=$a ;;
    esac
done
dir=${dir:-/tmp/minidl-fmnist}
epochs=5
nets="mlp cnn"
[ "$lenet" = 1 ] && epochs=10 nets=lenet
[ "$quick" = 1 ] && epochs=1

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${MINIDL_BIN:-$root/build}
case "$bin" in /*) ;; *) bin=$root/$bin ;; esac
shared=${MINIDL_SHARED_BENCH:-$root/../shared/bench}
logs=$dir/logs

die() { echo "$0: $*" >&2; exit 1; }

for p in train infer csv2bin; do
    [ -x "$bin/$p" ] || die "$bin/$p not found: run make first (or set MINIDL_BIN)"
done

# --- data: prepared once, reused by later runs ---------------------------------------
have_data() {
    for f in fmnist_train.bin fmnist_test.bin fmnist_train_x.csv fmnist_train_y.csv \
             fmnist_test_x.csv fmnist_test_y.csv; do
        [ -s "$dir/$f" ] || return 1
    done
}
if ! have_data; then
    echo "preparing Fashion-MNIST in $dir (scripts/fmnist.sh) ..."
    MINIDL_BIN=$bin "$root/scripts/fmnist.sh" "$dir" >/dev/null || die "scripts/fmnist.sh failed"
    have_data || die "scripts/fmnist.sh did not write the data to $dir"
fi
mkdir -p "$logs" || die "cannot create $logs"

# torch_*.py --csv D reads D/{train,test}_{x,y}.csv (fmnist.py's layout); fmnist.sh
# names them fmnist_*: point links at the same files, so both sides read the same bytes.
mkdir -p "$dir/torch" || die "cannot create $dir/torch"
for s in train_x train_y test_x test_y; do
    ln -sf "../fmnist_$s.csv" "$dir/torch/$s.csv"
done

# --- how to run: one core, peak RSS if /usr/bin/time -v exists -------------------------
cpu=${MINIDL_CPU:-0}
pin=
if command -v taskset >/dev/null 2>&1 && taskset -c "$cpu" true 2>/dev/null; then pin="taskset -c $cpu"; fi
have_timev=0
if [ -x /usr/bin/time ] && /usr/bin/time -v -o /dev/null true 2>/dev/null; then have_timev=1; fi

# run LOG-STEM CMD...: stdout+stderr to LOG-STEM.log, resource usage to LOG-STEM.time.
run() {
    stem=$1; shift
    # $pin is left unquoted on purpose: empty, or the words "taskset -c N".
    # shellcheck disable=SC2086
    if [ "$have_timev" = 1 ]; then
        /usr/bin/time -v -o "$stem.time" $pin "$@" > "$stem.log" 2>&1
    else
        : > "$stem.time"
        $pin "$@" > "$stem.log" 2>&1
    fi
}

# --- parsing helpers --------------------------------------------------------------------
# median: the median of the numbers on stdin, one per line ("-" if there are none).
median() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "-"; exit }
        if (NR % 2) printf "%.3f\n", v[(NR + 1) / 2]
        else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# rss_mib FILE: "Maximum resident set size (kbytes)" of /usr/bin/time -v, in MiB.
rss_mib() {
    awk -F': ' '/Maximum resident set size/ { printf "%.0f\n", $2 / 1024; found = 1 }
                END { if (!found) print "-" }' "$1"
}
# ours_epochs LOG: seconds of each "train: epoch i/n ... X s ... samples/s" line.
ours_epochs() {
    awk '$1 == "train:" && $2 == "epoch" { for (i = 3; i <= NF; i++) if ($i == "s") { print $(i - 1); break } }' "$1"
}
# torch_epochs LOG: seconds of each "epoch i:   X s ..." line.
torch_epochs() { awk '$1 == "epoch" && $2 ~ /^[0-9]+:$/ { print $3 }' "$1"; }
# cpu_share FILE: "Percent of CPU this job got" of /usr/bin/time -v (below ~95% on one
# pinned core means other work took the core part of the time).
cpu_share() { sed -n 's/.*Percent of CPU this job got: *//p' "$1"; }
ratio() { awk -v t="$1" -v o="$2" 'BEGIN { if (t == "-" || o == "-" || o + 0 == 0) print "-"; else printf "%.2f\n", t / o }'; }

# --- minidl -----------------------------------------------------------------------------
# ours NET: trains configs/fmnist_NET.ini, evaluates; sets o_sec o_acc o_rss o_load.
ours() {
    net=$1
    run "$logs/minidl_$net" "$bin/train" -e "$epochs" "$root/configs/fmnist_$net.ini" \
        "$dir/fmnist_train.bin" "$dir/fmnist_train.bin" "$logs/minidl_$net.model" ||
        { tail -5 "$logs/minidl_$net.log" >&2; die "minidl $net training failed (log: $logs/minidl_$net.log)"; }
    "$bin/infer" --labels "$dir/fmnist_test.bin" "$logs/minidl_$net.model" "$dir/fmnist_test.bin" \
        > /dev/null 2> "$logs/minidl_${net}_infer.log" ||
        { tail -5 "$logs/minidl_${net}_infer.log" >&2; die "minidl $net inference failed"; }
    o_sec=$(ours_epochs "$logs/minidl_$net.log" | median)
    o_acc=$(awk '$1 == "accuracy" { print $2 }' "$logs/minidl_${net}_infer.log")
    o_rss=$(rss_mib "$logs/minidl_$net.time")
    o_load=$(sed -n 's/.*loaded .* in \([0-9.]*\) s.*/\1/p' "$logs/minidl_$net.log")
    shares="$shares minidl-$net $(cpu_share "$logs/minidl_$net.time")"
    if [ "$o_sec" = "-" ] || [ -z "$o_acc" ]; then die "cannot read minidl's $net figures from $logs/minidl_$net*.log"; fi
}

# --- PyTorch ----------------------------------------------------------------------------
torch_ok=0
why_no_torch=
if [ ! -x /usr/bin/python3 ] || ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
    why_no_torch="PyTorch not found (/usr/bin/python3 -c 'import torch' failed; apt install python3-torch)"
elif [ "$lenet" = 0 ] && { [ ! -r "$shared/torch_mlp.py" ] || [ ! -r "$shared/torch_cnn.py" ]; }; then
    why_no_torch="PyTorch found, but not its bench scripts in $shared (set MINIDL_SHARED_BENCH)"
else
    torch_ok=1
fi

# torch NET: sets t_sec t_acc t_rss t_load. The LeNet's yardstick is scripts/torch_lenet.py
# (it needs no OpenBLAS and shuffles each epoch itself).
torch() {
    net=$1
    if [ "$net" = lenet ]; then
        set -- "$root/scripts/torch_lenet.py" --threads 1 --batch 64
    else
        set -- "$shared/torch_$net.py" --threads 1 --batch 64 --coretype auto --shuffle
    fi
    run "$logs/torch_$net" env MALLOC_MMAP_THRESHOLD_=4194304 MALLOC_TRIM_THRESHOLD_=67108864 \
        /usr/bin/python3 "$@" --epochs "$epochs" --csv "$dir/torch" ||
        { tail -5 "$logs/torch_$net.log" >&2; die "PyTorch $net run failed (log: $logs/torch_$net.log)"; }
    t_sec=$(torch_epochs "$logs/torch_$net.log" | median)
    t_acc=$(sed -n 's/.*final test acc \([0-9.]*\).*/\1/p' "$logs/torch_$net.log")
    t_rss=$(rss_mib "$logs/torch_$net.time")
    [ "$t_rss" = "-" ] && t_rss=$(sed -n 's/.*peak RSS \([0-9]*\) MiB$/\1/p' "$logs/torch_$net.log" | tail -1)
    t_load=$(sed -n 's/^data load ([^)]*): \([0-9.]*\) s.*/\1/p' "$logs/torch_$net.log")
    shares="$shares torch-$net $(cpu_share "$logs/torch_$net.time")"
    if [ "$t_sec" = "-" ] || [ -z "$t_acc" ]; then die "cannot read PyTorch's $net figures from $logs/torch_$net.log"; fi
}

# --- run and report ---------------------------------------------------------------------
echo "minidl vs PyTorch, Fashion-MNIST, $epochs epoch(s) per network, batch 64, Adam, shuffled"
echo "cpu:    $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo 2>/dev/null | head -1), ${pin:-not pinned (no taskset)}"
echo "minidl: $("$bin/train" --version 2>&1 | head -1)"
echo "load before: $(uptime | sed 's/.*load average/load average/')"

rows='' shares=''
for net in $nets; do
    echo "running minidl $net ..."
    ours "$net"
    t_sec=- t_acc=- t_rss=- t_load=-
    if [ "$torch_ok" = 1 ]; then
        echo "running PyTorch $net ..."
        torch "$net"
    fi
    rows="$rows$net $o_sec $t_sec $(ratio "$t_sec" "$o_sec") $o_acc $t_acc ${o_rss:--} ${t_rss:--} ${o_load:--} ${t_load:--}
"
done
[ "$torch_ok" = 1 ] && echo "torch:  $(sed -n 's/^# [^:]*: //p' "$logs/torch_${net}.log" | head -1)"
echo "load after:  $(uptime | sed 's/.*load average/load average/')"
echo

printf '%-5s | %-17s | %-6s | %-15s | %-15s | %-15s\n' "" "s/epoch (median)" "" "test accuracy" "peak RSS MiB" "data load s"
printf '%-5s | %8s %8s | %-6s | %7s %7s | %7s %7s | %7s %7s\n' net minidl torch ratio minidl torch minidl torch minidl torch
printf '%s' "$rows" | while read -r n os ts r oa ta orr tr ol tl; do
    printf '%-5s | %8s %8s | %6s | %7s %7s | %7s %7s | %7s %7s\n' "$n" "$os" "$ts" "$r" "$oa" "$ta" "$orr" "$tr" "$ol" "$tl"
done
echo
echo "ratio = PyTorch s/epoch / minidl s/epoch (above 1: minidl is faster)."
[ "$have_timev" = 1 ] && echo "CPU share of each run (time -v):$shares"
if [ "$torch_ok" = 1 ]; then
    echo "data load: minidl reads the binary dataset (fmnist_train.bin); PyTorch reads the CSVs with np.loadtxt."
else
    echo "data load: minidl reads the binary dataset (fmnist_train.bin)."
fi
[ "$torch_ok" = 1 ] || echo "$why_no_torch: minidl's figures only."
echo "logs: $logs"
exit 0
