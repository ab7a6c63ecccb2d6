#!/usr/bin/env bash
# Run hdrtap's fuzz targets on stable Rust, each for a bounded time; fail on
# the first crash (panic, failed invariant, stack overflow, timeout, OOM).
#
#   fuzz/run.sh                      # every target, FUZZ_SECONDS (default 60) each
#   FUZZ_SECONDS=3600 fuzz/run.sh http1_stream   # one target, one hour
#
# How: cargo-fuzz builds the targets with libFuzzer's coverage
# instrumentation (-Cpasses=sancov-module ..., all stable rustc flags) when
# asked for no sanitizer (`-s none`), which needs no nightly compiler; the
# targets are safe Rust, so AddressSanitizer would add little. Each run starts
# from the committed seeds (testdata/fuzz/<target>/) and the regression
# inputs (fuzz/regressions/<target>/), copied into a scratch corpus so the
# repository is not touched; a crashing input is left in
# fuzz/artifacts/<target>/ and printed. See fuzz/README.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds="${FUZZ_SECONDS:-60}"
targets=("$@")
if ((${#targets[@]} == 0)); then
	targets=(abi_decode http1_stream http2_stream packet_decode tcp_reassembly filter_parse config_parse)
fi
command -v cargo-fuzz >/dev/null 2>&1 || {
	echo "[fuzz] cargo-fuzz is not installed: cargo install cargo-fuzz --locked (scripts/setup.sh does)" >&2
	exit 1
}

# Regression inputs and seeds on plain stable `cargo test` first: fast, and
# a failure there names the file.
echo "[fuzz] seeds and regression inputs (cargo test)" >&2
cargo test --manifest-path fuzz/Cargo.toml --release --quiet

echo "[fuzz] building the targets (cargo fuzz build -s none)" >&2
cargo fuzz build -s none -O
scratch="$(mktemp -d /tmp/hdrtap-fuzz.XXXXXX)"
trap 'rm -rf "$scratch"' EXIT
failed=()
for t in "${targets[@]}"; do
	mkdir -p "$scratch/$t" "fuzz/regressions/$t"
	log="$scratch/$t.log"
	echo "[fuzz] $t for ${seconds}s" >&2
	# -rss_limit_mb: every target must stay small; -timeout: one input may
	# not take 10 s (an endless loop is a bug too).
	if cargo fuzz run -s none -O "$t" "$scratch/$t" "testdata/fuzz/$t" "fuzz/regressions/$t" -- \
		-max_total_time="$seconds" -rss_limit_mb=1024 -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
		grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" | tr '\n' ' ' >&2
		echo >&2
	else
		failed+=("$t")
		echo "[fuzz] $t FAILED; the end of its log:" >&2
		tail -n 40 "$log" >&2
		ls -1 "fuzz/artifacts/$t/" 2>/dev/null | sed 's/^/[fuzz] crashing input: fuzz\/artifacts\/'"$t"'\//' >&2 || true
	fi
done
if ((${#failed[@]})); then
	echo "[fuzz] FAILED: ${failed[*]} (reproduce: cargo fuzz run -s none -O TARGET fuzz/artifacts/TARGET/FILE)" >&2
	exit 1
fi
echo "fuzz: ${#targets[@]} passed, 0 failed"
