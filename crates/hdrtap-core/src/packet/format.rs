//! Packet records as NDJSON (docs/SCHEMA.md, `kind: "packet"`) and as one
//! readable line in the spirit of tcpdump's.
use std::fmt::Write as _;

#[cfg(test)]
use serde::Serialize;

use super::*;
#[cfg(test)]
use crate::output::rfc3339_ns;
use crate::output::{time_of_day, JsonMemo};

/// The record as serde sees it: the reference the hand-written writer is
/// tested against (tests only).
#[cfg(test)]
#[derive(Serialize)]
struct JsonPacket<'a> {
    kind: &'static str,
    id: u64,
    ts: String,
    hook: &'static str,
    dir: Dir,
    ifname: &'a str,
    ifindex: u32,
    wire_len: u32,
    cap_len: u32,
    pid: Option<u32>,
    tid: Option<u32>,
    comm: Option<&'a str>,
    #[serde(skip_serializing_if = "is_zero")]
    cgroup_id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cgroup: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unit: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    container_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    container_runtime: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pod_uid: Option<&'a str>,
    #[serde(skip_serializing_if = "is_zero")]
    sock_cookie: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    eth: Option<&'a Eth>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    vlan: &'a [Vlan],
    #[serde(skip_serializing_if = "Option::is_none")]
    arp: Option<&'a Arp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ipv4: Option<&'a Ipv4>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ipv6: Option<&'a Ipv6>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp: Option<&'a Tcp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    udp: Option<&'a Udp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp: Option<&'a Icmp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp6: Option<&'a Icmp>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    flags: &'a [&'static str],
}

#[cfg(test)]
fn is_zero(v: &u64) -> bool {
    *v == 0
}

#[cfg(test)]
fn json_view(rec: &PacketRecord) -> JsonPacket<'_> {
    let h = &rec.headers;
    JsonPacket {
        kind: "packet",
        id: rec.id,
        ts: rfc3339_ns(rec.ts_unix_ns),
        hook: rec.hook.name(),
        dir: rec.dir,
        ifname: &rec.ifname,
        ifindex: rec.ifindex,
        wire_len: rec.wire_len,
        cap_len: rec.cap_len,
        pid: rec.owner.as_ref().map(|o| o.pid),
        tid: rec.owner.as_ref().map(|o| o.tid),
        comm: rec.owner.as_ref().map(|o| o.comm.as_str()),
        cgroup_id: rec.owner.as_ref().map_or(0, |o| o.cgroup_id),
        cgroup: rec.workload.as_ref().map(|w| w.cgroup.as_str()),
        unit: rec.workload.as_ref().and_then(|w| w.unit.as_deref()),
        container_id: rec
            .workload
            .as_ref()
            .and_then(|w| w.container_id.as_deref()),
        container_runtime: rec.workload.as_ref().and_then(|w| w.container_runtime),
        pod_uid: rec.workload.as_ref().and_then(|w| w.pod_uid.as_deref()),
        sock_cookie: rec.sock_cookie,
        eth: h.eth.as_ref(),
        vlan: &h.vlan,
        arp: h.arp.as_ref(),
        ipv4: h.ipv4.as_ref(),
        ipv6: h.ipv6.as_ref(),
        tcp: h.tcp.as_ref(),
        udp: h.udp.as_ref(),
        icmp: h.icmp.as_ref(),
        icmp6: h.icmp6.as_ref(),
        flags: &h.flags,
    }
}

/// The JSON object of one packet record (without newline), through serde:
/// the reference [`push_record_json`] is tested against.
#[cfg(test)]
pub fn record_json_serde(rec: &PacketRecord) -> String {
    serde_json::to_string(&json_view(rec)).unwrap_or_default()
}

/// The JSON object of one packet record (without newline).
pub fn record_json(rec: &PacketRecord) -> String {
    let mut out = Vec::with_capacity(512);
    push_record_json(&mut out, rec);
    String::from_utf8(out).unwrap_or_default()
}

// ---- hand-written JSON ----------------------------------------------------
//
// serde_json spent most of its time escaping strings that never need it
// (keys, addresses) and formatting MACs through core::fmt; then small
// copies of keys of unknown length (perf, hdrtap packets on lo under HTTP
// load). Here every key is a literal with its punctuation (`,"key":`), so
// its copy has a constant length and compiles to a few moves. The bytes are
// the same as serde's: tests compare with `record_json_serde`.

