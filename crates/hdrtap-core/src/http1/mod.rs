//! HTTP/1.x over every TCP connection: data events in, [`HttpRecord`]s out.
//!
//! [`Http1Tracker`] keeps, per connection (`conn_id`), two directions — each
//! a `crate::stream::DirStream` (expected position, pending bytes) and a
//! `parse::Machine` (framing state) — plus what the directions share: the
//! process's role, the FIFO of requests awaiting responses, and whether the
//! connection stopped being HTTP/1 (Upgrade, CONNECT, HTTP/2).
//!
//! Flow of one data event: the connection is found or created
//! (`crate::table::LruTable`, evicting the least recently used beyond
//! `max_conns`); the event's range is checked against the expected position
//! (lost bytes, duplicate prefix, uncaptured tail); captured bytes go to the
//! machine — straight from the event when nothing is pending, so a header
//! block inside one event is parsed without a copy — and missing bytes are
//! reported to it as a gap. Each header block the machine parses comes back
//! here (`parse::Sink::head`) to be paired and turned into a record.
//!
//! ```
//! use hdrtap_abi::build::{data_event, DataSpec};
//! use hdrtap_abi::{decode, Direction, Event};
//! use hdrtap_core::http1::{Http1Tracker, TrackerConfig};
//!
//! let mut tracker = Http1Tracker::new(TrackerConfig::default());
//! let mut out = Vec::new();
//! let spec = DataSpec { dir: Direction::Egress, ..Default::default() };
//! let raw = data_event(&spec, b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
//! if let Ok(Event::Data(ev)) = decode(&raw) {
//!     tracker.on_data(&ev, &mut out);
//! }
//! assert_eq!(out[0].target.as_deref(), Some("/x"));
//! assert_eq!(out[0].header("host"), Some("a"));
//! ```
//!
//! Choices worth knowing:
//! * Header blocks up to `max_header_bytes` are parsed whole. A longer one
//!   yields a record flagged `truncated` with what its first
//!   `max_header_bytes` bytes hold: the complete lines and the unfinished
//!   last one (a value or name cut at the limit, flag `cut`). A start line
//!   with no line break within the limit still yields a record: method and
//!   target cut at the limit (or, for a response, status and reason), no
//!   headers, version `HTTP/1.x` for a request, flag `cut`. The rest of the
//!   block is skipped up to its blank line, then the body is framed by the
//!   headers kept if they say how (Content-Length, chunked, or a
//!   status/HEAD without body), else the direction resyncs.
//! * A header block that strict httparse rejects is split line by line by
//!   hand instead (httparse cannot hand back lines it rejects): every line
//!   is kept as sent, in wire order — an invalid name, whitespace before
//!   the colon, a line without a colon (empty name, the line as value), an
//!   obs-fold line (appended to the previous value with its line break), a
//!   NUL, bare CR or other control character in a value — and the record
//!   is flagged `malformed` with its `anomalies` (`record::anomaly`: the
//!   security rules look at them). A bad start line still yields nothing
//!   (far more often a false message start than a real message). Either
//!   way it counts in `parse_errors` and the direction resyncs after it. An
//!   invalid Content-Length, or a request body in an unknown transfer
//!   coding, also makes a record `malformed`.
//! * Wire text that is not UTF-8 (in a value, the target, anywhere) flags
//!   the record `non_utf8`, and every text of that record is escaped
//!   (`crate::text::escape_wire`: `\xHH` per invalid byte, `\x5c` per
//!   backslash), so the exact bytes can be recovered.
//! * Resync ("hunt"): bytes are discarded up to the next plausible message
//!   start — a first line httparse, or the salvager, accepts as a request
//!   or status line — looked for only at line starts and event (syscall)
//!   starts.
//! * A header block cut by missing bytes yields a record flagged `gap` with
//!   the lines before the gap, the unfinished last one included (flag
//!   `cut`; even a start line cut after its method and some target); the
//!   direction then resyncs, as the block's end and the body's framing are
//!   unknown.
//! * A header block still open at close yields a record flagged
//!   `incomplete` the same way; it counts in `incomplete` either way.
//! * Records depend on the bytes only, not on how syscalls split them: the
//!   process that wrote a message and the one that read it get the same
//!   method, target, headers, flags and `truncated`.
//! * A connection first seen at a position past 0 (evicted earlier, or its
//!   first events lost) is treated like a mid-stream one: records carry
//!   `midstream`, parsing starts at the first plausible message.
//! * The role of the process is decided by the first message seen on the
//!   connection (a request it wrote: client; a request it read: server, and
//!   conversely for responses). The kernel's role hint (connect/accept) is
//!   only compared against it (`role_conflicts`): for connections first
//!   seen mid-stream the kernel does not know, and otherwise it agrees.
//! * Requests with `Upgrade` or method CONNECT hold their direction's later
//!   bytes until the response: 101 (or 2xx to CONNECT) stops both
//!   directions, anything else lets the held bytes be parsed.
//!
//! Limits: pairing is FIFO in event order, so a response whose event
//! arrives before its request's (threads of one client racing on loopback)
//! is `unpaired` and shifts pairing on that connection.

#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

mod parse;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use hdrtap_abi::{CloseEvent, DataEvent, Direction, KernelRole};
use serde::Serialize;

use crate::record::{
    flag, CompactString, Endpoint, HttpKind, HttpRecord, Process, RequestRef, Role, SeqRange,
};
use crate::stream::{DirStream, Meta};
use crate::table::LruTable;
use parse::{framing, tail, Body, Machine, Next, Parsed, ReqInfo, Sink};

