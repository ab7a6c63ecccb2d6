// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * gotls.bpf.c — HTTPS in cleartext from Go programs: uprobes on
 * crypto/tls.(*Conn).Read and crypto/tls.(*Conn).Write (Go >= 1.17, whose
 * register ABI puts the arguments and results in registers), copied through
 * the same connections and copy loop as every other capture (tls_emit in
 * capture.bpf.h). Compiled on its own and linked with syscalls.bpf.c and
 * openssl.bpf.c into one object (build.rs); attached by userspace
 * (crates/hdrtap-bpf/src/tls/mod.rs).
 *
 * No uretprobe: a uretprobe replaces the return address on the stack, and
 * Go moves goroutine stacks (growth copies them), which would crash the
 * program. Read's result is taken with plain uprobes on each of its RET
 * instructions, found by userspace with an x86 decoder; Write's bytes when
 * it starts. Both entry probes sit just past the function's stack check, so
 * a call that grows its stack (and restarts) is seen once.
 *
 * Calls in flight are keyed by goroutine, not thread: a goroutine blocked in
 * Read may resume on another thread (M), and the thread runs other
 * goroutines meanwhile. Under the register ABI R14 holds the current g.
 *
 * The socket is read from the *tls.Conn: its first field is the net.Conn it
 * wraps (an interface: itab, data); for a *net.TCPConn the data points at a
 * net.conn whose first field is the *netFD, whose poll.FD holds Sysfd after
 * a 16-byte fdMutex. These layouts have held since Go 1.12. The itab is
 * checked against *net.TCPConn's when userspace found its symbol, so a
 * tls.Conn over something else is never read as one (counted in tls_no_fd).
 *
 *   Read(b []byte) (n int, err error)   entry: RAX = c, RBX = b.ptr; return: RAX = n
 *   Write(b []byte) (n int, err error)  entry: RAX = c, RBX = b.ptr, RCX = len(b)
 */

#include "capture.bpf.h"

struct go_key {
	__u32 tgid;
	__u32 _pad;
	__u64 g; /* the goroutine (runtime.g *) */
};

struct go_call {
	__u64 conn; /* *tls.Conn */
	__u64 buf;  /* b's data */
	__u16 lib;  /* attach cookie: the program's library id */
	__u8 _pad[6];
};

/* Read calls in flight, by goroutine. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct go_key);
	__type(value, struct go_call);
} go_calls SEC(".maps");

/* Per hooked Go program (attach cookie): the address of the itab of
 * (*net.TCPConn, net.Conn), or 0 when unknown (not checked). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} go_itabs SEC(".maps");

/* Offset of poll.FD.Sysfd in net.netFD (after fdMutex{state u64; rsema, wsema u32}). */
#define GO_NETFD_SYSFD 16

#if defined(__TARGET_ARCH_x86)
#define GO_G(ctx) ((ctx)->r14)
#define GO_ARG0(ctx) ((ctx)->ax)
#define GO_ARG1(ctx) ((ctx)->bx)
#define GO_ARG2(ctx) ((ctx)->cx)
#define GO_RET0(ctx) ((ctx)->ax)
#define GO_SUPPORTED 1
#else
#define GO_SUPPORTED 0
#endif

static __always_inline int go_enter(struct pt_regs *ctx)
{
#if GO_SUPPORTED
	__u64 id = bpf_get_current_pid_tgid();
	struct go_key k = {.tgid = id >> 32, .g = GO_G(ctx)};
	struct go_call call = {
		.conn = GO_ARG0(ctx),
		.buf = GO_ARG1(ctx),
		.lib = bpf_get_attach_cookie(ctx),
	};

	if (!tracing_wanted(k.tgid))
		return 0;
	if (bpf_map_update_elem(&go_calls, &k, &call, BPF_ANY))
		ctr_add(HDRTAP_CTR_INFLIGHT_FULL, 1);
#endif
	return 0;
}

/* The socket under a *tls.Conn, or -1, or GO_FD_CLOSED. */
#define GO_FD_CLOSED -2
static __always_inline int go_conn_fd(__u64 conn, __u16 lib);

/*
 * func (c *Conn) Write(b []byte) (int, error)
 * The bytes are taken as the call starts (RCX = len(b)): a request must not
 * reach the output after its response, which another goroutine may read
 * before this Write returns (HTTP/2). Write sends all of b or fails, and a
 * tls.Conn that failed a write is dead: nothing follows bytes it lost.
 */
SEC("uprobe")
int tls_go_write(struct pt_regs *ctx)
{
#if GO_SUPPORTED
	__u64 id = bpf_get_current_pid_tgid();
	__u16 lib = bpf_get_attach_cookie(ctx);
	__s64 len = GO_ARG2(ctx);
	int fd;

	if (!tracing_wanted(id >> 32) || len <= 0)
		return 0;
	fd = go_conn_fd(GO_ARG0(ctx), lib);
	/* A write on a closed connection fails: nothing is sent (HTTP/2's
	 * client closes the spare connections it dialled, and its peer may
	 * still write to them). */
	if (fd == GO_FD_CLOSED)
		return 0;
	return tls_emit(id, fd, GO_ARG1(ctx), len, HDRTAP_DIR_EGRESS, HDRTAP_SRC_SSL_WRITE, lib);
#else
	return 0;
#endif
}

/* func (c *Conn) Read(b []byte) (int, error): the call is remembered until a RET. */
SEC("uprobe")
int tls_go_read(struct pt_regs *ctx)
{
	return go_enter(ctx);
}

static __always_inline int go_conn_fd(__u64 conn, __u16 lib)
{
	__u64 iface[2] = {}; /* net.Conn: itab, data */
	__u32 key = lib;
	__u64 netfd = 0, *itab;
	__s64 fd = -1;

	if (bpf_probe_read_user(iface, sizeof(iface), (void *)conn))
		return -1;
	itab = bpf_map_lookup_elem(&go_itabs, &key);
	if (itab && *itab && iface[0] != *itab)
		return -1; /* not a *net.TCPConn */
	if (bpf_probe_read_user(&netfd, sizeof(netfd), (void *)iface[1]))
		return -1;
	if (bpf_probe_read_user(&fd, sizeof(fd), (void *)(netfd + GO_NETFD_SYSFD)))
		return -1;
	if (fd == -1)
		return GO_FD_CLOSED; /* poll.FD.destroy set Sysfd to -1 */
	if (fd < 0 || fd > 0x7fffffff)
		return -1;
	return fd;
}

/* Each RET instruction of Read. */
SEC("uprobe")
int tls_go_ret(struct pt_regs *ctx)
{
#if GO_SUPPORTED
	__u64 id = bpf_get_current_pid_tgid();
	struct go_key k = {.tgid = id >> 32, .g = GO_G(ctx)};
	struct go_call *inflight = bpf_map_lookup_elem(&go_calls, &k);
	struct go_call call;
	__s64 n;

	if (!inflight)
		return 0;
	call = *inflight;
	bpf_map_delete_elem(&go_calls, &k);
	n = GO_RET0(ctx);
	if (n <= 0)
		return 0;
	return tls_emit(id, go_conn_fd(call.conn, call.lib), call.buf, n, HDRTAP_DIR_INGRESS,
			HDRTAP_SRC_SSL_READ, call.lib);
#else
	return 0;
#endif
}
