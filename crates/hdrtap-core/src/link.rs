//! HTTP records joined to the packets that carried them (`hdrtap http
//! --with-packets`).
//!
//! A plain HTTP/1 record knows where its message lies in the TCP stream
//! ([`HttpRecord::tcp_seq`], read from the socket when the process moved the
//! bytes); a TCP packet knows its flow, sequence number and payload length.
//! A packet carried part of a message when it flows from the message's
//! sender to its receiver and its payload overlaps the message's sequence
//! range: retransmissions overlap too, so they are linked with the rest.
//!
//! The flow (addresses and ports) is the key rather than the socket cookie:
//! on a loopback interface each packet is seen once, with the receiving
//! socket's cookie, yet both ends' records must find it.
//!
//! Records wait `wait` before they leave, so that packets still in flight
//! (a segment retransmitted after a timeout) are linked; packets wait
//! `keep` for a record to claim them, at most `max_packets` of them. A
//! packet is written once, with its id, just before the first record that
//! links it. Nothing here is heuristic beyond the time windows: a record
//! whose range is not wholly covered by the packets found says so
//! (`packets_complete: false`).
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::packet::PacketRecord;
use crate::pipeline::Ids;
use crate::record::{HttpRecord, PacketLink, SeqRange};
use crate::sink::Record;

/// Sender address and port, then receiver address and port.
type Flow = (IpAddr, u16, IpAddr, u16);

/// One packet waiting to be claimed.
struct Held {
    seq: u32,
    len: u32,
    rec: Arc<PacketRecord>,
    /// Once written: its id.
    id: Option<u64>,
}

/// What the join did (the `link_*` counters of the stats record).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LinkStats {
    /// TCP packets with payload offered for linking.
    pub packets: u64,
    /// Of them, written because a record linked them.
    pub packets_linked: u64,
    /// Dropped unclaimed to keep at most `max_packets` (not by age).
    pub packets_evicted: u64,
    /// Records that carried a sequence range and were linked.
    pub records: u64,
    /// Of them, records whose range the packets found did not cover.
    pub records_incomplete: u64,
}

/// The join's state: packets by flow, records waiting to leave.
pub struct Linker {
    wait: Duration,
    keep: Duration,
    max_packets: usize,
    ids: Arc<Ids>,
    flows: HashMap<Flow, VecDeque<Held>>,
    /// Packets in arrival order, for expiry and eviction.
    order: VecDeque<(Instant, Flow)>,
    held: usize,
    records: VecDeque<(Instant, Record)>,
    pub stats: LinkStats,
}

impl Linker {
    /// Records leave after `wait`; packets are kept `keep` (at least
    /// `wait`), at most `max_packets` of them.
    pub fn new(wait: Duration, keep: Duration, max_packets: usize, ids: Arc<Ids>) -> Self {
        Linker {
            wait,
            keep: keep.max(wait),
            max_packets: max_packets.max(1),
            ids,
            flows: HashMap::new(),
            order: VecDeque::new(),
            held: 0,
            records: VecDeque::new(),
            stats: LinkStats::default(),
        }
    }

    /// A captured packet. Only TCP packets with payload can carry a
    /// message's bytes; the others are let go.
    pub fn packet(&mut self, rec: Arc<PacketRecord>, now: Instant) {
        let Some(tcp) = rec.headers.tcp.as_ref() else {
            return;
        };
        let len = tcp.payload_len.unwrap_or(0);
        if len == 0 {
            return;
        }
        let (src, dst) = match (&rec.headers.ipv4, &rec.headers.ipv6) {
            (Some(v4), _) => (IpAddr::V4(v4.src), IpAddr::V4(v4.dst)),
            (None, Some(v6)) => (IpAddr::V6(v6.src), IpAddr::V6(v6.dst)),
            _ => return,
        };
        let flow = (src.to_canonical(), tcp.sport, dst.to_canonical(), tcp.dport);
        let seq = tcp.seq;
        self.stats.packets += 1;
        if self.held >= self.max_packets {
            self.evict_oldest();
            self.stats.packets_evicted += 1;
        }
        self.flows.entry(flow).or_default().push_back(Held {
            seq,
            len,
            rec,
            id: None,
        });
        self.order.push_back((now, flow));
        self.held += 1;
    }

