#!/usr/bin/env bash
# hdrtap's overhead next to its peers, every arm interleaved in one run.
#
# Workloads: nginx (one worker, static 512-byte file, keep-alive) on
# 127.0.0.1, over HTTP and over HTTPS, driven by wrk; every request carries
# an X-Seq header so loss can be counted from hdrtap's own output.
#
# Arms (ARMS, space-separated; default: all):
#   none            no tracer, HTTP workload (the baseline of the HTTP arms)
#   http            hdrtap http --json (default flags), HTTP workload
#   none-tls        no tracer, HTTPS workload (the baseline of the tls arm)
#   none-huge       no tracer, 4 MiB responses (sendfile off: the body goes
#                   through write calls), the baseline of http-huge
#   http-huge       hdrtap http --json, 4 MiB responses
#   http-b          the http arm with a second build, HDRTAP_B: two builds
#                   compared in one interleaved run (ARMS="none http http-b")
#   tls-b, packets-tc-b  the tls and packets-tc arms with HDRTAP_B
#   tls             hdrtap http --json, HTTPS workload (OpenSSL uprobes)
#   packets-tc      hdrtap packets -i lo --hook tc --json, HTTP workload
#   packets-xdp     hdrtap packets -i lo --hook xdp --json, HTTP workload
#   http-wire       hdrtap http --source packets -i lo port PORT --json (HTTP
#                   reassembled from the packets; each request is seen once,
#                   on the wire: one traced exchange per request)
#   tcpdump-128     tcpdump -i lo -s 128 -w FILE, HTTP workload
#   tcpdump-full    tcpdump -i lo -s 0 -w FILE, HTTP workload
#   bpftrace        bpftrace counting the syscalls hdrtap http hooks (a floor)
#   http-hooks      hdrtap's own kernel programs with a pid filter nothing
#                   matches (each call returns at the filter), HTTP workload
#   http-capture    hdrtap's kernel capture with a reader that only counts
#                   events (crates/hdrtap-bpf/examples/smoke), HTTP workload
#   bpftrace-tls    the same plus OpenSSL uprobes and uretprobes (the functions
#                   hdrtap hooks: OpenSSL's internal read/write, found as the
#                   callees of SSL_read_ex/SSL_write_ex), counting only: the
#                   floor of the tls arm
#   bpftrace-tls-public  the same on SSL_read, SSL_read_ex, SSL_write and
#                   SSL_write_ex, as hdrtap hooked them before: each hit there
#                   single-steps (see docs/PERFORMANCE.md, HTTPS)
#   floor-sys       count-only programs (bpf/bench/floors.bpf.c, loaded by
#                   crates/hdrtap-bpf/examples/floors) on the eight syscall
#                   exits hdrtap http hooks: the floor of its syscall path
#   floor-sock      the same on sock:sock_send_length and sock:sock_recv_length
#                   (classic tracepoints): the socket layer, any syscall
#   floor-sock-btf  the same two as tp_btf programs
#   floor-tcp       tcp:tcp_sendmsg_locked (the send path with its msghdr) and
#                   sock:sock_recv_length (there is no receive twin), classic
#   floor-tcp-btf   the same two as tp_btf programs
#   floor-read      not count-only: what a socket-layer capture would read,
#                   the first 4 bytes of each send at tcp_sendmsg_locked and
#                   the first 64 of each receive's skb (skb_copy_datagram_iovec,
#                   bpf_skb_output into a perf buffer the example drains)
#   tc-floor        a tc classifier on lo (ingress+egress) that returns at
#                   once: the floor of the packets-tc arm, HTTP workload
#   none-h2         no tracer, HTTP/2 workload: h2load (CONNS connections,
#                   H2_STREAMS concurrent streams each) against nginx h2c
#   h2              hdrtap http --json, HTTP/2 workload
#   none-h2-tls     no tracer, HTTP/2 over TLS (ALPN h2), h2load
#   h2-tls          hdrtap http --json, HTTP/2 over TLS (OpenSSL uprobes)
#   none-go-tls     no tracer, HTTPS to a Go server (tests/gotls/server, Go's
#                   crypto/tls and net/http, HTTP/1.1), wrk: the baseline of go-tls
#   go-tls          hdrtap http --json, that workload (Go crypto/tls uprobes on
#                   the server, OpenSSL's on wrk, as the tls arm hooks both ends)
#
# Within each round the arms run in the order given, so drift on a shared
# machine hits every arm alike; medians over rounds are compared.
#
# Per arm: req/s, ratio to its workload's baseline, p99 latency, the tracer's
# CPU time per request and per traced exchange (x: each request is traced at
# both ends, wrk's and the server's, so two exchanges per request), the BPF
# run time of the tracer's programs per traced exchange
# (kernel.bpf_stats_enabled, on for the run unless BPFSTATS=0: it adds two
# clock reads to every program run, so BPF arms pay a little for being
# measured), for packet arms the tracer's CPU per packet it reports, peak RSS,
# and loss: for hdrtap http/tls the X-Seq
# values of requests missing from its output (LOSS=1, output then goes to a
# tmpfs file; otherwise /dev/null and hdrtap's own lost-event count), for
# packet arms the tracer's own drop count; and the share of all CPUs' time
# left idle during the load (a saturated workload leaves almost none; a
# tracer that makes it wait shows here, see docs/PERFORMANCE.md).
#
#   sudo bench/suite.sh                         # every arm, DUR=5 ROUNDS=3
#   sudo ARMS="none http" DUR=10 bench/suite.sh # one comparison
#   sudo LOSS=1 ARMS="none http" bench/suite.sh # count loss by X-Seq
#   sudo HDRTAP_B=/tmp/hdrtap-new ARMS="none http http-b" ROUNDS=8 bench/suite.sh
#                                               # two builds, A/B in one run
#   sudo PACKETS_ARGS="--sample 10" bench/packets.sh
#
# At the end (CALLGRIND=1, the default; valgrind needed), the userspace
# pipeline's instructions per traced exchange from examples/pipeline_count:
# repeatable where timings are not.
#
# Not a test: it prints numbers and fails only if something cannot run.
set -euo pipefail

