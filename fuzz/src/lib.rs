//! The bodies of hdrtap's fuzz targets, one function per target.
//!
//! Each `fuzz_targets/<name>.rs` is one line calling the function of the same
//! name here, so that the same code also runs on stable Rust without any
//! instrumentation: `tests/corpus.rs` feeds every seed (`testdata/fuzz/<name>/`)
//! and every input a fuzzer ever crashed on (`fuzz/regressions/<name>/`)
//! through these functions under plain `cargo test`.
//!
//! Every function treats its input as hostile bytes, as the real program
//! receives them (ring-buffer records, payload of traced connections, packet
//! bytes, a filter expression typed by a user), and asserts the invariants the
//! rest of hdrtap relies on — not only "no panic": bounded buffers, valid
//! JSON, one line per readable record, programs the kernel accepts.

use std::path::Path;
use std::sync::Arc;

use hdrtap_abi::build::{close_event, data_event, DataSpec};
use hdrtap_abi::{self as abi, CloseEvent, DataEvent, Direction, Event, KernelRole, Tuple};
use hdrtap_core::filter;
use hdrtap_core::http::HttpTracker;
use hdrtap_core::http1::{Http1Tracker, SkipRequest, TrackerConfig};
use hdrtap_core::http2::hpack;
use hdrtap_core::output;
use hdrtap_core::packet::{self, Link};
use hdrtap_core::record::HttpRecord;

