//! Connection churn: 10,000 idle keep-alive connections held open while
//! 100,000 short connections (one request each, closed by the server) come
//! and go, all traced on both ends (this process and nginx). hdrtap's
//! memory must stay bounded (peak RSS <= 64 MiB), the kernel's connection
//! map must hold about the connections still open (closed ones are freed,
//! nothing was refused for lack of room), and userspace must free closed
//! connections too. Root only.
#![forbid(unsafe_code)]
use std::{
    io::{Read, Write},
    net::TcpStream,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

use hdrtap_tests::*;

const IDLE: usize = 10_000;
const SHORT: u64 = 100_000;
const RSS_LIMIT_KIB: u64 = 64 * 1024;

/// Entries of the BPF map named `name` held by process `pid`, and its size.
fn map_entries(pid: u32, name: &str) -> (usize, u64) {
    let ids = BpfIds::of_process(pid);
    for id in ids.maps {
        let out = std::process::Command::new("bpftool")
            .args(["-j", "map", "show", "id", &id.to_string()])
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if v["name"] == name {
            let dump = std::process::Command::new("bpftool")
                .args(["-j", "map", "dump", "id", &id.to_string()])
                .output()
                .unwrap();
            let d: Value = serde_json::from_slice(&dump.stdout).unwrap_or(Value::Null);
            let n = d.as_array().map_or(0, |a| a.len());
            return (n, v["max_entries"].as_u64().unwrap_or(0));
        }
    }
    panic!("hdrtap holds no map named {name}");
}

#[test]
fn churn_of_100k_connections_with_10k_idle_stays_bounded() {
    let _guard = setup();
    raise_nofile(IDLE as u64 + 1024);
    let nginx = Nginx::start_with_connections(IDLE as u32 + 4096);
    let hd = Hdrtap::start(&[
        "--port",
        &nginx.port.to_string(),
        "--no-tls",
        "--stats-interval",
        "1",
    ]);
    let pid = hd.pid();
    // Peaks of: VmRSS, hdrtap's own memory (private + ring once), private,
    // file mappings, BPF map mappings (see `Resident`).
    let peaks: Arc<[AtomicU64; 5]> = Arc::new(Default::default());
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = thread::spawn({
        let (peaks, sampling) = (Arc::clone(&peaks), Arc::clone(&sampling));
        move || {
            while sampling.load(Ordering::Relaxed) {
                let r = resident_kib(pid);
                for (p, v) in peaks
                    .iter()
                    .zip([r.total, r.own(), r.private, r.files, r.bpf_maps])
                {
                    p.fetch_max(v, Ordering::Relaxed);
                }
                thread::sleep(Duration::from_millis(100));
            }
        }
    });
    let id = unique_id("churn");
    let port = nginx.port;

    // 10k idle keep-alive connections, each with one exchange done.
    let started = Instant::now();
    let mut idle = Vec::with_capacity(IDLE);
    let mut buf = Vec::new();
    for i in 0..IDLE {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect idle");
        let req = format!("GET /?idle={i} HTTP/1.1\r\nHost: x\r\nX-Test-Id: {id}\r\n\r\n");
        s.write_all(req.as_bytes()).unwrap();
        read_response(&mut s, &mut buf).unwrap();
        idle.push(s);
    }
    eprintln!(
        "churn: {IDLE} idle connections open after {:?}",
        started.elapsed()
    );

    // 100k short connections from 4 threads; nginx closes each (Connection:
    // close), so TIME_WAIT stays on its side and client ports are reused.
    let t0 = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (next, id) = (Arc::clone(&next), id.clone());
            thread::spawn(move || {
                let mut buf = Vec::new();
                let mut rest = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= SHORT {
                        break;
                    }
                    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect short");
                    let req = format!(
                        "GET /?n={n} HTTP/1.1\r\nHost: x\r\nX-Test-Id: {id}\r\nConnection: close\r\n\r\n"
                    );
                    s.write_all(req.as_bytes()).unwrap();
                    read_response(&mut s, &mut buf).unwrap();
                    rest.clear();
                    let _ = s.read_to_end(&mut rest);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let churn_time = t0.elapsed();
    eprintln!(
        "churn: {SHORT} short connections in {churn_time:?} ({:.0}/s)",
        SHORT as f64 / churn_time.as_secs_f64()
    );

    // Userspace frees closed connections: once hdrtap has caught up, the
    // connections it holds are the idle ones (both ends) and no more.
    // (A connection whose close event was lost to a full ring stays until
    // evicted: the bound allows one per lost event.)
    let caught_up = Instant::now();
    let mut open = u64::MAX;
    let mut lost = 0;
    let mut stats = Value::Null;
    while caught_up.elapsed() < Duration::from_secs(30) {
        let recs = hd.peek();
        if let Some(s) = recs.iter().rev().find(|v| kind(v) == "stats") {
            open = s["conns_open"].as_u64().unwrap_or(u64::MAX);
            lost = s["lost_events"].as_u64().unwrap_or(0);
            stats = s.clone();
            let requests = recs.iter().filter(|v| kind(v) == "http_request").count() as u64;
            if open <= 2 * IDLE as u64 + 16 + lost && requests + lost >= 2 * (IDLE as u64 + SHORT) {
                break;
            }
        }
        thread::sleep(Duration::from_millis(500));
    }
    assert!(
        open <= 2 * IDLE as u64 + 16 + lost,
        "hdrtap still tracks {open} connections with {IDLE} idle ones open (2 ends each): {stats}"
    );
    // The kernel frees closed connections too.
    let (entries, max) = map_entries(pid, "conns");
    eprintln!("churn: kernel conns map holds {entries} of {max} entries");
    assert!(entries as u64 <= max);
    assert!(
        entries <= 2 * IDLE + 2048,
        "the kernel's connection map holds {entries} entries with {IDLE} idle connections (x2) open"
    );

    drop(idle);
    sampling.store(false, Ordering::Relaxed);
    sampler.join().unwrap();
    let (_, hwm) = rss_kib(pid);
    let cap = hd.stop();
    let [total, own, private, files, maps] =
        [0, 1, 2, 3, 4].map(|i| peaks[i].load(Ordering::Relaxed));
    let last = cap.records.last().unwrap();
    eprintln!(
        "churn: hdrtap peak memory {own} KiB (private {private} KiB + the ring counted once); \
         peak VmRSS {total} KiB (VmHWM {hwm} KiB) = private + file mappings {files} KiB \
         (the executable, libraries) + BPF map mappings {maps} KiB (the ring, mapped twice); \
         final stats {last}"
    );
    // The bound is on what hdrtap takes from the machine: its private memory
    // and its ring buffer. VmRSS also counts the executable's text (10+ MiB
    // for a debug build, shared and reclaimable) and the ring twice.
    assert!(
        own <= RSS_LIMIT_KIB,
        "hdrtap's memory peaked at {own} KiB (limit {RSS_LIMIT_KIB} KiB): private {private} KiB, ring {} KiB",
        maps / 2
    );
    assert!(
        private <= RSS_LIMIT_KIB / 2,
        "hdrtap's private memory peaked at {private} KiB with {IDLE} idle connections"
    );
    for f in ["conn_map_full", "inflight_full", "decode_errors"] {
        assert_eq!(last[f], 0, "{f}: {last}");
    }
    // Every request on both ends, or lost to a full ring and counted.
    let requests = cap.http().filter(|v| kind(v) == "http_request").count() as u64;
    let lost = last["lost_events"].as_u64().unwrap();
    assert!(
        requests + lost >= 2 * (IDLE as u64 + SHORT) && requests <= 2 * (IDLE as u64 + SHORT),
        "{requests} request records, {lost} events lost: {last}"
    );
}
