//! Load, attach and count ring-buffer events for N seconds (default 4); with
//! HDRTAP_SMOKE_PRINT=1, print a line per event. A developer tool for the
//! kernel side alone.
use std::time::{Duration, Instant};
fn main() {
    hdrtap_bpf::route_libbpf_logs();
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let print = std::env::var_os("HDRTAP_SMOKE_PRINT").is_some();
    let opts = hdrtap_bpf::HttpOptions {
        pids: std::env::var("SMOKE_PID")
            .ok()
            .and_then(|s| s.parse().ok())
            .into_iter()
            .collect(),
        ..Default::default()
    };
    let mut p = match hdrtap_bpf::HttpProbe::load(&opts) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}\n{}", e.log());
            std::process::exit(1)
        }
    };
    if let Err(e) = p.attach() {
        eprintln!("{e}");
        std::process::exit(1)
    }
    eprintln!("attached {}", p.attached());
    let mut n = 0u64;
    let rb = p
        .ring_buffer(|b: &[u8]| {
            n += 1;
            if print {
                match hdrtap_abi::decode(b) {
                    Ok(ev) => println!("{ev:?}"),
                    Err(e) => println!("undecodable: {e}"),
                }
            }
            0
        })
        .expect("ring buffer");
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(secs) {
        let _ = hdrtap_bpf::HttpProbe::poll(&rb, Duration::from_millis(50));
    }
    drop(rb);
    eprintln!(
        "events: {n}; counters: {:?}",
        p.counters().expect("counters")
    );
}
