// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Count-only programs on each hook a capture could sit on: the cost of the
 * hook itself, with no work of hdrtap's. bench/suite.sh's floor-* arms load
 * one set of them (crates/hdrtap-bpf/examples/floors.rs) and compare the
 * throughput they leave with what hdrtap http leaves.
 *
 * Every program does the same: one per-CPU counter increment. The section
 * name's last part before the function decides the set (see floors.rs).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} floor_runs SEC(".maps");

static __always_inline int count(void)
{
	__u32 k = 0;
	__u64 *c = bpf_map_lookup_elem(&floor_runs, &k);

	if (c)
		*c += 1;
	return 0;
}

/* The syscall exits hdrtap http's syscall path runs on (classic tracepoints). */
SEC("tp/syscalls/sys_exit_read") int sys_read(void *ctx) { return count(); }
SEC("tp/syscalls/sys_exit_write") int sys_write(void *ctx) { return count(); }
SEC("tp/syscalls/sys_exit_readv") int sys_readv(void *ctx) { return count(); }
SEC("tp/syscalls/sys_exit_writev") int sys_writev(void *ctx) { return count(); }
SEC("tp/syscalls/sys_exit_sendto") int sys_sendto(void *ctx) { return count(); }
SEC("tp/syscalls/sys_exit_recvfrom") int sys_recvfrom(void *ctx) { return count(); }
SEC("tp/syscalls/sys_exit_sendmsg") int sys_sendmsg(void *ctx) { return count(); }
SEC("tp/syscalls/sys_exit_recvmsg") int sys_recvmsg(void *ctx) { return count(); }

/* The socket layer: every sock_sendmsg/sock_recvmsg, whatever the syscall. */
SEC("tp/sock/sock_send_length") int sock_send(void *ctx) { return count(); }
SEC("tp/sock/sock_recv_length") int sock_recv(void *ctx) { return count(); }
SEC("tp_btf/sock_send_length") int sockbtf_send(void *ctx) { return count(); }
SEC("tp_btf/sock_recv_length") int sockbtf_recv(void *ctx) { return count(); }

/* TCP's send path, which sees the msghdr (there is no receive twin: the
 * receive side of this set is sock_recv_length). */
SEC("tp/tcp/tcp_sendmsg_locked") int tcp_send(void *ctx) { return count(); }
SEC("tp/sock/sock_recv_length") int tcp_recv(void *ctx) { return count(); }
SEC("tp_btf/tcp_sendmsg_locked") int tcpbtf_send(void *ctx) { return count(); }
SEC("tp_btf/sock_recv_length") int tcpbtf_recv(void *ctx) { return count(); }

char LICENSE[] SEC("license") = "Dual BSD/GPL";
