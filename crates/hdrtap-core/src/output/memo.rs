//! Memo of the JSON that records repeat, so that a line written once is
//! copied, not escaped again.
//!
//! Most of a record's text repeats: the connection's part (ids, process,
//! addresses, role) on every record of the connection, most header lines
//! (`Server`, `Content-Type`, `User-Agent`, `Accept`) on every message of
//! every connection, as HPACK exploits on the wire, and a packet flow's
//! owner and Ethernet header on every packet of the flow. The memo keeps,
//! for each, the JSON fragment it was written as, keyed by everything the
//! fragment is made of, so a hit is the fragment [`super`] (or the packet
//! writer) would write again, byte for byte.
//!
//! The tables are direct-mapped: a slot holds the last line (connection,
//! flow) that hashed to it, and a new one takes its place. Memory
//! stays bounded (lines longer than [`LINE_MAX`] bytes are never kept),
//! lines that never repeat (`X-Seq`, `Date` in a new second) cost one
//! slot's rewrite, and no lookup ever allocates once the slots are warm.
//! Written by hand: a cache crate's LRU bookkeeping and hashing per lookup
//! cost about what the escaping it would save does.
use std::sync::Arc;

use compact_str::CompactString;

use crate::packet::{Eth, Owner, PacketRecord};
use crate::record::{Endpoint, HttpRecord, Role};

/// Header-line slots (a power of two).
const LINE_SLOTS: usize = 1024;
/// Connection slots (a power of two), indexed by connection id.
const CONN_SLOTS: usize = 256;
/// Packet-flow slots (a power of two), indexed by a hash of the socket
/// cookie and the owner's thread.
const FLOW_SLOTS: usize = 256;
/// A header line (name and value bytes) longer than this is written, not kept.
pub(crate) const LINE_MAX: usize = 240;

/// The memo of one writer (see the module doc).
pub struct JsonMemo {
    lines: Vec<LineSlot>,
    conns: Vec<Option<Box<ConnSlot>>>,
    flows: Vec<Option<Box<FlowSlot>>>,
    /// Lookups answered from the memo, and those that were not.
    pub hits: u64,
    pub misses: u64,
}

/// One kept line. A line that needed no escaping is its own key: its
/// fragment `["name","value"]` holds the name and value as they are. One
/// that did (an `ETag`'s quotes) keeps them in `key` too.
#[derive(Default)]
struct LineSlot {
    name_len: usize,
    value_len: usize,
    /// Name then value, for an escaped line; empty for a plain one.
    key: Vec<u8>,
    /// Empty while the slot is unused.
    frag: Vec<u8>,
}

impl LineSlot {
    fn holds(&self, name: &[u8], value: &[u8]) -> bool {
        let n = name.len();
        if self.name_len != n || self.value_len != value.len() {
            return false;
        }
        if self.key.is_empty() {
            // `["` name `","` value `"]`
            self.frag.get(2..2 + n) == Some(name)
                && self.frag.get(5 + n..5 + n + value.len()) == Some(value)
        } else {
            self.key[..n] == *name && self.key[n..] == *value
        }
    }
}

/// What the connection part of a record is made of.
struct ConnSlot {
    conn_id: u64,
    interface: Option<Arc<str>>,
    tls: bool,
    sock_cookie: u64,
    pid: u32,
    tid: u32,
    comm: CompactString,
    cgroup_id: u64,
    workload: Option<Arc<crate::cgroup::Workload>>,
    local: Endpoint,
    remote: Endpoint,
    role: Role,
    tls_library: Option<Arc<str>>,
    frag: Vec<u8>,
}

impl Slot<HttpRecord> for ConnSlot {
    fn of(rec: &HttpRecord, frag: Vec<u8>) -> ConnSlot {
        ConnSlot {
            conn_id: rec.conn_id,
            interface: rec.interface.clone(),
            tls: rec.tls,
            sock_cookie: rec.sock_cookie,
            pid: rec.process.pid,
            tid: rec.process.tid,
            comm: rec.process.comm.clone(),
            cgroup_id: rec.process.cgroup_id,
            workload: rec.process.workload.clone(),
            local: rec.local,
            remote: rec.remote,
            role: rec.role,
            tls_library: rec.tls_library.clone(),
            frag,
        }
    }

