//! The Rust reference of the kernel's packet parser (`bpf/lib/pkt.bpf.h`):
//! the same fields, the same limits, the same rules for what is present.
//! `crates/hdrtap-bpf/tests/packets_prog_run.rs` runs the real programs over
//! crafted packets and checks that the kernel's filter verdicts agree with
//! [`super::eval`] over these fields.
//!
//! A load in the kernel (`bpf_skb_load_bytes`) fails when it would read
//! past the end of the packet; [`Loader`] does the same over `data`.

use hdrtap_abi as abi;

/// What the kernel parser extracts from one packet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fields {
    /// Source/destination address as the kernel's two words (IPv4 as
    /// ::ffff:a.b.c.d).
    pub src: [u64; 2],
    pub dst: [u64; 2],
    /// Bit `1 << field` for each `enum hdrtap_pf_field` that has a value.
    pub present: u32,
    pub ethertype: u16,
    pub sport: u16,
    pub dport: u16,
    pub vlan_outer: u16,
    pub vlan_inner: u16,
    /// `enum hdrtap_pkt_flags` the parser sets (MALFORMED, FRAGMENT, PARSE_LIMIT).
    pub flags: u16,
    pub vlan_count: u8,
    pub l4_proto: u8,
    pub tcp_flags: u8,
    pub icmp_type: u8,
    pub icmp_code: u8,
    /// 4 or 6 when addresses are set.
    pub family: u8,
}

impl Fields {
    /// Whether `field` (`enum hdrtap_pf_field`) has a value.
    pub fn has(&self, field: u32) -> bool {
        field < 32 && self.present & (1 << field) != 0
    }

    /// The value of `field` as the kernel's (lo, hi) words.
    pub fn get(&self, field: u32) -> Option<(u64, u64)> {
        if !self.has(field) {
            return None;
        }
        Some(match field {
            abi::HDRTAP_PF_ETHERTYPE => (self.ethertype.into(), 0),
            abi::HDRTAP_PF_VLAN_COUNT => (self.vlan_count.into(), 0),
            abi::HDRTAP_PF_VLAN_OUTER => (self.vlan_outer.into(), 0),
            abi::HDRTAP_PF_VLAN_INNER => (self.vlan_inner.into(), 0),
            abi::HDRTAP_PF_L4_PROTO => (self.l4_proto.into(), 0),
            abi::HDRTAP_PF_SRC_ADDR => (self.src[0], self.src[1]),
            abi::HDRTAP_PF_DST_ADDR => (self.dst[0], self.dst[1]),
            abi::HDRTAP_PF_SRC_PORT => (self.sport.into(), 0),
            abi::HDRTAP_PF_DST_PORT => (self.dport.into(), 0),
            abi::HDRTAP_PF_TCP_FLAGS => (self.tcp_flags.into(), 0),
            abi::HDRTAP_PF_ICMP_TYPE => (self.icmp_type.into(), 0),
            abi::HDRTAP_PF_ICMP_CODE => (self.icmp_code.into(), 0),
            _ => return None,
        })
    }

    fn set(&mut self, field: u32) {
        self.present |= 1 << field;
    }

    fn flag(&mut self, f: u32) {
        self.flags |= f as u16;
    }
}

/// Reads that fail past the end, like bpf_skb_load_bytes.
struct Loader<'a>(&'a [u8]);

impl Loader<'_> {
    fn load<const N: usize>(&self, off: usize) -> Option<[u8; N]> {
        self.0.get(off..off.checked_add(N)?)?.try_into().ok()
    }
}

fn mapped4(a: [u8; 4]) -> [u64; 2] {
    super::parser::addr_words(std::net::IpAddr::V4(a.into())).0
}

fn words16(a: [u8; 16]) -> [u64; 2] {
    super::parser::addr_words(std::net::IpAddr::V6(a.into())).0
}

