#!/usr/bin/env bash
# Install the Debian/Ubuntu packages paytx needs to build, test and run
# locally. Idempotent: does nothing (and needs no network) when everything is
# already installed.
#
# Services are NOT started by the packages: a temporary /usr/sbin/policy-rc.d
# answering 101 ("action forbidden") is in place while apt runs, because
# scripts/services.sh starts private RabbitMQ/PostgreSQL instances itself.
#
# Usage: scripts/install-deps.sh            (as root, or as a user with sudo)
set -euo pipefail

PACKAGES=(
    build-essential meson ninja-build pkg-config
    librabbitmq-dev libjson-c-dev libpq-dev check libssl-dev openssl
    rabbitmq-server postgresql postgresql-contrib amqp-tools
    redis-server libhiredis-dev
    python3 python3-pika python3-psycopg2 python3-yaml python3-jsonschema docker-compose
    libmicrohttpd-dev
    valgrind clang libclang-rt-14-dev
)

POLICY_RC_D=/usr/sbin/policy-rc.d
POLICY_INSTALLED_BY_US=0
USE_SUDO=0

log() { printf 'install-deps: %s\n' "$*"; }
die() { printf 'install-deps: error: %s\n' "$*" >&2; exit 1; }

setup_privileges() {
    if [ "$(id -u)" -eq 0 ]; then
        USE_SUDO=0
    elif command -v sudo >/dev/null 2>&1; then
        USE_SUDO=1
    else
        die "not root and sudo is not available; run as root"
    fi
}

# Run a command as root (directly, or through sudo when not root).
as_root() {
    if [ "$USE_SUDO" -eq 1 ]; then
        sudo "$@"
    else
        "$@"
    fi
}

is_installed() {
    local status
    status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
    [ "$status" = "install ok installed" ]
}

missing_packages() {
    local p
    for p in "${PACKAGES[@]}"; do
        is_installed "$p" || printf '%s\n' "$p"
    done
}

block_service_starts() {
    if [ -e "$POLICY_RC_D" ]; then
        log "$POLICY_RC_D already exists; leaving it alone"
        return 0
    fi
    printf '#!/bin/sh\n# temporary, written by paytx scripts/install-deps.sh\nexit 101\n' |
        as_root tee "$POLICY_RC_D" >/dev/null
    as_root chmod 755 "$POLICY_RC_D"
    POLICY_INSTALLED_BY_US=1
}

unblock_service_starts() {
    if [ "$POLICY_INSTALLED_BY_US" -eq 1 ]; then
        as_root rm -f "$POLICY_RC_D" || true
        POLICY_INSTALLED_BY_US=0
    fi
}

main() {
    command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found: this script supports Debian/Ubuntu only"

    local missing
    mapfile -t missing < <(missing_packages)
    if [ "${#missing[@]}" -eq 0 ]; then
        log "all ${#PACKAGES[@]} packages already installed"
        return 0
    fi

    setup_privileges
    log "missing: ${missing[*]}"

    trap unblock_service_starts EXIT
    trap 'exit 130' INT TERM
    block_service_starts

    log "apt-get update"
    as_root apt-get update
    log "apt-get install ${#missing[@]} package(s)"
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "${missing[@]}"

    unblock_service_starts

    mapfile -t missing < <(missing_packages)
    if [ "${#missing[@]}" -ne 0 ]; then
        die "still missing after install: ${missing[*]}"
    fi
    log "done; all packages installed (no services were started)"
}

main "$@"
