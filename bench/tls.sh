#!/usr/bin/env bash
# Overhead of `hdrtap http` on an HTTPS (HTTP/1.1 over TLS) keep-alive workload:
# nginx serving HTTPS with a self-signed certificate + wrk over https, both on
# 127.0.0.1 and both using libssl.so.3, so hdrtap's OpenSSL uprobes see every
# request and response twice (wrk's side and nginx's side: 4 records per
# request). Arms alternate within one run, ROUNDS times:
#   baseline   no tracer
#   hdrtap     hdrtap http --json --output /dev/null $HDRTAP_ARGS
# and the script prints a table per round, then the throughput ratio (median
# hdrtap req/s / median baseline req/s), p99 latency per arm, hdrtap CPU time
# per request, peak RSS, lost events and records per request (4.00 = nothing
# missed). Not a test: nothing here fails on a slow result.
# Run as root:  DUR=10 ROUNDS=3 bench/tls.sh
set -euo pipefail

DUR="${DUR:-10}"               # seconds per wrk run
ROUNDS="${ROUNDS:-3}"          # A/B pairs
CONNS="${CONNS:-16}"           # wrk -c
THREADS="${THREADS:-1}"        # wrk -t
HDRTAP_ARGS="${HDRTAP_ARGS:-}" # extra hdrtap flags for the traced arm, e.g. "--port 8080"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HDRTAP="${HDRTAP:-${CARGO_TARGET_DIR:-$ROOT/target}/release/hdrtap}"

say() { printf '[bench] %s\n' "$*" >&2; }
die() {
	printf '[bench] ERROR: %s\n' "$*" >&2
	exit 1
}

[[ "$(id -u)" -eq 0 ]] || die "run as root (hdrtap loads eBPF programs)"
for tool in nginx wrk python3 awk openssl; do
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

WORK="$(mktemp -d /tmp/hdrtap-bench.XXXXXX)"
RESULTS="$ROOT/bench/results/tls-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$RESULTS"
NGINX_PID=""
HDRTAP_PID=""

stop_pid() { # pid signal
	local pid="$1" sig="$2" i
	[[ -n "$pid" ]] || return 0
	kill -0 "$pid" 2>/dev/null || return 0
	kill "-$sig" "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
	stop_pid "$HDRTAP_PID" TERM
	stop_pid "$NGINX_PID" TERM
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT
trap 'exit 143' TERM

# ── nginx: one worker, no access log, a small static file, HTTPS ──
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
mkdir -p "$WORK/www" "$WORK/tmp"
head -c 512 /dev/zero | tr '\0' 'x' >"$WORK/www/index.html"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
	-subj /CN=localhost -keyout "$WORK/key.pem" -out "$WORK/cert.pem" >/dev/null 2>&1 ||
	die "openssl could not make a self-signed certificate"
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
        listen 127.0.0.1:$PORT ssl;
        ssl_certificate $WORK/cert.pem;
        ssl_certificate_key $WORK/key.pem;
        root $WORK/www;
    }
}
CONF
nginx -p "$WORK" -c "$WORK/nginx.conf" -e "$WORK/error.log" >"$WORK/nginx.out" 2>&1 &
NGINX_PID=$!
for ((i = 0; i < 100; i++)); do
	curl -kfsS -o /dev/null "https://127.0.0.1:$PORT/index.html" 2>/dev/null && break
	kill -0 "$NGINX_PID" 2>/dev/null || die "nginx died: $(cat "$WORK/nginx.out" "$WORK/error.log" 2>/dev/null)"
	sleep 0.1
done

# Every request carries a sequence number (the same Lua cost in both arms).
cat >"$WORK/seq.lua" <<'LUA'
local n = 0
request = function()
    n = n + 1
    return wrk.format("GET", "/index.html", { ["X-Seq"] = tostring(n) })
end
LUA

URL="https://127.0.0.1:$PORT/index.html"
run_wrk() { # duration output-file
	wrk -t"$THREADS" -c"$CONNS" -d"$1s" --latency -s "$WORK/seq.lua" "$URL" >"$2" 2>&1
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
cpu_ticks() { # pid -> utime+stime in clock ticks
	# Fields after the ")" of comm: state is $1, utime $12, stime $13.
	sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}
vm_hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit } if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

say "nginx on 127.0.0.1:$PORT (pid $NGINX_PID); wrk -t$THREADS -c$CONNS -d${DUR}s; $ROUNDS round(s); hdrtap: $HDRTAP"
say "raw outputs in $RESULTS"
say "warm-up (2 s, not recorded)"
run_wrk 2 "$RESULTS/warmup.txt"

ROWS="$WORK/rows.tsv" # round arm rps requests p99 cpu_s us_per_req rss_mib lost rec_per_req
: >"$ROWS"
printf '\n%-6s %-9s %12s %11s %9s %11s %12s %9s %6s %8s\n' round arm "req/s" requests "p99 ms" "cpu s" "cpu us/req" "RSS MiB" lost "rec/req"

