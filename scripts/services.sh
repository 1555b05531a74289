#!/usr/bin/env bash
# Private RabbitMQ node + PostgreSQL cluster for local paytx development and
# tests. All state lives under $PAYTX_HOME (default: <repo>/.paytx); ports are
# non-default so system-wide services never clash with these.
#
# Usage: scripts/services.sh COMMAND
#   start           start both (idempotent), create PostgreSQL roles and
#                   databases, the admin AMQP user and the per-role users of
#                   docker/rabbitmq-definitions.json
#   stop            stop both cleanly (also stops our private epmd)
#   status          show what runs (exit 0 if both run, 3 otherwise)
#   restart-rabbit  stop RabbitMQ (rabbitmqctl stop) and start it, wait ready
#   restart-pg      pg_ctl stop -m immediate, then start (crash recovery)
#   restart-redis   stop Redis and start it again (empty: it keeps no state)
#   kill-redis      kill -9 the Redis server (no restart)
#   redis-cli ARGS...    run redis-cli against the private Redis
#   kill-rabbit     kill -9 the RabbitMQ beam process (no restart)
#   kill-pg         pg_ctl stop -m immediate (no restart)
#   env             print `export` lines for the paytx environment variables
#   rabbitmqctl ARGS...  run rabbitmqctl against the private node
#   psql ARGS...         run psql against the private cluster (as "paytx", the
#                        superuser, over the unix socket)
#
# PostgreSQL roles (created and given their DEV-ONLY passwords on every start;
# TCP needs a password, scram-sha-256; only the OS user running the cluster
# reaches the unix socket, where "paytx" is trusted):
#   paytx              superuser: creates roles and databases (tests too)
#   paytx_owner        owns the databases and schemas; `paytxctl migrate` and
#                      paytxctl's other commands use it (PAYTX_PG_DSN,
#                      PAYTX_LEDGER_DSNS, PAYTX_RISK_DSN)
#   paytx_coordinator  the coordinator log only (PAYTX_PG_DSN_COORDINATOR)
#   paytx_ledger       the ledger shards only, journal append-only
#                      (PAYTX_PG_DSN_LEDGER0, PAYTX_PG_DSN_LEDGER1)
#   paytx_risk         the risk participant's database only (PAYTX_PG_DSN_RISK)
#   paytx_cache        read-only: ledger balances and holds, the coordinator's
#                      payment states and decisions (PAYTX_PG_DSN_CACHE,
#                      PAYTX_CACHE_LEDGER_DSNS; paytx-cache, docs/cache.md)
#
# Redis (the balance cache, docs/cache.md) listens on 127.0.0.1 only, keeps
# no state on disk (a restart empties it, as a flush does) and runs from
# $PAYTX_HOME/redis.
#
# Environment knobs:
#   PAYTX_HOME        state directory            (default <repo>/.paytx)
#   PAYTX_PG_PORT     PostgreSQL port            (default 5439)
#   PAYTX_AMQP_PORT   AMQP port                  (default 5679; amqps
#                     (TLS) listens on PAYTX_AMQP_PORT+1, Erlang
#                     distribution uses PAYTX_AMQP_PORT+20000)
#   PAYTX_EPMD_PORT   private epmd port          (default 4379)
#   PAYTX_REDIS_PORT  Redis port                 (default 6399)
#   PAYTX_PG_BIN      PostgreSQL server binaries (default /usr/lib/postgresql/15/bin)
#   PAYTX_PG_OS_USER  OS user running PostgreSQL when invoked as root
#                     (default: "postgres" if it exists, else "paytx", created)
#
# TLS: start creates a test CA and a certificate for "localhost" (only) in
# $PAYTX_HOME/tls with scripts/tls-certs.sh; RabbitMQ then also serves amqps
# and PostgreSQL accepts SSL on the same port. The plain listeners stay.
#
# Works as root (PostgreSQL then runs as PAYTX_PG_OS_USER through runuser;
# RabbitMQ runs as root) or as a normal user (both run as that user).
set -euo pipefail

# --------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd -P)

