// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * capture.bpf.h — what the two units of the HTTP capture object share:
 * syscalls.bpf.c (the syscall tracepoints) and openssl.bpf.c (the TLS
 * uprobes). build.rs compiles each on its own and links them into one
 * object (libbpf's static linker), so they share one set of maps and
 * settings: syscalls.bpf.c defines them (HDRTAP_L7_DEFINE), openssl.bpf.c
 * sees the same declarations as extern. The static helpers here (the
 * connection table, the gate's callers, the copy loop) are compiled into
 * each unit; the global functions (sniff, h2_midstream, body_scan) are
 * defined once, in syscalls.bpf.c, and verified on their own.
 */
#ifndef HDRTAP_CAPTURE_BPF_H
#define HDRTAP_CAPTURE_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "hdrtap_abi.h"
#include "../lib/http_sniff.bpf.h"
#include "../lib/sock.bpf.h"
#include "../lib/syscall.bpf.h"

#ifdef HDRTAP_L7_DEFINE
#define L7_SHARED
#define L7_CONFIG(type, name, init) const volatile type name = init
#else
#define L7_SHARED extern
#define L7_CONFIG(type, name, init) extern const volatile type name
#endif

/*
 * bpf_loop steps per call: one per iovec loaded plus one per copy into the
 * chunk buffer. Enough for HDRTAP_IOV_MAX iovecs and a call_capture of up to
 * HDRTAP_CALL_CAPTURE_MAX bytes; a call that needs more is flagged CLIPPED.
 */
#define COPY_STEPS (2 * HDRTAP_IOV_MAX + 2 * (HDRTAP_CALL_CAPTURE_MAX / HDRTAP_CHUNK_MAX) + 8)

/* Set by userspace before load (defined in syscalls.bpf.c). */
L7_CONFIG(__u32, self_tgid, 0);        /* hdrtap itself: never traced */
L7_CONFIG(__u8, filter_pid_on, 0);     /* only tgids in filter_pids */
L7_CONFIG(__u8, filter_comm_on, 0);    /* only comms in filter_comms */
L7_CONFIG(__u8, filter_port_on, 0);    /* only conns with a port in filter_ports */
L7_CONFIG(__u8, filter_cgroup_on, 0);  /* not conns made in a cgroup of filter_cgroups_out */
L7_CONFIG(__u32, call_capture, HDRTAP_DEFAULT_CALL_CAPTURE); /* bytes per call */
L7_CONFIG(__u64, wakeup_bytes, 1 << 20); /* wake the reader past this much data */
L7_CONFIG(__u64, wakeup_big_bytes, 1 << 16); /* the same, for events of RB_BIG_EVENT bytes */
L7_CONFIG(__u8, tls_on, 0);            /* TLS uprobes in use (openssl.bpf.c) */
L7_CONFIG(__u32, nr_cpus, 1);          /* possible CPUs: scratch slots per user */
L7_CONFIG(__u64, body_skip_min, HDRTAP_SKIP_BODY_MIN); /* body_scan; 0: off */

/* What a connection's bytes are (kernel-internal). */
enum conn_state {
	CONN_SOCKET = 0,        /* the socket's bytes are the stream (conn.sock) */
	CONN_IGNORED,           /* not TCP, or filtered out */
	CONN_TLS,               /* a TLS library runs over it: its plaintext is the
				 * stream (conn.tls, from the uprobes in
				 * openssl.bpf.c); the ciphertext is never copied */
};

/* How far a stream's HTTP gate is (kernel-internal). */
enum gate {
	GATE_SNIFF = 0,         /* seen from its start: deciding on the first bytes */
	GATE_SNIFF_MIDSTREAM,   /* found mid-stream: each call must look HTTP */
	GATE_HTTP,              /* HTTP/1.x or HTTP/2: copy everything */
	GATE_NOT_HTTP,          /* the first bytes were something else: copy nothing */
};

struct conn_key {
	__u32 tgid;
	__s32 fd;
};

/*
 * One byte stream, a connection of its own for userspace: a socket's bytes,
 * or the plaintext a TLS library reads and writes over it.
 */
struct stream {
	__u64 conn_id;
	__u64 pos[2];           /* next stream offset, per direction */
	__u8 gate;              /* enum gate */
	__u8 sniff_len;         /* bytes in sniff_word (< HDRTAP_SNIFF_LEN) */
	__u8 emitted;           /* a data event went out: send CLOSE on close */
	__u8 _pad;
	__u32 sniff_word;       /* first bytes while sniffing, little-endian */
};

struct conn {
	struct hdrtap_tuple tuple;
	__u64 sk;               /* the struct sock (TCP): read for sequence numbers */
	__u64 cookie;           /* its socket cookie, once it has one */
	__u8 state;             /* enum conn_state */
	__u8 role;              /* enum hdrtap_role */
	struct stream sock;     /* CONN_SOCKET */
	struct stream tls;      /* CONN_TLS */
};

/* How the payload of an in-flight call is described. */
enum io_kind {
	IO_BUF = 1,      /* (ptr, len) */
	IO_IOV = 2,      /* struct iovec *ptr, count */
	IO_MSG = 3,      /* struct user_msghdr *ptr */
	IO_MMSG = 4,     /* struct mmsghdr *ptr, vlen */
	IO_NOPAYLOAD = 5,/* sendfile: bytes not in user memory */
};

/* State of one call's copy, walked by bpf_loop one step at a time.
 * It lives in the scratch map value, not on the stack: the verifier then sees
 * its fields as plain scalars and the bpf_loop callback converges at once. */
struct copy_ctx {
	__u64 base_pos;  /* stream offset of the call's first byte */
	__u64 total;     /* bytes the call moved */
	__u64 done;      /* bytes already covered by emitted events */
	__u64 budget;    /* bytes still allowed to be copied */
	__u64 iov;       /* user pointer to the iovec array (IO_IOV/IO_MSG) */
	__u64 seg_ptr;   /* current contiguous user segment */
	__u64 seg_len;
	__u64 seg_off;
	__u32 iov_cnt;
	__u32 iov_idx;
	__u32 filled;    /* bytes in scratch data[] not yet emitted */
	__u16 flags;     /* flags for every event of this call */
	__u16 stop;      /* nonzero: copy nothing; the flag to set instead */
	__u64 head_ptr;  /* the call's first contiguous bytes (body_scan) */
	__u64 head_len;
	__u32 seq;       /* HDRTAP_DF_SEQ: TCP sequence number of the call's first byte */
	__u32 _pad;
};

struct scratch {
	struct copy_ctx cc;
	__u64 busy;      /* TLS slots: a uprobe program is using this slot */
	__u32 events;    /* events sent from this slot (see rb_flags_every) */
	__u32 _pad;
	struct hdrtap_data_event ev;
	__u8 data[2 * HDRTAP_CHUNK_MAX]; /* ev.data; doubled so bounds are provable */
};

L7_SHARED struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20); /* resized by userspace */
} events SEC(".maps");