for ((r = 1; r <= ROUNDS; r++)); do
	# ── baseline ──
	run_wrk "$DUR" "$RESULTS/round$r-baseline.txt"
	read -r rps reqs p99 < <(parse_wrk "$RESULTS/round$r-baseline.txt")
	printf '%s\tbaseline\t%s\t%s\t%s\t-\t-\t-\t-\t-\n' "$r" "$rps" "$reqs" "$p99" >>"$ROWS"
	printf '%-6s %-9s %12s %11s %9s %11s %12s %9s %6s %8s\n' "$r" baseline "$rps" "$reqs" "$p99" - - - - -

	# ── hdrtap ──
	rm -f "$WORK/ready"
	# shellcheck disable=SC2086 # HDRTAP_ARGS is a flag list on purpose
	"$HDRTAP" http --json --output /dev/null --ready-file "$WORK/ready" $HDRTAP_ARGS \
		>"$RESULTS/round$r-hdrtap.stdout" 2>"$RESULTS/round$r-hdrtap.stderr" &
	HDRTAP_PID=$!
	for ((i = 0; i < 600; i++)); do
		[[ -e "$WORK/ready" ]] && break
		kill -0 "$HDRTAP_PID" 2>/dev/null || die "hdrtap exited before ready: $(cat "$RESULTS/round$r-hdrtap.stderr")"
		sleep 0.1
	done
	[[ -e "$WORK/ready" ]] || die "hdrtap not ready after 60 s"
	t0="$(cpu_ticks "$HDRTAP_PID")"
	run_wrk "$DUR" "$RESULTS/round$r-hdrtap.txt"
	t1="$(cpu_ticks "$HDRTAP_PID")"
	rss_kib="$(vm_hwm_kib "$HDRTAP_PID")"
	kill -TERM "$HDRTAP_PID"
	rc=0
	wait "$HDRTAP_PID" || rc=$?
	HDRTAP_PID=""
	[[ "$rc" -eq 0 ]] || say "warning: hdrtap exited $rc after SIGTERM"
	read -r rps reqs p99 < <(parse_wrk "$RESULTS/round$r-hdrtap.txt")
	# "lost events: 12", "lost_events=12", "12 lost" ... take the first number next to "lost".
	lost="$(grep -io -E 'lost[_ a-z]*[=:]? *[0-9]+|[0-9]+ +(events? +)?lost' "$RESULTS/round$r-hdrtap.stderr" | grep -o -E '[0-9]+' | head -1 || true)"
	lost="${lost:-?}"
	# "hdrtap: N records (...)": every request is seen by wrk and by nginx.
	records="$(grep -o -E 'hdrtap: [0-9]+ records' "$RESULTS/round$r-hdrtap.stderr" | grep -o -E '[0-9]+' | head -1 || true)"
	rec_req="$(awk -v a="${records:-0}" -v n="$reqs" 'BEGIN { if (n > 0) printf "%.2f", a / n; else print "nan" }')"
	cpu_s="$(awk -v a="$t0" -v b="$t1" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", (b - a) / hz }')"
	us_req="$(awk -v c="$cpu_s" -v n="$reqs" 'BEGIN { if (n > 0) printf "%.2f", c * 1e6 / n; else print "nan" }')"
	rss_mib="$(awk -v k="$rss_kib" 'BEGIN { printf "%.1f", k / 1024 }')"
	printf '%s\thdrtap\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$rps" "$reqs" "$p99" "$cpu_s" "$us_req" "$rss_mib" "$lost" "$rec_req" >>"$ROWS"
	printf '%-6s %-9s %12s %11s %9s %11s %12s %9s %6s %8s\n' "$r" hdrtap "$rps" "$reqs" "$p99" "$cpu_s" "$us_req" "$rss_mib" "$lost" "$rec_req"
done

col() { awk -F'\t' -v arm="$1" -v c="$2" '$2 == arm { print $c }' "$ROWS"; }
base_rps="$(col baseline 3 | median)"
tap_rps="$(col hdrtap 3 | median)"
ratio="$(awk -v a="$tap_rps" -v b="$base_rps" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "nan" }')"
lost_total="$(col hdrtap 9 | awk '$1 ~ /^[0-9]+$/ { s += $1; n++ } END { if (n) print s; else print "?" }')"

echo
echo "hdrtap summary (last round):"
sed 's/^/  /' "$RESULTS/round$ROUNDS-hdrtap.stderr" | tail -n 15
echo
printf 'median req/s        baseline %s   hdrtap %s\n' "$base_rps" "$tap_rps"
printf 'throughput ratio    %s  (hdrtap / baseline)\n' "$ratio"
printf 'median p99 latency  baseline %s ms   hdrtap %s ms\n' "$(col baseline 5 | median)" "$(col hdrtap 5 | median)"
printf 'hdrtap CPU          %s us per request (median), %s s per %ss run\n' "$(col hdrtap 7 | median)" "$(col hdrtap 6 | median)" "$DUR"
printf 'hdrtap peak RSS     %s MiB (max VmHWM)\n' "$(col hdrtap 8 | sort -g | tail -1)"
printf 'lost events         %s (sum over rounds)\n' "$lost_total"
printf 'records per request %s (median; 4.00 = request+response from wrk and from nginx)\n' "$(col hdrtap 10 | median)"
cp "$ROWS" "$RESULTS/rows.tsv"