    fn matches(&self, rec: &HttpRecord) -> bool {
        let p = &rec.process;
        self.conn_id == rec.conn_id
            && self.tid == p.tid
            && self.pid == p.pid
            && self.sock_cookie == rec.sock_cookie
            && self.cgroup_id == p.cgroup_id
            && self.tls == rec.tls
            && self.role == rec.role
            && self.local == rec.local
            && self.remote == rec.remote
            && self.comm == p.comm
            && same_arc(&self.interface, &rec.interface)
            && same_arc(&self.tls_library, &rec.tls_library)
            && same_arc(&self.workload, &p.workload)
    }

    fn frag(&mut self) -> &mut Vec<u8> {
        &mut self.frag
    }
}

/// What the flow part of a packet record is made of
/// ([`crate::packet::push_flow`]: owner, workload, socket cookie,
/// Ethernet header).
struct FlowSlot {
    owner: Option<Owner>,
    workload: Option<Arc<crate::cgroup::Workload>>,
    sock_cookie: u64,
    eth: Option<Eth>,
    frag: Vec<u8>,
}

impl Slot<PacketRecord> for FlowSlot {
    fn of(rec: &PacketRecord, frag: Vec<u8>) -> FlowSlot {
        FlowSlot {
            owner: rec.owner.clone(),
            workload: rec.workload.clone(),
            sock_cookie: rec.sock_cookie,
            eth: rec.headers.eth.clone(),
            frag,
        }
    }

    fn matches(&self, rec: &PacketRecord) -> bool {
        self.sock_cookie == rec.sock_cookie
            && self.owner == rec.owner
            && self.eth == rec.headers.eth
            && same_arc(&self.workload, &rec.workload)
    }

    fn frag(&mut self) -> &mut Vec<u8> {
        &mut self.frag
    }
}

/// Equal contents (the same `Arc` settles it without comparing them).
fn same_arc<T: PartialEq + ?Sized>(a: &Option<Arc<T>>, b: &Option<Arc<T>>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => Arc::ptr_eq(a, b) || **a == **b,
        _ => false,
    }
}

impl Default for JsonMemo {
    fn default() -> Self {
        JsonMemo {
            lines: (0..LINE_SLOTS).map(|_| LineSlot::default()).collect(),
            conns: (0..CONN_SLOTS).map(|_| None).collect(),
            flows: (0..FLOW_SLOTS).map(|_| None).collect(),
            hits: 0,
            misses: 0,
        }
    }
}

impl JsonMemo {
    pub fn new() -> Self {
        Self::default()
    }

    /// Append `["name","value"]` (the fragment [`super::push_header_line`]
    /// writes for an unmarked line), from the memo when the line was
    /// written before. A line that needed escaping is kept with its raw
    /// bytes as the key; one over [`LINE_MAX`] bytes is written, not kept.
    pub(crate) fn line(&mut self, out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
        if name.len() + value.len() > LINE_MAX {
            return super::push_header_line(out, name, value, 0);
        }
        let slot = &mut self.lines[(hash2(name, value) >> 54) as usize & (LINE_SLOTS - 1)];
        if slot.holds(name, value) {
            self.hits += 1;
            out.extend_from_slice(&slot.frag);
            return;
        }
        self.misses += 1;
        slot.key.clear();
        slot.frag.clear();
        super::push_header_line(&mut slot.frag, name, value, 0);
        if super::needs_escape(name) || super::needs_escape(value) {
            slot.key.extend_from_slice(name);
            slot.key.extend_from_slice(value);
        }
        slot.name_len = name.len();
        slot.value_len = value.len();
        out.extend_from_slice(&slot.frag);
    }

