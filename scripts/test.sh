#!/usr/bin/env bash
# The second quick-start command: the whole test suite, as CI runs it.
#
# Installs what is missing, starts the private RabbitMQ, PostgreSQL and Redis,
# then runs every unit and integration test on a normal build and on an
# AddressSanitizer + UndefinedBehaviorSanitizer build, the unit tests under
# valgrind, and short libFuzzer runs (scripts/fuzz.sh runs them longer).
# Ends with one "N passed, N failed" line.
#
#   scripts/test.sh            everything
#   scripts/test.sh --quick    the normal build only
set -euo pipefail
. "$(dirname "$0")/common.sh"
quick=0
[ "${1:-}" = "--quick" ] && quick=1

say "installing missing Debian packages (if any)"
"$REPO_DIR/scripts/install-deps.sh"
say "starting RabbitMQ, PostgreSQL and Redis (state in $PAYTX_HOME)"
"$REPO_DIR/scripts/services.sh" start
paytx_load_env
export PAYTX_TEST_RABBITMQCTL="$REPO_DIR/scripts/services.sh rabbitmqctl"
export PAYTX_TEST_COMPOSE=1   # installed above: a missing docker-compose fails

passed=0 failed=0 skipped=0
tally() { # count the results of the last meson test run in $1
    local counts log
    # meson names the log after the wrapper (testlog-valgrind.json): newest wins
    log=$(ls -t "$1"/meson-logs/testlog*.json | head -n 1)
    counts=$(/usr/bin/python3 - "$log" <<'PY'
import json, sys
c = {"OK": 0, "FAIL": 0, "SKIP": 0}
for line in open(sys.argv[1]):
    r = json.loads(line)["result"]
    c["OK" if r in ("OK", "EXPECTEDFAIL") else "SKIP" if r == "SKIP" else "FAIL"] += 1
print(c["OK"], c["FAIL"], c["SKIP"])
PY
)
    read -r p f s <<<"$counts"
    passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
}

run_suite() { # name, build dir, meson setup options..., then -- meson test options
    local name=$1 dir=$2; shift 2
    local setup=() opts=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do setup+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    opts=("$@")
    say "== $name =="
    [ -f "$dir/build.ninja" ] || meson setup "$dir" "$REPO_DIR" "${setup[@]}" >/dev/null
    ninja -C "$dir"
    PAYTX_BUILD_DIR=$dir meson test -C "$dir" --print-errorlogs "${opts[@]}" || true
    tally "$dir"
}

run_suite "normal build: unit, integration and short chaos tests" "$BUILD_DIR"
if [ $quick = 0 ]; then
    export ASAN_OPTIONS=detect_leaks=1:exitcode=23:abort_on_error=0
    export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
    run_suite "ASan + UBSan build: unit and integration tests" "$REPO_DIR/build-sanitize" \
        -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug -- \
        --no-suite chaos
    unset ASAN_OPTIONS UBSAN_OPTIONS
    CC=clang run_suite "libFuzzer: short runs of the parser and signature fuzzers" \
        "$REPO_DIR/build-fuzz" -Dfuzz=true -Dtests=false -- --suite fuzz
    CK_FORK=no run_suite "valgrind: unit tests" "$BUILD_DIR" -- --suite unit \
        --wrapper "valgrind --quiet --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect"
fi

echo
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ] && [ "$skipped" = 0 ]
