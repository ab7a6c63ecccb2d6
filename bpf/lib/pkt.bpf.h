/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * pkt.bpf.h — the kernel's packet header parser and filter, shared by the
 * tc, XDP and socket-filter programs of bpf/net/packets.bpf.c.
 *
 * The parser extracts only what the filter can test (enum hdrtap_pf_field):
 * EtherType, up to HDRTAP_PKT_VLAN_MAX VLAN IDs, addresses (IPv4, IPv6, ARP),
 * the transport protocol after the IPv6 extension-header chain, TCP/UDP
 * ports, TCP flags, ICMP/ICMPv6 type and code. Full decoding of every field
 * happens in userspace (crates/hdrtap-core/src/packet) from the bytes the
 * program copies; crates/hdrtap-core/src/filter/fields.rs is the Rust
 * reference of this parser, and crates/hdrtap-bpf/tests/packets_prog_run.rs
 * checks with BPF_PROG_TEST_RUN that both agree.
 *
 * Every read goes through pkt_load(): bpf_skb_load_bytes() or
 * bpf_xdp_load_bytes() into a fixed-size stack buffer. The helpers check the
 * offset against the packet, so a truncated or lying header (IHL < 5, an
 * extension header running past the end) fails the load and the packet is
 * flagged HDRTAP_PKT_F_MALFORMED with what was decoded so far — there is no
 * packet pointer arithmetic for the verifier to doubt. A rejected packet
 * costs about six helper calls and one filter run.
 */
#ifndef HDRTAP_PKT_BPF_H
#define HDRTAP_PKT_BPF_H

#define PKT_CTX_SKB 0 /* struct __sk_buff: tc and socket filter */
#define PKT_CTX_XDP 1 /* struct xdp_md */

#define ETH_P_IP 0x0800
#define ETH_P_ARP 0x0806
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define ETH_P_QINQ1 0x9100 /* pre-standard QinQ TPID */
#define ETH_P_IPV6 0x86DD

#define PKT_IPPROTO_HOPOPTS 0
#define PKT_IPPROTO_ICMP 1
#define PKT_IPPROTO_TCP 6
#define PKT_IPPROTO_UDP 17
#define PKT_IPPROTO_ROUTING 43
#define PKT_IPPROTO_FRAGMENT 44
#define PKT_IPPROTO_AH 51
#define PKT_IPPROTO_ICMPV6 58
#define PKT_IPPROTO_DSTOPTS 60

#define PF_BIT(f) (1U << (f))

/* What the parser found; the filter's view of a packet. */
struct pkt_info {
	__u64 src[2];      /* HDRTAP_PF_SRC_ADDR: 16 bytes, IPv4 as ::ffff:a.b.c.d */
	__u64 dst[2];      /* HDRTAP_PF_DST_ADDR */
	__u32 present;     /* PF_BIT(field) for each field that has a value */
	__u16 ethertype;
	__u16 sport;
	__u16 dport;
	__u16 vlan_outer;
	__u16 vlan_inner;
	__u16 flags;       /* enum hdrtap_pkt_flags found while parsing */
	__u8 vlan_count;
	__u8 l4_proto;
	__u8 tcp_flags;
	__u8 icmp_type;
	__u8 icmp_code;
	__u8 family;       /* 4 or 6 when addresses are set */
	__u8 _pad[2];
	__u32 ip_end;      /* TCP: offset where the IP datagram ends (its length field) */
	__u32 tcp_data;    /* TCP: offset of the payload (after the TCP header) */
};

static __always_inline int pkt_load(void *ctx, int kind, __u32 off, void *to, __u32 len)
{
	if (kind == PKT_CTX_XDP)
		return bpf_xdp_load_bytes(ctx, off, to, len);
	return bpf_skb_load_bytes(ctx, off, to, len);
}

/* 4 bytes of an IPv4 address as ::ffff:a.b.c.d in two native-endian words. */
static __always_inline void pkt_addr4(__u64 out[2], __u32 a_be)
{
	__u8 b[16] = {};

	b[10] = 0xff;
	b[11] = 0xff;
	__builtin_memcpy(&b[12], &a_be, 4);
	__builtin_memcpy(out, b, 16);
}

static __always_inline void pkt_addr6(__u64 out[2], const void *a)
{
	__builtin_memcpy(out, a, 16);
}