/// Target `abi_decode`: one ring-buffer record of either ring (HTTP events,
/// packet events, TLS file events), as the kernel would hand it over.
pub fn abi_decode(data: &[u8]) {
    match abi::decode(data) {
        Ok(Event::Data(ev)) => {
            assert!(ev.data.len() <= abi::HDRTAP_CHUNK_MAX as usize);
            assert!(ev.data.len() + abi::DATA_EVENT_SIZE <= data.len());
            assert!(ev.orig_len >= ev.data.len() as u64);
            let _ = ev.comm_str();
            let _ = format!("{ev:?}");
        }
        Ok(Event::Close(ev)) => {
            assert!(data.len() >= abi::CLOSE_EVENT_SIZE);
            let _ = format!("{ev:?}");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    if let Ok(ev) = abi::decode_packet(data) {
        assert!(ev.data.len() <= abi::HDRTAP_PKT_L7_SNAPLEN_MAX as usize);
        assert!(ev.wire_len as usize >= ev.data.len());
        // The whole userspace packet path: decode every header, both outputs.
        let name: Arc<str> = Arc::from("fuzz0");
        let rec = packet::decode_event(&ev, &name, 0);
        check_json(&packet::record_json(&rec));
        check_line(&packet::record_line(&rec));
    }
    let _ = abi::decode_file_event(data);
}

/// Target `packet_decode`: the bytes of one captured packet. The first byte
/// picks the link type, whether an offloaded VLAN tag is put back, and the
/// skb protocol; the second the wire length relative to the captured length.
/// Runs the userspace decoder (every header, JSON and readable output) and
/// the Rust mirror of the kernel parser (the filter's fields), and checks
/// the flags they must agree on.
pub fn packet_decode(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let Some((&extra, frame)) = rest.split_first() else {
        return;
    };
    let frame = frame
        .get(..abi::HDRTAP_PKT_SNAPLEN_MAX as usize)
        .unwrap_or(frame);
    let link = if sel & 1 == 0 {
        Link::Ether
    } else {
        Link::RawIp
    };
    let accel = (sel & 2 != 0).then_some((
        if sel & 4 == 0 { 0x8100 } else { 0x88a8 },
        u16::from(extra) << 4 | u16::from(sel >> 4),
    ));
    let protocol = match sel >> 6 {
        0 => 0,
        1 => 0x0800,
        2 => 0x86dd,
        _ => 0x0806,
    };
    let wire_len = (frame.len() as u32).saturating_add(u32::from(extra) * 16);
    let h = packet::decode_frame(frame, link, accel, protocol, wire_len);
    let _ = packet::addresses(&h);
    let _ = format!("{h:?}");

    // The same bytes as a ring-buffer event, through the command's path.
    let spec = abi::build::PacketSpec {
        wire_len: Some(wire_len),
        flags: u16::from(sel) << 1 & 0x3f,
        link: u8::from(link == Link::RawIp),
        vlan_tci: accel.map_or(0, |a| a.1),
        vlan_proto: accel.map_or(0, |a| a.0),
        protocol,
        ..Default::default()
    };
    let raw = abi::build::packet_event(&spec, frame);
    let ev = abi::decode_packet(&raw).expect("a packet event built from its spec decodes");
    let rec = packet::decode_event(&ev, "eth0", 1_700_000_000_000_000_000);
    let json = packet::record_json(&rec);
    check_json(&json);
    check_line(&packet::record_line(&rec));
    // The writers copy a flow's repeated part from their memo: the same
    // bytes, when it is written (a miss) and when it is copied (a hit).
    let mut memo = None;
    let rec = hdrtap_core::sink::Record::Packet(Arc::new(rec));
    for _ in 0..2 {
        let mut memoized = Vec::new();
        assert!(rec.write_memo(output::Format::Json, &mut memoized, &mut memo));
        assert_eq!(
            String::from_utf8_lossy(&memoized),
            format!("{json}\n"),
            "memoized packet JSON differs"
        );
    }

    // The kernel parser's Rust mirror over the same bytes.
    let link_u8 = if link == Link::RawIp {
        abi::HDRTAP_LINK_RAW_IP
    } else {
        abi::HDRTAP_LINK_ETHER
    } as u8;
    let f = filter::extract(frame, link_u8, accel.map(|a| a.1), protocol);
    for field in 0..abi::HDRTAP_PF_FIELD_MAX + 2 {
        let _ = f.get(field);
    }
    if f.has(abi::HDRTAP_PF_SRC_PORT) || f.has(abi::HDRTAP_PF_DST_PORT) {
        assert!(
            f.has(abi::HDRTAP_PF_L4_PROTO),
            "ports without a protocol: {f:?}"
        );
    }
}

/// Target `tcp_reassembly`: TCP segments of a few connections seen on one
/// interface, as `hdrtap http --source packets` reads them, in any order,
/// repeated, overlapping, cut by a snaplen, with garbage between. The input
/// is a script of segments, each: a control byte (bit 0: from the server;
/// bits 1-2: which of four client ports; bits 3-5: SYN, FIN, RST; bit 6: a
/// 16-byte snaplen cut; bit 7: a garbage event instead), a sequence offset
/// (u16, from the direction's base), a payload length (u8) and the payload.
/// Checks: no panic; the held bytes never pass the budget; every record is
/// valid JSON naming its interface; at the end nothing is held and no
/// connection stays open.
pub fn tcp_reassembly(data: &[u8]) {
    use hdrtap_core::packet::build::{build, FrameSpec, L4};
    use hdrtap_core::pipeline::{HttpPipeline, Ids};
    use hdrtap_core::redact::Redactor;
    use hdrtap_core::sink::Record;
    use hdrtap_core::wire::{WireConfig, WireHttp};

    let h1 = http1_config(0x55);
    let h2 = HttpTracker::h2_config_like(&h1);
    let pipeline = HttpPipeline::new(
        HttpTracker::new(h1, h2),
        Redactor::with_key([1; 16], ["authorization"]),
        None,
        Arc::new(Ids::default()),
    );
    let cfg = WireConfig {
        max_flows: 3,
        max_held_bytes: 2048,
        hole_timeout_ns: 50_000,
        idle_timeout_ns: 10_000_000,
    };
    let budget = cfg.max_held_bytes as u64;
    let names = [(2, Arc::from("fz0"))].into_iter().collect();
    let mut w = WireHttp::new(cfg, pipeline, names, Box::new(|_| None));
    let mut out = Vec::new();
    let mut rest = data;
    let mut ts = 1u64;
    while let [ctl, s0, s1, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (payload, next) = tail.split_at(n);
        rest = next;
        ts += 10_000;
        let spec = abi::build::PacketSpec {
            ifindex: 2,
            ts_ns: ts,
            ..Default::default()
        };
        if ctl & 0x80 != 0 {
            w.event(&abi::build::packet_event(&spec, payload));
            continue;
        }
        let server = ctl & 1 != 0;
        let cport = 40000 + u16::from(ctl >> 1 & 3);
        let (sport, dport) = if server { (80, cport) } else { (cport, 80) };
        let (a, b) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        let (src, dst) = if server { (b, a) } else { (a, b) };
        let flags = (ctl >> 3 & 1) << 1 | (ctl >> 4 & 1) | (ctl >> 5 & 1) << 2 | 0x10;
        let base: u32 = if server { 0xffff_ff00 } else { 1000 };
        let mut f = FrameSpec::tcp4(src, dst, sport, dport, flags);
        if let L4::Tcp { seq, .. } = &mut f.l4 {
            *seq = base.wrapping_add(u32::from(u16::from_le_bytes([*s0, *s1])));
        }
        f.payload = payload.to_vec();
        let mut frame = build(&f);
        let wire_len = frame.len() as u32;
        if ctl & 0x40 != 0 {
            frame.truncate(frame.len().min(54 + 16));
        }
        let spec = abi::build::PacketSpec {
            wire_len: Some(wire_len),
            ..spec
        };
        w.event(&abi::build::packet_event(&spec, &frame));
        let c = w.counters();
        assert!(c.wire_held_bytes <= budget + 255, "held {c:?}");
        assert!(c.wire_conns_open <= 3, "{c:?}");
        w.drain(&mut out);
    }
    w.tick(ts + 1_000_000_000);
    w.finish();
    w.drain(&mut out);
    let c = w.counters();
    assert_eq!((c.wire_held_bytes, c.wire_conns_open), (0, 0), "{c:?}");
    for r in &out {
        if let Record::Http(r) = r {
            assert_eq!(r.interface.as_deref(), Some("fz0"));
            let mut json = Vec::new();
            output::push_record_json(&mut json, r);
            check_json(&String::from_utf8_lossy(&json));
        }
    }
}

/// Target `filter_parse`: a filter expression as a user would type it. When
/// it compiles, the program must fit the kernel's limits, encode to the
/// kernel's struct, and evaluate without panicking on a few packets.
pub fn filter_parse(data: &[u8]) {
    let src = String::from_utf8_lossy(data);
    match filter::compile(&src) {
        Ok(prog) => {
            assert!(prog.insns.len() <= abi::HDRTAP_PF_MAX_INSNS as usize);
            assert_eq!(prog.encode().len(), abi::HDRTAP_PF_PROG_SIZE as usize);
            for frame in sample_frames() {
                let f = filter::extract(&frame, abi::HDRTAP_LINK_ETHER as u8, None, 0);
                let _ = prog.matches(&f);
            }
            // The normalized source compiles to the same program.
            let again = filter::compile(&prog.source).expect("normalized source compiles");
            assert_eq!(again.insns, prog.insns, "source {:?}", prog.source);
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.contains('\n'), "multi-line error: {msg:?}");
            assert!(e.pos >= 1, "error position {} is not 1-based", e.pos);
        }
    }
}

fn sample_frames() -> Vec<Vec<u8>> {
    use hdrtap_core::packet::build::{build, FrameSpec};
    vec![
        build(&FrameSpec::tcp4(
            [10, 0, 0, 1].into(),
            [10, 0, 0, 2].into(),
            1234,
            80,
            0x12,
        )),
        build(&FrameSpec::udp6(
            "fd00::1".parse().unwrap_or(std::net::Ipv6Addr::LOCALHOST),
            "fd00::2".parse().unwrap_or(std::net::Ipv6Addr::LOCALHOST),
            5353,
            53,
        )),
        vec![0u8; 14],
    ]
}

// ---------------------------------------------------------------------------
// http1_stream

/// Limits the `http1_stream` target runs the tracker with (chosen by the
/// first input byte).
pub fn http1_config(sel: u8) -> TrackerConfig {
    TrackerConfig {
        max_header_bytes: [256, 1024, 4096, 16384][usize::from(sel & 3)],
        max_conns: 1 + usize::from(sel >> 2 & 3),
        max_headers: [4, 64, 256, 1000][usize::from(sel >> 4 & 3)],
        max_pending: [1, 8, 1024, 1024][usize::from(sel >> 6)],
        clock_offset_ns: 0,
        // Small, so that the budget is exercised too.
        max_buffered_bytes: 64 * 1024,
        // Small, so that bodies the kernel would skip occur often.
        skip_bodies_from: 256,
    }
}

/// One step of an `http1_stream` script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Bytes moved on connection `conn` in direction `dir` by one syscall.
    /// `lost` bytes before them were never delivered (events dropped by the
    /// kernel), `back` bytes of them repeat what was already delivered, and
    /// `uncaptured` bytes after them were moved but not copied (per-call
    /// cap, failed read, sendfile). `flags` are `enum hdrtap_data_flags`.
    Data {
        conn: u8,
        dir: Direction,
        lost: u64,
        back: u64,
        uncaptured: u64,
        flags: u16,
        bytes: Vec<u8>,
    },
    /// The connection was closed.
    Close { conn: u8 },
}