L7_SHARED struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct conn_key);
	__type(value, struct conn);
} conns SEC(".maps");

/*
 * One event-assembly buffer per CPU. A plain array indexed by CPU, because
 * per-CPU map values are limited to 32 KiB. Tracepoint programs run with
 * preemption disabled and do not nest (bpf_prog_active), so a CPU's slot has
 * one user at a time. Uprobe programs (openssl.bpf.c) run preemptible (only
 * migration is disabled), so they use slots nr_cpus + cpu of their own,
 * guarded by a busy flag. max_entries is set to 2 * possible CPUs.
 */
L7_SHARED struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

static __always_inline struct scratch *scratch_at(__u32 slot)
{
	return bpf_map_lookup_elem(&scratch, &slot);
}

/* Where long bodies end, written by userspace (see struct hdrtap_skip_key). */
L7_SHARED struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct hdrtap_skip_key);
	__type(value, __u64);
} skips SEC(".maps");

L7_SHARED struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HDRTAP_CTR_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

L7_SHARED struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} filter_pids SEC(".maps");

L7_SHARED struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct hdrtap_comm_key);
	__type(value, __u8);
} filter_comms SEC(".maps");

L7_SHARED struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, __u8);
} filter_ports SEC(".maps");

/*
 * --container/--unit: the cgroup ids userspace found not to match. A
 * cgroup it has not classified yet (one made since its last scan) is not
 * here, so its connections are tracked and userspace's own filter decides:
 * a container started after hdrtap loses nothing.
 */
