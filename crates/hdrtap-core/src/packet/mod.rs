//! Packet headers, L2–L4: the bytes a packet hook copied, decoded into a
//! [`PacketRecord`] with every field (Ethernet, stacked VLAN tags, ARP,
//! IPv4, IPv6 and its extension-header chain, TCP with options, UDP, ICMP,
//! ICMPv6). The JSON shape is in docs/SCHEMA.md (`kind: "packet"`).
//!
//! The bytes are untrusted: every read is checked ([`decode_frame`] never
//! panics, indexes or unwraps), and what cannot be decoded is flagged
//! (`truncated`, `malformed`, `fragment`) instead of guessed.
//!
//! ```
//! use hdrtap_core::packet::{decode_frame, Link};
//! // Ethernet + IPv4 + UDP 1234 -> 53, 8 bytes of payload
//! let mut f = vec![0u8; 12];
//! f.extend([0x08, 0x00, 0x45, 0, 0, 36, 0, 1, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
//! f.extend([0x04, 0xd2, 0, 53, 0, 16, 0, 0]);
//! f.extend([0u8; 8]);
//! let h = decode_frame(&f, Link::Ether, None, 0, f.len() as u32);
//! assert_eq!(h.udp.unwrap().dport, 53);
//! assert!(h.flags.is_empty());
//! ```

#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

pub mod build;
mod format;
#[cfg(test)]
mod tests;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use crate::record::CompactString;
use hdrtap_abi::{self as abi, PacketEvent};
use serde::Serialize;

pub(crate) use format::{push_flow, push_record_json_memo};
pub use format::{record_json, record_line};

/// Anomalies a packet record can carry (JSON `flags`, omitted when empty).
pub mod flag {
    /// The packet was longer than `--snaplen`: only its first `cap_len`
    /// bytes were copied.
    pub const SNAPPED: &str = "snapped";
    /// A header runs past the captured bytes (snaplen or a short packet):
    /// fields of that header and those after it are missing.
    pub const TRUNCATED: &str = "truncated";
    /// A header field is invalid (IPv4 IHL < 5, a length past the end of
    /// the packet, TCP data offset < 5, a bad option or extension header).
    pub const MALFORMED: &str = "malformed";
    /// A non-first IP fragment: there is no transport header to decode.
    pub const FRAGMENT: &str = "fragment";
    /// The outer VLAN tag was in the packet's metadata (offloaded) and has
    /// been put back after the MAC addresses, as libpcap does.
    pub const VLAN_OFFLOADED: &str = "vlan_offloaded";
    /// The kernel could not copy the packet's bytes.
    pub const NO_DATA: &str = "no_data";
}

/// How captured bytes start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Ethernet header (Ethernet, veth, loopback).
    Ether,
    /// Straight IPv4/IPv6 (tun, wireguard).
    RawIp,
}

/// The hook that saw the packet.
pub use hdrtap_abi::Hook;

/// Direction relative to the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dir {
    /// Received on the interface.
    In,
    /// Sent out of the interface.
    Out,
}

impl Dir {
    pub fn name(self) -> &'static str {
        match self {
            Dir::In => "in",
            Dir::Out => "out",
        }
    }
}

/// A MAC address, shown as `aa:bb:cc:dd:ee:ff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mac(pub [u8; 6]);

impl std::fmt::Display for Mac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl Serialize for Mac {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Ethernet header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Eth {
    pub src: Mac,
    pub dst: Mac,
    /// The EtherType field of the Ethernet header itself (0x8100/0x88a8
    /// when the frame is tagged; each tag carries the next one).
    #[serde(rename = "type")]
    pub ethertype: u16,
}

/// One 802.1Q / 802.1ad tag, outermost first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Vlan {
    /// Tag protocol identifier: 0x8100 (802.1Q), 0x88a8 (802.1ad), 0x9100.
    pub tpid: u16,
    pub vid: u16,
    pub pcp: u8,
    pub dei: bool,
    /// EtherType of what follows the tag.
    #[serde(rename = "type")]
    pub ethertype: u16,
}

