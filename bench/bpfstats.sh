#!/usr/bin/env bash
# The kernel-side cost of a tracer, program by program: run time and run
# count of every BPF program over one load run (wrk or h2load), per request.
#
#   sudo bench/bpfstats.sh URL -- TRACER [ARGS...]
#   sudo bench/bpfstats.sh http://127.0.0.1:8080/ -- target/release/hdrtap http --json -o /dev/null
#   sudo LOAD=h2load bench/bpfstats.sh http://127.0.0.1:8081/ -- target/release/hdrtap http --json -o /dev/null
#
# The server behind URL is yours to start (bench/suite.sh's nginx is gone
# when it ends). kernel.bpf_stats_enabled is switched on for the run (it
# adds two clock reads to every program run, so absolute figures are a
# little high; compare builds with each other) and restored afterwards.
# Environment: DUR (load seconds, 8), CONNS (16), SETTLE (seconds between
# starting the tracer and the load, 5), LOAD (wrk, or h2load for an HTTP/2
# server: -m H2_STREAMS, 10, streams per connection).
set -euo pipefail

DUR="${DUR:-8}"
CONNS="${CONNS:-16}"
SETTLE="${SETTLE:-5}"
LOAD="${LOAD:-wrk}"
H2_STREAMS="${H2_STREAMS:-10}"

die() {
	printf 'bpfstats: %s\n' "$*" >&2
	exit 1
}
[[ $# -ge 3 && "$2" == "--" ]] || die "usage: $0 URL -- TRACER [ARGS...]"
URL="$1"
shift 2
[[ "$LOAD" == wrk || "$LOAD" == h2load ]] || die "LOAD must be wrk or h2load"
for tool in "$LOAD" bpftool python3; do
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
if [[ "$LOAD" == h2load ]]; then
	h2load -t1 -c"$CONNS" -m"$H2_STREAMS" -D"$DUR" "$URL" >"$WORK/load"
else
	wrk -t1 -c"$CONNS" -d"${DUR}s" "$URL" >"$WORK/load"
fi
snapshot >"$WORK/after"

python3 - "$WORK" <<'PY'
import sys

work = sys.argv[1]
load = open(f"{work}/load").read().split("\n")
if any(l.startswith("finished in") for l in load):  # h2load
    requests = next(int(l.split()[1]) for l in load if l.startswith("requests:"))
    fin = next(l for l in load if l.startswith("finished in")).split()
    rps = fin[fin.index("req/s,") - 1]
else:  # wrk
    requests = next(int(l.split()[0]) for l in load if "requests in" in l)
    rps = next(l.split()[1] for l in load if l.startswith("Requests/sec"))
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
