/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * hdrtap_abi.h — THE contract between hdrtap's BPF programs and userspace.
 *
 * Every structure that crosses the kernel/user boundary (ring-buffer events,
 * counter indices, filter keys) is defined here and only here. The Rust side
 * is generated from this file by bindgen (crates/hdrtap-abi/build.rs); never
 * copy these definitions by hand. Sizes and offsets are pinned with
 * _Static_assert below and with const asserts in hdrtap-abi, so a change on
 * one side that is not made on the other fails the build.
 *
 * Conventions: all integers are host byte order unless the field name ends in
 * _be. Structures are laid out with explicit padding so that C and Rust agree
 * without relying on compiler packing rules.
 */
#ifndef HDRTAP_ABI_H
#define HDRTAP_ABI_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Bumped whenever a structure below changes incompatibly. */
#define HDRTAP_ABI_VERSION 1

/* Length of a task's comm, including the NUL (TASK_COMM_LEN). */
#define HDRTAP_COMM_LEN 16

/*
 * Largest number of payload bytes carried by one data event. A header block
 * of up to this many bytes written in one syscall arrives in one event.
 * Must be a power of two (the BPF side masks with 2*CHUNK-1 to prove bounds).
 */
#define HDRTAP_CHUNK_MAX 16384

/* Default and largest cap on payload bytes copied per syscall (rodata). */
#define HDRTAP_DEFAULT_CALL_CAPTURE 65536
#define HDRTAP_CALL_CAPTURE_MAX (16 * HDRTAP_CHUNK_MAX)

/* Most iovec entries walked per readv/writev/sendmsg/recvmsg call. */
#define HDRTAP_IOV_MAX 64

/* Bytes of a connection's first payload the kernel sniffs for HTTP. */
#define HDRTAP_SNIFF_LEN 4

/* Event kinds (hdrtap_event_hdr.kind). */
enum hdrtap_event_kind {
	/* Payload moved by a syscall on a tracked TCP connection. */
	HDRTAP_EV_DATA = 1,
	/* A tracked connection that had emitted data was closed. */
	HDRTAP_EV_CLOSE = 2,
};

/* Direction of a data event, seen from the traced process. */
enum hdrtap_direction {
	HDRTAP_DIR_EGRESS = 0,  /* the process wrote/sent the bytes */
	HDRTAP_DIR_INGRESS = 1, /* the process read/received the bytes */
};

/* What the kernel knows of the process's role on the connection. */
enum hdrtap_role {
	HDRTAP_ROLE_UNKNOWN = 0, /* found on a data syscall (e.g. opened before hdrtap) */
	HDRTAP_ROLE_CLIENT = 1,  /* the process called connect() */
	HDRTAP_ROLE_SERVER = 2,  /* the process got it from accept()/accept4() */
};

/* The syscall family that produced a data event (for diagnostics). */
enum hdrtap_source {
	HDRTAP_SRC_READ = 1,
	HDRTAP_SRC_WRITE = 2,
	HDRTAP_SRC_READV = 3,
	HDRTAP_SRC_WRITEV = 4,
	HDRTAP_SRC_SENDTO = 5,
	HDRTAP_SRC_RECVFROM = 6,
	HDRTAP_SRC_SENDMSG = 7,
	HDRTAP_SRC_RECVMSG = 8,
	HDRTAP_SRC_SENDMMSG = 9,
	HDRTAP_SRC_RECVMMSG = 10,
	HDRTAP_SRC_SENDFILE = 11,
};

/* Flags on a data event (hdrtap_data_event.flags). */
enum hdrtap_data_flags {
	/*
	 * The connection was first seen on a data syscall, not at
	 * accept/connect: pos 0 is where hdrtap started watching, not the
	 * start of the stream. Set on every event of such a connection.
	 */
	HDRTAP_DF_MIDSTREAM = 1 << 0,
	/* Reading the user buffer failed: cap_len is 0 for this range. */
	HDRTAP_DF_READ_FAILED = 1 << 1,
	/* The per-syscall capture cap was hit: bytes past cap_len not copied. */
	HDRTAP_DF_CLIPPED = 1 << 2,
	/* The bytes moved by the call are not in user memory (sendfile). */
	HDRTAP_DF_NO_PAYLOAD = 1 << 3,
	/* More than HDRTAP_IOV_MAX iovecs (or mmsg entries): tail not copied. */
	HDRTAP_DF_IOV_TRUNCATED = 1 << 4,
};

/* Address family values used in hdrtap_tuple.family (same as AF_*). */
#define HDRTAP_AF_INET 2
#define HDRTAP_AF_INET6 10

/*
 * A TCP connection's endpoints as read from the kernel socket (struct sock)
 * when hdrtap first saw the connection — never from /proc.
 * IPv4 addresses sit in the first 4 bytes of the 16-byte fields.
 */
struct hdrtap_tuple {
	__u16 family;   /* HDRTAP_AF_INET or HDRTAP_AF_INET6 */
	__u16 lport;    /* local port, host order */
	__u16 rport;    /* remote port, host order */
	__u16 _pad0;
	__u8 laddr[16]; /* local address, network order */
	__u8 raddr[16]; /* remote address, network order */
};

