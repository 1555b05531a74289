#!/usr/bin/env bash
# paytx against this machine's own limits, measured in one run.
#
# Installs what is missing, builds, starts the private RabbitMQ and
# PostgreSQL and the paytx daemons, then runs scripts/bench.py:
#   - pgbench: a double-entry transfer (two UPDATEs, two INSERTs, COMMIT),
#     uniform over the accounts and all on 10 hot accounts;
#   - RabbitMQ alone: confirmed persistent 300-byte messages, 100 in flight,
#     through a durable queue to an acking consumer (paytx-bench-amqp);
#   - paytx-bench: cross-shard uniform and hot-10 at full speed, open loop at
#     half the maximum for latency, and memory at 1k and 10k in flight;
# and prints each paytx figure as a ratio to its baseline. Full durability
# throughout: fsync and synchronous_commit on, confirms, manual acks.
#
#   scripts/bench.sh [--duration S] [--repeat N] [--json FILE] [--quick]
#   scripts/bench.sh --soak MINUTES [--rate N]   memory over a long open-loop run
set -euo pipefail
. "$(dirname "$0")/common.sh"
"$REPO_DIR/scripts/install-deps.sh" >/dev/null
"$REPO_DIR/scripts/services.sh" start >/dev/null
paytx_load_env
[ -f "$BUILD_DIR/build.ninja" ] || meson setup "$BUILD_DIR" "$REPO_DIR" -Dbuildtype=release >/dev/null
ninja -C "$BUILD_DIR" >/dev/null
"$BUILD_DIR/paytxctl" migrate >/dev/null
# Fresh daemons with this build, logging warnings only (a line per state
# change at info would be measured too).
"$REPO_DIR/scripts/daemons.sh" stop >/dev/null
PAYTX_LOG_LEVEL=warn "$REPO_DIR/scripts/daemons.sh" start >/dev/null
trap '"$REPO_DIR/scripts/daemons.sh" stop >/dev/null' EXIT
PAYTX_BUILD_DIR=$BUILD_DIR /usr/bin/python3 "$REPO_DIR/scripts/bench.py" "$@"