/// Extract the kernel parser's fields from a whole packet. `link`:
/// `enum hdrtap_pkt_link`; `accel_tci`: an offloaded outer VLAN tag;
/// `protocol`: skb->protocol for raw-IP links (0: from the IP version).
pub fn extract(data: &[u8], link: u8, accel_tci: Option<u16>, protocol: u16) -> Fields {
    let mut f = Fields::default();
    let ld = Loader(data);
    let mut off = 0usize;
    let mut proto;
    if u32::from(link) == abi::HDRTAP_LINK_RAW_IP {
        proto = protocol;
        if proto == 0 {
            let Some([b]) = ld.load::<1>(0) else {
                f.flag(abi::HDRTAP_PKT_F_MALFORMED);
                return f;
            };
            proto = if b >> 4 == 6 { 0x86dd } else { 0x0800 };
        }
    } else {
        let Some(eth) = ld.load::<14>(0) else {
            f.flag(abi::HDRTAP_PKT_F_MALFORMED);
            return f;
        };
        proto = u16::from_be_bytes([eth[12], eth[13]]);
        off = 14;
    }
    if let Some(tci) = accel_tci {
        f.vlan_outer = tci & 0x0fff;
        f.vlan_count = 1;
        f.set(abi::HDRTAP_PF_VLAN_OUTER);
    }
    for _ in 0..abi::HDRTAP_PKT_VLAN_MAX + 1 {
        if !matches!(proto, 0x8100 | 0x88a8 | 0x9100) {
            break;
        }
        if u32::from(f.vlan_count) >= abi::HDRTAP_PKT_VLAN_MAX {
            f.flag(abi::HDRTAP_PKT_F_PARSE_LIMIT);
            break;
        }
        let Some(b) = ld.load::<4>(off) else {
            f.flag(abi::HDRTAP_PKT_F_MALFORMED);
            break;
        };
        let vid = u16::from_be_bytes([b[0], b[1]]) & 0x0fff;
        if f.vlan_count == 0 {
            f.vlan_outer = vid;
            f.set(abi::HDRTAP_PF_VLAN_OUTER);
        } else {
            f.vlan_inner = vid;
            f.set(abi::HDRTAP_PF_VLAN_INNER);
        }
        f.vlan_count += 1;
        proto = u16::from_be_bytes([b[2], b[3]]);
        off += 4;
    }
    f.ethertype = proto;
    f.set(abi::HDRTAP_PF_ETHERTYPE);
    f.set(abi::HDRTAP_PF_VLAN_COUNT);
    if f.flags & (abi::HDRTAP_PKT_F_MALFORMED | abi::HDRTAP_PKT_F_PARSE_LIMIT) as u16 != 0 {
        return f;
    }
    match proto {
        0x0800 => ipv4(&ld, off, &mut f),
        0x86dd => ipv6(&ld, off, &mut f),
        0x0806 => arp(&ld, off, &mut f),
        _ => {}
    }
    f
}

fn l4(ld: &Loader<'_>, off: usize, f: &mut Fields) {
    match (f.l4_proto, f.family) {
        (6, _) => {
            let Some(h) = ld.load::<14>(off) else {
                f.flag(abi::HDRTAP_PKT_F_MALFORMED);
                return;
            };
            f.sport = u16::from_be_bytes([h[0], h[1]]);
            f.dport = u16::from_be_bytes([h[2], h[3]]);
            f.tcp_flags = h[13];
            f.set(abi::HDRTAP_PF_SRC_PORT);
            f.set(abi::HDRTAP_PF_DST_PORT);
            f.set(abi::HDRTAP_PF_TCP_FLAGS);
            if h[12] >> 4 < 5 {
                f.flag(abi::HDRTAP_PKT_F_MALFORMED);
            }
        }
        (17, _) => {
            let Some(h) = ld.load::<8>(off) else {
                f.flag(abi::HDRTAP_PKT_F_MALFORMED);
                return;
            };
            f.sport = u16::from_be_bytes([h[0], h[1]]);
            f.dport = u16::from_be_bytes([h[2], h[3]]);
            f.set(abi::HDRTAP_PF_SRC_PORT);
            f.set(abi::HDRTAP_PF_DST_PORT);
        }
        (1, 4) | (58, 6) => {
            let Some(h) = ld.load::<2>(off) else {
                f.flag(abi::HDRTAP_PKT_F_MALFORMED);
                return;
            };
            f.icmp_type = h[0];
            f.icmp_code = h[1];
            f.set(abi::HDRTAP_PF_ICMP_TYPE);
            f.set(abi::HDRTAP_PF_ICMP_CODE);
        }
        _ => {}
    }
}

