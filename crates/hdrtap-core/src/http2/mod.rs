//! HTTP/2 over every TCP connection the protocol router hands it: data
//! events in, [`HttpRecord`]s out (version `HTTP/2`, with `h2` extras).
//!
//! Per connection and direction: the stream position (`crate::stream`), a
//! frame reader (preface, 9-byte header, payload) and an HPACK decoder
//! ([`hpack`]); per connection, the streams with their requests, so that
//! responses, trailers and resets pair by stream id.
//!
//! Flow of one direction's bytes: the client direction of a connection seen
//! from its start begins with the 24-byte preface; then frames. DATA
//! payload is counted, never kept or parsed (gaps inside it cost nothing).
//! HEADERS, PUSH_PROMISE and CONTINUATION payloads are kept until
//! END_HEADERS and the block is decoded: one record per block. SETTINGS
//! apply to the other direction (HEADER_TABLE_SIZE bounds its decoder's
//! table, MAX_FRAME_SIZE its frames). RST_STREAM marks the stream: the next
//! record of the stream from the other direction carries the flag `reset`
//! and the error code; if none comes within `reset_hold_ns` (by the
//! connection's event times, or [`Http2Tracker::flush_resets`] for a
//! connection that went quiet), or the connection ends, the reset becomes an
//! `http_reset` record of its own.
//!
//! Lost bytes: inside a DATA payload they are counted and the reader goes
//! on; inside a header block the block is reported (flag `gap`, no headers)
//! and the direction's HPACK table is no longer trusted; anywhere else the
//! frame boundary is lost, so the reader hunts: at the start of each later
//! event it looks for a run of plausible frames (`frame::plausible_run`).
//! Either way later blocks decode what they can (`hpack_partial`).
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

pub mod frame;
pub mod hpack;
mod huffman;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use hdrtap_abi::{CloseEvent, DataEvent, Direction, KernelRole};
use serde::Serialize;

use crate::headers::{mark, Headers};
use crate::http1::{SkipRequest, MAX_SKIP_REQUESTS};
use crate::record::{
    flag, CompactString, Endpoint, Framing, Grpc, H2Info, HttpKind, HttpRecord, Process,
    RequestRef, Role,
};
use crate::stream::{DirStream, Meta};
use crate::table::LruTable;
use frame::{flags, setting, ty, Header, DEFAULT_MAX_FRAME, LARGEST_MAX_FRAME, PREFACE};

/// Limits and clock of an [`Http2Tracker`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Http2Config {
    /// Decoded header bytes (name + value) kept per record; beyond, the
    /// record is `truncated` (the block is still decoded whole, to keep
    /// the HPACK table right).
    pub max_header_bytes: usize,
    /// Header lines kept per record; beyond, `truncated`.
    pub max_headers: usize,
    /// A header block (HEADERS + CONTINUATION, compressed) past this is not
    /// kept: its record carries `header_block_flood` and no headers, and
    /// the direction's table is no longer trusted.
    pub max_block_bytes: usize,
    /// Connections tracked at once (least recently used evicted).
    pub max_conns: usize,
    /// Streams tracked per connection (the lowest id evicted).
    pub max_streams: usize,
    /// Added to an event's CLOCK_MONOTONIC `ts_ns` to get `ts_unix_ns`.
    pub clock_offset_ns: i64,
    /// Rapid Reset: this many streams reset by the client within
    /// `rapid_reset_window_ns` flag the reset that completes the run.
    pub rapid_reset_count: u32,
    pub rapid_reset_window_ns: u64,
    /// A reset no record of its stream carried becomes a record of its own
    /// after this long (see [`Http2Tracker::flush_resets`]).
    pub reset_hold_ns: u64,
    /// Ask the kernel not to copy a DATA payload when at least this many
    /// of its bytes are still to come (frames that long need the receiver's
    /// SETTINGS_MAX_FRAME_SIZE above 64 KiB); 0: never ask.
    pub skip_data_from: u64,
}

impl Default for Http2Config {
    fn default() -> Self {
        Http2Config {
            max_header_bytes: 16 * 1024,
            max_headers: 256,
            max_block_bytes: 256 * 1024,
            max_conns: 65536,
            max_streams: 1024,
            clock_offset_ns: 0,
            rapid_reset_count: 100,
            rapid_reset_window_ns: 1_000_000_000,
            reset_hold_ns: 100_000_000,
            skip_data_from: 64 * 1024,
        }
    }
}

/// Counters of an [`Http2Tracker`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Http2Stats {
    /// Connections decoded as HTTP/2 (gauge: `conns_open`).
    pub conns: u64,
    pub conns_open: u64,
    pub conns_evicted: u64,
    /// Frames read, and DATA payload bytes counted past.
    pub frames: u64,
    pub data_bytes: u64,
    /// Records cut by `max_header_bytes`/`max_headers` or a flood.
    pub truncated: u64,
    /// Records by kind.
    pub requests: u64,
    pub responses: u64,
    pub trailers: u64,
    pub resets: u64,
    /// Header blocks whose HPACK decoding failed part-way.
    pub hpack_errors: u64,
    /// Fields decoded with an unknown name or value (joined mid-stream).
    pub undecoded_fields: u64,
    /// Header blocks past `max_block_bytes`.
    pub block_floods: u64,
    /// Frames that broke the protocol (a bad length or padding, a
    /// CONTINUATION with no block open): skipped.
    pub frame_errors: u64,
    /// Holes in a stream (lost events) and their bytes.
    pub gaps: u64,
    pub gap_bytes: u64,
    /// Times a direction lost its frame boundary, and bytes skipped
    /// looking for the next one.
    pub resyncs: u64,
    pub skipped_bytes: u64,
    /// Responses and trailers on a stream whose request hdrtap did not see.
    pub unpaired: u64,
    /// Streams dropped to stay within `max_streams`.
    pub streams_evicted: u64,
    /// GOAWAY frames.
    pub goaways: u64,
}

/// The request of an HTTP/1.1 connection that upgraded to h2c: its answer
/// comes as stream 1's response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UpgradeRequest {
    pub method: CompactString,
    pub target: CompactString,
    pub host: Option<CompactString>,
    /// CLOCK_MONOTONIC time of the request's first byte.
    pub ts_ns: u64,
}

/// A connection the protocol router hands over to HTTP/2 mid-way (an h2c
/// upgrade): where each direction's HTTP/2 bytes start, and those already
/// received.
#[derive(Debug, Clone)]
pub(crate) struct Adopt {
    pub conn_id: u64,
    pub local: Endpoint,
    pub remote: Endpoint,
    pub kernel_role: KernelRole,
    pub role: Role,
    pub tls: bool,
    pub tls_library: Option<Arc<str>>,
    /// Per direction (indexed by [`Direction::index`]): the stream offset of
    /// the first HTTP/2 byte, and the bytes from there already received.
    pub start: [(u64, Vec<u8>); 2],
    /// Process and time the held bytes came with.
    pub meta: [Meta; 2],
    pub upgrade: Option<UpgradeRequest>,
}

