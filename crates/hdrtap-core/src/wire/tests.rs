use super::reasm::{Chunk, Half, Segment};
use super::*;
use crate::http::HttpTracker;
use crate::http1::TrackerConfig;
use crate::pipeline::Ids;
use crate::redact::Redactor;
use hdrtap_abi::build::{packet_event, PacketSpec};

/// What a half delivered: (pos, captured bytes, len).
fn collect(h: &mut Half, segs: &[Segment<'_>]) -> Vec<(u64, Vec<u8>, u64)> {
    let mut got = Vec::new();
    for s in segs {
        h.segment(*s, 0, &mut |c: Chunk<'_>| {
            got.push((c.pos, c.data.to_vec(), c.len));
        });
    }
    got
}

fn seg(seq: u32, payload: &[u8]) -> Segment<'_> {
    Segment {
        seq,
        syn: false,
        fin: false,
        payload,
        len: payload.len() as u32,
    }
}

/// The bytes delivered, in order, with gaps as '?'.
fn stream(chunks: &[(u64, Vec<u8>, u64)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (pos, data, len) in chunks {
        while (out.len() as u64) < *pos {
            out.push(b'?');
        }
        out.extend_from_slice(data);
        out.resize(out.len() + (*len as usize - data.len()), b'_');
    }
    out
}

#[test]
fn in_order_goes_straight_through() {
    let mut h = Half::default();
    let syn = Segment {
        syn: true,
        ..seg(99, b"")
    };
    let got = collect(&mut h, &[syn, seg(100, b"abc"), seg(103, b"def")]);
    assert_eq!(stream(&got), b"abcdef");
    assert_eq!(got[0].0, 0, "the byte after the SYN is offset 0");
    assert!(h.from_syn);
    assert_eq!(h.stats, Default::default());
}

#[test]
fn out_of_order_waits_for_the_hole() {
    let mut h = Half::default();
    let got = collect(
        &mut h,
        &[
            seg(1000, b"aa"),
            seg(1004, b"cc"),
            seg(1006, b"dd"),
            seg(1002, b"bb"),
        ],
    );
    assert_eq!(stream(&got), b"aabbccdd");
    assert_eq!(h.stats.out_of_order, 2);
    assert!(!h.has_hole());
    assert_eq!(h.held_bytes, 0);
}

#[test]
fn retransmissions_are_dropped_and_counted() {
    let mut h = Half::default();
    let got = collect(
        &mut h,
        &[
            seg(10, b"hello"),
            seg(10, b"hello"),
            seg(12, b"llo wo"),
            seg(15, b" world"),
        ],
    );
    assert_eq!(stream(&got), b"hello world");
    assert_eq!(h.stats.duplicate_bytes, 5 + 3 + 3);
    assert_eq!(h.stats.conflict_bytes, 0);
}

#[test]
fn a_conflicting_overlap_keeps_the_first_copy_and_is_flagged() {
    let mut h = Half::default();
    let mut flagged = Vec::new();
    for s in [
        seg(0, b"GET "),
        seg(8, b"ABCD"),
        seg(6, b"xxXYZW"),
        seg(4, b"/a"),
    ] {
        h.segment(s, 0, &mut |c: Chunk<'_>| {
            flagged.push((c.pos, c.data.to_vec(), c.conflict));
        });
    }
    let all: Vec<u8> = flagged.iter().flat_map(|f| f.1.clone()).collect();
    assert_eq!(all, b"GET /axxABCD", "first copy of 8..12 wins");
    assert_eq!(h.stats.conflict_bytes, 4);
    assert!(flagged.iter().any(|f| f.0 == 8 && f.2), "{flagged:?}");
    // Equal overlaps are duplicates, not conflicts.
    let mut h = Half::default();
    collect(&mut h, &[seg(0, b"a"), seg(4, b"efgh"), seg(2, b"cdef")]);
    assert_eq!(h.stats.duplicate_bytes, 2);
    assert_eq!(h.stats.conflict_bytes, 0);
}

