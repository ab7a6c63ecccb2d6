# shellcheck shell=bash
# Helpers shared by scripts/*.sh. Source it; do not execute it.

# Repository root (the directory holding the workspace Cargo.toml).
HDRTAP_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export HDRTAP_ROOT

# One short progress line on stderr.
say() { printf '[hdrtap] %s\n' "$*" >&2; }

# Print an error and exit non-zero.
die() {
	printf '[hdrtap] ERROR: %s\n' "$*" >&2
	exit 1
}

require_root() {
	[[ "$(id -u)" -eq 0 ]] || die "$(basename "$0") must run as root (eBPF needs CAP_BPF/CAP_PERFMON; try: sudo $0)"
}

# Put rustup's cargo on PATH if it is installed but not yet on PATH.
ensure_cargo() {
	if ! command -v cargo >/dev/null 2>&1; then
		local env_file="${CARGO_HOME:-$HOME/.cargo}/env"
		if [[ -f "$env_file" ]]; then
			# shellcheck disable=SC1090,SC1091
			. "$env_file"
		fi
	fi
	command -v cargo >/dev/null 2>&1 ||
		die "cargo not found. Install Rust with rustup (https://rustup.rs), then re-run; this script does not pipe curl into sh for you."
}

# Whether a Debian package is installed.
is_installed() {
	[[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" == installed ]]
}

# Install the Debian packages among "$@" that are missing (apt is only
# touched when one is).
install_apt() {
	local missing=() p
	for p in "$@"; do
		is_installed "$p" || missing+=("$p")
	done
	((${#missing[@]})) || return 0
	say "installing apt packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	for p in "${missing[@]}"; do
		is_installed "$p" || die "apt package $p is still not installed"
	done
}

# Set up what building needs, build the release binary, and print its path
# (scripts/run.sh and scripts/install.sh).
build_release() {
	"$HDRTAP_ROOT/scripts/setup.sh" run >&2
	ensure_cargo
	say "building hdrtap (release)"
	(cd "$HDRTAP_ROOT" && cargo build --release -p hdrtap) >&2
	local target_dir="${CARGO_TARGET_DIR:-$HDRTAP_ROOT/target}"
	[[ "$target_dir" == /* ]] || target_dir="$HDRTAP_ROOT/$target_dir"
	printf '%s\n' "$target_dir/release/hdrtap"
}
