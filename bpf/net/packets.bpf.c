// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * packets.bpf.c — packet header capture (`hdrtap packets`) from three hooks
 * sharing one parser (bpf/lib/pkt.bpf.h), one filter program, one ring
 * buffer and one set of counters:
 *
 *   tc_ingress / tc_egress   tc (TCX link, or clsact filter on old kernels)
 *   xdp_ingress              XDP (native or generic mode), ingress only
 *   sock_filter              socket filter on an AF_PACKET socket; always
 *                            returns 0, so the socket queues nothing
 *
 * Per packet: parse the headers the filter needs -> direction check ->
 * filter -> 1-in-N sample -> copy the first `snaplen` bytes into a ring
 * event with metadata. Userspace decodes every field from the bytes.
 *
 * The owning process of a packet is known only through its socket. Three
 * tracing programs record, from process context, which process last used a
 * socket (keyed by socket cookie): sock_send_length and sock_recv_length
 * (every sendmsg/recvmsg of any socket), and inet_sock_set_state for
 * connect() (CLOSE -> SYN_SENT) and listen() (CLOSE -> LISTEN). tc egress
 * finds the packet's socket with bpf_get_socket_cookie(skb); tc and XDP
 * ingress look up the local TCP socket by the packet's tuple.
 *
 * Kernels without the sock_send_length/sock_recv_length tracepoints (Debian
 * 12's 6.1) get a fallback from the syscall path instead (owner_sys_*):
 * the exits of accept/accept4 and of the socket-only data calls (sendto,
 * recvfrom, sendmsg, recvmsg) find the IPv4/IPv6 socket behind their
 * descriptor and note its owner under the socket's cookie. A classic tracepoint cannot
 * call bpf_get_socket_cookie, so it reads the cookie from struct sock, and
 * owner_state makes sure every established TCP socket has one. Sockets
 * used only through read/write/readv/writev are not seen by the fallback.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_tracing.h>
#include "hdrtap_abi.h"
#include "../lib/pkt.bpf.h"
#include "../lib/sock.bpf.h"
#include "../lib/syscall.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define PACKET_OUTGOING 4
#define TC_ACT_UNSPEC (-1) /* = TCX_NEXT: let the next program decide */
#define TCP_ESTABLISHED_STATE 1
#define TCP_SYN_SENT_STATE 2
#define TCP_CLOSE_STATE 7
#define TCP_LISTEN_STATE 10

/* Set by userspace before load. */
const volatile __u32 snaplen = HDRTAP_PKT_SNAPLEN_DEFAULT; /* bytes copied per packet */
const volatile __u32 sample_n = 1;      /* keep 1 in sample_n accepted packets */
const volatile __u8 dir_mask = 3;       /* 1 << HDRTAP_PKT_IN | 1 << HDRTAP_PKT_OUT */
const volatile __u8 owner_on = 1;       /* attribute packets to processes */
const volatile __u8 owner_sys = 0;      /* the syscall fallback (owner_sys_*) is in use */
const volatile __u64 wakeup_bytes = 1 << 20; /* wake the reader past this much data */
/* `hdrtap http --source packets`: TCP segments that carry payload, SYN, FIN
 * or RST only, copied whole up to snaplen (<= HDRTAP_PKT_L7_SNAPLEN_MAX). */
const volatile __u8 l7_mode = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20); /* resized by userspace */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HDRTAP_PCTR_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* The compiled filter expression (one entry); written by userspace. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hdrtap_pf_prog);
} pf_prog SEC(".maps");