/// Decode a script: after the config byte, each op is
/// `[ctl] [param] [len] payload`, where
/// * `ctl` bits 0: direction; 1-2: connection (0-3); 3-5: kind (0-3 plain
///   data, 4 data after `param` lost bytes, 5 data repeating its first
///   `param` bytes, 6 data with `param * 64` uncaptured bytes after it,
///   7 close); 6-7: flags (midstream, TLS);
/// * `len` is one byte, or 255 followed by a little-endian u16;
/// * the payload is the next `len` bytes (or what is left).
///
/// Every byte string is a valid script, so the fuzzer's mutations always
/// reach the tracker; [`encode_script`] writes one back (for seeds).
pub fn decode_script(data: &[u8]) -> (u8, Vec<Op>) {
    let Some((&sel, mut rest)) = data.split_first() else {
        return (0, Vec::new());
    };
    let mut ops = Vec::new();
    let take = |n: usize, rest: &mut &[u8]| -> Vec<u8> {
        let n = n.min(rest.len());
        let (a, b) = rest.split_at(n);
        *rest = b;
        a.to_vec()
    };
    while let Some((&ctl, r)) = rest.split_first() {
        rest = r;
        let param = take(1, &mut rest).first().copied().unwrap_or(0);
        let conn = ctl >> 1 & 3;
        let kind = ctl >> 3 & 7;
        if kind == 7 {
            ops.push(Op::Close { conn });
            continue;
        }
        let mut len = usize::from(take(1, &mut rest).first().copied().unwrap_or(0));
        if len == 255 {
            let b = take(2, &mut rest);
            len = usize::from(u16::from_le_bytes([
                b.first().copied().unwrap_or(0),
                b.get(1).copied().unwrap_or(0),
            ]));
        }
        let bytes = take(len, &mut rest);
        let mut flags = 0u16;
        if ctl & 0x40 != 0 {
            flags |= abi::HDRTAP_DF_MIDSTREAM as u16;
        }
        if ctl & 0x80 != 0 {
            flags |= abi::HDRTAP_DF_TLS as u16;
        }
        ops.push(Op::Data {
            conn,
            dir: if ctl & 1 == 0 {
                Direction::Egress
            } else {
                Direction::Ingress
            },
            lost: if kind == 4 { u64::from(param) } else { 0 },
            back: if kind == 5 { u64::from(param) } else { 0 },
            uncaptured: if kind == 6 { u64::from(param) * 64 } else { 0 },
            flags,
            bytes,
        });
    }
    (sel, ops)
}

