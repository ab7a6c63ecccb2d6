//! What the HTTP and packet probes share about their maps: a reader of the
//! `events` ring buffer and how it is polled, when the kernel wakes that
//! reader, the per-CPU `counters` summed, and how full a ring buffer is
//! (the ring-fill metric).
use std::time::Duration;

use libbpf_rs::{AsRawLibbpf, MapCore, MapFlags, RingBuffer, RingBufferBuilder};

use crate::BpfError;

/// A reader of the `events` ring buffer `map`; `cb` gets each raw event and
/// returns 0 to go on (a negative value stops the current poll).
pub(crate) fn events_reader<'a, F>(map: &'a impl MapCore, cb: F) -> Result<RingBuffer<'a>, BpfError>
where
    F: FnMut(&[u8]) -> i32 + 'a,
{
    let err = |source| BpfError::Map {
        map: "events",
        source,
    };
    let mut builder = RingBufferBuilder::new();
    builder.add(map, cb).map_err(err)?;
    builder.build().map_err(err)
}

/// Most ring-buffer events one [`poll`] takes (see there).
///
/// Small on purpose: the records of one poll are parsed, checked, redacted
/// and written before the next poll, and 256 events' worth of them stay in
/// the CPU cache between those steps. With 4096, every step after parsing
/// met them cold again: `bench/suite.sh` measured 7.1 µs of hdrtap CPU per
/// request at 4096, 5.8 at 1024, 4.7 at 256, and no less at 64 (where each
/// poll's epoll_wait and write serve four times fewer records). Taking a
/// whole ring at once (a 16 MiB ring holds some 50,000 events) also made
/// hdrtap's memory grow with the ring in a burst (fault_churn: 200 MiB peak
/// RSS).
pub const MAX_EVENTS_PER_POLL: usize = 256;

/// Fill level, in bytes, at which the kernel side wakes the reader early
/// (rodata `wakeup_bytes`): three quarters of a ring of `ring_bytes`.
///
/// Until then the reader wakes on its own timer, drains the ring and sleeps
/// again, so it runs in a few long bursts rather than many short ones. That
/// matters more than its CPU time: each burst takes a CPU from the traced
/// programs, and on a busy machine the scheduler then packs a client and
/// server that talk to each other onto the other CPU, where they stay for
/// some 15 ms after the burst while the freed CPU idles (`perf sched
/// timehist`, nginx and wrk on 2 CPUs). Woken at a quarter of a 16 MiB ring
/// (every ~13 ms under `bench/suite.sh`'s load), 30% of both CPUs idled and
/// `hdrtap http` kept 0.60 of the throughput; woken at three quarters, or by
/// a 50 ms timer, 15% idled and it kept 0.67 (docs/PERFORMANCE.md). The
/// quarter left is the headroom for the reader to wake up in: 4 MiB of a
/// 16 MiB ring, some 10 ms at the 400 MB/s that load writes.
pub fn wakeup_bytes(ring_bytes: u32) -> u64 {
    u64::from(ring_bytes) / 4 * 3
}

/// Wait up to `timeout` for the kernel to wake us, unless events are
/// already waiting, then consume at most [`MAX_EVENTS_PER_POLL`] of them.
/// Call in a loop: once awake the reader drains the ring, batch by batch,
/// and waits only when it is empty, so records arrive at most `timeout`
/// (plus the time to process what came before them) late.
///
/// The wait is on the ring's epoll descriptor, which the kernel side
/// signals only when the ring is filling up ([`wakeup_bytes`]): waiting
/// there while events sat in the ring took only one batch per timeout, so
/// traffic of more than 256 events per timeout that never reached the
/// wake-up level came out later and later.
pub fn poll(rb: &RingBuffer<'_>, timeout: Duration) -> Result<(), BpfError> {
    let err = |source| BpfError::Map {
        map: "events",
        source,
    };
    if !pending(rb) {
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: epoll_fd() is the ring buffer's live epoll descriptor and
        // ev a valid, writable array of one event.
        let rc = unsafe { libc::epoll_wait(rb.epoll_fd(), &mut ev, 1, ms) };
        if rc < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(err(e.into()));
            }
        }
    }
    let n = rb.consume_raw_n(MAX_EVENTS_PER_POLL);
    if n < 0 && n != -libc::EINTR {
        return Err(err(std::io::Error::from_raw_os_error(-n).into()));
    }
    Ok(())
}

/// Whether any ring of `rb` holds unread events.
fn pending(rb: &RingBuffer<'_>) -> bool {
    (0..).map_while(|i| ring_at(rb, i)).any(|ring| {
        // SAFETY: `ring` is a non-null ring of `rb`, alive while `rb` is
        // borrowed; the call only reads its producer/consumer positions.
        unsafe { libbpf_rs::libbpf_sys::ring__avail_data_size(ring) > 0 }
    })
}

/// Ring `i` of `rb` (in the order they were added); None past the last.
/// The pointer is valid while `rb` is.
fn ring_at(rb: &RingBuffer<'_>, i: u32) -> Option<*mut libbpf_rs::libbpf_sys::ring> {
    // SAFETY: the pointer is `rb`'s live `struct ring_buffer`, borrowed for
    // the call; ring_buffer__ring only reads its ring array and returns
    // NULL for an index out of range.
    let ring =
        unsafe { libbpf_rs::libbpf_sys::ring_buffer__ring(rb.as_libbpf_object().as_ptr(), i) };
    (!ring.is_null()).then_some(ring)
}

/// The per-CPU `u64` array `map` (the `counters` map), each slot summed
/// over CPUs.
pub(crate) fn sum_counters<const N: usize>(map: &impl MapCore) -> Result<[u64; N], BpfError> {
    let mut out = [0u64; N];
    for (i, slot) in out.iter_mut().enumerate() {
        let key = (i as u32).to_ne_bytes();
        let per_cpu = map
            .lookup_percpu(&key, MapFlags::ANY)
            .map_err(|source| BpfError::Map {
                map: "counters",
                source,
            })?
            .unwrap_or_default();
        *slot = per_cpu
            .iter()
            .filter_map(|v| v.get(..8).and_then(|b| b.try_into().ok()))
            .map(u64::from_ne_bytes)
            .sum();
    }
    Ok(out)
}

/// Bytes waiting to be read in the first ring of `rb` (the one added
/// first: the events ring) and that ring's size. None if libbpf has no
/// such ring.
pub fn ring_fill(rb: &RingBuffer<'_>) -> Option<(u64, u64)> {
    let ring = ring_at(rb, 0)?;
    // SAFETY: `ring` is non-null and points into `rb`'s ring array, alive
    // while `rb` is; both functions only read the ring's mask and its
    // producer/consumer positions (atomically).
    let (avail, size) = unsafe {
        (
            libbpf_rs::libbpf_sys::ring__avail_data_size(ring),
            libbpf_rs::libbpf_sys::ring__size(ring),
        )
    };
    Some((avail, size))
}
