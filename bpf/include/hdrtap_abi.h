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
 * There is no version number: the objects are built from this header in the
 * same build as userspace and embedded in the binary (the libbpf-rs
 * skeleton), so the two sides cannot come from different versions.
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
	/* TLS plaintext from a TLS library's uprobes (flag HDRTAP_DF_TLS). */
	HDRTAP_SRC_SSL_READ = 12,  /* SSL_read, SSL_read_ex */
	HDRTAP_SRC_SSL_WRITE = 13, /* SSL_write, SSL_write_ex */
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
	/*
	 * Plaintext of a TLS connection, captured from the TLS library
	 * (SSL_read/SSL_write uprobes), not from the socket. conn_id is the
	 * plaintext stream's own id (never the socket stream's), pos counts
	 * plaintext bytes, tls_lib says which hooked library file it came from.
	 */
	HDRTAP_DF_TLS = 1 << 5,
	/*
	 * Message body the kernel did not copy: either userspace told it the
	 * body is not needed (map `skips`, see struct hdrtap_skip_key; cap_len
	 * is 0), or the call's first iovec was a whole response header block
	 * announcing a body and the second iovec that body (the event holds
	 * the block; the body is the orig_len - cap_len bytes after it). Not
	 * a loss: the parser knows these bytes are body from the block.
	 */
	HDRTAP_DF_SKIPPED = 1 << 6,
	/*
	 * tcp_seq holds the TCP sequence number of the event's first byte,
	 * read from the socket when the call returned (tcp_sock.write_seq
	 * after a send, copied_seq after a receive, less the bytes moved).
	 * Set on socket data events of TCP connections, never on TLS ones.
	 */
	HDRTAP_DF_SEQ = 1 << 7,
};

/*
 * Key of the `skips` map (value: __u64 stream offset). Once userspace has
 * parsed a header block announcing a long body (Content-Length, or one
 * large chunk), it stores where that body ends; a call whose bytes all lie
 * before that offset is sent as a payload-less HDRTAP_DF_SKIPPED event
 * instead of being copied. Only calls of HDRTAP_SKIP_MIN_CALL bytes or more
 * look the map up. conn_id is the event's (the TLS plaintext stream's id for
 * HDRTAP_DF_TLS events); ids are never reused, so stale entries are harmless
 * and left to the LRU. The value only grows: the kernel may store a later
 * body's end before a lagging userspace parses an earlier one, and
 * userspace then leaves the larger value in place.
 */
struct hdrtap_skip_key {
	__u64 conn_id;
	__u32 dir;      /* enum hdrtap_direction */
	__u32 _pad;
};

#define HDRTAP_SKIP_MIN_CALL 1024

/*
 * A body is worth skipping when at least this many of its bytes are still
 * to come: the default of userspace's requests (TrackerConfig) and of the
 * kernel's own framing of responses (syscalls.bpf.c, body_scan).
 */
#define HDRTAP_SKIP_BODY_MIN (64 * 1024)

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
	__u8 _pad0;
	__u16 tls_lib;    /* HDRTAP_DF_TLS: id of the hooked library file (the uprobe's
			   * attach cookie, assigned by userspace); 0 otherwise */
	__u32 tcp_seq;    /* HDRTAP_DF_SEQ: TCP sequence number of the byte at pos */
	char comm[HDRTAP_COMM_LEN];
	struct hdrtap_tuple tuple;
	__u64 sock_cookie;/* the socket's cookie (SO_COOKIE, bpf_get_socket_cookie),
			   * the key of packet records' conn_id; 0 if it has none yet */
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
	HDRTAP_CTR_INFLIGHT_FULL,     /* SSL calls not captured: no task storage for the stash */
	HDRTAP_CTR_BYTES_CAPTURED,    /* payload bytes copied to the ring buffer */
	HDRTAP_CTR_TLS_CONNS,         /* connections marked TLS (plaintext from uprobes) */
	HDRTAP_CTR_TLS_NO_FD,         /* SSL calls not captured: their socket was unknown */
	HDRTAP_CTR_TLS_BUSY,          /* SSL calls not copied: the CPU's TLS scratch was in use */
	HDRTAP_CTR_BODY_SKIPPED_BYTES,/* body bytes not copied: map skips said they are body */
	HDRTAP_CTR_BODIES_FRAMED,     /* response bodies the kernel framed itself (body_scan) */
	HDRTAP_CTR_TLS_BIO_FDS,       /* SSLs tied to a socket by the thread's read before SSL_read (memory BIOs) */
	HDRTAP_CTR_CONNS_CGROUP_OUT,  /* connections not tracked: their cgroup is in filter_cgroups_out */
	HDRTAP_CTR_MAX,
};

