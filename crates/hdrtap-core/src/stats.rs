//! Loss and volume accounting: what the kernel counted and what userspace
//! counted, in one place, so no loss is silent.
use serde::Serialize;

/// Counters since start. Kernel fields come from the BPF counters map.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// HTTP records written (requests, responses, trailers, resets).
    pub records: u64,
    pub requests: u64,
    pub responses: u64,
    /// HTTP/2: trailer blocks, and resets no other record carried.
    pub trailers: u64,
    pub resets: u64,
    /// Security alerts emitted (`{"kind":"alert"}` records; not in `records`).
    pub alerts: u64,
    /// HTTP records the HTTP filters (`--method`, `--status`, ...) left out.
    pub filtered_out: u64,
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
    /// Unfinished header blocks dropped to keep all connections' buffers
    /// within their global budget (slow or hostile peers at scale).
    pub budget_drops: u64,
    /// HTTP/2: connections decoded as HTTP/2 since start.
    pub http2_conns: u64,
    /// HTTP/2: header blocks whose HPACK decoding failed part-way, and
    /// fields decoded with an unknown name or value (joined mid-stream).
    pub hpack_errors: u64,
    pub undecoded_fields: u64,
    /// HTTP/2: frames that broke the protocol (skipped), header blocks past
    /// the size limit, streams dropped from a full stream table.
    pub http2_frame_errors: u64,
    pub header_block_floods: u64,
    pub streams_evicted: u64,
    /// HTTP/2: GOAWAY frames (a peer ending its connection).
    pub http2_goaways: u64,

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
    /// Connections not tracked because the kernel's connection map was full.
    pub conn_map_full: u64,
    /// OpenSSL calls not captured: no task storage for the call in flight.
    pub inflight_full: u64,
    /// Payload bytes copied by the kernel.
    pub captured_bytes: u64,
    /// Message-body bytes the kernel did not copy because the parser had
    /// already framed them (long bodies, see `TrackerConfig::skip_bodies_from`):
    /// not a loss.
    pub body_bytes_not_copied: u64,
    /// Response bodies the kernel framed itself from the header block
    /// (Content-Length), before userspace had parsed it: their bytes are in
    /// `body_bytes_not_copied` too.
    pub bodies_framed_in_kernel: u64,

    /// TLS library files (and statically linked programs) hooked with uprobes.
    pub tls_libraries: u64,
    /// Connections whose plaintext came from a TLS library.
    pub tls_conns: u64,
    /// SSL calls not captured because their socket was unknown (no syscall
    /// inside the call and no SSL_set_fd seen, e.g. memory BIOs).
    pub tls_no_fd: u64,
    /// SSL calls not copied because the CPU's TLS buffer was busy (the
    /// plaintext stream shows a gap).
    pub tls_busy: u64,
    /// SSL objects with no socket I/O inside their calls (memory BIOs, as
    /// Node.js runs OpenSSL) tied to the socket their thread had just read
    /// the ciphertext from.
    pub tls_bio_fds: u64,
    /// Processes with TCP sockets, when capture started, whose HTTPS hdrtap
    /// cannot show (`hdrtap doctor --tls` says which and why: Go older than
    /// 1.17, rustls, NSS, Java, stripped programs with TLS built in).
    pub tls_uncovered_processes: u64,
    /// Connections the kernel did not track because `--container`/`--unit`
    /// do not match the cgroup of the process that made them.
    pub conns_cgroup_filtered: u64,
    /// `hdrtap http --with-packets` only: the packet capture and the join.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub with_packets: Option<LinkCounters>,
    /// `hdrtap http --source packets|both` only: the reassembly of TCP
    /// from packets.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub wire: Option<crate::wire::WireCounters>,
}

/// The packets `hdrtap http --with-packets` captured and linked.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LinkCounters {
    /// TCP packets the kernel captured.
    pub link_packets_captured: u64,
    /// Packet events lost to a full ring buffer (their records link less).
    pub link_packets_lost: u64,
    /// Packets written because a record linked them.
    pub link_packets_linked: u64,
    /// Packets dropped unclaimed when too many waited (not by age).
    pub link_packets_evicted: u64,
    /// Records with a TCP sequence range, linked.
    pub link_records: u64,
    /// Of them, records whose range the packets found do not cover.
    pub link_records_incomplete: u64,
}