/// `,"name":` — a key after the first of an object.
macro_rules! k {
    ($out:expr, $name:literal) => {
        $out.extend_from_slice(concat!(",\"", $name, "\":").as_bytes())
    };
}

/// `{"name":` — open an object with its first key.
macro_rules! k0 {
    ($out:expr, $name:literal) => {
        $out.extend_from_slice(concat!("{\"", $name, "\":").as_bytes())
    };
}

fn num(out: &mut Vec<u8>, n: impl Into<u64>) {
    crate::output::push_u64(out, n.into());
}

fn boolean(out: &mut Vec<u8>, b: bool) {
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn push_mac(out: &mut Vec<u8>, m: &Mac) {
    let mut b = [b':'; 19];
    b[0] = b'"';
    b[18] = b'"';
    for (i, x) in m.0.iter().enumerate() {
        if let Some([hi, lo]) = b.get_mut(1 + i * 3..3 + i * 3) {
            *hi = HEX.get(usize::from(x >> 4)).copied().unwrap_or(b'0');
            *lo = HEX.get(usize::from(x & 15)).copied().unwrap_or(b'0');
        }
    }
    out.extend_from_slice(&b);
}

fn push_v4(out: &mut Vec<u8>, a: &std::net::Ipv4Addr) {
    out.push(b'"');
    crate::output::push_ipv4(out, a.octets());
    out.push(b'"');
}

fn push_v6(out: &mut Vec<u8>, a: &std::net::Ipv6Addr) {
    use std::io::Write as _;
    // Writing into a Vec cannot fail.
    let _ = write!(out, "\"{a}\"");
}

fn push_eth(out: &mut Vec<u8>, e: &Eth) {
    k0!(out, "src");
    push_mac(out, &e.src);
    k!(out, "dst");
    push_mac(out, &e.dst);
    k!(out, "type");
    num(out, e.ethertype);
    out.push(b'}');
}

fn push_vlan(out: &mut Vec<u8>, v: &Vlan) {
    k0!(out, "tpid");
    num(out, v.tpid);
    k!(out, "vid");
    num(out, v.vid);
    k!(out, "pcp");
    num(out, v.pcp);
    k!(out, "dei");
    boolean(out, v.dei);
    k!(out, "type");
    num(out, v.ethertype);
    out.push(b'}');
}

fn push_arp(out: &mut Vec<u8>, a: &Arp) {
    k0!(out, "htype");
    num(out, a.htype);
    k!(out, "ptype");
    num(out, a.ptype);
    k!(out, "hlen");
    num(out, a.hlen);
    k!(out, "plen");
    num(out, a.plen);
    k!(out, "op");
    num(out, a.op);
    if let Some(m) = &a.sender_mac {
        k!(out, "sender_mac");
        push_mac(out, m);
    }
    if let Some(ip) = &a.sender_ip {
        k!(out, "sender_ip");
        push_v4(out, ip);
    }
    if let Some(m) = &a.target_mac {
        k!(out, "target_mac");
        push_mac(out, m);
    }
    if let Some(ip) = &a.target_ip {
        k!(out, "target_ip");
        push_v4(out, ip);
    }
    out.push(b'}');
}

fn push_ipv4(out: &mut Vec<u8>, ip: &Ipv4) {
    k0!(out, "version");
    num(out, ip.version);
    k!(out, "ihl");
    num(out, ip.ihl);
    k!(out, "dscp");
    num(out, ip.dscp);
    k!(out, "ecn");
    num(out, ip.ecn);
    k!(out, "total_len");
    num(out, ip.total_len);
    k!(out, "id");
    num(out, ip.id);
    k!(out, "df");
    boolean(out, ip.df);
    k!(out, "mf");
    boolean(out, ip.mf);
    k!(out, "frag_offset");
    num(out, ip.frag_offset);
    k!(out, "ttl");
    num(out, ip.ttl);
    k!(out, "protocol");
    num(out, ip.protocol);
    k!(out, "checksum");
    num(out, ip.checksum);
    k!(out, "src");
    push_v4(out, &ip.src);
    k!(out, "dst");
    push_v4(out, &ip.dst);
    k!(out, "options");
    boolean(out, ip.options);
    out.push(b'}');
}

fn push_ipv6(out: &mut Vec<u8>, ip: &Ipv6) {
    k0!(out, "version");
    num(out, ip.version);
    k!(out, "traffic_class");
    num(out, ip.traffic_class);
    k!(out, "flow_label");
    num(out, ip.flow_label);
    k!(out, "payload_len");
    num(out, ip.payload_len);
    k!(out, "next_header");
    num(out, ip.next_header);
    k!(out, "hop_limit");
    num(out, ip.hop_limit);
    k!(out, "src");
    push_v6(out, &ip.src);
    k!(out, "dst");
    push_v6(out, &ip.dst);
    k!(out, "ext");
    out.push(b'[');
    for (i, e) in ip.ext.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        k0!(out, "type");
        out.push(b'"');
        out.extend_from_slice(e.kind.as_bytes());
        out.push(b'"');
        k!(out, "proto");
        num(out, e.proto);
        k!(out, "next_header");
        num(out, e.next_header);
        k!(out, "len");
        num(out, e.len);
        if let Some(v) = e.routing_type {
            k!(out, "routing_type");
            num(out, v);
        }
        if let Some(v) = e.segments_left {
            k!(out, "segments_left");
            num(out, v);
        }
        if let Some(v) = e.frag_offset {
            k!(out, "frag_offset");
            num(out, v);
        }
        if let Some(v) = e.more {
            k!(out, "more");
            boolean(out, v);
        }
        if let Some(v) = e.id {
            k!(out, "id");
            num(out, v);
        }
        out.push(b'}');
    }
    out.push(b']');
    k!(out, "protocol");
    num(out, ip.protocol);
    out.push(b'}');
}

