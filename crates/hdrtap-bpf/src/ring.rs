//! What the HTTP and packet probes share about their maps: a reader of the
//! `events` ring buffer, the per-CPU `counters` summed, and how full a ring
//! buffer is (the ring-fill metric).
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
    let ptr = rb.as_libbpf_object().as_ptr();
    // SAFETY: `ptr` is the live `struct ring_buffer` owned by `rb`, which
    // is borrowed for the whole call; ring_buffer__ring only reads its ring
    // array and returns NULL for an index out of range.
    let ring = unsafe { libbpf_rs::libbpf_sys::ring_buffer__ring(ptr, 0) };
    if ring.is_null() {
        return None;
    }
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
