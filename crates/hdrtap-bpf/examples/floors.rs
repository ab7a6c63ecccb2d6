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
//! Nor is `read`: it reads sends as `iou` does, and what each TCP receive
//! copies to its reader (skb:skb_copy_datagram_iovec, the skb's bytes by
//! bpf_skb_output), and counts the requests and responses among them.
use std::{
    os::fd::{AsFd, AsRawFd, RawFd},
    time::{Duration, Instant},
};

use libbpf_rs::{libbpf_sys as sys, MapCore, MapFlags, ObjectBuilder};

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
        "read" => "rd_",
        _ => return None,
    })
}

fn main() {
    let mut args = std::env::args().skip(1);
    let set = args.next().unwrap_or_default();
    let Some(prefix) = prefix(&set) else {
        eprintln!(
            "floors: unknown set {set:?}; one of sys, sys-hash, sock, sock-btf, tcp, tcp-btf, iou, read"
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
    // The read set's receives: [tgid, off, len, cap] (u32 each), then `cap` of
    // the skb's payload bytes; what the reader got starts at `off`.
    let mut rx = RxCount::default();
    let perf = if prefix == "rd_" {
        let map = obj
            .maps()
            .find(|m| m.name() == "rx_events")
            .expect("rx_events");
        Some(RawPerf::new(map.as_fd().as_raw_fd(), &mut rx)?)
    } else {
        None
    };
    let t = Instant::now();
    while t.elapsed() < hold {
        std::thread::sleep(Duration::from_millis(20));
        if let Some(p) = &perf {
            p.consume();
        }
    }
    drop(perf);
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
    if prefix == "rd_" {
        eprintln!(
            "received: http requests {}, responses {}, copies too short to tell {}, lost {}",
            rx.requests, rx.responses, rx.short, rx.lost
        );
    }
    if prefix == "iou_" || prefix == "rd_" {
        eprintln!("http requests read from senders' buffers {}", slot(1));
    }
    Ok(())
}

/// What the read set's receives held.
#[derive(Default)]
struct RxCount {
    requests: u64,
    responses: u64,
    short: u64,
    lost: u64,
}

impl RxCount {
    fn sample(&mut self, d: &[u8]) {
        let word = |i: usize| {
            d.get(4 * i..4 * i + 4)
                .map_or(0, |b| u32::from_ne_bytes(b.try_into().unwrap()) as usize)
        };
        let (off, cap) = (word(1), word(3));
        match d.get(16 + off..(16 + cap).min(d.len())) {
            Some(b) if b.starts_with(b"GET ") => self.requests += 1,
            Some(b) if b.starts_with(b"HTTP/1.") => self.responses += 1,
            Some(b) if b.len() < 8 => self.short += 1,
            _ => {}
        }
    }
}

/// A perf buffer whose samples never wake the reader: libbpf-rs's
/// PerfBufferBuilder asks for a wakeup per sample, and each wakeup is an
/// irq_work (a self-interrupt, dear in a VM) in the traced task's path;
/// here the reader consumes on a timer instead. libbpf's raw constructor is
/// the only way to choose the perf event's attributes.
struct RawPerf(*mut sys::perf_buffer);

impl RawPerf {
    fn new(map_fd: RawFd, rx: &mut RxCount) -> Result<Self, libbpf_rs::Error> {
        let mut attr = sys::perf_event_attr {
            type_: sys::PERF_TYPE_SOFTWARE,
            config: sys::PERF_COUNT_SW_BPF_OUTPUT as u64,
            sample_type: sys::PERF_SAMPLE_RAW as u64,
            ..Default::default()
        };
        attr.__bindgen_anon_1.sample_period = 1;
        // A watermark no sample reaches: the kernel never queues a wakeup.
        attr.set_watermark(1);
        attr.__bindgen_anon_2.wakeup_watermark = u32::MAX;
        // SAFETY: attr is a valid perf_event_attr that libbpf copies; the
        // callback's ctx is `rx`, which outlives the buffer (it is dropped
        // before `rx` in run()); opts NULL means every CPU.
        let pb = unsafe {
            sys::perf_buffer__new_raw(
                map_fd,
                256,
                &mut attr,
                Some(on_event),
                (rx as *mut RxCount).cast(),
                std::ptr::null(),
            )
        };
        // SAFETY: libbpf_get_error only inspects the pointer's value.
        let err = unsafe { sys::libbpf_get_error(pb as *const _) };
        if pb.is_null() || err != 0 {
            return Err(libbpf_rs::Error::from(std::io::Error::from_raw_os_error(
                (-err).max(1) as i32,
            )));
        }
        Ok(RawPerf(pb))
    }

    fn consume(&self) {
        // SAFETY: self.0 is a live perf_buffer from perf_buffer__new_raw.
        unsafe { sys::perf_buffer__consume(self.0) };
    }
}

impl Drop for RawPerf {
    fn drop(&mut self) {
        self.consume();
        // SAFETY: self.0 came from perf_buffer__new_raw and is freed once.
        unsafe { sys::perf_buffer__free(self.0) };
    }
}

/// One perf record: a sample is the header, a u32 size, then the raw bytes
/// (PERF_SAMPLE_RAW); a lost record says how many samples were dropped.
unsafe extern "C" fn on_event(
    ctx: *mut std::ffi::c_void,
    _cpu: i32,
    ev: *mut sys::perf_event_header,
) -> sys::bpf_perf_event_ret {
    // SAFETY: ctx is the RxCount given to perf_buffer__new_raw, used by
    // this callback alone, on the thread that consumes.
    let rx = unsafe { &mut *ctx.cast::<RxCount>() };
    // SAFETY: libbpf hands a whole record of (*ev).size bytes, copied
    // contiguous if it wrapped around the ring.
    let rec = unsafe { std::slice::from_raw_parts(ev.cast::<u8>(), (*ev).size as usize) };
    let kind = u32::from_ne_bytes(rec[..4].try_into().unwrap());
    if kind == sys::PERF_RECORD_SAMPLE {
        let n = u32::from_ne_bytes(rec[8..12].try_into().unwrap()) as usize;
        rx.sample(rec.get(12..12 + n).unwrap_or_default());
    } else if kind == sys::PERF_RECORD_LOST {
        rx.lost += u64::from_ne_bytes(rec[16..24].try_into().unwrap());
    }
    sys::LIBBPF_PERF_EVENT_CONT
}
