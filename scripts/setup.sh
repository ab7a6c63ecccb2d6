#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine, run as root:
#   ./scripts/setup.sh run    what building and running hdrtap needs: clang-19,
#                             libelf, ...; tracefs mounted at /sys/kernel/tracing
#   ./scripts/setup.sh test   that, and the tools the tests and benchmarks drive
#                             (nginx, curl, wrk, tshark, tmux, Prometheus, a Python venv,
#                             cargo-fuzz, ...)
# Rust: rustup's cargo must already be installed; this only puts it on PATH.
# Safe to run again: apt is only touched when a package is missing.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_root
mode="${1:-test}"
[[ "$mode" == run || "$mode" == test ]] || die "usage: $0 run|test"

# Building and running hdrtap.
PACKAGES=(
	clang-19 llvm-19 libelf-dev zlib1g-dev pkg-config
	build-essential # cc + make: the linker for cargo and libbpf-sys' vendored build
	git # the commit hdrtap --version names
)
# The tests and benchmarks.
TEST_PACKAGES=(
	bpftool # vmlinux.h is generated with it (committed), and the tests inspect objects
	nginx curl python3 wrk tshark tcpdump
	iproute2 iputils-ping libssl-dev ca-certificates
	openssl # the CLI: self-signed certificates for the HTTPS tests and bench/tls.sh
	util-linux libcap2-bin # setpriv, capsh: tests/privileges.rs runs hdrtap with chosen capabilities
	prometheus  # prometheus + promtool: tests/sinks_prometheus.rs scrapes hdrtap run's /metrics
	python3-venv # a venv for the OTLP test receiver's packages (below)
	nghttp2-client # nghttp, h2load: the HTTP/2 tests' oracle and load (tests/http2.rs, bench/)
	gnutls-bin # gnutls-cli, gnutls-serv: HTTPS through GnuTLS (tests/tls.rs)
	golang-go # Go 1.19: the Go HTTPS peers built at test time (tests/gotls.rs, tests/gotls/)
	nodejs # Node.js's https module: OpenSSL on memory BIOs (tests/tls.rs, tests/node/)
	bsdutils # script: a pty for the terminal view tests (tests/cli.rs)
	man-db python3-yaml systemd # man, PyYAML, systemd-analyze: the root-free packaging checks (crates/hdrtap/tests/packaging.rs)
	tmux # tests/top.rs drives hdrtap top in a detached pane (send-keys, capture-pane)
	nftables # nft: tests/http_packets.rs drops segments to force retransmissions (this kernel has no netem)
)

if [[ "$mode" == test ]]; then
	PACKAGES+=("${TEST_PACKAGES[@]}")
fi
missing=()
for p in "${PACKAGES[@]}"; do
	is_installed "$p" || missing+=("$p")
done

if ((${#missing[@]})); then
	say "installing apt packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# tshark asks whether non-root users may capture; answer "no" up front.
	echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections
	nginx_was_installed=0
	is_installed nginx && nginx_was_installed=1
	prometheus_was_installed=0
	is_installed prometheus && prometheus_was_installed=1
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends \
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
		"${missing[@]}" >/dev/null
	if ((!nginx_was_installed)); then
		# The package starts a system nginx on port 80; the tests run their own.
		say "stopping the nginx the package started"
		if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
			systemctl stop nginx >/dev/null 2>&1 || true
			systemctl disable nginx >/dev/null 2>&1 || true
		fi
		service nginx stop >/dev/null 2>&1 || true
		nginx -s stop >/dev/null 2>&1 || true
	fi
	if ((!prometheus_was_installed)); then
		# Likewise a system Prometheus on :9090; the tests run their own.
		say "stopping the prometheus the package started"
		if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
			systemctl stop prometheus >/dev/null 2>&1 || true
			systemctl disable prometheus >/dev/null 2>&1 || true
		fi
		service prometheus stop >/dev/null 2>&1 || true
	fi
	for p in "${missing[@]}"; do
		is_installed "$p" || die "apt package $p is still not installed"
	done
else
	say "apt packages: all present"
fi

ensure_cargo
say "rust: $(cargo --version)"

if [[ "$mode" == test ]]; then
# Python packages of the tests: the official OpenTelemetry protobuf schema
# and grpcio (the OTLP receiver, tests/clients/otlp_receiver.py; grpcio also
# for the gRPC peers), h2 with its hpack and hyperframe (the frame-level
# HTTP/2 peer, tests/clients/h2peer.py), PyYAML to parse the packaging
# manifests; in a venv under target/, so the system Python is not touched.
# Recreated only when an import fails.
target_dir="${CARGO_TARGET_DIR:-$HDRTAP_ROOT/target}"
[[ "$target_dir" == /* ]] || target_dir="$HDRTAP_ROOT/$target_dir"
venv="$target_dir/pyotlp"
py_packages=(opentelemetry-proto grpcio pyyaml h2)
py_check='import opentelemetry.proto.collector.logs.v1.logs_service_pb2_grpc, grpc, yaml, h2, hpack, hyperframe'
if [[ -x "$venv/bin/python3" ]] && "$venv/bin/python3" -c "$py_check" 2>/dev/null; then
	say "python venv: present ($venv)"
else
	say "python venv: installing ${py_packages[*]} into $venv"
	mkdir -p "$target_dir"
	python3 -m venv --clear "$venv" || die "python3 -m venv failed (Debian package python3-venv)"
	"$venv/bin/python3" -m pip install --quiet --disable-pip-version-check "${py_packages[@]}" ||
		die "pip install ${py_packages[*]} failed"
	"$venv/bin/python3" -c "$py_check" || die "the venv at $venv cannot import $py_check"
fi

# The fuzz targets (fuzz/run.sh) run on stable Rust through cargo-fuzz.
if ! command -v cargo-fuzz >/dev/null 2>&1; then
	say "installing cargo-fuzz (about a minute)"
	cargo install cargo-fuzz --locked --quiet || die "cargo install cargo-fuzz failed"
fi
fi # test

if ! mountpoint -q /sys/kernel/tracing; then
	say "mounting tracefs at /sys/kernel/tracing"
	mount -t tracefs tracefs /sys/kernel/tracing || die "could not mount tracefs at /sys/kernel/tracing"
else
	say "tracefs: mounted"
fi

[[ -r /sys/kernel/btf/vmlinux ]] || say "warning: /sys/kernel/btf/vmlinux missing: the kernel has no BTF, hdrtap cannot load (see: hdrtap doctor)"

say "setup done"
