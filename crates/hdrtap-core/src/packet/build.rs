//! Builders of packets for tests, fuzz seeds and the integration tests'
//! hand-made frames (VLAN, QinQ, IPv6 extension headers, malformed headers).
//! Lengths and the IPv4 header checksum are filled in; transport checksums
//! are computed over the pseudo-header so real stacks accept the packets.
use std::net::{Ipv4Addr, Ipv6Addr};

/// Network layer of a built frame.
#[derive(Debug, Clone)]
pub enum L3 {
    V4 {
        src: Ipv4Addr,
        dst: Ipv4Addr,
        ttl: u8,
        id: u16,
        df: bool,
        mf: bool,
        /// Fragment offset in bytes (multiple of 8).
        frag_offset: u16,
        tos: u8,
        /// IPv4 options (padded to 4 bytes).
        options: Vec<u8>,
        /// Override of the IHL nibble (malformed packets).
        ihl: Option<u8>,
        /// Override of the total length (malformed packets).
        total_len: Option<u16>,
    },
    V6 {
        src: Ipv6Addr,
        dst: Ipv6Addr,
        hop_limit: u8,
        traffic_class: u8,
        flow_label: u32,
        /// Extension headers in order: (protocol number, body after the
        /// next-header/length bytes). Fragment headers: (44, 6 bytes).
        ext: Vec<(u8, Vec<u8>)>,
    },
    Arp {
        op: u16,
        sha: [u8; 6],
        spa: Ipv4Addr,
        tha: [u8; 6],
        tpa: Ipv4Addr,
    },
    /// Any other EtherType with its bytes.
    Other { ethertype: u16, body: Vec<u8> },
}

/// Transport layer of a built frame.
#[derive(Debug, Clone)]
pub enum L4 {
    Tcp {
        sport: u16,
        dport: u16,
        seq: u32,
        ack: u32,
        flags: u8,
        window: u16,
        urg: u16,
        options: Vec<u8>,
    },
    Udp {
        sport: u16,
        dport: u16,
    },
    /// ICMP (IPv4) or ICMPv6 (IPv6), by the network layer.
    Icmp {
        icmp_type: u8,
        code: u8,
        id: u16,
        seq: u16,
    },
    /// A bare protocol number and its bytes.
    Raw {
        proto: u8,
        body: Vec<u8>,
    },
    None,
}

/// A whole Ethernet frame.
#[derive(Debug, Clone)]
pub struct FrameSpec {
    pub dst: [u8; 6],
    pub src: [u8; 6],
    /// VLAN tags, outermost first: (TPID, TCI).
    pub vlans: Vec<(u16, u16)>,
    pub l3: L3,
    pub l4: L4,
    pub payload: Vec<u8>,
}

impl FrameSpec {
    /// A TCP/IPv4 frame between two addresses.
    pub fn tcp4(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, flags: u8) -> Self {
        FrameSpec {
            dst: [2, 0, 0, 0, 0, 2],
            src: [2, 0, 0, 0, 0, 1],
            vlans: vec![],
            l3: L3::V4 {
                src,
                dst,
                ttl: 64,
                id: 1,
                df: true,
                mf: false,
                frag_offset: 0,
                tos: 0,
                options: vec![],
                ihl: None,
                total_len: None,
            },
            l4: L4::Tcp {
                sport,
                dport,
                seq: 1000,
                ack: 0,
                flags,
                window: 65535,
                urg: 0,
                options: vec![],
            },
            payload: vec![],
        }
    }

    /// A UDP/IPv6 frame.
    pub fn udp6(src: Ipv6Addr, dst: Ipv6Addr, sport: u16, dport: u16) -> Self {
        FrameSpec {
            dst: [2, 0, 0, 0, 0, 2],
            src: [2, 0, 0, 0, 0, 1],
            vlans: vec![],
            l3: L3::V6 {
                src,
                dst,
                hop_limit: 64,
                traffic_class: 0,
                flow_label: 0,
                ext: vec![],
            },
            l4: L4::Udp { sport, dport },
            payload: vec![],
        }
    }
}

