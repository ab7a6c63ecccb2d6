#!/usr/bin/env bash
# The kernel matrix: hdrtap's captures on the host's kernel and on every
# distribution kernel below, each booted under qemu (TCG) with virtme-ng on
# this machine's root filesystem. In each kernel, scripts/kernel-guest.sh runs
# `hdrtap doctor --json` and the integration tests of each capture; this
# script prints the table kernel x capture and exits non-zero if a cell
# failed. Run as root, after scripts/setup.sh (scripts/test.sh calls it).
#
#   ./scripts/kernels.sh                       # every kernel
#   ./scripts/kernels.sh host debian12-6.1     # some rows (labels below)
#
# Kernels come from apt, through a private apt configuration under
# target/kernels/apt (the machine's own sources, /boot and /lib/modules are
# left alone): the newest package matching each pattern is downloaded and
# unpacked with its modules into target/kernels/<label>.
# Output: target/kernels/matrix.md (the table), target/kernels/<label>/out/
# (doctor.json, results.tsv, a log per test).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_root
ensure_cargo
cd "$HDRTAP_ROOT"

# label | where from | package pattern (extended regex; newest match wins) | required
# A required row whose kernel cannot be downloaded fails the run; an
# optional one (Ubuntu's archive, not Debian's) is listed as not tested.
KERNELS=(
	"host|host|-|yes"
	"debian12-6.1|debian|^linux-image-6\.1\.0-[0-9]+-amd64$|yes"
	"debian12-6.12|debian|^linux-image-6\.12\.[0-9]+\+deb12-amd64$|yes"
	"ubuntu24.04-6.8|ubuntu|^linux-image-unsigned-6\.8\.0-[0-9]+-generic$|no"
	"ubuntu22.04-5.15|ubuntu|^linux-image-unsigned-5\.15\.0-[0-9]+-generic$|no"
	"debian11-5.10|debian|^linux-image-5\.10\.0-[0-9]+-amd64$|yes"
)

# Ubuntu's archive key, from its keyring package, pinned by checksum.
UBUNTU_KEYRING_DEB="pool/main/u/ubuntu-keyring/ubuntu-keyring_2023.11.28.1_all.deb"
UBUNTU_KEYRING_SHA256="36de43b15853ccae0028e9a767613770c704833f82586f28eb262f0311adb8a8"
VNG_VERSION="1.42"