#[test]
fn a_hole_given_up_is_lost_bytes_and_the_rest_goes_on() {
    let mut h = Half::default();
    let mut got = collect(&mut h, &[seg(0, b"ab"), seg(5, b"fg"), seg(9, b"j")]);
    assert!(h.has_hole());
    h.skip_hole(&mut |c: Chunk<'_>| got.push((c.pos, c.data.to_vec(), c.len)));
    assert_eq!(stream(&got), b"ab???fg");
    h.flush(&mut |c: Chunk<'_>| got.push((c.pos, c.data.to_vec(), c.len)));
    assert_eq!(stream(&got), b"ab???fg??j");
    assert_eq!((h.stats.gaps, h.stats.lost_bytes), (2, 5));
    assert_eq!(h.held_bytes, 0);
}

#[test]
fn sequence_numbers_wrap() {
    let mut h = Half::default();
    let got = collect(
        &mut h,
        &[seg(u32::MAX - 1, b"ab"), seg(2, b"ef"), seg(0, b"cd")],
    );
    assert_eq!(stream(&got), b"abcdef");
    // Old bytes from before the first one seen: dropped.
    let got = collect(&mut h, &[seg(u32::MAX - 5, b"zz")]);
    assert!(got.is_empty());
}

#[test]
fn snapped_segments_keep_their_length() {
    let mut h = Half::default();
    let s1 = Segment {
        len: 10,
        ..seg(2, b"cdef")
    };
    let got = collect(&mut h, &[seg(0, b"ab"), seg(12, b"k"), s1]);
    assert_eq!(stream(&got), b"abcdef______k");
}

#[test]
fn fin_ends_the_direction() {
    let mut h = Half::default();
    let fin = Segment {
        fin: true,
        ..seg(3, b"d")
    };
    collect(&mut h, &[seg(0, b"abc")]);
    assert!(!h.finished());
    collect(&mut h, &[fin]);
    assert!(h.finished());
}

// ---- whole connections through WireHttp --------------------------------

const CLIENT: ([u8; 4], u16) = ([10, 9, 0, 1], 40000);
const SERVER: ([u8; 4], u16) = ([10, 9, 0, 2], 80);

struct Wire {
    w: WireHttp,
    ts: u64,
    seq: [u32; 2],
    out: Vec<Record>,
}

impl Wire {
    fn new() -> Self {
        Self::with(WireConfig::default())
    }

    fn with(cfg: WireConfig) -> Self {
        let redactor = Redactor::with_key([7; 16], ["authorization"]);
        let h1 = TrackerConfig::default();
        let h2 = HttpTracker::h2_config_like(&h1);
        let p = HttpPipeline::new(
            HttpTracker::new(h1, h2),
            redactor,
            None,
            Arc::new(Ids::default()),
        );
        let names = [(3, Arc::from("veth0"))].into_iter().collect();
        Wire {
            w: WireHttp::new(cfg, p, names, Box::new(|_| None)),
            ts: 1_000,
            seq: [1000, 5000],
            out: Vec::new(),
        }
    }

    /// One frame from the client (d = 0) or the server (d = 1) at `seq`.
    fn frame(&mut self, d: usize, seq: u32, flags: &str, payload: &[u8], snap: Option<usize>) {
        let ((sa, sp), (da, dp)) = if d == 0 {
            (CLIENT, SERVER)
        } else {
            (SERVER, CLIENT)
        };
        let mut b = etherparse::PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4(sa, da, 64)
            .tcp(sp, dp, seq, 65535);
        if flags.contains('S') {
            b = b.syn();
        }
        if flags.contains('A') {
            b = b.ack(self.seq[1 - d]);
        }
        if flags.contains('F') {
            b = b.fin();
        }
        if flags.contains('R') {
            b = b.rst();
        }
        let mut buf = Vec::new();
        b.write(&mut buf, payload).unwrap();
        let wire_len = buf.len() as u32;
        if let Some(n) = snap {
            buf.truncate(n);
        }
        let spec = PacketSpec {
            ifindex: 3,
            ts_ns: self.ts,
            wire_len: Some(wire_len),
            flags: if snap.is_some() {
                hdrtap_abi::HDRTAP_PKT_F_SNAPPED as u16
            } else {
                0
            },
            ..PacketSpec::default()
        };
        self.ts += 1_000;
        self.w.event(&packet_event(&spec, &buf));
    }

    /// Payload from `d` at its next sequence number.
    fn send(&mut self, d: usize, payload: &[u8]) {
        let seq = self.seq[d];
        self.frame(d, seq, "A", payload, None);
        self.seq[d] = seq.wrapping_add(payload.len() as u32);
    }

    fn handshake(&mut self) {
        self.frame(0, self.seq[0] - 1, "S", b"", None);
        self.frame(1, self.seq[1] - 1, "SA", b"", None);
    }

    fn records(&mut self) -> Vec<Arc<HttpRecord>> {
        self.w.drain(&mut self.out);
        self.out
            .drain(..)
            .filter_map(|r| match r {
                Record::Http(h) => Some(h),
                _ => None,
            })
            .collect()
    }
}

const REQ: &[u8] = b"GET /a?x=1 HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer s3cret\r\n\r\n";
const RESP: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: t\r\n\r\nhello";

#[test]
fn a_keep_alive_connection_gives_paired_records_from_the_client_end() {
    let mut w = Wire::new();
    w.handshake();
    for _ in 0..2 {
        w.send(0, REQ);
        w.send(1, RESP);
    }
    // Pipelined: two requests in one segment, two responses in one.
    let two = [REQ, REQ].concat();
    w.send(0, &two);
    w.send(1, &[RESP, RESP].concat());
    w.frame(0, w.seq[0], "AF", b"", None);
    w.frame(1, w.seq[1], "AF", b"", None);
    let recs = w.records();
    assert_eq!(recs.len(), 8, "{recs:#?}");
    let reqs: Vec<_> = recs
        .iter()
        .filter(|r| r.kind == HttpKind::Request)
        .collect();
    let resps: Vec<_> = recs
        .iter()
        .filter(|r| r.kind == HttpKind::Response)
        .collect();
    assert_eq!((reqs.len(), resps.len()), (4, 4));
    for (q, r) in reqs.iter().zip(&resps) {
        assert_eq!(q.target.as_deref(), Some("/a?x=1"));
        assert_eq!(r.status, Some(200));
        assert_eq!(r.request.as_ref().unwrap().target, "/a?x=1");
        assert_eq!(r.header("Server"), Some("t"));
        assert!(q
            .header("Authorization")
            .unwrap()
            .contains("[REDACTED len=6"));
    }
    for rec in &recs {
        assert_eq!(rec.interface.as_deref(), Some("veth0"));
        assert_eq!(rec.role, crate::record::Role::Client);
        assert_eq!(rec.local.port, 40000);
        assert_eq!(rec.remote.port, 80);
        assert_eq!(rec.process.pid, 0, "no owner known");
        assert!(rec.flags.is_empty(), "{:?}", rec.flags);
        assert!(rec.tcp_seq.is_some());
    }
    let mut json = Vec::new();
    crate::output::push_record_json(&mut json, &recs[0]);
    let json = String::from_utf8(json).unwrap();
    assert!(
        json.contains(r#""source":"packet","interface":"veth0""#),
        "{json}"
    );
    assert!(!json.contains(r#""pid""#), "{json}");
    let c = w.w.counters();
    assert_eq!(
        (c.wire_conns, c.wire_conns_open),
        (1, 0),
        "FIN both ways ends it"
    );
    assert_eq!(c.wire_lost_bytes + c.wire_duplicate_bytes, 0);
}

#[test]
fn reordered_and_duplicated_segments_give_the_same_records() {
    let mut w = Wire::new();
    w.handshake();
    let s0 = w.seq[0];
    // The request in three segments: third, first, first again, second.
    let (a, rest) = REQ.split_at(10);
    let (b, c) = rest.split_at(20);
    w.frame(0, s0 + 30, "A", c, None);
    w.frame(0, s0, "A", a, None);
    w.frame(0, s0, "A", a, None);
    assert!(w.records().is_empty(), "not whole yet");
    w.frame(0, s0 + 10, "A", b, None);
    w.send(1, RESP);
    let recs = w.records();
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].header("Host"), Some("h"));
    assert_eq!(recs[1].status, Some(200));
    let c = w.w.counters();
    assert_eq!(c.wire_out_of_order, 1);
    assert_eq!(c.wire_duplicate_bytes, 10);
}

#[test]
fn a_lost_segment_in_a_header_block_is_a_gap_not_silence() {
    let mut w = Wire::with(WireConfig {
        hole_timeout_ns: 10_000,
        ..WireConfig::default()
    });
    w.handshake();
    w.send(0, REQ);
    w.send(1, RESP);
    // The second request loses bytes 10..20 (in its header block).
    let s0 = w.seq[0];
    w.frame(0, s0, "A", &REQ[..10], None);
    w.frame(0, s0 + 20, "A", &REQ[20..], None);
    w.seq[0] = s0 + REQ.len() as u32;
    // Packet time moves on past the hole timeout; the next request comes.
    w.ts += 1_000_000_000;
    w.send(0, REQ);
    w.send(1, RESP);
    w.send(1, RESP);
    w.frame(0, w.seq[0], "R", b"", None);
    let recs = w.records();
    let c = w.w.counters();
    assert_eq!((c.wire_gaps, c.wire_lost_bytes), (1, 10));
    let reqs: Vec<_> = recs
        .iter()
        .filter(|r| r.kind == HttpKind::Request)
        .collect();
    assert_eq!(reqs.len(), 3, "{recs:#?}");
    assert!(
        reqs[0].flags.is_empty() && reqs[2].flags.is_empty(),
        "{reqs:#?}"
    );
    assert!(reqs[1].flags.contains(&flag::GAP), "{:?}", reqs[1].flags);
}

#[test]
fn a_conflicting_retransmission_flags_the_record() {
    let mut w = Wire::new();
    w.handshake();
    let s0 = w.seq[0];
    // The tail first, then a rewrite of it ("/b"), then the head.
    w.frame(0, s0 + 4, "A", &REQ[4..], None);
    let mut evil = REQ[4..10].to_vec();
    evil[1] = b'b';
    w.frame(0, s0 + 4, "A", &evil, None);
    w.frame(0, s0, "A", &REQ[..4], None);
    let recs = w.records();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].target.as_deref(), Some("/a?x=1"), "first copy wins");
    assert_eq!(recs[0].flags, vec![flag::CONFLICT]);
    assert_eq!(w.w.counters().wire_conflict_bytes, 6);
}

#[test]
fn snapped_body_bytes_do_not_hurt_the_next_message() {
    let mut w = Wire::new();
    w.handshake();
    w.send(0, REQ);
    // A response with a 3000-byte body, captured to 200 bytes of frame.
    let mut big = b"HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n".to_vec();
    big.resize(big.len() + 3000, b'x');
    let seq = w.seq[1];
    w.frame(1, seq, "A", &big, Some(200));
    w.seq[1] = seq + big.len() as u32;
    w.send(0, REQ);
    w.send(1, RESP);
    let recs = w.records();
    let statuses: Vec<_> = recs.iter().filter_map(|r| r.status).collect();
    assert_eq!(statuses, vec![200, 200]);
    assert!(recs.iter().all(|r| r.flags.is_empty()), "{recs:#?}");
    assert_eq!(
        w.w.counters().wire_snapped_bytes,
        (big.len() + 54 - 200) as u64
    );
}

#[test]
fn midstream_connections_take_the_higher_port_as_client() {
    let mut w = Wire::new();
    w.send(1, RESP);
    w.send(0, REQ);
    w.send(1, RESP);
    let recs = w.records();
    let req = recs.iter().find(|r| r.kind == HttpKind::Request).unwrap();
    assert_eq!(req.local.port, 40000);
    assert!(req.flags.contains(&flag::MIDSTREAM));
}

#[test]
fn garbage_is_counted_not_parsed() {
    let mut w = Wire::new();
    let spec = PacketSpec {
        ifindex: 3,
        ..PacketSpec::default()
    };
    for junk in [&[][..], &[0xff; 14][..], &[0x45; 60][..]] {
        w.w.event(&packet_event(&spec, junk));
    }
    w.w.event(b"short");
    assert_eq!(w.w.counters().wire_undecodable, 3);
    assert_eq!(w.w.decode_errors, 1);
}

#[test]
fn h2c_with_prior_knowledge_goes_to_the_http2_tracker() {
    let mut w = Wire::new();
    w.handshake();
    let mut c = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    c.extend(crate::http2::frame::encode(4, 0, 0, &[]));
    // :method GET, :scheme http, :path / (static table), END_STREAM|END_HEADERS.
    c.extend(crate::http2::frame::encode(1, 0x5, 1, &[0x82, 0x86, 0x84]));
    // The preface and the HEADERS in two segments, the second first.
    let seq = w.seq[0];
    w.frame(0, seq + 30, "A", &c[30..], None);
    w.frame(0, seq, "A", &c[..30], None);
    w.seq[0] = seq + c.len() as u32;
    let mut s = crate::http2::frame::encode(4, 0, 0, &[]);
    s.extend(crate::http2::frame::encode(1, 0x5, 1, &[0x88])); // :status 200
    w.send(1, &s);
    let recs = w.records();
    assert_eq!(recs.len(), 2, "{recs:#?}");
    assert!(recs.iter().all(|r| r.version == "HTTP/2"));
    assert_eq!(recs[0].target.as_deref(), Some("/"));
    assert_eq!(recs[1].status, Some(200));
    assert!(recs.iter().all(|r| r.interface.as_deref() == Some("veth0")));
}
