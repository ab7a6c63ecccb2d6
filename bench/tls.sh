#!/usr/bin/env bash
# hdrtap http on HTTPS (OpenSSL uprobes), against no tracer, interleaved in one run.
# The arms of bench/suite.sh (see there for what each measures):
#   sudo bench/tls.sh                 # DUR=5 ROUNDS=3
#   sudo DUR=10 ROUNDS=5 bench/tls.sh
set -euo pipefail
export ARMS="${ARMS:-none-tls tls}"
exec "$(dirname "${BASH_SOURCE[0]}")/suite.sh" "$@"
