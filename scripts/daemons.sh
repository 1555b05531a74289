#!/usr/bin/env bash
# Start or stop the paytx daemons of the local stack: one coordinator and
# two ledger shards, logs and pid files under $PAYTX_HOME/run. `start` first
# applies the schema (paytxctl migrate, as the owner role); each daemon then
# runs as its own PostgreSQL role and its own RabbitMQ user (see
# scripts/services.sh env).
#
# `start-risk` adds the risk participant (paytx-risk) to the running stack:
# it starts it and restarts the coordinator with PAYTX_PARTICIPANTS=risk,
# nothing else. `start` with PAYTX_PARTICIPANTS=risk in the environment
# starts all four at once. Set limits with `paytxctl limit set`.
#
# Each daemon serves Prometheus metrics (GET /metrics) and GET /healthz on
# 127.0.0.1. With PAYTX_METRICS_PORT set: the coordinator on that port,
# ledger.0 on the next, ledger.1 on the one after, risk on the fourth, the
# cache on the fifth.
# Unset (the default): each picks a free port, so stacks of several work
# trees on one host never collide; `status` shows the ports (from the logs).
#
# `start-cache` adds the balance cache (paytx-cache, docs/cache.md) the same
# way: it starts it and restarts the coordinator with the cache (and risk,
# if it runs) in PAYTX_PARTICIPANTS. `start` with "cache" in
# PAYTX_PARTICIPANTS starts it with the rest.
#
#   scripts/daemons.sh start|start-risk|start-cache|stop|status
set -euo pipefail
. "$(dirname "$0")/common.sh"
paytx_load_env
RUN_DIR=$PAYTX_HOME/run
mkdir -p "$RUN_DIR"
metrics_addr() { # offset from $PAYTX_METRICS_PORT
    if [ -n "${PAYTX_METRICS_PORT:-}" ]; then
        echo "127.0.0.1:$((PAYTX_METRICS_PORT + $1))"
    else
        echo "127.0.0.1:0"
    fi
}

metrics_url() { # the last port the daemon's log says it serves on
    local port
    port=$(grep -ao 'metrics: serving /metrics and /healthz on [^ ]* (port [0-9]*)' \
           "$RUN_DIR/$1.log" 2>/dev/null | tail -n 1 | sed 's/.*(port \([0-9]*\))/\1/')
    [ -n "$port" ] && echo ", metrics http://127.0.0.1:$port/metrics"
}

start_one() { # name, then env assignments, then the command
    local name=$1; shift
    if [ -f "$RUN_DIR/$name.pid" ] && kill -0 "$(cat "$RUN_DIR/$name.pid")" 2>/dev/null; then
        say "$name already running"
        return
    fi
    env "$@" >>"$RUN_DIR/$name.log" 2>&1 &
    echo $! >"$RUN_DIR/$name.pid"
    say "$name started (log: $RUN_DIR/$name.log)"
}

stop_one() {
    local name=$1 pid
    [ -f "$RUN_DIR/$name.pid" ] || return 0
    pid=$(cat "$RUN_DIR/$name.pid")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
        say "$name stopped"
    fi
    rm -f "$RUN_DIR/$name.pid"
}

start_risk() {
    start_one risk PAYTX_PARTICIPANT=risk PAYTX_PG_DSN="$PAYTX_PG_DSN_RISK" \
        PAYTX_AMQP_URL="$PAYTX_AMQP_URL_RISK" PAYTX_METRICS_ADDR="$(metrics_addr 3)" \
        "$BUILD_DIR/paytx-risk"
}

start_cache() {
    start_one cache PAYTX_PARTICIPANT=cache PAYTX_PG_DSN="$PAYTX_PG_DSN_CACHE" \
        PAYTX_LEDGER_DSNS="$PAYTX_CACHE_LEDGER_DSNS" PAYTX_AMQP_URL="$PAYTX_AMQP_URL_CACHE" \
        PAYTX_METRICS_ADDR="$(metrics_addr 4)" "$BUILD_DIR/paytx-cache"
}

running() {
    [ -f "$RUN_DIR/$1.pid" ] && kill -0 "$(cat "$RUN_DIR/$1.pid")" 2>/dev/null
}

start_coordinator() {
    start_one coordinator PAYTX_COORDINATOR_ID=local-1 PAYTX_PG_DSN="$PAYTX_PG_DSN_COORDINATOR" \
        PAYTX_AMQP_URL="$PAYTX_AMQP_URL_COORDINATOR" PAYTX_PARTICIPANTS="$1" \
        PAYTX_METRICS_ADDR="$(metrics_addr 0)" "$BUILD_DIR/paytx-coordinator"
}

ALL="coordinator ledger.0 ledger.1 risk cache"

case "${1:-}" in
start)
    # The schema is applied here, as its owner (PAYTX_PG_DSN): the daemons
    # run as roles that may not change it and refuse to start without it.
    "$BUILD_DIR/paytxctl" migrate
    case ",${PAYTX_PARTICIPANTS:-}," in *,risk,*) start_risk ;; esac
    case ",${PAYTX_PARTICIPANTS:-}," in *,cache,*) start_cache ;; esac
    start_one ledger.0 PAYTX_PARTICIPANT=ledger.0 PAYTX_PG_DSN="$PAYTX_PG_DSN_LEDGER0" \
        PAYTX_AMQP_URL="$PAYTX_AMQP_URL_LEDGER_0" PAYTX_METRICS_ADDR="$(metrics_addr 1)" \
        "$BUILD_DIR/paytx-ledger"
    start_one ledger.1 PAYTX_PARTICIPANT=ledger.1 PAYTX_PG_DSN="$PAYTX_PG_DSN_LEDGER1" \
        PAYTX_AMQP_URL="$PAYTX_AMQP_URL_LEDGER_1" PAYTX_METRICS_ADDR="$(metrics_addr 2)" \
        "$BUILD_DIR/paytx-ledger"
    start_coordinator "${PAYTX_PARTICIPANTS:-}"
    ;;
start-risk)
    "$BUILD_DIR/paytxctl" migrate   # the risk database too (PAYTX_RISK_DSN)
    start_risk
    stop_one coordinator
    start_coordinator "risk$(running cache && echo ,cache)"
    ;;
start-cache)
    "$BUILD_DIR/paytxctl" migrate   # the paytx_cache grants
    start_cache
    stop_one coordinator
    start_coordinator "$(running risk && echo risk,)cache"
    ;;
stop)
    for n in $ALL; do stop_one "$n"; done
    ;;
status)
    for n in $ALL; do
        if [ -f "$RUN_DIR/$n.pid" ] && kill -0 "$(cat "$RUN_DIR/$n.pid")" 2>/dev/null; then
            echo "$n: running (pid $(cat "$RUN_DIR/$n.pid")$(metrics_url "$n" || true))"
        else
            echo "$n: stopped"
        fi
    done
    ;;
*)
    echo "usage: $0 start|start-risk|start-cache|stop|status" >&2
    exit 2
    ;;
esac