    fn evict_oldest(&mut self) {
        if let Some((_, flow)) = self.order.pop_front() {
            if let Some(q) = self.flows.get_mut(&flow) {
                q.pop_front();
                if q.is_empty() {
                    self.flows.remove(&flow);
                }
            }
            self.held = self.held.saturating_sub(1);
        }
    }

    /// Records on their way out: held for `wait`, in order (alerts stay
    /// behind the record they are about).
    pub fn hold(&mut self, records: impl IntoIterator<Item = Record>, now: Instant) {
        self.records.extend(records.into_iter().map(|r| (now, r)));
    }

    /// Records held and packets kept, for the summary.
    pub fn waiting(&self) -> (usize, usize) {
        (self.records.len(), self.held)
    }

    /// Move the records whose wait is over (all of them with `all`) to
    /// `out`, each HTTP record with a sequence range preceded by the packets
    /// it links that were not written before. Then let old packets go.
    pub fn release(&mut self, now: Instant, all: bool, out: &mut Vec<Record>) {
        while let Some((at, _)) = self.records.front() {
            if !all && now.saturating_duration_since(*at) < self.wait {
                break;
            }
            let Some((_, rec)) = self.records.pop_front() else {
                break;
            };
            match rec {
                Record::Http(mut http) => {
                    if let Some(range) = http.tcp_seq {
                        let link = self.link(&http, range, out);
                        Arc::make_mut(&mut http).packets = Some(Box::new(link));
                    }
                    out.push(Record::Http(http));
                }
                other => out.push(other),
            }
        }
        while let Some((at, _)) = self.order.front() {
            if now.saturating_duration_since(*at) < self.keep {
                break;
            }
            self.evict_oldest();
        }
    }

    /// The packets of `rec`'s message, written to `out` if new.
    fn link(&mut self, rec: &HttpRecord, range: SeqRange, out: &mut Vec<Record>) -> PacketLink {
        let (from, to) = if rec.sent_by_process() {
            (&rec.local, &rec.remote)
        } else {
            (&rec.remote, &rec.local)
        };
        // An IPv4-mapped address (a dual-stack socket's view of an IPv4
        // peer) as the IPv4 address packets carry.
        let flow = (
            from.ip.to_canonical(),
            from.port,
            to.ip.to_canonical(),
            to.port,
        );
        let rlen = range.len();
        let mut ids = Vec::new();
        let mut spans: Vec<(u64, u64)> = Vec::new();
        if let Some(q) = self.flows.get_mut(&flow) {
            for h in q.iter_mut() {
                let Some(span) = overlap(range, rlen, h.seq, h.len) else {
                    continue;
                };
                spans.push(span);
                let id = match h.id {
                    Some(id) => id,
                    None => {
                        let id = self.ids.next();
                        Arc::make_mut(&mut h.rec).id = id;
                        h.id = Some(id);
                        self.stats.packets_linked += 1;
                        out.push(Record::Packet(Arc::clone(&h.rec)));
                        id
                    }
                };
                ids.push(id);
            }
        }
        let complete = covers(&mut spans, rlen);
        self.stats.records += 1;
        if !complete {
            self.stats.records_incomplete += 1;
        }
        PacketLink { ids, complete }
    }
}

/// The part of `range` (offsets from its first byte, end exclusive) that a
/// packet with payload `[seq, seq + len)` carries, if any. Sequence numbers
/// wrap: all arithmetic is modulo 2^32.
fn overlap(range: SeqRange, rlen: u64, seq: u32, len: u32) -> Option<(u64, u64)> {
    let len = u64::from(len);
    let start = u64::from(seq.wrapping_sub(range.first));
    if start < rlen {
        return Some((start, (start + len).min(rlen)));
    }
    // Starts before the range: does it reach into it?
    let before = u64::from(range.first.wrapping_sub(seq));
    (before < len).then(|| (0, (len - before).min(rlen)))
}