/*
 * TLS library discovery (`hdrtap http`, TLS on): the kernel reports
 * executable files it has not been told about, on their own small ring
 * buffer (`file_events`), so that userspace can attach uprobes to a new
 * libssl or a statically linked binary within a second.
 */
enum hdrtap_file_event_kind {
	HDRTAP_EV_EXEC = 4,      /* a process exec'd this file */
	HDRTAP_EV_MMAP_EXEC = 5, /* a process mapped this file executable (ld.so, dlopen) */
};

/* A file, as the kernel names it: super block dev_t (MAJOR << 20 | MINOR) and inode. */
struct hdrtap_file_key {
	__u64 dev;
	__u64 ino;
};

struct hdrtap_file_event {
	__u16 kind;      /* enum hdrtap_file_event_kind */
	__u16 _pad0;
	__u32 tgid;      /* the process that exec'd or mapped it */
	struct hdrtap_file_key file;
};

/* Filter keys: a comm as a map key (zero-padded). */
struct hdrtap_comm_key {
	char comm[HDRTAP_COMM_LEN];
};

/* Layout pins (the Rust side asserts the same numbers). */
#define HDRTAP_TUPLE_SIZE 40
#define HDRTAP_EVENT_HDR_SIZE 32
#define HDRTAP_DATA_EVENT_SIZE 144
#define HDRTAP_CLOSE_EVENT_SIZE 48
#define HDRTAP_FILE_EVENT_SIZE 24

_Static_assert(sizeof(struct hdrtap_tuple) == HDRTAP_TUPLE_SIZE, "tuple size");
_Static_assert(sizeof(struct hdrtap_event_hdr) == HDRTAP_EVENT_HDR_SIZE, "hdr size");
_Static_assert(sizeof(struct hdrtap_data_event) == HDRTAP_DATA_EVENT_SIZE, "data event size");
_Static_assert(sizeof(struct hdrtap_close_event) == HDRTAP_CLOSE_EVENT_SIZE, "close event size");
_Static_assert(sizeof(struct hdrtap_file_event) == HDRTAP_FILE_EVENT_SIZE, "file event size");
_Static_assert(__builtin_offsetof(struct hdrtap_data_event, tls_lib) == 74, "tls_lib offset");
_Static_assert(__builtin_offsetof(struct hdrtap_data_event, pos) == HDRTAP_EVENT_HDR_SIZE, "pos offset");
_Static_assert(__builtin_offsetof(struct hdrtap_data_event, comm) == 80, "comm offset");
_Static_assert(__builtin_offsetof(struct hdrtap_data_event, tuple) == 96, "tuple offset");
_Static_assert(__builtin_offsetof(struct hdrtap_data_event, tcp_seq) == 76, "tcp_seq offset");
_Static_assert(__builtin_offsetof(struct hdrtap_data_event, sock_cookie) == 136, "sock_cookie offset");
_Static_assert((HDRTAP_CHUNK_MAX & (HDRTAP_CHUNK_MAX - 1)) == 0, "chunk is a power of two");

/* ========================================================================
 * Packets (`hdrtap packets`): bpf/net/packets.bpf.c, one object with a tc
 * ingress, a tc egress, an XDP and a socket-filter program sharing one
 * header parser (bpf/lib/pkt.bpf.h), one filter and one ring buffer.
 *
 * The kernel copies the first `snaplen` bytes of each accepted packet into a
 * hdrtap_pkt_event; userspace decodes every header field from those bytes.
 * The kernel parses only what the filter needs (hdrtap_pf_field).
 * ======================================================================== */

