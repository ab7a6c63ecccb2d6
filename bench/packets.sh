#!/usr/bin/env bash
# hdrtap packets -i lo (tc, xdp) next to tcpdump -w, against no tracer, interleaved in one run.
# The arms of bench/suite.sh (see there for what each measures):
#   sudo bench/packets.sh                 # DUR=5 ROUNDS=3
#   sudo DUR=10 ROUNDS=5 bench/packets.sh
set -euo pipefail
export ARMS="${ARMS:-none packets-tc packets-xdp tcpdump-128 tcpdump-full}"
exec "$(dirname "${BASH_SOURCE[0]}")/suite.sh" "$@"