/// The script [`decode_script`] reads back as (`sel`, `ops`).
pub fn encode_script(sel: u8, ops: &[Op]) -> Vec<u8> {
    let mut out = vec![sel];
    for op in ops {
        match op {
            Op::Close { conn } => out.extend([7 << 3 | (conn & 3) << 1, 0]),
            Op::Data {
                conn,
                dir,
                lost,
                back,
                uncaptured,
                flags,
                bytes,
            } => {
                let (kind, param) = if *lost > 0 {
                    (4, *lost)
                } else if *back > 0 {
                    (5, *back)
                } else if *uncaptured > 0 {
                    (6, uncaptured / 64)
                } else {
                    (0, 0)
                };
                let mut ctl = kind << 3 | (conn & 3) << 1 | u8::from(*dir == Direction::Ingress);
                if flags & abi::HDRTAP_DF_MIDSTREAM as u16 != 0 {
                    ctl |= 0x40;
                }
                if flags & abi::HDRTAP_DF_TLS as u16 != 0 {
                    ctl |= 0x80;
                }
                out.extend([ctl, param.min(255) as u8]);
                let len = bytes.len().min(usize::from(u16::MAX));
                if len < 255 {
                    out.push(len as u8);
                } else {
                    out.push(255);
                    out.extend((len as u16).to_le_bytes());
                }
                out.extend(&bytes[..len]);
            }
        }
    }
    out
}

