// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * syscalls.bpf.c — HTTP/1.x payload capture from syscall tracepoints.
 *
 * For every read/write-family syscall on a TCP socket, copy the bytes the
 * call actually moved (its return value, iovec by iovec) into the ring
 * buffer, tagged with the connection, direction and stream position, so that
 * userspace can reassemble each direction of each connection exactly and
 * see every gap.
 *
 * Flow per call:   sys_exit_X: ret > 0 -> args from the saved registers ->
 *                  tracked connection? -> sniff (until decided) -> copy
 * No program runs at a data call's entry (see call_regs, lib/syscall.bpf.h).
 * Connections are keyed by (tgid, fd). accept/connect create them with a
 * known role; a socket first seen on a data call (e.g. opened before hdrtap
 * started) is created then, with its tuple read from struct sock.
 */
#define HDRTAP_L7_DEFINE /* the shared maps and settings live in this unit */
#include "capture.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define EINPROGRESS 115

/* ---- response bodies framed in the kernel -------------------------------- */

/*
 * Userspace asks for a long body to be skipped once it has parsed the header
 * block (map skips). On loopback a server can write megabytes before that
 * request arrives, and they fill the ring. So the kernel frames the plain
 * case itself, on a call of BODY_SCAN_MIN_CALL bytes or more whose first
 * bytes are a response's status line:
 *   - a status with a body (not 1xx, 204, 304);
 *   - the header block ends within the first contiguous bytes, at most
 *     BODY_SCAN_MAX of them;
 *   - exactly one Content-Length, no Transfer-Encoding (which would win);
 *   - body bytes follow the block in the same call, and they do not start
 *     another response: the answer to a HEAD request announces a length
 *     but has no body.
 * Then, if the body has body_skip_min bytes or more still to come, its end
 * goes into skips exactly as userspace would have put it (userspace, when
 * it parses the block, writes only a value larger than the stored one: it
 * may lag behind a later body framed here). Anything else is left to
 * userspace. A wrong guess (a HEAD's answer and the next response written
 * in one call, but from two buffers) makes the parser meet skipped bytes
 * where it expects a header block: a gap, counted, and a resync.
 */
#define BODY_SCAN_MAX 2048

struct body_scan {
	__u32 slot;
	__u32 len;       /* bytes of the call in data[] */
	__u32 line;      /* offset of the current line's first byte */
	__u32 head_end;  /* offset just past the blank line; 0: not found yet */
	__u32 value_at;  /* VALUE: offset of the Content-Length value */
	__u32 digits;
	__u64 value;     /* digits of the Content-Length value so far */
	__u64 clen;      /* the Content-Length value */
	__u8 mode;       /* enum scan_mode */
	__u8 n_clen;     /* Content-Length headers seen */
	__u8 bad;        /* Transfer-Encoding, or a value that is not a number */
};

enum scan_mode {
	SCAN_LINE = 0,   /* in a line that is not Content-Length's */
	SCAN_VALUE,      /* in a Content-Length value: spaces, then digits */
	SCAN_VALUE_END,  /* after its digits: only spaces may follow */
};

/* The 8 bytes at data[off], ASCII letters lower-cased (OR 0x20: exact for
 * letters; '-' and ':' already have the bit). */
static __always_inline __u64 lower8(struct scratch *s, __u32 off)
{
	__u64 w;

	__builtin_memcpy(&w, s->data + (off & (HDRTAP_CHUNK_MAX - 1)), 8);
	return w | 0x2020202020202020ULL;
}

/* Little-endian words of header names, lower case. */
#define W_CONTENT_ 0x2d746e65746e6f63ULL  /* "content-" */
#define W_LENGTH_  0x003a6874676e656cULL  /* "length:" (7 bytes) */
#define W_TRANSFER 0x726566736e617274ULL  /* "transfer" */
#define W__ENCODIN 0x6e69646f636e652dULL  /* "-encodin" */
#define M_7 0x00ffffffffffffffULL

/* A line starts at data[at] (after the status line): Content-Length's value
 * follows, or Transfer-Encoding makes the block unusable here. */