/* Event kind of a packet record (hdrtap_event_hdr.kind). */
enum hdrtap_pkt_event_kind {
	HDRTAP_EV_PACKET = 3,
};

/* Largest and default --snaplen (bytes of each packet copied). */
#define HDRTAP_PKT_SNAPLEN_MAX 512
#define HDRTAP_PKT_SNAPLEN_DEFAULT 256
/*
 * The same for `hdrtap http --source packets` (l7_mode): TCP payload is
 * reassembled in userspace, so a segment is copied whole up to this, a
 * GRO/GSO super-packet included. The ring record is sized to the copy
 * (one of four sizes, l7_reserve in bpf/net/packets.bpf.c), not to the
 * largest one.
 */
#define HDRTAP_PKT_L7_SNAPLEN_MAX 65535
#define HDRTAP_PKT_L7_SNAPLEN_DEFAULT 65535

/* VLAN tags the kernel parser looks through (an offloaded tag counts). */
#define HDRTAP_PKT_VLAN_MAX 2
/* IPv6 extension headers the kernel parser walks before giving up. */
#define HDRTAP_PKT_IPV6_EXT_MAX 8

/* Which program saw the packet (hdrtap_pkt_event.hook). */
enum hdrtap_pkt_hook {
	HDRTAP_HOOK_TC = 1,     /* tc (TCX link or clsact filter), ingress or egress */
	HDRTAP_HOOK_XDP = 2,    /* XDP, ingress only */
	HDRTAP_HOOK_SOCKET = 3, /* socket filter on an AF_PACKET socket */
};

/* Direction of a packet relative to the interface (hdrtap_pkt_event.dir). */
enum hdrtap_pkt_dir {
	HDRTAP_PKT_IN = 0,  /* received on the interface */
	HDRTAP_PKT_OUT = 1, /* sent out of the interface */
};

/* How data[] starts (hdrtap_pkt_event.link). */
enum hdrtap_pkt_link {
	HDRTAP_LINK_ETHER = 0,  /* Ethernet header (also lo and veth) */
	HDRTAP_LINK_RAW_IP = 1, /* no link header: IPv4 or IPv6 (tun, wireguard) */
};

/* How the owning process was found (hdrtap_pkt_event.owner). */
enum hdrtap_pkt_owner {
	HDRTAP_OWNER_NONE = 0,   /* unknown: tgid, tid and comm are 0 */
	HDRTAP_OWNER_SKB_SK = 1, /* the packet's own socket (skb->sk, egress) */
	HDRTAP_OWNER_LOOKUP = 2, /* the local TCP socket found by a tuple lookup (ingress) */
};

/* Flags on a packet event (hdrtap_pkt_event.flags). */
enum hdrtap_pkt_flags {
	/* cap_len < wire_len: the packet was longer than --snaplen. */
	HDRTAP_PKT_F_SNAPPED = 1 << 0,
	/* The outer VLAN tag was offloaded to metadata (vlan_tci, vlan_proto)
	 * and is not in data[]; it belongs right after the MAC addresses. */
	HDRTAP_PKT_F_VLAN_ACCEL = 1 << 1,
	/* The kernel parser found a header invalid or cut short. */
	HDRTAP_PKT_F_MALFORMED = 1 << 2,
	/* A non-first IP fragment: no transport header. */
	HDRTAP_PKT_F_FRAGMENT = 1 << 3,
	/* The parser stopped at HDRTAP_PKT_VLAN_MAX or HDRTAP_PKT_IPV6_EXT_MAX. */
	HDRTAP_PKT_F_PARSE_LIMIT = 1 << 4,
	/* Copying the packet bytes failed: cap_len is 0. */
	HDRTAP_PKT_F_LOAD_FAILED = 1 << 5,
};

/*
 * HDRTAP_EV_PACKET: one packet as seen by one hook, its first cap_len bytes
 * in data[]. The common header's fields mean: tgid/tid: the owning process
 * and thread when known (owner != NONE), else 0; fd: -1; ts_ns: when the
 * program ran (bpf_ktime_get_ns); conn_id: the socket cookie of the owning
 * socket, or 0.
 */