target_dir="${CARGO_TARGET_DIR:-$HDRTAP_ROOT/target}"
[[ "$target_dir" == /* ]] || target_dir="$HDRTAP_ROOT/$target_dir"
work="$target_dir/kernels"
mkdir -p "$work"

wanted=("$@")
want() {
	((${#wanted[@]} == 0)) && return 0
	local w
	for w in "${wanted[@]}"; do [[ "$w" == "$1" ]] && return 0; done
	return 1
}

# ---- tools: qemu, busybox (virtme's initramfs), virtme-ng --------------------

install_apt qemu-system-x86 busybox-static kmod file
venv="$work/vng"
if ! "$venv/bin/vng" --version 2>/dev/null | grep -qF "$VNG_VERSION"; then
	say "kernels: installing virtme-ng $VNG_VERSION into $venv"
	python3 -m venv --clear "$venv" || die "python3 -m venv failed"
	"$venv/bin/python3" -m pip install --quiet --disable-pip-version-check "virtme-ng==$VNG_VERSION" ||
		die "pip install virtme-ng failed"
fi
export PATH="$venv/bin:$PATH"

# ---- what the guests run: hdrtap and the test binaries, built on the host ----

say "kernels: building hdrtap and the test binaries"
cargo build -p hdrtap
tests_env="$work/tests.env"
cargo test -p hdrtap-tests --no-run --message-format=json |
	python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print("TEST_%s=%s" % (m["target"]["name"], m["executable"]))
' >"$tests_env"
export HDRTAP_BIN="${HDRTAP_BIN:-$target_dir/debug/hdrtap}"
echo "HDRTAP_BIN=$HDRTAP_BIN" >>"$tests_env"

# ---- kernels from apt ----------------------------------------------------------

apt_dir="$work/apt"
APT=(apt-get -q
	-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=$apt_dir/empty"
	-o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
	-o "APT::Sandbox::User=root" -o "Acquire::Retries=3")
APT_CACHE=(apt-cache
	-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=$apt_dir/empty"
	-o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache")
ubuntu_ok=0

apt_setup() {
	mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/empty"
	local deb=/usr/share/keyrings/debian-archive-keyring.gpg
	cat >"$apt_dir/sources.list" <<-EOF
		deb [signed-by=$deb] http://deb.debian.org/debian bookworm main
		deb [signed-by=$deb] http://deb.debian.org/debian-security bookworm-security main
		deb [signed-by=$deb] http://deb.debian.org/debian bullseye main
		deb [signed-by=$deb] http://deb.debian.org/debian-security bullseye-security main
	EOF
	local keyring="$apt_dir/ubuntu-archive-keyring.gpg"
	if [[ ! -s "$keyring" ]]; then
		local tmp="$apt_dir/ubuntu-keyring.deb"
		if curl -fsS --max-time 60 -o "$tmp" "http://archive.ubuntu.com/ubuntu/$UBUNTU_KEYRING_DEB" &&
			echo "$UBUNTU_KEYRING_SHA256  $tmp" | sha256sum -c --quiet -; then
			rm -rf "$apt_dir/ubuntu-keyring"
			dpkg-deb -x "$tmp" "$apt_dir/ubuntu-keyring"
			cp "$apt_dir/ubuntu-keyring/usr/share/keyrings/ubuntu-archive-keyring.gpg" "$keyring"
		else
			say "kernels: Ubuntu's archive is not reachable (or its keyring changed): Ubuntu rows are not tested"
		fi
	fi
	if [[ -s "$keyring" ]]; then
		ubuntu_ok=1
		cat >>"$apt_dir/sources.list" <<-EOF
			deb [arch=amd64 signed-by=$keyring] http://archive.ubuntu.com/ubuntu jammy-updates main
			deb [arch=amd64 signed-by=$keyring] http://archive.ubuntu.com/ubuntu noble-updates main
		EOF
	fi
	say "kernels: apt update (private lists in $apt_dir)"
	"${APT[@]}" update >"$apt_dir/update.log" 2>&1 || {
		cat "$apt_dir/update.log" >&2
		die "apt-get update of the kernel sources failed"
	}
}

# Download and unpack the newest package matching $2 into $1; prints the
# kernel image path. Ubuntu splits the modules into linux-modules-*.
fetch_kernel() {
	local dir="$1" pattern="$2" pkg ver img
	pkg=$("${APT_CACHE[@]}" pkgnames linux-image- | grep -E "$pattern" | sort -V | tail -1)
	[[ -n "$pkg" ]] || return 1
	if [[ -f "$dir/package" && "$(cat "$dir/package")" == "$pkg" ]]; then
		ls "$dir"/root/boot/vmlinuz-*
		return 0
	fi
	rm -rf "$dir/root" "$dir/debs"
	mkdir -p "$dir/root" "$dir/debs"
	local pkgs=("$pkg")
	if [[ "$pkg" == linux-image-unsigned-* ]]; then
		pkgs+=("linux-modules-${pkg#linux-image-unsigned-}")
	fi
	(cd "$dir/debs" && "${APT[@]}" download "${pkgs[@]}" >"$dir/download.log" 2>&1) || return 1
	local d
	for d in "$dir"/debs/*.deb; do dpkg-deb -x "$d" "$dir/root"; done
	ver=$(ls "$dir/root/lib/modules")
	depmod -b "$dir/root" "$ver"
	echo "$pkg" >"$dir/package"
	img=$(ls "$dir"/root/boot/vmlinuz-*)
	echo "$img"
}

# ---- run -------------------------------------------------------------------------

guest="$HDRTAP_ROOT/scripts/kernel-guest.sh"
need_apt=0
for row in "${KERNELS[@]}"; do
	IFS='|' read -r label from _ _ <<<"$row"
	want "$label" && [[ "$from" != host ]] && need_apt=1
done
((need_apt)) && apt_setup

# Run the row in $dir on kernel image $1 ("host": natively) into $out; its
# console (the guest kernel's messages) and the guest script's output go to
# $dir/run.log.
run_row() {
	local img="$1"
	rm -rf "$out"
	mkdir -p "$out"
	local start=$SECONDS
	if [[ "$img" == host ]]; then
		"$guest" "$out" "$tests_env" >"$dir/run.log" 2>&1 || true
	else
		# vng exits 255 without a terminal (its script I/O falls back to
		# the console): the guest writes its results into $out instead.
		# --verbose: the kernel's console too, to say why a guest died.
		timeout 1200 vng --run "$img" --disable-kvm --cpus 2 --memory 2G --verbose \
			--rwdir "$out" -- "$guest" "$out" "$tests_env" >"$dir/run.log" 2>&1 || true
	fi
	echo $((SECONDS - start)) >"$out/seconds"
	[[ -f "$out/done" ]]
}

failed=0
rows=()
for row in "${KERNELS[@]}"; do
	IFS='|' read -r label from pattern required <<<"$row"
	want "$label" || continue
	dir="$work/$label"
	out="$dir/out"
	rm -rf "$out" "$dir/out.boot1" "$dir/run.boot1.log"
	mkdir -p "$out"
	if [[ "$from" == host ]]; then
		say "kernels: $label ($(uname -r)), natively"
		img=host
	else
		if [[ "$from" == ubuntu ]] && ((!ubuntu_ok)); then
			echo "not tested: Ubuntu's archive is not reachable from this machine" >"$out/skipped"
			rows+=("$label")
			continue
		fi
		if ! img=$(fetch_kernel "$dir" "$pattern"); then
			if [[ "$required" == yes ]]; then
				say "kernels: $label: no package matching $pattern could be downloaded"
				failed=1
			fi
			echo "not tested: no package matching $pattern could be downloaded" >"$out/skipped"
			rows+=("$label")
			continue
		fi
		say "kernels: $label ($(cat "$dir/package")), under qemu (TCG)"
	fi
	# A guest that dies before its row is done (seen twice in the 6.8
	# guest, in different cells, the run's output cut off mid-test) is
	# booted once more; what it printed last is shown, and the table
	# says `2nd boot`.
	if ! run_row "$img"; then
		say "kernels: $label: the guest did not finish; the last of its console ($dir/run.boot1.log):"
		tail -n 40 "$dir/run.log" >&2
		mv "$out" "$dir/out.boot1"
		mv "$dir/run.log" "$dir/run.boot1.log"
		say "kernels: $label: booting it once more"
		if run_row "$img"; then
			echo 2 >"$out/boots"
		else
			say "kernels: $label: the guest did not finish again (see $dir/run.log)"
			tail -n 40 "$dir/run.log" >&2
			failed=1
		fi
	fi
	rows+=("$label")
done

python3 "$HDRTAP_ROOT/scripts/kernel_table.py" "$work" "${rows[@]}" | tee "$work/matrix.md"
python3 "$HDRTAP_ROOT/scripts/kernel_table.py" --failures "$work" "${rows[@]}"
python3 "$HDRTAP_ROOT/scripts/kernel_table.py" --check "$work" "${rows[@]}" || failed=1
if ((failed)); then
	die "kernel matrix: some cells failed (logs under $work/<kernel>/out)"
fi
say "kernel matrix: every cell passed or is unavailable with a clear error"
