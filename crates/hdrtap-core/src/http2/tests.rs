//! HTTP/2 tracker on hand-made frame streams, fed as real encoded events
//! (`hdrtap_abi::build`), so positions, gaps and flags work as in
//! production.
use hdrtap_abi::build::{close_event, data_event, DataSpec};
use hdrtap_abi::{decode, Event, HDRTAP_DF_MIDSTREAM};
use proptest::prelude::*;

use super::frame::{flags as fl, ty, PREFACE};
use super::*;

const EG: Direction = Direction::Egress;
const IN: Direction = Direction::Ingress;

// ---- a tiny HPACK encoder (no Huffman) --------------------------------------

fn int(flags: u8, n: u32, v: u64) -> Vec<u8> {
    let mask = (1u64 << n) - 1;
    if v < mask {
        return vec![flags | v as u8];
    }
    let mut out = vec![flags | mask as u8];
    let mut rest = v - mask;
    while rest >= 128 {
        out.push((rest & 0x7f) as u8 | 0x80);
        rest >>= 7;
    }
    out.push(rest as u8);
    out
}

fn string(s: &[u8]) -> Vec<u8> {
    let mut v = int(0, 7, s.len() as u64);
    v.extend_from_slice(s);
    v
}

/// A literal field with a literal name: `prefix` 0x00 (without indexing),
/// 0x40 (incremental indexing), 0x10 (never indexed).
fn lit(prefix: u8, name: &str, value: &str) -> Vec<u8> {
    let mut v = vec![prefix];
    v.extend(string(name.as_bytes()));
    v.extend(string(value.as_bytes()));
    v
}

fn idx(i: u64) -> Vec<u8> {
    int(0x80, 7, i)
}

fn block(fields: &[Vec<u8>]) -> Vec<u8> {
    fields.concat()
}

/// GET `path` on `authority`, scheme https, with `extra` literal fields.
fn get(path: &str, authority: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut f = vec![
        idx(2),
        idx(7),
        lit(0, ":path", path),
        lit(0, ":authority", authority),
    ];
    for (n, v) in extra {
        f.push(lit(0, n, v));
    }
    block(&f)
}

fn status(code: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut f = vec![lit(0, ":status", code)];
    for (n, v) in extra {
        f.push(lit(0, n, v));
    }
    block(&f)
}

use super::frame::encode as frame;

fn headers(stream: u32, end_stream: bool, blk: &[u8]) -> Vec<u8> {
    let f = fl::END_HEADERS | if end_stream { fl::END_STREAM } else { 0 };
    frame(ty::HEADERS, f, stream, blk)
}

fn data(stream: u32, end_stream: bool, len: usize) -> Vec<u8> {
    frame(
        ty::DATA,
        if end_stream { fl::END_STREAM } else { 0 },
        stream,
        &vec![b'x'; len],
    )
}

fn settings(entries: &[(u16, u32)]) -> Vec<u8> {
    let mut p = Vec::new();
    for (id, v) in entries {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&v.to_be_bytes());
    }
    frame(ty::SETTINGS, 0, 0, &p)
}

fn rst(stream: u32, code: u32) -> Vec<u8> {
    frame(ty::RST_STREAM, 0, stream, &code.to_be_bytes())
}

/// The client's first bytes: preface and SETTINGS.
fn client_start() -> Vec<u8> {
    let mut v = PREFACE.to_vec();
    v.extend(settings(&[]));
    v
}

// ---- the harness -----------------------------------------------------------

/// One connection seen from the client process (egress = requests).
struct H {
    t: Http2Tracker,
    out: Vec<Arc<HttpRecord>>,
    pos: [u64; 2],
    spec: DataSpec,
}

impl H {
    fn new() -> Self {
        Self::with(Http2Config::default())
    }

    fn with(cfg: Http2Config) -> Self {
        H {
            t: Http2Tracker::new(cfg),
            out: Vec::new(),
            pos: [0, 0],
            spec: DataSpec {
                ts_ns: 1000,
                ..Default::default()
            },
        }
    }

    fn raw(&mut self, dir: Direction, pos: u64, orig_len: u64, data: &[u8], flags: u16) {
        let spec = DataSpec {
            dir,
            pos,
            orig_len: Some(orig_len),
            flags: self.spec.flags | flags,
            ..self.spec.clone()
        };
        let buf = data_event(&spec, data);
        let Ok(Event::Data(ev)) = decode(&buf) else {
            panic!("bad event")
        };
        self.t.on_data(&ev, &mut self.out);
        let d = dir.index();
        self.pos[d] = self.pos[d].max(pos + orig_len);
        self.spec.ts_ns += 1000;
    }

