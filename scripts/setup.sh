#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine, run as root:
#   - apt packages hdrtap needs to build (clang-19, libelf, ...) and the tools the
#     tests and benchmarks drive (nginx, curl, wrk, tshark, python3, ...)
#   - Rust (rustup's cargo must already be installed; we only put it on PATH)
#   - tracefs mounted at /sys/kernel/tracing
# Safe to run again: apt is only touched when a package is missing.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_root

PACKAGES=(
	clang-19 llvm-19 libelf-dev zlib1g-dev pkg-config bpftool
	build-essential # cc + make: the linker for cargo and libbpf-sys' vendored build
	nginx curl python3 wrk tshark tcpdump
	iproute2 iputils-ping libssl-dev ca-certificates
	openssl # the CLI: self-signed certificates for the HTTPS tests and bench/tls.sh
)

is_installed() {
	[[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" == installed ]]
}

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
	for p in "${missing[@]}"; do
		is_installed "$p" || die "apt package $p is still not installed"
	done
else
	say "apt packages: all present"
fi

ensure_cargo
say "rust: $(cargo --version)"

if ! mountpoint -q /sys/kernel/tracing; then
	say "mounting tracefs at /sys/kernel/tracing"
	mount -t tracefs tracefs /sys/kernel/tracing || die "could not mount tracefs at /sys/kernel/tracing"
else
	say "tracefs: mounted"
fi

[[ -r /sys/kernel/btf/vmlinux ]] || say "warning: /sys/kernel/btf/vmlinux missing: the kernel has no BTF, hdrtap cannot load (see: hdrtap doctor)"

say "setup done"
