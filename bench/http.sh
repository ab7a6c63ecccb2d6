#!/usr/bin/env bash
# hdrtap http on plain HTTP, against no tracer, interleaved in one run.
# The arms of bench/suite.sh (see there for what each measures):
#   sudo bench/http.sh                 # DUR=5 ROUNDS=3
#   sudo DUR=10 ROUNDS=5 bench/http.sh
set -euo pipefail
export ARMS="${ARMS:-none http}"
exec "$(dirname "${BASH_SOURCE[0]}")/suite.sh" "$@"