    /// Append the connection part of `rec` ([`super::push_conn_part`]), from
    /// the memo when the connection's last record had the same.
    pub(crate) fn conn(&mut self, out: &mut Vec<u8>, rec: &HttpRecord) {
        let slot = &mut self.conns[rec.conn_id as usize & (CONN_SLOTS - 1)];
        let hit = kept(slot, rec, out, super::push_conn_part);
        self.count(hit);
    }

    /// Append the flow part of a packet record
    /// ([`crate::packet::push_flow`]), from the memo when the last
    /// record of its slot had the same.
    pub(crate) fn flow(&mut self, out: &mut Vec<u8>, rec: &PacketRecord) {
        let slot = &mut self.flows[flow_slot(rec)];
        let hit = kept(slot, rec, out, crate::packet::push_flow);
        self.count(hit);
    }

    fn count(&mut self, hit: bool) {
        if hit {
            self.hits += 1;
        } else {
            self.misses += 1;
        }
    }
}

/// A slot that keeps one part of a record of type `R`: what the part is
/// made of, and the fragment it was written as.
trait Slot<R> {
    /// A slot for `rec`'s part, written as `frag`.
    fn of(rec: &R, frag: Vec<u8>) -> Self;
    /// Whether `rec`'s part is this slot's fragment.
    fn matches(&self, rec: &R) -> bool;
    fn frag(&mut self) -> &mut Vec<u8>;
}

/// Append `rec`'s part from `slot` when it holds it (true), else write it
/// with `write` and keep it there in place of what was (false). A slot's
/// box and fragment buffer are reused: a miss allocates nothing once the
/// slot has held a part as long.
fn kept<R, S: Slot<R>>(
    slot: &mut Option<Box<S>>,
    rec: &R,
    out: &mut Vec<u8>,
    write: fn(&mut Vec<u8>, &R),
) -> bool {
    if let Some(s) = slot.as_deref_mut() {
        if s.matches(rec) {
            out.extend_from_slice(s.frag());
            return true;
        }
    }
    let start = out.len();
    write(out, rec);
    let written = &out[start..];
    match slot.as_deref_mut() {
        Some(old) => {
            let mut frag = std::mem::take(old.frag());
            frag.clear();
            frag.extend_from_slice(written);
            *old = S::of(rec, frag);
        }
        None => *slot = Some(Box::new(S::of(rec, written.to_vec()))),
    }
    false
}

/// The multiplier of the slot hashes (2^64 over the golden ratio: it
/// spreads nearby keys over the high bits).
const MIX: u64 = 0x9e37_79b9_7f4a_7c15;

/// The slot of a packet record's flow: its socket cookie and owner thread
/// (records without an owner share the slots of their cookie).
fn flow_slot(rec: &PacketRecord) -> usize {
    let tid = rec.owner.as_ref().map_or(0, |o| u64::from(o.tid));
    ((rec.sock_cookie ^ tid.rotate_left(32)).wrapping_mul(MIX) >> 56) as usize & (FLOW_SLOTS - 1)
}

/// A hash of a header line from its lengths and at most 24 of its bytes:
/// the name's first eight and the value's first and last eight, which
/// tell apart the lines that share a name (`X-Seq: 41` and `X-Seq: 42`,
/// `Date`s a second apart). Collisions only cost a miss: a hit compares
/// the whole line.
fn hash2(name: &[u8], value: &[u8]) -> u64 {
    let mix = |h: u64, w: u64| (h.rotate_left(23) ^ w).wrapping_mul(MIX);
    let h = mix((name.len() as u64) << 32 | value.len() as u64, head8(name));
    mix(mix(h, head8(value)), tail8(value))
}

/// Up to the first eight bytes as a word (zeros past the end).
fn head8(b: &[u8]) -> u64 {
    match b.first_chunk::<8>() {
        Some(w) => u64::from_le_bytes(*w),
        None => {
            let mut a = [0u8; 8];
            a[..b.len()].copy_from_slice(b);
            u64::from_le_bytes(a)
        }
    }
}