/* Transport header at off (not a non-first fragment). */
static __always_inline void pkt_parse_l4(void *ctx, int kind, __u32 off, struct pkt_info *pi)
{
	__u8 h[14];

	if (pi->l4_proto == PKT_IPPROTO_TCP) {
		/* ports(4) seq(4) ack(4) data offset(1) flags(1) */
		if (pkt_load(ctx, kind, off, h, 14)) {
			pi->flags |= HDRTAP_PKT_F_MALFORMED;
			return;
		}
		pi->sport = (__u16)h[0] << 8 | h[1];
		pi->dport = (__u16)h[2] << 8 | h[3];
		pi->tcp_flags = h[13];
		pi->tcp_data = off + (__u32)(h[12] >> 4) * 4;
		pi->present |= PF_BIT(HDRTAP_PF_SRC_PORT) | PF_BIT(HDRTAP_PF_DST_PORT) |
			       PF_BIT(HDRTAP_PF_TCP_FLAGS);
		if ((h[12] >> 4) < 5)
			pi->flags |= HDRTAP_PKT_F_MALFORMED;
	} else if (pi->l4_proto == PKT_IPPROTO_UDP) {
		if (pkt_load(ctx, kind, off, h, 8)) {
			pi->flags |= HDRTAP_PKT_F_MALFORMED;
			return;
		}
		pi->sport = (__u16)h[0] << 8 | h[1];
		pi->dport = (__u16)h[2] << 8 | h[3];
		pi->present |= PF_BIT(HDRTAP_PF_SRC_PORT) | PF_BIT(HDRTAP_PF_DST_PORT);
	} else if ((pi->l4_proto == PKT_IPPROTO_ICMP && pi->family == 4) ||
		   (pi->l4_proto == PKT_IPPROTO_ICMPV6 && pi->family == 6)) {
		if (pkt_load(ctx, kind, off, h, 2)) {
			pi->flags |= HDRTAP_PKT_F_MALFORMED;
			return;
		}
		pi->icmp_type = h[0];
		pi->icmp_code = h[1];
		pi->present |= PF_BIT(HDRTAP_PF_ICMP_TYPE) | PF_BIT(HDRTAP_PF_ICMP_CODE);
	}
}

static __always_inline void pkt_parse_ipv4(void *ctx, int kind, __u32 off, struct pkt_info *pi)
{
	__u8 h[20];
	__u32 a;
	__u16 frag;
	__u8 ihl;

	if (pkt_load(ctx, kind, off, h, 20)) {
		pi->flags |= HDRTAP_PKT_F_MALFORMED;
		return;
	}
	ihl = h[0] & 0x0f;
	if ((h[0] >> 4) != 4 || ihl < 5) {
		pi->flags |= HDRTAP_PKT_F_MALFORMED;
		return;
	}
	pi->family = 4;
	__builtin_memcpy(&a, &h[12], 4);
	pkt_addr4(pi->src, a);
	__builtin_memcpy(&a, &h[16], 4);
	pkt_addr4(pi->dst, a);
	pi->l4_proto = h[9];
	pi->present |= PF_BIT(HDRTAP_PF_SRC_ADDR) | PF_BIT(HDRTAP_PF_DST_ADDR) |
		       PF_BIT(HDRTAP_PF_L4_PROTO);
	/* 0 on a GSO packet past 64 KiB (BIG TCP): the packet's end then. */
	pi->ip_end = off + ((__u32)h[2] << 8 | h[3]);
	frag = ((__u16)h[6] << 8 | h[7]) & 0x1fff;
	if (frag) {
		pi->flags |= HDRTAP_PKT_F_FRAGMENT;
		return;
	}
	pkt_parse_l4(ctx, kind, off + ihl * 4, pi);
}