/// Limits and clock of an [`Http1Tracker`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerConfig {
    /// Header blocks up to this size (start line through blank line) are
    /// captured whole; longer ones yield a `truncated` record with the lines
    /// before the cut. Also bounds each direction's buffer (plus one event).
    /// Values below 256 are raised to 256.
    pub max_header_bytes: usize,
    /// Connections tracked at once; beyond, the least recently used is
    /// evicted (counted in `conns_evicted`). At least 1.
    pub max_conns: usize,
    /// Headers kept per message; beyond, the record is `truncated` (framing
    /// still sees every header).
    pub max_headers: usize,
    /// Requests awaiting a response per connection; beyond, the oldest is
    /// dropped (counted in `pending_overflow`).
    pub max_pending: usize,
    /// Added to an event's CLOCK_MONOTONIC `ts_ns` to get `ts_unix_ns`.
    pub clock_offset_ns: i64,
    /// Bytes all connections together may hold in pending buffers (header
    /// blocks, chunk-size lines and candidate start lines that continue in
    /// a later event). Each direction is bounded by `max_header_bytes`, but
    /// `max_conns` connections that each leave a block unfinished (a slow or
    /// hostile peer, one byte per write) would hold up to
    /// `max_conns x 2 x max_header_bytes` (2 GiB by default). Beyond this
    /// budget, the connection whose buffer grew drops what it holds, counted
    /// in `budget_drops`, and resyncs.
    pub max_buffered_bytes: usize,
    /// Ask the kernel not to copy a message body when at least this many of
    /// its bytes are still to come (see [`Http1Tracker::take_skips`]); 0:
    /// never ask.
    pub skip_bodies_from: u64,
}

/// Skip requests held for the caller at most: they only save copying, so
/// beyond this (a caller that never takes them) new ones are not kept.
pub(crate) const MAX_SKIP_REQUESTS: usize = 4096;

/// "The stream of connection `conn_id` in direction `dir` is message body
/// up to offset `until`": the kernel need not copy those bytes
/// (`hdrtap_bpf::HttpProbe::skip_body`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SkipRequest {
    pub conn_id: u64,
    pub dir: Direction,
    pub until: u64,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            max_header_bytes: 16 * 1024,
            max_conns: 65536,
            max_headers: 256,
            max_pending: 1024,
            clock_offset_ns: 0,
            max_buffered_bytes: 8 << 20,
            // One map update (a syscall, ~1-2 us) per long body, against
            // copying every byte of it through the ring buffer: worth it
            // from a few tens of KiB.
            skip_bodies_from: u64::from(hdrtap_abi::HDRTAP_SKIP_BODY_MIN),
        }
    }
}

/// Counters of an [`Http1Tracker`] (monotonic unless marked gauge).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TrackerStats {
    /// Request records emitted.
    pub requests: u64,
    /// Response records emitted (including 1xx).
    pub responses: u64,
    /// Records cut by `max_header_bytes` or `max_headers`.
    pub truncated: u64,
    /// Header blocks or body framing that were not valid HTTP/1.x
    /// (including blocks emitted with the `malformed` flag).
    pub parse_errors: u64,
    /// Jumps forward in stream position (events lost by the kernel).
    pub gaps: u64,
    /// Bytes covered by those jumps.
    pub gap_bytes: u64,
    /// Header blocks that had bytes missing (lost or uncaptured).
    pub header_gaps: u64,
    /// Times a direction discarded captured bytes to find a message start.
    pub resyncs: u64,
    /// Captured bytes discarded while resyncing.
    pub skipped_bytes: u64,
    /// Bytes of events that repeated already-seen stream positions.
    pub overlap_bytes: u64,
    /// Connections currently tracked (gauge).
    pub conns_open: u64,
    /// Connections evicted to stay within `max_conns`.
    pub conns_evicted: u64,
    /// Connections closed.
    pub conns_closed: u64,
    /// Responses with no outstanding request.
    pub unpaired_responses: u64,
    /// Requests still awaiting a response when their connection ended.
    pub unanswered_requests: u64,
    /// Requests dropped from a full pairing queue.
    pub pending_overflow: u64,
    /// Header blocks still open when their connection closed.
    pub incomplete: u64,
    /// Connections that stopped being HTTP/1 (101, CONNECT 2xx, HTTP/2).
    pub tunnels: u64,
    /// Connections whose first message contradicted the kernel's role hint.
    pub role_conflicts: u64,
    /// Unfinished header blocks dropped to keep all pending buffers within
    /// `max_buffered_bytes` (their bytes count in `skipped_bytes`).
    pub budget_drops: u64,
    /// Bytes held in pending buffers now, all connections (gauge).
    pub buffered_bytes: u64,
}

/// Tracks HTTP/1.x on every connection and emits one [`HttpRecord`] per
/// message (see the module documentation for the rules).
#[derive(Debug)]
pub struct Http1Tracker {
    cfg: TrackerConfig,
    stats: TrackerStats,
    table: LruTable<Conn>,
    /// Heap bytes of every connection's pending buffers (capacity).
    buffered: usize,
    /// Names of hooked TLS library files by the id TLS events carry.
    tls_names: HashMap<u16, Arc<str>>,
    /// Bodies the kernel need not copy, until the caller takes them.
    skips: Vec<SkipRequest>,
    /// Connections that switched to HTTP/2, until the caller takes them.
    switches: Vec<crate::http2::Adopt>,
}

