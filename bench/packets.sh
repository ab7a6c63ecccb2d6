#!/usr/bin/env bash
# Overhead of `hdrtap packets -i lo` on a loopback HTTP/1.1 keep-alive
# workload (nginx + wrk on 127.0.0.1), side by side with tcpdump. Arms
# alternate within one run, ROUNDS times:
#   baseline  no tracer
#   tc        hdrtap packets -i lo --hook tc  --json --output /dev/null  (in+out)
#   xdp       hdrtap packets -i lo --hook xdp --json --output /dev/null  (generic XDP, in)
#   tcpdump   tcpdump -i lo -w FILE
# and prints per round req/s, p99, tracer CPU, records/packets and loss, then
# the throughput ratios (median arm req/s / median baseline req/s) and the
# loss of each tracer next to tcpdump's. Not a test: nothing fails on a slow
# result. Run as root:  DUR=10 ROUNDS=3 bench/packets.sh
set -euo pipefail

DUR="${DUR:-10}"                            # seconds per wrk run
ROUNDS="${ROUNDS:-3}"                       # rounds of all arms
CONNS="${CONNS:-16}"                        # wrk -c
THREADS="${THREADS:-1}"                     # wrk -t
ARMS="${ARMS:-baseline tc xdp tcpdump}"     # arms, in order, each round
HDRTAP_ARGS="${HDRTAP_ARGS:-}"              # extra flags for the hdrtap arms (e.g. "tcp port 80")
TCPDUMP_ARGS="${TCPDUMP_ARGS:-}"            # extra flags for tcpdump

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HDRTAP="${HDRTAP:-${CARGO_TARGET_DIR:-$ROOT/target}/release/hdrtap}"

say() { printf '[bench] %s\n' "$*" >&2; }
die() {
	printf '[bench] ERROR: %s\n' "$*" >&2
	exit 1
}

[[ "$(id -u)" -eq 0 ]] || die "run as root (hdrtap loads eBPF programs, tcpdump captures)"
for tool in nginx wrk tcpdump python3 awk curl; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool not found: run scripts/setup.sh"
done
[[ "$DUR" =~ ^[0-9]+$ && "$DUR" -gt 0 ]] || die "DUR must be a positive integer"
[[ "$ROUNDS" =~ ^[0-9]+$ && "$ROUNDS" -gt 0 ]] || die "ROUNDS must be a positive integer"

if [[ ! -x "$HDRTAP" ]]; then
	say "building $HDRTAP"
	if ! command -v cargo >/dev/null 2>&1 && [[ -f "$HOME/.cargo/env" ]]; then
		# shellcheck disable=SC1091
		. "$HOME/.cargo/env"
	fi
	(cd "$ROOT" && cargo build --release -p hdrtap)
	[[ -x "$HDRTAP" ]] || die "$HDRTAP not built"
fi

WORK="$(mktemp -d /tmp/hdrtap-bench-packets.XXXXXX)"
RESULTS="$ROOT/bench/results/packets-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$RESULTS"
NGINX_PID=""
TRACER_PID=""

