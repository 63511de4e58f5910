#!/usr/bin/env bash
# tests/fuzz/run.sh BIN_DIR SECONDS TARGET...: runs each libFuzzer target for SECONDS
# from its committed corpus (tests/fuzz/corpus/TARGET, the seeds, and found/TARGET,
# what long runs found; new inputs go to
# build-fuzz/corpus/TARGET) with its dictionary, prints executions, executions per
# second and coverage, and fails if any target finds something: a crash, a sanitizer
# report, an exit, a leak, a timeout or too much memory (FUZZ_OPTS). The input that
# did it is left in tests/fuzz/findings/TARGET-*; `BIN_DIR/fuzz_TARGET FILE` replays it.
# A timeout that does not recur when its input is replayed alone is reported but does
# not fail the run: on a loaded machine (CI, other jobs) a 1 s limit trips on pauses.
set -uo pipefail
bin=$1 secs=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
work=$(dirname "$bin")
mkdir -p "$here/findings" "$work/logs"
dict_of() {
    case $1 in
        config) echo "$here/dict/config.dict" ;;
        csv_*) echo "$here/dict/csv.dict" ;;
        *) echo "$here/dict/dlasm.dict" ;;
    esac
}
failed=()
for t in "$@"; do
    mkdir -p "$work/corpus/$t"
    log="$work/logs/$t.log"
    "$bin/fuzz_$t" ${FUZZ_OPTS:-} -max_total_time="$secs" -print_final_stats=1 -dict="$(dict_of "$t")" \
        -artifact_prefix="$here/findings/$t-" "$work/corpus/$t" "$here/corpus/$t" \
        $( [ -d "$here/found/$t" ] && echo "$here/found/$t") >"$log" 2>&1
    rc=$?
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")
    cov=$(sed -n 's/.* cov: \([0-9]*\) ft: \([0-9]*\).*/\1 edges, \2 features/p' <<<"$last")
    printf 'fuzz %-12s %ss: %s executions, %s/s, %s, peak %s MB\n' "$t" "$secs" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${rss:-?}"
    unit=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    # A timeout on a loaded machine may be the machine's: one that does not come back
    # when its input is run alone again is reported, kept, and not a failure.
    if [ $rc -ne 0 ] && grep -q 'ERROR: libFuzzer: timeout' "$log" && [ -f "$unit" ] &&
        "$bin/fuzz_$t" ${FUZZ_OPTS:-} -runs=3 "$unit" >"$log.replay" 2>&1; then
        echo "fuzz $t: a timeout that did not recur when replayed (machine load?): $unit"
        rc=0
    fi
    if [ $rc -ne 0 ]; then
        failed+=("$t")
        echo "fuzz $t: FINDING (exit $rc), log $log:"
        grep -E 'ERROR|SUMMARY|Test unit written|runtime error|fuzz .*: ' "$log" | head -8 | sed 's/^/    /'
    fi
done
if [ ${#failed[@]} -ne 0 ]; then
    echo "fuzz: findings in ${failed[*]}: inputs under tests/fuzz/findings/"
    exit 1
fi
echo "fuzz: no findings"