impl Http1Tracker {
    /// A tracker with no connections.
    pub fn new(cfg: TrackerConfig) -> Self {
        Http1Tracker {
            table: LruTable::new(cfg.max_conns),
            buffered: 0,
            cfg,
            stats: TrackerStats::default(),
            tls_names: HashMap::new(),
            skips: Vec::new(),
            switches: Vec::new(),
        }
    }

    /// Connections that switched to HTTP/2 (an h2c upgrade answered 101),
    /// with the HTTP/2 bytes already received: for the HTTP/2 tracker. They
    /// are no longer tracked here.
    pub(crate) fn take_switches(&mut self) -> std::vec::Drain<'_, crate::http2::Adopt> {
        self.switches.drain(..)
    }

    /// Whether `conn_id` is tracked here.
    pub fn has(&self, conn_id: u64) -> bool {
        self.table.peek(conn_id).is_some()
    }

    /// Whether `conn_id` is tracked here but nothing on it was parsed yet
    /// (joined mid-stream, still looking for a message start): it may turn
    /// out to be another protocol.
    pub fn undecided(&self, conn_id: u64) -> bool {
        self.table
            .peek(conn_id)
            .is_some_and(|c| c.shared.role.is_none() && c.shared.midstream)
    }

    /// Stop tracking `conn_id` (another protocol's tracker takes it).
    pub fn forget(&mut self, conn_id: u64) {
        if let Some(conn) = self.table.remove(conn_id) {
            self.buffered = self.buffered.saturating_sub(conn.heap_bytes());
        }
        self.stats.conns_open = self.table.len() as u64;
        self.stats.buffered_bytes = self.buffered as u64;
    }

    /// The long message bodies seen since the last call, for the kernel to
    /// skip (see [`TrackerConfig::skip_bodies_from`]). Skipped bytes then
    /// arrive as events without payload, which the parser counts off the
    /// body like any uncaptured bytes.
    pub fn take_skips(&mut self) -> std::vec::Drain<'_, SkipRequest> {
        self.skips.drain(..)
    }

    /// Name the TLS library whose events carry `id` (`tls_lib`), as records
    /// show it in `tls_library`. Connections already tracked keep the name
    /// they started with.
    pub fn set_tls_library(&mut self, id: u16, name: &str) {
        self.tls_names.insert(id, Arc::from(name));
    }

    /// Feed one data event; records it completes are appended to `out`.
    pub fn on_data(&mut self, ev: &DataEvent<'_>, out: &mut Vec<Arc<HttpRecord>>) {
        let before = self.table.peek(ev.conn_id).map_or(0, Conn::heap_bytes);
        self.data(ev, out);
        self.stats.conns_open = self.table.len() as u64;
        let Some(conn) = self.table.peek_mut(ev.conn_id) else {
            self.buffered = self.buffered.saturating_sub(before);
            self.stats.buffered_bytes = self.buffered as u64;
            return;
        };
        let after = conn.heap_bytes();
        self.buffered = self.buffered.saturating_sub(before).saturating_add(after);
        if self.buffered > self.cfg.max_buffered_bytes && after > 0 {
            // Over budget: the connection that just grew gives up what it
            // holds (an unfinished block) and looks for the next message.
            let stats = &mut self.stats;
            for dir in &mut conn.dirs {
                if !dir.stream.pend.is_empty() {
                    stats.budget_drops += 1;
                    stats.resyncs += 1;
                    stats.skipped_bytes = stats
                        .skipped_bytes
                        .saturating_add(dir.stream.pend.len() as u64);
                    dir.m.lost_sync();
                }
                dir.stream.pend = Vec::new();
            }
            self.buffered = self.buffered.saturating_sub(after);
        }
        self.stats.buffered_bytes = self.buffered as u64;
    }

    fn data(&mut self, ev: &DataEvent<'_>, out: &mut Vec<Arc<HttpRecord>>) {
        let Http1Tracker {
            cfg,
            stats,
            table,
            tls_names,
            buffered,
            skips,
            switches,
        } = self;
        let (conn, evicted) = table.entry(ev.conn_id, || Conn::new(ev, cfg, tls_names));
        if let Some((_, old)) = evicted {
            *buffered = buffered.saturating_sub(old.heap_bytes());
            stats.conns_evicted += 1;
            stats.unanswered_requests += old.shared.pending.len() as u64;
        }
        let Some(conn) = conn else { return };
        if ev.has_flag(hdrtap_abi::HDRTAP_DF_MIDSTREAM) {
            conn.shared.midstream = true;
        }
        let d = ev.dir.index();
        let Some(dir) = conn.dirs.get_mut(d) else {
            return;
        };
        let adm = dir.stream.admit(ev.pos, ev.orig_len, ev.data);
        if adm.lost > 0 {
            stats.gaps += 1;
            stats.gap_bytes = stats.gap_bytes.saturating_add(adm.lost);
        }
        stats.overlap_bytes = stats.overlap_bytes.saturating_add(adm.overlap);
        if conn.shared.tunnel {
            return;
        }
        if let Some(e) = conn.shared.data_end.get_mut(d) {
            *e = dir.stream.next_pos().saturating_sub(adm.uncaptured);
        }
        let switched_before = switches.len();
        let mut env = Env {
            stats,
            out,
            cfg,
            switches,
        };
        let meta = Meta::of(ev);
        // Where the captured bytes end in the stream; the lost ones end
        // where they start.
        let data_end = conn.shared.data_end.get(d).copied().unwrap_or(0);
        if adm.lost > 0 {
            let lost_at = data_end
                .saturating_sub(adm.data.len() as u64)
                .saturating_sub(adm.lost);
            conn.gap(d, adm.lost, lost_at, &mut env);
        }
        if !adm.data.is_empty() {
            conn.feed(d, adm.data, meta, &mut env);
        }
        if adm.uncaptured > 0 {
            conn.gap(d, adm.uncaptured, data_end, &mut env);
        }
        if cfg.skip_bodies_from > 0 {
            if let Some(dir) = conn.dirs.get_mut(d) {
                let ahead = dir.m.body_ahead();
                // Where the parser stands: bytes it left unconsumed come
                // before the body's rest.
                let here = dir
                    .stream
                    .next_pos()
                    .saturating_sub(dir.stream.pend.len() as u64);
                let until = here.saturating_add(ahead);
                if ahead >= cfg.skip_bodies_from
                    && until > dir.skip_asked
                    && skips.len() < MAX_SKIP_REQUESTS
                {
                    dir.skip_asked = until;
                    skips.push(SkipRequest {
                        conn_id: ev.conn_id,
                        dir: ev.dir,
                        until,
                    });
                }
            }
        }
        if switches.len() > switched_before {
            // Handed to HTTP/2 (the HTTP/1 records are out).
            if let Some(old) = table.remove(ev.conn_id) {
                *buffered = buffered.saturating_sub(old.heap_bytes());
            }
            return;
        }
        for dir in &mut conn.dirs {
            dir.stream.compact();
        }
        // No request outstanding: give the queue's buffer back, so that an
        // idle keep-alive connection holds no more than its own state.
        if conn.shared.pending.is_empty() && conn.shared.pending.capacity() > 0 {
            conn.shared.pending = VecDeque::new();
        }
    }

    /// A connection closed: emit what its unfinished header blocks allow
    /// (flagged `incomplete`) and free its state.
    pub fn on_close(&mut self, ev: &CloseEvent, out: &mut Vec<Arc<HttpRecord>>) {
        if let Some(conn) = self.table.remove(ev.conn_id) {
            self.buffered = self.buffered.saturating_sub(conn.heap_bytes());
            self.end(conn, out);
        }
        self.stats.conns_open = self.table.len() as u64;
        self.stats.buffered_bytes = self.buffered as u64;
    }

    /// Close every connection (at shutdown), as [`Self::on_close`] would.
    pub fn close_all(&mut self, out: &mut Vec<Arc<HttpRecord>>) {
        while let Some((_, conn)) = self.table.pop_lru() {
            self.end(conn, out);
        }
        self.stats.conns_open = 0;
        self.buffered = 0;
        self.stats.buffered_bytes = 0;
    }

    fn end(&mut self, mut conn: Conn, out: &mut Vec<Arc<HttpRecord>>) {
        self.stats.conns_closed += 1;
        let mut env = Env {
            stats: &mut self.stats,
            out,
            cfg: &self.cfg,
            switches: &mut self.switches,
        };
        conn.finish(&mut env);
        self.stats.unanswered_requests += conn.shared.pending.len() as u64;
    }

    /// The configuration in use.
    pub fn config(&self) -> &TrackerConfig {
        &self.cfg
    }

    /// Counters.
    pub fn stats(&self) -> &TrackerStats {
        &self.stats
    }

    /// Connections tracked now.
    pub fn conns(&self) -> usize {
        self.table.len()
    }

    /// Bytes held in all pending buffers (diagnostics).
    pub fn buffered_bytes(&self) -> usize {
        self.table
            .values()
            .flat_map(|c| &c.dirs)
            .map(|d| d.stream.pend.len())
            .sum()
    }

    /// Heap bytes of all pending buffers, counted from scratch (tests
    /// check the running total, `TrackerStats::buffered_bytes`, against it).
    pub fn buffered_bytes_capacity(&self) -> usize {
        self.table.values().map(Conn::heap_bytes).sum()
    }

    /// The largest pending buffer of any direction (diagnostics; bounded
    /// by about `max_header_bytes` plus one event).
    pub fn largest_buffer(&self) -> usize {
        self.table
            .values()
            .flat_map(|c| &c.dirs)
            .map(|d| d.stream.pend.len())
            .max()
            .unwrap_or(0)
    }
}