/// What a script drives: a tracker of connections (HTTP/1 alone, or every
/// protocol behind the router) and the invariants it must keep after each
/// step.
trait Driven {
    fn data(&mut self, ev: &DataEvent<'_>, out: &mut Vec<Arc<HttpRecord>>);
    fn close(&mut self, ev: &CloseEvent, out: &mut Vec<Arc<HttpRecord>>);
    fn skips(&mut self) -> Vec<SkipRequest>;
    /// Bounds on connections and buffers, checked after every step.
    fn check(&self);
    fn close_all(&mut self, out: &mut Vec<Arc<HttpRecord>>);
    fn conns(&self) -> usize;
}

/// Feed `ops` to `t` as real encoded events, checking every record
/// (`max_headers`, `versions`) and `t`'s bounds after each step.
fn run_script(ops: &[Op], t: &mut dyn Driven, max_headers: usize, versions: &[&str]) {
    let mut out: Vec<Arc<HttpRecord>> = Vec::new();
    // Next stream position per (connection, direction).
    let mut pos = [[0u64; 2]; 4];
    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::Close { conn } => {
                let c = usize::from(*conn);
                let raw = close_event(u64::from(*conn) + 1, 100, 3, i as u64, pos[c]);
                match abi::decode(&raw) {
                    Ok(Event::Close(ev)) => t.close(&ev, &mut out),
                    other => panic!("close event did not decode: {other:?}"),
                }
                pos[c] = [0, 0];
            }
            Op::Data {
                conn,
                dir,
                lost,
                back,
                uncaptured,
                flags,
                bytes,
            } => {
                let c = usize::from(*conn);
                let d = dir.index();
                // Events carry at most one chunk; longer "syscalls" are split
                // as the kernel splits them.
                let start = pos[c][d].saturating_add(*lost).saturating_sub(*back);
                let mut at = start;
                let chunks: Vec<&[u8]> = if bytes.is_empty() {
                    vec![&[][..]]
                } else {
                    bytes.chunks(abi::HDRTAP_CHUNK_MAX as usize).collect()
                };
                let n = chunks.len();
                for (k, chunk) in chunks.into_iter().enumerate() {
                    let tail = if k + 1 == n { *uncaptured } else { 0 };
                    let orig = chunk.len() as u64 + tail;
                    let spec = DataSpec {
                        conn_id: u64::from(*conn) + 1,
                        tgid: 100 + u32::from(*conn),
                        tid: 200 + i as u32,
                        ts_ns: 1_000 + i as u64,
                        pos: at,
                        orig_len: Some(orig),
                        flags: *flags,
                        dir: *dir,
                        role: [KernelRole::Unknown, KernelRole::Client, KernelRole::Server][c % 3],
                        source: if flags & abi::HDRTAP_DF_TLS as u16 != 0 {
                            abi::HDRTAP_SRC_SSL_READ as u8
                        } else {
                            abi::HDRTAP_SRC_READ as u8
                        },
                        tls_lib: u16::from(flags & abi::HDRTAP_DF_TLS as u16 != 0),
                        tuple: Tuple {
                            local_ip: [127, 0, 0, 1].into(),
                            local_port: 40000 + u16::from(*conn),
                            remote_ip: [127, 0, 0, 1].into(),
                            remote_port: 8080,
                        },
                        comm: "fuzz".into(),
                        ..Default::default()
                    };
                    let raw = data_event(&spec, chunk);
                    match abi::decode(&raw) {
                        Ok(Event::Data(ev)) => t.data(&ev, &mut out),
                        other => panic!("data event did not decode: {other:?}"),
                    }
                    // A skip request is about the stream just fed, and
                    // points past the bytes already moved on it.
                    for skip in t.skips() {
                        assert_eq!((skip.conn_id, skip.dir), (spec.conn_id, *dir));
                        assert!(skip.until > start, "{skip:?} at or before {start}");
                    }
                    at = at.saturating_add(orig);
                }
                pos[c][d] = pos[c][d].max(at);
            }
        }
        t.check();
        check_records(&out, max_headers, versions);
        out.clear();
    }
    t.close_all(&mut out);
    check_records(&out, max_headers, versions);
    assert_eq!(t.conns(), 0, "connections still open after close_all");
}