static __always_inline void scan_name(struct body_scan *b, struct scratch *s, __u32 at)
{
	__u64 w;

	if (at + 24 > b->len)
		return; /* too close to the end to hold either name and a value */
	w = lower8(s, at);
	if (w == W_CONTENT_ && (lower8(s, at + 8) & M_7) == W_LENGTH_) {
		b->mode = SCAN_VALUE;
		b->value_at = at + 15;
		b->value = 0;
		b->digits = 0;
	} else if (w == W_TRANSFER && lower8(s, at + 8) == W__ENCODIN &&
		   (lower8(s, at + 16) & 0xffff) == 0x3a67 /* "g:" */) {
		b->bad = 1;
	}
}

/* One byte of the header block, data[i]. Returns 1 to stop. */
static long body_scan_byte(__u64 i, void *ctx)
{
	struct body_scan *b = ctx;
	struct scratch *s = scratch_at(b->slot);
	__u8 c;

	if (!s || i >= b->len || b->bad)
		return 1;
	c = s->data[i & (HDRTAP_CHUNK_MAX - 1)];
	if (b->mode != SCAN_LINE && i >= b->value_at && c != '\r' && c != '\n') {
		if (c == ' ' || c == '\t') {
			if (b->digits)
				b->mode = SCAN_VALUE_END;
		} else if (c >= '0' && c <= '9' && b->mode == SCAN_VALUE && b->digits < 18) {
			b->value = b->value * 10 + (c - '0');
			b->digits++;
		} else {
			b->bad = 1; /* a list ("5, 5"), "1 2", not a number, too long */
			return 1;
		}
	}
	if (c != '\n')
		return 0;
	if (b->mode != SCAN_LINE) {
		if (!b->digits) {
			b->bad = 1;
			return 1;
		}
		b->clen = b->value;
		b->n_clen++;
		b->mode = SCAN_LINE;
	}
	/* The line [b->line, i] ended. Blank: the header block ends here. */
	if (b->line > 0 &&
	    (i == b->line || (i == b->line + 1 && s->data[b->line & (HDRTAP_CHUNK_MAX - 1)] == '\r'))) {
		b->head_end = i + 1;
		return 1;
	}
	b->line = i + 1;
	scan_name(b, s, i + 1);
	return b->bad;
}

/*
 * Frame a response in the call in scratch slot `slot` (s->cc, s->ev set;
 * data[] is free: the copy has not started). Uses data[] for the call's
 * first bytes.
 */
__noinline int body_scan(__u32 slot)
{
	struct scratch *s = scratch_at(slot);
	struct body_scan b = {.slot = slot};
	struct hdrtap_skip_key k = {};
	__u64 n, in_call, until;

	if (!s || !s->cc.head_ptr)
		return 0;
	n = s->cc.head_len;
	if (n > BODY_SCAN_MAX)
		n = BODY_SCAN_MAX;
	if (n < 16)
		return 0;
	barrier_var(n);
	if (n > BODY_SCAN_MAX)
		return 0;
	/* "HTTP/1.x NNN" first: most calls this size are body, not a start. */
	if (bpf_probe_read_user(s->data, 16, (void *)s->cc.head_ptr))
		return 0; /* the copy will count the failure */
	if (!status_has_body(s->data))
		return 0;
	if (bpf_probe_read_user(s->data, n, (void *)s->cc.head_ptr))
		return 0;
	b.len = n;
	bpf_loop(BODY_SCAN_MAX, body_scan_byte, &b, 0);
	if (b.bad || b.n_clen != 1 || !b.head_end)
		return 0;
	s = scratch_at(slot);
	if (!s)
		return 0;
	if (s->cc.total <= b.head_end)
		return 0;
	in_call = s->cc.total - b.head_end; /* body bytes in this call */
	if (b.clen < in_call || b.clen - in_call < body_skip_min)
		return 0;
	/* What follows the block is another response (a HEAD's answer, then
	 * the next one, pipelined): no body here. */
	if (b.head_end + 5 <= n &&
	    !__builtin_memcmp(s->data + (b.head_end & (HDRTAP_CHUNK_MAX - 1)), "HTTP/", 5))
		return 0;
	until = s->cc.base_pos + b.head_end + b.clen;
	k.conn_id = s->ev.hdr.conn_id;
	k.dir = s->ev.dir;
	bpf_map_update_elem(&skips, &k, &until, BPF_ANY);
	ctr_add(HDRTAP_CTR_BODIES_FRAMED, 1);
	return 0;
}

