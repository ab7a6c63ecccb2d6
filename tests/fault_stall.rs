//! Consumer stall: under steady load, hdrtap is stopped (SIGSTOP) for a few
//! seconds with a 1 MiB ring buffer, then continued. Root only.
//!
//! Set-up: nginx, four keep-alive client connections from this test process
//! sending numbered requests (`X-Seq`), 400 a second each; hdrtap traces nginx only
//! (`--pid`), so every request is exactly one event (one `recv` by nginx)
//! and every response exactly one event (one `writev`), and the 1 MiB ring
//! overflows during the stop.
//!
//! "Exact" loss accounting, asserted here:
//! 1. every request and response either has its record (matched by `X-Seq` /
//!    `X-Echo-Seq`) or is missing — no duplicates, nothing unknown;
//! 2. the kernel's `lost_events` equals the number of missing messages, and
//!    its `lost_bytes` their exact size on the wire (request bytes as
//!    written, response header + body as read);
//! 3. userspace saw every hole: `gap_bytes` equals `lost_bytes`, and `gaps`
//!    equals the number of runs of consecutive missing messages per
//!    connection and direction (each run of lost events is one hole in that
//!    byte stream);
//! 4. the server's throughput while hdrtap is stopped is not lower than
//!    before (the kernel side only fails a ring reservation);
//! 5. hdrtap is back to zero loss within 1 s of SIGCONT: every message sent
//!    from then on has its record, and `lost_events` does not grow after it.
#![forbid(unsafe_code)]
use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    thread,
    time::{Duration, Instant, SystemTime},
};

use hdrtap_tests::*;

fn seq_of(v: &Value, header_name: &str) -> Option<u64> {
    header(v, header_name)?.parse().ok()
}

fn ts_of(v: &Value) -> SystemTime {
    let s = v["ts"].as_str().expect("ts");
    let t = chrono::DateTime::parse_from_rfc3339(s).expect("rfc3339 ts");
    SystemTime::UNIX_EPOCH + Duration::from_nanos(t.timestamp_nanos_opt().unwrap() as u64)
}