/// ARP (Ethernet/IPv4 addresses decoded; others leave them out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Arp {
    pub htype: u16,
    pub ptype: u16,
    pub hlen: u8,
    pub plen: u8,
    /// 1 request, 2 reply (3/4 RARP).
    pub op: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender_mac: Option<Mac>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender_ip: Option<Ipv4Addr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_mac: Option<Mac>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_ip: Option<Ipv4Addr>,
}

/// IPv4 header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ipv4 {
    pub version: u8,
    /// Header length in 32-bit words.
    pub ihl: u8,
    pub dscp: u8,
    pub ecn: u8,
    pub total_len: u16,
    pub id: u16,
    pub df: bool,
    pub mf: bool,
    /// Fragment offset in bytes (the header field × 8).
    pub frag_offset: u16,
    pub ttl: u8,
    pub protocol: u8,
    pub checksum: u16,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    /// IHL > 5: the header carries options.
    pub options: bool,
}

/// One IPv6 extension header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ipv6Ext {
    /// `hop_by_hop`, `routing`, `fragment`, `dest_opts` or `auth`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Protocol number of this header (0, 43, 44, 60, 51).
    pub proto: u8,
    pub next_header: u8,
    /// Length in bytes.
    pub len: u16,
    /// Routing header: routing type and segments left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing_type: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segments_left: Option<u8>,
    /// Fragment header: offset in bytes, more-fragments flag, identification.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frag_offset: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub more: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u32>,
}

/// IPv6 header and extension-header chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ipv6 {
    pub version: u8,
    pub traffic_class: u8,
    pub flow_label: u32,
    pub payload_len: u16,
    /// Next header of the fixed header.
    pub next_header: u8,
    pub hop_limit: u8,
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    /// Extension headers in order.
    pub ext: Vec<Ipv6Ext>,
    /// Protocol after the extension headers (the transport).
    pub protocol: u8,
}

/// TCP options decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TcpOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mss: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wscale: Option<u8>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub sack_permitted: bool,
    /// SACK blocks as [left edge, right edge].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sack: Vec<[u32; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ts_val: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ts_ecr: Option<u32>,
    /// Kinds of other options, in order (NOP and EOL not listed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other: Vec<u8>,
}

/// The TCP flags byte, shown as the names of the bits set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// Names of the set flags, FIN first.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        TCP_FLAG_NAMES
            .iter()
            .enumerate()
            .filter(move |(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, n)| *n)
    }
}

impl Serialize for TcpFlags {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.names())
    }
}

impl PartialEq<Vec<&str>> for TcpFlags {
    fn eq(&self, other: &Vec<&str>) -> bool {
        self.names().eq(other.iter().copied())
    }
}

/// TCP header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tcp {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    /// Header length in 32-bit words.
    pub data_offset: u8,
    /// Set flags by name: FIN SYN RST PSH ACK URG ECE CWR.
    pub flags: TcpFlags,
    pub window: u16,
    pub checksum: u16,
    pub urgent_ptr: u16,
    pub options: TcpOptions,
    /// Payload bytes (from the IP length, so exact even when not captured).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_len: Option<u32>,
}

/// UDP header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Udp {
    pub sport: u16,
    pub dport: u16,
    pub len: u16,
    pub checksum: u16,
}

/// ICMP or ICMPv6 header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Icmp {
    #[serde(rename = "type")]
    pub icmp_type: u8,
    pub code: u8,
    pub checksum: u16,
    /// Echo request/reply: identifier and sequence number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u16>,
}

/// Every header decoded from one packet's bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    pub eth: Option<Eth>,
    pub vlan: Vec<Vlan>,
    pub arp: Option<Arp>,
    pub ipv4: Option<Ipv4>,
    pub ipv6: Option<Ipv6>,
    pub tcp: Option<Tcp>,
    pub udp: Option<Udp>,
    pub icmp: Option<Icmp>,
    pub icmp6: Option<Icmp>,
    /// Anomalies, see [`flag`].
    pub flags: Vec<&'static str>,
}