/*
 * A call on a connection found mid-stream that starts with a plausible
 * HTTP/2 frame header (bpf/lib/http_sniff.bpf.h).
 */
__noinline int h2_midstream(__u64 ptr, __u64 len)
{
	unsigned char h[HDRTAP_H2_FRAME_HDR] = {};

	if (len < HDRTAP_H2_FRAME_HDR || bpf_probe_read_user(h, sizeof(h), (void *)ptr))
		return 0;
	return hdrtap_h2_frame_plausible(h);
}

/*
 * The gate of a stream (a socket's, or TLS plaintext): decide from a call's
 * first bytes whether it is HTTP. A stream seen from its start is decided on
 * its first four bytes, accumulated across calls; one found mid-stream waits
 * for a call that starts like a message. Returns 1 to copy the call, 0 to
 * skip it.
 *
 * A global (non-inlined) function: the verifier checks it once on its own
 * instead of once per path of every caller, which keeps exit_io small.
 */
__noinline int sniff(struct stream *st, __u64 first_ptr, __u64 first_len)
{
	__u32 have = 0, n, word = 0, more = 0;
	int verdict;

	if (!st || st->gate == GATE_NOT_HTTP)
		return 0;
	if (st->gate == GATE_HTTP)
		return 1;
	if (st->gate == GATE_SNIFF) {
		have = st->sniff_len;
		if (have > HDRTAP_SNIFF_LEN - 1)
			have = HDRTAP_SNIFF_LEN - 1;
		word = st->sniff_word;
	}
	n = HDRTAP_SNIFF_LEN - have;
	if (n > first_len)
		n = first_len;
	if (n > 0 && bpf_probe_read_user(&more, n & (2 * HDRTAP_SNIFF_LEN - 1), (void *)first_ptr))
		return 1; /* unreadable: let the copy count the failure */
	word |= more << (8 * have);
	verdict = hdrtap_sniff_word(word, have + n);
	if (verdict == HDRTAP_SNIFF_HTTP) {
		st->gate = GATE_HTTP;
		return 1;
	}
	if (st->gate == GATE_SNIFF_MIDSTREAM) {
		if (h2_midstream(first_ptr, first_len)) {
			st->gate = GATE_HTTP;
			return 1;
		}
		return 0; /* wait for a call that starts a message */
	}
	if (verdict == HDRTAP_SNIFF_NO) {
		st->gate = GATE_NOT_HTTP;
		ctr_add(HDRTAP_CTR_CONNS_GATED, 1);
		return 0;
	}
	/* MAYBE: keep what we have and copy this call. */
	st->sniff_word = word;
	st->sniff_len = have + n;
	return 1;
}

#define TCP_TIME_WAIT_STATE 6
#define TCP_CLOSE_WAIT_STATE 8
#define TCP_LAST_ACK_STATE 9
#define TCP_CLOSING_STATE 11

/*
 * The TCP sequence number of the first byte a call that just returned moved:
 * the socket's next byte to queue (write_seq) or to hand to the reader
 * (copied_seq), less the call's bytes. A connection found before its socket
 * had a cookie (opened before hdrtap) takes it now if something gave it one
 * since (hdrtap packets' tc egress).
 */
