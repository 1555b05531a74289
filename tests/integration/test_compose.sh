#!/usr/bin/env bash
# docker-compose.yml agrees with the programs: the file is valid Compose, and
# every paytx service's command, run from the build directory with exactly
# that service's environment plus --check-config, accepts its settings; the
# RabbitMQ definitions are mounted and each daemon connects as its role. A
# broken setting must be refused with a message naming it. Needs no Docker
# engine (`docker-compose config` works without one) and no services.
#
# Usage: tests/integration/test_compose.sh
#   PAYTX_BUILD_DIR     build directory with the binaries (default <repo>/build)
#   PAYTX_COMPOSE_FILE  the compose file to check (default <repo>/docker-compose.yml)
#   PAYTX_TEST_COMPOSE  if set, a missing docker-compose is a failure, not a skip
#
# Exit: 0 pass, 1 fail, 77 skipped (docker-compose missing, PAYTX_TEST_COMPOSE unset).
set -euo pipefail

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
BUILD_DIR=${PAYTX_BUILD_DIR:-$REPO_DIR/build}
case "$BUILD_DIR" in
    /*) ;;
    *) BUILD_DIR="$PWD/$BUILD_DIR" ;;
esac
COMPOSE_FILE=${PAYTX_COMPOSE_FILE:-$REPO_DIR/docker-compose.yml}
# Debian's python3 with python3-yaml (a dependency of Debian's docker-compose),
# not whatever python3 comes first on PATH.
PYTHON=/usr/bin/python3

missing() {
    if [ -z "${PAYTX_TEST_COMPOSE:-}" ]; then
        printf 'test_compose: SKIP: %s (set PAYTX_TEST_COMPOSE=1 to make this a failure)\n' "$1"
        exit 77
    fi
    printf 'test_compose: FAIL: %s\n' "$1" >&2
    exit 1
}

command -v docker-compose >/dev/null 2>&1 ||
    missing "docker-compose is not installed (apt-get install docker-compose)"
if ! { [ -x "$PYTHON" ] && "$PYTHON" -c 'import yaml' 2>/dev/null; }; then
    missing "$PYTHON with the yaml module is not available (apt-get install python3-yaml)"
fi

for b in paytx-coordinator paytx-ledger paytx-risk paytx-cache paytxctl; do
    if [ ! -x "$BUILD_DIR/$b" ]; then
        printf 'test_compose: FAIL: %s not built (run ninja -C %s)\n' "$BUILD_DIR/$b" "$BUILD_DIR" >&2
        exit 1
    fi
done

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
: >"$TMP/empty.env"

# Resolve the file as Compose itself does, with the file's own defaults: no
# PAYTX_* from the caller's environment (e.g. scripts/env.sh) leaks into
# ${VAR:-default} interpolation, and no .env file either.
compose() {
    local v unset=()
    for v in $(compgen -e); do
        case "$v" in PAYTX_*) unset+=(-u "$v") ;; esac
    done
    env "${unset[@]}" docker-compose --env-file "$TMP/empty.env" \
        --project-directory "$REPO_DIR" -f "$COMPOSE_FILE" "$@"
}

echo "test_compose: docker-compose $(docker-compose version --short 2>/dev/null || echo '?')"
echo "test_compose: docker-compose config -q"
if ! compose config -q; then
    echo "test_compose: FAIL: docker-compose config -q rejected $COMPOSE_FILE" >&2
    exit 1
fi
compose config >"$TMP/resolved.yml"

PAYTX_BUILD_DIR="$BUILD_DIR" PAYTX_REPO_DIR="$REPO_DIR" "$PYTHON" - "$TMP/resolved.yml" <<'PY'
import base64
import hashlib
import json
import os
import subprocess
import sys
import urllib.parse

import yaml

# Where the Dockerfile installs the programs (meson's default prefix).
IMAGE_BIN_DIR = "/usr/local/bin"
PROGRAMS = ("paytx-coordinator", "paytx-ledger", "paytx-risk", "paytx-cache", "paytxctl")

build_dir = os.environ["PAYTX_BUILD_DIR"]
with open(sys.argv[1], encoding="utf-8") as f:
    doc = yaml.safe_load(f)

failures = []


def check(ok, what):
    print(("ok     " if ok else "FAILED ") + what, flush=True)
    if not ok:
        failures.append(what)


def as_list(command):
    # Compose allows a string command (shell-split) or a list.
    if isinstance(command, str):
        import shlex
        return shlex.split(command)
    return list(command or [])


def as_env(environment):
    if isinstance(environment, dict):
        return {k: "" if v is None else str(v) for k, v in environment.items()}
    env = {}
    for item in environment or []:
        k, _, v = item.partition("=")
        env[k] = v
    return env


def run(argv, env):
    # A clean environment: only what the container would get (plus nothing
    # from the caller, so a stray PAYTX_* cannot make a test pass).
    try:
        p = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return None, "", "timed out (did --check-config try to connect?)"
    return p.returncode, p.stdout, p.stderr


def show(rc, out, err):
    for line in (out + err).strip().splitlines():
        print("         | " + line)


services = doc.get("services") or {}
paytx = {name: s for name, s in services.items() if "build" in s}
check(bool(paytx), "docker-compose.yml has services built from the Dockerfile")

used = set()
cases = {}  # program -> (service name, argv, env) of its first service
for name in sorted(paytx):
    s = paytx[name]
    cmd = as_list(s.get("command"))
    if not cmd:
        check(False, f"{name}: has a command (the image's default is --help)")
        continue
    prog = cmd[0]
    if prog.startswith("/"):
        if os.path.dirname(prog) != IMAGE_BIN_DIR:
            check(False, f"{name}: {prog} is not in the image's {IMAGE_BIN_DIR}")
            continue
        prog = os.path.basename(prog)
    if prog not in PROGRAMS:
        check(False, f"{name}: command {prog} is one of {', '.join(PROGRAMS)}")
        continue
    used.add(prog)
    env = as_env(s.get("environment"))
    # Settings are flags, parsed up to the first positional argument (the
    # paytxctl command): --check-config goes before the service's arguments.
    argv = [os.path.join(build_dir, prog), "--check-config"] + cmd[1:]
    cases.setdefault(prog, (name, argv, env))
    rc, out, err = run(argv, env)
    check(rc == 0, f"{name}: {' '.join([prog, '--check-config'] + cmd[1:])} "
                   f"with the service's {len(env)} settings exits 0 (got {rc})")
    if rc != 0:
        show(rc, out, err)

for prog in PROGRAMS:
    check(prog in used, f"some service runs {prog}")

# Settings that must agree between services (no program can see the others).
by_prog = {p: [] for p in PROGRAMS}
for name in sorted(paytx):
    cmd = as_list(paytx[name].get("command"))
    if cmd and os.path.basename(cmd[0]) in by_prog:
        by_prog[os.path.basename(cmd[0])].append((name, as_env(paytx[name].get("environment"))))
coords, ledgers, ctls = by_prog["paytx-coordinator"], by_prog["paytx-ledger"], by_prog["paytxctl"]
risks = by_prog["paytx-risk"]
caches = by_prog["paytx-cache"]


def same(setting, group, what):
    values = {env.get(setting) for _, env in group}
    check(len(values) == 1 and None not in values, f"{what} have one {setting}")
    return next(iter(values)) if len(values) == 1 else None


# RabbitMQ: the definitions file is mounted and loaded, and every service
# connects as its role's user, with that user's password.
rabbit = services.get("rabbitmq") or {}
defs_target = conf_target = None
for v in rabbit.get("volumes") or []:
    src, target = (v.get("source"), v.get("target")) if isinstance(v, dict) else \
        tuple(v.split(":")[:2])
    if os.path.basename(src or "") == "rabbitmq-definitions.json":
        defs_target = target
    if os.path.basename(src or "") == "rabbitmq.conf":
        conf_target = target
check(defs_target is not None, "rabbitmq: docker/rabbitmq-definitions.json is mounted")
check(conf_target is not None and conf_target.startswith("/etc/rabbitmq/conf.d/"),
      "rabbitmq: docker/rabbitmq.conf is mounted in /etc/rabbitmq/conf.d/")
with open(os.path.join(os.environ["PAYTX_REPO_DIR"], "docker", "rabbitmq.conf")) as f:
    conf = {k.strip(): v.strip() for k, v in
            (line.split("=", 1) for line in f if "=" in line and not line.startswith("#"))}
check(defs_target is not None and conf.get("load_definitions") == defs_target,
      "rabbitmq: rabbitmq.conf loads the mounted definitions (load_definitions)")
with open(os.path.join(os.environ["PAYTX_REPO_DIR"], "docker", "rabbitmq-definitions.json")) as f:
    defs = json.load(f)
hashes = {u["name"]: u["password_hash"] for u in defs.get("users", [])}
perms = {p["user"] for p in defs.get("permissions", []) if p["vhost"] == "/"}


def password_ok(user, password):
    raw = base64.b64decode(hashes.get(user, ""))
    return len(raw) == 36 and hashlib.sha256(raw[:4] + password.encode()).digest() == raw[4:]


def role(env, user, what):
    url = urllib.parse.urlsplit(env.get("PAYTX_AMQP_URL") or "")
    got = urllib.parse.unquote(url.username or "")
    check(got == user, f"{what} connects to RabbitMQ as {user} (got {got or 'nobody'})")
    check(password_ok(got, urllib.parse.unquote(url.password or "")) and got in perms,
          f"{what}: {got} is in the definitions with that password and permissions on /")
    check(url.path != "/",
          f"{what}: PAYTX_AMQP_URL has no bare trailing / (librabbitmq: the empty vhost)")


for name, env in coords:
    role(env, "paytx-coordinator", name)
for name, env in ledgers:
    role(env, "paytx-" + (env.get("PAYTX_PARTICIPANT") or "?"), name)
for name, env in risks:
    role(env, "paytx-" + (env.get("PAYTX_PARTICIPANT") or "risk"), name)
for name, env in caches:
    role(env, "paytx-" + (env.get("PAYTX_PARTICIPANT") or "cache"), name)
same("PAYTX_HMAC_KEY", coords + ledgers + risks + caches, "coordinators and participants")
# One queue type for every daemon, and the one the definitions file creates
# the queues with: RabbitMQ refuses a declare of the other type.
qtypes = {env.get("PAYTX_QUEUE_TYPE") or "classic" for _, env in coords + ledgers + risks}
check(len(qtypes) == 1, "coordinators and participants have one PAYTX_QUEUE_TYPE (got %s)"
      % ", ".join(sorted(qtypes)))
defined = {q["name"]: (q.get("arguments") or {}).get("x-queue-type", "classic")
           for q in defs.get("queues", [])}
for queue, qtype in sorted(defined.items()):
    check(qtypes == {qtype}, f"rabbitmq: the definitions declare {queue} as a {qtype} "
                             f"queue, the PAYTX_QUEUE_TYPE of the daemons")
coord_dsn = same("PAYTX_PG_DSN", coords, "coordinators")
ids = [env.get("PAYTX_COORDINATOR_ID") for _, env in coords]
check(None not in ids and len(set(ids)) == len(ids), "coordinators have distinct PAYTX_COORDINATOR_ID")
shards = (same("PAYTX_SHARDS", coords, "coordinators") or "ledger.0,ledger.1").split(",")
served = {env.get("PAYTX_PARTICIPANT"): env.get("PAYTX_PG_DSN") for _, env in ledgers}
for shard in shards:
    check(shard in served, f"shard {shard} has a ledger service")
for part in served:
    check(part in shards, f"ledger participant {part} is in the coordinators' PAYTX_SHARDS")
# Further participants (risk): named in every coordinator's PAYTX_PARTICIPANTS,
# and every name there has a service.
extra = (same("PAYTX_PARTICIPANTS", coords, "coordinators") or "") if risks or caches else ""
extra = [p for p in extra.split(",") if p]
risk_served = {env.get("PAYTX_PARTICIPANT") or "risk": env.get("PAYTX_PG_DSN")
               for _, env in risks}
cache_served = {env.get("PAYTX_PARTICIPANT") or "cache": env for _, env in caches}
for part in risk_served:
    check(part in extra, f"risk participant {part} is in the coordinators' PAYTX_PARTICIPANTS")
for part in cache_served:
    check(part in extra, f"cache participant {part} is in the coordinators' PAYTX_PARTICIPANTS")
for part in extra:
    check(part in risk_served or part in cache_served,
          f"participant {part} of PAYTX_PARTICIPANTS has a service")


def database(dsn):
    """(host, port, dbname) of a URI DSN: which database, whoever connects."""
    p = urllib.parse.urlsplit(dsn or "")
    return (p.hostname, p.port, p.path.lstrip("/"))


def role(dsn):
    return urllib.parse.urlsplit(dsn or "").username


# Each kind of process connects as its own PostgreSQL role (least privilege).
coord_roles = {role(env.get("PAYTX_PG_DSN")) for _, env in coords}
ledger_roles = {role(env.get("PAYTX_PG_DSN")) for _, env in ledgers}
risk_roles = {role(env.get("PAYTX_PG_DSN")) for _, env in risks}
check(None not in coord_roles | ledger_roles | risk_roles, "the daemons name their role")
check(not coord_roles & ledger_roles, "coordinators and ledgers connect as different roles")
check(not risk_roles & (coord_roles | ledger_roles),
      "risk connects as a role of its own, not a coordinator's or a ledger's")
cache_roles = set()
for name, env in caches:
    cache_roles.add(role(env.get("PAYTX_PG_DSN")))
    check(database(env.get("PAYTX_PG_DSN")) == database(coord_dsn),
          f"{name}: PAYTX_PG_DSN is the coordinators' log")
    dsns = dict(item.split("=", 1) for item in (env.get("PAYTX_LEDGER_DSNS") or "").split(",")
                if "=" in item)
    for shard in shards:
        check(shard in dsns and database(dsns[shard]) == database(served.get(shard)),
              f"{name}: PAYTX_LEDGER_DSNS has {shard} at its ledger service's database")
        cache_roles.add(role(dsns.get(shard)))
check(None not in cache_roles and
      not cache_roles & (coord_roles | ledger_roles | risk_roles),
      "the cache connects as a role of its own (read-only), not another daemon's")
for name, env in ctls:
    check(database(env.get("PAYTX_PG_DSN")) == database(coord_dsn),
          f"{name}: PAYTX_PG_DSN is the coordinators' log")
    check(role(env.get("PAYTX_PG_DSN")) not in coord_roles | ledger_roles | risk_roles,
          f"{name}: paytxctl connects as the owner role, not a daemon's")
    for part, dsn in risk_served.items():
        check(database(env.get("PAYTX_RISK_DSN")) == database(dsn),
              f"{name}: PAYTX_RISK_DSN is the database of risk participant {part}")
        check(role(env.get("PAYTX_RISK_DSN")) not in coord_roles | ledger_roles | risk_roles,
              f"{name}: PAYTX_RISK_DSN connects as the owner role, not a daemon's")
    dsns = dict(item.split("=", 1) for item in (env.get("PAYTX_LEDGER_DSNS") or "").split(",")
                if "=" in item)
    for shard in shards:
        check(shard in dsns and database(dsns[shard]) == database(served.get(shard)),
              f"{name}: PAYTX_LEDGER_DSNS has {shard} at its ledger service's database")


def refused(prog, setting, change):
    if prog not in cases:
        return
    name, argv, env = cases[prog]
    env = dict(env)
    change(env)
    rc, out, err = run(argv, env)
    ok = rc not in (0, None) and setting in err
    check(ok, f"{name}: {prog} --check-config refuses a broken {setting} "
              f"naming it (exit {rc})")
    if not ok or os.environ.get("V"):
        show(rc, out, err)


refused("paytx-coordinator", "PAYTX_PREPARE_TIMEOUT_MS",
        lambda e: e.__setitem__("PAYTX_PREPARE_TIMEOUT_MS", "abc"))
refused("paytx-coordinator", "PAYTX_HMAC_KEY",
        lambda e: e.__setitem__("PAYTX_HMAC_KEY", "too-short"))
refused("paytx-ledger", "PAYTX_PARTICIPANT",
        lambda e: e.pop("PAYTX_PARTICIPANT", None))
refused("paytx-risk", "PAYTX_PG_DSN",
        lambda e: e.pop("PAYTX_PG_DSN", None))
refused("paytx-risk", "PAYTX_PREFETCH",
        lambda e: e.__setitem__("PAYTX_PREFETCH", "0"))
refused("paytx-ledger", "PAYTX_QUEUE_TYPE",
        lambda e: e.__setitem__("PAYTX_QUEUE_TYPE", "mirrored"))
refused("paytx-coordinator", "PAYTX_QUEUE_TYPE",
        lambda e: e.__setitem__("PAYTX_QUEUE_TYPE", "stream"))
refused("paytx-cache", "PAYTX_REDIS_URL",
        lambda e: e.__setitem__("PAYTX_REDIS_URL", "http://redis"))
refused("paytx-cache", "PAYTX_LEDGER_DSNS",
        lambda e: e.pop("PAYTX_LEDGER_DSNS", None))
refused("paytxctl", "PAYTX_SHARDS",
        lambda e: e.__setitem__("PAYTX_SHARDS", "ledger 0"))

if failures:
    print(f"test_compose: {len(failures)} check(s) failed", file=sys.stderr)
    sys.exit(1)
print("test_compose: all checks passed")
PY