    fn send(&mut self, dir: Direction, data: &[u8]) {
        let pos = self.pos[dir.index()];
        self.raw(dir, pos, data.len() as u64, data, 0);
    }

    fn close(&mut self) {
        let buf = close_event(self.spec.conn_id, 100, 3, self.spec.ts_ns, self.pos);
        let Ok(Event::Close(ev)) = decode(&buf) else {
            panic!("bad close")
        };
        self.t.on_close(&ev, &mut self.out);
    }

    fn take(&mut self) -> Vec<HttpRecord> {
        std::mem::take(&mut self.out)
            .into_iter()
            .map(Arc::unwrap_or_clone)
            .collect()
    }
}

fn h2(r: &HttpRecord) -> &H2Info {
    r.h2.as_deref().expect("an HTTP/2 record")
}

fn pairs(r: &HttpRecord) -> Vec<(String, String)> {
    r.headers.to_vec()
}

/// A connection from its start: preface both ways, then `exchanges`.
fn opened() -> H {
    let mut h = H::new();
    h.send(EG, &client_start());
    h.send(IN, &settings(&[]));
    h
}

// ---- tests -------------------------------------------------------------------

#[test]
fn request_and_response_pair_by_stream() {
    let mut h = opened();
    h.send(
        EG,
        &headers(1, true, &get("/a", "example.com", &[("user-agent", "t/1")])),
    );
    let mut resp = headers(1, false, &status("200", &[("server", "s")]));
    resp.extend(data(1, true, 100));
    h.send(IN, &resp);
    let r = h.take();
    assert_eq!(r.len(), 2, "{r:#?}");
    let (q, s) = (&r[0], &r[1]);
    assert_eq!(q.kind, HttpKind::Request);
    assert_eq!((q.version, q.role), ("HTTP/2", Role::Client));
    assert_eq!(
        (q.method.as_deref(), q.target.as_deref()),
        (Some("GET"), Some("/a"))
    );
    assert_eq!(h2(q).stream_id, 1);
    assert_eq!(h2(q).authority.as_deref(), Some("example.com"));
    assert_eq!(h2(q).scheme.as_deref(), Some("https"));
    assert_eq!(
        pairs(q),
        vec![
            (":method".into(), "GET".into()),
            (":scheme".into(), "https".into()),
            (":path".into(), "/a".into()),
            (":authority".into(), "example.com".into()),
            ("user-agent".into(), "t/1".into()),
        ]
    );
    assert_eq!(
        q.header_bytes,
        get("/a", "example.com", &[("user-agent", "t/1")]).len()
    );
    assert_eq!(s.kind, HttpKind::Response);
    assert_eq!(s.status, Some(200));
    assert_eq!(s.request.as_ref().unwrap().target, "/a");
    assert_eq!(s.latency_ns, Some(1000));
    assert!(s.flags.is_empty(), "{:?}", s.flags);
    assert_eq!(h.t.stats().data_bytes, 100);
}

#[test]
fn interleaved_streams_pair_by_id_not_order() {
    let mut h = opened();
    let mut reqs = Vec::new();
    for (id, p) in [(1, "/one"), (3, "/three"), (5, "/five")] {
        reqs.extend(headers(id, true, &get(p, "a", &[])));
    }
    h.send(EG, &reqs);
    let mut resps = Vec::new();
    for (id, code) in [(5, "205"), (1, "201"), (3, "203")] {
        resps.extend(headers(id, false, &status(code, &[])));
        resps.extend(data(id, false, 10));
    }
    for id in [3, 5, 1] {
        resps.extend(data(id, true, 5));
    }
    h.send(IN, &resps);
    let r = h.take();
    let got: Vec<(u32, Option<u16>, String)> = r[3..]
        .iter()
        .map(|x| {
            (
                h2(x).stream_id,
                x.status,
                x.request.as_ref().unwrap().target.to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (5, Some(205), "/five".into()),
            (1, Some(201), "/one".into()),
            (3, Some(203), "/three".into())
        ]
    );
}

#[test]
fn continuation_padding_and_priority() {
    let mut h = opened();
    let blk = get(
        "/big",
        "a",
        &[("x-long", &"v".repeat(300)), ("x-more", "m")],
    );
    let (a, rest) = blk.split_at(10);
    let (b, c) = rest.split_at(100);
    // HEADERS padded (3 bytes) with priority, then two CONTINUATIONs.
    let mut p = vec![3u8];
    p.extend_from_slice(&[0x80, 0, 0, 0, 16]); // exclusive, depends on 0, weight 16
    p.extend_from_slice(a);
    p.extend_from_slice(&[0, 0, 0]);
    let mut bytes = frame(
        ty::HEADERS,
        fl::PADDED | fl::PRIORITY | fl::END_STREAM,
        1,
        &p,
    );
    bytes.extend(frame(ty::CONTINUATION, 0, 1, b));
    bytes.extend(frame(ty::CONTINUATION, fl::END_HEADERS, 1, c));
    h.send(EG, &bytes);
    let r = h.take();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].header("x-long").map(str::len), Some(300));
    assert_eq!(r[0].header("x-more"), Some("m"));
    assert_eq!(r[0].header_bytes, blk.len());
}