impl Headers {
    fn flag(&mut self, f: &'static str) {
        if !self.flags.contains(&f) {
            self.flags.push(f);
        }
    }
}

/// The process that owns the packet's socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    pub tid: u32,
    /// Inline up to 24 bytes, as HTTP records' task names: no allocation.
    pub comm: CompactString,
    /// The task's cgroup v2 id (0 when the kernel did not say).
    pub cgroup_id: u64,
}

/// One packet as seen by one hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketRecord {
    /// Per-run record id, assigned when the record leaves the capture
    /// (JSON `id`; 0 until then).
    pub id: u64,
    /// Wall-clock time the hook ran, nanoseconds since the Unix epoch.
    pub ts_unix_ns: u64,
    pub hook: Hook,
    pub dir: Dir,
    pub ifindex: u32,
    /// Interface name: inline (an interface name is at most 15 bytes), so
    /// a record neither allocates it nor counts references to a shared one
    /// (two atomic operations a packet).
    pub ifname: CompactString,
    /// Packet length (with an offloaded VLAN tag put back: + 4).
    pub wire_len: u32,
    /// Bytes captured and decoded (likewise).
    pub cap_len: u32,
    pub owner: Option<Owner>,
    /// Socket cookie of the packet's socket (0 when unknown).
    pub sock_cookie: u64,
    pub headers: Headers,
    /// The unit, container and pod the owner's cgroup names, when looked
    /// up ([`crate::pipeline::PacketPipeline::with_cgroups`]).
    pub workload: Option<Arc<crate::cgroup::Workload>>,
    /// The captured bytes themselves, kept only for outputs that write
    /// packets (pcapng: `hdrtap packets -w`); see [`frame_of`].
    pub frame: Option<Frame>,
}

/// A packet's captured bytes as a capture file holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// How the bytes start (a capture file's link type).
    pub link: Link,
    /// The first `cap_len` bytes of the packet, an offloaded VLAN tag put
    /// back where it was on the wire.
    pub bytes: Box<[u8]>,
}

/// The frame `ev` carries, as the wire had it: the kernel hands a VLAN tag
/// the NIC took off (HDRTAP_PKT_F_VLAN_ACCEL) beside the bytes, and it goes
/// back after the two MAC addresses, as [`PacketRecord::wire_len`] counts it.
pub fn frame_of(ev: &PacketEvent<'_>) -> Frame {
    let link = if u32::from(ev.link) == abi::HDRTAP_LINK_RAW_IP {
        Link::RawIp
    } else {
        Link::Ether
    };
    let bytes = match ev.data.split_at_checked(12) {
        Some((macs, rest)) if link == Link::Ether && ev.has_flag(abi::HDRTAP_PKT_F_VLAN_ACCEL) => {
            let mut b = Vec::with_capacity(ev.data.len() + 4);
            b.extend_from_slice(macs);
            b.extend_from_slice(&ev.vlan_proto.to_be_bytes());
            b.extend_from_slice(&ev.vlan_tci.to_be_bytes());
            b.extend_from_slice(rest);
            b.into_boxed_slice()
        }
        _ => ev.data.into(),
    };
    Frame { link, bytes }
}

/// Decode a ring-buffer packet event. `ifname` names `ev.ifindex`;
/// `clock_offset_ns` maps the kernel's monotonic clock to wall-clock time.
pub fn decode_event(ev: &PacketEvent<'_>, ifname: &str, clock_offset_ns: i64) -> PacketRecord {
    let mut rec = PacketRecord::blank(ifname.into());
    fill_event(&mut rec, ev, clock_offset_ns);
    rec
}

