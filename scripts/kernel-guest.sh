#!/usr/bin/env bash
# One row of the kernel matrix (scripts/kernels.sh), run inside the kernel
# under test: natively for the host's kernel, as virtme-ng's guest command
# for the others.
#   kernel-guest.sh OUT TESTS_ENV
# TESTS_ENV holds HDRTAP_BIN=... and TEST_<name>=<test binary> lines. OUT
# receives doctor.json, results.tsv (cell, verdict, seconds, detail), one
# log per cell and, last, `done`.
#
# Per capture: where `hdrtap doctor` finds it available (ok or through a
# fallback), its integration tests run; where doctor says the kernel lacks
# a feature, hdrtap itself is run and must fail with one line naming it.
set -uo pipefail # not -e: every cell runs and records its verdict

out="$1"
# shellcheck disable=SC1090
. "$2"
export HDRTAP_BIN
mkdir -p "$out"
: >"$out/results.tsv"

mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing
uname -r >"$out/release"

"$HDRTAP_BIN" doctor --json >"$out/doctor.json" 2>"$out/doctor.err"
echo $? >"$out/doctor.rc"

# The doctor's verdict on capture $1: ok, fallback, unavailable, fail.
verdict() {
	python3 -c '
import json, sys
try:
    d = json.load(open(sys.argv[1]))
    print(next(c["status"] for c in d["capabilities"] if c["key"] == sys.argv[2]))
except Exception:
    print("fail")
' "$out/doctor.json" "$1"
}

record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$out/results.tsv"; }

# run_cell CELL CAPTURE CLEAR_ERROR_ARGS -- TEST_BINARY [TEST NAMES...]
run_cell() {
	local cell="$1" cap="$2" clear="$3"
	shift 4
	local v start rc
	v=$(verdict "$cap")
	start=$SECONDS
	case "$v" in
	ok | fallback)
		# A failed cell runs once more: the table then says `pass (2nd run)`
		# (or fails) and kernels.sh prints the first run's failure. The same
		# tests run once, without this, in the main suite on the host.
		local try
		for try in 1 2; do
			# shellcheck disable=SC2068
			timeout 900 "$@" --test-threads=1 >"$out/$cell.log" 2>&1
			rc=$?
			if ((rc == 0)) && grep -qE '^test result: ok\. [1-9]' "$out/$cell.log"; then
				record "$cell" pass $((SECONDS - start)) "$v; run $try"
				break
			fi
			if ((try == 1)); then
				mv "$out/$cell.log" "$out/$cell.run1.log"
			else
				record "$cell" fail $((SECONDS - start)) "$v; tests exited $rc, twice"
			fi
		done
		;;
	unavailable)
		# shellcheck disable=SC2086
		timeout 60 "$HDRTAP_BIN" $clear >"$out/$cell.log" 2>"$out/$cell.err"
		rc=$?
		local lines
		lines=$(wc -l <"$out/$cell.err")
		if ((rc != 0 && lines == 1)) && grep -q 'lacks' "$out/$cell.err"; then
			record "$cell" na $((SECONDS - start)) "$(cat "$out/$cell.err")"
		else
			record "$cell" fail $((SECONDS - start)) "unavailable, but hdrtap exited $rc with $lines line(s) on stderr"
		fi
		;;
	*)
		record "$cell" fail $((SECONDS - start)) "doctor: $v"
		;;
	esac
}

# tshark and the tests' nginx write under /tmp, which the guest has as tmpfs.
cd /tmp || exit 1
run_cell http http "http -q -d 2" -- "$TEST_http" --exact \
	curl_ipv4_headers_on_both_sides curl_ipv6_headers_on_both_sides \
	small_bodies_in_their_own_iovec_are_not_copied
run_cell https https "http -q -d 2" -- "$TEST_tls" --exact curl_https_ipv4_both_sides
run_cell http2 http "http -q -d 2" -- "$TEST_http2" --exact \
	nghttp_h2c_every_header_both_sides grpc_unary_ok_and_error_with_metadata
run_cell packets-tc packets-tc "packets -i lo -q -d 2" -- "$TEST_packets" --exact \
	tc_hook_matches_tshark_field_by_field
run_cell packets-xdp packets-xdp "packets --hook xdp -i lo -q -d 2" -- "$TEST_packets" --exact \
	xdp_hook_matches_tshark_on_ingress
run_cell packets-socket packets-socket "packets --hook socket -i lo -q -d 2" -- "$TEST_packets" --exact \
	socket_hook_matches_tshark_field_by_field
run_cell http-packets packets-socket "http --source packets -i lo -q -d 2" -- "$TEST_http_wire" --exact \
	a_router_logs_http_field_exact_against_tshark
run_cell attribution attribution "packets -i lo -q -d 2" -- "$TEST_owners"
run_cell sigkill http "http -q -d 2" -- "$TEST_fault_kill"

touch "$out/done"