#[test]
fn split_at_every_byte_gives_the_same_records() {
    let mut whole = client_start();
    whole.extend(headers(1, true, &get("/s", "a", &[("k", "v")])));
    whole.extend(headers(3, true, &get("/t", "a", &[])));
    let mut h = H::new();
    h.send(EG, &whole);
    let want = h.take();
    for cut in 1..whole.len() {
        let mut h = H::new();
        h.send(EG, &whole[..cut]);
        h.send(EG, &whole[cut..]);
        let got = h.take();
        assert_eq!(got.len(), want.len(), "cut at {cut}");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!((g.target.clone(), pairs(g)), (w.target.clone(), pairs(w)));
        }
    }
}

#[test]
fn trailers_and_grpc() {
    let mut h = opened();
    let req = get(
        "/helloworld.Greeter/SayHello",
        "a",
        &[("content-type", "application/grpc"), ("te", "trailers")],
    );
    let mut b = frame(ty::HEADERS, fl::END_HEADERS, 1, &req);
    b.extend(data(1, true, 12));
    h.send(EG, &b);
    let mut resp = headers(
        1,
        false,
        &status("200", &[("content-type", "application/grpc")]),
    );
    resp.extend(data(1, false, 20));
    resp.extend(headers(
        1,
        true,
        &block(&[
            lit(0, "grpc-status", "5"),
            lit(0, "grpc-message", "not%20found%3A%20x"),
        ]),
    ));
    h.send(IN, &resp);
    let r = h.take();
    assert_eq!(r.len(), 3, "{r:#?}");
    let g = h2(&r[0]).grpc.as_ref().unwrap();
    assert_eq!(
        (g.service.as_str(), g.method.as_str()),
        ("helloworld.Greeter", "SayHello")
    );
    assert_eq!(r[1].kind, HttpKind::Response);
    assert_eq!(h2(&r[1]).grpc_status, None);
    let t = &r[2];
    assert_eq!(t.kind, HttpKind::Trailers);
    assert_eq!(h2(t).stream_id, 1);
    assert_eq!(t.request.as_ref().unwrap().method, "GET");
    assert_eq!(h2(t).grpc_status, Some(5));
    assert_eq!(h2(t).grpc_message.as_deref(), Some("not found: x"));
    assert_eq!(h.t.stats().trailers, 1);
}

#[test]
fn grpc_trailers_only_response() {
    let mut h = opened();
    h.send(
        EG,
        &headers(
            1,
            true,
            &get("/pkg.S/M", "a", &[("content-type", "application/grpc")]),
        ),
    );
    h.send(
        IN,
        &headers(
            1,
            true,
            &status(
                "200",
                &[("content-type", "application/grpc"), ("grpc-status", "12")],
            ),
        ),
    );
    let r = h.take();
    assert_eq!(r[1].kind, HttpKind::Response);
    assert_eq!(h2(&r[1]).grpc_status, Some(12));
}