/* ifindex -> enum hdrtap_pkt_link, for interfaces that are not Ethernet. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} links SEC(".maps");

/* socket cookie -> the process that last used the socket. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct hdrtap_sock_owner);
} owners SEC(".maps");

/*
 * Parser output and filter state, one per CPU. In a map value, not on the
 * stack: the verifier does not track values stored in map memory, so the
 * parser's many paths converge instead of being carried separately through
 * the filter loop (on the stack: over a million states). tc, XDP and socket
 * filter programs run with bottom halves disabled (egress under
 * rcu_read_lock_bh, ingress in softirq), so they never nest on one CPU.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pf_run);
} scratch SEC(".maps");

static __always_inline struct pf_run *scratch_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&scratch, &zero);
}

#include "../lib/maps.bpf.h" /* ctr_add, rb_flags: after counters and events */

/* ---- filter ---------------------------------------------------------- */

static long pf_step(__u64 i, void *arg)
{
	struct pf_run *r = scratch_get();
	__u32 zero = 0;
	struct hdrtap_pf_prog *p = bpf_map_lookup_elem(&pf_prog, &zero);
	const struct hdrtap_pf_insn *in;
	__u64 t;

	if (!r || !p || i >= HDRTAP_PF_MAX_INSNS)
		return 1;
	in = &p->insns[i];
	switch (in->op) {
	case HDRTAP_PF_OP_AND:
		t = r->stack & 1;
		r->stack >>= 1;
		if (!t)
			r->stack &= ~1ULL;
		break;
	case HDRTAP_PF_OP_OR:
		t = r->stack & 1;
		r->stack >>= 1;
		r->stack |= t;
		break;
	case HDRTAP_PF_OP_NOT:
		r->stack ^= 1;
		break;
	case HDRTAP_PF_OP_TRUE:
		r->stack = r->stack << 1 | 1;
		break;
	default:
		r->stack = r->stack << 1 | pf_test(in, &r->pi);
		break;
	}
	return 0;
}

/* 1 when the filter accepts the packet. */
static __always_inline int pf_accept(struct pf_run *r)
{
	__u32 zero = 0;
	struct hdrtap_pf_prog *p = bpf_map_lookup_elem(&pf_prog, &zero);
	__u32 len;

	if (!p)
		return 1;
	len = p->len;
	if (len == 0)
		return 1;
	if (len > HDRTAP_PF_MAX_INSNS)
		len = HDRTAP_PF_MAX_INSNS;
	r->stack = 0;
	bpf_loop(len, pf_step, NULL, 0);
	return r->stack & 1;
}

/* ---- owners ---------------------------------------------------------- */

static __always_inline void owner_note_cookie(__u64 cookie)
{
	struct hdrtap_sock_owner o = {};
	struct hdrtap_sock_owner *cur;
	__u64 id;

	id = bpf_get_current_pid_tgid();
	if (id >> 32 == 0)
		return;
	cur = bpf_map_lookup_elem(&owners, &cookie);
	if (cur && cur->tgid == id >> 32 && cur->tid == (__u32)id)
		return;
	o.tgid = id >> 32;
	o.tid = (__u32)id;
	o.cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(o.comm, sizeof(o.comm));
	bpf_map_update_elem(&owners, &cookie, &o, BPF_ANY);
}

static __always_inline void owner_note(struct sock *sk)
{
	if (!owner_on || !sk)
		return;
	owner_note_cookie(bpf_get_socket_cookie(sk));
}

/* TP_PROTO(struct sock *sk, int ret, int flags): after every sendmsg of any socket. */
SEC("tp_btf/sock_send_length")
int BPF_PROG(owner_send, struct sock *sk, int ret, int flags)
{
	owner_note(sk);
	return 0;
}

/* TP_PROTO(struct sock *sk, int ret, int flags): after every recvmsg of any socket. */
SEC("tp_btf/sock_recv_length")
int BPF_PROG(owner_recv, struct sock *sk, int ret, int flags)
{
	owner_note(sk);
	return 0;
}

