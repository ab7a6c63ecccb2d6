//! Load, attach, and print a line per ring-buffer event for a few seconds.
use std::time::{Duration, Instant};
fn main() {
    hdrtap_bpf::route_libbpf_logs();
    let mut p = match hdrtap_bpf::HttpProbe::load(&Default::default()) {
        Ok(p) => p,
        Err(e) => { eprintln!("{e}\n{}", e.log()); std::process::exit(1) }
    };
    p.attach().unwrap();
    eprintln!("attached {}", p.attached());
    let rb = p.ring_buffer(|b: &[u8]| { println!("event {} bytes kind={} : {:?}", b.len(), b[0], String::from_utf8_lossy(&b[136.min(b.len())..(b.len()).min(200)])); 0 }).unwrap();
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(4) { rb.poll(Duration::from_millis(100)).unwrap(); }
    println!("{:?}", p.counters().unwrap());
}
