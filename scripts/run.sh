#!/usr/bin/env bash
# Set up, build the release binary, run it.
#   ./scripts/run.sh                      # hdrtap http
#   ./scripts/run.sh http --json --port 8080
#   ./scripts/run.sh doctor
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

"$HDRTAP_ROOT/scripts/setup.sh" run
ensure_cargo
cd "$HDRTAP_ROOT"
say "building hdrtap (release)"
cargo build --release -p hdrtap
target_dir="${CARGO_TARGET_DIR:-$HDRTAP_ROOT/target}"
if (($# == 0)); then
	set -- http
fi
exec "$target_dir/release/hdrtap" "$@"