L7_SHARED struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u8);
} filter_cgroups_out SEC(".maps");

L7_SHARED __u64 next_conn_id;

#include "../lib/maps.bpf.h" /* ctr_add, rb_flags: after counters and events */

/*
 * rb_flags() for the data path: the fill level is only looked at every
 * RB_CHECK_EVERY-th event of a scratch slot (the query showed in profiles);
 * the reader's own timer bounds the delay, and a quarter of the ring is far
 * more than RB_CHECK_EVERY maximal events.
 */
#define RB_CHECK_EVERY 32
static __always_inline __u64 rb_flags_every(__u32 *count)
{
	if (++*count % RB_CHECK_EVERY)
		return BPF_RB_NO_WAKEUP;
	return rb_flags();
}

/*
 * Large events are body chunks of long transfers. The reader is woken at
 * wakeup_big_bytes for them (a sixty-fourth of the ring), so that it parses
 * the header block early and can tell the kernel to skip the rest of the
 * body (map skips): a 4 MiB body otherwise sat in the ring before anyone
 * looked at it.
 */
#define RB_BIG_EVENT (16 * 1024)

static __always_inline int tracing_wanted(__u32 tgid)
{
	if (tgid == self_tgid)
		return 0;
	if (filter_pid_on && !bpf_map_lookup_elem(&filter_pids, &tgid))
		return 0;
	return 1;
}

/*
 * Create (or replace) the connection entry for (tgid, fd). Returns NULL when
 * fd is not a socket at all (nothing is cached: fds of files are reused
 * without a trace we see). Sockets that are not TCP, or that the filters
 * reject, are cached as CONN_IGNORED so later calls cost one lookup.
 */
static __always_inline struct conn *conn_create(__u32 tgid, int fd, __u8 role, __u8 gate)
{
	struct conn_key key = {.tgid = tgid, .fd = fd};
	struct conn c = {};
	struct sock *sk = NULL;
	enum hdrtap_fd_kind kind = hdrtap_fd_sock(fd, &sk);

	if (kind == HDRTAP_FD_OTHER)
		return NULL;
	c.role = role;
	c.sock.gate = gate;
	if (kind == HDRTAP_FD_TCP) {
		hdrtap_sock_tuple(sk, &c.tuple);
		c.sk = (__u64)sk;
		/* Given at connect() or when established (sock_cookie below). */
		c.cookie = BPF_CORE_READ(sk, __sk_common.skc_cookie.counter);
		if (filter_port_on && !bpf_map_lookup_elem(&filter_ports, &c.tuple.lport) &&
		    !bpf_map_lookup_elem(&filter_ports, &c.tuple.rport))
			c.state = CONN_IGNORED;
		if (filter_cgroup_on && c.state != CONN_IGNORED) {
			__u64 cg = bpf_get_current_cgroup_id();

			if (bpf_map_lookup_elem(&filter_cgroups_out, &cg)) {
				c.state = CONN_IGNORED;
				ctr_add(HDRTAP_CTR_CONNS_CGROUP_OUT, 1);
			}
		}
		if (filter_comm_on) {
			struct hdrtap_comm_key ck = {};

			bpf_get_current_comm(ck.comm, sizeof(ck.comm));
			if (!bpf_map_lookup_elem(&filter_comms, &ck))
				c.state = CONN_IGNORED;
		}
		if (c.state != CONN_IGNORED) {
			c.sock.conn_id = __sync_fetch_and_add(&next_conn_id, 1) + 1;
			ctr_add(HDRTAP_CTR_CONNS, 1);
		}
	} else {
		c.state = CONN_IGNORED;
	}
	if (bpf_map_update_elem(&conns, &key, &c, BPF_ANY)) {
		ctr_add(HDRTAP_CTR_CONN_MAP_FULL, 1);
		return NULL;
	}
	return bpf_map_lookup_elem(&conns, &key);
}