/// What record building needs besides the connection.
struct Env<'a> {
    stats: &'a mut TrackerStats,
    out: &'a mut Vec<Arc<HttpRecord>>,
    cfg: &'a TrackerConfig,
    /// Connections handed to HTTP/2 (h2c upgrades).
    switches: &'a mut Vec<crate::http2::Adopt>,
}

/// A request awaiting its response.
#[derive(Debug)]
struct PendingReq {
    method: CompactString,
    target: CompactString,
    /// The request's Host header (for the response's `RequestRef`).
    host: Option<CompactString>,
    ts_ns: u64,
    head: bool,
    connect: bool,
    /// `Upgrade: h2c` (RFC 7540 §3.2): a 101 answer makes the connection
    /// HTTP/2, with this request as stream 1.
    h2c: bool,
    /// The direction waiting for this request's response to decide whether
    /// the connection becomes a tunnel.
    await_dir: Option<usize>,
}

/// Work for the connection after a direction yielded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resume {
    /// The connection is a tunnel now: stop both directions.
    Tunnel,
    /// This direction's Upgrade/CONNECT was refused: parse it on.
    Dir(usize),
}

/// What both directions of a connection share.
#[derive(Debug)]
struct Shared {
    conn_id: u64,
    local: Endpoint,
    remote: Endpoint,
    kernel_role: KernelRole,
    role: Option<Role>,
    midstream: bool,
    tunnel: bool,
    pending: VecDeque<PendingReq>,
    /// Per direction (bit `1 << d`): bytes went missing there since the
    /// last final response, and they may have held whole messages. Pairing
    /// is by order, so a lost message would shift every later pair; the
    /// next final response is paired by time instead (see `pair`).
    lost_msgs: u8,
    resume: Option<Resume>,
    /// Plaintext from a TLS library (`HDRTAP_DF_TLS`), and which one.
    tls: bool,
    tls_library: Option<Arc<str>>,
    /// A 101 to an h2c upgrade: the connection goes to HTTP/2 with this
    /// request as stream 1 (see `Http1Tracker::take_switches`).
    h2c: Option<crate::http2::UpgradeRequest>,
    /// Per direction: stream offset just past the bytes of the event being
    /// parsed (for the positions of a switch to HTTP/2).
    data_end: [u64; 2],
}