struct hdrtap_pkt_event {
	struct hdrtap_event_hdr hdr;
	__u32 ifindex;    /* interface the hook is attached to */
	__u32 wire_len;   /* packet length (skb->len; XDP: frame length) */
	__u16 cap_len;    /* bytes in data[] (<= HDRTAP_PKT_SNAPLEN_MAX) */
	__u16 flags;      /* enum hdrtap_pkt_flags */
	__u8 hook;        /* enum hdrtap_pkt_hook */
	__u8 dir;         /* enum hdrtap_pkt_dir */
	__u8 link;        /* enum hdrtap_pkt_link */
	__u8 owner;       /* enum hdrtap_pkt_owner */
	__u16 vlan_tci;   /* offloaded outer tag (HDRTAP_PKT_F_VLAN_ACCEL): PCP, DEI, VID */
	__u16 vlan_proto; /* its TPID, host order (0x8100 or 0x88a8) */
	__u16 protocol;   /* skb->protocol, host order; 0 for XDP */
	__u16 _pad0;
	__u64 cgroup_id;  /* owning task's cgroup v2 id when known, else 0 */
	char comm[HDRTAP_COMM_LEN]; /* owning thread's name when known */
	__u8 data[];      /* cap_len bytes from the start of the packet */
};

/*
 * Packet counters: a per-CPU array of __u64 indexed by this enum (the
 * packets object's own `counters` map). Every packet a program runs on ends
 * in exactly one of FILTERED, SAMPLED_OUT, EVENTS or RINGBUF_DROPS.
 */
enum hdrtap_pkt_counter {
	HDRTAP_PCTR_SEEN = 0,      /* packets the programs ran on */
	HDRTAP_PCTR_FILTERED,      /* rejected by the filter expression or --direction */
	HDRTAP_PCTR_SAMPLED_OUT,   /* accepted, then skipped by --sample */
	HDRTAP_PCTR_EVENTS,        /* events written to the ring buffer */
	HDRTAP_PCTR_RINGBUF_DROPS, /* events lost: ring buffer full */
	HDRTAP_PCTR_SNAPPED,       /* events with cap_len < wire_len */
	HDRTAP_PCTR_MALFORMED,     /* packets the kernel parser flagged malformed (it parses when a filter is set, and incoming packets for process attribution) */
	HDRTAP_PCTR_LOAD_FAILS,    /* failed copies of packet bytes */
	HDRTAP_PCTR_OWNER_KNOWN,   /* events with the owning process attached */
	HDRTAP_PCTR_BYTES,         /* packet bytes copied into events */
	HDRTAP_PCTR_MAX,
};

/*
 * The kernel-side filter: a tcpdump-style expression compiled by userspace
 * (crates/hdrtap-core/src/filter) into a postfix program over the fields the
 * kernel parser extracts. The kernel runs it with a stack of booleans kept
 * as bits of one __u64 (at most 64 deep; the compiler checks). An empty
 * program (len 0) accepts everything. A test of a field the packet does not
 * have (ports of an ARP packet, ...) pushes false.
 */
#define HDRTAP_PF_MAX_INSNS 64

enum hdrtap_pf_op {
	HDRTAP_PF_OP_CMP = 1,   /* push (field & mask) == value */
	HDRTAP_PF_OP_ANY = 2,   /* push (field & mask) != 0 */
	HDRTAP_PF_OP_RANGE = 3, /* push value[0] <= field <= mask[0] (integer fields) */
	HDRTAP_PF_OP_AND = 4,   /* pop b, pop a, push a && b */
	HDRTAP_PF_OP_OR = 5,    /* pop b, pop a, push a || b */
	HDRTAP_PF_OP_NOT = 6,   /* pop a, push !a */
	HDRTAP_PF_OP_TRUE = 7,  /* push true */
};

/*
 * Fields the kernel parser extracts. Integers are host order in value[0]
 * (value[1] = 0). Addresses are the 16 bytes in network order, IPv4 (and
 * ARP's IPv4 addresses) as ::ffff:a.b.c.d, viewed as two native-endian
 * __u64 (bytes 0-7, 8-15): CMP with a prefix mask is a CIDR match.
 */