stop_pid() { # pid signal
	local pid="$1" sig="$2" i
	[[ -n "$pid" ]] || return 0
	kill -0 "$pid" 2>/dev/null || return 0
	kill "-$sig" "$pid" 2>/dev/null || true
	for ((i = 0; i < 150; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
	stop_pid "$TRACER_PID" TERM
	stop_pid "$NGINX_PID" TERM
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT
trap 'exit 143' TERM

# ── nginx: one worker, no access log, a small static file ──
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
mkdir -p "$WORK/www" "$WORK/tmp"
head -c 512 /dev/zero | tr '\0' 'x' >"$WORK/www/index.html"
cat >"$WORK/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/tmp/body;
    proxy_temp_path $WORK/tmp/proxy;
    fastcgi_temp_path $WORK/tmp/fastcgi;
    uwsgi_temp_path $WORK/tmp/uwsgi;
    scgi_temp_path $WORK/tmp/scgi;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$PORT;
        root $WORK/www;
    }
}
CONF
nginx -p "$WORK" -c "$WORK/nginx.conf" -e "$WORK/error.log" >"$WORK/nginx.out" 2>&1 &
NGINX_PID=$!
for ((i = 0; i < 100; i++)); do
	curl -fsS -o /dev/null "http://127.0.0.1:$PORT/index.html" 2>/dev/null && break
	kill -0 "$NGINX_PID" 2>/dev/null || die "nginx died: $(cat "$WORK/nginx.out" "$WORK/error.log" 2>/dev/null)"
	sleep 0.1
done

URL="http://127.0.0.1:$PORT/index.html"
run_wrk() { # duration output-file
	wrk -t"$THREADS" -c"$CONNS" -d"$1s" --latency "$URL" >"$2" 2>&1
}

# wrk output -> "req_per_sec requests p99_ms"
parse_wrk() {
	awk '
	function ms(v) {
		if (v ~ /us$/) { sub(/us$/, "", v); return v / 1000 }
		if (v ~ /ms$/) { sub(/ms$/, "", v); return v + 0 }
		if (v ~ /s$/)  { sub(/s$/, "", v);  return v * 1000 }
		return v
	}
	/Requests\/sec:/ { rps = $2 }
	/requests in/ { reqs = $1 }
	$1 == "99%" { p99 = ms($2) }
	END { printf "%s %s %.3f\n", rps, reqs, p99 }' "$1"
}

CLK_TCK="$(getconf CLK_TCK)"
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit } if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# Start a tracer for arm $1, wait until it is capturing; sets TRACER_PID.
start_tracer() { # arm round
	local arm="$1" r="$2" i
	local err="$RESULTS/round$r-$arm.stderr"
	rm -f "$WORK/ready"
	case "$arm" in
	tc | xdp)
		# shellcheck disable=SC2086 # flag lists on purpose
		"$HDRTAP" packets -i lo --hook "$arm" --json --output /dev/null --ready-file "$WORK/ready" \
			--stats-interval 3600 $HDRTAP_ARGS >/dev/null 2>"$err" &
		TRACER_PID=$!
		for ((i = 0; i < 600; i++)); do
			[[ -e "$WORK/ready" ]] && return 0
			kill -0 "$TRACER_PID" 2>/dev/null || die "hdrtap ($arm) exited: $(cat "$err")"
			sleep 0.1
		done
		die "hdrtap ($arm) not ready after 60 s"
		;;
	tcpdump)
		# shellcheck disable=SC2086
		tcpdump -i lo -w "$WORK/tcpdump.pcap" $TCPDUMP_ARGS 2>"$err" &
		TRACER_PID=$!
		for ((i = 0; i < 300; i++)); do
			grep -q "listening on" "$err" 2>/dev/null && return 0
			kill -0 "$TRACER_PID" 2>/dev/null || die "tcpdump exited: $(cat "$err")"
			sleep 0.1
		done
		die "tcpdump not listening after 30 s"
		;;
	esac
}

# After the tracer of arm $1 exited: "records seen lost" from its stderr.
tracer_counts() { # arm round
	local err="$RESULTS/round$2-$1.stderr"
	case "$1" in
	tc | xdp)
		# hdrtap: N packet records; the kernel saw S packets: F filtered out, X sampled out, L lost to a full ring buffer; ...
		awk '/packet records;/ {
			for (i = 1; i <= NF; i++) {
				if ($(i+1) == "packet" && $(i+2) == "records;") rec = $i
				if ($i == "saw") seen = $(i+1)
				if ($(i+1) == "lost") lost = $i
			}
		} END { printf "%s %s %s\n", rec, seen, lost }' "$err"
		;;
	tcpdump)
		# N packets captured / N packets received by filter / N packets dropped by kernel
		awk '/packets captured/ { c = $1 } /received by filter/ { s = $1 } /dropped by kernel/ { d = $1 }
			END { printf "%s %s %s\n", c, s, d }' "$err"
		;;
	esac
}

say "nginx on 127.0.0.1:$PORT (pid $NGINX_PID); wrk -t$THREADS -c$CONNS -d${DUR}s; $ROUNDS round(s) of: $ARMS"
say "hdrtap: $HDRTAP; raw outputs in $RESULTS"
say "warm-up (2 s, not recorded)"
run_wrk 2 "$RESULTS/warmup.txt"

ROWS="$WORK/rows.tsv" # round arm rps requests p99 cpu_s us_per_req records seen lost
: >"$ROWS"
printf '\n%-6s %-9s %11s %10s %8s %7s %10s %10s %10s %9s %8s\n' round arm "req/s" requests "p99 ms" "cpu s" "cpu us/req" records seen lost "lost %"