/// Tracks HTTP/2 on the connections it is given.
#[derive(Debug)]
pub struct Http2Tracker {
    cfg: Http2Config,
    stats: Http2Stats,
    table: LruTable<Conn>,
    tls_names: HashMap<u16, Arc<str>>,
    /// DATA payloads the kernel need not copy, for the caller to take.
    skips: Vec<SkipRequest>,
}

impl Http2Tracker {
    pub fn new(cfg: Http2Config) -> Self {
        Http2Tracker {
            table: LruTable::new(cfg.max_conns),
            cfg,
            stats: Http2Stats::default(),
            tls_names: HashMap::new(),
            skips: Vec::new(),
        }
    }

    /// Long DATA payloads just begun: the kernel need not copy the rest of
    /// them (as `Http1Tracker::take_skips` for bodies).
    pub fn take_skips(&mut self) -> std::vec::Drain<'_, SkipRequest> {
        self.skips.drain(..)
    }

    /// Name the TLS library whose events carry `id`.
    pub fn set_tls_library(&mut self, id: u16, name: &str) {
        self.tls_names.insert(id, Arc::from(name));
    }

    pub fn stats(&self) -> &Http2Stats {
        &self.stats
    }

    pub fn config(&self) -> &Http2Config {
        &self.cfg
    }

    /// Whether `conn_id` is tracked here.
    pub fn has(&self, conn_id: u64) -> bool {
        self.table.peek(conn_id).is_some()
    }

    /// Connections tracked now.
    pub fn conns(&self) -> usize {
        self.table.len()
    }

    /// Feed one data event of an HTTP/2 connection (the first one creates
    /// it: seen from its start when `ev.pos` is 0 and not mid-stream).
    pub fn on_data(&mut self, ev: &DataEvent<'_>, out: &mut Vec<Arc<HttpRecord>>) {
        let Http2Tracker {
            cfg,
            stats,
            table,
            tls_names,
            skips,
        } = self;
        let (conn, evicted) = table.entry(ev.conn_id, || {
            stats.conns += 1;
            Conn::new(ev, tls_names)
        });
        if evicted.is_some() {
            stats.conns_evicted += 1;
        }
        let Some(conn) = conn else { return };
        let mut env = Env {
            cfg,
            stats,
            out,
            skips,
        };
        conn.on_data(ev, &mut env);
        self.stats.conns_open = self.table.len() as u64;
    }

    /// Take over a connection that switched to HTTP/2 mid-way.
    pub(crate) fn adopt(&mut self, a: Adopt, out: &mut Vec<Arc<HttpRecord>>) {
        let Http2Tracker {
            cfg,
            stats,
            table,
            skips,
            ..
        } = self;
        stats.conns += 1;
        let (conn, evicted) = table.entry(a.conn_id, || Conn::adopted(&a));
        if evicted.is_some() {
            stats.conns_evicted += 1;
        }
        let Some(conn) = conn else { return };
        let mut env = Env {
            cfg,
            stats,
            out,
            skips,
        };
        for (d, ((pos, bytes), meta)) in a.start.iter().zip(a.meta).enumerate() {
            if !bytes.is_empty() {
                conn.feed_at(d, *pos, bytes, meta, &mut env);
            }
        }
        self.stats.conns_open = self.table.len() as u64;
    }

    /// A connection closed: what is still pending becomes records.
    pub fn on_close(&mut self, ev: &CloseEvent, out: &mut Vec<Arc<HttpRecord>>) {
        if let Some(mut conn) = self.table.remove(ev.conn_id) {
            let mut env = Env {
                cfg: &self.cfg,
                stats: &mut self.stats,
                out,
                skips: &mut self.skips,
            };
            conn.finish(&mut env);
        }
        self.stats.conns_open = self.table.len() as u64;
    }

    /// End every connection (at shutdown).
    pub fn close_all(&mut self, out: &mut Vec<Arc<HttpRecord>>) {
        while let Some((_, mut conn)) = self.table.pop_lru() {
            let mut env = Env {
                cfg: &self.cfg,
                stats: &mut self.stats,
                out,
                skips: &mut self.skips,
            };
            conn.finish(&mut env);
        }
        self.stats.conns_open = 0;
    }

    /// Resets held for a record of their stream longer than
    /// `reset_hold_ns` before `now_ns` (CLOCK_MONOTONIC) become records of
    /// their own (a connection that went quiet after a reset).
    pub fn flush_resets(&mut self, now_ns: u64, out: &mut Vec<Arc<HttpRecord>>) {
        let hold = self.cfg.reset_hold_ns;
        let Http2Tracker {
            cfg,
            stats,
            table,
            skips,
            ..
        } = self;
        for conn in table.values_mut() {
            if conn.held_resets.is_empty() {
                continue;
            }
            let mut env = Env {
                cfg,
                stats,
                out: &mut *out,
                skips: &mut *skips,
            };
            conn.flush_resets(|r| r.meta.ts_ns.saturating_add(hold) <= now_ns, &mut env);
        }
    }
}

/// What record building needs besides the connection.
struct Env<'a> {
    cfg: &'a Http2Config,
    stats: &'a mut Http2Stats,
    out: &'a mut Vec<Arc<HttpRecord>>,
    skips: &'a mut Vec<SkipRequest>,
}

/// Where a direction's reader is.
#[derive(Debug)]
enum Read {
    /// Matching the client preface (`n` bytes matched so far).
    Preface(usize),
    /// Collecting a frame header.
    Head { buf: [u8; 9], have: usize },
    /// In a frame's payload: `left` bytes to go; kept in `Dir::payload`
    /// unless DATA (or too long to keep). `damaged`: bytes of it were lost
    /// (already reported): read past it.
    Payload {
        h: Header,
        left: usize,
        keep: bool,
        damaged: bool,
    },
    /// Lost the frame boundary: waiting for an event that starts with
    /// plausible frames.
    Hunt,
}

/// A header block being assembled from HEADERS/PUSH_PROMISE + CONTINUATION.
#[derive(Debug)]
struct Block {
    stream: u32,
    /// HEADERS with END_STREAM.
    end_stream: bool,
    /// PUSH_PROMISE: the promised stream.
    promised: Option<u32>,
    bytes: Vec<u8>,
    /// Compressed size, kept or not.
    size: usize,
    meta: Meta,
    /// Past `max_block_bytes`: no longer kept.
    flood: bool,
    /// Bytes of it were lost (not copied, or a hole in the stream): no
    /// longer kept, its size still counted up to END_HEADERS.
    lost: bool,
}