/* The entry for (tgid, fd) in any state, created if new; NULL if not a socket. */
static __always_inline struct conn *conn_find(__u32 tgid, int fd)
{
	struct conn_key key = {.tgid = tgid, .fd = fd};
	struct conn *c = bpf_map_lookup_elem(&conns, &key);

	if (!c)
		c = conn_create(tgid, fd, HDRTAP_ROLE_UNKNOWN, GATE_SNIFF_MIDSTREAM);
	return c;
}

/* The call's bytes on this stream are the event's: claim their place. */
static __always_inline __u64 stream_claim(struct stream *st, __u8 dir, __u64 len)
{
	st->emitted = 1;
	return __sync_fetch_and_add(&st->pos[dir & 1], len);
}

/* The header of a data event for a call on stream st of connection c. */
static __always_inline void event_fill(struct scratch *s, const struct conn *c,
				       const struct stream *st, __u64 id, int fd, __u64 len,
				       __u8 dir, __u8 source, __u8 tls_lib)
{
	s->ev.hdr.kind = HDRTAP_EV_DATA;
	s->ev.hdr.tgid = id >> 32;
	s->ev.hdr.tid = (__u32)id;
	s->ev.hdr.fd = fd;
	s->ev.hdr.ts_ns = bpf_ktime_get_ns();
	s->ev.hdr.conn_id = st->conn_id;
	s->ev.call_len = len;
	s->ev.cgroup_id = bpf_get_current_cgroup_id();
	s->ev.dir = dir;
	s->ev.role = c->role;
	s->ev.source = source;
	s->ev.tls_lib = tls_lib;
	bpf_get_current_comm(s->ev.comm, sizeof(s->ev.comm));
	__builtin_memcpy(&s->ev.tuple, &c->tuple, sizeof(c->tuple));
	s->ev.sock_cookie = c->cookie;
}


static __always_inline void conn_forget(__u32 tgid, int fd)
{
	struct conn_key key = {.tgid = tgid, .fd = fd};

	bpf_map_delete_elem(&conns, &key);
}

/* ---- exit side: copy the payload ---------------------------------------- */


/* Emit the filled bytes as one event, standing for extra more stream bytes. */
static __always_inline void flush(struct copy_ctx *cc, struct scratch *s, __u64 extra,
				  __u16 flags)
{
	__u32 cap = cc->filled & (2 * HDRTAP_CHUNK_MAX - 1);
	__u64 orig = cap + extra;

	if (orig == 0)
		return;
	s->ev.pos = cc->base_pos + cc->done;
	s->ev.tcp_seq = cc->seq + (__u32)cc->done;
	s->ev.orig_len = orig;
	s->ev.cap_len = cap;
	s->ev.flags = cc->flags | flags;
	if (bpf_ringbuf_output(&events, &s->ev, sizeof(s->ev) + cap,
			       cap >= RB_BIG_EVENT ? rb_flags_past(wakeup_big_bytes)
					   : rb_flags_every(&s->events))) {
		ctr_add(HDRTAP_CTR_RINGBUF_DROPS, 1);
		ctr_add(HDRTAP_CTR_RINGBUF_DROP_BYTES, orig);
	} else {
		ctr_add(HDRTAP_CTR_EVENTS, 1);
		ctr_add(HDRTAP_CTR_BYTES_CAPTURED, cap);
	}
	cc->done += orig;
	cc->filled = 0;
}