for ((r = 1; r <= ROUNDS; r++)); do
	for arm in $ARMS; do
		out="$RESULTS/round$r-$arm.txt"
		if [[ "$arm" == baseline ]]; then
			run_wrk "$DUR" "$out"
			read -r rps reqs p99 < <(parse_wrk "$out")
			printf '%s\t%s\t%s\t%s\t%s\t-\t-\t-\t-\t-\n' "$r" "$arm" "$rps" "$reqs" "$p99" >>"$ROWS"
			printf '%-6s %-9s %11s %10s %8s %7s %10s %10s %10s %9s %8s\n' "$r" "$arm" "$rps" "$reqs" "$p99" - - - - - -
			continue
		fi
		start_tracer "$arm" "$r"
		t0="$(cpu_ticks "$TRACER_PID")"
		run_wrk "$DUR" "$out"
		t1="$(cpu_ticks "$TRACER_PID")"
		if [[ "$arm" == tcpdump ]]; then stop_pid "$TRACER_PID" INT; else stop_pid "$TRACER_PID" TERM; fi
		wait "$TRACER_PID" 2>/dev/null || true
		TRACER_PID=""
		rm -f "$WORK/tcpdump.pcap"
		read -r rps reqs p99 < <(parse_wrk "$out")
		read -r records seen lost < <(tracer_counts "$arm" "$r")
		cpu_s="$(awk -v a="$t0" -v b="$t1" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", (b - a) / hz }')"
		us_req="$(awk -v c="$cpu_s" -v n="$reqs" 'BEGIN { if (n > 0) printf "%.2f", c * 1e6 / n; else print "nan" }')"
		pct="$(awk -v l="${lost:-0}" -v s="${seen:-0}" 'BEGIN { if (s > 0) printf "%.3f", 100 * l / s; else print "nan" }')"
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$arm" "$rps" "$reqs" "$p99" "$cpu_s" "$us_req" "${records:-?}" "${seen:-?}" "${lost:-?}" >>"$ROWS"
		printf '%-6s %-9s %11s %10s %8s %7s %10s %10s %10s %9s %8s\n' "$r" "$arm" "$rps" "$reqs" "$p99" "$cpu_s" "$us_req" "${records:-?}" "${seen:-?}" "${lost:-?}" "$pct"
	done
done

col() { awk -F'\t' -v arm="$1" -v c="$2" '$2 == arm { print $c }' "$ROWS"; }
sum() { awk '$1 ~ /^[0-9]+$/ { s += $1 } END { print s + 0 }'; }
base_rps="$(col baseline 3 | median)"
echo
echo "Each hdrtap arm's last summary:"
for arm in $ARMS; do
	[[ "$arm" == tc || "$arm" == xdp ]] || continue
	sed "s/^/  [$arm] /" "$RESULTS/round$ROUNDS-$arm.stderr" | tail -n 3
done
echo
printf '%-9s %12s %8s %10s %12s %12s %9s\n' arm "median req/s" ratio "p99 ms" "cpu us/req" "lost/seen" "lost %"
for arm in $ARMS; do
	rps="$(col "$arm" 3 | median)"
	ratio="$(awk -v a="$rps" -v b="$base_rps" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "nan" }')"
	if [[ "$arm" == baseline ]]; then
		printf '%-9s %12s %8s %10s %12s %12s %9s\n' "$arm" "$rps" "$ratio" "$(col "$arm" 5 | median)" - - -
		continue
	fi
	lost="$(col "$arm" 10 | sum)"
	seen="$(col "$arm" 9 | sum)"
	pct="$(awk -v l="$lost" -v s="$seen" 'BEGIN { if (s > 0) printf "%.3f", 100 * l / s; else print "nan" }')"
	printf '%-9s %12s %8s %10s %12s %12s %9s\n' "$arm" "$rps" "$ratio" "$(col "$arm" 5 | median)" "$(col "$arm" 7 | median)" "$lost/$seen" "$pct"
done
echo
echo "ratio = median req/s of the arm / median req/s without a tracer (target >= 0.97)."
echo "lost: hdrtap = events the ring buffer could not take (of packets its programs ran on; tc on lo"
echo "sees each packet twice, out and in); tcpdump = 'dropped by kernel' (of 'received by filter')."
cp "$ROWS" "$RESULTS/rows.tsv"