#[derive(Debug)]
struct Dir {
    stream: DirStream,
    read: Read,
    payload: Vec<u8>,
    hpack: hpack::Decoder,
    block: Option<Block>,
    /// SETTINGS_MAX_FRAME_SIZE of the receiver (frames in this direction).
    max_frame: u32,
    /// The receiver's SETTINGS were seen (`max_frame` is known).
    max_frame_known: bool,
    /// Stream offset of the first byte `feed` is given.
    feed_pos: u64,
    /// The kernel was asked to skip up to here.
    skip_asked: u64,
}

impl Dir {
    fn new(meta: Meta, from_start: bool, preface: bool) -> Self {
        Dir {
            stream: DirStream::new(meta, from_start),
            read: if preface {
                Read::Preface(0)
            } else if from_start {
                Read::Head {
                    buf: [0; 9],
                    have: 0,
                }
            } else {
                Read::Hunt
            },
            payload: Vec::new(),
            hpack: hpack::Decoder::new(from_start),
            block: None,
            max_frame: DEFAULT_MAX_FRAME,
            max_frame_known: from_start,
            feed_pos: 0,
            skip_asked: 0,
        }
    }

    /// The largest frame plausible in this direction.
    fn frame_bound(&self) -> u32 {
        if self.max_frame_known {
            self.max_frame
        } else {
            LARGEST_MAX_FRAME
        }
    }
}

/// A request awaiting its response, and what its stream saw.
#[derive(Debug, Default)]
struct Stream {
    req: Option<RequestRef>,
    req_ts: u64,
    /// A final (non-1xx) response was recorded.
    responded: bool,
    /// Header blocks seen per direction.
    blocks: [u8; 2],
    grpc: bool,
}

/// A reset waiting for a record of its stream to carry it.
#[derive(Debug)]
struct HeldReset {
    stream: u32,
    code: u32,
    /// The direction the RST_STREAM came in.
    dir: usize,
    meta: Meta,
    rapid: u32,
}

#[derive(Debug)]
struct Conn {
    conn_id: u64,
    local: Endpoint,
    remote: Endpoint,
    kernel_role: KernelRole,
    /// The direction requests travel in, once known.
    client_dir: Option<usize>,
    midstream: bool,
    tls: bool,
    tls_library: Option<Arc<str>>,
    dirs: [Dir; 2],
    /// By id: the oldest (lowest) is evicted first.
    streams: BTreeMap<u32, Stream>,
    /// Times of the client's recent resets (Rapid Reset).
    client_resets: VecDeque<u64>,
    held_resets: Vec<HeldReset>,
}

impl Conn {
    fn new(ev: &DataEvent<'_>, tls_names: &HashMap<u16, Arc<str>>) -> Self {
        let midstream = ev.pos > 0 || ev.has_flag(hdrtap_abi::HDRTAP_DF_MIDSTREAM);
        let meta = Meta::of(ev);
        let tls = ev.has_flag(hdrtap_abi::HDRTAP_DF_TLS);
        let tls_library = tls.then(|| {
            tls_names
                .get(&ev.tls_lib)
                .cloned()
                .unwrap_or_else(|| Arc::from(format!("library #{}", ev.tls_lib)))
        });
        // Seen from the start: the direction whose first bytes are the
        // preface is the client's; the other starts with SETTINGS (and its
        // reader leaves the preface state at its first byte).
        let dir = |_d: usize| Dir::new(meta, !midstream, !midstream);
        Conn {
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
            client_dir: None,
            midstream,
            tls,
            tls_library,
            dirs: [dir(0), dir(1)],
            streams: BTreeMap::new(),
            client_resets: VecDeque::new(),
            held_resets: Vec::new(),
        }
    }

    fn adopted(a: &Adopt) -> Self {
        let client_dir = match a.role {
            Role::Client => Direction::Egress.index(),
            Role::Server => Direction::Ingress.index(),
        };
        let [m0, m1] = a.meta;
        let mut dirs = [(0, m0), (1, m1)].map(|(d, meta)| Dir::new(meta, true, d == client_dir));
        for (dir, (pos, _)) in dirs.iter_mut().zip(&a.start) {
            // Positions before the switch belong to HTTP/1.
            dir.stream.admit(0, *pos, &[]);
        }
        let mut streams = BTreeMap::new();
        if let Some(u) = &a.upgrade {
            // RFC 9113 §3.2 (h2c upgrade): the upgrading request is stream 1,
            // its response comes as HTTP/2. Its record was the HTTP/1 one.
            streams.insert(
                1,
                Stream {
                    req: Some(RequestRef {
                        method: u.method.clone(),
                        target: u.target.clone(),
                        host: u.host.clone(),
                    }),
                    req_ts: u.ts_ns,
                    // The request's block was the HTTP/1 one.
                    blocks: if client_dir == 0 { [1, 0] } else { [0, 1] },
                    ..Stream::default()
                },
            );
        }
        Conn {
            conn_id: a.conn_id,
            local: a.local,
            remote: a.remote,
            kernel_role: a.kernel_role,
            client_dir: Some(client_dir),
            midstream: false,
            tls: a.tls,
            tls_library: a.tls_library.clone(),
            dirs,
            streams,
            client_resets: VecDeque::new(),
            held_resets: Vec::new(),
        }
    }

    /// The client's direction as the kernel's connect/accept hint says.
    fn kernel_client_dir(&self) -> Option<usize> {
        match self.kernel_role {
            KernelRole::Client => Some(Direction::Egress.index()),
            KernelRole::Server => Some(Direction::Ingress.index()),
            KernelRole::Unknown => None,
        }
    }

    fn role(&self) -> Role {
        match self.client_dir.or_else(|| self.kernel_client_dir()) {
            Some(0) => Role::Client,
            _ => Role::Server,
        }
    }