/// [`decode_event`] straight into the `Arc` the sinks share: the record
/// is decoded where it will stay, not built on the stack and moved there
/// (three moves of several hundred bytes each, about 200 instructions a
/// packet under callgrind). `finish` completes it in the same place: one
/// uniqueness check of the new `Arc` (an atomic operation) for both.
pub fn decode_event_arc(
    ev: &PacketEvent<'_>,
    ifname: CompactString,
    clock_offset_ns: i64,
    finish: impl FnOnce(&mut PacketRecord),
) -> Arc<PacketRecord> {
    let mut rec = Arc::new(PacketRecord::blank(ifname));
    // A new Arc has no other reference: get_mut always succeeds.
    if let Some(r) = Arc::get_mut(&mut rec) {
        fill_event(r, ev, clock_offset_ns);
        finish(r);
    }
    rec
}

impl PacketRecord {
    /// A record with no headers, no owner and zero counts, to be filled.
    fn blank(ifname: CompactString) -> Self {
        PacketRecord {
            id: 0,
            ts_unix_ns: 0,
            hook: Hook::Tc,
            dir: Dir::In,
            ifindex: 0,
            ifname,
            wire_len: 0,
            cap_len: 0,
            owner: None,
            sock_cookie: 0,
            headers: Headers::default(),
            workload: None,
            frame: None,
        }
    }
}

/// Fill a [`PacketRecord::blank`] record from `ev`.
fn fill_event(rec: &mut PacketRecord, ev: &PacketEvent<'_>, clock_offset_ns: i64) {
    let link = if u32::from(ev.link) == abi::HDRTAP_LINK_RAW_IP {
        Link::RawIp
    } else {
        Link::Ether
    };
    let accel = ev
        .has_flag(abi::HDRTAP_PKT_F_VLAN_ACCEL)
        .then_some((ev.vlan_proto, ev.vlan_tci));
    let headers = &mut rec.headers;
    decode_frame_into(headers, ev.data, link, accel, ev.protocol, ev.wire_len);
    let extra = if accel.is_some() && link == Link::Ether && ev.data.len() >= 12 {
        4
    } else {
        0
    };
    if ev.has_flag(abi::HDRTAP_PKT_F_SNAPPED) {
        headers.flag(flag::SNAPPED);
    }
    if ev.has_flag(abi::HDRTAP_PKT_F_LOAD_FAILED) {
        headers.flag(flag::NO_DATA);
    }
    rec.owner = (u32::from(ev.owner) != abi::HDRTAP_OWNER_NONE && ev.tgid != 0).then(|| Owner {
        pid: ev.tgid,
        tid: ev.tid,
        comm: crate::record::comm_text(&ev.comm),
        cgroup_id: ev.cgroup_id,
    });
    rec.ts_unix_ns = (ev.ts_ns as i64).saturating_add(clock_offset_ns).max(0) as u64;
    // decode_packet refused any other byte.
    rec.hook = Hook::from_raw(ev.hook).unwrap_or(Hook::Tc);
    rec.dir = if u32::from(ev.dir) == abi::HDRTAP_PKT_OUT {
        Dir::Out
    } else {
        Dir::In
    };
    rec.ifindex = ev.ifindex;
    rec.wire_len = ev.wire_len.saturating_add(extra);
    rec.cap_len = (ev.data.len() as u32).saturating_add(extra);
    rec.sock_cookie = ev.sock_cookie;
}

// ---- checked big-endian reads --------------------------------------------

fn u8_at(b: &[u8], off: usize) -> Option<u8> {
    b.get(off).copied()
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    let s = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_be_bytes(s.try_into().ok()?))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_be_bytes(s.try_into().ok()?))
}

fn arr_at<const N: usize>(b: &[u8], off: usize) -> Option<[u8; N]> {
    b.get(off..off.checked_add(N)?)?.try_into().ok()
}

/// Is this EtherType a VLAN tag's TPID?
pub fn is_vlan_tpid(t: u16) -> bool {
    matches!(t, 0x8100 | 0x88a8 | 0x9100)
}

/// Most VLAN tags and IPv6 extension headers decoded before giving up.
const MAX_VLAN_TAGS: usize = 8;
const MAX_IPV6_EXT: usize = 16;