#[test]
fn reset_flags_the_streams_next_record_or_stands_alone() {
    let mut h = opened();
    // Stream 1: the client resets, and the server's in-flight response
    // comes in its next event: that record carries the reset.
    let mut b = headers(1, true, &get("/x", "a", &[]));
    b.extend(rst(1, 0x8));
    h.send(EG, &b);
    h.send(IN, &headers(1, true, &status("200", &[])));
    // Stream 3: reset, and nothing of it comes within reset_hold_ns.
    let mut b = headers(3, true, &get("/y", "a", &[]));
    b.extend(rst(3, 0x8));
    h.send(EG, &b);
    h.spec.ts_ns += h.t.config().reset_hold_ns;
    h.send(IN, &frame(ty::PING, fl::ACK, 0, &[0; 8]));
    let r = h.take();
    let kinds: Vec<_> = r.iter().map(|x| (x.kind, h2(x).stream_id)).collect();
    assert_eq!(
        kinds,
        vec![
            (HttpKind::Request, 1),
            (HttpKind::Response, 1),
            (HttpKind::Request, 3),
            (HttpKind::Reset, 3)
        ]
    );
    assert!(r[1].flags.contains(&flag::RESET));
    assert_eq!(h2(&r[1]).error_code, Some(8));
    let reset = &r[3];
    assert_eq!(reset.flags, vec![flag::RESET]);
    assert_eq!(h2(reset).error_code, Some(8));
    assert_eq!(reset.request.as_ref().unwrap().target, "/y");
    assert!(crate::output::record_json(reset).contains(r#""error":"CANCEL""#));
    // A reset held on a quiet connection comes out when stale.
    let mut b = headers(5, true, &get("/z", "a", &[]));
    b.extend(rst(5, 0x2));
    h.send(EG, &b);
    h.t.flush_resets(h.spec.ts_ns + 1_000_000_000, &mut h.out);
    let r = h.take();
    assert_eq!(r.last().map(|x| x.kind), Some(HttpKind::Reset));
}

#[test]
fn rapid_reset_flags_the_run() {
    let mut h = H::with(Http2Config {
        rapid_reset_count: 50,
        ..Http2Config::default()
    });
    h.send(EG, &client_start());
    h.send(IN, &settings(&[]));
    let mut b = Vec::new();
    for i in 0..60u32 {
        let id = 2 * i + 1;
        b.extend(headers(id, true, &get("/", "a", &[])));
        b.extend(rst(id, 0x8));
    }
    h.send(EG, &b);
    h.close();
    let r = h.take();
    let resets: Vec<&HttpRecord> = r.iter().filter(|x| x.kind == HttpKind::Reset).collect();
    assert_eq!(resets.len(), 60);
    let rapid: Vec<u32> = resets
        .iter()
        .filter(|x| x.flags.contains(&flag::RAPID_RESET))
        .map(|x| h2(x).rapid_resets)
        .collect();
    assert_eq!(rapid, vec![50]);
}

#[test]
fn never_indexed_fields_are_marked() {
    let mut h = opened();
    let blk = block(&[
        idx(2),
        idx(7),
        lit(0, ":path", "/"),
        lit(0x10, "x-secret", "s3"),
    ]);
    h.send(EG, &headers(1, true, &blk));
    let r = h.take();
    let i = r[0]
        .headers
        .iter()
        .position(|(n, _)| n == "x-secret")
        .unwrap();
    assert_eq!(r[0].headers.marks(i), mark::NEVER_INDEXED);
}

#[test]
fn dynamic_table_and_settings_header_table_size() {
    let mut h = opened();
    // The server allows a 100-byte table; the client uses it.
    h.send(IN, &settings(&[(1, 100)]));
    let blk = block(&[
        int(0x20, 5, 100),
        idx(2),
        idx(7),
        lit(0x40, ":path", "/cached"),
    ]);
    h.send(EG, &headers(1, true, &blk));
    h.send(EG, &headers(3, true, &block(&[idx(2), idx(7), idx(62)])));
    // A size update above what the server allowed is an HPACK error.
    h.send(EG, &headers(5, true, &block(&[int(0x20, 5, 200), idx(2)])));
    let r = h.take();
    assert_eq!(r[1].target.as_deref(), Some("/cached"));
    assert!(r[2].flags.contains(&flag::HPACK_ERROR), "{:?}", r[2].flags);
    assert_eq!(h.t.stats().hpack_errors, 1);
}

#[test]
fn joined_midstream_decodes_what_it_can_and_invents_nothing() {
    let mut h = H::new();
    h.spec.flags = HDRTAP_DF_MIDSTREAM as u16;
    h.spec.role = KernelRole::Unknown;
    // The client's table already has entries (62, 63) hdrtap never saw;
    // after x-new is inserted they are 63 and 64.
    let blk = block(&[idx(2), idx(7), idx(63), lit(0x40, "x-new", "n1"), idx(64)]);
    let mut b = headers(7, true, &blk);
    b.extend(frame(ty::PING, 0, 0, &[0; 8]));
    h.raw(EG, 5000, b.len() as u64, &b, 0);
    // Later: x-new is 62 now, the old ones 63 and 64.
    h.send(
        EG,
        &headers(9, true, &block(&[idx(2), idx(7), idx(62), idx(64)])),
    );
    let r = h.take();
    assert_eq!(r.len(), 2, "{r:#?}");
    let json: serde_json::Value = serde_json::from_str(&crate::output::record_json(&r[0])).unwrap();
    assert_eq!(json["headers"][2], serde_json::json!([null, null]));
    assert_eq!(json["headers"][3], serde_json::json!(["x-new", "n1"]));
    assert_eq!(json["headers"][4], serde_json::json!([null, null]));
    assert_eq!(json["undecoded_fields"], 2);
    assert!(r[0].flags.contains(&flag::HPACK_PARTIAL));
    assert!(r[0].flags.contains(&flag::MIDSTREAM));
    assert_eq!(r[0].method.as_deref(), Some("GET"));
    let json: serde_json::Value = serde_json::from_str(&crate::output::record_json(&r[1])).unwrap();
    assert_eq!(json["headers"][2], serde_json::json!(["x-new", "n1"]));
    assert_eq!(json["headers"][3], serde_json::json!([null, null]));
    assert_eq!(json["undecoded_fields"], 1);
}

#[test]
fn midstream_waits_for_an_event_that_starts_with_frames() {
    let mut h = H::new();
    h.spec.flags = HDRTAP_DF_MIDSTREAM as u16;
    // The tail of a frame, then whole frames in the next event.
    h.raw(EG, 100, 7, b"garbage", 0);
    let b = headers(3, true, &get("/m", "a", &[]));
    h.raw(EG, 107, b.len() as u64, &b, 0);
    let r = h.take();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].target.as_deref(), Some("/m"));
    assert_eq!(h.t.stats().skipped_bytes, 7);
}