    fn on_data(&mut self, ev: &DataEvent<'_>, env: &mut Env<'_>) {
        let d = ev.dir.index();
        let meta = Meta::of(ev);
        if ev.has_flag(hdrtap_abi::HDRTAP_DF_MIDSTREAM) {
            self.midstream = true;
        }
        let Some(dir) = self.dirs.get_mut(d) else {
            return;
        };
        let adm = dir.stream.admit(ev.pos, ev.orig_len, ev.data);
        if adm.lost > 0 {
            env.stats.gaps += 1;
            env.stats.gap_bytes = env.stats.gap_bytes.saturating_add(adm.lost);
            self.gap(d, adm.lost, meta, env);
        }
        let start = adm.overlap == 0;
        if !adm.data.is_empty() {
            if let Some(dir) = self.dirs.get_mut(d) {
                dir.feed_pos = dir
                    .stream
                    .next_pos()
                    .saturating_sub(adm.uncaptured)
                    .saturating_sub(adm.data.len() as u64);
            }
            self.feed(d, adm.data, start, meta, env);
        }
        if adm.uncaptured > 0 {
            // Not copied by the kernel (per-call cap, or a DATA payload it
            // was asked to skip): a gap to the reader, not a loss.
            self.gap(d, adm.uncaptured, meta, env);
        }
        // Resets no record of their stream carried within reset_hold_ns
        // become records of their own (Http2Tracker::flush_resets does the
        // same for connections that went quiet).
        let hold = env.cfg.reset_hold_ns;
        let now = meta.ts_ns;
        self.flush_resets(|r| r.meta.ts_ns.saturating_add(hold) <= now, env);
    }

    /// Bytes received before the connection was handed over (h2c).
    fn feed_at(&mut self, d: usize, pos: u64, data: &[u8], meta: Meta, env: &mut Env<'_>) {
        let Some(dir) = self.dirs.get_mut(d) else {
            return;
        };
        let adm = dir.stream.admit(pos, data.len() as u64, data);
        if !adm.data.is_empty() {
            dir.feed_pos = dir.stream.next_pos().saturating_sub(adm.data.len() as u64);
            self.feed(d, adm.data, true, meta, env);
        }
    }

    /// `data` is the next bytes of direction `d`; `event_start`: they begin
    /// an event (a candidate frame boundary for a reader that hunts).
    fn feed(&mut self, d: usize, data: &[u8], event_start: bool, meta: Meta, env: &mut Env<'_>) {
        let mut off = 0usize;
        while off < data.len() {
            let rest = data.get(off..).unwrap_or_default();
            let Some(dir) = self.dirs.get_mut(d) else {
                return;
            };
            match &mut dir.read {
                Read::Preface(n) => {
                    let matched = *n;
                    let want = PREFACE.get(matched..).unwrap_or_default();
                    let k = want.len().min(rest.len());
                    if rest.get(..k) != want.get(..k) {
                        // Not a client preface after all: this is the
                        // server's direction (SETTINGS first).
                        dir.read = Read::Head {
                            buf: [0; 9],
                            have: 0,
                        };
                        if matched > 0 {
                            env.stats.frame_errors += 1;
                        }
                        continue;
                    }
                    off += k;
                    if matched + k == PREFACE.len() {
                        dir.read = Read::Head {
                            buf: [0; 9],
                            have: 0,
                        };
                        self.client_dir.get_or_insert(d);
                    } else {
                        dir.read = Read::Preface(matched + k);
                    }
                }
                Read::Head { buf, have } => {
                    let k = (9 - *have).min(rest.len());
                    if let (Some(dst), Some(src)) = (buf.get_mut(*have..*have + k), rest.get(..k)) {
                        dst.copy_from_slice(src);
                    }
                    *have += k;
                    off += k;
                    if *have < 9 {
                        continue;
                    }
                    let raw = *buf;
                    let Some(h) = Header::parse(&raw) else {
                        continue;
                    };
                    if h.len > dir.frame_bound() {
                        // Longer than the receiver allows: not a frame.
                        env.stats.frame_errors += 1;
                        self.lose_place(d, env);
                        continue;
                    }
                    env.stats.frames += 1;
                    let max_block = env.cfg.max_block_bytes;
                    let keep = match h.ty {
                        ty::DATA => false,
                        // A header block is kept up to max_block_bytes;
                        // past that only its size is counted (a flood).
                        ty::HEADERS | ty::PUSH_PROMISE => h.len as usize <= max_block,
                        ty::CONTINUATION => dir.block.as_ref().is_none_or(|b| {
                            !b.flood
                                && !b.lost
                                && b.size.saturating_add(h.len as usize) <= max_block
                        }),
                        // Control frames are short; a long one is skipped.
                        _ => h.len <= 64 * 1024,
                    };
                    dir.payload.clear();
                    dir.read = Read::Payload {
                        h,
                        left: h.len as usize,
                        keep,
                        damaged: false,
                    };
                    if h.ty == ty::DATA {
                        // A long payload: the kernel need not copy it.
                        let left = u64::from(h.len);
                        let until = dir.feed_pos.saturating_add((off + left as usize) as u64);
                        let from = env.cfg.skip_data_from;
                        if from > 0
                            && left >= from
                            && until > dir.skip_asked
                            && env.skips.len() < MAX_SKIP_REQUESTS
                        {
                            dir.skip_asked = until;
                            env.skips.push(SkipRequest {
                                conn_id: self.conn_id,
                                dir: direction(d),
                                until,
                            });
                        }
                    }
                    if h.len == 0 {
                        self.frame_done(d, meta, env);
                    }
                }
                Read::Payload { h, left, keep, .. } => {
                    let k = (*left).min(rest.len());
                    if *keep {
                        dir.payload
                            .extend_from_slice(rest.get(..k).unwrap_or_default());
                    } else if h.ty == ty::DATA {
                        env.stats.data_bytes = env.stats.data_bytes.saturating_add(k as u64);
                    }
                    *left -= k;
                    off += k;
                    if *left == 0 {
                        self.frame_done(d, meta, env);
                    }
                }
                Read::Hunt => {
                    let bound = dir.frame_bound();
                    if off == 0 && event_start && frame::plausible_run(rest, bound) {
                        dir.read = Read::Head {
                            buf: [0; 9],
                            have: 0,
                        };
                        continue;
                    }
                    env.stats.skipped_bytes =
                        env.stats.skipped_bytes.saturating_add(rest.len() as u64);
                    return;
                }
            }
        }
    }

    /// `len` bytes of direction `d` are missing.
    fn gap(&mut self, d: usize, len: u64, meta: Meta, env: &mut Env<'_>) {
        enum Then {
            Nothing,
            FrameDone,
            LosePlace,
        }
        let then = {
            let Some(dir) = self.dirs.get_mut(d) else {
                return;
            };
            match &mut dir.read {
                Read::Payload {
                    h,
                    left,
                    keep,
                    damaged,
                } if len <= *left as u64 => {
                    *left -= len as usize;
                    let done = *left == 0;
                    if h.ty == ty::DATA || !*keep {
                        // Bytes hdrtap does not read (body, or a block
                        // past its limit): nothing was lost.
                        if done {
                            Then::FrameDone
                        } else {
                            Then::Nothing
                        }
                    } else {
                        // A kept payload with a hole: unusable (the rest
                        // of the frame is read past, not kept; a header
                        // block's record will say `gap`).
                        *keep = false;
                        *damaged = true;
                        dir.payload.clear();
                        if done {
                            Then::FrameDone
                        } else {
                            Then::Nothing
                        }
                    }
                }
                _ => Then::LosePlace,
            }
        };
        match then {
            Then::Nothing => {}
            Then::FrameDone => self.frame_done(d, meta, env),
            Then::LosePlace => self.lose_place(d, env),
        }
    }

