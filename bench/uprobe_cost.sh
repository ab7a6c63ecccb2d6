#!/usr/bin/env bash
# What one uprobe hit costs on this machine, by the kind of instruction it
# replaces: one x86 emulates (push, as OpenSSL's ssl_read_internal starts)
# and one it single-steps out of line (sub $imm,%rsp, as SSL_read starts).
# This is why hdrtap hooks OpenSSL's internal read/write where it can
# (docs/PERFORMANCE.md, HTTPS).
#
# A C program calls three tiny functions N times each and prints ns per
# call; it runs once without probes and once with a tracefs uprobe on each
# function (no BPF involved: the trap and the single-step are the kernel's).
#
#   sudo bench/uprobe_cost.sh            # N=200000
#   sudo N=50000 bench/uprobe_cost.sh
#
# Not a test: it prints numbers and fails only if something cannot run.
set -euo pipefail

N="${N:-200000}"
die() {
	printf '[uprobe_cost] ERROR: %s\n' "$*" >&2
	exit 1
}
[[ "$(id -u)" -eq 0 ]] || die "run as root (uprobes)"
[[ "$N" =~ ^[0-9]+$ && "$N" -gt 0 ]] || die "N must be a positive integer"
[[ "$(uname -m)" == x86_64 ]] || die "x86-64 only (the instructions compared are x86's)"
command -v cc >/dev/null || die "no C compiler (apt-get install build-essential)"

T=/sys/kernel/tracing
[[ -d "$T/events" ]] || mount -t tracefs nodev "$T" || die "cannot mount tracefs at $T"

WORK="$(mktemp -d /tmp/hdrtap-uprobe-cost.XXXXXX)"
EVENTS=()
cleanup() {
	for e in "${EVENTS[@]}"; do
		echo 0 >"$T/events/uprobes/$e/enable" 2>/dev/null || true
		echo "-:uprobes/$e" >>"$T/uprobe_events" 2>/dev/null || true
	done
	rm -rf "$WORK"
}
trap cleanup EXIT

cat >"$WORK/calls.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
/* Each starts with the instruction under test and returns its argument. */
__attribute__((naked, noinline)) int f_sub(int x) { __asm__("sub $0x18,%rsp\n add $0x18,%rsp\n mov %edi,%eax\n ret"); }
__attribute__((naked, noinline)) int f_push_r13(int x) { __asm__("push %r13\n pop %r13\n mov %edi,%eax\n ret"); }
__attribute__((naked, noinline)) int f_push_rbx(int x) { __asm__("push %rbx\n pop %rbx\n mov %edi,%eax\n ret"); }
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(int argc, char **argv) {
	int n = atoi(argv[1]);
	volatile int sink = 0;
	struct { const char *name; int (*f)(int); } fs[] = {
		{"sub $0x18,%rsp", f_sub}, {"push %r13", f_push_r13}, {"push %rbx", f_push_rbx}};
	for (int k = 0; k < 3; k++) {
		double t = now();
		for (int i = 0; i < n; i++)
			sink += fs[k].f(i);
		printf("%s\t%.0f\n", fs[k].name, (now() - t) / n * 1e9);
	}
	return 0;
}
EOF
cc -O2 -o "$WORK/calls" "$WORK/calls.c" || die "cannot build the test program"

"$WORK/calls" "$N" >"$WORK/bare.txt"
for f in f_sub f_push_r13 f_push_rbx; do
	off="$(nm "$WORK/calls" | awk -v f="$f" '$3 == f { print $1 }')"
	[[ -n "$off" ]] || die "no symbol $f in the test program"
	e="hdrtap_cost_${f}_$$"
	echo "p:uprobes/$e $WORK/calls:0x$off" >>"$T/uprobe_events" || die "cannot add a uprobe ($T/uprobe_events)"
	EVENTS+=("$e")
	echo 1 >"$T/events/uprobes/$e/enable"
done
# The events are not recorded anywhere that matters; only their cost is.
"$WORK/calls" "$N" >"$WORK/probed.txt"

printf '%-16s %12s %12s %12s\n' "first insn" "ns/call" "probed" "probe ns"
paste "$WORK/bare.txt" "$WORK/probed.txt" | awk -F'\t' '{ printf "%-16s %12d %12d %12d\n", $1, $2, $4, $4 - $2 }'