DUR="${DUR:-5}"
ROUNDS="${ROUNDS:-3}"
CONNS="${CONNS:-16}"
THREADS="${THREADS:-1}"
LOSS="${LOSS:-0}"
ARMS="${ARMS:-none http none-huge http-huge none-tls tls none-go-tls go-tls none-h2 h2 none-h2-tls h2-tls packets-tc packets-xdp tcpdump-128 tcpdump-full bpftrace floor-sys floor-sock floor-sock-btf floor-tcp floor-tcp-btf http-hooks http-capture bpftrace-tls bpftrace-tls-public tc-floor}"
BPFSTATS="${BPFSTATS:-1}"         # BPF run time per arm (kernel.bpf_stats_enabled)
CALLGRIND="${CALLGRIND:-1}"       # instructions per exchange at the end
H2_STREAMS="${H2_STREAMS:-10}"   # h2load -m: concurrent streams per connection
HTTP_ARGS="${HTTP_ARGS:-}"       # extra flags of the hdrtap http arms
HDRTAP_B="${HDRTAP_B:-}"         # the build of the http-b arm
PACKETS_ARGS="${PACKETS_ARGS:-}" # extra flags of the hdrtap packets arms

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HDRTAP="${HDRTAP:-${CARGO_TARGET_DIR:-$ROOT/target}/release/hdrtap}"
SMOKE="${SMOKE:-${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/smoke}"
FLOORS="${FLOORS:-${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/floors}"
PIPELINE_COUNT="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/pipeline_count"

say() { printf '[bench] %s\n' "$*" >&2; }
die() {
	printf '[bench] ERROR: %s\n' "$*" >&2
	exit 1
}

[[ "$(id -u)" -eq 0 ]] || die "run as root (tracers load eBPF programs)"
[[ "$DUR" =~ ^[0-9]+$ && "$DUR" -gt 0 ]] || die "DUR must be a positive integer"
[[ "$ROUNDS" =~ ^[0-9]+$ && "$ROUNDS" -gt 0 ]] || die "ROUNDS must be a positive integer"
for arm in $ARMS; do
	case "$arm" in
	none | http | http-b | http-wire | tls-b | packets-tc-b | none-huge | http-huge | none-tls | tls | packets-tc | packets-xdp | tcpdump-128 | tcpdump-full | bpftrace | bpftrace-tls | bpftrace-tls-public | floor-sys | floor-sock | floor-sock-btf | floor-tcp | floor-tcp-btf | floor-read | tc-floor | http-hooks | http-capture | none-h2 | h2 | none-h2-tls | h2-tls | none-go-tls | go-tls) ;;
	*) die "unknown arm '$arm'" ;;
	esac
done
if [[ " $ARMS " =~ \ (http|tls|packets-tc)-b\  && ! -x "$HDRTAP_B" ]]; then
	die "the -b arms need HDRTAP_B, an executable hdrtap build (got '$HDRTAP_B')"
fi
for tool in nginx wrk curl python3 awk openssl; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool not found: run scripts/setup.sh"
done
if [[ " $ARMS " == *"h2"* ]] && ! command -v h2load >/dev/null 2>&1; then
	die "h2load not found: run scripts/setup.sh (Debian package nghttp2-client)"
fi
if [[ " $ARMS " == *" tcpdump-"* ]] && ! command -v tcpdump >/dev/null 2>&1; then
	die "tcpdump not found: run scripts/setup.sh"
