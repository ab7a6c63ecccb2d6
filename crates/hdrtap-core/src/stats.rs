//! Loss and volume accounting: what the kernel counted and what userspace
//! counted, in one place, so no loss is silent.
use serde::Serialize;

/// Counters since start. Kernel fields come from the BPF counters map.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Records written (requests + responses).
    pub records: u64,
    pub requests: u64,
    pub responses: u64,
    /// Messages whose header block exceeded the capture limit.
    pub truncated_messages: u64,
    /// Header blocks that were not valid HTTP/1.x.
    pub parse_errors: u64,
    /// Header blocks cut short by a close (or by hdrtap stopping).
    pub incomplete_messages: u64,
    /// Holes in a connection's byte stream (lost events) and their bytes.
    pub gaps: u64,
    pub gap_bytes: u64,
    /// Times parsing had to search for the next message start, and the bytes skipped.
    pub resyncs: u64,
    pub skipped_bytes: u64,
    pub unpaired_responses: u64,
    /// Ring-buffer records that could not be decoded.
    pub decode_errors: u64,
    /// Records that could not be written (I/O errors).
    pub output_errors: u64,
    /// Connections with parser state now, and evicted for lack of room.
    pub conns_open: u64,
    pub conns_evicted: u64,

    /// Events the kernel wrote to the ring buffer.
    pub kernel_events: u64,
    /// Events lost because the ring buffer was full, and the stream bytes they held.
    pub lost_events: u64,
    pub lost_bytes: u64,
    /// Failed reads of user memory (payload not copied).
    pub read_failures: u64,
    /// Payload bytes not copied because a syscall moved more than the per-call cap.
    pub clipped_bytes: u64,
    /// TCP connections the kernel tracked, and those it stopped copying as not HTTP.
    pub conns_tracked: u64,
    pub conns_gated: u64,
    /// Connections or syscalls not tracked because a kernel map was full.
    pub conn_map_full: u64,
    pub inflight_full: u64,
    /// Payload bytes copied by the kernel.
    pub captured_bytes: u64,
}

impl Stats {
    /// Fill the kernel fields from the counters array (`enum hdrtap_counter` order).
    pub fn set_kernel(&mut self, c: &[u64]) {
        use hdrtap_abi as a;
        let get = |i: u32| c.get(i as usize).copied().unwrap_or(0);
        self.kernel_events = get(a::HDRTAP_CTR_EVENTS);
        self.lost_events = get(a::HDRTAP_CTR_RINGBUF_DROPS);
        self.lost_bytes = get(a::HDRTAP_CTR_RINGBUF_DROP_BYTES);
        self.read_failures = get(a::HDRTAP_CTR_READ_FAILS);
        self.clipped_bytes = get(a::HDRTAP_CTR_CLIPPED_BYTES);
        self.conns_tracked = get(a::HDRTAP_CTR_CONNS);
        self.conns_gated = get(a::HDRTAP_CTR_CONNS_GATED);
        self.conn_map_full = get(a::HDRTAP_CTR_CONN_MAP_FULL);
        self.inflight_full = get(a::HDRTAP_CTR_INFLIGHT_FULL);
        self.captured_bytes = get(a::HDRTAP_CTR_BYTES_CAPTURED);
    }

    /// The `{"kind":"stats", ...}` NDJSON object.
    pub fn to_json(&self, now_unix_ns: u64) -> String {
        #[derive(Serialize)]
        struct Line<'a> {
            kind: &'static str,
            ts: String,
            #[serde(flatten)]
            stats: &'a Stats,
        }
        serde_json::to_string(&Line { kind: "stats", ts: crate::output::rfc3339_ns(now_unix_ns), stats: self })
            .unwrap_or_default()
    }

    /// The one-paragraph summary printed to stderr at exit.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "hdrtap: {} records ({} requests, {} responses); lost {} events ({} bytes) to a full ring buffer, {} failed reads; {} truncated messages, {} parse errors",
            self.records,
            self.requests,
            self.responses,
            self.lost_events,
            self.lost_bytes,
            self.read_failures,
            self.truncated_messages,
            self.parse_errors,
        );
        if self.gaps > 0 {
            s.push_str(&format!(", {} stream gaps ({} bytes)", self.gaps, self.gap_bytes));
        }
        if self.clipped_bytes > 0 {
            s.push_str(&format!(", {} bytes past the per-call capture cap", self.clipped_bytes));
        }
        if self.conn_map_full + self.inflight_full > 0 {
            s.push_str(&format!(
                ", {} connections and {} calls untracked (kernel maps full)",
                self.conn_map_full, self.inflight_full
            ));
        }
        if self.decode_errors > 0 {
            s.push_str(&format!(", {} undecodable events", self.decode_errors));
        }
        if self.output_errors > 0 {
            s.push_str(&format!(", {} records not written (output errors)", self.output_errors));
        }
        s
    }

    /// Whether anything was lost or damaged.
    pub fn any_loss(&self) -> bool {
        self.lost_events
            + self.read_failures
            + self.gaps
            + self.decode_errors
            + self.output_errors
            + self.conn_map_full
            + self.inflight_full
            > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_counters_map_by_index() {
        let mut c = vec![0u64; hdrtap_abi::HDRTAP_CTR_MAX as usize];
        c[hdrtap_abi::HDRTAP_CTR_RINGBUF_DROPS as usize] = 7;
        c[hdrtap_abi::HDRTAP_CTR_READ_FAILS as usize] = 2;
        let mut s = Stats::default();
        s.set_kernel(&c);
        assert_eq!((s.lost_events, s.read_failures), (7, 2));
        assert!(s.any_loss());
        let v: serde_json::Value = serde_json::from_str(&s.to_json(0)).unwrap();
        assert_eq!(v["kind"], "stats");
        assert_eq!(v["lost_events"], 7);
        assert!(s.summary().contains("lost 7 events"));
    }
}