#[derive(Debug)]
struct Dir {
    stream: DirStream,
    m: Machine,
    /// The end of the last body the kernel was asked to skip.
    skip_asked: u64,
}

impl Dir {
    /// The machine leaves at most about `max_header_bytes` unconsumed; if a
    /// bug ever left more, drop it and resync rather than grow.
    fn enforce_bound(&mut self, env: &mut Env<'_>) {
        let bound = env
            .cfg
            .max_header_bytes
            .max(parse::MIN_HEADER_BYTES)
            .saturating_add(hdrtap_abi::HDRTAP_CHUNK_MAX as usize);
        if self.stream.pend.len() > bound {
            let stats = &mut *env.stats;
            stats.resyncs += 1;
            stats.skipped_bytes = stats
                .skipped_bytes
                .saturating_add(self.stream.pend.len() as u64);
            self.stream.pend.clear();
            self.m.lost_sync();
        }
    }
}

#[derive(Debug)]
struct Conn {
    shared: Shared,
    /// Indexed by [`Direction::index`].
    dirs: [Dir; 2],
}

/// Outcome of [`Conn::settle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settle {
    Nothing,
    Resumed,
    Stop,
}

fn direction(d: usize) -> Direction {
    if d == 0 {
        Direction::Egress
    } else {
        Direction::Ingress
    }
}

/// The process's role implied by a message of `kind` moving in `dir`.
pub(crate) fn role_of(kind: HttpKind, dir: Direction) -> Role {
    match (kind.from_client(), dir) {
        (true, Direction::Egress) | (false, Direction::Ingress) => Role::Client,
        (true, Direction::Ingress) | (false, Direction::Egress) => Role::Server,
    }
}

/// Make the front of `pending` the request a final response in direction
/// `resp_dir` answers, dropping the requests it leaves unanswered; false
/// when no outstanding request can be its request. Requests are answered
/// in order; that holds while no message went missing. After a gap:
/// * in the requests' direction, a request may be missing from `pending`:
///   a request sent after this response cannot be the one it answers, so
///   the response stays unpaired rather than taking it;
/// * in the responses' direction, responses may be missing: the requests
///   before the last one sent before this response are taken as answered by
///   them (counted unanswered), and the pair is flagged `pairing_guessed`.
///   Exact for one request at a time on a connection (keep-alive without
///   pipelining, the common case); a guess, and flagged, with pipelining.
fn align_pending(
    sh: &mut Shared,
    resp_dir: usize,
    ts_ns: u64,
    stats: &mut TrackerStats,
    flags: &mut Vec<&'static str>,
) -> bool {
    let lost = std::mem::take(&mut sh.lost_msgs);
    if lost != 0 {
        // Only requests sent before the response can be answered by it.
        let Some(last) = sh.pending.iter().rposition(|r| r.ts_ns <= ts_ns) else {
            return false;
        };
        if lost & (1 << resp_dir) != 0 {
            if last > 0 {
                stats.unanswered_requests += last as u64;
                sh.pending.drain(..last);
            }
            flags.push(flag::PAIRING_GUESSED);
        }
    }
    true
}

impl Conn {
    /// Heap bytes of the pending buffers.
    fn heap_bytes(&self) -> usize {
        self.dirs.iter().map(|d| d.stream.heap_bytes()).sum()
    }

    fn new(ev: &DataEvent<'_>, cfg: &TrackerConfig, tls_names: &HashMap<u16, Arc<str>>) -> Self {
        // First seen past its start (evicted earlier, or its first events
        // were lost): positions are taken from the first events and parsing
        // starts at the first plausible message, as for a mid-stream one.
        let late = ev.pos > 0;
        let midstream = late || ev.has_flag(hdrtap_abi::HDRTAP_DF_MIDSTREAM);
        let meta = Meta::of(ev);
        let tls = ev.has_flag(hdrtap_abi::HDRTAP_DF_TLS);
        let tls_library = tls.then(|| {
            tls_names
                .get(&ev.tls_lib)
                .cloned()
                .unwrap_or_else(|| Arc::from(format!("library #{}", ev.tls_lib)))
        });
        let dir = || Dir {
            stream: DirStream::new(meta, !late),
            m: Machine::new(midstream, cfg.max_header_bytes, cfg.max_headers),
            skip_asked: 0,
        };
        Conn {
            shared: Shared {
                conn_id: ev.conn_id,
                local: Endpoint {
                    ip: ev.tuple.local_ip,
                    port: ev.tuple.local_port,
                },
                remote: Endpoint {
                    ip: ev.tuple.remote_ip,
                    port: ev.tuple.remote_port,
                },
                kernel_role: ev.role,
                role: None,
                midstream,
                tunnel: false,
                pending: VecDeque::new(),
                lost_msgs: 0,
                resume: None,
                tls,
                tls_library,
                h2c: None,
                data_end: [0, 0],
            },
            dirs: [dir(), dir()],
        }
    }

