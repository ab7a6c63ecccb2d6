#!/usr/bin/env bash
# The whole suite, as root: set-up, build, unit tests of every crate, the
# root-only integration tests (tests/, crate hdrtap-tests) against the real
# kernel, the kernel matrix (scripts/kernels.sh), fuzzing.
# Extra arguments go to the integration test binaries, e.g.
#   ./scripts/test.sh redaction          # only integration tests matching "redaction"
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_root
"$HDRTAP_ROOT/scripts/setup.sh" test
ensure_cargo
cd "$HDRTAP_ROOT"

say "building the workspace"
cargo build --workspace --all-targets
cargo build -p hdrtap

target_dir="${CARGO_TARGET_DIR:-$HDRTAP_ROOT/target}"
[[ "$target_dir" == /* ]] || target_dir="$HDRTAP_ROOT/$target_dir"
export HDRTAP_BIN="${HDRTAP_BIN:-$target_dir/debug/hdrtap}"
[[ -x "$HDRTAP_BIN" ]] || die "$HDRTAP_BIN was not built"

failed=()
# Test output is kept here too, so that a failure's report can be printed
# again at the end, where the tail of a CI log shows it.
logs="$target_dir/test-logs"
rm -rf "$logs"
mkdir -p "$logs"

# Style and lints, as CI checks them.
say "cargo fmt --check; cargo clippy -D warnings"
cargo fmt --all --check || failed+=("cargo fmt --check")
# The fuzz crate is a workspace of its own, which --all does not reach.
(cd fuzz && cargo fmt --check) || failed+=("cargo fmt --check (fuzz)")
cargo clippy --workspace --all-targets --quiet -- -D warnings || failed+=("clippy")

# Unit tests and the binary's root-free checks (crates/hdrtap/tests): no
# kernel involved, default parallelism. Run without root, in a user namespace
# (uid nobody, no capabilities), so that a contributor without root can run
# every one of them.
say "unit tests (all crates except hdrtap-tests), without root"
cargo test --workspace --exclude hdrtap-tests --no-run --quiet
if unshare --user -- true 2>/dev/null; then
	unshare --user -- cargo test --workspace --exclude hdrtap-tests --no-fail-fast 2>&1 |
		tee "$logs/unit tests.log" || failed+=("unit tests")
else
	say "WARNING: no user namespaces here (unshare --user failed): the unit tests run as root, so that they need no root is not checked"
	cargo test --workspace --exclude hdrtap-tests --no-fail-fast 2>&1 |
		tee "$logs/unit tests.log" || failed+=("unit tests")
fi

# Integration tests: each starts nginx and hdrtap and loads BPF programs. On 2
# cores, running them side by side only makes them starve each other, so one
# at a time (the harness also holds a global lock, so this is belt and braces).
say "integration tests (hdrtap-tests, one at a time, HDRTAP_BIN=$HDRTAP_BIN)"
cargo test -p hdrtap-tests --no-fail-fast -- --test-threads=1 "$@" 2>&1 |
	tee "$logs/integration tests.log" || failed+=("integration tests")

# The kernel matrix: the main captures' tests on Debian's and Ubuntu's
# kernels under qemu, and on this one (docs/KERNELS.md; about 14 minutes).
say "kernel matrix (scripts/kernels.sh)"
"$HDRTAP_ROOT/scripts/kernels.sh" || failed+=("kernel matrix")

# Fuzzing: every target for a bounded time (FUZZ_SECONDS, default 60 s
# each); fails on any crash. See fuzz/README.md to fuzz longer.
say "fuzzing (fuzz/run.sh, ${FUZZ_SECONDS:-60} s per target)"
"$HDRTAP_ROOT/fuzz/run.sh" || failed+=("fuzzing")

if ((${#failed[@]})); then
	# Each failed test's report again (cargo prints them, far above, at the
	# end of each test binary's run).
	for f in "${failed[@]}"; do
		[[ -f "$logs/$f.log" ]] || continue
		say "$f: the reports of the failed tests"
		python3 "$HDRTAP_ROOT/scripts/cargo_failures.py" "$logs/$f.log"
	done
	die "FAILED: ${failed[*]}"
fi
say "all tests passed"