/*
 * TP_PROTO(const struct sock *sk, const int oldstate, const int newstate).
 * Only the transitions made by the process itself: connect() and listen().
 * Others run in softirq context, under whatever task was interrupted.
 */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(owner_state, struct sock *sk, int oldstate, int newstate)
{
	if (oldstate == TCP_CLOSE_STATE &&
	    (newstate == TCP_SYN_SENT_STATE || newstate == TCP_LISTEN_STATE))
		owner_note(sk);
	else if (owner_sys && newstate == TCP_ESTABLISHED_STATE)
		/* Softirq context: no owner here, but give the socket its
		 * cookie now, so that the fallback's accept() exit, which can
		 * only read it, finds one. */
		bpf_get_socket_cookie(sk);
	return 0;
}

/* ---- owners: the syscall fallback ------------------------------------ */

/*
 * The IPv4/IPv6 socket behind the current task's fd, noted under its
 * cookie. A socket whose cookie was never asked for has none yet: a TCP one
 * gets it when established (owner_state), any other at its first packet's
 * tc egress (bpf_get_socket_cookie(skb)), so that packet goes out before
 * its owner is known, as with sock_send_length.
 */
static __always_inline void owner_note_fd(int fd)
{
	struct sock *sk = NULL;
	enum hdrtap_fd_kind kind;
	__u64 cookie;

	if (!owner_on)
		return;
	kind = hdrtap_fd_sock(fd, &sk);
	if ((kind != HDRTAP_FD_TCP && kind != HDRTAP_FD_INET) || !sk)
		return;
	cookie = BPF_CORE_READ(sk, __sk_common.skc_cookie.counter);
	if (cookie)
		owner_note_cookie(cookie);
}