/* arg: the __u32 scratch slot in use (see scratch). */
static long copy_step(__u64 index, void *arg)
{
	struct scratch *s = scratch_at(*(__u32 *)arg);
	struct copy_ctx *cc;
	__u64 left, n, space;

	if (!s)
		return 1;
	cc = &s->cc;
	left = cc->total - cc->done - cc->filled;
	if (left == 0) {
		flush(cc, s, 0, 0);
		return 1;
	}
	if (cc->seg_off >= cc->seg_len) {
		/* Next iovec. */
		struct iovec v = {};

		if (cc->iov_idx >= cc->iov_cnt || cc->iov_idx >= HDRTAP_IOV_MAX) {
			flush(cc, s, left, HDRTAP_DF_IOV_TRUNCATED);
			return 1;
		}
		if (bpf_probe_read_user(&v, sizeof(v), (void *)(cc->iov + cc->iov_idx * sizeof(v)))) {
			ctr_add(HDRTAP_CTR_READ_FAILS, 1);
			flush(cc, s, left, HDRTAP_DF_READ_FAILED);
			return 1;
		}
		cc->iov_idx++;
		cc->seg_ptr = (__u64)v.iov_base;
		cc->seg_len = v.iov_len < left ? v.iov_len : left;
		cc->seg_off = 0;
		return 0;
	}
	if (cc->budget == 0) {
		ctr_add(HDRTAP_CTR_CLIPPED_BYTES, left);
		flush(cc, s, left, HDRTAP_DF_CLIPPED);
		return 1;
	}
	n = cc->seg_len - cc->seg_off;
	space = HDRTAP_CHUNK_MAX - cc->filled;
	if (n > space)
		n = space;
	if (n > cc->budget)
		n = cc->budget;
	/* Constant clamp last, so the verifier sees offset + n <= 2 * CHUNK. */
	barrier_var(n);
	if (n > HDRTAP_CHUNK_MAX)
		n = HDRTAP_CHUNK_MAX;
	if (bpf_probe_read_user(s->data + (cc->filled & (HDRTAP_CHUNK_MAX - 1)), n,
				(void *)(cc->seg_ptr + cc->seg_off))) {
		ctr_add(HDRTAP_CTR_READ_FAILS, 1);
		flush(cc, s, left, HDRTAP_DF_READ_FAILED);
		return 1;
	}
	cc->filled += n;
	cc->seg_off += n;
	cc->budget -= n;
	if (cc->filled >= HDRTAP_CHUNK_MAX)
		flush(cc, s, 0, 0);
	return 0;
}

/*
 * The second fast path: a call of 1 to FEW_IOVS iovecs whose bytes fit in
 * one event (nginx's writev of a header block and a small body), copied
 * unrolled instead of by bpf_loop, whose steps cost a callback and a map
 * lookup each. Returns 0, having emitted nothing, for any other iovec count
 * or when the iovec array cannot be read: bpf_loop's path then copies the
 * call, or counts the failure as usual.
 */
#define FEW_IOVS 4

/*
 * The body of a small response need not be copied either, when the call
 * shows where it starts: a writev or sendmsg of two iovecs, the first a
 * whole response header block (nginx's writev of a page from memory). Its
 * bytes are then announced, not copied (HDRTAP_DF_SKIPPED after the block):
 * userspace reads the body's length from the block and never its bytes.
 * Only where the block announces a body (a status of 200 or more, not 204
 * or 304) and the second iovec starts like none of the framing userspace
 * must read: another response (a HEAD's answer, then the next one) or a
 * chunk-size line (hex digits, then CR, LF, ';' or white space, or eight
 * hex digits). A body of fewer than BODY_IOV_MIN bytes is copied: the
 * check would cost what the copy saves. head is the block's length, already
 * copied to s->data; body the second iovec; left the call's bytes after
 * the block. Returns 1 if the bytes after the block may go uncopied.
 */
#define BODY_IOV_MIN 64

/*
 * d (at least 12 bytes) starts a response whose status announces a body:
 * "HTTP/1.x NNN" with NNN from 200 to 599, not 204 or 304. Shared by the
 * two places the kernel frames a response itself (body_scan, and
 * body_iov_skippable below).
 */
static __always_inline int status_has_body(const __u8 *d)
{
	__u32 status;

	if (__builtin_memcmp(d, "HTTP/1.", 7) || (d[7] != '0' && d[7] != '1') || d[8] != ' ' ||
	    d[9] < '2' || d[9] > '5' || d[10] < '0' || d[10] > '9' || d[11] < '0' || d[11] > '9')
		return 0;
	status = (d[9] - '0') * 100 + (d[10] - '0') * 10 + (d[11] - '0');
	return status != 204 && status != 304;
}