/// Decode `data`, the first bytes of a packet of `wire_len` bytes.
/// `accel` is an offloaded outer VLAN tag (TPID, TCI) to put back after the
/// MAC addresses; `protocol` the skb protocol for raw-IP links (0: from the
/// IP version).
pub fn decode_frame(
    data: &[u8],
    link: Link,
    accel: Option<(u16, u16)>,
    protocol: u16,
    wire_len: u32,
) -> Headers {
    let mut h = Headers::default();
    decode_frame_into(&mut h, data, link, accel, protocol, wire_len);
    h
}

/// [`decode_frame`] into `h`, which is empty (`Headers::default()`).
fn decode_frame_into(
    h: &mut Headers,
    data: &[u8],
    link: Link,
    accel: Option<(u16, u16)>,
    protocol: u16,
    wire_len: u32,
) {
    let mut wire = wire_len as usize;
    let rebuilt;
    let data = match (accel, link) {
        (Some((tpid, tci)), Link::Ether) if data.len() >= 12 => {
            let mut v = Vec::with_capacity(data.len() + 4);
            v.extend_from_slice(data.get(..12).unwrap_or_default());
            v.extend_from_slice(&tpid.to_be_bytes());
            v.extend_from_slice(&tci.to_be_bytes());
            v.extend_from_slice(data.get(12..).unwrap_or_default());
            h.flag(flag::VLAN_OFFLOADED);
            wire = wire.saturating_add(4);
            rebuilt = v;
            rebuilt.as_slice()
        }
        _ => data,
    };
    let (proto, off) = match link {
        Link::Ether => {
            let (Some(dst), Some(src), Some(t)) =
                (arr_at::<6>(data, 0), arr_at::<6>(data, 6), u16_at(data, 12))
            else {
                h.flag(flag::TRUNCATED);
                return;
            };
            h.eth = Some(Eth {
                src: Mac(src),
                dst: Mac(dst),
                ethertype: t,
            });
            let mut proto = t;
            let mut off = 14usize;
            while is_vlan_tpid(proto) {
                if h.vlan.len() >= MAX_VLAN_TAGS {
                    h.flag(flag::MALFORMED);
                    return;
                }
                let (Some(tci), Some(next)) = (u16_at(data, off), u16_at(data, off + 2)) else {
                    h.flag(flag::TRUNCATED);
                    return;
                };
                h.vlan.push(Vlan {
                    tpid: proto,
                    vid: tci & 0x0fff,
                    pcp: (tci >> 13) as u8,
                    dei: tci & 0x1000 != 0,
                    ethertype: next,
                });
                proto = next;
                off += 4;
            }
            (proto, off)
        }
        Link::RawIp => {
            let p = match (protocol, u8_at(data, 0).map(|b| b >> 4)) {
                (p, _) if p != 0 => p,
                (_, Some(6)) => 0x86dd,
                (_, Some(_)) => 0x0800,
                (_, None) => {
                    h.flag(flag::TRUNCATED);
                    return;
                }
            };
            (p, 0)
        }
    };
    let rest = data.get(off..).unwrap_or_default();
    let wire_rest = wire.saturating_sub(off);
    match proto {
        0x0806 => decode_arp(rest, h),
        0x0800 => decode_ipv4(rest, wire_rest, h),
        0x86dd => decode_ipv6(rest, wire_rest, h),
        _ => {}
    }
}

fn decode_arp(b: &[u8], h: &mut Headers) {
    let (Some(htype), Some(ptype), Some(hlen), Some(plen), Some(op)) = (
        u16_at(b, 0),
        u16_at(b, 2),
        u8_at(b, 4),
        u8_at(b, 5),
        u16_at(b, 6),
    ) else {
        h.flag(flag::TRUNCATED);
        return;
    };
    let mut arp = Arp {
        htype,
        ptype,
        hlen,
        plen,
        op,
        sender_mac: None,
        sender_ip: None,
        target_mac: None,
        target_ip: None,
    };
    if hlen == 6 && plen == 4 && ptype == 0x0800 {
        match (
            arr_at::<6>(b, 8),
            arr_at::<4>(b, 14),
            arr_at::<6>(b, 18),
            arr_at::<4>(b, 24),
        ) {
            (Some(sm), Some(si), Some(tm), Some(ti)) => {
                arp.sender_mac = Some(Mac(sm));
                arp.sender_ip = Some(Ipv4Addr::from(si));
                arp.target_mac = Some(Mac(tm));
                arp.target_ip = Some(Ipv4Addr::from(ti));
            }
            _ => h.flag(flag::TRUNCATED),
        }
    }
    h.arp = Some(arp);
}