fn sum16(data: &[u8], mut acc: u32) -> u32 {
    for c in data.chunks(2) {
        let w = match c {
            [a, b] => u16::from_be_bytes([*a, *b]),
            [a] => u16::from_be_bytes([*a, 0]),
            _ => 0,
        };
        acc += u32::from(w);
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// The Internet checksum of `data`.
pub fn checksum(data: &[u8]) -> u16 {
    fold(sum16(data, 0))
}

fn l4_bytes(l4: &L4, payload: &[u8], v6: bool) -> (u8, Vec<u8>, Option<usize>) {
    match l4 {
        L4::Tcp {
            sport,
            dport,
            seq,
            ack,
            flags,
            window,
            urg,
            options,
        } => {
            let mut opts = options.clone();
            while opts.len() % 4 != 0 {
                opts.push(1); // NOP padding
            }
            let doff = ((20 + opts.len()) / 4) as u8;
            let mut b = Vec::new();
            b.extend(sport.to_be_bytes());
            b.extend(dport.to_be_bytes());
            b.extend(seq.to_be_bytes());
            b.extend(ack.to_be_bytes());
            b.push(doff << 4);
            b.push(*flags);
            b.extend(window.to_be_bytes());
            b.extend([0, 0]);
            b.extend(urg.to_be_bytes());
            b.extend(opts);
            b.extend_from_slice(payload);
            (6, b, Some(16))
        }
        L4::Udp { sport, dport } => {
            let mut b = Vec::new();
            b.extend(sport.to_be_bytes());
            b.extend(dport.to_be_bytes());
            b.extend(((8 + payload.len()) as u16).to_be_bytes());
            b.extend([0, 0]);
            b.extend_from_slice(payload);
            (17, b, Some(6))
        }
        L4::Icmp {
            icmp_type,
            code,
            id,
            seq,
        } => {
            let mut b = vec![*icmp_type, *code, 0, 0];
            b.extend(id.to_be_bytes());
            b.extend(seq.to_be_bytes());
            b.extend_from_slice(payload);
            if v6 {
                (58, b, Some(2))
            } else {
                let c = checksum(&b);
                if let Some(s) = b.get_mut(2..4) {
                    s.copy_from_slice(&c.to_be_bytes());
                }
                (1, b, None)
            }
        }
        L4::Raw { proto, body } => {
            let mut b = body.clone();
            b.extend_from_slice(payload);
            (*proto, b, None)
        }
        L4::None => (59, payload.to_vec(), None),
    }
}

/// Build the frame's bytes.
pub fn build(spec: &FrameSpec) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend(spec.dst);
    f.extend(spec.src);
    let ethertype = match &spec.l3 {
        L3::V4 { .. } => 0x0800u16,
        L3::V6 { .. } => 0x86dd,
        L3::Arp { .. } => 0x0806,
        L3::Other { ethertype, .. } => *ethertype,
    };
    // The Ethernet type field holds the first tag's TPID; each tag's own
    // type field holds the next one's, the last the real EtherType.
    f.extend(
        spec.vlans
            .first()
            .map(|(t, _)| *t)
            .unwrap_or(ethertype)
            .to_be_bytes(),
    );
    for (i, (_, tci)) in spec.vlans.iter().enumerate() {
        f.extend(tci.to_be_bytes());
        let next = spec.vlans.get(i + 1).map(|(t, _)| *t).unwrap_or(ethertype);
        f.extend(next.to_be_bytes());
    }
    match &spec.l3 {
        L3::V4 {
            src,
            dst,
            ttl,
            id,
            df,
            mf,
            frag_offset,
            tos,
            options,
            ihl,
            total_len,
        } => {
            let mut opts = options.clone();
            while opts.len() % 4 != 0 {
                opts.push(0);
            }
            let (proto, mut l4, ck_at) = l4_bytes(&spec.l4, &spec.payload, false);
            let hlen = 20 + opts.len();
            let total = (hlen + l4.len()) as u16;
            if let Some(at) = ck_at {
                let mut pseudo = Vec::new();
                pseudo.extend(src.octets());
                pseudo.extend(dst.octets());
                pseudo.extend([0, proto]);
                pseudo.extend((l4.len() as u16).to_be_bytes());
                let c = fold(sum16(&l4, sum16(&pseudo, 0)));
                if let Some(s) = l4.get_mut(at..at + 2) {
                    s.copy_from_slice(&c.to_be_bytes());
                }
            }
            let mut h = Vec::new();
            h.push(0x40 | ihl.unwrap_or((hlen / 4) as u8));
            h.push(*tos);
            h.extend(total_len.unwrap_or(total).to_be_bytes());
            h.extend(id.to_be_bytes());
            let fo =
                (frag_offset / 8) | if *df { 0x4000 } else { 0 } | if *mf { 0x2000 } else { 0 };
            h.extend(fo.to_be_bytes());
            h.push(*ttl);
            h.push(proto);
            h.extend([0, 0]);
            h.extend(src.octets());
            h.extend(dst.octets());
            h.extend(opts);
            let c = checksum(&h);
            if let Some(s) = h.get_mut(10..12) {
                s.copy_from_slice(&c.to_be_bytes());
            }
            f.extend(h);
            f.extend(l4);
        }
        L3::V6 {
            src,
            dst,
            hop_limit,
            traffic_class,
            flow_label,
            ext,
        } => {
            let (proto, mut l4, ck_at) = l4_bytes(&spec.l4, &spec.payload, true);
            if let Some(at) = ck_at {
                let mut pseudo = Vec::new();
                pseudo.extend(src.octets());
                pseudo.extend(dst.octets());
                pseudo.extend((l4.len() as u32).to_be_bytes());
                pseudo.extend([0, 0, 0, proto]);
                let c = fold(sum16(&l4, sum16(&pseudo, 0)));
                if let Some(s) = l4.get_mut(at..at + 2) {
                    s.copy_from_slice(&c.to_be_bytes());
                }
            }
            let mut chain = Vec::new();
            for (i, (p, body)) in ext.iter().enumerate() {
                let next = ext.get(i + 1).map(|(n, _)| *n).unwrap_or(proto);
                chain.push(next);
                match p {
                    44 => chain.push(0),
                    51 => chain.push(((body.len() + 2) / 4).saturating_sub(2) as u8),
                    _ => chain.push(((body.len() + 2) / 8).saturating_sub(1) as u8),
                }
                chain.extend(body);
            }
            let first = ext.first().map(|(p, _)| *p).unwrap_or(proto);
            let w0: u32 = 6 << 28 | u32::from(*traffic_class) << 20 | (flow_label & 0xfffff);
            f.extend(w0.to_be_bytes());
            f.extend(((chain.len() + l4.len()) as u16).to_be_bytes());
            f.push(first);
            f.push(*hop_limit);
            f.extend(src.octets());
            f.extend(dst.octets());
            f.extend(chain);
            f.extend(l4);
        }
        L3::Arp {
            op,
            sha,
            spa,
            tha,
            tpa,
        } => {
            f.extend([0, 1, 8, 0, 6, 4]);
            f.extend(op.to_be_bytes());
            f.extend(sha);
            f.extend(spa.octets());
            f.extend(tha);
            f.extend(tpa.octets());
        }
        L3::Other { body, .. } => f.extend(body),
    }
    f
}

/// IPv6 extension-header body of `n` bytes after next/len (a multiple of 8
/// minus 2): PadN options.
pub fn pad_options(len: usize) -> Vec<u8> {
    let mut b = Vec::with_capacity(len);
    if len >= 2 {
        b.push(1);
        b.push((len - 2) as u8);
        b.resize(len, 0);
    } else {
        b.resize(len, 0);
    }
    b
}

/// A fragment header body: offset in bytes, more flag, id.
pub fn fragment(offset: u16, more: bool, id: u32) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(((offset / 8) << 3 | u16::from(more)).to_be_bytes());
    b.extend(id.to_be_bytes());
    b
}