#[test]
fn gaps_in_data_cost_nothing_gaps_in_headers_are_reported() {
    let mut h = opened();
    h.send(EG, &headers(1, true, &get("/dl", "a", &[])));
    // A DATA frame of 16000 bytes whose payload the kernel did not copy
    // (skipped, or past the per-call cap): the next response still decodes.
    let mut resp = headers(1, false, &status("200", &[]));
    let df = data(1, true, 16000);
    resp.extend_from_slice(&df[..9]);
    let p = h.pos[1];
    h.raw(IN, p, resp.len() as u64 + 16000, &resp, 0);
    h.send(EG, &headers(3, true, &get("/next", "a", &[])));
    h.send(IN, &headers(3, true, &status("204", &[])));
    let r = h.take();
    let codes: Vec<Option<u16>> = r.iter().map(|x| x.status).collect();
    assert_eq!(codes, vec![None, Some(200), None, Some(204)]);
    assert!(r.iter().all(|x| !x.flags.contains(&flag::GAP)));
    // Now a hole inside a header block: reported, and the next block of
    // that direction decodes with a distrusted table (static refs work).
    let blk = get("/hole", "a", &[("x", "y")]);
    let f = headers(5, true, &blk);
    let p = h.pos[0];
    h.raw(EG, p, f.len() as u64, &f[..12], 0);
    h.send(EG, &headers(7, true, &get("/after", "a", &[])));
    let r = h.take();
    assert!(r[0].flags.contains(&flag::GAP), "{:?}", r[0]);
    assert_eq!(h2(&r[0]).stream_id, 5);
    assert_eq!(r[1].target.as_deref(), Some("/after"));
}

/// A tracker that keeps header blocks up to 1000 bytes, sent a HEADERS
/// frame and twenty 100-byte CONTINUATIONs on stream 1: a flood, still open.
fn flood_started() -> H {
    let mut h = H::with(Http2Config {
        max_block_bytes: 1000,
        ..Http2Config::default()
    });
    h.send(EG, &client_start());
    let mut b = frame(ty::HEADERS, fl::END_STREAM, 1, &get("/", "a", &[]));
    for _ in 0..20 {
        b.extend(frame(ty::CONTINUATION, 0, 1, &[0u8; 100]));
    }
    h.send(EG, &b);
    h
}

#[test]
fn continuation_flood_is_flagged_not_kept() {
    let mut h = flood_started();
    h.send(EG, &frame(ty::CONTINUATION, fl::END_HEADERS, 1, &[]));
    let r = h.take();
    assert_eq!(r.len(), 1);
    assert!(r[0].flags.contains(&flag::HEADER_BLOCK_FLOOD));
    assert!(r[0].headers.is_empty());
    assert!(r[0].header_bytes > 2000);
    assert_eq!(h.t.stats().block_floods, 1);
}

