//! The few system calls the rest of hdrtap needs (clocks, euid, ttys),
//! through rustix and std: no `unsafe` here.

fn clock_ns(clock: rustix::time::ClockId) -> u64 {
    let ts = rustix::time::clock_gettime(clock);
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// CLOCK_MONOTONIC in nanoseconds (the clock of bpf_ktime_get_ns).
pub fn monotonic_ns() -> u64 {
    clock_ns(rustix::time::ClockId::Monotonic)
}

/// CLOCK_REALTIME in nanoseconds since the Unix epoch.
pub fn realtime_ns() -> u64 {
    clock_ns(rustix::time::ClockId::Realtime)
}

/// Offset to add to a BPF timestamp to get wall-clock time.
pub fn monotonic_to_realtime_offset_ns() -> i64 {
    realtime_ns() as i64 - monotonic_ns() as i64
}

/// The effective user id.
pub fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Whether standard output (1) or error (2) is a terminal.
pub fn is_tty(fd: i32) -> bool {
    use std::io::IsTerminal;
    match fd {
        1 => std::io::stdout().is_terminal(),
        2 => std::io::stderr().is_terminal(),
        _ => false,
    }
}
