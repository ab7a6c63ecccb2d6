//! Which protocol each connection speaks, and the tracker that reads it:
//! data events in, [`HttpRecord`]s out, whatever the HTTP version.
//!
//! A connection is HTTP/2 when, seen from its start, either direction's
//! first bytes are the client preface or a server's SETTINGS frame
//! (`http2::frame::looks_like_start`); joined mid-stream, when an event
//! starts with a run of plausible frames (`frame::plausible_run`) — on a
//! connection the HTTP/1 tracker has not parsed anything of yet, too. An
//! HTTP/1.1 connection whose `Upgrade: h2c` request is answered 101 is
//! handed over by the HTTP/1 tracker with the bytes it already holds
//! (`Http1Tracker::take_switches`); its request becomes stream 1. Every
//! other connection is HTTP/1's.
use std::sync::Arc;

use hdrtap_abi::{CloseEvent, DataEvent};

use crate::http1::{Http1Tracker, SkipRequest, TrackerConfig, TrackerStats};
use crate::http2::{frame, Http2Config, Http2Stats, Http2Tracker};
use crate::record::HttpRecord;

/// Every HTTP connection, each to the tracker of its protocol.
#[derive(Debug)]
pub struct HttpTracker {
    h1: Http1Tracker,
    h2: Http2Tracker,
}

impl HttpTracker {
    pub fn new(h1: TrackerConfig, h2: Http2Config) -> Self {
        HttpTracker {
            h1: Http1Tracker::new(h1),
            h2: Http2Tracker::new(h2),
        }
    }

    /// The HTTP/2 limits that match HTTP/1's `cfg` (header limits, clock,
    /// connections).
    pub fn h2_config_like(cfg: &TrackerConfig) -> Http2Config {
        Http2Config {
            max_header_bytes: cfg.max_header_bytes,
            max_headers: cfg.max_headers,
            max_conns: cfg.max_conns,
            clock_offset_ns: cfg.clock_offset_ns,
            skip_data_from: cfg.skip_bodies_from,
            ..Http2Config::default()
        }
    }

    /// Feed one data event; the records it completes are appended to `out`.
    pub fn on_data(&mut self, ev: &DataEvent<'_>, out: &mut Vec<Arc<HttpRecord>>) {
        if self.h2.has(ev.conn_id) {
            self.h2.on_data(ev, out);
            return;
        }
        let new = !self.h1.has(ev.conn_id);
        if (new && starts_http2(ev))
            || (!new
                && self.h1.undecided(ev.conn_id)
                && frame::plausible_run(ev.data, frame::LARGEST_MAX_FRAME))
        {
            self.h1.forget(ev.conn_id);
            self.h2.on_data(ev, out);
            return;
        }
        self.h1.on_data(ev, out);
        for a in self.h1.take_switches().collect::<Vec<_>>() {
            self.h2.adopt(a, out);
        }
    }

    /// A connection closed.
    pub fn on_close(&mut self, ev: &CloseEvent, out: &mut Vec<Arc<HttpRecord>>) {
        if self.h2.has(ev.conn_id) {
            self.h2.on_close(ev, out);
        } else {
            self.h1.on_close(ev, out);
        }
    }

    /// End every connection (at shutdown).
    pub fn close_all(&mut self, out: &mut Vec<Arc<HttpRecord>>) {
        self.h1.close_all(out);
        self.h2.close_all(out);
    }

    /// Time passed (CLOCK_MONOTONIC `now_ns`): what waits on time comes out
    /// (HTTP/2 resets no record of their stream carried).
    pub fn tick(&mut self, now_ns: u64, out: &mut Vec<Arc<HttpRecord>>) {
        self.h2.flush_resets(now_ns, out);
    }

    /// Long message bodies (HTTP/1) and DATA payloads (HTTP/2) the kernel
    /// need not copy.
    pub fn take_skips(&mut self) -> impl Iterator<Item = SkipRequest> + '_ {
        self.h1.take_skips().chain(self.h2.take_skips())
    }

    /// Name the TLS library whose events carry `id`.
    pub fn set_tls_library(&mut self, id: u16, name: &str) {
        self.h1.set_tls_library(id, name);
        self.h2.set_tls_library(id, name);
    }

    pub fn http1(&self) -> &Http1Tracker {
        &self.h1
    }

    pub fn http1_stats(&self) -> &TrackerStats {
        self.h1.stats()
    }

    pub fn http2_stats(&self) -> &Http2Stats {
        self.h2.stats()
    }
}