# PostgreSQL refuses to run as root, so as root it runs as another user who
# must be able to reach PAYTX_HOME. A clone under /root (mode 700) is not
# reachable: its state then lives under /var/tmp, named after the clone.
# Every script asks this one for the place, so they all agree.
default_home() {
    local home=$REPO_DIR/.paytx
    # "nobody" always exists, unlike postgres before the packages are in.
    if [ "$(id -u)" = 0 ] && ! runuser -u nobody -- test -x "$REPO_DIR" 2>/dev/null; then
        home=/var/tmp/paytx-$(printf '%s' "$REPO_DIR" | md5sum | cut -c1-10)
    fi
    printf '%s' "$home"
}
PAYTX_HOME=${PAYTX_HOME:-$(default_home)}
case "$PAYTX_HOME" in
    /*) ;;
    *) PAYTX_HOME="$PWD/$PAYTX_HOME" ;;
esac

PG_PORT=${PAYTX_PG_PORT:-5439}
AMQP_PORT=${PAYTX_AMQP_PORT:-5679}
AMQPS_PORT=$((AMQP_PORT + 1))
DIST_PORT=$((AMQP_PORT + 20000))
EPMD_PORT=${PAYTX_EPMD_PORT:-4379}

PG_SUPERUSER=paytx
PG_OWNER=paytx_owner
PG_COORD_ROLE=paytx_coordinator
PG_LEDGER_ROLE=paytx_ledger
PG_RISK_ROLE=paytx_risk
PG_CACHE_ROLE=paytx_cache
# Fixed development passwords, like the HMAC key below. DEV-ONLY: never use
# them outside a local/test setup. URL-safe: they go into DSN URIs as is.
PG_SUPERUSER_PASS=paytx-DEV-ONLY-pg-superuser-5c1e
PG_OWNER_PASS=paytx-DEV-ONLY-pg-owner-9a7d
PG_COORD_PASS=paytx-DEV-ONLY-pg-coordinator-3f08
PG_LEDGER_PASS=paytx-DEV-ONLY-pg-ledger-b64c
PG_RISK_PASS=paytx-DEV-ONLY-pg-risk-7e21
PG_CACHE_PASS=paytx-DEV-ONLY-pg-cache-41d3
PG_DATABASES=(paytx_coord paytx_ledger0 paytx_ledger1 paytx_risk)
PG_DIR="$PAYTX_HOME/pg"
PG_DATA="$PG_DIR/data"
PG_SOCK_DIR="$PG_DIR/run"
PG_LOG="$PG_DIR/postgres.log"
PG_TLS_DIR="$PG_DIR/tls"   # PostgreSQL's own copy: its key must be its user's

TLS_DIR="$PAYTX_HOME/tls"

RABBIT_NODE=paytx@localhost
RABBIT_USER=paytx
RABBIT_PASS=paytx
RABBIT_DIR="$PAYTX_HOME/rabbit"
RABBIT_PID_FILE="$RABBIT_DIR/rabbit.pid"
RABBIT_LOG_DIR="$RABBIT_DIR/log"
RABBIT_STARTUP_LOG="$RABBIT_LOG_DIR/startup.log"
RABBIT_START_TIMEOUT=90
# Users per role, with permissions on vhost "/" (see README "RabbitMQ users").
# Their DEV-ONLY password is the user name + "-DEV-ONLY" (hashed in the file).
RABBIT_DEFINITIONS="$REPO_DIR/docker/rabbitmq-definitions.json"
RABBIT_DEV_PASS_SUFFIX=-DEV-ONLY

# Fixed development key. DEV-ONLY: never use it outside a local/test setup.
DEV_HMAC_KEY='paytx-DEV-ONLY-hmac-key-do-not-use-in-production-0123456789'

REDIS_PORT=${PAYTX_REDIS_PORT:-6399}
REDIS_DIR="$PAYTX_HOME/redis"
REDIS_PID_FILE="$REDIS_DIR/redis.pid"
REDIS_LOG="$REDIS_DIR/redis.log"

IS_ROOT=0
[ "$(id -u)" -eq 0 ] && IS_ROOT=1

# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
log()  { printf '[paytx] %s\n' "$*"; }
warn() { printf '[paytx] warning: %s\n' "$*" >&2; }
die()  { printf '[paytx] error: %s\n' "$*" >&2; exit 1; }

# True if something accepts TCP connections on 127.0.0.1:$1.
port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

pid_alive() {
    [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null
}

# PIDs of processes named $1 whose environment contains the exact entry $2.
# Lets us find *our* beam/epmd processes without touching anyone else's.
pids_by_comm_and_env() {
    local comm=$1 entry=$2 d
    for d in /proc/[0-9]*; do
        [ -r "$d/comm" ] || continue
        [ "$(cat "$d/comm" 2>/dev/null || true)" = "$comm" ] || continue
        if { tr '\0' '\n' <"$d/environ"; } 2>/dev/null | grep -qxF -- "$entry"; then
            printf '%s\n' "${d#/proc/}"
        fi
    done
}

tail_file() {
    local f=$1 n=${2:-40}
    if [ -r "$f" ]; then
        printf -- '----- last %s lines of %s -----\n' "$n" "$f" >&2
        tail -n "$n" "$f" >&2 || true
        printf -- '-----\n' >&2
    fi
}

ensure_home() {
    if [ ! -d "$PAYTX_HOME" ]; then
        mkdir -p "$PAYTX_HOME"
        chmod 755 "$PAYTX_HOME"
    fi
}

# Test CA and server certificate for both services (kept across restarts).
ensure_tls() {
    ensure_home
    if [ ! -s "$TLS_DIR/server.pem" ]; then
        log "tls: creating a test CA and a certificate for localhost in $TLS_DIR"
    fi
    "$SCRIPT_DIR/tls-certs.sh" "$TLS_DIR" || die "tls: cannot create certificates in $TLS_DIR"
}

# --------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------
find_pg_bin() {
    if [ -n "${PAYTX_PG_BIN:-}" ]; then
        PG_BIN=$PAYTX_PG_BIN
    elif [ -x /usr/lib/postgresql/15/bin/pg_ctl ]; then
        PG_BIN=/usr/lib/postgresql/15/bin
    else
        # newest installed major version (Debian/Ubuntu layout), else PATH
        PG_BIN=$(printf '%s\n' /usr/lib/postgresql/*/bin | grep -v '\*' | sort -V | tail -n 1 || true)
        if [ -z "$PG_BIN" ] && command -v pg_ctl >/dev/null 2>&1; then
            PG_BIN=$(dirname "$(command -v pg_ctl)")
        fi
    fi
    if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/pg_ctl" ]; then
        die "PostgreSQL server binaries not found (set PAYTX_PG_BIN or run scripts/install-deps.sh)"
    fi
}

# OS user that owns and runs the cluster.
pg_os_user() {
    if [ "$IS_ROOT" -eq 0 ]; then
        id -un
    elif [ -n "${PAYTX_PG_OS_USER:-}" ]; then
        printf '%s\n' "$PAYTX_PG_OS_USER"
    elif id -u postgres >/dev/null 2>&1; then
        printf 'postgres\n'
    else
        printf 'paytx\n'
    fi
}

