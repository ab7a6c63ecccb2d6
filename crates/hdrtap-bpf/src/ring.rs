//! How full a ring buffer is, for the ring-fill metric.
use libbpf_rs::{AsRawLibbpf, RingBuffer};

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
