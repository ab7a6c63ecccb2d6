/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * syscall.bpf.h — what a program on a syscalls:sys_{enter,exit}_<name>
 * tracepoint sees, and where it finds the call's arguments. Shared by the
 * HTTP capture (bpf/l7/syscalls.bpf.c) and the packet capture's process
 * attribution fallback (bpf/net/packets.bpf.c).
 */
#ifndef HDRTAP_SYSCALL_BPF_H
#define HDRTAP_SYSCALL_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

/*
 * Records of the syscalls:sys_enter_<name> and sys_exit_<name> tracepoints,
 * as tracefs's events/syscalls/sys_enter_read/format describes them: the
 * common 8-byte header, an int syscall number, then the arguments or the
 * return value at offset 16. (vmlinux.h's trace_event_raw_sys_enter is the
 * raw_syscalls record, whose `long id` would read 4 bytes of padding.)
 */
struct sys_enter_ctx {
	__u64 common;
	__s32 nr;
	__u32 _pad;
	__u64 args[6];
};

struct sys_exit_ctx {
	__u64 common;
	__s32 nr;
	__u32 _pad;
	__s64 ret;
};

/*
 * The registers the task entered the kernel with, where its syscall
 * arguments are (PT_REGS_PARMn_SYSCALL). They are saved on entry and the
 * calls hooked by hdrtap do not change them, so an exit program reads fd,
 * buffer and count itself and no program needs to run at entry: that halves
 * the traced calls' tracepoint runs and drops the per-thread stash between
 * entry and exit. bpf_task_pt_regs: Linux 5.15.
 */
static __always_inline struct pt_regs *call_regs(void)
{
	return (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
}

#endif /* HDRTAP_SYSCALL_BPF_H */