/// A server that closes on a flood (nginx does, past its own limit) ends
/// the block before END_HEADERS: the record is still a flood.
#[test]
fn a_flood_cut_off_by_the_close_is_still_a_flood() {
    let mut h = flood_started();
    assert!(h.take().is_empty());
    h.close();
    let r = h.take();
    assert_eq!(r.len(), 1, "{r:?}");
    for f in [flag::INCOMPLETE, flag::HEADER_BLOCK_FLOOD] {
        assert!(r[0].flags.contains(&f), "{f}: {:?}", r[0]);
    }
    assert!(r[0].truncated);
    assert!(r[0].header_bytes > 2000);
    assert_eq!(h.t.stats().block_floods, 1);
}

#[test]
fn push_promise_is_a_request_of_the_promised_stream() {
    let mut h = opened();
    h.send(EG, &headers(1, true, &get("/", "a", &[])));
    let mut p = 2u32.to_be_bytes().to_vec();
    p.extend(get("/style.css", "a", &[]));
    let mut b = frame(ty::PUSH_PROMISE, fl::END_HEADERS, 1, &p);
    b.extend(headers(1, true, &status("200", &[])));
    b.extend(headers(
        2,
        true,
        &status("200", &[("content-type", "text/css")]),
    ));
    h.send(IN, &b);
    let r = h.take();
    let push = r
        .iter()
        .find(|x| x.flags.contains(&flag::PUSH_PROMISE))
        .unwrap();
    assert_eq!(
        (h2(push).stream_id, push.target.as_deref()),
        (2, Some("/style.css"))
    );
    let pushed = r
        .iter()
        .filter(|x| x.kind == HttpKind::Response)
        .nth(1)
        .unwrap();
    assert_eq!(pushed.request.as_ref().unwrap().target, "/style.css");
}

#[test]
fn server_side_view_and_settings_first() {
    // nginx over TLS writes its SETTINGS before it reads the preface.
    let mut h = H::new();
    h.spec.role = KernelRole::Server;
    h.send(EG, &settings(&[(3, 128)]));
    h.send(IN, &client_start());
    h.send(IN, &headers(1, true, &get("/srv", "a", &[])));
    h.send(EG, &headers(1, true, &status("404", &[])));
    let r = h.take();
    assert_eq!(r.len(), 2);
    assert_eq!((r[0].kind, r[0].role), (HttpKind::Request, Role::Server));
    assert_eq!(r[1].status, Some(404));
    assert_eq!(h.t.stats().frame_errors, 0);
}

#[test]
fn header_limits_truncate_but_keep_decoding() {
    let mut h = H::with(Http2Config {
        max_header_bytes: 100,
        ..Http2Config::default()
    });
    h.send(EG, &client_start());
    let blk = block(&[
        idx(2),
        idx(7),
        lit(0x40, "x-big", &"b".repeat(200)),
        lit(0, ":path", "/"),
    ]);
    h.send(EG, &headers(1, true, &blk));
    // The inserted entry is still in the table.
    h.send(
        EG,
        &headers(
            3,
            true,
            &block(&[idx(2), idx(7), idx(62), lit(0, ":path", "/2")]),
        ),
    );
    let r = h.take();
    assert!(r[0].truncated);
    assert_eq!(
        r[0].target.as_deref(),
        Some("/"),
        "pseudo-headers picked out past the cut"
    );
    assert_eq!(
        r[1].header("x-big").map(str::len),
        None,
        "the second block is cut too"
    );
    assert!(r[1].truncated);
    assert!(!r[1].flags.contains(&flag::HPACK_ERROR));
}

#[test]
fn readable_line_shows_the_stream() {
    let mut h = opened();
    h.send(EG, &headers(3, true, &get("/l", "a", &[])));
    h.send(IN, &headers(3, true, &status("200", &[])));
    let r = h.take();
    let line = crate::output::record_line(&r[0]);
    assert!(line.contains("GET /l HTTP/2 stream 3"), "{line}");
    let line = crate::output::record_line(&r[1]);
    assert!(line.contains("HTTP/2 stream 3 200 ("), "{line}");
}

#[test]
fn close_reports_an_open_block() {
    let mut h = opened();
    h.send(EG, &frame(ty::HEADERS, 0, 1, &get("/open", "a", &[])));
    h.close();
    let r = h.take();
    assert_eq!(r.len(), 1);
    assert!(r[0].flags.contains(&flag::INCOMPLETE));
    assert_eq!(r[0].header_bytes, get("/open", "a", &[]).len());
    assert_eq!(h.t.conns(), 0);
}