fn decode_ipv4(b: &[u8], wire: usize, h: &mut Headers) {
    let Some(hdr) = arr_at::<20>(b, 0) else {
        h.flag(flag::TRUNCATED);
        return;
    };
    let [b0, tos, tl0, tl1, id0, id1, fo0, fo1, ttl, protocol, ck0, ck1, s0, s1, s2, s3, d0, d1, d2, d3] =
        hdr;
    let ihl = b0 & 0x0f;
    let total_len = u16::from_be_bytes([tl0, tl1]);
    let fo = u16::from_be_bytes([fo0, fo1]);
    let ip = Ipv4 {
        version: b0 >> 4,
        ihl,
        dscp: tos >> 2,
        ecn: tos & 3,
        total_len,
        id: u16::from_be_bytes([id0, id1]),
        df: fo & 0x4000 != 0,
        mf: fo & 0x2000 != 0,
        frag_offset: (fo & 0x1fff).wrapping_mul(8),
        ttl,
        protocol,
        checksum: u16::from_be_bytes([ck0, ck1]),
        src: Ipv4Addr::new(s0, s1, s2, s3),
        dst: Ipv4Addr::new(d0, d1, d2, d3),
        options: ihl > 5,
    };
    h.ipv4 = Some(ip);
    let hlen = usize::from(ihl) * 4;
    if b0 >> 4 != 4 || ihl < 5 {
        h.flag(flag::MALFORMED);
        return;
    }
    let total = usize::from(total_len);
    // A total length of 0 is TSO's "look at the skb" (BIG TCP); else it
    // must cover the header and fit in the packet.
    if total != 0 && (total < hlen || total > wire) {
        h.flag(flag::MALFORMED);
    }
    if b.len() < hlen {
        h.flag(flag::TRUNCATED);
        return;
    }
    if fo & 0x1fff != 0 {
        h.flag(flag::FRAGMENT);
        return;
    }
    let end = if total >= hlen && total != 0 {
        total.min(b.len())
    } else {
        b.len()
    };
    let l4 = b.get(hlen..end).unwrap_or_default();
    let l4_wire = if total >= hlen && total != 0 {
        total - hlen
    } else {
        wire.saturating_sub(hlen)
    };
    decode_l4(protocol, 4, l4, l4_wire, h);
}

fn ext_name(nh: u8) -> Option<&'static str> {
    match nh {
        0 => Some("hop_by_hop"),
        43 => Some("routing"),
        44 => Some("fragment"),
        51 => Some("auth"),
        60 => Some("dest_opts"),
        _ => None,
    }
}