static __always_inline int is_hex(__u8 c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static __always_inline int body_iov_skippable(struct scratch *s, __u64 head,
					      const struct iovec *body, __u64 left)
{
	__u8 b[8] = {};
	__u32 end, i;

	if (head < 16 || head > HDRTAP_CHUNK_MAX || left < BODY_IOV_MIN || !status_has_body(s->data))
		return 0;
	end = (head - 4) & (HDRTAP_CHUNK_MAX - 1);
	if (s->data[end] != '\r' || s->data[end + 1] != '\n' || s->data[end + 2] != '\r' ||
	    s->data[end + 3] != '\n')
		return 0;
	if (body->iov_len < sizeof(b) || bpf_probe_read_user(b, sizeof(b), body->iov_base))
		return 0;
	if (!__builtin_memcmp(b, "HTTP/", 5))
		return 0;
	if (!is_hex(b[0]))
		return 1;
	for (i = 1; i < sizeof(b); i++) {
		if (!is_hex(b[i]))
			return !(b[i] == '\r' || b[i] == '\n' || b[i] == ';' || b[i] == ' ' ||
				 b[i] == '\t');
	}
	return 0; /* eight hex digits: a chunk size with leading zeros */
}

static __always_inline int copy_few_iovs(struct scratch *s)
{
	struct iovec v[FEW_IOVS];
	__u64 total = s->cc.total, off = 0, len, at;
	__u32 cnt = s->cc.iov_cnt, i;
	__u64 size;

	if (cnt == 0 || cnt > FEW_IOVS)
		return 0;
	size = cnt * sizeof(v[0]);
	barrier_var(size); /* the verifier must see the bound on the register passed */
	if (size > sizeof(v))
		return 0;
	if (bpf_probe_read_user(v, size, (void *)s->cc.iov))
		return 0;
	for (i = 0; i < FEW_IOVS; i++) {
		/* off < HDRTAP_CHUNK_MAX follows from off < total, but older
		 * verifiers (6.1) learn nothing from comparing two registers:
		 * without the constant bound they walk a third iteration with
		 * off past the buffer and reject the length as maybe negative
		 * ("R2 min value is negative"). */
		if (i >= cnt || off >= total || off >= HDRTAP_CHUNK_MAX)
			break;
		len = v[i].iov_len;
		if (len > total - off)
			len = total - off;
		barrier_var(len);
		if (len > HDRTAP_CHUNK_MAX)
			len = HDRTAP_CHUNK_MAX;
		/* The mask must reach the verifier: the compiler, knowing
		 * off < HDRTAP_CHUNK_MAX, would drop it, and 6.1's verifier can
		 * lose that bound when off is spilled and reloaded (it did in
		 * gotls.bpf.c's copy of this loop). */
		at = off;
		barrier_var(at);
		at &= HDRTAP_CHUNK_MAX - 1;
		if (bpf_probe_read_user(s->data + at, len, v[i].iov_base)) {
			ctr_add(HDRTAP_CTR_READ_FAILS, 1);
			s->cc.filled = off;
			flush(&s->cc, s, total - off, HDRTAP_DF_READ_FAILED);
			return 1;
		}
		off += len;
		if (i == 0 && cnt == 2 && off < total && body_iov_skippable(s, off, &v[1], total - off)) {
			ctr_add(HDRTAP_CTR_BODY_SKIPPED_BYTES, total - off);
			s->cc.filled = off;
			flush(&s->cc, s, total - off, HDRTAP_DF_SKIPPED);
			return 1;
		}
	}
	s->cc.filled = off;
	/* Fewer bytes in the iovecs than the call moved: they changed under us. */
	flush(&s->cc, s, total - off, off < total ? HDRTAP_DF_IOV_TRUNCATED : 0);
	return 1;
}

/* A thread's SSL call in flight, from its uprobe to its uretprobe. */
struct ssl_call {
	__u64 ssl;       /* SSL * */
	__u64 buf;       /* the plaintext buffer */
	__u64 out_len;   /* _ex variants: size_t *written / *readbytes; else 0 */
	__u64 sp;        /* stack pointer at entry */
	__s32 fd;        /* TCP socket a syscall inside the call used, or -1 */
	__u16 lib;       /* attach cookie: the library id */
	__u8 active;     /* 0: empty slot */
	__u8 dir;        /* enum hdrtap_direction */
	__u8 source;     /* enum hdrtap_source */
	__u8 _pad[3];
	/* Outside calls: the TCP socket this thread last read from, and when
	 * (0: none), for memory-BIO users (see tls_note_fd). */
	__s32 bio_fd;
	__u64 bio_ns;
};

L7_SHARED struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct ssl_call);
} ssl_calls SEC(".maps");

