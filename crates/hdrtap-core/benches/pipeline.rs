//! The userspace pipeline per HTTP exchange, next to raw httparse.
//!
//! One "exchange" is what one request costs hdrtap when both ends are on
//! the machine (the usual benchmark: wrk -> nginx on loopback): four ring
//! events (client request out, server request in, server response out,
//! client response in), decoded, reassembled, parsed, paired, redacted and
//! written as four NDJSON lines.
//!
//!     cargo bench -p hdrtap-core --bench pipeline
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use hdrtap_abi::build::{data_event, DataSpec};
use hdrtap_abi::{decode, Direction, Event, KernelRole};
use hdrtap_core::http1::{Http1Tracker, TrackerConfig};
use hdrtap_core::output::push_record_json;
use hdrtap_core::redact::Redactor;

const REQUEST: &[u8] = b"GET /index.html HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk/4.1.0\r\nAccept: */*\r\nX-Seq: 123456\r\nAuthorization: Bearer abcdefghijklmnop\r\n\r\n";
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sun, 22 Nov 2026 01:00:00 GMT\r\nContent-Type: text/html\r\nContent-Length: 512\r\nLast-Modified: Sun, 22 Nov 2026 00:00:00 GMT\r\nConnection: keep-alive\r\nETag: \"6b0231aa-200\"\r\nAccept-Ranges: bytes\r\n\r\n";

/// The raw ring-buffer events of `n` exchanges on one keep-alive connection,
/// seen from both ends.
fn events(n: u64) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let body = 512u64;
    let resp_len = RESPONSE.len() as u64 + body;
    for i in 0..n {
        let req_pos = i * REQUEST.len() as u64;
        let resp_pos = i * resp_len;
        let ts = 1_000 + i * 10_000;
        let client = |conn_id, dir, pos, ts| DataSpec {
            conn_id,
            dir,
            pos,
            ts_ns: ts,
            role: KernelRole::Client,
            comm: "wrk".into(),
            ..Default::default()
        };
        let server = |conn_id, dir, pos, ts| DataSpec {
            conn_id,
            dir,
            pos,
            ts_ns: ts,
            tgid: 200,
            tid: 200,
            role: KernelRole::Server,
            comm: "nginx".into(),
            ..Default::default()
        };
        out.push(data_event(
            &client(1, Direction::Egress, req_pos, ts),
            REQUEST,
        ));
        out.push(data_event(
            &server(2, Direction::Ingress, req_pos, ts + 100),
            REQUEST,
        ));
        // The response event carries the header block and a body the
        // parser skips by position.
        let mut resp = RESPONSE.to_vec();
        resp.extend(std::iter::repeat_n(b'x', body as usize));
        out.push(data_event(
            &server(2, Direction::Egress, resp_pos, ts + 200),
            &resp,
        ));
        out.push(data_event(
            &client(1, Direction::Ingress, resp_pos, ts + 300),
            &resp,
        ));
    }
    out
}

fn pipeline(c: &mut Criterion) {
    const N: u64 = 1000;
    let raw = events(N);
    let mut g = c.benchmark_group("per_1000_exchanges");
    g.throughput(Throughput::Elements(N));

    // Floor: httparse on the two header blocks, twice (both ends).
    g.bench_function("httparse_only", |b| {
        b.iter(|| {
            for _ in 0..N {
                for _ in 0..2 {
                    let mut h = [httparse::EMPTY_HEADER; 32];
                    let mut req = httparse::Request::new(&mut h);
                    black_box(req.parse(black_box(REQUEST)).ok());
                    let mut h = [httparse::EMPTY_HEADER; 32];
                    let mut resp = httparse::Response::new(&mut h);
                    black_box(resp.parse(black_box(RESPONSE)).ok());
                }
            }
        })
    });

    g.bench_function("decode_track", |b| {
        b.iter_batched(
            || Http1Tracker::new(TrackerConfig::default()),
            |mut t| {
                let mut recs = Vec::with_capacity(4 * N as usize);
                for ev in &raw {
                    if let Ok(Event::Data(d)) = decode(ev) {
                        t.on_data(&d, &mut recs);
                    }
                }
                assert_eq!(recs.len(), 4 * N as usize);
                recs
            },
            BatchSize::LargeInput,
        )
    });

    let redactor = Redactor::from_options(false, &[]).expect("random key");
    g.bench_function("decode_track_redact_json", |b| {
        b.iter_batched(
            || {
                (
                    Http1Tracker::new(TrackerConfig::default()),
                    Vec::with_capacity(1 << 20),
                )
            },
            |(mut t, mut out)| {
                let mut recs = Vec::with_capacity(4 * N as usize);
                for ev in &raw {
                    if let Ok(Event::Data(d)) = decode(ev) {
                        t.on_data(&d, &mut recs);
                    }
                }
                for rec in recs.iter_mut() {
                    let rec = std::sync::Arc::make_mut(rec);
                    redactor.apply(rec);
                    push_record_json(&mut out, rec);
                    out.push(b'\n');
                }
                (out, recs)
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
