# Shared by the quickstart, test and daemon scripts: where things live.
# Source it; it sets REPO_DIR, BUILD_DIR and PAYTX_HOME and loads the
# services' environment (PAYTX_AMQP_URL, PAYTX_PG_DSN, ...).

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${PAYTX_BUILD_DIR:-$REPO_DIR/build}

say() { printf '\033[1m[paytx]\033[0m %s\n' "$*"; }

# PostgreSQL refuses to run as root, so as root it runs as another user,
# who must be able to reach PAYTX_HOME. A clone under /root (mode 700)
# is not reachable: keep the state under /var/tmp instead.
if [ -z "${PAYTX_HOME:-}" ]; then
    PAYTX_HOME=$REPO_DIR/.paytx
    if [ "$(id -u)" = 0 ] && id postgres >/dev/null 2>&1 &&
       ! runuser -u postgres -- test -x "$REPO_DIR"; then
        PAYTX_HOME=/var/tmp/paytx-$(printf '%s' "$REPO_DIR" | md5sum | cut -c1-10)
    fi
fi
export PAYTX_HOME

paytx_load_env() {
    eval "$("$REPO_DIR/scripts/services.sh" env)"
}