    /// Captured bytes of direction `d`, carried by an event with `meta`.
    fn feed(&mut self, d: usize, data: &[u8], meta: Meta, env: &mut Env<'_>) {
        let Some(dir) = self.dirs.get_mut(d) else {
            return;
        };
        // The stream offset of data[0] (data ends where the captured bytes do).
        let data_pos = self
            .shared
            .data_end
            .get(d)
            .copied()
            .unwrap_or(0)
            .saturating_sub(data.len() as u64);
        if dir.stream.pend.is_empty() {
            // Fast path: parse straight from the event's bytes.
            let mut off = 0;
            loop {
                let Conn { shared, dirs } = &mut *self;
                let Some(dir) = dirs.get_mut(d) else { return };
                let mut cx = Cx {
                    shared,
                    env,
                    dir: d,
                    prev: meta,
                    cur: meta,
                    boundary: 0,
                    input_pos: data_pos + off as u64,
                };
                // The event starts at offset 0 (on a second pass, after a
                // resume, the input no longer starts at the event start).
                let start = if off == 0 { 0 } else { usize::MAX };
                off += dir.m.run(tail(data, off), start, &mut cx);
                match self.settle(d, env) {
                    Settle::Stop => {
                        let end = self.shared.data_end.get(d).copied().unwrap_or(0);
                        self.stopped(d, tail(data, off), end, meta, env);
                        return;
                    }
                    Settle::Resumed if off < data.len() => continue,
                    Settle::Resumed | Settle::Nothing => break,
                }
            }
            if let Some(dir) = self.dirs.get_mut(d) {
                let rest = tail(data, off);
                if !rest.is_empty() {
                    dir.stream.pend.extend_from_slice(rest);
                    dir.stream.pend_meta = meta;
                }
                dir.enforce_bound(env);
            }
            return;
        }
        // Something is pending: append (an event's worth at a time, so the
        // buffer stays bounded) and parse from the buffer.
        let mut piece_end = 0usize;
        for piece in data.chunks(hdrtap_abi::HDRTAP_CHUNK_MAX as usize) {
            piece_end += piece.len();
            let Some(dir) = self.dirs.get_mut(d) else {
                return;
            };
            let boundary = dir.stream.pend.len();
            dir.stream.pend.extend_from_slice(piece);
            let mut off = 0;
            loop {
                let Conn { shared, dirs } = &mut *self;
                let Some(Dir { stream, m, .. }) = dirs.get_mut(d) else {
                    return;
                };
                // Where this event's bytes start in the input: for metadata,
                // and as a candidate message start (none once past it).
                let (b_meta, b_start) = match boundary.checked_sub(off) {
                    Some(b) => (b, b),
                    None => (0, usize::MAX),
                };
                // The buffer ends with this piece of the event.
                let pend_pos =
                    (data_pos + piece_end as u64).saturating_sub(stream.pend.len() as u64);
                let mut cx = Cx {
                    shared,
                    env,
                    dir: d,
                    prev: stream.pend_meta,
                    cur: meta,
                    boundary: b_meta,
                    input_pos: pend_pos + off as u64,
                };
                off += m.run(tail(&stream.pend, off), b_start, &mut cx);
                match self.settle(d, env) {
                    Settle::Stop => {
                        // The buffer ends with this piece of the event.
                        let rest = self
                            .dirs
                            .get(d)
                            .map(|x| tail(&x.stream.pend, off).to_vec())
                            .unwrap_or_default();
                        let end = self
                            .shared
                            .data_end
                            .get(d)
                            .copied()
                            .unwrap_or(0)
                            .saturating_sub((data.len() - piece_end) as u64);
                        self.stopped(d, &rest, end, meta, env);
                        return;
                    }
                    Settle::Resumed
                        if off < self.dirs.get(d).map_or(0, |x| x.stream.pend.len()) =>
                    {
                        continue
                    }
                    Settle::Resumed | Settle::Nothing => break,
                }
            }
            let Some(dir) = self.dirs.get_mut(d) else {
                return;
            };
            let n = off.min(dir.stream.pend.len());
            dir.stream.pend.drain(..n);
            if off >= boundary {
                dir.stream.pend_meta = meta;
            }
            dir.enforce_bound(env);
        }
    }

    /// `len` bytes of direction `d` are missing after what was received,
    /// from stream offset `at`.
    fn gap(&mut self, d: usize, len: u64, at: u64, env: &mut Env<'_>) {
        let Conn { shared, dirs } = &mut *self;
        let Some(Dir { stream, m, .. }) = dirs.get_mut(d) else {
            return;
        };
        let meta = stream.pend_meta;
        let mut cx = Cx {
            shared,
            env,
            dir: d,
            prev: meta,
            cur: meta,
            boundary: usize::MAX,
            input_pos: at.saturating_sub(stream.pend.len() as u64),
        };
        if m.gap(&stream.pend, len, &mut cx) {
            shared.lost_msgs |= 1 << d;
        }
        stream.pend.clear();
        self.settle(d, env);
    }