ensure_pg_os_user() {
    [ "$IS_ROOT" -eq 1 ] || return 0
    local u
    u=$(pg_os_user)
    if ! id -u "$u" >/dev/null 2>&1; then
        log "postgres: creating system user '$u' (PostgreSQL refuses to run as root)"
        useradd --system --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin "$u"
    fi
}

# Run a PostgreSQL server-side command as the cluster owner.
pg_run() {
    if [ "$IS_ROOT" -eq 1 ]; then
        (cd / && runuser -u "$(pg_os_user)" -- "$@")
    else
        "$@"
    fi
}

pg_running() {
    [ -f "$PG_DATA/PG_VERSION" ] || return 1
    pg_run "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
}

pg_pid() {
    head -n 1 "$PG_DATA/postmaster.pid" 2>/dev/null || true
}

# Over the unix socket: the superuser is trusted there (see pg_write_hba).
pg_psql() {
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK_DIR" -p "$PG_PORT" -U "$PG_SUPERUSER" "$@"
}

pg_prepare_dirs() {
    ensure_home
    ensure_pg_os_user
    mkdir -p "$PG_DIR" "$PG_SOCK_DIR"
    local sock="$PG_SOCK_DIR/.s.PGSQL.$PG_PORT"
    [ "${#sock}" -lt 100 ] ||
        die "socket path too long for a unix socket ($sock); use a shorter PAYTX_HOME"
    if [ "$IS_ROOT" -eq 1 ]; then
        local u
        u=$(pg_os_user)
        chown -R "$u:" "$PG_DIR"
        chmod 700 "$PG_DIR"
        if ! pg_run test -w "$PG_DIR"; then
            die "OS user '$u' cannot access $PG_DIR (is a parent directory, e.g. /root, not world-traversable?). Set PAYTX_HOME to a path '$u' can reach."
        fi
    fi
}

pg_initdb() {
    if [ -f "$PG_DATA/PG_VERSION" ]; then
        return 0
    fi
    if [ -d "$PG_DATA" ] && [ -n "$(ls -A "$PG_DATA" 2>/dev/null)" ]; then
        die "$PG_DATA exists, is not empty and is not a cluster; remove it"
    fi
    log "postgres: initdb (first start) in $PG_DATA"
    if ! pg_run "$PG_BIN/initdb" -D "$PG_DATA" -U "$PG_SUPERUSER" \
            --auth=trust -E UTF8 --no-locale >"$PAYTX_HOME/initdb.log" 2>&1; then
        tail_file "$PAYTX_HOME/initdb.log"
        die "initdb failed"
    fi
    rm -f "$PAYTX_HOME/initdb.log"
    local conf="$PG_DATA/postgresql.conf"
    printf "\n# paytx: settings managed by scripts/services.sh\ninclude_if_exists = 'paytx.conf'\n" |
        pg_run tee -a "$conf" >/dev/null
}

# Rewritten on every start so port/paths follow the environment.
pg_write_conf() {
    {
        printf '# Generated by scripts/services.sh on every start. Do not edit.\n'
        printf "listen_addresses = '127.0.0.1'\n"
        printf 'port = %s\n' "$PG_PORT"
        printf "unix_socket_directories = '%s'\n" "$PG_SOCK_DIR"
        printf 'fsync = on\n'
        printf 'synchronous_commit = on\n'
        printf 'full_page_writes = on\n'
        # Sized for a server, not a laptop default: checkpoints every 15
        # minutes at most, instead of every minute or two under load (each
        # one makes every page's first change afterwards write a full page
        # image). Durability is unchanged; only crash recovery replays more.
        printf 'shared_buffers = 512MB\n'
        printf 'max_wal_size = 8GB\n'
        printf "checkpoint_timeout = '15min'\n"
        printf 'max_connections = 200\n'
        printf "password_encryption = 'scram-sha-256'\n"
        printf 'unix_socket_permissions = 0700\n'
        printf "log_line_prefix = '%%m [%%p] %%u@%%d '\n"
        printf 'ssl = on\n'
        printf "ssl_cert_file = '%s'\n" "$PG_TLS_DIR/server.pem"
        printf "ssl_key_file = '%s'\n" "$PG_TLS_DIR/server.key"
    } | pg_run tee "$PG_DATA/paytx.conf" >/dev/null
}

# PostgreSQL refuses a key that is not its OS user's own with mode 0600,
# so it gets a copy.
pg_tls_files() {
    ensure_tls
    mkdir -p "$PG_TLS_DIR"
    install -m 644 "$TLS_DIR/server.pem" "$PG_TLS_DIR/server.pem"
    install -m 600 "$TLS_DIR/server.key" "$PG_TLS_DIR/server.key"
    if [ "$IS_ROOT" -eq 1 ]; then
        chown -R "$(pg_os_user):" "$PG_TLS_DIR"
    fi
    chmod 700 "$PG_TLS_DIR"
}

# A cluster started before TLS existed: ssl can be turned on by a reload.
pg_ensure_ssl() {
    [ "$(pg_psql -d postgres -Atc 'SHOW ssl')" = on ] && return 0
    log "postgres: turning on ssl (reload)"
    pg_tls_files
    pg_write_conf
    pg_psql -d postgres -Atc 'SELECT pg_reload_conf()' >/dev/null
    local i
    for i in $(seq 1 50); do
        [ "$(pg_psql -d postgres -Atc 'SHOW ssl')" = on ] && return 0
        sleep 0.1
    done
    tail_file "$PG_LOG"
    die "postgres: ssl is still off after a reload"
}