/// Whether `spans` together cover `[0, len)`.
fn covers(spans: &mut [(u64, u64)], len: u64) -> bool {
    spans.sort_unstable();
    let mut reached = 0;
    for &(a, b) in spans.iter() {
        if a > reached {
            return false;
        }
        reached = reached.max(b);
    }
    reached >= len
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{test_request, Endpoint};

    fn range(first: u32, len: u64) -> SeqRange {
        SeqRange::new(first, len, true)
    }

    #[test]
    fn overlap_is_modular() {
        let r = range(u32::MAX - 9, 20); // wraps after 10 bytes
        assert_eq!(overlap(r, 20, u32::MAX - 9, 10), Some((0, 10)));
        assert_eq!(overlap(r, 20, 0, 10), Some((10, 20)));
        assert_eq!(overlap(r, 20, u32::MAX - 14, 10), Some((0, 5)));
        assert_eq!(overlap(r, 20, 10, 10), None);
        assert_eq!(overlap(r, 20, u32::MAX - 30, 10), None);
        // A retransmission that spans the whole range and more.
        assert_eq!(overlap(r, 20, u32::MAX - 19, 100), Some((0, 20)));
    }

    #[test]
    fn coverage_needs_every_byte() {
        assert!(covers(&mut [(0, 5), (5, 10)], 10));
        assert!(covers(&mut [(3, 10), (0, 4)], 10));
        assert!(!covers(&mut [(0, 5), (6, 10)], 10));
        assert!(!covers(&mut [(0, 9)], 10));
        assert!(!covers(&mut [], 1));
    }

    /// A TCP packet from `src` to `dst` with `len` payload bytes at `seq`
    /// (its headers captured, its payload not), decoded as the capture does.
    fn tcp(src: (&str, u16), dst: (&str, u16), seq: u32, len: u32) -> Arc<PacketRecord> {
        let ip = |s: &str| s.parse::<std::net::Ipv4Addr>().unwrap().octets();
        let mut b = vec![0u8; 12];
        b.extend_from_slice(&[0x08, 0x00]); // IPv4
        let total = (40 + len) as u16;
        b.extend_from_slice(&[
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            0,
            0x40,
            0,
            64,
            6,
            0,
            0,
        ]);
        b.extend_from_slice(&ip(src.0));
        b.extend_from_slice(&ip(dst.0));
        b.extend_from_slice(&src.1.to_be_bytes());
        b.extend_from_slice(&dst.1.to_be_bytes());
        b.extend_from_slice(&seq.to_be_bytes());
        b.extend_from_slice(&[0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
        let spec = hdrtap_abi::build::PacketSpec {
            wire_len: Some(54 + len),
            ..Default::default()
        };
        let ev = hdrtap_abi::build::packet_event(&spec, &b);
        Arc::new(crate::packet::decode_event(
            &hdrtap_abi::decode_packet(&ev).expect("a packet event"),
            "lo",
            0,
        ))
    }

    /// A client request of `len` bytes at `first`, from 127.0.0.1:40000 to
    /// 127.0.0.1:80, sent by the process (`sent`) or received.
    fn request(first: u32, len: u64, sent: bool) -> Arc<HttpRecord> {
        let ep = |port| Endpoint {
            ip: "127.0.0.1".parse().unwrap(),
            port,
        };
        let (local, remote, role) = if sent {
            (ep(40000), ep(80), crate::record::Role::Client)
        } else {
            (ep(80), ep(40000), crate::record::Role::Server)
        };
        Arc::new(HttpRecord {
            local,
            remote,
            role,
            tcp_seq: Some(range(first, len)),
            ..test_request(&[])
        })
    }

    fn http(out: &[Record]) -> Vec<&HttpRecord> {
        out.iter()
            .filter_map(|r| match r {
                Record::Http(h) => Some(h.as_ref()),
                _ => None,
            })
            .collect()
    }

    fn packet_ids(out: &[Record]) -> Vec<u64> {
        out.iter()
            .filter_map(|r| match r {
                Record::Packet(p) => Some(p.id),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn both_ends_find_the_packets_once_written() {
        let t0 = Instant::now();
        let mut l = Linker::new(
            Duration::from_millis(100),
            Duration::from_secs(5),
            100,
            Arc::new(Ids::default()),
        );
        let c = ("127.0.0.1", 40000);
        let s = ("127.0.0.1", 80);
        l.packet(tcp(c, s, 1000, 500), t0); // first segment
        l.packet(tcp(c, s, 1500, 500), t0); // lost, later resent
        l.packet(tcp(s, c, 1000, 500), t0); // other direction: not ours
        l.packet(tcp(c, s, 1500, 500), t0); // the retransmission
        l.packet(tcp(c, s, 2000, 100), t0); // the next request
        let mut out = Vec::new();
        l.hold(
            [
                Record::Http(request(1000, 1000, true)),
                Record::Http(request(1000, 1000, false)),
            ],
            t0,
        );
        l.release(t0 + Duration::from_millis(50), false, &mut out);
        assert!(out.is_empty(), "records wait for late packets");
        l.release(t0 + Duration::from_millis(100), false, &mut out);
        let recs = http(&out);
        assert_eq!(recs.len(), 2);
        let client = recs[0].packets.as_deref().unwrap();
        let server = recs[1].packets.as_deref().unwrap();
        assert_eq!(client.ids, vec![1, 2, 3]);
        assert!(client.complete);
        assert_eq!(server, client, "the receiving end links the same packets");
        assert_eq!(
            packet_ids(&out),
            vec![1, 2, 3],
            "each packet written once, first"
        );
        assert!(matches!(out[0], Record::Packet(_)));
        assert_eq!(l.stats.packets_linked, 3);
    }

    #[test]
    fn a_missing_segment_is_said() {
        let t0 = Instant::now();
        let mut l = Linker::new(
            Duration::ZERO,
            Duration::ZERO,
            100,
            Arc::new(Ids::default()),
        );
        let (c, s) = (("127.0.0.1", 40000), ("127.0.0.1", 80));
        l.packet(tcp(c, s, 1000, 500), t0);
        l.packet(tcp(c, s, 1600, 400), t0);
        l.hold([Record::Http(request(1000, 1000, true))], t0);
        let mut out = Vec::new();
        l.release(t0, false, &mut out);
        let link = http(&out)[0].packets.as_deref().unwrap().clone();
        assert_eq!(link.ids.len(), 2);
        assert!(!link.complete);
        assert_eq!(l.stats.records_incomplete, 1);
        // Expired with the zero keep: nothing is held any more.
        assert_eq!(l.waiting(), (0, 0));
    }

    #[test]
    fn packets_are_bounded() {
        let t0 = Instant::now();
        let mut l = Linker::new(
            Duration::from_secs(1),
            Duration::from_secs(60),
            3,
            Arc::new(Ids::default()),
        );
        let (c, s) = (("127.0.0.1", 40000), ("127.0.0.1", 80));
        for i in 0..5 {
            l.packet(tcp(c, s, 1000 + i * 10, 10), t0);
        }
        assert_eq!(l.waiting(), (0, 3));
        assert_eq!(l.stats.packets_evicted, 2);
        l.hold([Record::Http(request(1000, 50, true))], t0);
        let mut out = Vec::new();
        l.release(t0, true, &mut out);
        let link = http(&out)[0].packets.as_deref().unwrap().clone();
        assert_eq!(link.ids.len(), 3, "the two oldest were evicted");
        assert!(!link.complete);
    }
}