    /// The frame boundary of direction `d` is lost.
    fn lose_place(&mut self, d: usize, env: &mut Env<'_>) {
        let Some(dir) = self.dirs.get_mut(d) else {
            return;
        };
        if !matches!(dir.read, Read::Hunt) {
            env.stats.resyncs += 1;
        }
        dir.read = Read::Hunt;
        dir.payload.clear();
        // Header blocks may have been among the lost bytes.
        dir.hpack.lost_sync();
        if let Some(b) = dir.block.take() {
            let h = Header {
                len: 0,
                ty: ty::HEADERS,
                flags: 0,
                stream: b.stream,
            };
            self.block_lost(d, h, b.meta, env);
        }
    }

    /// A header block of stream `h.stream` lost bytes: report it (if its
    /// kind is known) with the `gap` flag and no headers.
    fn block_lost(&mut self, d: usize, h: Header, meta: Meta, env: &mut Env<'_>) {
        if let Some(dir) = self.dirs.get_mut(d) {
            if dir.block.as_ref().is_some_and(|b| b.stream == h.stream) {
                dir.block = None;
            }
        }
        let Some(client) = self.client_dir else {
            return;
        };
        let kind = if d == client {
            HttpKind::Request
        } else {
            HttpKind::Response
        };
        let mut rec = self.record(kind, h.stream, meta, env);
        rec.flags.push(flag::GAP);
        self.finish_record(d, rec, env);
    }

    /// A whole frame of direction `d` is in (its payload in `payload` if
    /// kept).
    fn frame_done(&mut self, d: usize, meta: Meta, env: &mut Env<'_>) {
        let Some(dir) = self.dirs.get_mut(d) else {
            return;
        };
        let Read::Payload {
            h, keep, damaged, ..
        } = dir.read
        else {
            return;
        };
        dir.read = Read::Head {
            buf: [0; 9],
            have: 0,
        };
        let payload = std::mem::take(&mut dir.payload);
        let block_frame = matches!(h.ty, ty::HEADERS | ty::PUSH_PROMISE | ty::CONTINUATION);
        if damaged {
            if block_frame {
                self.unread_block_frame(d, h, true, meta, env);
            }
        } else if keep || h.len == 0 || h.ty == ty::DATA {
            // DATA's payload is never kept, but its END_STREAM matters.
            self.frame(d, h, &payload, meta, env);
        } else if block_frame {
            self.unread_block_frame(d, h, false, meta, env);
        }
        if let Some(dir) = self.dirs.get_mut(d) {
            // Give the buffer back (kept short: control frames are small).
            if payload.capacity() <= 64 * 1024 {
                dir.payload = payload;
                dir.payload.clear();
            }
        }
    }

    /// A header-block frame whose payload is not read: the block is past
    /// max_block_bytes, or (`lost`) bytes of the frame went missing. Only
    /// its size counts; the record says which. The block's insertions are
    /// not seen, so the direction's table is no longer trusted.
    fn unread_block_frame(
        &mut self,
        d: usize,
        h: Header,
        lost: bool,
        meta: Meta,
        env: &mut Env<'_>,
    ) {
        let max = env.cfg.max_block_bytes;
        let Some(dir) = self.dirs.get_mut(d) else {
            return;
        };
        dir.hpack.lost_sync();
        match (&mut dir.block, h.ty) {
            (Some(b), ty::CONTINUATION) if b.stream == h.stream => {
                b.size = b.size.saturating_add(h.len as usize);
                b.lost |= lost;
                b.flood |= b.size > max;
                b.bytes = Vec::new();
            }
            (_, ty::HEADERS | ty::PUSH_PROMISE) => {
                if dir.block.is_some() {
                    env.stats.frame_errors += 1;
                }
                dir.block = Some(Block {
                    stream: h.stream,
                    end_stream: h.ty == ty::HEADERS && h.flags & flags::END_STREAM != 0,
                    // The promised stream id was in the payload not read.
                    promised: None,
                    bytes: Vec::new(),
                    size: h.len as usize,
                    meta,
                    flood: h.len as usize > max,
                    lost,
                });
            }
            _ => {
                env.stats.frame_errors += 1;
                return;
            }
        }
        if h.flags & flags::END_HEADERS != 0 {
            self.block_end(d, env);
        }
    }

    fn frame(&mut self, d: usize, h: Header, p: &[u8], meta: Meta, env: &mut Env<'_>) {
        match h.ty {
            ty::DATA if h.flags & flags::END_STREAM != 0 => self.end_stream(d, h.stream),
            ty::HEADERS => {
                let Some(frag) = fragment(&h, p) else {
                    env.stats.frame_errors += 1;
                    return;
                };
                self.block_start(d, h, None, frag, meta, env);
            }
            ty::PUSH_PROMISE => {
                let Some(frag) = fragment(&h, p) else {
                    env.stats.frame_errors += 1;
                    return;
                };
                let (Some(id), Some(frag)) = (frag.get(..4), frag.get(4..)) else {
                    env.stats.frame_errors += 1;
                    return;
                };
                let Some(promised) = be32(id) else {
                    return;
                };
                let promised = promised & 0x7fff_ffff;
                self.block_start(d, h, Some(promised), frag, meta, env);
            }
            ty::CONTINUATION => {
                let Some(dir) = self.dirs.get_mut(d) else {
                    return;
                };
                match &mut dir.block {
                    Some(b) if b.stream == h.stream => {
                        b.size += p.len();
                        if !b.flood {
                            if b.size > env.cfg.max_block_bytes {
                                b.flood = true;
                                b.bytes = Vec::new();
                            } else {
                                b.bytes.extend_from_slice(p);
                            }
                        }
                    }
                    _ => {
                        env.stats.frame_errors += 1;
                        return;
                    }
                }
                if h.flags & flags::END_HEADERS != 0 {
                    self.block_end(d, env);
                }
            }
            ty::SETTINGS => {
                if h.flags & flags::ACK != 0 {
                    return;
                }
                let other = 1 - d.min(1);
                for e in p.chunks_exact(6) {
                    let (Some(id), Some(v)) = (e.get(..2), e.get(2..6)) else {
                        continue;
                    };
                    let (Some(id), Some(v)) = (be16(id), be32(v)) else {
                        continue;
                    };
                    let Some(o) = self.dirs.get_mut(other) else {
                        continue;
                    };
                    match id {
                        setting::HEADER_TABLE_SIZE => o.hpack.set_max_allowed(v as usize),
                        setting::MAX_FRAME_SIZE => {
                            o.max_frame = v.clamp(DEFAULT_MAX_FRAME, LARGEST_MAX_FRAME);
                        }
                        _ => {}
                    }
                }
                // SETTINGS seen: the other direction's frame size is known.
                if let Some(o) = self.dirs.get_mut(other) {
                    o.max_frame_known = true;
                }
            }
            ty::RST_STREAM => {
                let Some(code) = p.get(..4).and_then(be32) else {
                    env.stats.frame_errors += 1;
                    return;
                };
                self.reset(d, h.stream, code, meta, env);
            }
            ty::GOAWAY => env.stats.goaways += 1,
            _ => {}
        }
    }