# Who may connect how; rewritten on every start (a cluster made by an older
# services.sh trusted every TCP connection). The unix socket is reachable
# only by the cluster's OS user (unix_socket_permissions = 0700).
pg_write_hba() {
    {
        printf '# Generated by scripts/services.sh on every start. Do not edit.\n'
        printf '# TYPE  DATABASE  USER  ADDRESS  METHOD\n'
        printf 'local   all       %s    trust\n' "$PG_SUPERUSER"
        printf 'local   all       all   scram-sha-256\n'
        printf 'host    all       all   127.0.0.1/32  scram-sha-256\n'
        printf 'host    all       all   ::1/128       scram-sha-256\n'
    } | pg_run tee "$PG_DATA/pg_hba.conf" >/dev/null
}

# Create the roles (idempotent) and (re)set their development passwords.
# None of them may create roles or databases; only paytx_owner will own
# anything (the databases, then what `paytxctl migrate` creates).
pg_ensure_roles() {
    pg_psql -d postgres <<EOF
SET client_min_messages = warning;
ALTER ROLE $PG_SUPERUSER PASSWORD '$PG_SUPERUSER_PASS';
DO \$\$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM (VALUES ('$PG_OWNER', '$PG_OWNER_PASS'),
                                   ('$PG_COORD_ROLE', '$PG_COORD_PASS'),
                                   ('$PG_LEDGER_ROLE', '$PG_LEDGER_PASS'),
                                   ('$PG_RISK_ROLE', '$PG_RISK_PASS'),
                                   ('$PG_CACHE_ROLE', '$PG_CACHE_PASS')) AS v(name, pass)
    LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r.name) THEN
            EXECUTE format('CREATE ROLE %I', r.name);
        END IF;
        EXECUTE format('ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE '
                       'NOREPLICATION NOBYPASSRLS PASSWORD %L', r.name, r.pass);
    END LOOP;
END
\$\$;
EOF
}

# Databases owned by paytx_owner. One made by an older services.sh (owned,
# with everything in it, by the superuser) is handed over, so that
# `paytxctl migrate` as paytx_owner can replace its functions.
pg_ensure_databases() {
    local db
    for db in "${PG_DATABASES[@]}"; do
        if [ "$(pg_psql -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = '$db'")" != 1 ]; then
            log "postgres: creating database $db"
            pg_psql -d postgres -c "CREATE DATABASE $db OWNER $PG_OWNER"
            continue
        fi
        if [ "$(pg_psql -d postgres -Atc "SELECT datdba::regrole FROM pg_database WHERE datname = '$db'")" = "$PG_OWNER" ]; then
            continue
        fi
        log "postgres: handing database $db over to $PG_OWNER"
        pg_psql -d "$db" <<EOF
ALTER DATABASE $db OWNER TO $PG_OWNER;
DO \$\$
DECLARE
    r record;
BEGIN
    -- tables first: their serial sequences follow them
    FOR r IN SELECT c.oid::regclass AS name, c.relkind FROM pg_class c
             WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'S', 'v')
               AND c.relowner = '$PG_SUPERUSER'::regrole ORDER BY c.relkind = 'S'
    LOOP
        IF (SELECT relowner FROM pg_class WHERE oid = r.name) = '$PG_SUPERUSER'::regrole THEN
            EXECUTE format('ALTER %s %s OWNER TO $PG_OWNER',
                           CASE r.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                                          ELSE 'TABLE' END, r.name);
        END IF;
    END LOOP;
    FOR r IN SELECT p.oid::regprocedure AS name FROM pg_proc p
             WHERE p.pronamespace = 'public'::regnamespace
               AND p.proowner = '$PG_SUPERUSER'::regrole
    LOOP
        EXECUTE format('ALTER FUNCTION %s OWNER TO $PG_OWNER', r.name);
    END LOOP;
END
\$\$;
EOF
    done
}

pg_start() {
    find_pg_bin
    if pg_running; then
        log "postgres: already running (pid $(pg_pid), 127.0.0.1:$PG_PORT)"
        pg_write_hba   # a cluster started by an older services.sh trusted TCP
        pg_run "$PG_BIN/pg_ctl" -D "$PG_DATA" reload >/dev/null
    else
        pg_prepare_dirs
        pg_initdb
        if port_in_use "$PG_PORT"; then
            die "postgres: port $PG_PORT is already in use by another process (another PAYTX_HOME? set PAYTX_PG_PORT)"
        fi
        pg_tls_files
        pg_write_conf
        pg_write_hba
        log "postgres: starting on 127.0.0.1:$PG_PORT (ssl on)"
        if ! pg_run "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 120 start >/dev/null; then
            tail_file "$PG_LOG"
            die "postgres: failed to start"
        fi
        log "postgres: running (pid $(pg_pid))"
    fi
    pg_ensure_ssl
    pg_ensure_roles
    pg_ensure_databases
}

# $1: shutdown mode (fast = clean, immediate = crash-like)
pg_stop() {
    local mode=${1:-fast}
    find_pg_bin
    if ! pg_running; then
        log "postgres: not running"
        return 0
    fi
    log "postgres: stopping (-m $mode, pid $(pg_pid))"
    if ! pg_run "$PG_BIN/pg_ctl" -D "$PG_DATA" -m "$mode" -w -t 120 stop >/dev/null; then
        tail_file "$PG_LOG"
        die "postgres: failed to stop"
    fi
    log "postgres: stopped"
}