    /// Carry out what a direction asked for when it yielded. `cur` is the
    /// direction being fed (its bytes are parsed on by the caller).
    fn settle(&mut self, cur: usize, env: &mut Env<'_>) -> Settle {
        let mut out = Settle::Nothing;
        // Each resume changes a direction's state; the bound only guards
        // against a connection whose directions keep resuming each other.
        for _ in 0..4 {
            match self.shared.resume.take() {
                None => return out,
                Some(Resume::Tunnel) => {
                    self.shared.tunnel = true;
                    for dir in &mut self.dirs {
                        dir.m.stop();
                        // An h2c switch takes the held bytes first
                        // (`stopped`).
                        if self.shared.h2c.is_none() {
                            dir.stream.pend.clear();
                        }
                    }
                    return Settle::Stop;
                }
                Some(Resume::Dir(od)) => {
                    out = Settle::Resumed;
                    if let Some(dir) = self.dirs.get_mut(od) {
                        dir.m.resume();
                    }
                    if od != cur {
                        self.drain(od, env);
                    }
                }
            }
        }
        self.shared.resume = None;
        out
    }

    /// Parsing stopped for good in direction `d` (a tunnel), with `rest`,
    /// the unparsed bytes of the event, ending at stream offset `end`. An
    /// h2c upgrade hands them, and the other direction's held bytes, to
    /// HTTP/2.
    fn stopped(&mut self, d: usize, rest: &[u8], end: u64, meta: Meta, env: &mut Env<'_>) {
        if let Some(upgrade) = self.shared.h2c.take() {
            let od = 1 - d.min(1);
            let mut start: [(u64, Vec<u8>); 2] = [(0, Vec::new()), (0, Vec::new())];
            let mut metas = [meta, meta];
            if let (Some(s), Some(m)) = (start.get_mut(d), metas.get_mut(d)) {
                *s = (end.saturating_sub(rest.len() as u64), rest.to_vec());
                *m = meta;
            }
            if let (Some(o), Some(s), Some(m)) =
                (self.dirs.get(od), start.get_mut(od), metas.get_mut(od))
            {
                let held = o.stream.pend.clone();
                let at = o.stream.next_pos().saturating_sub(held.len() as u64);
                *s = (at, held);
                *m = o.stream.pend_meta;
            }
            env.switches.push(crate::http2::Adopt {
                conn_id: self.shared.conn_id,
                local: self.shared.local,
                remote: self.shared.remote,
                kernel_role: self.shared.kernel_role,
                role: self.shared.role.unwrap_or(match self.shared.kernel_role {
                    KernelRole::Server => Role::Server,
                    _ => Role::Client,
                }),
                tls: self.shared.tls,
                tls_library: self.shared.tls_library.clone(),
                start,
                meta: metas,
                upgrade: Some(upgrade),
            });
        }
        for dir in &mut self.dirs {
            dir.stream.pend.clear();
        }
    }

    /// Parse the bytes direction `d` holds (after it was resumed).
    fn drain(&mut self, d: usize, env: &mut Env<'_>) {
        let Conn { shared, dirs } = &mut *self;
        let Some(Dir { stream, m, .. }) = dirs.get_mut(d) else {
            return;
        };
        let meta = stream.pend_meta;
        let len = stream.pend.len();
        // The held bytes end where this direction's captured bytes do.
        let end = shared.data_end.get(d).copied().unwrap_or(0);
        let mut cx = Cx {
            shared,
            env,
            dir: d,
            prev: meta,
            cur: meta,
            boundary: len,
            input_pos: end.saturating_sub(len as u64),
        };
        let n = m.run(&stream.pend, len, &mut cx);
        stream.pend.drain(..n.min(len));
    }

    /// The connection ended.
    fn finish(&mut self, env: &mut Env<'_>) {
        let Conn { shared, dirs } = self;
        for (d, Dir { stream, m, .. }) in dirs.iter_mut().enumerate() {
            let meta = stream.pend_meta;
            let end = shared.data_end.get(d).copied().unwrap_or(0);
            let mut cx = Cx {
                shared,
                env,
                dir: d,
                prev: meta,
                cur: meta,
                boundary: usize::MAX,
                input_pos: end.saturating_sub(stream.pend.len() as u64),
            };
            m.finish(&stream.pend, &mut cx);
            stream.pend.clear();
        }
    }
}

/// The [`Sink`] a machine talks to while parsing direction `dir`.
struct Cx<'c, 'e> {
    shared: &'c mut Shared,
    env: &'c mut Env<'e>,
    dir: usize,
    /// Metadata of input bytes before `boundary`, and from it on.
    prev: Meta,
    cur: Meta,
    boundary: usize,
    /// The stream offset of the input's first byte.
    input_pos: u64,
}

impl Sink for Cx<'_, '_> {
    fn meta_at(&self, at: usize) -> Meta {
        let m = if at < self.boundary {
            self.prev
        } else {
            self.cur
        };
        m.at(self.input_pos.saturating_add(at as u64))
    }

