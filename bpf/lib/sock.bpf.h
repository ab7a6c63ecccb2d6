/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * sock.bpf.h — from a process's file descriptor to its TCP socket and the
 * connection's endpoints, read from struct sock with CO-RE.
 *
 * Reading the tuple from the socket (not /proc/net/tcp) gives the right
 * answer for connections opened before hdrtap started, with no race.
 */
#ifndef HDRTAP_SOCK_BPF_H
#define HDRTAP_SOCK_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "hdrtap_abi.h"

#define HDRTAP_S_IFMT 00170000
#define HDRTAP_S_IFSOCK 0140000
#define HDRTAP_SOCK_STREAM 1
#define HDRTAP_IPPROTO_TCP 6

/* What a descriptor turned out to be. */
enum hdrtap_fd_kind {
	HDRTAP_FD_OTHER = 0,    /* not a socket (file, pipe, ...) or unreadable */
	HDRTAP_FD_SOCK = 1,     /* a socket, but not IPv4/IPv6 */
	HDRTAP_FD_TCP = 2,      /* a TCP socket; *skp is set */
	HDRTAP_FD_INET = 3,     /* an IPv4/IPv6 socket that is not TCP (UDP,
				 * ping, raw); *skp is set */
};

/* Current task's struct file for fd, or NULL. */
static __always_inline struct file *hdrtap_fd_file(int fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds;
	struct file *file = NULL;

	if (!fdt || fd < 0 || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	if (!fds)
		return NULL;
	bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
	return file;
}

static __always_inline enum hdrtap_fd_kind hdrtap_fd_sock(int fd, struct sock **skp)
{
	struct file *file = hdrtap_fd_file(fd);
	struct socket *sock;
	struct sock *sk;
	__u16 family;

	if (!file)
		return HDRTAP_FD_OTHER;
	if ((BPF_CORE_READ(file, f_inode, i_mode) & HDRTAP_S_IFMT) != HDRTAP_S_IFSOCK)
		return HDRTAP_FD_OTHER;
	sock = BPF_CORE_READ(file, private_data);
	if (!sock)
		return HDRTAP_FD_SOCK;
	sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return HDRTAP_FD_SOCK;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != HDRTAP_AF_INET && family != HDRTAP_AF_INET6)
		return HDRTAP_FD_SOCK;
	*skp = sk;
	if (BPF_CORE_READ(sk, sk_type) != HDRTAP_SOCK_STREAM ||
	    BPF_CORE_READ(sk, sk_protocol) != HDRTAP_IPPROTO_TCP)
		return HDRTAP_FD_INET;
	return HDRTAP_FD_TCP;
}

/* Fill t with sk's endpoints. */
static __always_inline void hdrtap_sock_tuple(struct sock *sk, struct hdrtap_tuple *t)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	t->family = family;
	t->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	t->rport = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (family == HDRTAP_AF_INET) {
		bpf_core_read(t->laddr, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_core_read(t->raddr, 4, &sk->__sk_common.skc_daddr);
	} else {
		bpf_core_read(t->laddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(t->raddr, 16, &sk->__sk_common.skc_v6_daddr);
	}
}

#endif /* HDRTAP_SOCK_BPF_H */