pg_status() {
    find_pg_bin
    if pg_running; then
        log "postgres: running (pid $(pg_pid), 127.0.0.1:$PG_PORT, socket dir $PG_SOCK_DIR, data $PG_DATA)"
        return 0
    fi
    log "postgres: stopped (data $PG_DATA$([ -f "$PG_DATA/PG_VERSION" ] || printf ', not initialised'))"
    return 1
}

# --------------------------------------------------------------------------
# RabbitMQ
# --------------------------------------------------------------------------
find_rabbit_sbin() {
    if [ -n "${PAYTX_RABBIT_SBIN:-}" ]; then
        RABBIT_SBIN=$PAYTX_RABBIT_SBIN
    elif [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
        # Debian/Ubuntu: /usr/sbin/rabbitmq-* are wrappers that `su rabbitmq`
        # (losing our environment); the real scripts live here.
        RABBIT_SBIN=/usr/lib/rabbitmq/bin
    elif command -v rabbitmq-server >/dev/null 2>&1; then
        RABBIT_SBIN=$(dirname "$(command -v rabbitmq-server)")
    else
        die "rabbitmq-server not found (run scripts/install-deps.sh)"
    fi
    [ -x "$RABBIT_SBIN/rabbitmqctl" ] || die "rabbitmqctl not found in $RABBIT_SBIN"
}

# Run a command with the private node's environment (in a subshell).
rabbit_env_run() {
    (
        # drop anything inherited that would point elsewhere
        unset RABBITMQ_ENV_LOADED RABBITMQ_MNESIA_DIR RABBITMQ_LOGS \
              RABBITMQ_FEATURE_FLAGS_FILE RABBITMQ_PLUGINS_EXPAND_DIR \
              RABBITMQ_QUORUM_DIR RABBITMQ_STREAM_DIR RABBITMQ_USE_LONGNAME
        export HOME="$RABBIT_DIR/home"
        export RABBITMQ_NODENAME="$RABBIT_NODE"
        export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
        export RABBITMQ_NODE_PORT="$AMQP_PORT"
        export RABBITMQ_DIST_PORT="$DIST_PORT"
        export RABBITMQ_CONF_ENV_FILE="$RABBIT_DIR/rabbitmq-env.conf"
        export RABBITMQ_CONFIG_FILE="$RABBIT_DIR/rabbitmq.conf"
        export RABBITMQ_CONFIG_FILES="$RABBIT_DIR/conf.d"
        export RABBITMQ_ADVANCED_CONFIG_FILE="$RABBIT_DIR/advanced.config"
        export RABBITMQ_ENABLED_PLUGINS_FILE="$RABBIT_DIR/enabled_plugins"
        export RABBITMQ_MNESIA_BASE="$RABBIT_DIR/mnesia"
        export RABBITMQ_LOG_BASE="$RABBIT_LOG_DIR"
        export RABBITMQ_PID_FILE="$RABBIT_PID_FILE"
        export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
        export ERL_EPMD_PORT="$EPMD_PORT"
        export ERL_EPMD_ADDRESS=127.0.0.1
        # the Elixir CLI warns (and mangles output) without a UTF-8 locale
        export LANG=C.UTF-8 LC_ALL=C.UTF-8
        cd "$RABBIT_DIR"
        exec "$@"
    )
}

rabbitmqctl_run() {
    rabbit_env_run "$RABBIT_SBIN/rabbitmqctl" -n "$RABBIT_NODE" "$@"
}

# PIDs of our beam.smp (the RabbitMQ VM), found via its environment.
rabbit_beam_pids() {
    pids_by_comm_and_env beam.smp "RABBITMQ_PID_FILE=$RABBIT_PID_FILE"
}

rabbit_epmd_pids() {
    pids_by_comm_and_env epmd "ERL_EPMD_PORT=$EPMD_PORT"
}

rabbit_pid() {
    local p
    p=$(cat "$RABBIT_PID_FILE" 2>/dev/null || true)
    if pid_alive "$p"; then
        printf '%s\n' "$p"
        return 0
    fi
    rabbit_beam_pids | head -n 1
}

rabbit_running() {
    [ -n "$(rabbit_pid)" ]
}

rabbit_prepare_dirs() {
    ensure_home
    mkdir -p "$RABBIT_DIR/home" "$RABBIT_DIR/mnesia" "$RABBIT_LOG_DIR" "$RABBIT_DIR/conf.d"
    chmod 700 "$RABBIT_DIR"
    local cookie="$RABBIT_DIR/home/.erlang.cookie"
    if [ ! -s "$cookie" ]; then
        (umask 077; od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$cookie")
    fi
    chmod 400 "$cookie"
    : >"$RABBIT_DIR/rabbitmq-env.conf"   # shields us from /etc/rabbitmq/rabbitmq-env.conf
    printf '[].\n' >"$RABBIT_DIR/enabled_plugins"
    ensure_tls
    # amqps: clients verify us; a client certificate is optional.
    cat >"$RABBIT_DIR/rabbitmq.conf" <<EOF
# Generated by scripts/services.sh on every start. Do not edit.
listeners.tcp.default = 127.0.0.1:$AMQP_PORT
listeners.ssl.default = 127.0.0.1:$AMQPS_PORT
ssl_options.cacertfile = $TLS_DIR/ca.pem
ssl_options.certfile = $TLS_DIR/server.pem
ssl_options.keyfile = $TLS_DIR/server.key
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = false
loopback_users.guest = true
log.console = false
log.file.level = info
disk_free_limit.absolute = 50MB
EOF
}

# Each rabbitmqctl call costs ~1-2 s of CLI start-up, so only one when the
# user already exists.
rabbit_ensure_user() {
    if rabbitmqctl_run list_users --silent | awk '{print $1}' | grep -qxF "$RABBIT_USER"; then
        return 0
    fi
    log "rabbitmq: creating user $RABBIT_USER (administrator, all permissions on vhost /)"
    rabbitmqctl_run add_user "$RABBIT_USER" "$RABBIT_PASS" >/dev/null
    rabbitmqctl_run set_user_tags "$RABBIT_USER" administrator >/dev/null
    rabbitmqctl_run set_permissions -p / "$RABBIT_USER" '.*' '.*' '.*' >/dev/null
}

# Users, permissions and topology of vhost "/" for the role users. Importing
# is idempotent (it updates what exists); one rabbitmqctl call.
rabbit_import_definitions() {
    rabbitmqctl_run import_definitions "$RABBIT_DEFINITIONS" >/dev/null ||
        die "rabbitmq: cannot import $RABBIT_DEFINITIONS"
}

rabbit_wait_ready() {
    local launcher_pid=$1 deadline=$((SECONDS + RABBIT_START_TIMEOUT))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if rabbitmqctl_run await_startup --timeout 5 >/dev/null 2>&1; then
            return 0
        fi
        if ! pid_alive "$launcher_pid" && ! rabbit_running; then
            tail_file "$RABBIT_STARTUP_LOG"
            tail_file "$RABBIT_LOG_DIR/$RABBIT_NODE.log"
            die "rabbitmq: node exited during start-up"
        fi
        sleep 1
    done
    tail_file "$RABBIT_STARTUP_LOG"
    tail_file "$RABBIT_LOG_DIR/$RABBIT_NODE.log"
    die "rabbitmq: not ready after ${RABBIT_START_TIMEOUT}s"
}

rabbit_start() {
    find_rabbit_sbin
    if rabbit_running; then
        log "rabbitmq: already running (pid $(rabbit_pid), 127.0.0.1:$AMQP_PORT)"
        rabbitmqctl_run await_startup --timeout 60 >/dev/null ||
            die "rabbitmq: running but not ready"
        # Listeners are fixed at boot; a node from before TLS needs a restart.
        port_in_use "$AMQPS_PORT" ||
            warn "rabbitmq: no amqps listener on 127.0.0.1:$AMQPS_PORT; run '$0 restart-rabbit'"
    else
        local p
        for p in "$AMQP_PORT" "$AMQPS_PORT" "$DIST_PORT"; do
            if port_in_use "$p"; then
                die "rabbitmq: port $p is already in use by another process (another PAYTX_HOME? set PAYTX_AMQP_PORT)"
            fi
        done
        rabbit_prepare_dirs
        rm -f "$RABBIT_PID_FILE"
        log "rabbitmq: starting node $RABBIT_NODE on 127.0.0.1:$AMQP_PORT, amqps $AMQPS_PORT (dist $DIST_PORT, epmd $EPMD_PORT)"
        local launcher
        # own session, so a Ctrl-C / process-group kill of the caller does not
        # take the broker down; --wait keeps the launcher pid meaningful
        if setsid --help 2>&1 | grep -q -- '--wait'; then
            launcher=(setsid --wait)
        elif command -v setsid >/dev/null 2>&1; then
            launcher=(setsid)
        else
            launcher=()
        fi
        rabbit_env_run nohup "${launcher[@]}" "$RABBIT_SBIN/rabbitmq-server" \
            </dev/null >"$RABBIT_STARTUP_LOG" 2>&1 &
        local launcher_pid=$!
        rabbit_wait_ready "$launcher_pid"
        log "rabbitmq: running (pid $(rabbit_pid))"
    fi
    rabbit_ensure_user
    rabbit_import_definitions
}

rabbit_stop() {
    find_rabbit_sbin
    if ! rabbit_running; then
        log "rabbitmq: not running"
        return 0
    fi
    local pid
    pid=$(rabbit_pid)
    log "rabbitmq: stopping (pid $pid)"
    if ! rabbitmqctl_run stop "$RABBIT_PID_FILE" >/dev/null 2>&1; then
        warn "rabbitmq: rabbitmqctl stop failed; sending SIGTERM"
        kill -TERM "$pid" 2>/dev/null || true
    fi
    local tries=0 p
    while rabbit_running && [ "$tries" -lt 60 ]; do
        sleep 0.5
        tries=$((tries + 1))
    done
    if rabbit_running; then
        warn "rabbitmq: still running; sending SIGKILL"
        for p in $(rabbit_beam_pids); do
            kill -9 "$p" 2>/dev/null || true
        done
    fi
    rm -f "$RABBIT_PID_FILE"
    log "rabbitmq: stopped"
}

rabbit_kill() {
    find_rabbit_sbin
    local pids
    # (the pid file has no trailing newline)
    pids=$( { printf '%s\n' "$(cat "$RABBIT_PID_FILE" 2>/dev/null || true)"; rabbit_beam_pids; } | sort -u)
    local p killed=""
    for p in $pids; do
        if pid_alive "$p"; then
            kill -9 "$p" 2>/dev/null && killed="$killed $p"
        fi
    done
    if [ -z "$killed" ]; then
        log "rabbitmq: not running"
        return 0
    fi
    log "rabbitmq: killed -9 beam pid$killed"
    for p in $(seq 1 20); do
        rabbit_running || break
        sleep 0.25
    done
    rm -f "$RABBIT_PID_FILE"
}

# Stop the epmd on our port, unless some node (e.g. another PAYTX_HOME
# using the same PAYTX_EPMD_PORT) is still registered with it.
epmd_stop() {
    local pids
    pids=$(rabbit_epmd_pids)
    [ -n "$pids" ] || return 0
    if ERL_EPMD_PORT="$EPMD_PORT" epmd -names 2>/dev/null | grep -q '^name '; then
        log "epmd: left running on port $EPMD_PORT (other nodes still registered)"
        return 0
    fi
    # epmd -kill refuses while names are registered; our node is gone by now
    ERL_EPMD_PORT="$EPMD_PORT" epmd -kill >/dev/null 2>&1 || true
    sleep 0.2
    pids=$(rabbit_epmd_pids)
    local p
    for p in $pids; do
        kill "$p" 2>/dev/null || true
    done
    log "epmd: stopped (port $EPMD_PORT)"
}

rabbit_status() {
    find_rabbit_sbin
    if rabbit_running; then
        if rabbitmqctl_run await_startup --timeout 5 >/dev/null 2>&1; then
            log "rabbitmq: running (pid $(rabbit_pid), node $RABBIT_NODE, amqp 127.0.0.1:$AMQP_PORT, epmd $EPMD_PORT)"
            return 0
        fi
        log "rabbitmq: process $(rabbit_pid) exists but the node is not ready"
        return 1
    fi
    log "rabbitmq: stopped"
    return 1
}

# --------------------------------------------------------------------------
# Redis (the balance cache: nothing in it is needed after a restart)
# --------------------------------------------------------------------------
redis_pid() {
    local p
    p=$(cat "$REDIS_PID_FILE" 2>/dev/null || true)
    if pid_alive "$p" && [ "$(cat "/proc/$p/comm" 2>/dev/null)" = redis-server ]; then
        printf '%s\n' "$p"
    fi
}

redis_running() {
    [ -n "$(redis_pid)" ]
}

redis_cli() {
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"
}

redis_start() {
    command -v redis-server >/dev/null 2>&1 || die "redis-server not found (run scripts/install-deps.sh)"
    if redis_running; then
        log "redis: already running (pid $(redis_pid), 127.0.0.1:$REDIS_PORT)"
        return 0
    fi
    if port_in_use "$REDIS_PORT"; then
        die "redis: port $REDIS_PORT is already in use by another process (set PAYTX_REDIS_PORT)"
    fi
    ensure_home
    mkdir -p "$REDIS_DIR"
    chmod 700 "$REDIS_DIR"
    # No persistence: the cache is rebuilt from the ledger, and a restart
    # must look like a flush to the readers (docs/cache.md).
    {
        printf '# Generated by scripts/services.sh on every start. Do not edit.\n'
        printf 'bind 127.0.0.1\nprotected-mode yes\nport %s\n' "$REDIS_PORT"
        printf 'daemonize yes\npidfile %s\nlogfile %s\ndir %s\n' \
            "$REDIS_PID_FILE" "$REDIS_LOG" "$REDIS_DIR"
        printf 'save ""\nappendonly no\n'
    } >"$REDIS_DIR/redis.conf"
    rm -f "$REDIS_PID_FILE"
    log "redis: starting on 127.0.0.1:$REDIS_PORT"
    redis-server "$REDIS_DIR/redis.conf" || die "redis: failed to start"
    local i
    for i in $(seq 1 100); do
        if [ "$(redis_cli ping 2>/dev/null)" = PONG ] && redis_running; then
            log "redis: running (pid $(redis_pid))"
            return 0
        fi
        sleep 0.1
    done
    tail_file "$REDIS_LOG"
    die "redis: not answering after 10s"
}

redis_stop() {
    local pid
    pid=$(redis_pid)
    if [ -z "$pid" ]; then
        log "redis: not running"
        return 0
    fi
    log "redis: stopping (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    local i
    for i in $(seq 1 100); do
        pid_alive "$pid" || break
        sleep 0.1
    done
    if pid_alive "$pid"; then
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$REDIS_PID_FILE"
    log "redis: stopped"
}

redis_kill() {
    local pid
    pid=$(redis_pid)
    if [ -z "$pid" ]; then
        log "redis: not running"
        return 0
    fi
    kill -9 "$pid" 2>/dev/null || true
    local i
    for i in $(seq 1 50); do
        pid_alive "$pid" || break
        sleep 0.1
    done
    rm -f "$REDIS_PID_FILE"
    log "redis: killed -9 pid $pid"
}

redis_status() {
    if redis_running; then
        log "redis: running (pid $(redis_pid), 127.0.0.1:$REDIS_PORT)"
        return 0
    fi
    log "redis: stopped"
    return 1
}

# --------------------------------------------------------------------------
# env
# --------------------------------------------------------------------------
print_env() {
    local at="@127.0.0.1:$PG_PORT"
    local pgadmin="postgresql://$PG_SUPERUSER:$PG_SUPERUSER_PASS$at"
    local pg="postgresql://$PG_OWNER:$PG_OWNER_PASS$at"
    local coord="postgresql://$PG_COORD_ROLE:$PG_COORD_PASS$at"
    local ledger="postgresql://$PG_LEDGER_ROLE:$PG_LEDGER_PASS$at"
    local risk="postgresql://$PG_RISK_ROLE:$PG_RISK_PASS$at"
    local cache="postgresql://$PG_CACHE_ROLE:$PG_CACHE_PASS$at"
    # vhost "/" spelled %2f: per the AMQP URI spec (and librabbitmq's
    # amqp_parse_url) a bare trailing "/" means the EMPTY vhost, which fails
    # with "NOT_ALLOWED - vhost  not found".
    local amqpadmin="amqp://$RABBIT_USER:$RABBIT_PASS@127.0.0.1:$AMQP_PORT/%2f"
    role() { # user -> its URL (DEV-ONLY password)
        printf 'amqp://%s:%s%s@127.0.0.1:%s/%%2f' "$1" "$1" "$RABBIT_DEV_PASS_SUFFIX" "$AMQP_PORT"
    }
    cat <<EOF
# paytx local development environment (scripts/services.sh env)
export PAYTX_HOME='$PAYTX_HOME'
# One RabbitMQ user per role: clients (paytxctl pay) use PAYTX_AMQP_URL.
export PAYTX_AMQP_URL='$(role paytx-client)'
export PAYTX_AMQP_URL_COORDINATOR='$(role paytx-coordinator)'
export PAYTX_AMQP_URL_LEDGER_0='$(role paytx-ledger.0)'
export PAYTX_AMQP_URL_LEDGER_1='$(role paytx-ledger.1)'
export PAYTX_AMQP_URL_RISK='$(role paytx-risk)'
# Operator (paytxctl dead): reads paytx.dead, writes paytx.submit, nothing else.
export PAYTX_AMQP_URL_OPERATOR='$(role paytx-operator)'
export PAYTX_AMQP_URL_CACHE='$(role paytx-cache)'
# Administrator (all permissions, management): tooling only.
export PAYTX_AMQP_URL_ADMIN='$amqpadmin'
# paytxctl (migrate, accounts, balances, status) as the owner role; each
# daemon gets its own role's DSN as its PAYTX_PG_DSN (scripts/daemons.sh).
export PAYTX_PG_DSN='$pg/paytx_coord'
export PAYTX_LEDGER_DSNS='ledger.0=$pg/paytx_ledger0,ledger.1=$pg/paytx_ledger1'
export PAYTX_PG_DSN_COORDINATOR='$coord/paytx_coord'
export PAYTX_PG_DSN_LEDGER0='$ledger/paytx_ledger0'
export PAYTX_PG_DSN_LEDGER1='$ledger/paytx_ledger1'
# The risk participant's database: paytxctl (migrate, limits) as the owner,
# paytx-risk as its role (scripts/daemons.sh start-risk).
export PAYTX_RISK_DSN='$pg/paytx_risk'
export PAYTX_PG_DSN_RISK='$risk/paytx_risk'
export PAYTX_SHARDS='ledger.0,ledger.1'
# The balance cache (docs/cache.md): paytxctl balance serves from it when
# set; paytx-cache reads the ledger and the coordinator log as paytx_cache.
export PAYTX_REDIS_PORT='$REDIS_PORT'
export PAYTX_REDIS_URL='redis://127.0.0.1:$REDIS_PORT'
export PAYTX_PG_DSN_CACHE='$cache/paytx_coord'
export PAYTX_CACHE_LEDGER_DSNS='ledger.0=$cache/paytx_ledger0,ledger.1=$cache/paytx_ledger1'
# DEV-ONLY HMAC key for the local stack; never use it anywhere real.
export PAYTX_HMAC_KEY='$DEV_HMAC_KEY'
export PAYTX_TEST_AMQP_URL='$amqpadmin'
export PAYTX_TEST_PG_DSN='$pgadmin/postgres'
export PAYTX_TEST_PG_ADMIN_DSN='$pgadmin/postgres'
# The roles the integration tests run paytxctl and each daemon as (the
# database in these is replaced by each test's own).
export PAYTX_TEST_PG_OWNER_DSN='$pg/postgres'
export PAYTX_TEST_PG_COORDINATOR_DSN='$coord/postgres'
export PAYTX_TEST_PG_LEDGER_DSN='$ledger/postgres'
export PAYTX_TEST_PG_RISK_DSN='$risk/postgres'
export PAYTX_TEST_PG_CACHE_DSN='$cache/postgres'
export PAYTX_TEST_REDIS_URL='redis://127.0.0.1:$REDIS_PORT'
# TLS (test CA, certificate for "localhost" only): amqps port, CA and certs
export PAYTX_TEST_AMQPS_PORT='$AMQPS_PORT'
export PAYTX_TEST_TLS_DIR='$TLS_DIR'
EOF
}

# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------
usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
    exit 2
}

main() {
    local cmd=${1:-}
    [ $# -gt 0 ] && shift
    case "$cmd" in
        start)
            pg_start
            rabbit_start
            redis_start
            log "all services up; environment: . $SCRIPT_DIR/env.sh"
            ;;
        stop)
            redis_stop
            rabbit_stop
            epmd_stop
            pg_stop fast
            ;;
        status)
            local rc=0
            pg_status || rc=3
            rabbit_status || rc=3
            redis_status || rc=3
            return "$rc"
            ;;
        restart-rabbit)
            rabbit_stop
            rabbit_start
            ;;
        restart-pg)
            pg_stop immediate
            pg_start
            ;;
        kill-rabbit)
            rabbit_kill
            ;;
        kill-pg)
            pg_stop immediate
            ;;
        restart-redis)
            redis_stop
            redis_start
            ;;
        kill-redis)
            redis_kill
            ;;
        redis-cli)
            redis_cli "$@"
            ;;
        env)
            print_env
            ;;
        rabbitmqctl)
            find_rabbit_sbin
            rabbitmqctl_run "$@"
            ;;
        psql)
            find_pg_bin
            pg_psql "$@"
            ;;
        -h|--help|help|"")
            usage
            ;;
        *)
            printf '[paytx] unknown command: %s\n' "$cmd" >&2
            usage
            ;;
    esac
}

main "$@"