static __always_inline void pkt_parse_ipv6(void *ctx, int kind, __u32 off, struct pkt_info *pi)
{
	__u8 h[40];
	__u8 e[8];
	__u8 nh;
	int i;

	if (pkt_load(ctx, kind, off, h, 40)) {
		pi->flags |= HDRTAP_PKT_F_MALFORMED;
		return;
	}
	if ((h[0] >> 4) != 6) {
		pi->flags |= HDRTAP_PKT_F_MALFORMED;
		return;
	}
	pi->family = 6;
	/* 0 with a jumbogram (or BIG TCP): the packet's end then. */
	pi->ip_end = off + 40 + ((__u32)h[4] << 8 | h[5]);
	pkt_addr6(pi->src, &h[8]);
	pkt_addr6(pi->dst, &h[24]);
	pi->present |= PF_BIT(HDRTAP_PF_SRC_ADDR) | PF_BIT(HDRTAP_PF_DST_ADDR) |
		       PF_BIT(HDRTAP_PF_L4_PROTO);
	nh = h[6];
	off += 40;
	/* Walk hop-by-hop, routing, fragment, destination options and AH headers. */
#pragma unroll
	for (i = 0; i < HDRTAP_PKT_IPV6_EXT_MAX; i++) {
		if (nh == PKT_IPPROTO_HOPOPTS || nh == PKT_IPPROTO_ROUTING ||
		    nh == PKT_IPPROTO_DSTOPTS) {
			if (pkt_load(ctx, kind, off, e, 2)) {
				pi->l4_proto = nh;
				pi->flags |= HDRTAP_PKT_F_MALFORMED;
				return;
			}
			nh = e[0];
			off += ((__u32)e[1] + 1) * 8;
		} else if (nh == PKT_IPPROTO_AH) {
			if (pkt_load(ctx, kind, off, e, 2)) {
				pi->l4_proto = nh;
				pi->flags |= HDRTAP_PKT_F_MALFORMED;
				return;
			}
			nh = e[0];
			off += ((__u32)e[1] + 2) * 4;
		} else if (nh == PKT_IPPROTO_FRAGMENT) {
			/* next(1) reserved(1) offset+flags(2) id(4) */
			if (pkt_load(ctx, kind, off, e, 8)) {
				pi->l4_proto = nh;
				pi->flags |= HDRTAP_PKT_F_MALFORMED;
				return;
			}
			nh = e[0];
			off += 8;
			if ((((__u16)e[2] << 8 | e[3]) >> 3) != 0) {
				pi->l4_proto = nh;
				pi->flags |= HDRTAP_PKT_F_FRAGMENT;
				return;
			}
		} else {
			pi->l4_proto = nh;
			pkt_parse_l4(ctx, kind, off, pi);
			return;
		}
	}
	/* Still in the extension-header chain after HDRTAP_PKT_IPV6_EXT_MAX. */
	pi->l4_proto = nh;
	pi->flags |= HDRTAP_PKT_F_PARSE_LIMIT;
}

static __always_inline void pkt_parse_arp(void *ctx, int kind, __u32 off, struct pkt_info *pi)
{
	/* htype(2) ptype(2) hlen(1) plen(1) op(2) sha(6) spa(4) tha(6) tpa(4) */
	__u8 h[28];
	__u32 a;

	if (pkt_load(ctx, kind, off, h, 8)) {
		pi->flags |= HDRTAP_PKT_F_MALFORMED;
		return;
	}
	/* Addresses only for Ethernet/IPv4 ARP, the only kind with this layout. */
	if (h[2] != 0x08 || h[3] != 0x00 || h[4] != 6 || h[5] != 4)
		return;
	if (pkt_load(ctx, kind, off, h, 28)) {
		pi->flags |= HDRTAP_PKT_F_MALFORMED;
		return;
	}
	pi->family = 4;
	__builtin_memcpy(&a, &h[14], 4);
	pkt_addr4(pi->src, a);
	__builtin_memcpy(&a, &h[24], 4);
	pkt_addr4(pi->dst, a);
	pi->present |= PF_BIT(HDRTAP_PF_SRC_ADDR) | PF_BIT(HDRTAP_PF_DST_ADDR);
}

/*
 * Parse a packet. link: enum hdrtap_pkt_link. accel_tci/accel: an outer VLAN
 * tag offloaded to metadata (not in the data). protocol: skb->protocol in
 * host order (raw-IP links; 0 for XDP, where the IP version decides).
 */
