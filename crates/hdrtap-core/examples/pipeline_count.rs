//! A fixed amount of pipeline work for instruction counting, which is
//! repeatable on a shared machine where timings are not:
//!
//!     cargo build --release -p hdrtap-core --example pipeline_count
//!     valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!         target/release/examples/pipeline_count 20000
//!
//! Run it again with a second argument `build` (events are built, not
//! processed); the difference of the two "Collected" instruction counts
//! divided by the exchanges is the pipeline's instructions per exchange:
//! 4 events in, 4 records out as NDJSON, the shape of the wrk -> nginx
//! benchmark (the events of benches/pipeline.rs). The records go through
//! the writer's memo of repeated text, as in the hdrtap binary; a second
//! argument `nomemo` writes each afresh.
//!
//! `pipeline_count N packets` (and `N packets-build`) does the same for
//! `hdrtap packets`: N TCP/IPv4 packet events with timestamp options, as tc
//! sees them on lo, through the packet pipeline and written as NDJSON by
//! the binary's writer (its memo keeps each flow's repeated part).
use hdrtap_abi::build::{data_event, DataSpec};
use hdrtap_abi::{decode, Direction, Event, KernelRole};
use hdrtap_core::http1::{Http1Tracker, TrackerConfig};
use hdrtap_core::output::{push_record_json, push_record_json_memo, JsonMemo};
use hdrtap_core::redact::Redactor;

/// The hdrtap binary's allocator: records are allocated per event and
/// freed per batch, and glibc's malloc counts several times mimalloc's
/// instructions for that.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const REQUEST: &[u8] = b"GET /index.html HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk/4.1.0\r\nAccept: */*\r\nX-Seq: 123456\r\nAuthorization: Bearer abcdefghijklmnop\r\n\r\n";
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sun, 22 Nov 2026 01:00:00 GMT\r\nContent-Type: text/html\r\nContent-Length: 512\r\nLast-Modified: Sun, 22 Nov 2026 00:00:00 GMT\r\nConnection: keep-alive\r\nETag: \"6b0231aa-200\"\r\nAccept-Ranges: bytes\r\n\r\n";

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    match std::env::args().nth(2).as_deref() {
        Some("packets") => return packets(n, false),
        Some("packets-build") => return packets(n, true),
        _ => {}
    }
    let mut resp = RESPONSE.to_vec();
    resp.extend(std::iter::repeat_n(b'x', 512));
    let spec = |conn_id, dir, pos, server: bool| DataSpec {
        conn_id,
        dir,
        pos,
        tgid: if server { 200 } else { 100 },
        role: if server {
            KernelRole::Server
        } else {
            KernelRole::Client
        },
        comm: if server { "nginx" } else { "wrk" }.into(),
        ..Default::default()
    };
    let mut events = Vec::with_capacity(4 * n as usize);
    for i in 0..n {
        let (rq, rs) = (i * REQUEST.len() as u64, i * resp.len() as u64);
        events.push(data_event(&spec(1, Direction::Egress, rq, false), REQUEST));
        events.push(data_event(&spec(2, Direction::Ingress, rq, true), REQUEST));
        events.push(data_event(&spec(2, Direction::Egress, rs, true), &resp));
        events.push(data_event(&spec(1, Direction::Ingress, rs, false), &resp));
    }
    if std::env::args().nth(2).as_deref() == Some("build") {
        println!("{} events built", events.len());
        return;
    }
    let redactor = Redactor::from_options(false, &[]).expect("random key");
    let mut tracker = Http1Tracker::new(TrackerConfig::default());
    let mut recs = Vec::with_capacity(1024);
    let mut out = Vec::with_capacity(1 << 20);
    let mut written = 0usize;
    // What the hdrtap binary's writer does; `nomemo` writes every record
    // from scratch.
    let mut memo = (std::env::args().nth(2).as_deref() != Some("nomemo")).then(JsonMemo::new);
    for chunk in events.chunks(256) {
        for ev in chunk {
            if let Ok(Event::Data(d)) = decode(ev) {
                tracker.on_data(&d, &mut recs);
            }
        }
        for rec in recs.iter_mut() {
            let rec = std::sync::Arc::make_mut(rec);
            redactor.apply(rec);
            match memo.as_mut() {
                Some(memo) => push_record_json_memo(&mut out, rec, memo),
                None => push_record_json(&mut out, rec),
            }
            out.push(b'\n');
        }
        written += recs.len();
        recs.clear();
        out.clear();
    }
    assert_eq!(written as u64, 4 * n);
    println!("{n} exchanges, {written} records");
}

/// Decode and write `n` packet events (or only build them).
fn packets(n: u64, build_only: bool) {
    use hdrtap_abi::build::{packet_event, PacketSpec};
    use hdrtap_core::output::{Format, Writer};
    use hdrtap_core::packet::build::{build, FrameSpec};
    use hdrtap_core::packet::flag;
    use hdrtap_core::pipeline::PacketPipeline;
    use hdrtap_core::sink::Record;
    use std::net::Ipv4Addr;
    use std::sync::Arc;

    let lo = Ipv4Addr::LOCALHOST;
    let events: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let mut frame = FrameSpec::tcp4(lo, lo, 40_000 + (i % 16) as u16, 8080, 0x18);
            // nop, nop, timestamps: what Linux puts on every segment.
            if let hdrtap_core::packet::build::L4::Tcp { options, .. } = &mut frame.l4 {
                options.extend([1, 1, 8, 10]);
                options.extend((i as u32).to_be_bytes());
                options.extend(7u32.to_be_bytes());
            }
            frame.payload = REQUEST.to_vec();
            let spec = PacketSpec {
                tgid: 100,
                tid: 100,
                ts_ns: 1_000 + i,
                sock_cookie: 4096 + i % 16,
                // Attributed, as received packets on lo are (socket lookup).
                owner: hdrtap_abi::HDRTAP_OWNER_LOOKUP as u8,
                comm: "wrk".into(),
                ..Default::default()
            };
            packet_event(&spec, &build(&frame))
        })
        .collect();
    if build_only {
        println!("{} packet events built", events.len());
        return;
    }
    // What `hdrtap packets --json -o FILE` does per event: the pipeline
    // (decode, interface name, the record's Arc, id), the writer's
    // NDJSON line, the per-record stats the binary counts (flags and
    // owner, a stand-in for its `PacketSession::count`), and the drop.
    let names = [(1u32, "lo".into())].into_iter().collect();
    let ids = Arc::new(hdrtap_core::pipeline::Ids::default());
    let mut pipeline = PacketPipeline::new(names, Box::new(|_| None), 0, ids);
    let mut writer = Writer::new(Box::new(std::io::sink()), Format::Json, false);
    let mut batch: Vec<Record> = Vec::with_capacity(1024);
    let (mut written, mut flagged, mut owned) = (0usize, 0u64, 0u64);
    for chunk in events.chunks(256) {
        for ev in chunk {
            pipeline.event(ev);
        }
        pipeline.drain(&mut batch);
        for rec in batch.drain(..) {
            writer.write(&rec).expect("io::sink");
            if let Record::Packet(p) = &rec {
                let has = |f| p.headers.flags.contains(&f);
                flagged += u64::from(has(flag::TRUNCATED) || has(flag::MALFORMED));
                flagged += u64::from(has(flag::FRAGMENT) || has(flag::SNAPPED));
                owned += u64::from(p.owner.is_some());
            }
            written += 1;
        }
    }
    writer.flush().expect("io::sink");
    assert_eq!(written as u64, n);
    assert_eq!((flagged, owned), (0, n));
    println!("{n} packets written");
}
