#!/usr/bin/env bash
# The bank chaos test, longer than the default suite's short run:
#
#   scripts/chaos.sh [--seed N] [--duration S] [--rate R] [...]   (see --help)
#
# Without --seed a random seed is drawn and printed; pass it back to replay
# the same fault schedule. Starts the private services like the tests do.
set -euo pipefail
. "$(dirname "$0")/common.sh"
"$REPO_DIR/scripts/install-deps.sh"
[ -f "$BUILD_DIR/build.ninja" ] || meson setup "$BUILD_DIR" "$REPO_DIR" >/dev/null
ninja -C "$BUILD_DIR" >/dev/null
"$REPO_DIR/scripts/services.sh" start
paytx_load_env
export PAYTX_TEST_RABBITMQCTL="$REPO_DIR/scripts/services.sh rabbitmqctl"
export PAYTX_BUILD_DIR=$BUILD_DIR
[ $# -eq 0 ] && set -- --duration 600 --rate 30
exec /usr/bin/python3 "$REPO_DIR/tests/chaos/bank.py" "$@"
