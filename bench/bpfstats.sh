#!/usr/bin/env bash
# The kernel-side cost of a tracer, program by program: run time and run
# count of every BPF program over one wrk run, per request.
#
#   sudo bench/bpfstats.sh URL -- TRACER [ARGS...]
#   sudo bench/bpfstats.sh http://127.0.0.1:8080/ -- target/release/hdrtap http --json -o /dev/null
#
# The server behind URL is yours to start (bench/suite.sh's nginx is gone
# when it ends). kernel.bpf_stats_enabled is switched on for the run (it
# adds two clock reads to every program run, so absolute figures are a
# little high; compare builds with each other) and restored afterwards.
# Environment: DUR (wrk seconds, 8), CONNS (16), SETTLE (seconds between
# starting the tracer and the load, 5).
set -euo pipefail

DUR="${DUR:-8}"
CONNS="${CONNS:-16}"
SETTLE="${SETTLE:-5}"

die() {
	printf 'bpfstats: %s\n' "$*" >&2
	exit 1
}
[[ $# -ge 3 && "$2" == "--" ]] || die "usage: $0 URL -- TRACER [ARGS...]"
URL="$1"
shift 2
for tool in wrk bpftool python3; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool not found: run scripts/setup.sh"
done
[[ "$(id -u)" == 0 ]] || die "needs root (bpftool prog show, kernel.bpf_stats_enabled)"

WORK="$(mktemp -d /tmp/hdrtap-bpfstats.XXXXXX)"
OLD_STATS="$(sysctl -n kernel.bpf_stats_enabled)"
TRACER_PID=""
cleanup() {
	if [[ -n "$TRACER_PID" ]]; then
		kill -INT "$TRACER_PID" 2>/dev/null || true
		wait "$TRACER_PID" 2>/dev/null || true
	fi
	sysctl -qw kernel.bpf_stats_enabled="$OLD_STATS"
	rm -rf "$WORK"
}
trap cleanup EXIT

# id name run_cnt run_time_ns, one line per loaded program.
snapshot() {
	bpftool prog show -j | python3 -c '
import json, sys
for p in json.load(sys.stdin):
    print(p["id"], p.get("name", "?"), p.get("run_cnt", 0), p.get("run_time_ns", 0))'
}

sysctl -qw kernel.bpf_stats_enabled=1
"$@" >"$WORK/tracer.log" 2>&1 &
TRACER_PID=$!
sleep "$SETTLE"
kill -0 "$TRACER_PID" 2>/dev/null || die "the tracer exited: $(cat "$WORK/tracer.log")"
snapshot >"$WORK/before"
wrk -t1 -c"$CONNS" -d"${DUR}s" "$URL" >"$WORK/wrk"
snapshot >"$WORK/after"

python3 - "$WORK" <<'PY'
import sys

work = sys.argv[1]
wrk = open(f"{work}/wrk").read().split("\n")
requests = next(int(l.split()[0]) for l in wrk if "requests in" in l)
rps = next(l.split()[1] for l in wrk if l.startswith("Requests/sec"))
before = {}
for line in open(f"{work}/before"):
    pid, name, cnt, ns = line.split()
    before[pid] = (int(cnt), int(ns))
rows = []
for line in open(f"{work}/after"):
    pid, name, cnt, ns = line.split()
    c0, t0 = before.get(pid, (0, 0))
    runs, ns = int(cnt) - c0, int(ns) - t0
    if runs > 0:
        rows.append((ns, name, runs))
rows.sort(reverse=True)
print(f"{'program':24} {'runs/req':>9} {'ns/run':>9} {'ns/req':>9}")
for ns, name, runs in rows:
    print(f"{name:24} {runs / requests:9.2f} {ns / runs:9.1f} {ns / requests:9.1f}")
total = sum(r[0] for r in rows)
print(f"{requests} requests ({rps} req/s); all programs: {total / requests:.1f} ns per request")
PY