/// The JSON array of set TCP flag names (`["SYN","ACK"]`) for every
/// flags byte, and its length: at most 8 names of 3 letters, 49 bytes.
// Indexing here runs at compile time: an index out of range fails the
// build, it cannot panic at run time.
#[allow(clippy::indexing_slicing)]
pub(super) const TCP_FLAGS_JSON: [([u8; 56], u8); 256] = {
    let mut t = [([0u8; 56], 0u8); 256];
    let mut bits = 0;
    while bits < 256 {
        let (text, n) = &mut t[bits];
        text[0] = b'[';
        let mut len = 1;
        let mut i = 0;
        while i < 8 {
            if bits & (1 << i) != 0 {
                if len > 1 {
                    text[len] = b',';
                    len += 1;
                }
                let name = TCP_FLAG_NAMES[i].as_bytes();
                text[len] = b'"';
                text[len + 1] = name[0];
                text[len + 2] = name[1];
                text[len + 3] = name[2];
                text[len + 4] = b'"';
                len += 5;
            }
            i += 1;
        }
        text[len] = b']';
        *n = (len + 1) as u8;
        bits += 1;
    }
    t
};

fn push_tcp(out: &mut Vec<u8>, t: &Tcp) {
    k0!(out, "sport");
    num(out, t.sport);
    k!(out, "dport");
    num(out, t.dport);
    k!(out, "seq");
    num(out, t.seq);
    k!(out, "ack");
    num(out, t.ack);
    k!(out, "data_offset");
    num(out, t.data_offset);
    k!(out, "flags");
    // Appended whole from the table and cut, as IPv4 addresses are: a
    // fixed-size copy instead of a loop over the eight bits.
    let (text, len) = TCP_FLAGS_JSON
        .get(usize::from(t.flags.0))
        .copied()
        .unwrap_or(([0; 56], 0));
    let start = out.len();
    out.extend_from_slice(&text);
    out.truncate(start + usize::from(len));
    k!(out, "window");
    num(out, t.window);
    k!(out, "checksum");
    num(out, t.checksum);
    k!(out, "urgent_ptr");
    num(out, t.urgent_ptr);
    k!(out, "options");
    // The options object: its first key decides where the comma goes.
    let o = &t.options;
    let mut first = true;
    let mut sep = |out: &mut Vec<u8>| {
        out.push(if first { b'{' } else { b',' });
        first = false;
    };
    if let Some(v) = o.mss {
        sep(out);
        out.extend_from_slice(b"\"mss\":");
        num(out, v);
    }
    if let Some(v) = o.wscale {
        sep(out);
        out.extend_from_slice(b"\"wscale\":");
        num(out, v);
    }
    if o.sack_permitted {
        sep(out);
        out.extend_from_slice(b"\"sack_permitted\":true");
    }
    if !o.sack.is_empty() {
        sep(out);
        out.extend_from_slice(b"\"sack\":[");
        for (i, [l, r]) in o.sack.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'[');
            num(out, *l);
            out.push(b',');
            num(out, *r);
            out.push(b']');
        }
        out.push(b']');
    }
    if let Some(v) = o.ts_val {
        sep(out);
        out.extend_from_slice(b"\"ts_val\":");
        num(out, v);
    }
    if let Some(v) = o.ts_ecr {
        sep(out);
        out.extend_from_slice(b"\"ts_ecr\":");
        num(out, v);
    }
    if !o.other.is_empty() {
        sep(out);
        out.extend_from_slice(b"\"other\":[");
        for (i, kind) in o.other.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            num(out, *kind);
        }
        out.push(b']');
    }
    if first {
        out.push(b'{');
    }
    out.push(b'}');
    if let Some(v) = t.payload_len {
        k!(out, "payload_len");
        num(out, v);
    }
    out.push(b'}');
}