static __always_inline struct ssl_call *ssl_call_slot(__u64 flags)
{
	return bpf_task_storage_get(&ssl_calls, bpf_get_current_task_btf(), 0, flags);
}

/*
 * Make c a TLS connection (its plaintext comes from here, its ciphertext is
 * never copied). Returns 0 if c is filtered out or not TCP.
 */
static __always_inline int tls_mark(struct conn *c)
{
	if (c->state == CONN_IGNORED || c->tuple.family == 0)
		return 0;
	if (c->state != CONN_TLS) {
		c->state = CONN_TLS;
		c->tls.conn_id = __sync_fetch_and_add(&next_conn_id, 1) + 1;
		/* Its plaintext is gated like a socket's: from its start if
		 * the connection was (accept/connect), else mid-stream. */
		c->tls.gate = c->role == HDRTAP_ROLE_UNKNOWN ? GATE_SNIFF_MIDSTREAM : GATE_SNIFF;
		ctr_add(HDRTAP_CTR_TLS_CONNS, 1);
	}
	return 1;
}

/*
 * Called by exit_io for every read/write-family syscall that moved bytes.
 * Inside an SSL call, the socket it used names the call's connection.
 * Outside one, on a thread that makes SSL calls, a read is remembered: a
 * program that runs OpenSSL on memory BIOs (Node.js) reads the ciphertext
 * from the socket itself and hands it to SSL_read right after, on the same
 * thread, so no syscall ever happens inside the SSL call (ssl_exit).
 */
static __always_inline void tls_note_fd(struct conn *c, int fd, __u8 dir)
{
	struct ssl_call *sc;

	if (!c || c->tuple.family == 0) /* not a TCP socket */
		return;
	sc = ssl_call_slot(0);
	if (!sc)
		return;
	if (!sc->active) {
		/* Only ciphertext-looking sockets: TLS already, or bytes that
		 * were not HTTP (a handshake); never a plaintext HTTP socket. */
		if (dir == HDRTAP_DIR_INGRESS &&
		    (c->state == CONN_TLS || c->sock.gate == GATE_NOT_HTTP)) {
			sc->bio_fd = fd;
			sc->bio_ns = bpf_ktime_get_ns();
		}
		return;
	}
	sc->fd = fd;
	tls_mark(c);
}

/* A call of this many bytes or more may be a response to frame (body_scan). */
#define BODY_SCAN_MIN_CALL 4096

/* Global functions, defined in syscalls.bpf.c. */
int body_scan(__u32 slot);
int h2_midstream(__u64 ptr, __u64 len);
int sniff(struct stream *st, __u64 first_ptr, __u64 first_len);

/*
 * Copy the call described by s->cc (and announced by s->ev) into events:
 * shared by the syscall exits and the TLS uprobes. s must be scratch slot
 * `slot`. `iovs` (a constant): the call may hold iovecs (readv, sendmsg...);
 * a TLS library call never does, and without the iovec path its programs
 * are smaller and verify on 6.1 whatever registers the compiler picked.
 */