static __always_inline void tcp_seq_of_call(struct conn *c, struct copy_ctx *cc, __u8 dir)
{
	struct tcp_sock *tp = (struct tcp_sock *)c->sk;
	__u32 now;
	__u8 state;

	if (dir == HDRTAP_DIR_EGRESS) {
		now = BPF_CORE_READ(tp, write_seq);
	} else {
		now = BPF_CORE_READ(tp, copied_seq);
		/* A read that reached the peer's FIN counted it in copied_seq
		 * (one sequence number, no byte): everything received is read
		 * and the socket is in a state only a FIN leads to. */
		if (now == BPF_CORE_READ(tp, rcv_nxt)) {
			state = BPF_CORE_READ(tp, inet_conn.icsk_inet.sk.__sk_common.skc_state);
			if (state == TCP_CLOSE_WAIT_STATE || state == TCP_CLOSING_STATE ||
			    state == TCP_LAST_ACK_STATE || state == TCP_TIME_WAIT_STATE)
				now--;
		}
	}
	cc->seq = now - (__u32)cc->total;
	if (!c->cookie)
		c->cookie = BPF_CORE_READ(tp, inet_conn.icsk_inet.sk.__sk_common.skc_cookie.counter);
}

static __always_inline int exit_io(struct sys_exit_ctx *ctx, __u8 kind, __u8 dir, __u8 source)
{
	long ret = ctx->ret;
	__u64 id;
	struct pt_regs *regs;
	struct conn *c;
	struct copy_ctx cc = {};
	struct scratch *s;
	__u64 first_ptr = 0, first_len = 0;
	__u64 ptr, cnt;
	__u32 slot;
	int fd;

	if (ret <= 0)
		return 0;
	id = bpf_get_current_pid_tgid();
	if (!tracing_wanted(id >> 32))
		return 0;
	regs = call_regs();
	fd = PT_REGS_PARM1_SYSCALL(regs);
	c = conn_find(id >> 32, fd);
	if (tls_on)
		tls_note_fd(c, fd, dir); /* may turn c into CONN_TLS */
	if (!c || c->state != CONN_SOCKET || c->sock.gate == GATE_NOT_HTTP)
		return 0;
	ptr = PT_REGS_PARM2_SYSCALL(regs);
	cnt = kind == IO_IOV ? PT_REGS_PARM3_SYSCALL(regs) : 0; /* IO_MSG: from the msghdr */

	cc.total = ret;
	switch (kind) {
	case IO_BUF:
		cc.seg_ptr = ptr;
		cc.seg_len = ret;
		first_ptr = ptr;
		first_len = ret;
		break;
	case IO_MSG: {
		struct user_msghdr msg = {};

		if (bpf_probe_read_user(&msg, sizeof(msg), (void *)ptr)) {
			ctr_add(HDRTAP_CTR_READ_FAILS, 1);
			cc.stop = HDRTAP_DF_READ_FAILED;
			break;
		}
		ptr = (__u64)msg.msg_iov;
		cnt = msg.msg_iovlen;
	}
		/* fallthrough */
	case IO_IOV: {
		struct iovec v = {};

		cc.iov = ptr;
		cc.iov_cnt = cnt;
		if (!cc.stop && cnt > 0 &&
		    !bpf_probe_read_user(&v, sizeof(v), (void *)ptr)) {
			first_ptr = (__u64)v.iov_base;
			first_len = v.iov_len < (__u64)ret ? v.iov_len : (__u64)ret;
		}
		break;
	}
	case IO_MMSG: {
		/* ret is a message count; account the bytes, copy none. */
		__u64 bytes = 0;
		__u32 i;

		for (i = 0; i < 8; i++) {
			__u32 len = 0;

			if (i >= ret)
				break;
			if (bpf_probe_read_user(&len, sizeof(len),
						(void *)(ptr + i * sizeof(struct mmsghdr) +
							 __builtin_offsetof(struct mmsghdr, msg_len))))
				break;
			bytes += len;
		}
		cc.total = bytes;
		cc.stop = HDRTAP_DF_IOV_TRUNCATED;
		break;
	}
	default: /* IO_NOPAYLOAD */
		cc.stop = HDRTAP_DF_NO_PAYLOAD;
		break;
	}
	if (cc.total == 0)
		return 0;
	if (c->sock.gate != GATE_HTTP) {
		if (cc.stop || first_len == 0) {
			if (c->sock.gate == GATE_SNIFF_MIDSTREAM)
				return 0;
		} else if (!sniff(&c->sock, first_ptr, first_len)) {
			return 0;
		}
	}

	slot = bpf_get_smp_processor_id();
	s = scratch_at(slot);
	if (!s)
		return 0;
	cc.base_pos = stream_claim(&c->sock, dir, cc.total);
	cc.budget = call_capture;
	if (c->sk && !cc.stop) {
		tcp_seq_of_call(c, &cc, dir);
		cc.flags |= HDRTAP_DF_SEQ;
	}
	event_fill(s, c, &c->sock, id, fd, cc.total, dir, source, 0);
	/* Past the gate, a connection of unknown role was found mid-stream. */
	if (c->role == HDRTAP_ROLE_UNKNOWN)
		cc.flags |= HDRTAP_DF_MIDSTREAM;
	cc.head_ptr = first_ptr;
	cc.head_len = first_len;
	s->cc = cc;
	copy_run(s, slot, true);
	return 0;
}