    fn head(&mut self, p: Parsed, meta: Meta) -> Next {
        let stats = &mut *self.env.stats;
        let sh = &mut *self.shared;
        let role = match sh.role {
            Some(r) => r,
            None => {
                let r = role_of(p.kind, direction(self.dir));
                let hint = match sh.kernel_role {
                    KernelRole::Client => Some(Role::Client),
                    KernelRole::Server => Some(Role::Server),
                    KernelRole::Unknown => None,
                };
                if hint.is_some_and(|h| h != r) {
                    stats.role_conflicts += 1;
                }
                sh.role = Some(r);
                r
            }
        };
        let mut flags = Vec::new();
        for (on, f) in [
            (sh.midstream, flag::MIDSTREAM),
            (p.gap, flag::GAP),
            (p.malformed, flag::MALFORMED),
            (p.non_utf8, flag::NON_UTF8),
            (p.incomplete, flag::INCOMPLETE),
            (p.cut, flag::CUT),
        ] {
            if on {
                flags.push(f);
            }
        }
        if p.truncated {
            stats.truncated += 1;
        }
        if p.malformed {
            stats.parse_errors += 1;
        }
        let mut request = None;
        let mut latency_ns = None;
        let next = match p.kind {
            HttpKind::Request => {
                stats.requests += 1;
                let next = framing(&p, None);
                let awaits = matches!(
                    next,
                    Next::AwaitTunnel
                        | Next::Body {
                            then_await: true,
                            ..
                        }
                );
                if sh.pending.len() >= self.env.cfg.max_pending.max(1) {
                    sh.pending.pop_front();
                    stats.pending_overflow += 1;
                }
                let h2c = p.upgrade
                    && p.headers.first("upgrade").is_some_and(|u| {
                        u.split(',').any(|t| t.trim().eq_ignore_ascii_case("h2c"))
                    });
                sh.pending.push_back(PendingReq {
                    method: p.method.clone().unwrap_or_default(),
                    target: p.target.clone().unwrap_or_default(),
                    host: p.headers.first("host").map(CompactString::from),
                    ts_ns: meta.ts_ns,
                    head: p.is_head,
                    connect: p.is_connect,
                    h2c,
                    await_dir: awaits.then_some(self.dir),
                });
                next
            }
            HttpKind::Response | HttpKind::Trailers | HttpKind::Reset => {
                stats.responses += 1;
                let status = p.status.unwrap_or(0);
                let interim = (100..200).contains(&status) && status != 101;
                // Before framing: a HEAD or CONNECT request decides how
                // the response's body is framed, so it must be the right one.
                let may_pair =
                    interim || align_pending(sh, self.dir, meta.ts_ns, stats, &mut flags);
                let info = sh.pending.front().filter(|_| may_pair).map(|r| ReqInfo {
                    head: r.head,
                    connect: r.connect,
                });
                let next = framing(&p, info);
                let mut await_dir = None;
                if interim {
                    // 1xx: the request stays outstanding for the final response.
                    if let Some(r) = sh.pending.front() {
                        request = Some(RequestRef {
                            method: r.method.clone(),
                            target: r.target.clone(),
                            host: r.host.clone(),
                        });
                        latency_ns = Some(meta.ts_ns.saturating_sub(r.ts_ns));
                    }
                } else if let Some(r) = may_pair.then(|| sh.pending.pop_front()).flatten() {
                    latency_ns = Some(meta.ts_ns.saturating_sub(r.ts_ns));
                    await_dir = r.await_dir;
                    let to_h2c = p
                        .headers
                        .first("upgrade")
                        .is_some_and(|u| u.trim().eq_ignore_ascii_case("h2c"));
                    if status == 101 && r.h2c && to_h2c {
                        sh.h2c = Some(crate::http2::UpgradeRequest {
                            method: r.method.clone(),
                            target: r.target.clone(),
                            host: r.host.clone(),
                            ts_ns: r.ts_ns,
                        });
                    }
                    request = Some(RequestRef {
                        method: r.method,
                        target: r.target,
                        host: r.host,
                    });
                }
                if request.is_none() {
                    flags.push(flag::UNPAIRED);
                    stats.unpaired_responses += 1;
                }
                if next == Next::Tunnel {
                    stats.tunnels += 1;
                    sh.resume = Some(Resume::Tunnel);
                } else if let Some(d) = await_dir {
                    sh.resume = Some(Resume::Dir(d));
                }
                next
            }
        };
        // Where the message lies in the TCP stream: from its first byte
        // through its body when the framing says how long that is (only
        // socket events carry sequence numbers, never TLS plaintext).
        let tcp_seq = meta.seq().map(|first| {
            let body = match next {
                Next::Idle | Next::AwaitTunnel | Next::Tunnel => Some(0),
                Next::Body {
                    body: Body::Length(n),
                    ..
                } => Some(n),
                _ => None,
            };
            let head = p.header_bytes as u64;
            SeqRange::new(
                first,
                head.saturating_add(body.unwrap_or(0)),
                body.is_some(),
            )
        });
        // Built in the Arc the sinks share, so that the record (several
        // hundred bytes) is not moved again on its way out (perf had put
        // 15% of hdrtap's CPU in memmove, much of it such moves).
        self.env.out.push(Arc::new(HttpRecord {
            kind: p.kind,
            id: 0,
            ts_unix_ns: meta
                .ts_ns
                .saturating_add_signed(self.env.cfg.clock_offset_ns),
            conn_id: sh.conn_id,
            sock_cookie: meta.sock_cookie,
            process: Process {
                pid: meta.tgid,
                tid: meta.tid,
                comm: crate::record::comm_text(&meta.comm),
                cgroup_id: meta.cgroup_id,
                workload: None,
            },
            local: sh.local,
            remote: sh.remote,
            role,
            version: p.version,
            method: p.method,
            target: p.target,
            status: p.status,
            reason: p.reason,
            latency_ns,
            request,
            headers: p.headers,
            header_bytes: p.header_bytes,
            truncated: p.truncated,
            tls: sh.tls,
            tls_library: sh.tls_library.clone(),
            flags,
            anomalies: p.anomalies,
            framing: p.framing,
            h2: None,
            tcp_seq,
            packets: None,
            interface: None,
        }));
        next
    }

    fn should_yield(&self) -> bool {
        self.shared.resume.is_some()
    }

    fn not_http1(&mut self) {
        self.env.stats.tunnels += 1;
        self.shared.resume = Some(Resume::Tunnel);
    }

    fn stats(&mut self) -> &mut TrackerStats {
        self.env.stats
    }
}

#[cfg(test)]
mod tests;
