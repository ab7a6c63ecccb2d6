// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * openssl.bpf.c — HTTPS in cleartext: uprobes on OpenSSL (3.x; 1.1.x has the
 * same symbols and signatures) that copy the plaintext of SSL_read,
 * SSL_read_ex, SSL_write and SSL_write_ex into the same ring buffer, through
 * the same connections and copy loop as the syscall capture.
 *
 * Compiled on its own and linked with syscalls.bpf.c into one object
 * (build.rs): the maps (conns, events, scratch, counters), the filters and
 * the copy loop are shared through capture.bpf.h, not duplicated. Its
 * programs are named tls_* and are attached by userspace
 * (crates/hdrtap-bpf/src/tls/mod.rs), not with the syscall ones.
 *
 * Flow of one SSL call on one thread:
 *   SSL_x entry:   stash (ssl, buf, out) in task storage, fd = -1
 *   syscalls inside the call (exit_io -> tls_note_fd): the read/write on a
 *                  TCP socket names the fd; that connection becomes CONN_TLS
 *                  at once, so the syscall path never copies its ciphertext
 *   SSL_x return:  bytes = return value (or *written / *readbytes); fd from
 *                  the stash, else from ssl_fds (SSL_read served from
 *                  OpenSSL's buffer makes no syscall; SSL_set_fd and earlier
 *                  calls taught us); copy the plaintext as a stream of its own
 *                  (conn.tls: its own conn_id and offsets), flag HDRTAP_DF_TLS.
 *
 * SSL_peek is not hooked: peeked bytes are read again by SSL_read.
 *
 * GnuTLS goes through the same programs: gnutls_record_send2 (or
 * gnutls_record_send) and gnutls_record_recv take (session, buffer, size)
 * and return the bytes moved or a negative error, as SSL_write and SSL_read
 * do, and gnutls_transport_set_int2(session, recv_fd, send_fd) names the
 * socket as SSL_set_fd does (crates/hdrtap-bpf/src/tls/discover.rs).
 */

#include "capture.bpf.h"

/* How recent the thread's socket read must be to name a memory-BIO SSL's
 * socket (Node.js calls SSL_read within microseconds of its read). */
#define BIO_WINDOW_NS (5 * 1000 * 1000ULL)

#define HDRTAP_PROT_EXEC 0x4
#define HDRTAP_MAP_ANONYMOUS 0x20

/*
 * The stack pointer seen by a uretprobe, minus the one seen at the entry of
 * the same call: x86-64's `ret` pops the return address; arm64 returns
 * through a register. Used to tell an outer call's return from a nested
 * one's. Elsewhere the check is off.
 */
#if defined(__TARGET_ARCH_x86)
#define RET_SP_DELTA 8
#define SP_CHECK 1
#elif defined(__TARGET_ARCH_arm64)
#define RET_SP_DELTA 0
#define SP_CHECK 1
#else
#define RET_SP_DELTA 0
#define SP_CHECK 0
#endif

struct ssl_key {
	__u32 tgid;
	__u32 _pad;
	__u64 ssl;       /* SSL *: only unique within one process */
};

/* The socket each SSL object runs over, as last seen. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ssl_key);
	__type(value, __s32);
} ssl_fds SEC(".maps");

/* Executable files userspace has looked at (never reported again). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct hdrtap_file_key);
	__type(value, __u8);
} known_files SEC(".maps");

/* Unknown executable files being exec'd or mapped (struct hdrtap_file_event). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 << 10);
} file_events SEC(".maps");

/*
 * An SSL with no socket known and no socket I/O inside its calls: a
 * memory-BIO user (Node.js) that reads the ciphertext from a socket itself
 * and hands it to OpenSSL right after, on the same thread (tls_note_fd
 * remembers that read). If the thread read from a TCP socket within
 * BIO_WINDOW_NS, that socket is this SSL's from now on (ssl_fds); the read
 * is used once. Called at SSL_do_handshake and at the return of any SSL
 * call that made no socket I/O (Node.js's first SSL_write completes the
 * handshake from the server's flight it has just read, and writes the
 * request). Returns the fd, or -1.
 */
static __always_inline int bio_learn(struct ssl_call *sc, struct ssl_key *key)
{
	int fd;

	if (!sc->bio_ns || bpf_ktime_get_ns() - sc->bio_ns >= BIO_WINDOW_NS)
		return -1;
	fd = sc->bio_fd;
	sc->bio_ns = 0;
	bpf_map_update_elem(&ssl_fds, key, &fd, BPF_ANY);
	ctr_add(HDRTAP_CTR_TLS_BIO_FDS, 1);
	return fd;
}