fn push_icmp(out: &mut Vec<u8>, i: &Icmp) {
    k0!(out, "type");
    num(out, i.icmp_type);
    k!(out, "code");
    num(out, i.code);
    k!(out, "checksum");
    num(out, i.checksum);
    if let Some(v) = i.id {
        k!(out, "id");
        num(out, v);
    }
    if let Some(v) = i.seq {
        k!(out, "seq");
        num(out, v);
    }
    out.push(b'}');
}

/// Append the JSON object of one packet record (no newline).
pub fn push_record_json(out: &mut Vec<u8>, rec: &PacketRecord) {
    push_record(out, rec, None);
}

/// [`push_record_json`], copying what `memo` holds of the record's flow
/// ([`JsonMemo`]): the same bytes.
pub fn push_record_json_memo(out: &mut Vec<u8>, rec: &PacketRecord, memo: &mut JsonMemo) {
    push_record(out, rec, Some(memo));
}

fn push_record(out: &mut Vec<u8>, rec: &PacketRecord, memo: Option<&mut JsonMemo>) {
    let h = &rec.headers;
    out.reserve(1024);
    out.extend_from_slice(b"{\"kind\":\"packet\",\"id\":");
    num(out, rec.id);
    out.extend_from_slice(b",\"ts\":\"");
    crate::output::push_rfc3339_ns(out, rec.ts_unix_ns);
    out.extend_from_slice(match (rec.hook, rec.dir) {
        (Hook::Tc, Dir::In) => b"\",\"hook\":\"tc\",\"dir\":\"in\",\"ifname\":".as_slice(),
        (Hook::Tc, Dir::Out) => b"\",\"hook\":\"tc\",\"dir\":\"out\",\"ifname\":",
        (Hook::Xdp, Dir::In) => b"\",\"hook\":\"xdp\",\"dir\":\"in\",\"ifname\":",
        (Hook::Xdp, Dir::Out) => b"\",\"hook\":\"xdp\",\"dir\":\"out\",\"ifname\":",
        (Hook::Socket, Dir::In) => b"\",\"hook\":\"socket\",\"dir\":\"in\",\"ifname\":",
        (Hook::Socket, Dir::Out) => b"\",\"hook\":\"socket\",\"dir\":\"out\",\"ifname\":",
    });
    crate::output::push_json_str(out, &rec.ifname);
    k!(out, "ifindex");
    num(out, rec.ifindex);
    k!(out, "wire_len");
    num(out, rec.wire_len);
    k!(out, "cap_len");
    num(out, rec.cap_len);
    match memo {
        Some(memo) => memo.flow(out, rec),
        None => push_flow(out, rec),
    }
    if !h.vlan.is_empty() {
        k!(out, "vlan");
        out.push(b'[');
        for (i, v) in h.vlan.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_vlan(out, v);
        }
        out.push(b']');
    }
    if let Some(a) = &h.arp {
        k!(out, "arp");
        push_arp(out, a);
    }
    if let Some(ip) = &h.ipv4 {
        k!(out, "ipv4");
        push_ipv4(out, ip);
    }
    if let Some(ip) = &h.ipv6 {
        k!(out, "ipv6");
        push_ipv6(out, ip);
    }
    if let Some(t) = &h.tcp {
        k!(out, "tcp");
        push_tcp(out, t);
    }
    if let Some(u) = &h.udp {
        k!(out, "udp");
        k0!(out, "sport");
        num(out, u.sport);
        k!(out, "dport");
        num(out, u.dport);
        k!(out, "len");
        num(out, u.len);
        k!(out, "checksum");
        num(out, u.checksum);
        out.push(b'}');
    }
    if let Some(i) = &h.icmp {
        k!(out, "icmp");
        push_icmp(out, i);
    }
    if let Some(i) = &h.icmp6 {
        k!(out, "icmp6");
        push_icmp(out, i);
    }
    if !h.flags.is_empty() {
        k!(out, "flags");
        out.push(b'[');
        for (i, f) in h.flags.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'"');
            out.extend_from_slice(f.as_bytes());
            out.push(b'"');
        }
        out.push(b']');
    }
    out.push(b'}');
}