enum hdrtap_pf_field {
	HDRTAP_PF_ETHERTYPE = 1,  /* EtherType after the VLAN tags (raw IP links: 0x0800/0x86dd) */
	HDRTAP_PF_VLAN_COUNT = 2, /* VLAN tags (offloaded one included), up to HDRTAP_PKT_VLAN_MAX */
	HDRTAP_PF_VLAN_OUTER = 3, /* VID of the outer tag */
	HDRTAP_PF_VLAN_INNER = 4, /* VID of the second tag */
	HDRTAP_PF_L4_PROTO = 5,   /* IPv4 protocol / IPv6 last next header (after extension headers) */
	HDRTAP_PF_SRC_ADDR = 6,   /* IPv4/IPv6 source; ARP sender protocol address */
	HDRTAP_PF_DST_ADDR = 7,   /* IPv4/IPv6 destination; ARP target protocol address */
	HDRTAP_PF_SRC_PORT = 8,   /* TCP/UDP source port (not on non-first fragments) */
	HDRTAP_PF_DST_PORT = 9,   /* TCP/UDP destination port */
	HDRTAP_PF_TCP_FLAGS = 10, /* TCP flags byte (FIN 0x01 ... CWR 0x80) */
	HDRTAP_PF_ICMP_TYPE = 11, /* ICMP (IPv4) or ICMPv6 type */
	HDRTAP_PF_ICMP_CODE = 12, /* ICMP (IPv4) or ICMPv6 code */
	HDRTAP_PF_FIELD_MAX = 13,
};

struct hdrtap_pf_insn {
	__u8 op;         /* enum hdrtap_pf_op */
	__u8 field;      /* enum hdrtap_pf_field (CMP, ANY, RANGE) */
	__u8 family;     /* address fields: 4 or 6 = the packet's family must match; 0 = any */
	__u8 _pad0[5];
	__u64 value[2];  /* CMP/ANY: bits to compare; RANGE: value[0] = low bound */
	__u64 mask[2];   /* CMP/ANY: mask; RANGE: mask[0] = high bound */
};

/* The whole program: the single value of the `pf_prog` array map. */
struct hdrtap_pf_prog {
	__u32 len;       /* instructions in use; 0 = accept everything */
	__u32 _pad0;
	struct hdrtap_pf_insn insns[HDRTAP_PF_MAX_INSNS];
};

/* A socket's owner, recorded from process context (kernel-internal map value). */
struct hdrtap_sock_owner {
	__u32 tgid;
	__u32 tid;
	char comm[HDRTAP_COMM_LEN];
	__u64 cgroup_id;
};

#define HDRTAP_PKT_EVENT_SIZE 80
#define HDRTAP_PF_INSN_SIZE 40
#define HDRTAP_PF_PROG_SIZE (8 + HDRTAP_PF_MAX_INSNS * HDRTAP_PF_INSN_SIZE)

_Static_assert(sizeof(struct hdrtap_pkt_event) == HDRTAP_PKT_EVENT_SIZE, "packet event size");
_Static_assert(__builtin_offsetof(struct hdrtap_pkt_event, ifindex) == HDRTAP_EVENT_HDR_SIZE, "ifindex offset");
_Static_assert(__builtin_offsetof(struct hdrtap_pkt_event, cgroup_id) == 56, "packet cgroup_id offset");
_Static_assert(__builtin_offsetof(struct hdrtap_pkt_event, comm) == 64, "packet comm offset");
_Static_assert(sizeof(struct hdrtap_pf_insn) == HDRTAP_PF_INSN_SIZE, "filter insn size");
_Static_assert(sizeof(struct hdrtap_pf_prog) == HDRTAP_PF_PROG_SIZE, "filter prog size");
_Static_assert((HDRTAP_PKT_SNAPLEN_MAX & (HDRTAP_PKT_SNAPLEN_MAX - 1)) == 0, "snaplen max is a power of two");
_Static_assert((HDRTAP_PF_MAX_INSNS & (HDRTAP_PF_MAX_INSNS - 1)) == 0, "insn max is a power of two");

#endif /* HDRTAP_ABI_H */