static __always_inline int ssl_enter(struct pt_regs *ctx, __u64 ssl, __u64 buf, __u64 out_len,
				     __u8 dir, __u8 source)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 sp = PT_REGS_SP(ctx);
	struct ssl_call *sc;

	if (!tracing_wanted(id >> 32))
		return 0;
	sc = ssl_call_slot(BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!sc) {
		ctr_add(HDRTAP_CTR_INFLIGHT_FULL, 1);
		return 0;
	}
	/*
	 * An SSL call made from inside the one in flight (a library whose
	 * SSL_write calls SSL_write_ex, or one file hooked twice) sits deeper
	 * in the stack: the outer call reports the bytes, once. A slot left
	 * by a call whose return we did not see is at this depth or above,
	 * and is replaced.
	 */
	if (SP_CHECK && sc->active && sp < sc->sp)
		return 0;
	sc->ssl = ssl;
	sc->buf = buf;
	sc->out_len = out_len;
	sc->sp = sp;
	sc->fd = -1;
	sc->lib = bpf_get_attach_cookie(ctx);
	sc->dir = dir;
	sc->source = source;
	sc->active = 1;
	return 0;
}

static __always_inline int ssl_exit(struct pt_regs *ctx)
{
	int ret = PT_REGS_RC(ctx);
	__u64 id = bpf_get_current_pid_tgid();
	struct ssl_call *sc = ssl_call_slot(0);
	struct ssl_call call;
	struct ssl_key key = {};
	__s32 *known;
	__u64 bytes;
	int fd;

	if (!sc || !sc->active)
		return 0;
	if (SP_CHECK && PT_REGS_SP(ctx) - RET_SP_DELTA != sc->sp)
		return 0; /* a nested call returning */
	call = *sc;
	sc->active = 0;

	/* Which socket: learnt inside this call, else remembered for this SSL. */
	key.tgid = id >> 32;
	key.ssl = call.ssl;
	fd = call.fd;
	known = bpf_map_lookup_elem(&ssl_fds, &key);
	if (fd >= 0) {
		if (!known || *known != fd)
			bpf_map_update_elem(&ssl_fds, &key, &fd, BPF_ANY);
	} else if (known) {
		fd = *known;
	} else {
		fd = bio_learn(sc, &key);
	}
	if (ret <= 0)
		return 0;
	bytes = ret;
	if (call.out_len) {
		/* SSL_read_ex/SSL_write_ex return 1 and store the count. */
		__u64 n = 0;

		if (bpf_probe_read_user(&n, sizeof(n), (void *)call.out_len)) {
			ctr_add(HDRTAP_CTR_READ_FAILS, 1);
			return 0;
		}
		bytes = n;
	}
	if (bytes == 0)
		return 0;
	return tls_emit(id, fd, call.buf, bytes, call.dir, call.source, call.lib);
}

/* int SSL_write(SSL *ssl, const void *buf, int num); */
SEC("uprobe")
int BPF_UPROBE(tls_ssl_write, void *ssl, const void *buf, int num)
{
	return ssl_enter(ctx, (__u64)ssl, (__u64)buf, 0, HDRTAP_DIR_EGRESS, HDRTAP_SRC_SSL_WRITE);
}

/*
 * int SSL_write_ex(SSL *s, const void *buf, size_t num, size_t *written);
 * Also attached, at its file offset, to what SSL_write and SSL_write_ex
 * call, when userspace found it (crates/hdrtap-bpf/src/tls/discover.rs):
 * int ssl_write_internal(SSL *s, const void *buf, size_t num, size_t *written);
 */
SEC("uprobe")
int BPF_UPROBE(tls_ssl_write_ex, void *ssl, const void *buf, __u64 num, __u64 *written)
{
	return ssl_enter(ctx, (__u64)ssl, (__u64)buf, (__u64)written, HDRTAP_DIR_EGRESS,
			 HDRTAP_SRC_SSL_WRITE);
}

/* int SSL_read(SSL *ssl, void *buf, int num); */
SEC("uprobe")
int BPF_UPROBE(tls_ssl_read, void *ssl, void *buf, int num)
{
	return ssl_enter(ctx, (__u64)ssl, (__u64)buf, 0, HDRTAP_DIR_INGRESS, HDRTAP_SRC_SSL_READ);
}