fn ipv4(ld: &Loader<'_>, off: usize, f: &mut Fields) {
    let Some(h) = ld.load::<20>(off) else {
        f.flag(abi::HDRTAP_PKT_F_MALFORMED);
        return;
    };
    let ihl = h[0] & 0x0f;
    if h[0] >> 4 != 4 || ihl < 5 {
        f.flag(abi::HDRTAP_PKT_F_MALFORMED);
        return;
    }
    f.family = 4;
    f.src = mapped4([h[12], h[13], h[14], h[15]]);
    f.dst = mapped4([h[16], h[17], h[18], h[19]]);
    f.l4_proto = h[9];
    f.set(abi::HDRTAP_PF_SRC_ADDR);
    f.set(abi::HDRTAP_PF_DST_ADDR);
    f.set(abi::HDRTAP_PF_L4_PROTO);
    if u16::from_be_bytes([h[6], h[7]]) & 0x1fff != 0 {
        f.flag(abi::HDRTAP_PKT_F_FRAGMENT);
        return;
    }
    l4(ld, off + usize::from(ihl) * 4, f);
}

fn ipv6(ld: &Loader<'_>, off: usize, f: &mut Fields) {
    let Some(h) = ld.load::<40>(off) else {
        f.flag(abi::HDRTAP_PKT_F_MALFORMED);
        return;
    };
    if h[0] >> 4 != 6 {
        f.flag(abi::HDRTAP_PKT_F_MALFORMED);
        return;
    }
    let mut a = [0u8; 16];
    f.family = 6;
    a.copy_from_slice(&h[8..24]);
    f.src = words16(a);
    a.copy_from_slice(&h[24..40]);
    f.dst = words16(a);
    f.set(abi::HDRTAP_PF_SRC_ADDR);
    f.set(abi::HDRTAP_PF_DST_ADDR);
    f.set(abi::HDRTAP_PF_L4_PROTO);
    let mut nh = h[6];
    let mut off = off + 40;
    for _ in 0..abi::HDRTAP_PKT_IPV6_EXT_MAX {
        match nh {
            0 | 43 | 60 | 51 => {
                let Some(e) = ld.load::<2>(off) else {
                    f.l4_proto = nh;
                    f.flag(abi::HDRTAP_PKT_F_MALFORMED);
                    return;
                };
                off += if nh == 51 {
                    (usize::from(e[1]) + 2) * 4
                } else {
                    (usize::from(e[1]) + 1) * 8
                };
                nh = e[0];
            }
            44 => {
                let Some(e) = ld.load::<8>(off) else {
                    f.l4_proto = nh;
                    f.flag(abi::HDRTAP_PKT_F_MALFORMED);
                    return;
                };
                nh = e[0];
                off += 8;
                if u16::from_be_bytes([e[2], e[3]]) >> 3 != 0 {
                    f.l4_proto = nh;
                    f.flag(abi::HDRTAP_PKT_F_FRAGMENT);
                    return;
                }
            }
            _ => {
                f.l4_proto = nh;
                l4(ld, off, f);
                return;
            }
        }
    }
    f.l4_proto = nh;
    f.flag(abi::HDRTAP_PKT_F_PARSE_LIMIT);
}

fn arp(ld: &Loader<'_>, off: usize, f: &mut Fields) {
    let Some(h) = ld.load::<8>(off) else {
        f.flag(abi::HDRTAP_PKT_F_MALFORMED);
        return;
    };
    if h[2] != 0x08 || h[3] != 0 || h[4] != 6 || h[5] != 4 {
        return;
    }
    let Some(h) = ld.load::<28>(off) else {
        f.flag(abi::HDRTAP_PKT_F_MALFORMED);
        return;
    };
    f.family = 4;
    f.src = mapped4([h[14], h[15], h[16], h[17]]);
    f.dst = mapped4([h[24], h[25], h[26], h[27]]);
    f.set(abi::HDRTAP_PF_SRC_ADDR);
    f.set(abi::HDRTAP_PF_DST_ADDR);
}