proptest! {
    /// Garbage, or frames with garbage, never panic, however cut.
    #[test]
    fn garbage_never_panics(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 1..10),
        start in any::<bool>(),
        gaps in proptest::collection::vec(0u64..100, 0..10),
    ) {
        let mut h = H::new();
        if start {
            h.send(EG, &client_start());
        }
        for (i, c) in chunks.iter().enumerate() {
            let dir = if i % 2 == 0 { EG } else { IN };
            let gap = gaps.get(i).copied().unwrap_or(0);
            let pos = h.pos[dir.index()] + gap;
            h.raw(dir, pos, c.len() as u64, c, 0);
        }
        h.close();
    }

    /// A valid stream cut into any events gives the same records.
    #[test]
    fn any_split_same_records(cuts in proptest::collection::vec(1usize..40, 1..20)) {
        let mut whole = client_start();
        for i in 0..5u32 {
            whole.extend(headers(2 * i + 1, true, &get(&format!("/p{i}"), "a", &[("k", "v")])));
        }
        let mut h = H::new();
        h.send(EG, &whole);
        let want: Vec<_> = h.take().iter().map(|r| (r.target.clone(), pairs(r))).collect();
        let mut h = H::new();
        let mut off = 0;
        for c in cuts.iter().cycle() {
            if off >= whole.len() {
                break;
            }
            let end = (off + c).min(whole.len());
            h.send(EG, &whole[off..end]);
            off = end;
        }
        let got: Vec<_> = h.take().iter().map(|r| (r.target.clone(), pairs(r))).collect();
        prop_assert_eq!(got, want);
    }
}

#[test]
fn a_flood_in_one_huge_frame_or_lost_bytes_is_still_a_flood() {
    let mut h = H::with(Http2Config {
        max_block_bytes: 1000,
        ..Http2Config::default()
    });
    h.send(EG, &client_start());
    // One HEADERS frame of 5000 bytes whose payload the kernel did not copy.
    let f = frame(
        ty::HEADERS,
        fl::END_HEADERS | fl::END_STREAM,
        1,
        &[0u8; 5000],
    );
    let p = h.pos[0];
    h.raw(EG, p, f.len() as u64, &f[..9], 0);
    // CONTINUATIONs past the limit, some of them lost too.
    let mut b = frame(ty::HEADERS, 0, 3, &get("/", "a", &[]));
    b.extend(frame(ty::CONTINUATION, 0, 3, &[0u8; 900]));
    h.send(EG, &b);
    let c = frame(ty::CONTINUATION, 0, 3, &[0u8; 900]);
    let p = h.pos[0];
    h.raw(EG, p, c.len() as u64, &c[..9], 0);
    h.send(EG, &frame(ty::CONTINUATION, fl::END_HEADERS, 3, &[]));
    h.send(EG, &headers(5, true, &get("/next", "a", &[])));
    let r = h.take();
    assert_eq!(r.len(), 3, "{r:#?}");
    for (rec, id, size) in [
        (&r[0], 1, 5000),
        (&r[1], 3, get("/", "a", &[]).len() + 1800),
    ] {
        assert_eq!(h2(rec).stream_id, id);
        assert!(rec.flags.contains(&flag::HEADER_BLOCK_FLOOD), "{rec:?}");
        assert!(!rec.flags.contains(&flag::GAP), "{rec:?}");
        assert_eq!(rec.header_bytes, size);
    }
    assert_eq!(r[2].target.as_deref(), Some("/next"));
}

#[test]
fn finished_streams_are_forgotten() {
    // Many more exchanges than max_streams on one connection: each
    // stream is dropped once both sides ended it, so none is evicted.
    for server_side in [false, true] {
        let mut h = opened();
        let (req_dir, resp_dir) = if server_side { (IN, EG) } else { (EG, IN) };
        if server_side {
            h = H::new();
            h.send(IN, &client_start());
            h.send(EG, &settings(&[]));
        }
        for i in 0..3000u32 {
            let id = 2 * i + 1;
            h.send(req_dir, &headers(id, true, &get("/a", "e", &[])));
            let mut resp = headers(id, false, &status("200", &[]));
            resp.extend(data(id, true, 10));
            h.send(resp_dir, &resp);
        }
        assert_eq!(h.t.stats().streams_evicted, 0, "server side: {server_side}");
        assert_eq!(h.take().len(), 6000);
    }
}