fi
if [[ " $ARMS " == *" bpftrace"* ]] && ! command -v bpftrace >/dev/null 2>&1; then
	say "installing bpftrace (only the bpftrace arm needs it)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bpftrace >/dev/null || die "cannot install bpftrace"
fi
# Build $1 with `cargo build --release ARGS...` unless it is there already.
build_missing() { # path cargo-args...
	local path="$1"
	shift
	[[ -x "$path" ]] && return 0
	say "building $path"
	# shellcheck disable=SC1091 # rustup's environment, if any
	[[ -f "$HOME/.cargo/env" ]] && . "$HOME/.cargo/env"
	(cd "$ROOT" && cargo build --release "$@")
}
build_missing "$HDRTAP" -p hdrtap
[[ " $ARMS " == *" http-"* ]] && build_missing "$SMOKE" -p hdrtap-bpf --example smoke
[[ " $ARMS " == *" floor-"* ]] && build_missing "$FLOORS" -p hdrtap-bpf --example floors
if [[ "$CALLGRIND" == 1 ]]; then
	command -v valgrind >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null ||
		die "cannot install valgrind (CALLGRIND=0 skips the instruction count)"
	build_missing "$PIPELINE_COUNT" -p hdrtap-core --example pipeline_count
fi
OLD_BPF_STATS="$(sysctl -n kernel.bpf_stats_enabled)"
[[ "$BPFSTATS" == 1 ]] && sysctl -qw kernel.bpf_stats_enabled=1

WORK="$(mktemp -d /tmp/hdrtap-suite.XXXXXX)"
SHM="$(mktemp -d /dev/shm/hdrtap-suite.XXXXXX)"
RESULTS="$ROOT/bench/results/suite-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$RESULTS"
NGINX_PID=""
GO_PID=""
TRACER_PID=""
TC_FLOOR=0 # a clsact qdisc on lo is ours to remove

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
	stop_pid "$TRACER_PID" TERM
	[[ "$TC_FLOOR" == 1 ]] && tc qdisc del dev lo clsact 2>/dev/null
	stop_pid "$NGINX_PID" TERM
	stop_pid "$GO_PID" TERM
	sysctl -qw kernel.bpf_stats_enabled="$OLD_BPF_STATS"
	wait 2>/dev/null || true
	rm -rf "$WORK" "$SHM"
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT
trap 'exit 143' TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT="$(free_port)"
TLS_PORT="$(free_port)"
H2_PORT="$(free_port)"
H2_TLS_PORT="$(free_port)"
mkdir -p "$WORK/www" "$WORK/tmp"
head -c 512 /dev/zero | tr '\0' 'x' >"$WORK/www/index.html"
head -c $((4 << 20)) /dev/urandom >"$WORK/www/huge.bin"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
	-subj /CN=localhost -keyout "$WORK/key.pem" -out "$WORK/cert.pem" >/dev/null 2>&1 ||
	die "openssl could not make a certificate"
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
        listen 127.0.0.1:$TLS_PORT ssl;
        listen 127.0.0.1:$H2_PORT http2;
        listen 127.0.0.1:$H2_TLS_PORT ssl http2;
        ssl_certificate $WORK/cert.pem;
        ssl_certificate_key $WORK/key.pem;
        root $WORK/www;
        location = /huge.bin { sendfile off; }
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

# The Go HTTPS server of the go-tls arms, built with Debian's Go.
GO_TLS_PORT=""
if [[ " $ARMS " == *"go-tls "* ]]; then
	command -v go >/dev/null 2>&1 || die "go not found: run scripts/setup.sh (Debian package golang-go)"
	(cd "$ROOT/tests/gotls/server" && GOFLAGS=-mod=mod GOPROXY=off GOTOOLCHAIN=local CGO_ENABLED=0 \
		GOCACHE="$WORK/gocache" GOPATH="$WORK/gopath" go build -o "$WORK/gotls-server" .) ||
		die "cannot build tests/gotls/server"
	GO_TLS_PORT="$(free_port)"
	GODEBUG=http2server=0 "$WORK/gotls-server" -addr "127.0.0.1:$GO_TLS_PORT" \
		-cert "$WORK/cert.pem" -key "$WORK/key.pem" >"$WORK/go.out" 2>&1 &
	GO_PID=$!
	for ((i = 0; i < 100; i++)); do
		grep -q listening "$WORK/go.out" 2>/dev/null && break
		kill -0 "$GO_PID" 2>/dev/null || die "the Go server died: $(cat "$WORK/go.out")"
		sleep 0.1
	done
fi

cat >"$WORK/seq.lua" <<'LUA'
local n = 0
request = function()
    n = n + 1
    -- nil method and path: those of the URL wrk was given.
    return wrk.format(nil, nil, { ["X-Seq"] = tostring(n) })