fn decode_ipv6(b: &[u8], wire: usize, h: &mut Headers) {
    let (Some(w0), Some(payload_len), Some(nh), Some(hop_limit), Some(src), Some(dst)) = (
        u32_at(b, 0),
        u16_at(b, 4),
        u8_at(b, 6),
        u8_at(b, 7),
        arr_at::<16>(b, 8),
        arr_at::<16>(b, 24),
    ) else {
        h.flag(flag::TRUNCATED);
        return;
    };
    let version = (w0 >> 28) as u8;
    let mut ip = Ipv6 {
        version,
        traffic_class: (w0 >> 20) as u8,
        flow_label: w0 & 0x000f_ffff,
        payload_len,
        next_header: nh,
        hop_limit,
        src: Ipv6Addr::from(src),
        dst: Ipv6Addr::from(dst),
        ext: Vec::new(),
        protocol: nh,
    };
    if version != 6 {
        h.flag(flag::MALFORMED);
        h.ipv6 = Some(ip);
        return;
    }
    let plen = usize::from(payload_len);
    if plen != 0 && plen > wire.saturating_sub(40) {
        h.flag(flag::MALFORMED);
    }
    // Bytes of this packet's IPv6 payload that were captured.
    let end = if plen != 0 {
        (40 + plen).min(b.len())
    } else {
        b.len()
    };
    let payload_wire = if plen != 0 {
        plen
    } else {
        wire.saturating_sub(40)
    };
    let mut off = 40usize;
    let mut nh = nh;
    let mut fragment = false;
    while let Some(kind) = ext_name(nh) {
        if ip.ext.len() >= MAX_IPV6_EXT {
            h.flag(flag::MALFORMED);
            break;
        }
        let (Some(next), Some(l)) = (u8_at(b, off), u8_at(b, off + 1)) else {
            h.flag(flag::TRUNCATED);
            break;
        };
        let len = match nh {
            44 => 8usize,
            51 => (usize::from(l) + 2) * 4,
            _ => (usize::from(l) + 1) * 8,
        };
        let mut e = Ipv6Ext {
            kind,
            proto: nh,
            next_header: next,
            len: len as u16,
            routing_type: None,
            segments_left: None,
            frag_offset: None,
            more: None,
            id: None,
        };
        match nh {
            43 => {
                e.routing_type = u8_at(b, off + 2);
                e.segments_left = u8_at(b, off + 3);
            }
            44 => {
                if let (Some(fo), Some(id)) = (u16_at(b, off + 2), u32_at(b, off + 4)) {
                    e.frag_offset = Some((fo >> 3).wrapping_mul(8));
                    e.more = Some(fo & 1 != 0);
                    e.id = Some(id);
                    fragment = fo >> 3 != 0;
                }
            }
            _ => {}
        }
        ip.ext.push(e);
        if off + len > 40 + payload_wire {
            h.flag(flag::MALFORMED);
            ip.protocol = next;
            h.ipv6 = Some(ip);
            return;
        }
        off += len;
        nh = next;
        if off > b.len() {
            h.flag(flag::TRUNCATED);
            ip.protocol = nh;
            h.ipv6 = Some(ip);
            return;
        }
        if fragment {
            break;
        }
    }
    ip.protocol = nh;
    h.ipv6 = Some(ip);
    if fragment {
        h.flag(flag::FRAGMENT);
        return;
    }
    if ext_name(nh).is_some() {
        return;
    }
    let l4 = b.get(off..end.max(off)).unwrap_or_default();
    let l4_wire = (40 + payload_wire).saturating_sub(off);
    decode_l4(nh, 6, l4, l4_wire, h);
}

/// Transport header in `b` (captured bytes of the IP payload, padding
/// removed); `wire` is the payload's length on the wire.
fn decode_l4(proto: u8, family: u8, b: &[u8], wire: usize, h: &mut Headers) {
    match (proto, family) {
        (6, _) => decode_tcp(b, wire, h),
        (17, _) => {
            let (Some(sport), Some(dport), Some(len), Some(checksum)) =
                (u16_at(b, 0), u16_at(b, 2), u16_at(b, 4), u16_at(b, 6))
            else {
                h.flag(flag::TRUNCATED);
                return;
            };
            if usize::from(len) < 8 || usize::from(len) > wire {
                h.flag(flag::MALFORMED);
            }
            h.udp = Some(Udp {
                sport,
                dport,
                len,
                checksum,
            });
        }
        (1, 4) | (58, 6) => {
            let (Some(t), Some(code), Some(checksum)) = (u8_at(b, 0), u8_at(b, 1), u16_at(b, 2))
            else {
                h.flag(flag::TRUNCATED);
                return;
            };
            let echo = if family == 4 {
                matches!(t, 0 | 8)
            } else {
                matches!(t, 128 | 129)
            };
            let (id, seq) = if echo {
                (u16_at(b, 4), u16_at(b, 6))
            } else {
                (None, None)
            };
            if echo && seq.is_none() {
                h.flag(flag::TRUNCATED);
            }
            let icmp = Icmp {
                icmp_type: t,
                code,
                checksum,
                id,
                seq,
            };
            if family == 4 {
                h.icmp = Some(icmp);
            } else {
                h.icmp6 = Some(icmp);
            }
        }
        _ => {}
    }
}