struct H1 {
    t: Http1Tracker,
    bound: usize,
    max_conns: usize,
    max_buffered: usize,
}

impl Driven for H1 {
    fn data(&mut self, ev: &DataEvent<'_>, out: &mut Vec<Arc<HttpRecord>>) {
        self.t.on_data(ev, out);
    }
    fn close(&mut self, ev: &CloseEvent, out: &mut Vec<Arc<HttpRecord>>) {
        self.t.on_close(ev, out);
    }
    fn skips(&mut self) -> Vec<SkipRequest> {
        self.t.take_skips().collect()
    }
    fn check(&self) {
        let t = &self.t;
        assert!(
            t.conns() <= self.max_conns,
            "{} connections tracked, limit {}",
            t.conns(),
            self.max_conns
        );
        assert!(
            t.largest_buffer() <= self.bound,
            "a direction buffers {} bytes, bound {}",
            t.largest_buffer(),
            self.bound
        );
        let buffered = t.stats().buffered_bytes as usize;
        assert_eq!(
            buffered,
            t.buffered_bytes_capacity(),
            "the running total of buffered bytes drifted"
        );
        assert!(
            buffered <= self.max_buffered,
            "{buffered} bytes buffered, budget {}",
            self.max_buffered
        );
    }
    fn close_all(&mut self, out: &mut Vec<Arc<HttpRecord>>) {
        self.t.close_all(out);
        assert_eq!(self.t.stats().conns_open, 0, "{:?}", self.t.stats());
    }
    fn conns(&self) -> usize {
        self.t.conns()
    }
}

