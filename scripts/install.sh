#!/usr/bin/env bash
# Install hdrtap: the binary, its man pages, shell completions (bash, zsh,
# fish), the systemd unit, logrotate's snippet, and an example configuration
# (an existing /etc/hdrtap/hdrtap.toml is kept).
#   ./scripts/install.sh                     # build (release), install under /usr/local, as root
#   PREFIX=/usr ./scripts/install.sh         # elsewhere
#   DESTDIR=/tmp/stage ./scripts/install.sh  # into a staging directory (packaging)
#   ./scripts/install.sh --bin PATH          # install this binary, build nothing
# It does not enable or start the service: systemctl enable --now hdrtap.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bin=""
while (($#)); do
	case "$1" in
	--bin)
		(($# >= 2)) || die "--bin needs a path"
		bin="$2"
		shift 2
		;;
	-h | --help)
		sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*) die "unknown argument: $1 (see $0 --help)" ;;
	esac
done
prefix="${PREFIX:-/usr/local}"
dest="${DESTDIR:-}"

if [[ -z "$bin" ]]; then
	bin="$(build_release)"
fi
[[ -x "$bin" ]] || die "$bin is not an executable"
[[ -n "$dest" || "$(id -u)" -eq 0 ]] || die "installing under $prefix needs root (or set DESTDIR)"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

install -D -m 0755 "$bin" "$dest$prefix/bin/hdrtap"
"$bin" man "$tmp/man"
install -d "$dest$prefix/share/man/man1"
install -m 0644 "$tmp"/man/*.1 "$dest$prefix/share/man/man1/"
"$bin" completions bash >"$tmp/hdrtap.bash"
"$bin" completions zsh >"$tmp/_hdrtap"
"$bin" completions fish >"$tmp/hdrtap.fish"
install -D -m 0644 "$tmp/hdrtap.bash" "$dest$prefix/share/bash-completion/completions/hdrtap"
install -D -m 0644 "$tmp/_hdrtap" "$dest$prefix/share/zsh/site-functions/_hdrtap"
install -D -m 0644 "$tmp/hdrtap.fish" "$dest$prefix/share/fish/vendor_completions.d/hdrtap.fish"

# The unit runs the binary where it was just put.
sed "s#/usr/local/bin/hdrtap#$prefix/bin/hdrtap#g" "$HDRTAP_ROOT/packaging/hdrtap.service" >"$tmp/hdrtap.service"
install -D -m 0644 "$tmp/hdrtap.service" "$dest/etc/systemd/system/hdrtap.service"
install -D -m 0644 "$HDRTAP_ROOT/packaging/hdrtap.logrotate" "$dest/etc/logrotate.d/hdrtap"
config="$dest/etc/hdrtap/hdrtap.toml"
if [[ -e "$config" ]]; then
	say "kept the existing $config"
else
	install -D -m 0640 "$HDRTAP_ROOT/packaging/hdrtap.example.toml" "$config"
fi

if [[ -z "$dest" ]] && [[ -d /run/systemd/system ]]; then
	systemctl daemon-reload || say "warning: systemctl daemon-reload failed"
fi
say "installed $("$dest$prefix/bin/hdrtap" --version | head -1) into ${dest:-/}"
say "next: edit /etc/hdrtap/hdrtap.toml, then: systemctl enable --now hdrtap (or run: hdrtap http)"
