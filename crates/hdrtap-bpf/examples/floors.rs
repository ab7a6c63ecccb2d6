//! Attach one set of count-only programs (bpf/bench/floors.bpf.c) and hold
//! them for N seconds: the floor a capture on those hooks cannot go under.
//! bench/suite.sh's floor-* arms run it.
//!
//!     floors SET [SECONDS]
//!
//! SET: `sys` (the eight syscall exits hdrtap http's syscall path uses),
//! `sys-hash` (the same, each run looking up its tgid in an empty hash first),
//! `sock` (sock:sock_send_length and sock:sock_recv_length, classic
//! tracepoints), `sock-btf` (the same as tp_btf), `tcp` (tcp:tcp_sendmsg_locked
//! and sock:sock_recv_length, classic), `tcp-btf` (the same as tp_btf).
//! Not a floor: `iou` reads the first bytes each tcp_sendmsg_locked sends
//! from the sender's buffer and counts the HTTP requests among them, to show
//! that a socket-layer hook reads what io_uring sends (docs/PERFORMANCE.md).
use std::time::{Duration, Instant};

use libbpf_rs::{MapCore, MapFlags, ObjectBuilder};

/// The object build.rs compiles beside hdrtap's own.
const OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/floors.bpf.o"));

/// The program-name prefix of each set (see floors.bpf.c).
fn prefix(set: &str) -> Option<&'static str> {
    Some(match set {
        "sys" => "sys_",
        "sys-hash" => "syshash_",
        "sock" => "sock_",
        "sock-btf" => "sockbtf_",
        "tcp" => "tcp_",
        "tcp-btf" => "tcpbtf_",
        "iou" => "iou_",
        _ => return None,
    })
}

fn main() {
    let mut args = std::env::args().skip(1);
    let set = args.next().unwrap_or_default();
    let Some(prefix) = prefix(&set) else {
        eprintln!(
            "floors: unknown set {set:?}; one of sys, sys-hash, sock, sock-btf, tcp, tcp-btf, iou"
        );
        std::process::exit(2)
    };
    let secs: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(3600);
    if let Err(e) = run(prefix, Duration::from_secs(secs)) {
        eprintln!("floors: {set}: {e:#}");
        std::process::exit(1)
    }
}

fn run(prefix: &str, hold: Duration) -> Result<(), libbpf_rs::Error> {
    let mut open = ObjectBuilder::default().open_memory(OBJECT)?;
    for mut p in open.progs_mut() {
        let mine = p.name().to_string_lossy().starts_with(prefix);
        p.set_autoload(mine);
    }
    let obj = open.load()?;
    let mut links = Vec::new();
    for p in obj.progs_mut() {
        if p.name().to_string_lossy().starts_with(prefix) {
            links.push(p.attach()?);
        }
    }
    eprintln!("attached {}", links.len());
    let t = Instant::now();
    while t.elapsed() < hold {
        std::thread::sleep(Duration::from_millis(100));
    }
    let slot = |k: u32| -> u64 {
        obj.maps()
            .find(|m| m.name() == "floor_runs")
            .and_then(|m| m.lookup_percpu(&k.to_ne_bytes(), MapFlags::ANY).ok())
            .flatten()
            .map(|cpus| {
                cpus.iter()
                    .filter_map(|v| v.get(..8)?.try_into().ok().map(u64::from_ne_bytes))
                    .sum()
            })
            .unwrap_or(0)
    };
    eprintln!("runs {}", slot(0));
    if prefix == "iou_" {
        eprintln!("http requests read from senders' buffers {}", slot(1));
    }
    Ok(())
}