impl LinkCounters {
    /// The summary line at exit.
    pub fn summary(&self) -> String {
        format!(
            "hdrtap: packets: {} TCP packets captured, {} lost to a full ring buffer, {} linked to {} records ({} not wholly covered), {} dropped unclaimed past the limit",
            self.link_packets_captured,
            self.link_packets_lost,
            self.link_packets_linked,
            self.link_records,
            self.link_records_incomplete,
            self.link_packets_evicted,
        )
    }
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
        self.tls_conns = get(a::HDRTAP_CTR_TLS_CONNS);
        self.tls_no_fd = get(a::HDRTAP_CTR_TLS_NO_FD);
        self.tls_busy = get(a::HDRTAP_CTR_TLS_BUSY);
        self.tls_bio_fds = get(a::HDRTAP_CTR_TLS_BIO_FDS);
        self.conns_cgroup_filtered = get(a::HDRTAP_CTR_CONNS_CGROUP_OUT);
        self.body_bytes_not_copied = get(a::HDRTAP_CTR_BODY_SKIPPED_BYTES);
        self.bodies_framed_in_kernel = get(a::HDRTAP_CTR_BODIES_FRAMED);
    }

    /// Fill the userspace fields from the HTTP/1 and HTTP/2 trackers.
    pub fn set_trackers(&mut self, h1: &crate::http1::TrackerStats, h2: &crate::http2::Http2Stats) {
        self.truncated_messages = h1.truncated + h2.truncated;
        self.incomplete_messages = h1.incomplete;
        self.parse_errors = h1.parse_errors;
        self.gaps = h1.gaps + h2.gaps;
        self.gap_bytes = h1.gap_bytes + h2.gap_bytes;
        self.resyncs = h1.resyncs + h2.resyncs;
        self.skipped_bytes = h1.skipped_bytes + h2.skipped_bytes;
        self.unpaired_responses = h1.unpaired_responses + h2.unpaired;
        self.conns_open = h1.conns_open + h2.conns_open;
        self.conns_evicted = h1.conns_evicted + h2.conns_evicted;
        self.budget_drops = h1.budget_drops;
        self.http2_conns = h2.conns;
        self.hpack_errors = h2.hpack_errors;
        self.undecoded_fields = h2.undecoded_fields;
        self.http2_frame_errors = h2.frame_errors;
        self.header_block_floods = h2.block_floods;
        self.streams_evicted = h2.streams_evicted;
        self.http2_goaways = h2.goaways;
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
        if self.trailers > 0 || self.resets > 0 {
            s = s.replacen(
                " responses);",
                &format!(
                    " responses, {} trailers, {} resets);",
                    self.trailers, self.resets
                ),
                1,
            );
        }
        if self.gaps > 0 {
            s.push_str(&format!(
                ", {} stream gaps ({} bytes)",
                self.gaps, self.gap_bytes
            ));
        }
        if self.clipped_bytes > 0 {
            s.push_str(&format!(
                ", {} bytes past the per-call capture cap",
                self.clipped_bytes
            ));
        }
        if self.conn_map_full + self.inflight_full > 0 {
            s.push_str(&format!(
                ", {} connections and {} calls untracked (kernel maps full)",
                self.conn_map_full, self.inflight_full
            ));
        }
        if self.tls_no_fd + self.tls_busy > 0 {
            s.push_str(&format!(
                ", {} TLS calls with no known socket and {} not copied (busy)",
                self.tls_no_fd, self.tls_busy
            ));
        }
        if self.tls_uncovered_processes > 0 {
            s.push_str(&format!(
                ", {} processes whose HTTPS cannot be shown (hdrtap doctor --tls)",
                self.tls_uncovered_processes
            ));
        }
        if self.decode_errors > 0 {
            s.push_str(&format!(", {} undecodable events", self.decode_errors));
        }
        if self.hpack_errors > 0 || self.undecoded_fields > 0 {
            s.push_str(&format!(
                ", HTTP/2: {} HPACK errors, {} fields not decodable (joined mid-stream)",
                self.hpack_errors, self.undecoded_fields
            ));
        }
        if self.http2_frame_errors > 0 || self.header_block_floods > 0 {
            s.push_str(&format!(
                ", HTTP/2: {} bad frames, {} oversized header blocks",
                self.http2_frame_errors, self.header_block_floods
            ));
        }
        if self.streams_evicted > 0 {
            s.push_str(&format!(
                ", HTTP/2: {} open streams forgotten (over the per-connection limit)",
                self.streams_evicted
            ));
        }
        if self.output_errors > 0 {
            s.push_str(&format!(
                ", {} records not written (output errors)",
                self.output_errors
            ));
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
            + self.tls_no_fd
            + self.tls_busy
            > 0
            || self.wire.is_some_and(|w| w.any_loss())
    }
}

