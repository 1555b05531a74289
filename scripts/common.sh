# Shared by the quickstart, test and daemon scripts: where things live.
# Source it; it sets REPO_DIR, BUILD_DIR and PAYTX_HOME and loads the
# services' environment (PAYTX_AMQP_URL, PAYTX_PG_DSN, ...).

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${PAYTX_BUILD_DIR:-$REPO_DIR/build}

say() { printf '\033[1m[paytx]\033[0m %s\n' "$*"; }

# services.sh decides where the service state lives (see default_home there).
PAYTX_HOME=$(eval "$("$REPO_DIR/scripts/services.sh" env)" && printf '%s' "$PAYTX_HOME")
export PAYTX_HOME

paytx_load_env() {
    eval "$("$REPO_DIR/scripts/services.sh" env)"
}