/* ---- tracepoints --------------------------------------------------------- */

#define ARG(ctx, i) ((ctx)->args[i])

#define EXIT_IO(name, kind, dir, source)                                \
	SEC("tracepoint/syscalls/sys_exit_" #name)                      \
	int tp_exit_##name(struct sys_exit_ctx *ctx)                    \
	{                                                               \
		return exit_io(ctx, kind, dir, source);                 \
	}

/* ssize_t read(int fd, void *buf, size_t count); */
EXIT_IO(read, IO_BUF, HDRTAP_DIR_INGRESS, HDRTAP_SRC_READ)
/* ssize_t write(int fd, const void *buf, size_t count); */
EXIT_IO(write, IO_BUF, HDRTAP_DIR_EGRESS, HDRTAP_SRC_WRITE)
/* ssize_t readv(int fd, const struct iovec *iov, int iovcnt); */
EXIT_IO(readv, IO_IOV, HDRTAP_DIR_INGRESS, HDRTAP_SRC_READV)
/* ssize_t writev(int fd, const struct iovec *iov, int iovcnt); */
EXIT_IO(writev, IO_IOV, HDRTAP_DIR_EGRESS, HDRTAP_SRC_WRITEV)
/* ssize_t sendto(int fd, const void *buf, size_t len, int flags, ...); */
EXIT_IO(sendto, IO_BUF, HDRTAP_DIR_EGRESS, HDRTAP_SRC_SENDTO)
/* ssize_t recvfrom(int fd, void *buf, size_t len, int flags, ...); */
EXIT_IO(recvfrom, IO_BUF, HDRTAP_DIR_INGRESS, HDRTAP_SRC_RECVFROM)
/* ssize_t sendmsg(int fd, const struct msghdr *msg, int flags); */
EXIT_IO(sendmsg, IO_MSG, HDRTAP_DIR_EGRESS, HDRTAP_SRC_SENDMSG)
/* ssize_t recvmsg(int fd, struct msghdr *msg, int flags); */
EXIT_IO(recvmsg, IO_MSG, HDRTAP_DIR_INGRESS, HDRTAP_SRC_RECVMSG)
/* int sendmmsg(int fd, struct mmsghdr *msgvec, unsigned int vlen, int flags); */
EXIT_IO(sendmmsg, IO_MMSG, HDRTAP_DIR_EGRESS, HDRTAP_SRC_SENDMMSG)
/* int recvmmsg(int fd, struct mmsghdr *msgvec, unsigned int vlen, int flags, ...); */
EXIT_IO(recvmmsg, IO_MMSG, HDRTAP_DIR_INGRESS, HDRTAP_SRC_RECVMMSG)
/* ssize_t sendfile(int out_fd, int in_fd, off_t *offset, size_t count); */
EXIT_IO(sendfile64, IO_NOPAYLOAD, HDRTAP_DIR_EGRESS, HDRTAP_SRC_SENDFILE)

/* ---- connection lifecycle ------------------------------------------------ */

static __always_inline int exit_accept(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();

	if (ret < 0 || !tracing_wanted(id >> 32))
		return 0;
	conn_create(id >> 32, ret, HDRTAP_ROLE_SERVER, GATE_SNIFF);
	return 0;
}

/* int accept(int fd, struct sockaddr *addr, socklen_t *addrlen); */
SEC("tracepoint/syscalls/sys_exit_accept")
int tp_exit_accept(struct sys_exit_ctx *ctx)
{
	return exit_accept(ctx->ret);
}

/* int accept4(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags); */
SEC("tracepoint/syscalls/sys_exit_accept4")
int tp_exit_accept4(struct sys_exit_ctx *ctx)
{
	return exit_accept(ctx->ret);
}

/* int connect(int fd, const struct sockaddr *addr, socklen_t addrlen); */
SEC("tracepoint/syscalls/sys_exit_connect")
int tp_exit_connect(struct sys_exit_ctx *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();

	/* Non-blocking connect returns -EINPROGRESS; the local port is bound. */
	if ((ctx->ret != 0 && ctx->ret != -EINPROGRESS) || !tracing_wanted(id >> 32))
		return 0;
	conn_create(id >> 32, PT_REGS_PARM1_SYSCALL(call_regs()), HDRTAP_ROLE_CLIENT,
		    GATE_SNIFF);
	return 0;
}

/*
 * TP_PROTO(const struct sock *sk, const int oldstate, const int newstate).
 * Every TCP socket gets its cookie when it connects (SYN_SENT) or is
 * established (a server's child, before accept() returns it), so that
 * conn_create, a classic tracepoint that can only read the cookie, finds
 * one: HTTP records then carry the same sock_cookie as the packets of their
 * connection (hdrtap packets' conn_id).
 */
#define TCP_ESTABLISHED_STATE 1
#define TCP_SYN_SENT_STATE 2

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(sock_cookie, struct sock *sk, int oldstate, int newstate)
{
	if (newstate == TCP_SYN_SENT_STATE || newstate == TCP_ESTABLISHED_STATE)
		bpf_get_socket_cookie(sk);
	return 0;
}

/* The end of stream st: its final length each way. */
static __always_inline void send_close(__u64 id, int fd, const struct stream *st)
{
	struct hdrtap_close_event *ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);

	if (!ev) {
		ctr_add(HDRTAP_CTR_RINGBUF_DROPS, 1);
		return;
	}
	ev->hdr.kind = HDRTAP_EV_CLOSE;
	ev->hdr._pad0 = 0;
	ev->hdr.tgid = id >> 32;
	ev->hdr.tid = (__u32)id;
	ev->hdr.fd = fd;
	ev->hdr.ts_ns = bpf_ktime_get_ns();
	ev->hdr.conn_id = st->conn_id;
	ev->bytes[0] = st->pos[0];
	ev->bytes[1] = st->pos[1];
	bpf_ringbuf_submit(ev, rb_flags());
	ctr_add(HDRTAP_CTR_EVENTS, 1);
}