    fn block_start(
        &mut self,
        d: usize,
        h: Header,
        promised: Option<u32>,
        frag: &[u8],
        meta: Meta,
        env: &mut Env<'_>,
    ) {
        let Some(dir) = self.dirs.get_mut(d) else {
            return;
        };
        if dir.block.is_some() {
            // A block left open (no END_HEADERS) and a new one begins: the
            // sender broke the protocol; the old one cannot be decoded.
            env.stats.frame_errors += 1;
            dir.hpack.lost_sync();
            dir.block = None;
        }
        let flood = frag.len() > env.cfg.max_block_bytes;
        // A block in one frame (the usual case) is decoded in place.
        let whole = h.flags & flags::END_HEADERS != 0;
        dir.block = Some(Block {
            stream: h.stream,
            end_stream: h.ty == ty::HEADERS && h.flags & flags::END_STREAM != 0,
            promised,
            bytes: if flood || whole {
                Vec::new()
            } else {
                frag.to_vec()
            },
            size: frag.len(),
            meta,
            flood,
            lost: false,
        });
        if whole {
            self.block_end_from(d, Some(frag), env);
        }
    }

    /// A header block is complete: decode it into a record.
    fn block_end(&mut self, d: usize, env: &mut Env<'_>) {
        self.block_end_from(d, None, env);
    }

    /// [`Self::block_end`], with the block's bytes in `whole` if it came in
    /// one frame (else in the open block).
    fn block_end_from(&mut self, d: usize, whole: Option<&[u8]>, env: &mut Env<'_>) {
        let Some(dir) = self.dirs.get_mut(d) else {
            return;
        };
        let Some(block) = dir.block.take() else {
            return;
        };
        let bytes = whole.unwrap_or(&block.bytes);
        let mut fields = Fields::new(env.cfg, bytes.len());
        let info = if block.flood || block.lost {
            if block.flood {
                env.stats.block_floods += 1;
            }
            dir.hpack.lost_sync();
            hpack::BlockInfo::default()
        } else {
            dir.hpack.decode(bytes, &mut |f| fields.push(f))
        };
        if info.error.is_some() {
            env.stats.hpack_errors += 1;
        }
        env.stats.undecoded_fields = env
            .stats
            .undecoded_fields
            .saturating_add(info.undecoded as u64);
        // Which side sent it: the pseudo-headers say, else what is known.
        if self.client_dir.is_none() {
            if fields.method.is_some() || fields.path.is_some() {
                self.client_dir = Some(d);
            } else if fields.status.is_some() {
                self.client_dir = Some(1 - d.min(1));
            } else {
                self.client_dir = self.kernel_client_dir();
            }
        }
        let from_client = self.client_dir == Some(d);
        let stream_id = block.promised.unwrap_or(block.stream);
        let seen = self
            .streams
            .get(&stream_id)
            .and_then(|s| s.blocks.get(d).copied())
            .unwrap_or(0);
        let responded = self.streams.get(&stream_id).is_some_and(|s| s.responded);
        let kind = if block.promised.is_some() || (from_client && seen == 0) {
            HttpKind::Request
        } else if from_client || (responded && fields.status.is_none()) {
            HttpKind::Trailers
        } else {
            HttpKind::Response
        };
        let mut rec = self.record(kind, stream_id, block.meta, env);
        rec.header_bytes = block.size;
        if block.lost {
            rec.flags.push(flag::GAP);
        }
        if block.flood {
            rec.flags.push(flag::HEADER_BLOCK_FLOOD);
            rec.truncated = true;
        }
        if info.error.is_some() {
            rec.flags.push(flag::HPACK_ERROR);
        }
        if info.undecoded > 0 {
            rec.flags.push(flag::HPACK_PARTIAL);
        }
        if fields.non_utf8 {
            rec.flags.push(flag::NON_UTF8);
        }
        if block.promised.is_some() {
            rec.flags.push(flag::PUSH_PROMISE);
        }
        rec.truncated |= fields.truncated;
        let h2 = rec.h2.get_or_insert_with(Box::default);
        h2.undecoded_fields = u32::try_from(info.undecoded).unwrap_or(u32::MAX);
        h2.decoded_bytes = info.decoded_bytes;
        let grpc_ct = fields
            .content_type
            .as_deref()
            .is_some_and(|ct| ct.starts_with("application/grpc"));
        match kind {
            HttpKind::Request => {
                rec.method = fields.method.clone();
                rec.target = fields.path.clone();
                h2.authority = fields.authority.clone();
                h2.scheme = fields.scheme.clone();
                if grpc_ct {
                    h2.grpc = fields.path.as_deref().and_then(grpc_name);
                }
                let stream = self.stream_mut(stream_id, env);
                stream.req = Some(RequestRef {
                    method: fields.method.clone().unwrap_or_default(),
                    target: fields.path.clone().unwrap_or_default(),
                    host: fields.authority.clone(),
                });
                stream.req_ts = block.meta.ts_ns;
                stream.grpc = grpc_ct;
            }
            HttpKind::Response => {
                rec.status = fields.status;
                let interim = fields.status.is_some_and(|s| (100..200).contains(&s));
                let stream = self.stream_mut(stream_id, env);
                if stream.grpc || grpc_ct {
                    // A trailers-only response carries the status itself.
                    h2.grpc_status = fields.grpc_status;
                    h2.grpc_message = fields.grpc_message.clone();
                }
                rec.request = stream.req.clone();
                if stream.req.is_some() {
                    rec.latency_ns = Some(block.meta.ts_ns.saturating_sub(stream.req_ts));
                }
                if !interim {
                    stream.responded = true;
                }
            }
            HttpKind::Trailers | HttpKind::Reset => {
                let stream = self.stream_mut(stream_id, env);
                rec.request = stream.req.clone();
                h2.grpc_status = fields.grpc_status;
                h2.grpc_message = fields.grpc_message.clone();
            }
        }
        if let Some(s) = self.streams.get_mut(&stream_id) {
            if let Some(b) = s.blocks.get_mut(d) {
                *b = b.saturating_add(1);
            }
        }
        rec.headers = fields.headers;
        rec.framing = fields.framing;
        if kind != HttpKind::Request && rec.request.is_none() {
            rec.flags.push(flag::UNPAIRED);
            env.stats.unpaired += 1;
        }
        self.finish_record(d, rec, env);
        if block.end_stream {
            self.end_stream(d, stream_id);
        }
    }

