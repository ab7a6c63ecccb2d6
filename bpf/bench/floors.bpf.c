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
#include <bpf/bpf_core_read.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2); /* 0: runs; 1: payloads read (the iou set) */
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

/* An empty hash, looked up by tgid: what one lookup that misses adds (the
 * sys-hash set), as hdrtap http's pid filter and connection lookup do. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} floor_hash SEC(".maps");

static __always_inline int count_after_lookup(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (bpf_map_lookup_elem(&floor_hash, &tgid))
		return 0;
	return count();
}

/* The syscall exits hdrtap http's syscall path runs on (classic
 * tracepoints): sys_ counts, syshash_ looks up first. */
#define SYS_EXIT(name)                                                        \
	SEC("tp/syscalls/sys_exit_" #name) int sys_##name(void *ctx) { return count(); } \
	SEC("tp/syscalls/sys_exit_" #name) int syshash_##name(void *ctx)          \
	{                                                                     \
		return count_after_lookup();                                  \
	}
SYS_EXIT(read)
SYS_EXIT(write)
SYS_EXIT(readv)
SYS_EXIT(writev)
SYS_EXIT(sendto)
SYS_EXIT(recvfrom)
SYS_EXIT(sendmsg)
SYS_EXIT(recvmsg)

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

/*
 * Not a floor: can a socket-layer hook read what io_uring sends? At
 * tcp_sendmsg_locked the msghdr's iterator still points at the sender's
 * buffer (ITER_UBUF for IORING_OP_SEND and for send(2)); read its first four
 * bytes and count those that start an HTTP request. sock_recv_length has no
 * msghdr; the read set below reads receives another way.
 */
static __always_inline int read_send(const struct msghdr *msg)
{
	__u32 k = 1;
	__u64 *c;
	char head[4] = {};
	const char *ubuf;

	count();
	if (BPF_CORE_READ(msg, msg_iter.iter_type) != ITER_UBUF)
		return 0;
	ubuf = BPF_CORE_READ(msg, msg_iter.ubuf);
	ubuf += BPF_CORE_READ(msg, msg_iter.iov_offset);
	if (bpf_probe_read_user(head, sizeof(head), ubuf) || __builtin_memcmp(head, "GET ", 4))
		return 0;
	c = bpf_map_lookup_elem(&floor_runs, &k);
	if (c)
		*c += 1;
	return 0;
}

SEC("tp_btf/tcp_sendmsg_locked")
int BPF_PROG(iou_send, const struct sock *sk, const struct msghdr *msg)
{
	return read_send(msg);
}

/*
 * Not a floor either: can a socket-layer hook read what a socket receives,
 * io_uring's receives included? skb:skb_copy_datagram_iovec runs as TCP
 * copies a queued skb to the reader (any syscall, or io_uring), in the
 * reader's context. Its payload sits in page fragments (on loopback all of
 * it), which a tracing program cannot address by itself, but
 * bpf_skb_output copies an skb's bytes, fragments included, into a perf
 * buffer. The copy starts at the skb's first payload byte; the reader is at
 * copied_seq, so `off` says where this copy begins. The read set pairs this
 * with iou_send's read of each send.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} rx_events SEC(".maps");

/* What precedes the skb's bytes in each rx_events record. */
struct rx_meta {
	__u32 tgid;
	__u32 off;  /* the copy's first byte, counted from the skb's payload */
	__u32 len;  /* bytes this copy takes */
	__u32 cap;  /* skb bytes that follow this header */
};

#define RX_CAP 64

SEC("tp_btf/skb_copy_datagram_iovec")
int BPF_PROG(rd_recv, const struct sk_buff *skb, int len)
{
	struct sock *sk = skb->sk;
	struct rx_meta m = {};
	__u32 seq, avail;

	count();
	if (!sk || BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	if (bpf_probe_read_kernel(&seq, sizeof(seq), &skb->cb)) /* TCP_SKB_CB(skb)->seq */
		return 0;
	m.tgid = bpf_get_current_pid_tgid() >> 32;
	m.off = BPF_CORE_READ((struct tcp_sock *)sk, copied_seq) - seq;
	m.len = len;
	avail = skb->len;
	m.cap = avail < RX_CAP ? avail : RX_CAP;
	bpf_skb_output((void *)skb, &rx_events, ((__u64)m.cap << 32) | BPF_F_CURRENT_CPU, &m, sizeof(m));
	return 0;
}

SEC("tp_btf/tcp_sendmsg_locked")
int BPF_PROG(rd_send, const struct sock *sk, const struct msghdr *msg)
{
	return read_send(msg);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