#[test]
fn long_data_frames_are_left_to_the_kernel_to_skip() {
    // The client allows 1 MiB frames: the server's 200,000-byte DATA frame
    // asks the kernel to skip to its end; a short one asks nothing.
    let mut h = H::new();
    let mut start = PREFACE.to_vec();
    start.extend(settings(&[(5, 1 << 20)]));
    h.send(EG, &start);
    h.send(IN, &settings(&[]));
    h.send(EG, &headers(1, true, &get("/big", "e", &[])));
    let mut resp = headers(1, false, &status("200", &[]));
    let head_len = resp.len() as u64;
    let before = h.pos[IN.index()];
    let frame = data(1, true, 200_000);
    resp.extend_from_slice(&frame[..16_384]);
    for part in resp.chunks(hdrtap_abi::raw::HDRTAP_CHUNK_MAX as usize) {
        h.send(IN, part);
    }
    let skips: Vec<_> = h.t.take_skips().collect();
    assert_eq!(skips.len(), 1, "{skips:?}");
    assert_eq!(skips[0].dir, IN);
    let end = before + head_len + 9 + 200_000;
    assert_eq!(skips[0].until, end);
    // What the kernel then sends: the rest, not copied.
    let pos = h.pos[IN.index()];
    h.raw(
        IN,
        pos,
        end - pos,
        &[],
        hdrtap_abi::HDRTAP_DF_SKIPPED as u16,
    );
    assert_eq!(h.t.stats().data_bytes, 16_384 - 9);
    h.send(EG, &headers(3, true, &get("/small", "e", &[])));
    let mut small = headers(3, false, &status("200", &[]));
    small.extend(data(3, true, 1000));
    h.send(IN, &small);
    assert_eq!(h.t.take_skips().count(), 0);
    assert_eq!(h.take().len(), 4);
    assert_eq!(h.t.stats().streams_evicted, 0);
}

#[test]
fn bytes_that_are_not_utf8_are_kept_escaped_in_the_whole_record() {
    let mut h = opened();
    // A backslash before the bad field: escaped too once the record is.
    let mut latin = vec![0x00];
    latin.extend(string(b"x-latin"));
    latin.extend(string(b"caf\xe9"));
    let blk = block(&[
        idx(2),
        idx(7),
        lit(0, ":path", "/a\\b"),
        lit(0, ":authority", "example.com"),
        latin,
    ]);
    h.send(EG, &headers(1, true, &blk));
    let mut resp = headers(1, false, &status("200", &[]));
    resp.extend(data(1, false, 3));
    resp.extend(headers(
        1,
        true,
        &status(
            "200",
            &[("grpc-status", "2"), ("grpc-message", "caf%E9 a\\b")],
        )[lit(0, ":status", "200").len()..],
    ));
    h.send(IN, &resp);
    let r = h.take();
    assert_eq!(r.len(), 3, "{r:#?}");
    let q = &r[0];
    assert!(q.flags.contains(&flag::NON_UTF8), "{:?}", q.flags);
    assert_eq!(q.target.as_deref(), Some("/a\\x5cb"));
    assert_eq!(
        pairs(q)[2..],
        [
            (":path".into(), "/a\\x5cb".into()),
            (":authority".into(), "example.com".into()),
            ("x-latin".into(), "caf\\xe9".into()),
        ]
    );
    assert_eq!(
        crate::text::unescape_wire(q.header("x-latin").unwrap()),
        b"caf\xe9"
    );
    // A clean response is not escaped; trailers whose decoded
    // grpc-message is not UTF-8 are, the header as sent included.
    assert!(!r[1].flags.contains(&flag::NON_UTF8));
    let t = &r[2];
    assert_eq!(t.kind, HttpKind::Trailers);
    assert!(t.flags.contains(&flag::NON_UTF8), "{:?}", t.flags);
    assert_eq!(h2(t).grpc_message.as_deref(), Some("caf\\xe9 a\\x5cb"));
    assert_eq!(t.header("grpc-message"), Some("caf%E9 a\\x5cb"));
}

/// Content-Length and Transfer-Encoding in an HTTP/2 request (a downgrade
/// smuggling attempt) reach the record's framing, which the rules judge.
#[test]
fn framing_fields_reach_the_record() {
    let mut h = opened();
    let blk = get(
        "/",
        "a",
        &[("content-length", "5"), ("transfer-encoding", "chunked")],
    );
    h.send(EG, &headers(1, true, &blk));
    let r = h.take();
    assert_eq!(r.len(), 1, "{r:?}");
    let f = r[0].framing;
    assert_eq!((f.content_lengths, f.length()), (1, Some(5)), "{f:?}");
    assert_eq!((f.transfer_encodings, f.chunked), (1, true), "{f:?}");
    let mut alerts = Vec::new();
    crate::rules::Rules::new(crate::rules::RulesConfig::default()).check(&r[0], &mut alerts);
    assert!(
        alerts
            .iter()
            .any(|a| a.rule == crate::rules::rule::SMUGGLING_CL_TE),
        "{alerts:?}"
    );
}
