//! What the sink framework adds per record on the capture thread, next to
//! the path before it (decode, track, redact, JSON into a buffer):
//!
//! * `cli`: + per-run id, redaction, the security rules, one `Arc`
//!   per record, JSON through `sink::Record` — what `hdrtap http` does now;
//! * `fanout`: + id, rules, `Arc`, and `Fanout::send` to a file sink on its
//!   own thread (writing `/dev/null`): the capture thread's share in
//!   `hdrtap run` (the sink thread formats the JSON in parallel).
//!
//!     cargo bench -p hdrtap-core --bench sinks
use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use hdrtap_abi::build::{data_event, DataSpec};
use hdrtap_abi::{decode, Direction, Event, KernelRole};
use hdrtap_core::http1::{Http1Tracker, TrackerConfig};
use hdrtap_core::output::{push_record_json, Format};
use hdrtap_core::record::HttpRecord;
use hdrtap_core::redact::Redactor;
use hdrtap_core::rules::{Rules, RulesConfig};
use hdrtap_core::sink::{Fanout, FileOptions, FileSink, KindSet, Record, SinkCounters, SinkSpec};

const REQUEST: &[u8] = b"GET /index.html HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk/4.1.0\r\nAccept: */*\r\nX-Seq: 123456\r\n\r\n";
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sun, 22 Nov 2026 01:00:00 GMT\r\nContent-Type: text/html\r\nContent-Length: 512\r\nLast-Modified: Sun, 22 Nov 2026 00:00:00 GMT\r\nConnection: keep-alive\r\nETag: \"6b0231aa-200\"\r\nAccept-Ranges: bytes\r\n\r\n";
const N: u64 = 1000;

/// Four records per exchange, both ends of one keep-alive connection.
fn records() -> Vec<HttpRecord> {
    let mut t = Http1Tracker::new(TrackerConfig::default());
    let mut out = Vec::new();
    let resp_len = RESPONSE.len() as u64 + 512;
    for i in 0..N {
        let spec = |conn_id, dir, pos, role| DataSpec {
            conn_id,
            dir,
            pos,
            ts_ns: 1000 + i * 10_000,
            role,
            ..Default::default()
        };
        let mut resp = RESPONSE.to_vec();
        resp.extend(std::iter::repeat_n(b'x', 512));
        let rq = i * REQUEST.len() as u64;
        let rs = i * resp_len;
        for (raw, _) in [
            (
                data_event(&spec(1, Direction::Egress, rq, KernelRole::Client), REQUEST),
                0,
            ),
            (
                data_event(
                    &spec(2, Direction::Ingress, rq, KernelRole::Server),
                    REQUEST,
                ),
                0,
            ),
            (
                data_event(&spec(2, Direction::Egress, rs, KernelRole::Server), &resp),
                0,
            ),
            (
                data_event(&spec(1, Direction::Ingress, rs, KernelRole::Client), &resp),
                0,
            ),
        ] {
            if let Ok(Event::Data(d)) = decode(&raw) {
                t.on_data(&d, &mut out);
            }
        }
    }
    assert_eq!(out.len(), 4 * N as usize);
    out.into_iter().map(Arc::unwrap_or_clone).collect()
}

fn sinks(c: &mut Criterion) {
    let recs = records();
    let redactor = Redactor::from_options(false, &[]).expect("random key");
    let mut g = c.benchmark_group("per_1000_exchanges_output");
    g.throughput(Throughput::Elements(N));
    g.sample_size(30);

    g.bench_function("before_redact_json", |b| {
        b.iter_batched(
            || (recs.clone(), Vec::with_capacity(1 << 20)),
            |(mut recs, mut out)| {
                for rec in recs.iter_mut() {
                    redactor.apply(rec);
                    push_record_json(&mut out, rec);
                    out.push(b'\n');
                }
                (out, recs)
            },
            BatchSize::LargeInput,
        )
    });

    let mut rules = Rules::new(RulesConfig::default());
    g.bench_function("cli_id_redact_rules_arc_json", |b| {
        b.iter_batched(
            || (recs.clone(), Vec::with_capacity(1 << 20)),
            |(recs, mut out)| {
                let mut alerts = Vec::new();
                let mut batch = Vec::with_capacity(recs.len());
                for (i, mut rec) in recs.into_iter().enumerate() {
                    rec.id = i as u64 + 1;
                    redactor.apply(&mut rec);
                    rules.check(&rec, &mut alerts);
                    batch.push(Record::Http(Arc::new(rec)));
                }
                for r in &batch {
                    r.write(Format::Json, &mut out);
                }
                black_box(alerts);
                (out, batch)
            },
            BatchSize::LargeInput,
        )
    });

    let counters = Arc::new(SinkCounters::default());
    let fanout = Fanout::start(vec![SinkSpec {
        name: "devnull".into(),
        sink_type: "file",
        kinds: KindSet::ALL,
        queue_records: 1 << 24,
        sink: Box::new(
            FileSink::open(
                FileOptions {
                    path: "/dev/null".into(),
                    format: Format::Json,
                    max_bytes: 0,
                    max_files: 0,
                    compress: false,
                },
                Arc::clone(&counters),
            )
            .expect("open /dev/null"),
        ),
        counters,
    }])
    .expect("fanout");
    g.bench_function("fanout_capture_side", |b| {
        b.iter_batched(
            || recs.clone(),
            |recs| {
                let mut alerts = Vec::new();
                let mut batch = Vec::with_capacity(1024);
                for (i, mut rec) in recs.into_iter().enumerate() {
                    rec.id = i as u64 + 1;
                    redactor.apply(&mut rec);
                    rules.check(&rec, &mut alerts);
                    batch.push(Record::Http(Arc::new(rec)));
                    if batch.len() == 1024 {
                        fanout.send(batch.drain(..).collect());
                    }
                }
                fanout.send(batch.drain(..).collect());
                black_box(alerts);
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
    fanout.close();
}

criterion_group!(benches, sinks);
criterion_main!(benches);