/// The part of a packet record that is the same on every packet of a flow
/// on one interface, as long as its owner stays: `pid` through `eth`.
/// Every field read here is in the key of the writer's memo of it
/// (`output::memo::FlowSlot`), or a hit would copy a stale value.
pub(crate) fn push_flow(out: &mut Vec<u8>, rec: &PacketRecord) {
    let h = &rec.headers;
    match &rec.owner {
        Some(o) => {
            k!(out, "pid");
            num(out, o.pid);
            k!(out, "tid");
            num(out, o.tid);
            k!(out, "comm");
            crate::output::push_json_str(out, &o.comm);
            if o.cgroup_id != 0 {
                k!(out, "cgroup_id");
                num(out, o.cgroup_id);
            }
        }
        None => out.extend_from_slice(b",\"pid\":null,\"tid\":null,\"comm\":null"),
    }
    if let Some(w) = &rec.workload {
        crate::output::push_workload(out, w);
    }
    if rec.sock_cookie != 0 {
        k!(out, "sock_cookie");
        num(out, rec.sock_cookie);
    }
    if let Some(e) = &h.eth {
        k!(out, "eth");
        push_eth(out, e);
    }
}

fn ethertype_name(t: u16) -> String {
    match t {
        0x0800 => "IPv4".into(),
        0x0806 => "ARP".into(),
        0x86dd => "IPv6".into(),
        0x8100 => "802.1Q".into(),
        0x88a8 => "802.1ad".into(),
        t => format!("0x{t:04x}"),
    }
}

fn tcp_flags_short(bits: u8) -> String {
    // tcpdump's letters: S F P R U W E, "." for ACK.
    let mut s = String::new();
    for (bit, c) in [
        (0x02, 'S'),
        (0x01, 'F'),
        (0x08, 'P'),
        (0x04, 'R'),
        (0x20, 'U'),
        (0x80, 'W'),
        (0x40, 'E'),
    ] {
        if bits & bit != 0 {
            s.push(c);
        }
    }
    if bits & 0x10 != 0 {
        s.push('.');
    }
    if s.is_empty() {
        s.push_str("none");
    }
    s
}

fn tcp_options_text(o: &TcpOptions) -> String {
    let mut parts = Vec::new();
    if let Some(m) = o.mss {
        parts.push(format!("mss {m}"));
    }
    if o.sack_permitted {
        parts.push("sackOK".into());
    }
    if !o.sack.is_empty() {
        let blocks: Vec<String> = o.sack.iter().map(|[l, r]| format!("{{{l}:{r}}}")).collect();
        parts.push(format!("sack {} {}", o.sack.len(), blocks.join("")));
    }
    if let (Some(v), Some(e)) = (o.ts_val, o.ts_ecr) {
        parts.push(format!("TS val {v} ecr {e}"));
    }
    if let Some(w) = o.wscale {
        parts.push(format!("wscale {w}"));
    }
    for k in &o.other {
        parts.push(format!("opt-{k}"));
    }
    parts.join(",")
}