/// The last eight bytes as a word (0 for a shorter slice, which
/// [`head8`] covers whole).
fn tail8(b: &[u8]) -> u64 {
    b.last_chunk::<8>().map_or(0, |w| u64::from_le_bytes(*w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::mark;
    use crate::output::push_record_json;
    use crate::packet::Mac;
    use crate::record::test_request;

    /// Every record written through `memo` must be the bytes the plain
    /// writer makes.
    fn same(memo: &mut JsonMemo, rec: &HttpRecord) {
        let (mut plain, mut memoized) = (Vec::new(), Vec::new());
        push_record_json(&mut plain, rec);
        super::super::push_record_json_memo(&mut memoized, rec, memo);
        assert_eq!(
            String::from_utf8_lossy(&memoized),
            String::from_utf8_lossy(&plain)
        );
    }

    #[test]
    fn memoized_records_are_the_plain_writers_bytes() {
        let mut memo = JsonMemo::new();
        let long = "v".repeat(LINE_MAX);
        let lines: &[(&str, &str)] = &[
            ("Host", "example.com"),
            ("ETag", "\"6b0231aa-200\""),
            ("X-Ctl", "a\u{1}b\\c"),
            ("Accept", ""),
            ("", "empty name"),
            ("X-Long", &long),
            ("Ünï", "cödé"),
            ("a", "b"),
        ];
        let mut rec = test_request(lines);
        for round in 0..3 {
            same(&mut memo, &rec);
            // Each part the connection fragment is made of, changed alone.
            match round {
                0 => rec.process.tid += 1,
                _ => rec.process.comm = "other".into(),
            }
            same(&mut memo, &rec);
        }
        let changes: [fn(&mut HttpRecord); 12] = [
            |r| r.conn_id += CONN_SLOTS as u64, // the same slot
            |r| r.process.pid += 1,
            |r| r.process.cgroup_id += 1,
            |r| r.sock_cookie += 1,
            |r| r.local.port += 1,
            |r| r.remote.ip = "::1".parse().unwrap(),
            |r| r.role = Role::Server,
            |r| r.tls = !r.tls,
            |r| r.tls_library = Some("libssl.so.3".into()),
            |r| r.interface = Some("eth0".into()),
            |r| r.process.pid = 0,
            |r| {
                r.process.workload = Some(Arc::new(crate::cgroup::Workload {
                    cgroup: "/system.slice/nginx.service".into(),
                    unit: Some("nginx.service".into()),
                    ..Default::default()
                }))
            },
        ];
        for change in changes {
            change(&mut rec);
            same(&mut memo, &rec);
            same(&mut memo, &rec);
        }
        // An equal workload in another Arc is the same fragment.
        let w = rec.process.workload.as_deref().cloned();
        rec.process.workload = w.map(Arc::new);
        let misses = memo.misses;
        same(&mut memo, &rec);
        assert_eq!(memo.misses, misses, "an equal record missed");
    }

    /// Every packet record written through `memo` must be the bytes the
    /// plain writer makes.
    fn same_packet(memo: &mut JsonMemo, rec: &PacketRecord) {
        let mut memoized = Vec::new();
        crate::packet::push_record_json_memo(&mut memoized, rec, memo);
        assert_eq!(
            String::from_utf8_lossy(&memoized),
            crate::packet::record_json(rec)
        );
    }

    #[test]
    fn memoized_packet_records_are_the_plain_writers_bytes() {
        let mut memo = JsonMemo::new();
        let mut rec = crate::pcapng::test_packet(1, "lo", 0);
        rec.sock_cookie = 7;
        same_packet(&mut memo, &rec);
        same_packet(&mut memo, &rec);
        assert_eq!((memo.hits, memo.misses), (1, 1));
        // Each part the flow fragment is made of, changed alone (and the
        // fields around it, which are not in it).
        let changes: [fn(&mut PacketRecord); 14] = [
            |r| {
                r.owner = Some(Owner {
                    pid: 10,
                    tid: 11,
                    comm: "curl".into(),
                    cgroup_id: 0,
                })
            },
            |r| r.owner.as_mut().unwrap().pid += 1,
            |r| r.owner.as_mut().unwrap().tid += FLOW_SLOTS as u32, // the same slot
            |r| r.owner.as_mut().unwrap().comm = "wget \"x\"".into(),
            |r| r.owner.as_mut().unwrap().cgroup_id = 5,
            |r| r.sock_cookie += FLOW_SLOTS as u64,
            |r| r.sock_cookie = 0,
            |r| r.headers.eth.as_mut().unwrap().src = Mac([1, 2, 3, 4, 5, 6]),
            |r| r.headers.eth.as_mut().unwrap().dst = Mac([6, 5, 4, 3, 2, 1]),
            |r| r.headers.eth.as_mut().unwrap().ethertype = 0x0800,
            |r| {
                r.workload = Some(Arc::new(crate::cgroup::Workload {
                    cgroup: "/system.slice/nginx.service".into(),
                    unit: Some("nginx.service".into()),
                    ..Default::default()
                }))
            },
            |r| r.headers.eth = None,
            |r| r.owner = None,
            |r| {
                r.id += 1;
                r.wire_len += 1;
                r.ifindex += 1;
            },
        ];
        for change in changes {
            change(&mut rec);
            same_packet(&mut memo, &rec);
            let hits = memo.hits;
            same_packet(&mut memo, &rec);
            assert_eq!(memo.hits, hits + 1, "a repeated flow missed");
        }
        // An equal workload in another Arc is the same fragment.
        let w = rec.workload.as_deref().cloned();
        rec.workload = w.map(Arc::new);
        let misses = memo.misses;
        same_packet(&mut memo, &rec);
        assert_eq!(memo.misses, misses, "an equal record missed");
    }

    #[test]
    fn repeated_lines_are_hits_and_new_ones_misses() {
        let mut memo = JsonMemo::new();
        let rec = test_request(&[("Host", "a"), ("ETag", "\"x\"")]);
        same(&mut memo, &rec);
        // The connection part and two lines.
        assert_eq!((memo.hits, memo.misses), (0, 3));
        same(&mut memo, &rec);
        assert_eq!((memo.hits, memo.misses), (3, 3));
        let other = test_request(&[("Host", "b"), ("ETag", "\"x\"")]);
        same(&mut memo, &other);
        assert_eq!((memo.hits, memo.misses), (5, 4));
    }

    #[test]
    fn marked_lines_and_many_lines_that_share_slots() {
        let mut memo = JsonMemo::new();
        let mut rec = test_request(&[]);
        rec.headers.push_marked(":path", "", mark::VALUE_UNKNOWN);
        rec.headers.push_marked("", "x", mark::NAME_UNKNOWN);
        rec.headers.push("x-seq", "1");
        same(&mut memo, &rec);
        same(&mut memo, &rec);
        // Four times the slots: every slot is taken over and over, and
        // lines that differ only past the bytes the hash reads collide.
        for i in 0..4 * LINE_SLOTS {
            let v = format!("{:0>20}{i}-{}", 0, i % 7);
            let rec = test_request(&[("X-Seq", &v), ("X-Same-Hash-Prefix", "ab")]);
            same(&mut memo, &rec);
        }
        for i in 0..4 * LINE_SLOTS {
            let v = format!("{:0>20}{i}-{}", 0, i % 7);
            same(&mut memo, &test_request(&[("X-Seq", &v)]));
        }
        // Equal lengths, first and last eight bytes: one slot, two lines
        // taking turns, each a miss and each its own bytes.
        let (a, b) = ("aaaaaaaa-1-bbbbbbbb", "aaaaaaaa-2-bbbbbbbb");
        assert_eq!(hash2(b"X-Id", a.as_bytes()), hash2(b"X-Id", b.as_bytes()));
        for v in [a, b, a, b] {
            let mut rec = test_request(&[("X-Id", v)]);
            rec.conn_id = 7;
            let hits = memo.hits;
            same(&mut memo, &rec);
            // Only the connection part, from the second record on.
            assert!(memo.hits <= hits + 1);
        }
    }
}
