#!/usr/bin/env bash
# Set up, build the release binary, run it.
#   ./scripts/run.sh                      # hdrtap http
#   ./scripts/run.sh http --json --port 8080
#   ./scripts/run.sh doctor
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bin="$(build_release)"
if (($# == 0)); then
	set -- http
fi
exec "$bin" "$@"