/// TCP flag names by bit, low to high.
pub const TCP_FLAG_NAMES: [&str; 8] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];

fn decode_tcp(b: &[u8], wire: usize, h: &mut Headers) {
    let Some(hdr) = arr_at::<20>(b, 0) else {
        h.flag(flag::TRUNCATED);
        return;
    };
    let [p0, p1, p2, p3, s0, s1, s2, s3, a0, a1, a2, a3, doff, fl, w0, w1, c0, c1, u0, u1] = hdr;
    let data_offset = doff >> 4;
    let mut tcp = Tcp {
        sport: u16::from_be_bytes([p0, p1]),
        dport: u16::from_be_bytes([p2, p3]),
        seq: u32::from_be_bytes([s0, s1, s2, s3]),
        ack: u32::from_be_bytes([a0, a1, a2, a3]),
        data_offset,
        flags: TcpFlags(fl),
        window: u16::from_be_bytes([w0, w1]),
        checksum: u16::from_be_bytes([c0, c1]),
        urgent_ptr: u16::from_be_bytes([u0, u1]),
        options: TcpOptions::default(),
        payload_len: None,
    };
    let hlen = usize::from(data_offset) * 4;
    if data_offset < 5 || hlen > wire {
        h.flag(flag::MALFORMED);
        h.tcp = Some(tcp);
        return;
    }
    tcp.payload_len = Some((wire - hlen) as u32);
    let opts = b.get(20..hlen.min(b.len())).unwrap_or_default();
    if b.len() < hlen {
        h.flag(flag::TRUNCATED);
    }
    if !decode_tcp_options(opts, b.len() < hlen, &mut tcp.options) {
        h.flag(flag::MALFORMED);
    }
    h.tcp = Some(tcp);
}

/// Decode TCP options; false when one is malformed (the rest is skipped).
/// `cut`: the capture ended inside the options, so running past the end of
/// `b` is truncation (flagged by the caller), not an error.
fn decode_tcp_options(b: &[u8], cut: bool, o: &mut TcpOptions) -> bool {
    let mut i = 0usize;
    while let Some(kind) = u8_at(b, i) {
        match kind {
            0 => return true,
            1 => {
                i += 1;
                continue;
            }
            _ => {}
        }
        let Some(len) = u8_at(b, i + 1).map(usize::from) else {
            return cut;
        };
        if len < 2 {
            return false;
        }
        let Some(body) = b.get(i + 2..i + len) else {
            return cut;
        };
        match (kind, len) {
            (2, 4) => o.mss = u16_at(body, 0),
            (3, 3) => o.wscale = u8_at(body, 0),
            (4, 2) => o.sack_permitted = true,
            (5, l) if l >= 10 && (l - 2) % 8 == 0 => {
                o.sack = body
                    .chunks_exact(8)
                    .filter_map(|c| Some([u32_at(c, 0)?, u32_at(c, 4)?]))
                    .collect();
            }
            (8, 10) => {
                o.ts_val = u32_at(body, 0);
                o.ts_ecr = u32_at(body, 4);
            }
            (2..=5 | 8, _) => return false,
            (k, _) => o.other.push(k),
        }
        i += len;
    }
    true
}

/// A tuple for display: the packet's addresses.
pub fn addresses(h: &Headers) -> Option<(IpAddr, IpAddr)> {
    if let Some(ip) = &h.ipv4 {
        return Some((IpAddr::V4(ip.src), IpAddr::V4(ip.dst)));
    }
    h.ipv6
        .as_ref()
        .map(|ip| (IpAddr::V6(ip.src), IpAddr::V6(ip.dst)))
}
