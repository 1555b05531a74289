#!/usr/bin/env bash
# The long fuzz run: each libFuzzer target of tests/fuzz for a while.
#
# Configures a clang build with -Dfuzz=true in build-fuzz (or
# $PAYTX_FUZZ_BUILD_DIR), builds the three targets and runs them one after
# the other, each for the given seconds with one worker per core
# ($FUZZ_JOBS to change). New inputs go to build-fuzz/corpus-<target>; the
# seed corpus in tests/fuzz/corpus is only read. Crash, leak, timeout and
# out-of-memory inputs go to build-fuzz/artifacts-<target>/, worker logs to
# build-fuzz/fuzz-logs-<target>/. Exits 1 if this run wrote any such input.
#
#   scripts/fuzz.sh            600 s per target
#   scripts/fuzz.sh 120        120 s per target
#
# Replay an input:   build-fuzz/tests/fuzz/fuzz_submit <file>
# Add finds to the seeds (smallest covering set):
#   build-fuzz/tests/fuzz/fuzz_submit -merge=1 tests/fuzz/corpus/submit build-fuzz/corpus-submit
set -euo pipefail
. "$(dirname "$0")/common.sh"

secs=${1:-600}
case $secs in
    '' | *[!0-9]* | 0) echo "usage: $0 [seconds per target, default 600]" >&2; exit 2 ;;
esac
dir=${PAYTX_FUZZ_BUILD_DIR:-$REPO_DIR/build-fuzz}
jobs=${FUZZ_JOBS:-$(nproc)}
targets=(submit protocol signature)
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

command -v clang >/dev/null || { echo "$0: clang is not installed" >&2; exit 1; }
if [ ! -f "$dir/build.ninja" ]; then
    say "configuring $dir (clang, -Dfuzz=true)"
    CC=clang meson setup "$dir" "$REPO_DIR" -Dfuzz=true -Dtests=false >/dev/null
fi
say "building the fuzz targets"
meson compile -C "$dir" "${targets[@]/#/fuzz_}" >/dev/null

# Print the final statistics of each worker log in $1.
summary() {
    local log
    for log in "$1"/fuzz-*.log; do
        [ -f "$log" ] || continue
        awk -v name="$(basename "$log")" '
            /^#[0-9]+/ && / cov: / { last = $0 }
            /^stat::number_of_executed_units:/ { runs = $2 }
            /^stat::average_exec_per_sec:/ { rate = $2 }
            /^stat::peak_rss_mb:/ { rss = $2 }
            /^SUMMARY: / { print "    " name ": " $0 }
            END {
                sub(/^#[0-9]+[ \t]+[A-Z]+[ \t]+/, "", last)
                sub(/ lim: .*/, "", last)
                printf "    %s: %s runs, %s exec/s, peak %s MB, %s\n", name,
                    runs ? runs : "?", rate ? rate : "?", rss ? rss : "?",
                    last ? last : "no coverage line"
            }' "$log"
    done
}

found=0
for t in "${targets[@]}"; do
    corpus=$dir/corpus-$t artifacts=$dir/artifacts-$t logs=$dir/fuzz-logs-$t
    mkdir -p "$corpus" "$artifacts" "$logs"
    rm -f "$logs"/fuzz-*.log
    stamp=$logs/.started
    touch "$stamp"
    before=$(find "$corpus" -type f | wc -l)
    say "fuzz_$t: ${secs}s, $jobs workers"
    status=0
    (cd "$logs" && "$dir/tests/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 -jobs="$jobs" -workers="$jobs" \
        -artifact_prefix="$artifacts/" "$corpus" "$REPO_DIR/tests/fuzz/corpus/$t") \
        >"$logs/main.log" 2>&1 || status=$?
    summary "$logs"
    echo "    corpus-$t: $before -> $(find "$corpus" -type f | wc -l) inputs"
    new=$(find "$artifacts" -type f -newer "$stamp" \
        \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | sort)
    if [ -n "$new" ]; then
        found=1
        echo "    FOUND (stacks in $logs/fuzz-*.log):"
        sed 's/^/      /' <<<"$new"
    elif [ "$status" != 0 ]; then
        found=1
        echo "    fuzz_$t exited $status without an artifact; see $logs/"
        tail -n 20 "$logs/main.log"
    fi
    slow=$(find "$artifacts" -type f -newer "$stamp" -name 'slow-unit-*' | wc -l)
    [ "$slow" = 0 ] || echo "    note: $slow slow inputs (slow-unit-*) in $artifacts"
done

if [ "$found" = 0 ]; then
    say "no crash, leak, timeout or out-of-memory input in ${secs}s per target"
else
    say "fuzzing found problems; replay with $dir/tests/fuzz/fuzz_<target> <file>"
fi
exit "$found"