#[test]
fn consumer_stall_loss_is_exact_and_recovers_within_a_second() {
    let _guard = setup();
    let nginx = Nginx::start();
    let hd = Hdrtap::start(&[
        "--pid",
        &nginx.pid().to_string(),
        "--port",
        &nginx.port.to_string(),
        "--ring-mib",
        "1",
        "--no-tls",
        "--stats-interval",
        "1",
    ]);
    let id = unique_id("stall");
    let addr: SocketAddr = format!("127.0.0.1:{}", nginx.port).parse().unwrap();
    // Steady load hdrtap (even a debug build) keeps up with: 4 x 400 req/s,
    // 3,200 events a second; 3 s of them are about 3 MB, three rings' worth.
    let load = SeqLoad::start(addr, "/", 4, Some(400.0), &id);
    thread::sleep(Duration::from_secs(3));
    let stopped_at = Instant::now();
    send_signal(hd.pid(), libc::SIGSTOP);
    thread::sleep(Duration::from_secs(3));
    let cont_at = Instant::now();
    let cont_wall = SystemTime::now();
    send_signal(hd.pid(), libc::SIGCONT);
    thread::sleep(Duration::from_secs(3));
    let sent = load.finish();
    // Let hdrtap read the rest, then stop it.
    let n_sent = sent.len();
    let cap = hd.stop_when(Duration::from_secs(10), |r| {
        r.iter()
            .filter(|v| kind(v) == "http_response")
            .filter_map(|v| seq_of(v, "X-Echo-Seq"))
            .filter(|&s| s == sent.last().map_or(0, |e| e.seq))
            .count()
            > 0
    });

    // 1. Records by seq, both kinds, server side only.
    let by_seq: BTreeMap<u64, &SeqExchange> = sent.iter().map(|e| (e.seq, e)).collect();
    let mut reqs = BTreeSet::new();
    let mut resps = BTreeSet::new();
    for v in cap.http() {
        assert_eq!(v["role"], "server", "a client record with --pid nginx: {v}");
        let (set, name) = match kind(v) {
            "http_request" => (&mut reqs, "X-Seq"),
            _ => (&mut resps, "X-Echo-Seq"),
        };
        let s = seq_of(v, name).unwrap_or_else(|| panic!("record without {name}: {v}"));
        assert!(by_seq.contains_key(&s), "record of an unknown seq {s}: {v}");
        assert!(set.insert(s), "two records for seq {s}: {v}");
    }
    let missing_req: Vec<&SeqExchange> = sent.iter().filter(|e| !reqs.contains(&e.seq)).collect();
    let missing_resp: Vec<&SeqExchange> = sent.iter().filter(|e| !resps.contains(&e.seq)).collect();

    let last = cap.records.last().expect("no records");
    assert_eq!(kind(last), "stats", "{}", cap.dump_all());
    let num = |f: &str| {
        last[f]
            .as_u64()
            .unwrap_or_else(|| panic!("stats.{f}: {last}"))
    };
    let lost_events = num("lost_events");
    let summary = format!(
        "{n_sent} exchanges; missing {} requests, {} responses; final stats {last}",
        missing_req.len(),
        missing_resp.len()
    );
    eprintln!("stall: {summary}");
    assert!(
        lost_events > 0,
        "a 3 s stop with a 1 MiB ring lost nothing; the test proves nothing: {summary}"
    );

    // 2. Kernel counters = missing messages, exactly.
    assert_eq!(
        lost_events,
        (missing_req.len() + missing_resp.len()) as u64,
        "lost_events is not the number of missing messages: {summary}"
    );
    let missing_bytes: u64 = missing_req.iter().map(|e| e.req_bytes as u64).sum::<u64>()
        + missing_resp
            .iter()
            .map(|e| (e.resp_head + e.resp_body) as u64)
            .sum::<u64>();
    assert_eq!(
        num("lost_bytes"),
        missing_bytes,
        "lost_bytes is not the size of the missing messages: {summary}"
    );

    // 3. Userspace saw each hole: bytes, and one gap per run of missing
    // messages on one connection and direction.
    assert_eq!(
        num("gap_bytes"),
        missing_bytes,
        "gap_bytes differs from the lost bytes: {summary}"
    );
    let runs = |missing: &BTreeSet<u64>| -> u64 {
        let mut n = 0;
        for conn in 0..4 {
            let mut prev_missing = false;
            for e in sent.iter().filter(|e| e.conn == conn) {
                let m = missing.contains(&e.seq);
                if m && !prev_missing {
                    n += 1;
                }
                prev_missing = m;
            }
        }
        n
    };
    let mr: BTreeSet<u64> = missing_req.iter().map(|e| e.seq).collect();
    let ms: BTreeSet<u64> = missing_resp.iter().map(|e| e.seq).collect();
    assert_eq!(
        num("gaps"),
        runs(&mr) + runs(&ms),
        "gaps is not the number of runs of missing messages: {summary}"
    );

    // 4. Throughput while hdrtap was stopped vs the 2 s before.
    let rate = |from: Instant, to: Instant| {
        sent.iter()
            .filter(|e| e.done >= from && e.done < to)
            .count() as f64
            / (to - from).as_secs_f64()
    };
    let before = rate(stopped_at - Duration::from_secs(2), stopped_at);
    let during = rate(stopped_at, cont_at);
    eprintln!("stall: {before:.0} req/s before the stop, {during:.0} req/s during it");
    assert!(
        during >= 0.8 * before,
        "the server slowed down while hdrtap was stopped: {before:.0} -> {during:.0} req/s"
    );

    // 5. No loss from 1 s after SIGCONT on.
    let late: Vec<u64> = sent
        .iter()
        .filter(|e| e.sent >= cont_at + Duration::from_secs(1))
        .filter(|e| mr.contains(&e.seq) || ms.contains(&e.seq))
        .map(|e| e.seq)
        .collect();
    assert!(
        late.is_empty(),
        "messages sent more than 1 s after SIGCONT are missing: {late:?}"
    );
    assert!(
        sent.iter()
            .any(|e| e.sent >= cont_at + Duration::from_secs(1)),
        "no traffic after the recovery window"
    );
    for s in cap.stats() {
        if ts_of(s) >= cont_wall + Duration::from_millis(1500) {
            assert_eq!(
                s["lost_events"].as_u64(),
                Some(lost_events),
                "lost_events still growing 1.5 s after SIGCONT: {s}"
            );
        }
    }

    // 6. Pairing survives the holes: a response is paired with its own
    // request (the target carries `seq=N`, the response echoes N) unless it
    // is flagged `pairing_guessed`, and every response to a request sent
    // after the recovery window is paired right and unflagged (lost
    // responses must not shift the pairs of a connection for good).
    let mut guessed = 0;
    for v in cap.http().filter(|v| kind(v) == "http_response") {
        let s = seq_of(v, "X-Echo-Seq").expect("X-Echo-Seq");
        let flags = v["flags"].as_array().cloned().unwrap_or_default();
        let is_guess = flags.iter().any(|f| f == "pairing_guessed");
        guessed += is_guess as u32;
        let target = v["request"]["target"].as_str();
        if !is_guess {
            if let Some(t) = target {
                assert!(
                    t.ends_with(&format!("seq={s}")),
                    "response {s} paired with {t}: {v}"
                );
            }
        }
        if by_seq[&s].sent >= cont_at + Duration::from_secs(1) {
            assert_eq!(
                target.map(str::to_owned),
                Some(format!("/?seq={s}")),
                "response {s} after recovery not paired with its request: {v}"
            );
            assert!(flags.is_empty(), "response {s} after recovery flagged: {v}");
        }
    }
    eprintln!("stall: {guessed} responses paired by time after lost responses");
}