/* int close(int fd); */
SEC("tracepoint/syscalls/sys_enter_close")
int tp_enter_close(struct sys_enter_ctx *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct conn_key key = {.tgid = id >> 32, .fd = ARG(ctx, 0)};
	struct conn *c = bpf_map_lookup_elem(&conns, &key);

	if (!c)
		return 0;
	if (c->sock.emitted)
		send_close(id, key.fd, &c->sock);
	/* A TLS connection's plaintext stream is a connection of its own. */
	if (c->tls.emitted)
		send_close(id, key.fd, &c->tls);
	bpf_map_delete_elem(&conns, &key);
	return 0;
}

/*
 * A new descriptor number from socket()/dup*() may reuse one whose close we
 * did not see (close_range, exec's CLOEXEC, dup2 over it): forget any stale
 * entry so the next data call reads the real socket again.
 */
#define FORGET_RET_FD(name)                                             \
	SEC("tracepoint/syscalls/sys_exit_" #name)                      \
	int tp_exit_##name(struct sys_exit_ctx *ctx)        \
	{                                                               \
		if (ctx->ret >= 0)                                      \
			conn_forget(bpf_get_current_pid_tgid() >> 32,   \
				    ctx->ret);                          \
		return 0;                                               \
	}

FORGET_RET_FD(socket)
FORGET_RET_FD(dup)
FORGET_RET_FD(dup2)
FORGET_RET_FD(dup3)