end
LUA

url_of() { # arm -> URL of its workload
	case "$1" in
	none-h2 | h2) echo "http://127.0.0.1:$H2_PORT/index.html" ;;
	none-h2-tls | h2-tls) echo "https://127.0.0.1:$H2_TLS_PORT/index.html" ;;
	none-tls | tls | tls-b | bpftrace-tls | bpftrace-tls-public) echo "https://127.0.0.1:$TLS_PORT/index.html" ;;
	none-go-tls | go-tls) echo "https://127.0.0.1:$GO_TLS_PORT/index.html" ;;
	none-huge | http-huge) echo "http://127.0.0.1:$PORT/huge.bin" ;;
	*) echo "http://127.0.0.1:$PORT/index.html" ;;
	esac
}
baseline_of() { # arm -> its workload's baseline arm
	case "$1" in
	none-h2 | h2) echo none-h2 ;;
	none-h2-tls | h2-tls) echo none-h2-tls ;;
	none-tls | tls | tls-b | bpftrace-tls | bpftrace-tls-public) echo none-tls ;;
	none-go-tls | go-tls) echo none-go-tls ;;
	none-huge | http-huge) echo none-huge ;;
	*) echo none ;;
	esac
}
run_wrk() { # url duration output-file
	wrk -t"$THREADS" -c"$CONNS" -d"$2s" --latency -s "$WORK/seq.lua" "$1" >"$3" 2>&1
}
is_h2() { [[ "$1" == none-h2 || "$1" == h2 || "$1" == none-h2-tls || "$1" == h2-tls ]]; }
run_h2load() { # url duration output-file
	h2load -t"$THREADS" -c"$CONNS" -m"$H2_STREAMS" -D"$2" "$1" >"$3" 2>&1
}
parse_h2load() { # h2load output -> "req_per_sec requests -" (no p99 from h2load)
	awk '
	/^finished in/ { for (i = 1; i <= NF; i++) if ($(i + 1) == "req/s,") rps = $i }
	/^requests:/ { for (i = 1; i <= NF; i++) if ($(i + 1) == "succeeded,") reqs = $i }
	END { printf "%s %s -\n", rps, reqs }' "$1"
}
parse_wrk() { # wrk output -> "req_per_sec requests p99_ms"
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
# "total idle" jiffies of all CPUs, from /proc/stat's first line (idle + iowait).
cpu_jiffies() { awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; print t, $5 + $6; exit }' /proc/stat; }
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
# Run time (ns) of the BPF programs process $1 holds, each program once
# (the fdinfo of its program fds; a link's fd names its program too, with
# no run time; zero unless kernel.bpf_stats_enabled).
bpf_ns() {
	local f
	for f in /proc/"$1"/fdinfo/*; do
		awk '/^prog_id:/ { id = $2 } /^run_time_ns:/ { ns = $2 } END { if (id != "" && ns != "") print id, ns }' "$f" 2>/dev/null
	done | sort -u -k1,1 | awk '{ s += $2 } END { printf "%.0f\n", s }'
}
# Packets the tracer of a packet arm says it saw, from its exit line.
packets_of() { # arm round
	case "$1" in
	packets-*) grep -o -E 'the kernel saw [0-9]+ packets' "$RESULTS/$1-$2.stderr" | grep -o -E '[0-9]+' | head -1 ;;
	http-wire) grep -o -E 'packets: [0-9]+ TCP segments read' "$RESULTS/$1-$2.stderr" | grep -o -E '[0-9]+' | head -1 ;;
	tcpdump-*) grep -o -E '^[0-9]+ packets captured' "$RESULTS/$1-$2.stderr" | grep -o -E '^[0-9]+' ;;
	esac
}
vm_hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit } if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# hdrtap http has programs on these calls' exits only (no entry programs).
BPFTRACE_SYSCALLS='tracepoint:syscalls:sys_exit_read,tracepoint:syscalls:sys_exit_write,tracepoint:syscalls:sys_exit_readv,tracepoint:syscalls:sys_exit_writev,tracepoint:syscalls:sys_exit_sendto,tracepoint:syscalls:sys_exit_recvfrom,tracepoint:syscalls:sys_exit_sendmsg,tracepoint:syscalls:sys_exit_recvmsg'
BPFTRACE_PROG="$BPFTRACE_SYSCALLS { @calls = count(); }"
# The OpenSSL functions hdrtap http hooks, in the library nginx and wrk load.
LIBSSL="$(ldd "$(command -v nginx)" | awk '/libssl\.so/ { print $3; exit }')"
# The function OpenSSL's wrapper $2 calls (objdump names the call's target
# address; in a shared library that is also the file offset hdrtap uses).
wrapper_callee() { # lib symbol
	local a
	a="$(nm -D "$1" | awk -v f="$2" '$3 ~ ("^" f "@") { print $1; exit }')"
	[[ -n "$a" ]] || return 0
	objdump -d --start-address="0x$a" --stop-address="$(printf '0x%x' $((0x$a + 16)))" "$1" |
		awk '$0 ~ /\tcall/ { print "0x" $(NF - 1); exit }'
}
BPFTRACE_TLS_PROG=""
BPFTRACE_TLS_PUBLIC_PROG=""
if [[ -n "$LIBSSL" ]]; then
	probes=""
	for f in SSL_read SSL_read_ex SSL_write SSL_write_ex; do
		probes+=",uprobe:$LIBSSL:$f,uretprobe:$LIBSSL:$f"
	done
	BPFTRACE_TLS_PUBLIC_PROG="$BPFTRACE_SYSCALLS$probes,uprobe:$LIBSSL:SSL_set_fd { @calls = count(); }"
	probes=""
	for f in SSL_read_ex SSL_write_ex; do
		at="$(wrapper_callee "$LIBSSL" "$f")"
		[[ -n "$at" ]] || { probes=""; break; }
		probes+=",uprobe:$LIBSSL:$at,uretprobe:$LIBSSL:$at"
	done
	[[ -n "$probes" ]] &&
		BPFTRACE_TLS_PROG="$BPFTRACE_SYSCALLS$probes,uprobe:$LIBSSL:SSL_set_fd { @calls = count(); }"
fi
if [[ " $ARMS " == *" bpftrace-tls "* && -z "$BPFTRACE_TLS_PROG" ]]; then
	die "no OpenSSL read/write callee found in nginx's libssl ($LIBSSL): the bpftrace-tls arm has nothing to hook"
fi
if [[ " $ARMS " == *" bpftrace-tls-public "* && -z "$BPFTRACE_TLS_PUBLIC_PROG" ]]; then
	die "nginx is not linked with libssl: the bpftrace-tls-public arm has nothing to hook"
fi
if [[ " $ARMS " == *" tc-floor "* ]] && tc qdisc show dev lo | grep -q clsact; then
	die "lo already has a clsact qdisc; the tc-floor arm would replace its filters"
fi

# Wait until the example behind TRACER_PID (smoke, floors) says "attached".
wait_attached() { # arm round seconds
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		grep -q "^attached" "$RESULTS/$1-$2.stderr" 2>/dev/null && return 0
		kill -0 "$TRACER_PID" 2>/dev/null || die "$1 exited before ready: $(cat "$RESULTS/$1-$2.stderr")"
		sleep 0.1
	done
	die "$1 not ready after $3 s"
}

# Start the tracer of an arm; sets TRACER_PID (empty for baselines).
start_tracer() { # arm round
	local arm="$1" r="$2" out=/dev/null
	TRACER_PID=""
	[[ "$LOSS" == 1 ]] && out="$SHM/$arm-$r.ndjson"
	rm -f "$WORK/ready"
	case "$arm" in
	none | none-tls | none-huge | none-h2 | none-h2-tls | none-go-tls) return 0 ;;
	http | tls | http-huge | http-b | tls-b | h2 | h2-tls | go-tls)
		# Default flags (TLS uprobes on), as users run it.
		local bin="$HDRTAP"
		[[ "$arm" == *-b ]] && bin="$HDRTAP_B"
		# shellcheck disable=SC2086 # a flag list on purpose
		"$bin" http --json -o "$out" --ready-file "$WORK/ready" $HTTP_ARGS \
			>/dev/null 2>"$RESULTS/$arm-$r.stderr" &
		;;
	http-wire)
		# shellcheck disable=SC2086
		"$HDRTAP" http --source packets -i lo --json -o "$out" --ready-file "$WORK/ready" \
			$HTTP_ARGS port "$PORT" >/dev/null 2>"$RESULTS/$arm-$r.stderr" &
		;;
	packets-tc | packets-xdp | packets-tc-b)
		local bin="$HDRTAP" hook="${arm#packets-}"
		[[ "$arm" == *-b ]] && bin="$HDRTAP_B" hook=tc
		# shellcheck disable=SC2086
		"$bin" packets -i lo --hook "$hook" --json -o /dev/null --ready-file "$WORK/ready" \
			$PACKETS_ARGS >/dev/null 2>"$RESULTS/$arm-$r.stderr" &
		;;
	tcpdump-128 | tcpdump-full)
		local snap=128
		[[ "$arm" == tcpdump-full ]] && snap=0
		tcpdump -i lo -s "$snap" -w "$SHM/$arm.pcap" -U 2>"$RESULTS/$arm-$r.stderr" &
		TRACER_PID=$!
		# tcpdump says "listening on lo" once it captures.
		for ((i = 0; i < 100; i++)); do
			grep -q "listening on" "$RESULTS/$arm-$r.stderr" 2>/dev/null && break
			sleep 0.1
		done
		return 0
		;;
	http-hooks | http-capture)
		# The kernel side of hdrtap http alone. SMOKE_PID=1: only init is
		# traced, so every hooked call stops at the pid filter.
		local pid_filter=()
		[[ "$arm" == http-hooks ]] && pid_filter=(SMOKE_PID=1)
		env "${pid_filter[@]}" "$SMOKE" $((DUR + 60)) >/dev/null 2>"$RESULTS/$arm-$r.stderr" &
		TRACER_PID=$!
		wait_attached "$arm" "$r" 30
		return 0
		;;
	floor-*)
		"$FLOORS" "${arm#floor-}" $((DUR + 60)) >/dev/null 2>"$RESULTS/$arm-$r.stderr" &
		TRACER_PID=$!
		wait_attached "$arm" "$r" 10
		return 0
		;;
	tc-floor)
		# Classic BPF "return 0" (no match: the packet goes on) on both
		# hooks of lo: the cost of running a tc program per packet.
		tc qdisc add dev lo clsact || die "cannot add a clsact qdisc to lo"
		TC_FLOOR=1
		for hook in ingress egress; do
			tc filter add dev lo "$hook" bpf bytecode '1,6 0 0 0,' || die "cannot add a tc filter to lo $hook"
		done
		return 0
		;;
	bpftrace | bpftrace-tls | bpftrace-tls-public)
		local prog="$BPFTRACE_PROG"
		[[ "$arm" == bpftrace-tls ]] && prog="$BPFTRACE_TLS_PROG"
		[[ "$arm" == bpftrace-tls-public ]] && prog="$BPFTRACE_TLS_PUBLIC_PROG"
		# --unsafe: bpftrace 0.17 refuses an address outside every exported
		# symbol (OpenSSL's internal functions are not exported) without it.
		local unsafe=()
		[[ "$arm" == bpftrace-tls ]] && unsafe=(--unsafe)
		bpftrace "${unsafe[@]}" -e "$prog" >"$RESULTS/$arm-$r.stdout" 2>"$RESULTS/$arm-$r.stderr" &
		TRACER_PID=$!
		# bpftrace prints "Attaching N probes..." when its probes are in.
		for ((i = 0; i < 300; i++)); do
			grep -q "Attaching" "$RESULTS/$arm-$r.stdout" "$RESULTS/$arm-$r.stderr" 2>/dev/null && break
			sleep 0.1
		done
		sleep 0.5
		return 0
		;;
	esac
	TRACER_PID=$!
	for ((i = 0; i < 600; i++)); do
		[[ -e "$WORK/ready" ]] && return 0
		kill -0 "$TRACER_PID" 2>/dev/null || die "$arm exited before ready: $(cat "$RESULTS/$arm-$r.stderr")"
		sleep 0.1
	done
	die "$arm not ready after 60 s"
}

# Loss of an arm after its tracer stopped.
loss_of() { # arm round requests
	local arm="$1" r="$2" reqs="$3" f="$SHM/$1-$2.ndjson"
	case "$arm" in
	http | tls | http-huge | http-b | tls-b | h2 | h2-tls | go-tls)
		if [[ "$LOSS" == 1 ]]; then
			# Requests the load completed whose X-Seq (wrk) is absent from
			# the server side; h2load sends no X-Seq: server-side request
			# records short of the requests completed.
			python3 - "$f" "$reqs" <<'PY'
import json, sys
seen = set()
count = 0
with open(sys.argv[1], errors="replace") as f:
    for line in f:
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if r.get("kind") == "http_request" and r.get("role") == "server":
            count += 1
            for n, v in r.get("headers", []):
                if n and n.lower() == "x-seq":
                    seen.add(v)
print(max(0, int(sys.argv[2]) - (len(seen) if seen else count)))
PY
			rm -f "$f"
		else
			grep -o -E 'lost [0-9]+ events' "$RESULTS/$arm-$r.stderr" | grep -o -E '[0-9]+' | head -1 || echo "?"
		fi
		;;
	packets-*) grep -o -E '[0-9]+ lost' "$RESULTS/$arm-$r.stderr" | grep -o -E '[0-9]+' | head -1 || echo "?" ;;
	http-wire) grep -o -E '[0-9]+ lost to a full ring buffer' "$RESULTS/$arm-$r.stderr" | grep -o -E '^[0-9]+' | head -1 || echo "?" ;;
	tcpdump-*) grep -o -E '[0-9]+ packets dropped by kernel' "$RESULTS/$arm-$r.stderr" | grep -o -E '^[0-9]+' || echo "?" ;;
	*) echo - ;;
	esac
}

say "nginx on 127.0.0.1:$PORT (http), :$TLS_PORT (https), :$H2_PORT (h2c), :$H2_TLS_PORT (h2); wrk -t$THREADS -c$CONNS -d${DUR}s (HTTP/2: h2load -m$H2_STREAMS); $ROUNDS round(s)"
say "arms: $ARMS"
say "raw outputs in $RESULTS"
run_wrk "http://127.0.0.1:$PORT/index.html" 2 "$RESULTS/warmup.txt"
[[ " $ARMS " == *" none-tls "* || " $ARMS " == *" tls "* ]] &&
	run_wrk "https://127.0.0.1:$TLS_PORT/index.html" 2 "$RESULTS/warmup-tls.txt"
[[ -n "$GO_TLS_PORT" ]] && run_wrk "https://127.0.0.1:$GO_TLS_PORT/index.html" 2 "$RESULTS/warmup-go-tls.txt"
for arm in $ARMS; do
	if is_h2 "$arm"; then
		run_h2load "http://127.0.0.1:$H2_PORT/index.html" 2 "$RESULTS/warmup-h2.txt"
		run_h2load "https://127.0.0.1:$H2_TLS_PORT/index.html" 2 "$RESULTS/warmup-h2-tls.txt"
		break
	fi
done

# Traced exchanges per request: wrk's end and the server's end (http-wire
# sees each request once, on the wire).
X_PER_REQ=2
x_of() { if [[ "$1" == http-wire ]]; then echo 1; else echo "$X_PER_REQ"; fi; }
ROWS="$RESULTS/rows.tsv" # round arm rps requests p99 cpu_s us_per_req rss_mib loss idle_pct bpf_ns packets
: >"$ROWS"
fmt='%-5s %-14s %10s %10s %8s %7s %10s %8s %8s %8s %8s %8s %6s\n'
# shellcheck disable=SC2059 # the format is a constant
printf "\n$fmt" round arm "req/s" requests "p99 ms" "cpu s" "cpu us/req" "cpu us/x" "bpf us/x" "us/pkt" "RSS MiB" loss "idle%"
for ((r = 1; r <= ROUNDS; r++)); do
	for arm in $ARMS; do
		start_tracer "$arm" "$r"
		t0=0 b0=0
		[[ -n "$TRACER_PID" ]] && t0="$(cpu_ticks "$TRACER_PID")" && b0="$(bpf_ns "$TRACER_PID")"
		read -r j0 i0 < <(cpu_jiffies)
		if is_h2 "$arm"; then
			run_h2load "$(url_of "$arm")" "$DUR" "$RESULTS/$arm-$r.wrk"
		else
			run_wrk "$(url_of "$arm")" "$DUR" "$RESULTS/$arm-$r.wrk"
		fi
		read -r j1 i1 < <(cpu_jiffies)
		# Share of all CPUs' time nobody ran during the load.
		idle="$(awk -v a="$j0" -v b="$j1" -v x="$i0" -v y="$i1" 'BEGIN { if (b > a) printf "%.1f", 100 * (y - x) / (b - a); else print "nan" }')"
		cpu_s=- us_req=- rss_mib=- bpf_ns=-
		if [[ -n "$TRACER_PID" ]]; then
			t1="$(cpu_ticks "$TRACER_PID")"
			[[ "$BPFSTATS" == 1 ]] && bpf_ns=$(($(bpf_ns "$TRACER_PID") - b0))
			rss_mib="$(awk -v k="$(vm_hwm_kib "$TRACER_PID")" 'BEGIN { printf "%.1f", k / 1024 }')"
			stop_pid "$TRACER_PID" INT
			wait "$TRACER_PID" 2>/dev/null || true
			TRACER_PID=""
			cpu_s="$(awk -v a="$t0" -v b="$t1" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", (b - a) / hz }')"
		fi
		if [[ "$arm" == tc-floor ]]; then
			tc qdisc del dev lo clsact
			TC_FLOOR=0
		fi
		if is_h2 "$arm"; then
			read -r rps reqs p99 < <(parse_h2load "$RESULTS/$arm-$r.wrk")
		else
			read -r rps reqs p99 < <(parse_wrk "$RESULTS/$arm-$r.wrk")
		fi
		[[ "$cpu_s" != - ]] && us_req="$(awk -v c="$cpu_s" -v n="$reqs" 'BEGIN { if (n > 0) printf "%.2f", c * 1e6 / n; else print "nan" }')"
		loss="$(loss_of "$arm" "$r" "$reqs")"
		pkts="$(packets_of "$arm" "$r")"
		pkts="${pkts:--}"
		us_x=- bpf_x=- us_pkt=-
		[[ "$us_req" != - ]] && us_x="$(awk -v u="$us_req" -v x="$(x_of "$arm")" 'BEGIN { printf "%.2f", u / x }')"
		[[ "$bpf_ns" != - && "$bpf_ns" != 0 ]] && bpf_x="$(awk -v b="$bpf_ns" -v n="$reqs" -v x="$(x_of "$arm")" 'BEGIN { if (n > 0) printf "%.2f", b / 1000 / n / x; else print "nan" }')"
		[[ "$pkts" != - && "$cpu_s" != - ]] && us_pkt="$(awk -v c="$cpu_s" -v p="$pkts" 'BEGIN { if (p > 0) printf "%.3f", c * 1e6 / p; else print "nan" }')"
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$arm" "$rps" "$reqs" "$p99" "$cpu_s" "$us_req" "$rss_mib" "$loss" "$idle" "$bpf_x" "$us_pkt" >>"$ROWS"
		# shellcheck disable=SC2059
		printf "$fmt" "$r" "$arm" "$rps" "$reqs" "$p99" "$cpu_s" "$us_req" "$us_x" "$bpf_x" "$us_pkt" "$rss_mib" "$loss" "$idle"
	done
done

col() { awk -F'\t' -v arm="$1" -v c="$2" '$2 == arm { print $c }' "$ROWS"; }
echo
sfmt='%-14s %10s %7s %8s %10s %8s %8s %8s %8s %10s %6s\n'
# shellcheck disable=SC2059 # the format is a constant
printf "$sfmt" arm "req/s" ratio "p99 ms" "cpu us/req" "cpu us/x" "bpf us/x" "us/pkt" "RSS MiB" "loss" "idle%"
for arm in $ARMS; do
	rps="$(col "$arm" 3 | median)"
	base="$(col "$(baseline_of "$arm")" 3 | median)"
	ratio="$(awk -v a="$rps" -v b="$base" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }')"
	[[ " $ARMS " == *" $(baseline_of "$arm") "* ]] || ratio="-"
	us="$(col "$arm" 7 | grep -v '^-$' | median || true)"
	[[ "$us" == nan ]] && us=-
	rss="$(col "$arm" 8 | grep -v '^-$' | sort -g | tail -1 || true)"
	loss="$(col "$arm" 9 | awk '$1 ~ /^[0-9]+$/ { s += $1; n++ } END { if (n) print s; else print "-" }')"
	us_x=-
	[[ -n "$us" && "$us" != - ]] && us_x="$(awk -v u="$us" -v x="$(x_of "$arm")" 'BEGIN { printf "%.2f", u / x }')"
	bpf_x="$(col "$arm" 11 | grep -v -E '^(-|nan)$' | median || true)"
	[[ "$bpf_x" == nan ]] && bpf_x=-
	us_pkt="$(col "$arm" 12 | grep -v -E '^(-|nan)$' | median || true)"
	[[ "$us_pkt" == nan ]] && us_pkt=-
	# shellcheck disable=SC2059
	printf "$sfmt" "$arm" "$rps" "$ratio" "$(col "$arm" 5 | median)" "${us:--}" "$us_x" "${bpf_x:--}" "${us_pkt:--}" "${rss:--}" "$loss" "$(col "$arm" 10 | median)"
done
echo
echo "ratio: median req/s over the median of the arm's workload baseline (none: HTTP, none-huge: 4 MiB responses, none-tls: HTTPS, none-h2: h2c, none-h2-tls: h2 over TLS, none-go-tls: HTTPS to a Go server);"
echo "p99: wrk's; h2load reports none (-)."
echo "cpu us/x, bpf us/x: the tracer's CPU and its BPF programs' run time per traced exchange ($X_PER_REQ per request: both ends traced); us/pkt: tracer CPU per packet it reports seeing"
echo "loss: sum over rounds (hdrtap: lost events, or with LOSS=1 missing X-Seq; packets: events lost; tcpdump: dropped by kernel)"
echo "idle%: median share of all CPUs' time left idle during the load (/proc/stat): time the tracer made the workload wait"

if [[ "$CALLGRIND" == 1 ]]; then
	# Instructions of the userspace pipeline per traced exchange (4 events
	# in, 4 NDJSON records out): the run minus the same run that only
	# builds its events, over the exchanges.
	collected() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$PIPELINE_COUNT" "$@" 2>&1 | awk '/Collected/ { print $NF }'; }
	n=20000
	full="$(collected "$n")"
	build="$(collected "$n" build)"
	echo
	awk -v a="$full" -v b="$build" -v n="$n" -v x="$X_PER_REQ" 'BEGIN { printf "userspace pipeline (callgrind, examples/pipeline_count %d): %.1fk instructions per request traced at both ends (4 events in, 4 NDJSON records out), %.1fk per traced exchange\n", n, (a - b) / n / 1000, (a - b) / n / x / 1000 }'
fi
