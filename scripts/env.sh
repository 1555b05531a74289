# shellcheck shell=bash
# Source me:  . scripts/env.sh
# Exports the paytx local-development variables (PAYTX_AMQP_URL, PAYTX_PG_DSN,
# ...) for the private services managed by scripts/services.sh.
_paytx_env_dir=$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")" && pwd -P)
eval "$(bash "$_paytx_env_dir/services.sh" env)"
unset _paytx_env_dir