/* int accept(int fd, ...), int accept4(int fd, ...): the new fd. */
SEC("tracepoint/syscalls/sys_exit_accept")
int owner_sys_accept(struct sys_exit_ctx *ctx)
{
	if (ctx->ret >= 0)
		owner_note_fd(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int owner_sys_accept4(struct sys_exit_ctx *ctx)
{
	if (ctx->ret >= 0)
		owner_note_fd(ctx->ret);
	return 0;
}

/*
 * ssize_t sendto(int fd, ...), recvfrom(int fd, ...), sendmsg(int fd, ...),
 * recvmsg(int fd, ...): sockets only, so files never pay for a lookup;
 * read/write on a socket are not looked at (see docs/ARCHITECTURE.md).
 */
#define OWNER_SYS_DATA(name)                                            \
	SEC("tracepoint/syscalls/sys_exit_" #name)                      \
	int owner_sys_##name(struct sys_exit_ctx *ctx)                  \
	{                                                               \
		if (ctx->ret >= 0)                                      \
			owner_note_fd(PT_REGS_PARM1_SYSCALL(call_regs()));  \
		return 0;                                               \
	}

OWNER_SYS_DATA(sendto)
OWNER_SYS_DATA(recvfrom)
OWNER_SYS_DATA(sendmsg)
OWNER_SYS_DATA(recvmsg)

/* The local TCP socket an incoming packet is for, by its tuple. */
static __always_inline __u64 ingress_cookie(void *ctx, const struct pkt_info *pi)
{
	struct bpf_sock_tuple t = {};
	struct bpf_sock *sk;
	struct tcp_sock *tp;
	__u32 size;
	__u64 cookie = 0;

	if (pi->l4_proto != PKT_IPPROTO_TCP || !(pi->present & PF_BIT(HDRTAP_PF_SRC_PORT)))
		return 0;
	if (pi->family == 4) {
		__builtin_memcpy(&t.ipv4.saddr, (__u8 *)pi->src + 12, 4);
		__builtin_memcpy(&t.ipv4.daddr, (__u8 *)pi->dst + 12, 4);
		t.ipv4.sport = bpf_htons(pi->sport);
		t.ipv4.dport = bpf_htons(pi->dport);
		size = sizeof(t.ipv4);
	} else {
		__builtin_memcpy(t.ipv6.saddr, pi->src, 16);
		__builtin_memcpy(t.ipv6.daddr, pi->dst, 16);
		t.ipv6.sport = bpf_htons(pi->sport);
		t.ipv6.dport = bpf_htons(pi->dport);
		size = sizeof(t.ipv6);
	}
	sk = bpf_skc_lookup_tcp(ctx, &t, size, BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return 0;
	tp = bpf_skc_to_tcp_sock(sk);
	if (tp)
		cookie = tp->inet_conn.icsk_inet.sk.__sk_common.skc_cookie.counter;
	bpf_sk_release(sk);
	return cookie;
}

/* ---- the common path ------------------------------------------------- */

struct pkt_meta {
	__u32 ifindex;
	__u32 wire_len;
	__u16 vlan_tci;
	__u16 vlan_proto;
	__u16 protocol;
	__u8 hook;
	__u8 dir;
	__u8 accel;
	__u8 link;
};

static __always_inline __u8 link_of(__u32 ifindex)
{
	__u8 *l = bpf_map_lookup_elem(&links, &ifindex);

	return l ? *l : HDRTAP_LINK_ETHER;
}

/* Ring records of l7_mode come in these payload sizes: a record is sized
 * to its packet within a factor of 8, and each reserve has the constant
 * size the verifier asks for. */
#define L7_CLASS_0 256
#define L7_CLASS_1 2048
#define L7_CLASS_2 16384
#define L7_CLASS_3 65536

/* A ring record with room for `cap` bytes of packet (NULL: ring full). */
static __always_inline struct hdrtap_pkt_event *l7_reserve(__u64 cap)
{
	if (cap <= L7_CLASS_0)
		return bpf_ringbuf_reserve(&events, sizeof(struct hdrtap_pkt_event) + L7_CLASS_0, 0);
	if (cap <= L7_CLASS_1)
		return bpf_ringbuf_reserve(&events, sizeof(struct hdrtap_pkt_event) + L7_CLASS_1, 0);
	if (cap <= L7_CLASS_2)
		return bpf_ringbuf_reserve(&events, sizeof(struct hdrtap_pkt_event) + L7_CLASS_2, 0);
	return bpf_ringbuf_reserve(&events, sizeof(struct hdrtap_pkt_event) + L7_CLASS_3, 0);
}

/* Copy the first cap bytes of the packet into e->data (sized by
 * l7_reserve(cap)); nonzero when the copy failed. Each class's bound is a
 * constant the verifier can check the length against. */
static __always_inline int l7_load(void *ctx, int kind, struct hdrtap_pkt_event *e, __u64 cap)
{
	__u64 n = cap - 1;

	barrier_var(n);
	if (cap <= L7_CLASS_0) {
		if (n < L7_CLASS_0)
			return pkt_load(ctx, kind, 0, e->data, n + 1);
	} else if (cap <= L7_CLASS_1) {
		if (n < L7_CLASS_1)
			return pkt_load(ctx, kind, 0, e->data, n + 1);
	} else if (cap <= L7_CLASS_2) {
		if (n < L7_CLASS_2)
			return pkt_load(ctx, kind, 0, e->data, n + 1);
	} else if (n < L7_CLASS_3) {
		return pkt_load(ctx, kind, 0, e->data, n + 1);
	}
	return -1;
}

/* l7_mode: a TCP segment the reassembler needs (payload, SYN, FIN, RST). */
static __always_inline int l7_wanted(const struct pkt_info *pi, __u32 wire_len)
{
	__u32 end = pi->ip_end;

	if (pi->l4_proto != PKT_IPPROTO_TCP || !(pi->present & PF_BIT(HDRTAP_PF_SRC_PORT)) ||
	    (pi->flags & (HDRTAP_PKT_F_MALFORMED | HDRTAP_PKT_F_FRAGMENT)))
		return 0;
	if (pi->tcp_flags & 0x07) /* FIN SYN RST */
		return 1;
	if (end == 0 || end > wire_len)
		end = wire_len;
	return end > pi->tcp_data;
}

static __always_inline void handle(void *ctx, int kind, struct pkt_meta *m)
{
	struct pf_run *run = scratch_get();
	struct hdrtap_pf_prog *prog;
	struct hdrtap_pkt_event *e;
	__u32 zero = 0;
	int filtering, lookup;
	struct hdrtap_sock_owner *o;
	__u64 cookie = 0;
	__u64 cap;
	__u8 owner = HDRTAP_OWNER_NONE;

	if (!run)
		return;
	ctr_add(HDRTAP_PCTR_SEEN, 1);
	if (!(dir_mask & (1 << m->dir))) {
		ctr_add(HDRTAP_PCTR_FILTERED, 1);
		return;
	}
	/* Parse only when something needs the fields: the filter, or the
	 * socket lookup of an incoming packet. Userspace decodes the bytes. */
	prog = bpf_map_lookup_elem(&pf_prog, &zero);
	filtering = prog && prog->len;
	lookup = owner_on && m->dir == HDRTAP_PKT_IN && (kind == PKT_CTX_XDP || m->hook == HDRTAP_HOOK_TC);
	__builtin_memset(&run->pi, 0, sizeof(run->pi));
	if (filtering || lookup || l7_mode)
		pkt_parse(ctx, kind, m->link, m->accel, m->vlan_tci, m->protocol, &run->pi);
	if ((filtering && !pf_accept(run)) || (l7_mode && !l7_wanted(&run->pi, m->wire_len))) {
		ctr_add(HDRTAP_PCTR_FILTERED, 1);
		return;
	}
	if (sample_n > 1 && bpf_get_prandom_u32() % sample_n != 0) {
		ctr_add(HDRTAP_PCTR_SAMPLED_OUT, 1);
		return;
	}
	if (run->pi.flags & HDRTAP_PKT_F_MALFORMED)
		ctr_add(HDRTAP_PCTR_MALFORMED, 1);

	if (owner_on) {
		if (kind == PKT_CTX_SKB && m->dir == HDRTAP_PKT_OUT) {
			cookie = bpf_get_socket_cookie(ctx);
			owner = HDRTAP_OWNER_SKB_SK;
		} else if (kind == PKT_CTX_XDP || m->hook == HDRTAP_HOOK_TC) {
			/* Socket lookups exist for tc and XDP, not socket filters. */
			cookie = ingress_cookie(ctx, &run->pi);
			owner = HDRTAP_OWNER_LOOKUP;
		}
	}

	cap = m->wire_len < snaplen ? m->wire_len : (__u64)snaplen;
	if (l7_mode)
		e = l7_reserve(cap);
	else
		e = bpf_ringbuf_reserve(&events, sizeof(*e) + snaplen, 0);
	if (!e) {
		ctr_add(HDRTAP_PCTR_RINGBUF_DROPS, 1);
		return;
	}
	e->hdr.kind = HDRTAP_EV_PACKET;
	e->hdr._pad0 = 0;
	e->hdr.fd = -1;
	e->hdr.ts_ns = bpf_ktime_get_ns();
	e->hdr.conn_id = cookie;
	e->hdr.tgid = 0;
	e->hdr.tid = 0;
	e->cgroup_id = 0;
	__builtin_memset(e->comm, 0, sizeof(e->comm));
	e->owner = HDRTAP_OWNER_NONE;
	if (cookie) {
		o = bpf_map_lookup_elem(&owners, &cookie);
		if (o) {
			e->hdr.tgid = o->tgid;
			e->hdr.tid = o->tid;
			e->cgroup_id = o->cgroup_id;
			__builtin_memcpy(e->comm, o->comm, sizeof(e->comm));
			e->owner = owner;
			ctr_add(HDRTAP_PCTR_OWNER_KNOWN, 1);
		}
	}
	e->ifindex = m->ifindex;
	e->wire_len = m->wire_len;
	e->hook = m->hook;
	e->dir = m->dir;
	e->link = m->link;
	e->vlan_tci = m->accel ? m->vlan_tci : 0;
	e->vlan_proto = m->accel ? m->vlan_proto : 0;
	e->protocol = m->protocol;
	e->_pad0 = 0;
	e->flags = run->pi.flags & (HDRTAP_PKT_F_MALFORMED | HDRTAP_PKT_F_FRAGMENT |
				   HDRTAP_PKT_F_PARSE_LIMIT);
	if (m->accel)
		e->flags |= HDRTAP_PKT_F_VLAN_ACCEL;

	if (cap < m->wire_len) {
		e->flags |= HDRTAP_PKT_F_SNAPPED;
		ctr_add(HDRTAP_PCTR_SNAPPED, 1);
	}
	if (l7_mode) {
		if (cap > 0 && l7_load(ctx, kind, e, cap)) {
			e->flags |= HDRTAP_PKT_F_LOAD_FAILED;
			ctr_add(HDRTAP_PCTR_LOAD_FAILS, 1);
			cap = 0;
		}
	} else if (cap > 0) {
		/* The verifier must see 1 <= length <= snaplen on the register
		 * passed; barrier_var() keeps clang from dropping the (to it)
		 * redundant check. */
		__u64 n = cap - 1;

		barrier_var(n);
		if (n < snaplen && pkt_load(ctx, kind, 0, e->data, n + 1)) {
			e->flags |= HDRTAP_PKT_F_LOAD_FAILED;
			ctr_add(HDRTAP_PCTR_LOAD_FAILS, 1);
			cap = 0;
		}
	}
	e->cap_len = cap;
	ctr_add(HDRTAP_PCTR_EVENTS, 1);
	ctr_add(HDRTAP_PCTR_BYTES, cap);
	bpf_ringbuf_submit(e, rb_flags());
}

static __always_inline void handle_skb(struct __sk_buff *skb, __u8 hook, __u8 dir)
{
	struct pkt_meta m = {};

	m.ifindex = skb->ifindex;
	m.wire_len = skb->len;
	m.hook = hook;
	m.dir = dir;
	m.protocol = bpf_ntohs((__u16)skb->protocol);
	m.link = link_of(m.ifindex);
	if (skb->vlan_present) {
		m.accel = 1;
		m.vlan_tci = skb->vlan_tci;
		m.vlan_proto = bpf_ntohs((__u16)skb->vlan_proto);
	}
	handle(skb, PKT_CTX_SKB, &m);
}

SEC("tc")
int tc_ingress(struct __sk_buff *skb)
{
	handle_skb(skb, HDRTAP_HOOK_TC, HDRTAP_PKT_IN);
	return TC_ACT_UNSPEC;
}

SEC("tc")
int tc_egress(struct __sk_buff *skb)
{
	handle_skb(skb, HDRTAP_HOOK_TC, HDRTAP_PKT_OUT);
	return TC_ACT_UNSPEC;
}

SEC("socket")
int sock_filter(struct __sk_buff *skb)
{
	handle_skb(skb, HDRTAP_HOOK_SOCKET,
		   skb->pkt_type == PACKET_OUTGOING ? HDRTAP_PKT_OUT : HDRTAP_PKT_IN);
	return 0; /* never queue on the socket: the event is in the ring buffer */
}

SEC("xdp")
int xdp_ingress(struct xdp_md *ctx)
{
	struct pkt_meta m = {};

	m.ifindex = ctx->ingress_ifindex;
	m.wire_len = bpf_xdp_get_buff_len(ctx);
	m.hook = HDRTAP_HOOK_XDP;
	m.dir = HDRTAP_PKT_IN;
	m.link = link_of(m.ifindex);
	handle(ctx, PKT_CTX_XDP, &m);
	return XDP_PASS;
}