static __always_inline void copy_run(struct scratch *s, __u32 slot, const bool iovs)
{
	__u64 n;

	if (s->cc.stop) {
		flush(&s->cc, s, s->cc.total, s->cc.stop);
		return;
	}
	/*
	 * Inside a long body userspace does not need: announce the bytes, copy
	 * none. Small calls are copied without asking (the lookup would cost
	 * about what the copy does).
	 */
	if (s->cc.total >= HDRTAP_SKIP_MIN_CALL) {
		struct hdrtap_skip_key k = {.conn_id = s->ev.hdr.conn_id, .dir = s->ev.dir};
		__u64 *until = bpf_map_lookup_elem(&skips, &k);

		if (until && s->cc.base_pos + s->cc.total <= *until) {
			ctr_add(HDRTAP_CTR_BODY_SKIPPED_BYTES, s->cc.total);
			flush(&s->cc, s, s->cc.total, HDRTAP_DF_SKIPPED);
			return;
		}
		if (body_skip_min && s->cc.total >= BODY_SCAN_MIN_CALL &&
		    (!until || *until <= s->cc.base_pos)) {
			body_scan(slot);
			s = scratch_at(slot);
			if (!s)
				return;
		}
	}
	/*
	 * Fast path, the common case: one contiguous buffer that fits in one
	 * event, copied without bpf_loop and its per-step map lookups.
	 */
	n = s->cc.total;
	if (!s->cc.iov_cnt && s->cc.seg_len == n && n <= HDRTAP_CHUNK_MAX && n <= s->cc.budget) {
		barrier_var(n);
		if (n > HDRTAP_CHUNK_MAX)
			n = HDRTAP_CHUNK_MAX;
		if (bpf_probe_read_user(s->data, n, (void *)s->cc.seg_ptr)) {
			ctr_add(HDRTAP_CTR_READ_FAILS, 1);
			flush(&s->cc, s, s->cc.total, HDRTAP_DF_READ_FAILED);
			return;
		}
		s->cc.filled = n;
		flush(&s->cc, s, 0, 0);
		return;
	}
	if (iovs && n <= HDRTAP_CHUNK_MAX && n <= s->cc.budget && copy_few_iovs(s))
		return;
	bpf_loop(COPY_STEPS, copy_step, &slot, 0);
	/* bpf_loop ran out of steps: account what is left. */
	s = scratch_at(slot);
	if (s && s->cc.done + s->cc.filled < s->cc.total)
		flush(&s->cc, s, s->cc.total - s->cc.done - s->cc.filled, HDRTAP_DF_CLIPPED);
}

/*
 * `bytes` of TLS plaintext at user address `buf`, moved by a TLS library
 * call on socket `fd` of the current process: copied as a stream of its own
 * (conn.tls: its own conn_id and offsets), flagged HDRTAP_DF_TLS. Shared by
 * every TLS hook (OpenSSL, GnuTLS, Go's crypto/tls). fd < 0: the plaintext
 * cannot be placed on a connection, counted (tls_no_fd).
 */
static __always_inline int tls_emit(__u64 id, int fd, __u64 buf, __u64 bytes, __u8 dir,
				    __u8 source, __u16 lib)
{
	struct copy_ctx cc = {};
	struct scratch *s;
	struct conn *c;
	__u32 slot;

	if (fd < 0) {
		ctr_add(HDRTAP_CTR_TLS_NO_FD, 1);
		return 0;
	}
	c = conn_find(id >> 32, fd);
	if (!c || !tls_mark(c))
		return 0;
	if (!sniff(&c->tls, buf, bytes))
		return 0;

	slot = nr_cpus + bpf_get_smp_processor_id();
	s = scratch_at(slot);
	if (!s)
		return 0;
	cc.base_pos = stream_claim(&c->tls, dir, bytes);
	/* Preempted by another uprobe program on this CPU: its slot is ours to
	 * skip. Userspace sees the bytes as a gap; counted here. */
	if (__sync_lock_test_and_set(&s->busy, 1)) {
		ctr_add(HDRTAP_CTR_TLS_BUSY, 1);
		return 0;
	}
	cc.total = bytes;
	cc.seg_ptr = buf;
	cc.seg_len = bytes;
	cc.head_ptr = buf;
	cc.head_len = bytes;
	cc.budget = call_capture;
	cc.flags = HDRTAP_DF_TLS;
	if (c->role == HDRTAP_ROLE_UNKNOWN)
		cc.flags |= HDRTAP_DF_MIDSTREAM;

	event_fill(s, c, &c->tls, id, fd, bytes, dir, source, lib);
	s->cc = cc;
	copy_run(s, slot, false);
	s = scratch_at(slot);
	if (s)
		s->busy = 0; /* the slot's one writer: a plain store releases it */
	return 0;
}

#endif /* HDRTAP_CAPTURE_BPF_H */