/// Target `http1_stream`: connection reassembly and HTTP/1 parsing fed by a
/// script of syscall-sized chunks in both directions of up to four
/// connections, with lost events, repeated ranges, uncaptured tails,
/// midstream/TLS flags and closes (see [`decode_script`]). Every event goes
/// through the real encoder and `hdrtap_abi::decode`, as in hdrtap.
pub fn http1_stream(data: &[u8]) {
    let (sel, ops) = decode_script(data);
    let cfg = http1_config(sel);
    let max_headers = cfg.max_headers;
    let mut h1 = H1 {
        bound: cfg.max_header_bytes.max(256) + abi::HDRTAP_CHUNK_MAX as usize,
        max_conns: cfg.max_conns,
        max_buffered: cfg.max_buffered_bytes,
        t: Http1Tracker::new(cfg),
    };
    h1.t.set_tls_library(1, "libssl.so.3");
    run_script(
        &ops,
        &mut h1,
        max_headers,
        &["HTTP/1.0", "HTTP/1.1", "HTTP/1.x"],
    );
}

struct Router {
    t: HttpTracker,
    max_conns: usize,
    tick: u64,
}

impl Driven for Router {
    fn data(&mut self, ev: &DataEvent<'_>, out: &mut Vec<Arc<HttpRecord>>) {
        self.t.on_data(ev, out);
        // Now and then, time passes (held HTTP/2 resets come out).
        self.tick += 1;
        if self.tick.is_multiple_of(7) {
            self.t.tick(ev.ts_ns.saturating_add(1 << 30), out);
        }
    }
    fn close(&mut self, ev: &CloseEvent, out: &mut Vec<Arc<HttpRecord>>) {
        self.t.on_close(ev, out);
    }
    fn skips(&mut self) -> Vec<SkipRequest> {
        self.t.take_skips().collect()
    }
    fn check(&self) {
        let open = self.t.http1_stats().conns_open + self.t.http2_stats().conns_open;
        assert!(
            open as usize <= 2 * self.max_conns,
            "{open} connections tracked, limit {} per protocol",
            self.max_conns
        );
    }
    fn close_all(&mut self, out: &mut Vec<Arc<HttpRecord>>) {
        self.t.close_all(out);
    }
    fn conns(&self) -> usize {
        (self.t.http1_stats().conns_open + self.t.http2_stats().conns_open) as usize
    }
}

/// Target `http2_stream`. With the top bit of the first byte clear: a
/// script as for `http1_stream`, through the protocol router (HTTP/1,
/// HTTP/2 from the preface, a server's SETTINGS, frames found mid-stream,
/// an h2c upgrade): frames, CONTINUATION, padding, resets, HPACK, all from
/// hostile bytes. With it set: header blocks (a 16-bit length, then the
/// block) through one HPACK decoder, seen from the start or joined
/// mid-stream (bit 0), its table allowed to grow (bit 1).
pub fn http2_stream(data: &[u8]) {
    let Some(&sel) = data.first() else {
        return;
    };
    if sel & 0x80 != 0 {
        return hpack_blocks(sel, data.get(1..).unwrap_or_default());
    }
    let (sel, ops) = decode_script(data);
    let h1 = http1_config(sel);
    let max_headers = h1.max_headers;
    let mut h2 = HttpTracker::h2_config_like(&h1);
    // Small, so that the stream table, floods and rapid resets are reached.
    h2.max_streams = 8;
    h2.max_block_bytes = 4096;
    h2.rapid_reset_count = 4;
    let mut r = Router {
        max_conns: h1.max_conns,
        t: HttpTracker::new(h1, h2),
        tick: 0,
    };
    r.t.set_tls_library(1, "libssl.so.3");
    run_script(
        &ops,
        &mut r,
        max_headers,
        &["HTTP/1.0", "HTTP/1.1", "HTTP/1.x", "HTTP/2"],
    );
}