/// Counters of `hdrtap packets` since start: what the kernel saw and
/// dropped, and what userspace decoded and wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct PacketStats {
    /// Packet records written.
    pub records: u64,
    /// Records flagged `truncated`, `malformed`, `fragment`, `snapped`.
    pub truncated: u64,
    pub malformed: u64,
    pub fragments: u64,
    pub snapped: u64,
    /// Records with the owning process known.
    pub with_process: u64,
    /// Ring-buffer records that could not be decoded.
    pub decode_errors: u64,
    /// Records that could not be written.
    pub output_errors: u64,

    /// Packets the kernel programs ran on.
    pub packets_seen: u64,
    /// Rejected by the filter expression or --direction.
    pub filtered: u64,
    /// Accepted, then skipped by --sample.
    pub sampled_out: u64,
    /// Events the kernel wrote to the ring buffer.
    pub kernel_events: u64,
    /// Events lost because the ring buffer was full.
    pub lost_events: u64,
    /// Packets longer than --snaplen (cut).
    pub kernel_snapped: u64,
    /// Packets the kernel parser found malformed.
    pub kernel_malformed: u64,
    /// Failed copies of packet bytes.
    pub load_failures: u64,
    /// Packet bytes copied by the kernel.
    pub captured_bytes: u64,
}

impl PacketStats {
    /// Fill the kernel fields from the counters array (`enum hdrtap_pkt_counter` order).
    pub fn set_kernel(&mut self, c: &[u64]) {
        use hdrtap_abi as a;
        let get = |i: u32| c.get(i as usize).copied().unwrap_or(0);
        self.packets_seen = get(a::HDRTAP_PCTR_SEEN);
        self.filtered = get(a::HDRTAP_PCTR_FILTERED);
        self.sampled_out = get(a::HDRTAP_PCTR_SAMPLED_OUT);
        self.kernel_events = get(a::HDRTAP_PCTR_EVENTS);
        self.lost_events = get(a::HDRTAP_PCTR_RINGBUF_DROPS);
        self.kernel_snapped = get(a::HDRTAP_PCTR_SNAPPED);
        self.kernel_malformed = get(a::HDRTAP_PCTR_MALFORMED);
        self.load_failures = get(a::HDRTAP_PCTR_LOAD_FAILS);
        self.captured_bytes = get(a::HDRTAP_PCTR_BYTES);
    }

    /// The one-line summary printed to stderr at exit.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "hdrtap: {} packet records; the kernel saw {} packets: {} filtered out, {} sampled out, {} lost to a full ring buffer; {} snapped, {} truncated, {} malformed, {} fragments",
            self.records,
            self.packets_seen,
            self.filtered,
            self.sampled_out,
            self.lost_events,
            self.snapped,
            self.truncated,
            self.malformed,
            self.fragments,
        );
        if self.load_failures > 0 {
            s.push_str(&format!(", {} failed copies", self.load_failures));
        }
        if self.decode_errors > 0 {
            s.push_str(&format!(", {} undecodable events", self.decode_errors));
        }
        if self.output_errors > 0 {
            s.push_str(&format!(
                ", {} records not written (output errors)",
                self.output_errors
            ));
        }
        s
    }

    /// Whether anything was lost.
    pub fn any_loss(&self) -> bool {
        self.lost_events + self.load_failures + self.decode_errors + self.output_errors > 0
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
        let v: serde_json::Value =
            serde_json::from_str(&crate::sink::StatsSnapshot::new("http", 0, &s).json).unwrap();
        assert_eq!(v["kind"], "stats");
        assert_eq!(v["lost_events"], 7);
        assert!(s.summary().contains("lost 7 events"));
    }

    #[test]
    fn packet_counters_map_by_index() {
        let mut c = vec![0u64; hdrtap_abi::HDRTAP_PCTR_MAX as usize];
        c[hdrtap_abi::HDRTAP_PCTR_SEEN as usize] = 10;
        c[hdrtap_abi::HDRTAP_PCTR_FILTERED as usize] = 6;
        c[hdrtap_abi::HDRTAP_PCTR_RINGBUF_DROPS as usize] = 1;
        let mut s = PacketStats::default();
        s.set_kernel(&c);
        assert_eq!((s.packets_seen, s.filtered, s.lost_events), (10, 6, 1));
        assert!(s.any_loss());
        let v: serde_json::Value =
            serde_json::from_str(&crate::sink::StatsSnapshot::new("packets", 0, &s).json).unwrap();
        assert_eq!(v["kind"], "stats");
        assert_eq!(v["filtered"], 6);
        assert!(s.summary().contains("6 filtered out"), "{}", s.summary());
    }
}