/*
 * int SSL_read_ex(SSL *ssl, void *buf, size_t num, size_t *readbytes);
 * Also attached likewise to
 * int ssl_read_internal(SSL *s, void *buf, size_t num, size_t *readbytes);
 */
SEC("uprobe")
int BPF_UPROBE(tls_ssl_read_ex, void *ssl, void *buf, __u64 num, __u64 *readbytes)
{
	return ssl_enter(ctx, (__u64)ssl, (__u64)buf, (__u64)readbytes, HDRTAP_DIR_INGRESS,
			 HDRTAP_SRC_SSL_READ);
}

/*
 * The return of all four, and of the two internal functions (the stash
 * says which form it was):
 *   int SSL_write(...)    bytes written, or <= 0
 *   int SSL_write_ex(...) 1 and *written, or 0
 *   int SSL_read(...)     bytes read, or <= 0
 *   int SSL_read_ex(...)  1 and *readbytes, or 0
 *   ssl_write_internal, ssl_read_internal: > 0 and the count, or <= 0
 */
SEC("uretprobe")
int BPF_URETPROBE(tls_ssl_ret, int ret)
{
	return ssl_exit(ctx);
}

/* int SSL_set_fd(SSL *ssl, int fd); — the socket, before any data moves. */
SEC("uprobe")
int BPF_UPROBE(tls_ssl_set_fd, void *ssl, int fd)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct ssl_key key = {.tgid = id >> 32, .ssl = (__u64)ssl};
	struct conn *c;

	if (!tracing_wanted(id >> 32) || fd < 0)
		return 0;
	bpf_map_update_elem(&ssl_fds, &key, &fd, BPF_ANY);
	c = conn_find(key.tgid, fd);
	if (c)
		tls_mark(c);
	return 0;
}

/* int SSL_do_handshake(SSL *s); — a memory-BIO SSL learns its socket here. */
SEC("uprobe")
int BPF_UPROBE(tls_ssl_do_handshake, void *ssl)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct ssl_key key = {.tgid = id >> 32, .ssl = (__u64)ssl};
	struct ssl_call *sc;

	if (!tracing_wanted(key.tgid))
		return 0;
	/* Created here: the thread's next socket read is then remembered. */
	sc = ssl_call_slot(BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!sc || sc->active || bpf_map_lookup_elem(&ssl_fds, &key))
		return 0;
	bio_learn(sc, &key);
	return 0;
}

/*
 * void SSL_free(SSL *s); void gnutls_deinit(gnutls_session_t s);
 * The object's socket is forgotten: memory is reused, and a new SSL at the
 * same address is another connection (a memory-BIO SSL would otherwise
 * inherit a closed socket and never learn its own).
 */
SEC("uprobe")
int BPF_UPROBE(tls_ssl_free, void *ssl)
{
	struct ssl_key key = {.tgid = bpf_get_current_pid_tgid() >> 32, .ssl = (__u64)ssl};

	bpf_map_delete_elem(&ssl_fds, &key);
	return 0;
}

/* ---- new library files and static binaries ------------------------------ */

static __always_inline void report_file(struct file *file, __u32 tgid, __u16 kind)
{
	struct hdrtap_file_event ev = {};
	struct inode *inode;

	if (!file || tgid == self_tgid)
		return;
	inode = BPF_CORE_READ(file, f_inode);
	ev.file.ino = BPF_CORE_READ(inode, i_ino);
	ev.file.dev = BPF_CORE_READ(inode, i_sb, s_dev);
	if (bpf_map_lookup_elem(&known_files, &ev.file))
		return;
	ev.kind = kind;
	ev.tgid = tgid;
	/* Rare (files userspace has not seen) and urgent: wake the reader. */
	bpf_ringbuf_output(&file_events, &ev, sizeof(ev), BPF_RB_FORCE_WAKEUP);
}

/* void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset); */
SEC("tracepoint/syscalls/sys_enter_mmap")
int tls_enter_mmap(struct sys_enter_ctx *ctx)
{
	int prot = ctx->args[2], flags = ctx->args[3], fd = ctx->args[4];

	if (!(prot & HDRTAP_PROT_EXEC) || (flags & HDRTAP_MAP_ANONYMOUS) || fd < 0)
		return 0;
	report_file(hdrtap_fd_file(fd), bpf_get_current_pid_tgid() >> 32, HDRTAP_EV_MMAP_EXEC);
	return 0;
}

/* sched_process_exec(struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm) */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(tls_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	report_file(BPF_CORE_READ(bprm, file), BPF_CORE_READ(p, tgid), HDRTAP_EV_EXEC);
	return 0;
}