fn hpack_blocks(sel: u8, mut rest: &[u8]) {
    let mut d = hpack::Decoder::new(sel & 1 == 0);
    if sel & 2 != 0 {
        d.set_max_allowed(1 << 20);
    }
    while rest.len() >= 2 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        let end = (2 + len).min(rest.len());
        let block = &rest[2..end];
        rest = &rest[end..];
        let mut fields = 0usize;
        let mut undecoded = 0usize;
        let info = d.decode(block, &mut |f| {
            fields += 1;
            undecoded += usize::from(f.name.is_none() || f.value.is_none());
            // What a field can hold: its block's bytes, or table entries.
            if let Some(v) = f.value {
                assert!(v.len() <= 8 * block.len() + hpack::MAX_TABLE_BYTES);
            }
        });
        assert_eq!((info.fields, info.undecoded), (fields, undecoded));
        if info.error.is_some() {
            assert!(!d.exact(), "an exact table after an error");
        }
        assert!(d.known_entries() * 32 <= hpack::MAX_TABLE_BYTES);
    }
}

fn check_records(out: &[Arc<HttpRecord>], max_headers: usize, versions: &[&str]) {
    // The binary's writer copies repeated parts from its memo: the same
    // bytes, whatever the records.
    let mut memo = output::JsonMemo::new();
    for rec in out {
        assert!(
            rec.headers.len() <= max_headers,
            "{} headers kept, limit {max_headers}",
            rec.headers.len()
        );
        assert!(versions.contains(&rec.version), "version {}", rec.version);
        // The version goes unseen only when the start line was cut.
        assert!(
            rec.version != "HTTP/1.x" || rec.flags.contains(&"cut"),
            "HTTP/1.x without the cut flag: {:?}",
            rec.flags
        );
        let json = output::record_json(rec);
        let mut memoized = Vec::new();
        output::push_record_json_memo(&mut memoized, rec, &mut memo);
        assert_eq!(
            String::from_utf8_lossy(&memoized),
            json,
            "memoized JSON differs"
        );
        check_json(&json);
        check_line(&output::record_line(rec));
    }
}

/// A record's NDJSON: exactly one line holding one JSON object.
fn check_json(s: &str) {
    let line = s.strip_suffix('\n').unwrap_or(s);
    assert!(!line.contains('\n'), "JSON record spans lines: {s:?}");
    match serde_json::from_str::<serde_json::Value>(line) {
        Ok(v) => assert!(v.is_object(), "JSON record is not an object: {s:?}"),
        Err(e) => panic!("invalid JSON ({e}): {s:?}"),
    }
}

/// A readable record: one line, no terminal control characters that could
/// forge other lines or rewrite the terminal (CR, ESC, ...).
fn check_line(s: &str) {
    let line = s.strip_suffix('\n').unwrap_or(s);
    assert!(
        !line.chars().any(|c| c.is_control() && c != '\t'),
        "control character in a readable record: {s:?}"
    );
}

// ---------------------------------------------------------------------------
// config_parse

/// hdrtap's command line and configuration loader, compiled in as they are
/// (the binary crate has no library to link against).
#[allow(dead_code, unused_imports, clippy::all)]
#[rustfmt::skip]
#[path = "../../crates/hdrtap/src"]
mod hdrtap_bin {
    pub mod cli;
    pub mod config;
}
// config.rs names `crate::cli`.
use hdrtap_bin::{cli, config};

/// Target `config_parse`: the text of `hdrtap run --config FILE` (TOML),
/// which a deployment writes and hdrtap reads as root. Accepted or refused
/// with one error line naming the file, never a panic.
pub fn config_parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match config::parse(Path::new("fuzz.toml"), text) {
        Ok(plan) => {
            let _ = format!("{plan:?}");
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.contains("fuzz.toml"),
                "error does not name the file: {msg}"
            );
            assert!(!msg.contains('\n'), "multi-line error: {msg:?}");
        }
    }
}