static __always_inline void pkt_parse(void *ctx, int kind, __u8 link, int accel, __u16 accel_tci,
				      __u16 protocol, struct pkt_info *pi)
{
	__u32 off = 0;
	__u16 proto;
	__u8 b[4];
	int i;

	if (link == HDRTAP_LINK_RAW_IP) {
		proto = protocol;
		if (proto == 0) {
			if (pkt_load(ctx, kind, 0, b, 1)) {
				pi->flags |= HDRTAP_PKT_F_MALFORMED;
				return;
			}
			proto = (b[0] >> 4) == 6 ? ETH_P_IPV6 : ETH_P_IP;
		}
	} else {
		__u8 eth[14];

		if (pkt_load(ctx, kind, 0, eth, 14)) {
			pi->flags |= HDRTAP_PKT_F_MALFORMED;
			return;
		}
		proto = (__u16)eth[12] << 8 | eth[13];
		off = 14;
	}
	if (accel) {
		pi->vlan_outer = accel_tci & 0x0fff;
		pi->vlan_count = 1;
		pi->present |= PF_BIT(HDRTAP_PF_VLAN_OUTER);
	}
#pragma unroll
	for (i = 0; i < HDRTAP_PKT_VLAN_MAX + 1; i++) {
		if (proto != ETH_P_8021Q && proto != ETH_P_8021AD && proto != ETH_P_QINQ1)
			break;
		if (pi->vlan_count >= HDRTAP_PKT_VLAN_MAX) {
			pi->flags |= HDRTAP_PKT_F_PARSE_LIMIT;
			break;
		}
		/* TCI(2) inner EtherType(2) */
		if (pkt_load(ctx, kind, off, b, 4)) {
			pi->flags |= HDRTAP_PKT_F_MALFORMED;
			break;
		}
		if (pi->vlan_count == 0) {
			pi->vlan_outer = ((__u16)b[0] << 8 | b[1]) & 0x0fff;
			pi->present |= PF_BIT(HDRTAP_PF_VLAN_OUTER);
		} else {
			pi->vlan_inner = ((__u16)b[0] << 8 | b[1]) & 0x0fff;
			pi->present |= PF_BIT(HDRTAP_PF_VLAN_INNER);
		}
		pi->vlan_count++;
		proto = (__u16)b[2] << 8 | b[3];
		off += 4;
	}
	pi->ethertype = proto;
	pi->present |= PF_BIT(HDRTAP_PF_ETHERTYPE) | PF_BIT(HDRTAP_PF_VLAN_COUNT);
	if (pi->flags & (HDRTAP_PKT_F_MALFORMED | HDRTAP_PKT_F_PARSE_LIMIT))
		return;
	if (proto == ETH_P_IP)
		pkt_parse_ipv4(ctx, kind, off, pi);
	else if (proto == ETH_P_IPV6)
		pkt_parse_ipv6(ctx, kind, off, pi);
	else if (proto == ETH_P_ARP)
		pkt_parse_arp(ctx, kind, off, pi);
}

/* ---- the filter ------------------------------------------------------ */

struct pf_run {
	struct pkt_info pi;
	__u64 stack;     /* booleans, top of stack in bit 0 */
	__u32 len;
};

/* One instruction's test of one field: 1 true, 0 false. */
static __always_inline __u64 pf_test(const struct hdrtap_pf_insn *in, const struct pkt_info *pi)
{
	__u64 lo = 0, hi = 0;
	__u8 field = in->field;

	if (field >= HDRTAP_PF_FIELD_MAX || !(pi->present & PF_BIT(field)))
		return 0;
	switch (field) {
	case HDRTAP_PF_ETHERTYPE:
		lo = pi->ethertype;
		break;
	case HDRTAP_PF_VLAN_COUNT:
		lo = pi->vlan_count;
		break;
	case HDRTAP_PF_VLAN_OUTER:
		lo = pi->vlan_outer;
		break;
	case HDRTAP_PF_VLAN_INNER:
		lo = pi->vlan_inner;
		break;
	case HDRTAP_PF_L4_PROTO:
		lo = pi->l4_proto;
		break;
	case HDRTAP_PF_SRC_ADDR:
		if (in->family && in->family != pi->family)
			return 0;
		lo = pi->src[0];
		hi = pi->src[1];
		break;
	case HDRTAP_PF_DST_ADDR:
		if (in->family && in->family != pi->family)
			return 0;
		lo = pi->dst[0];
		hi = pi->dst[1];
		break;
	case HDRTAP_PF_SRC_PORT:
		lo = pi->sport;
		break;
	case HDRTAP_PF_DST_PORT:
		lo = pi->dport;
		break;
	case HDRTAP_PF_TCP_FLAGS:
		lo = pi->tcp_flags;
		break;
	case HDRTAP_PF_ICMP_TYPE:
		lo = pi->icmp_type;
		break;
	case HDRTAP_PF_ICMP_CODE:
		lo = pi->icmp_code;
		break;
	default:
		return 0;
	}
	switch (in->op) {
	case HDRTAP_PF_OP_CMP:
		return (lo & in->mask[0]) == in->value[0] && (hi & in->mask[1]) == in->value[1];
	case HDRTAP_PF_OP_ANY:
		return (lo & in->mask[0]) != 0 || (hi & in->mask[1]) != 0;
	case HDRTAP_PF_OP_RANGE:
		return lo >= in->value[0] && lo <= in->mask[0];
	}
	return 0;
}

#endif /* HDRTAP_PKT_BPF_H */