/* Common prefix of every ring-buffer event. */
struct hdrtap_event_hdr {
	__u16 kind;      /* enum hdrtap_event_kind */
	__u16 _pad0;
	__u32 tgid;      /* process id */
	__u32 tid;       /* thread id */
	__s32 fd;        /* file descriptor in the process */
	__u64 ts_ns;     /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u64 conn_id;   /* unique per connection for the life of the BPF objects */
};

/*
 * HDRTAP_EV_DATA. Carries the whole connection context so that every event
 * stands on its own even if an earlier one was lost.
 *
 * The event covers stream bytes [pos, pos + orig_len) in direction dir; the
 * first cap_len of them follow the header in data[]. orig_len > cap_len when
 * the per-call cap was hit, a user read failed, or the payload is not in user
 * memory (see flags). A syscall that moved more than HDRTAP_CHUNK_MAX bytes
 * produces several consecutive events. A gap between one event's
 * pos + orig_len and the next event's pos in the same direction means events
 * were lost (ring buffer full).
 */
struct hdrtap_data_event {
	struct hdrtap_event_hdr hdr;
	__u64 pos;        /* stream offset of data[0] in this direction */
	__u64 orig_len;   /* bytes of the stream this event stands for */
	__u64 call_len;   /* bytes the whole syscall moved (its return value) */
	__u64 cgroup_id;  /* bpf_get_current_cgroup_id() */
	__u32 cap_len;    /* payload bytes in data[] (<= HDRTAP_CHUNK_MAX) */
	__u16 flags;      /* enum hdrtap_data_flags */
	__u8 dir;         /* enum hdrtap_direction */
	__u8 role;        /* enum hdrtap_role */
	__u8 source;      /* enum hdrtap_source */
	__u8 _pad0[7];
	char comm[HDRTAP_COMM_LEN];
	struct hdrtap_tuple tuple;
	__u8 data[];      /* cap_len bytes */
};

/* HDRTAP_EV_CLOSE: the process closed a connection that had emitted data. */
struct hdrtap_close_event {
	struct hdrtap_event_hdr hdr;
	__u64 bytes[2];   /* stream bytes seen per direction (indexed by dir) */
};

/*
 * Kernel-side counters: a per-CPU array of __u64 indexed by this enum.
 * Userspace sums over CPUs. Every loss the kernel can see is counted here.
 */
enum hdrtap_counter {
	HDRTAP_CTR_EVENTS = 0,        /* events written to the ring buffer */
	HDRTAP_CTR_RINGBUF_DROPS,     /* events lost: ring buffer full */
	HDRTAP_CTR_RINGBUF_DROP_BYTES,/* stream bytes covered by those lost events */
	HDRTAP_CTR_READ_FAILS,        /* failed user-memory reads of payload */
	HDRTAP_CTR_CLIPPED_BYTES,     /* bytes not copied due to the per-call cap */
	HDRTAP_CTR_CONNS,             /* TCP connections tracked */
	HDRTAP_CTR_CONNS_GATED,       /* connections dropped as not HTTP */
	HDRTAP_CTR_CONN_MAP_FULL,     /* connections not tracked: map full */
	HDRTAP_CTR_INFLIGHT_FULL,     /* syscalls not captured: in-flight map full */
	HDRTAP_CTR_BYTES_CAPTURED,    /* payload bytes copied to the ring buffer */
	HDRTAP_CTR_MAX,
};

/* Filter keys: a comm as a map key (zero-padded). */
struct hdrtap_comm_key {
	char comm[HDRTAP_COMM_LEN];
};

/* Layout pins (the Rust side asserts the same numbers). */
#define HDRTAP_TUPLE_SIZE 40
#define HDRTAP_EVENT_HDR_SIZE 32
#define HDRTAP_DATA_EVENT_SIZE 136
#define HDRTAP_CLOSE_EVENT_SIZE 48

_Static_assert(sizeof(struct hdrtap_tuple) == HDRTAP_TUPLE_SIZE, "tuple size");
_Static_assert(sizeof(struct hdrtap_event_hdr) == HDRTAP_EVENT_HDR_SIZE, "hdr size");
_Static_assert(sizeof(struct hdrtap_data_event) == HDRTAP_DATA_EVENT_SIZE, "data event size");
_Static_assert(sizeof(struct hdrtap_close_event) == HDRTAP_CLOSE_EVENT_SIZE, "close event size");
_Static_assert(__builtin_offsetof(struct hdrtap_data_event, pos) == HDRTAP_EVENT_HDR_SIZE, "pos offset");
_Static_assert(__builtin_offsetof(struct hdrtap_data_event, comm) == 80, "comm offset");
_Static_assert(__builtin_offsetof(struct hdrtap_data_event, tuple) == 96, "tuple offset");
_Static_assert((HDRTAP_CHUNK_MAX & (HDRTAP_CHUNK_MAX - 1)) == 0, "chunk is a power of two");

#endif /* HDRTAP_ABI_H */