    /// The stream's state, created if new (the lowest id evicted beyond
    /// `max_streams`).
    fn stream_mut(&mut self, id: u32, env: &mut Env<'_>) -> &mut Stream {
        if !self.streams.contains_key(&id)
            && self.streams.len() >= env.cfg.max_streams.max(1)
            && self.streams.pop_first().is_some()
        {
            env.stats.streams_evicted += 1;
        }
        self.streams.entry(id).or_default()
    }

    /// Direction `d` ended stream `id` (END_STREAM): once the server side
    /// has, the stream holds nothing more to pair.
    fn end_stream(&mut self, d: usize, id: u32) {
        if Some(d) != self.client_dir && self.streams.get(&id).is_some_and(|s| s.responded) {
            self.streams.remove(&id);
        }
    }

    /// A fresh record of this connection for stream `stream`.
    fn record(&self, kind: HttpKind, stream: u32, meta: Meta, env: &Env<'_>) -> HttpRecord {
        let mut flags = Vec::new();
        if self.midstream {
            flags.push(flag::MIDSTREAM);
        }
        HttpRecord {
            kind,
            id: 0,
            ts_unix_ns: meta.ts_ns.saturating_add_signed(env.cfg.clock_offset_ns),
            conn_id: self.conn_id,
            sock_cookie: meta.sock_cookie,
            process: Process {
                pid: meta.tgid,
                tid: meta.tid,
                comm: crate::record::comm_text(&meta.comm),
                cgroup_id: meta.cgroup_id,
                workload: None,
            },
            local: self.local,
            remote: self.remote,
            role: self.role(),
            version: "HTTP/2",
            method: None,
            target: None,
            status: None,
            reason: None,
            latency_ns: None,
            request: None,
            headers: Headers::default(),
            header_bytes: 0,
            truncated: false,
            tls: self.tls,
            tls_library: self.tls_library.clone(),
            flags,
            anomalies: 0,
            framing: Framing::default(),
            h2: Some(Box::new(H2Info {
                stream_id: stream,
                ..H2Info::default()
            })),
            tcp_seq: None,
            packets: None,
            interface: None,
        }
    }

    /// Out it goes, carrying a reset the other side sent on its stream.
    fn finish_record(&mut self, d: usize, mut rec: HttpRecord, env: &mut Env<'_>) {
        let stream = rec.stream_id().unwrap_or(0);
        if let Some(i) = self
            .held_resets
            .iter()
            .position(|r| r.stream == stream && r.dir != d)
        {
            let r = self.held_resets.remove(i);
            rec.add_flag(flag::RESET);
            if r.rapid > 0 {
                rec.add_flag(flag::RAPID_RESET);
            }
            if let Some(h2) = rec.h2.as_mut() {
                h2.error_code = Some(r.code);
                h2.rapid_resets = r.rapid;
            }
        }
        match rec.kind {
            HttpKind::Request => env.stats.requests += 1,
            HttpKind::Response => env.stats.responses += 1,
            HttpKind::Trailers => env.stats.trailers += 1,
            HttpKind::Reset => env.stats.resets += 1,
        }
        if rec.truncated {
            env.stats.truncated += 1;
        }
        env.out.push(Arc::new(rec));
    }

    /// RST_STREAM from direction `d`.
    fn reset(&mut self, d: usize, stream: u32, code: u32, meta: Meta, env: &mut Env<'_>) {
        let mut rapid = 0;
        if self.client_dir == Some(d) {
            let window = env.cfg.rapid_reset_window_ns;
            self.client_resets.push_back(meta.ts_ns);
            while self
                .client_resets
                .front()
                .is_some_and(|&t| t.saturating_add(window) < meta.ts_ns)
            {
                self.client_resets.pop_front();
            }
            let n = self.client_resets.len() as u32;
            if env.cfg.rapid_reset_count > 0 && n >= env.cfg.rapid_reset_count {
                rapid = n;
                // One flagged reset per run: count the next run afresh.
                self.client_resets.clear();
            }
        }
        if self.held_resets.len() >= 256 {
            self.flush_resets(|_| true, env);
        }
        self.held_resets.push(HeldReset {
            stream,
            code,
            dir: d,
            meta,
            rapid,
        });
    }

    /// Held resets matching `due` become `http_reset` records.
    fn flush_resets(&mut self, due: impl Fn(&HeldReset) -> bool, env: &mut Env<'_>) {
        if self.held_resets.is_empty() {
            return;
        }
        let (now, later): (Vec<HeldReset>, Vec<HeldReset>) = std::mem::take(&mut self.held_resets)
            .into_iter()
            .partition(&due);
        self.held_resets = later;
        for r in now {
            let mut rec = self.record(HttpKind::Reset, r.stream, r.meta, env);
            rec.flags.push(flag::RESET);
            if r.rapid > 0 {
                rec.flags.push(flag::RAPID_RESET);
            }
            // The stream stays: a response still in flight pairs with it.
            if let Some(s) = self.streams.get(&r.stream) {
                if let Some(req) = &s.req {
                    rec.latency_ns = Some(r.meta.ts_ns.saturating_sub(s.req_ts));
                    rec.request = Some(req.clone());
                }
            }
            if let Some(h2) = rec.h2.as_mut() {
                h2.error_code = Some(r.code);
                h2.rapid_resets = r.rapid;
            }
            env.stats.resets += 1;
            env.out.push(Arc::new(rec));
        }
    }

    /// The connection ended.
    fn finish(&mut self, env: &mut Env<'_>) {
        for d in 0..2 {
            let open = self
                .dirs
                .get_mut(d)
                .and_then(|dir| dir.block.take())
                .map(|b| (b.stream, b.meta, b.size, b.flood, b.lost));
            if let (Some((stream, meta, size, flood, lost)), Some(client)) = (open, self.client_dir)
            {
                let kind = if d == client {
                    HttpKind::Request
                } else {
                    HttpKind::Response
                };
                let mut rec = self.record(kind, stream, meta, env);
                rec.flags.push(flag::INCOMPLETE);
                if lost {
                    rec.flags.push(flag::GAP);
                }
                // A block the peer cut off after it passed the bound (a
                // server closing on a CONTINUATION flood) is still a flood.
                if flood {
                    env.stats.block_floods += 1;
                    rec.flags.push(flag::HEADER_BLOCK_FLOOD);
                    rec.truncated = true;
                }
                // What arrived of the block before the end.
                rec.header_bytes = size;
                self.finish_record(d, rec, env);
            }
        }
        self.flush_resets(|_| true, env);
    }
}