/// Whether a connection's first event (to hdrtap) shows HTTP/2.
fn starts_http2(ev: &DataEvent<'_>) -> bool {
    let from_start = ev.pos == 0 && !ev.has_flag(hdrtap_abi::HDRTAP_DF_MIDSTREAM);
    if from_start {
        frame::looks_like_start(ev.data) == Some(true)
    } else {
        frame::plausible_run(ev.data, frame::LARGEST_MAX_FRAME)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrtap_abi::build::{data_event, DataSpec};
    use hdrtap_abi::{decode, Direction, Event, KernelRole};

    use crate::record::HttpKind;

    struct T {
        t: HttpTracker,
        out: Vec<Arc<HttpRecord>>,
        pos: [u64; 2],
        spec: DataSpec,
    }

    impl T {
        fn new(role: KernelRole) -> T {
            T {
                t: HttpTracker::new(TrackerConfig::default(), Http2Config::default()),
                out: Vec::new(),
                pos: [0, 0],
                spec: DataSpec {
                    role,
                    ts_ns: 1000,
                    ..DataSpec::default()
                },
            }
        }

        fn send(&mut self, dir: Direction, data: &[u8]) {
            let d = dir.index();
            let spec = DataSpec {
                dir,
                pos: self.pos[d],
                ..self.spec.clone()
            };
            let buf = data_event(&spec, data);
            let Ok(Event::Data(ev)) = decode(&buf) else {
                panic!("bad event")
            };
            self.t.on_data(&ev, &mut self.out);
            self.pos[d] += data.len() as u64;
            self.spec.ts_ns += 1000;
        }
    }

    use frame::encode as frame;

    /// `:status: 200` (static index 8) and `:method GET`, `:path /`.
    const STATUS_200: &[u8] = &[0x88];
    const GET_ROOT: &[u8] = &[0x82, 0x86, 0x84];

    #[test]
    fn prior_knowledge_goes_to_http2_and_http1_stays() {
        let mut t = T::new(KernelRole::Client);
        let mut b = frame::PREFACE.to_vec();
        b.extend(frame(4, 0, 0, &[]));
        b.extend(frame(1, 0x5, 1, GET_ROOT));
        t.send(Direction::Egress, &b);
        t.send(Direction::Ingress, &frame(1, 0x5, 1, STATUS_200));
        assert_eq!(t.out.len(), 2);
        assert!(t.out.iter().all(|r| r.version == "HTTP/2"));
        let mut t = T::new(KernelRole::Client);
        t.send(Direction::Egress, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        t.send(Direction::Ingress, b"HTTP/1.1 204 No Content\r\n\r\n");
        assert_eq!(t.out.len(), 2);
        assert!(t.out.iter().all(|r| r.version == "HTTP/1.1"));
        assert_eq!(t.t.http2_stats().conns, 0);
    }

    #[test]
    fn h2c_upgrade_hands_the_connection_over_and_stream_1_pairs() {
        let mut t = T::new(KernelRole::Client);
        t.send(
            Direction::Egress,
            b"GET /up HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n",
        );
        // The 101 and the server's first frames in one write.
        let mut b =
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
                .to_vec();
        b.extend(frame(4, 0, 0, &[]));
        b.extend(frame(1, 0x5, 1, &[0x88, 0x40, 1, b'x', 1, b'y']));
        t.send(Direction::Ingress, &b);
        // The client's preface, then a new request on stream 3.
        let mut b = frame::PREFACE.to_vec();
        b.extend(frame(4, 0, 0, &[]));
        b.extend(frame(1, 0x5, 3, GET_ROOT));
        t.send(Direction::Egress, &b);
        t.send(Direction::Ingress, &frame(1, 0x5, 3, &[0x88, 0xbe]));
        let r: Vec<(HttpKind, &str, Option<u16>)> = t
            .out
            .iter()
            .map(|r| (r.kind, r.version, r.status))
            .collect();
        assert_eq!(
            r,
            vec![
                (HttpKind::Request, "HTTP/1.1", None),
                (HttpKind::Response, "HTTP/1.1", Some(101)),
                (HttpKind::Response, "HTTP/2", Some(200)),
                (HttpKind::Request, "HTTP/2", None),
                (HttpKind::Response, "HTTP/2", Some(200)),
            ]
        );
        let s1 = &t.out[2];
        assert_eq!(s1.stream_id(), Some(1));
        assert_eq!(s1.request.as_ref().unwrap().target, "/up");
        assert_eq!(s1.header("x"), Some("y"));
        // The server's table carried x: y on to stream 3's response.
        assert_eq!(t.out[4].header("x"), Some("y"));
        assert!(t.out.iter().all(|r| !r.flags.contains(&"unpaired")));
    }

    #[test]
    fn midstream_frames_on_an_undecided_http1_connection_switch_it() {
        let mut t = T::new(KernelRole::Unknown);
        t.spec.flags = hdrtap_abi::HDRTAP_DF_MIDSTREAM as u16;
        t.pos = [900, 900];
        // Not a message start, not frames: HTTP/1 waits for a start.
        t.send(Direction::Egress, b"\x17\x03\x03garbage");
        assert!(t.t.http1().has(1));
        let mut b = frame(1, 0x5, 9, GET_ROOT);
        b.extend(frame(6, 0, 0, &[0; 8]));
        t.send(Direction::Egress, &b);
        assert!(!t.t.http1().has(1));
        assert_eq!(t.out.len(), 1);
        assert_eq!(t.out[0].stream_id(), Some(9));
    }
}