/// One readable line (without newline):
/// `TIME IFACE DIR HOOK [comm[pid]] PROTO SRC > DST: DETAIL [flags]`.
pub fn record_line(rec: &PacketRecord) -> String {
    let h = &rec.headers;
    let mut l = String::with_capacity(160);
    let _ = write!(
        l,
        "{} {} {} {}",
        time_of_day(rec.ts_unix_ns),
        rec.ifname,
        rec.dir.name(),
        rec.hook.name()
    );
    if let Some(o) = &rec.owner {
        l.push(' ');
        for c in o.comm.chars() {
            if c.is_control() {
                l.push('?');
            } else {
                l.push(c);
            }
        }
        let _ = write!(l, "[{}]", o.pid);
    }
    l.push(' ');
    for v in &h.vlan {
        let _ = write!(
            l,
            "vlan {} p {}{}, ",
            v.vid,
            v.pcp,
            if v.dei { " DEI" } else { "" }
        );
    }
    let ports = |sp: u16, dp: u16| -> Option<(u16, u16)> { Some((sp, dp)) };
    let l4ports = h
        .tcp
        .as_ref()
        .and_then(|t| ports(t.sport, t.dport))
        .or_else(|| h.udp.as_ref().and_then(|u| ports(u.sport, u.dport)));
    if let Some(a) = &h.arp {
        let _ = match (a.op, a.sender_ip, a.target_ip, a.sender_mac) {
            (1, Some(s), Some(t), _) => write!(l, "ARP, Request who-has {t} tell {s}"),
            (2, Some(s), _, Some(m)) => write!(l, "ARP, Reply {s} is-at {m}"),
            (op, ..) => write!(l, "ARP, op {op}"),
        };
        let _ = write!(
            l,
            ", length {}",
            rec.wire_len.saturating_sub(14 + 4 * h.vlan.len() as u32)
        );
    } else if let Some((src, dst)) = addresses(h) {
        l.push_str(if h.ipv4.is_some() { "IP " } else { "IP6 " });
        match l4ports {
            Some((sp, dp)) => {
                let _ = write!(l, "{src}.{sp} > {dst}.{dp}: ");
            }
            None => {
                let _ = write!(l, "{src} > {dst}: ");
            }
        }
        if let Some(t) = &h.tcp {
            let _ = write!(l, "Flags [{}], seq {}", tcp_flags_short(t.flags.0), t.seq);
            if t.flags.0 & 0x10 != 0 {
                let _ = write!(l, ", ack {}", t.ack);
            }
            let _ = write!(l, ", win {}", t.window);
            let opts = tcp_options_text(&t.options);
            if !opts.is_empty() {
                let _ = write!(l, ", options [{opts}]");
            }
            if let Some(n) = t.payload_len {
                let _ = write!(l, ", length {n}");
            }
        } else if let Some(u) = &h.udp {
            let _ = write!(l, "UDP, length {}", u.len.saturating_sub(8));
        } else if let Some(i) = h.icmp.as_ref().or(h.icmp6.as_ref()) {
            let v6 = h.icmp6.is_some();
            let name = match (v6, i.icmp_type) {
                (false, 8) | (true, 128) => "echo request",
                (false, 0) | (true, 129) => "echo reply",
                (false, 3) => "unreachable",
                (false, 11) | (true, 3) => "time exceeded",
                (true, 1) => "unreachable",
                (true, 133) => "router solicitation",
                (true, 134) => "router advertisement",
                (true, 135) => "neighbor solicitation",
                (true, 136) => "neighbor advertisement",
                (true, 143) => "multicast listener report v2",
                _ => "type",
            };
            let _ = write!(l, "{} {name}", if v6 { "ICMP6" } else { "ICMP" });
            if name == "type" {
                let _ = write!(l, " {} code {}", i.icmp_type, i.code);
            }
            if let (Some(id), Some(seq)) = (i.id, i.seq) {
                let _ = write!(l, ", id {id}, seq {seq}");
            }
        } else {
            let proto = h
                .ipv4
                .as_ref()
                .map(|i| i.protocol)
                .or(h.ipv6.as_ref().map(|i| i.protocol));
            let _ = write!(l, "proto {}", proto.unwrap_or(0));
        }
        if let Some(ip) = &h.ipv4 {
            let _ = write!(l, " (ttl {}, id {}, len {}", ip.ttl, ip.id, ip.total_len);
            if ip.df {
                l.push_str(", DF");
            }
            if ip.mf || ip.frag_offset != 0 {
                let _ = write!(
                    l,
                    ", frag offset {}{}",
                    ip.frag_offset,
                    if ip.mf { "+" } else { "" }
                );
            }
            l.push(')');
        } else if let Some(ip) = &h.ipv6 {
            let _ = write!(l, " (hlim {}, plen {}", ip.hop_limit, ip.payload_len);
            if !ip.ext.is_empty() {
                let names: Vec<&str> = ip.ext.iter().map(|e| e.kind).collect();
                let _ = write!(l, ", ext {}", names.join(","));
            }
            l.push(')');
        }
    } else if let Some(e) = &h.eth {
        let t = h.vlan.last().map(|v| v.ethertype).unwrap_or(e.ethertype);
        let _ = write!(
            l,
            "{} > {}, ethertype {}, length {}",
            e.src,
            e.dst,
            ethertype_name(t),
            rec.wire_len
        );
    } else {
        let _ = write!(l, "length {}", rec.wire_len);
    }
    for f in &h.flags {
        let _ = write!(l, " [{f}]");
    }
    l
}

impl crate::output::OutputRecord for PacketRecord {
    fn to_json(&self) -> String {
        record_json(self)
    }
    fn to_line(&self) -> String {
        record_line(self)
    }
    fn write_json(&self, out: &mut Vec<u8>) {
        push_record_json(out, self);
    }
}
