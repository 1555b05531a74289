#!/usr/bin/env bash
# The first of the two quick-start commands: install what is missing,
# build, start a private RabbitMQ and PostgreSQL and the paytx daemons,
# then run a few payments and show the outcomes and balances.
set -euo pipefail
. "$(dirname "$0")/common.sh"

say "installing missing Debian packages (if any)"
"$REPO_DIR/scripts/install-deps.sh"
say "building into $BUILD_DIR"
[ -f "$BUILD_DIR/build.ninja" ] || meson setup "$BUILD_DIR" "$REPO_DIR" >/dev/null
ninja -C "$BUILD_DIR" >/dev/null
say "starting RabbitMQ and PostgreSQL (state in $PAYTX_HOME)"
"$REPO_DIR/scripts/services.sh" start
paytx_load_env
say "starting the coordinator and two ledger shards"
"$REPO_DIR/scripts/daemons.sh" start
sleep 1

ctl() { "$BUILD_DIR/paytxctl" "$@"; }
run=$(date +%s)
say "creating accounts: world (external), alice, bob"
ctl account create world EUR external
ctl account create alice EUR
ctl account create bob EUR

say "payments (run $run):"
ctl pay "demo-$run-fund" world alice 10000 EUR
ctl pay "demo-$run-rent" alice bob 2500 EUR
set +e
ctl pay "demo-$run-yacht" alice bob 1000000 EUR
code=$?
set -e
echo "  (exit code $code: 3 means aborted, as expected for insufficient funds)"
say "the same payment_id again returns the first outcome and moves nothing:"
ctl pay "demo-$run-rent" alice bob 2500 EUR

say "balances (minor units):"
ctl balance world
ctl balance alice
ctl balance bob
say "status of a payment:"
ctl status "demo-$run-yacht"
cat <<MSG

The stack keeps running. Try:
  . scripts/env.sh; $BUILD_DIR/paytxctl --help
Stop it with:
  scripts/daemons.sh stop && scripts/services.sh stop
Run the tests with:
  scripts/test.sh
MSG