/// A HEADERS or PUSH_PROMISE frame's block fragment: padding and priority
/// taken off (§6.2, §6.6). None when they do not fit the frame.
fn fragment<'a>(h: &Header, p: &'a [u8]) -> Option<&'a [u8]> {
    let mut start = 0usize;
    let mut pad = 0usize;
    if h.flags & flags::PADDED != 0 {
        pad = usize::from(*p.first()?);
        start = 1;
    }
    if h.ty == ty::HEADERS && h.flags & flags::PRIORITY != 0 {
        start += 5;
    }
    let end = p.len().checked_sub(pad)?;
    p.get(start..end)
}

fn be16(b: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(..2)?.try_into().ok()?))
}

fn be32(b: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(..4)?.try_into().ok()?))
}

/// gRPC's `/package.Service/Method`.
fn grpc_name(path: &str) -> Option<Grpc> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    if service.is_empty() || method.is_empty() || method.contains('/') {
        return None;
    }
    Some(Grpc {
        service: service.into(),
        method: method.into(),
    })
}

/// A decoded block's fields on their way into a record: every field into
/// `headers` (within the limits), the pseudo-headers and the few regular
/// ones hdrtap reads picked out on the way.
struct Fields {
    headers: Headers,
    kept_bytes: usize,
    max_bytes: usize,
    max_headers: usize,
    truncated: bool,
    non_utf8: bool,
    method: Option<CompactString>,
    path: Option<CompactString>,
    authority: Option<CompactString>,
    scheme: Option<CompactString>,
    status: Option<u16>,
    content_type: Option<CompactString>,
    grpc_status: Option<i64>,
    grpc_message: Option<String>,
    /// Content-Length and Transfer-Encoding (which HTTP/2 forbids but a
    /// downgrading proxy may pass on), from every field, kept or not.
    framing: Framing,
}

impl Fields {
    /// For a block of `block_len` compressed bytes.
    fn new(cfg: &Http2Config, block_len: usize) -> Self {
        Fields {
            // Decoded text is typically one to two times the block.
            headers: Headers::with_capacity(16, (2 * block_len).min(cfg.max_header_bytes)),
            kept_bytes: 0,
            max_bytes: cfg.max_header_bytes,
            max_headers: cfg.max_headers,
            truncated: false,
            non_utf8: false,
            method: None,
            path: None,
            authority: None,
            scheme: None,
            status: None,
            content_type: None,
            grpc_status: None,
            grpc_message: None,
            framing: Framing::default(),
        }
    }

    fn push(&mut self, f: hpack::Field<'_>) {
        // grpc-message is percent-encoded UTF-8; decoded, it may not be.
        let grpc_message = match (f.name, f.value) {
            (Some(b"grpc-message"), Some(v)) => Some(crate::text::percent_decode(v)),
            _ => None,
        };
        let clean =
            utf8(f.name) && utf8(f.value) && grpc_message.as_deref().is_none_or(|m| utf8(Some(m)));
        if !clean && !self.non_utf8 {
            self.escape_so_far();
        }
        if let Some(m) = grpc_message {
            self.grpc_message = Some(text(Some(&m), self.non_utf8).into_owned());
        }
        let name = text(f.name, self.non_utf8);
        let value = text(f.value, self.non_utf8);
        if let (Some(n), Some(v)) = (f.name, f.value) {
            self.framing.see(n, v);
        }
        if f.value.is_some() {
            let v = value.as_ref();
            match f.name {
                Some(b":method") => self.method = Some(v.into()),
                Some(b":path") => self.path = Some(v.into()),
                Some(b":authority") => self.authority = Some(v.into()),
                Some(b":scheme") => self.scheme = Some(v.into()),
                Some(b":status") => self.status = v.trim().parse().ok(),
                Some(b"content-type") => self.content_type = Some(v.into()),
                Some(b"grpc-status") => self.grpc_status = v.trim().parse().ok(),
                _ => {}
            }
        }
        let size = name.len() + value.len();
        if self.headers.len() >= self.max_headers || self.kept_bytes + size > self.max_bytes {
            self.truncated = true;
            return;
        }
        self.kept_bytes += size;
        let mut m = 0;
        if f.name.is_none() {
            m |= mark::NAME_UNKNOWN;
        }
        if f.value.is_none() {
            m |= mark::VALUE_UNKNOWN;
        }
        if f.repr == hpack::Repr::NeverIndexed {
            m |= mark::NEVER_INDEXED;
        }
        self.headers.push_marked(&name, &value, m);
    }

    /// The first field that is not UTF-8: from here on every text of the
    /// record is escaped ([`crate::text`]), so the fields kept so far are
    /// escaped too (they are UTF-8: only their backslashes change).
    fn escape_so_far(&mut self) {
        self.non_utf8 = true;
        let esc = |s: &str| crate::text::escape_wire(s.as_bytes()).into_owned();
        let mut h = Headers::with_capacity(self.headers.len(), self.kept_bytes + 16);
        for (i, (n, v)) in self.headers.iter().enumerate() {
            h.push_marked(&esc(n), &esc(v), self.headers.marks(i));
        }
        self.headers = h;
        for t in [
            &mut self.method,
            &mut self.path,
            &mut self.authority,
            &mut self.scheme,
            &mut self.content_type,
        ]
        .into_iter()
        .flatten()
        {
            if t.contains('\\') {
                *t = esc(t).into();
            }
        }
    }
}

/// The direction of index `d` ([`Direction::index`]).
fn direction(d: usize) -> Direction {
    if d == Direction::Egress.index() {
        Direction::Egress
    } else {
        Direction::Ingress
    }
}

/// Whether a field's part is UTF-8 (an unknown part is).
fn utf8(b: Option<&[u8]>) -> bool {
    b.is_none_or(|b| std::str::from_utf8(b).is_ok())
}

/// A field's name or value as text: borrowed when it is UTF-8 and the
/// record is not escaped (the usual case: no copy before the record's own
/// buffer), else escaped losslessly ([`crate::text::escape_wire`]); an
/// unknown part is empty (its mark says so).
fn text(b: Option<&[u8]>, escaped: bool) -> std::borrow::Cow<'_, str> {
    match b {
        Some(b) if escaped => crate::text::escape_wire(b),
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => s.into(),
            Err(_) => crate::text::escape_wire(b),
        },
        None => "".into(),
    }
}

#[cfg(test)]
mod hpack_tests;
#[cfg(test)]
mod tests;
