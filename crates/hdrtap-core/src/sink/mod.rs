//! Where records go: one [`Record`] type for every capture mode, a [`Sink`]
//! trait, and a [`Fanout`] that runs each sink on its own thread behind a
//! bounded queue, so a slow or dead sink never blocks capture or the other
//! sinks — what does not fit is dropped and counted ([`SinkCounters`]).
//!
//! ```text
//! capture thread(s) ── Arc<[Record]> per drained batch ──► Fanout::send (try_send, never blocks)
//!                                                            ├─► queue ─► thread "sink-file"  ─► FileSink
//!                                                            ├─► queue ─► thread "sink-prom"  ─► metrics
//!                                                            └─► queue ─► thread "sink-otlp"  ─► OTLP exporter
//! ```
//!
//! A batch is shared by every sink (one `Arc` per batch, one per record);
//! each sink thread filters it by the record kinds it wants.
mod file;

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;

pub use file::{open_append, FileOptions, FileSink, StdoutSink};

use crate::output::{push_record_json_memo, Format, JsonMemo, OutputRecord};
use crate::packet::PacketRecord;
use crate::record::{HttpKind, HttpRecord};
use crate::rules::Alert;

/// One record on its way to the sinks.
#[derive(Debug, Clone)]
pub enum Record {
    Http(Arc<HttpRecord>),
    Packet(Arc<PacketRecord>),
    Alert(Arc<Alert>),
    Stats(Arc<StatsSnapshot>),
}

/// The kinds of records, as JSON `kind` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    HttpRequest,
    HttpResponse,
    Packet,
    Alert,
    Stats,
    HttpTrailers,
    HttpReset,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::HttpRequest,
        Kind::HttpResponse,
        Kind::Packet,
        Kind::Alert,
        Kind::Stats,
        Kind::HttpTrailers,
        Kind::HttpReset,
    ];

    /// The JSON `kind`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::HttpRequest => "http_request",
            Kind::HttpResponse => "http_response",
            Kind::HttpTrailers => "http_trailers",
            Kind::HttpReset => "http_reset",
            Kind::Packet => "packet",
            Kind::Alert => "alert",
            Kind::Stats => "stats",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A set of record kinds (which records a sink takes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindSet(u8);

impl KindSet {
    pub const ALL: KindSet = KindSet(0x7f);

    /// Parse names: a JSON `kind`, or `http` for every HTTP kind.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<KindSet, String> {
        let mut bits = 0;
        for n in names {
            bits |= match n.as_ref() {
                "http" => {
                    Kind::HttpRequest.bit()
                        | Kind::HttpResponse.bit()
                        | Kind::HttpTrailers.bit()
                        | Kind::HttpReset.bit()
                }
                other => match Kind::ALL.iter().find(|k| k.name() == other) {
                    Some(k) => k.bit(),
                    None => {
                        return Err(format!(
                            "unknown record kind {other:?} (expected http, http_request, http_response, http_trailers, http_reset, packet, alert or stats)"
                        ))
                    }
                },
            };
        }
        Ok(KindSet(bits))
    }

    pub fn contains(self, k: Kind) -> bool {
        self.0 & k.bit() != 0
    }
}

impl Record {
    pub fn kind(&self) -> Kind {
        match self {
            Record::Http(r) => match r.kind {
                HttpKind::Request => Kind::HttpRequest,
                HttpKind::Response => Kind::HttpResponse,
                HttpKind::Trailers => Kind::HttpTrailers,
                HttpKind::Reset => Kind::HttpReset,
            },
            Record::Packet(_) => Kind::Packet,
            Record::Alert(_) => Kind::Alert,
            Record::Stats(_) => Kind::Stats,
        }
    }

    /// The per-run id (stats records have none: 0).
    pub fn id(&self) -> u64 {
        match self {
            Record::Http(r) => r.id,
            Record::Packet(r) => r.id,
            Record::Alert(a) => a.id,
            Record::Stats(_) => 0,
        }
    }

    /// Append the record's NDJSON object (no newline).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Record::Http(r) => r.write_json(out),
            Record::Packet(r) => r.write_json(out),
            Record::Alert(a) => a.write_json(out),
            Record::Stats(s) => out.extend_from_slice(s.json.as_bytes()),
        }
    }

    /// Append the readable line (no newline); false for records that have
    /// none (stats are JSON only).
    pub fn write_line(&self, out: &mut Vec<u8>) -> bool {
        match self {
            Record::Http(r) => r.write_line(out),
            Record::Packet(r) => r.write_line(out),
            Record::Alert(a) => a.write_line(out),
            Record::Stats(_) => return false,
        }
        true
    }

    /// Append the readable form in `view`, newline included (HTTP records
    /// and alerts take the view; packets have one form); false for stats.
    pub fn write_view(&self, view: crate::output::View, out: &mut Vec<u8>) -> bool {
        match self {
            Record::Http(r) => {
                out.extend_from_slice(crate::output::record_text(r, view).as_bytes())
            }
            Record::Alert(a) => {
                out.extend_from_slice(crate::output::alert_text(a, view).as_bytes())
            }
            Record::Packet(r) => r.write_line(out),
            Record::Stats(_) => return false,
        }
        out.push(b'\n');
        true
    }

    /// [`Record::write`] through a writer's [`JsonMemo`] (made at the first
    /// HTTP or packet record in JSON): the same bytes, with what records
    /// repeat (an HTTP connection's fields, header lines, a packet flow's
    /// owner and Ethernet header) copied instead of rebuilt. Every NDJSON
    /// output of records uses it: the command line's writer and the
    /// daemon's file and stdout sinks.
    pub fn write_memo(
        &self,
        format: Format,
        out: &mut Vec<u8>,
        memo: &mut Option<Box<JsonMemo>>,
    ) -> bool {
        match (format, self) {
            (Format::Json, Record::Http(r)) => {
                push_record_json_memo(out, r, memo.get_or_insert_with(Default::default))
            }
            (Format::Json, Record::Packet(r)) => crate::packet::push_record_json_memo(
                out,
                r,
                memo.get_or_insert_with(Default::default),
            ),
            _ => return self.write(format, out),
        }
        out.push(b'\n');
        true
    }

    /// Append the record as one line in `format`, newline included; false
    /// when the record has no line in that format.
    pub fn write(&self, format: Format, out: &mut Vec<u8>) -> bool {
        let written = match format {
            Format::Json => {
                self.write_json(out);
                true
            }
            Format::Human => self.write_line(out),
        };
        if written {
            out.push(b'\n');
        }
        written
    }
}

/// A stats record: the counters as name/value pairs (for metrics and
/// OTLP attributes) and its JSON line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Which part of hdrtap counted: `http`, `packets` or `sinks`.
    pub source: &'static str,
    pub ts_unix_ns: u64,
    /// Every numeric counter, in JSON order.
    pub fields: Vec<(String, u64)>,
    /// The complete `{"kind":"stats",...}` object (no newline).
    pub json: String,
}

impl StatsSnapshot {
    /// From a counters struct that serialises to a flat JSON object: the
    /// JSON gets `kind`, `ts` and `source` in front of the counters.
    pub fn new<T: Serialize>(source: &'static str, ts_unix_ns: u64, counters: &T) -> Self {
        #[derive(Serialize)]
        struct Line<'a, T> {
            kind: &'static str,
            ts: String,
            source: &'static str,
            #[serde(flatten)]
            counters: &'a T,
        }
        let json = serde_json::to_string(&Line {
            kind: "stats",
            ts: crate::output::rfc3339_ns(ts_unix_ns),
            source,
            counters,
        })
        .unwrap_or_default();
        let fields = match serde_json::to_value(counters) {
            Ok(serde_json::Value::Object(m)) => m
                .into_iter()
                .filter_map(|(k, v)| v.as_u64().map(|n| (k, n)))
                .collect(),
            _ => Vec::new(),
        };
        StatsSnapshot {
            source,
            ts_unix_ns,
            fields,
            json,
        }
    }

    /// The value of counter `name`.
    pub fn get(&self, name: &str) -> Option<u64> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
    }
}

/// The latest counters of one capture (published about every second by
/// `hdrtap run`, read by the metrics endpoint).
#[derive(Debug, Clone)]
pub struct CaptureStatus {
    pub stats: Arc<StatsSnapshot>,
    /// Bytes waiting in the capture's ring buffer, and its size.
    pub ring_fill: Option<(u64, u64)>,
}

/// The latest [`CaptureStatus`] of every capture, by source.
#[derive(Debug, Default)]
pub struct StatusBoard {
    captures: std::sync::Mutex<Vec<CaptureStatus>>,
}

impl StatusBoard {
    /// Replace the status of `status.stats.source`.
    pub fn publish(&self, status: CaptureStatus) {
        let mut all = self.captures.lock().unwrap_or_else(|p| p.into_inner());
        match all
            .iter_mut()
            .find(|c| c.stats.source == status.stats.source)
        {
            Some(slot) => *slot = status,
            None => all.push(status),
        }
    }

    /// Every capture's latest status.
    pub fn snapshot(&self) -> Vec<CaptureStatus> {
        self.captures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// A destination for records. Each runs on its own thread (see
/// [`Fanout`]); methods may block that thread, never capture.
pub trait Sink: Send {
    /// Handle one batch (already filtered to the kinds the sink takes).
    fn write(&mut self, batch: &[Record]);
    /// Called when no batch came for a while (at most [`TICK`] apart while
    /// idle): time-based work such as a batch timeout.
    fn tick(&mut self) {}
    /// SIGHUP: reopen output files (log rotation by someone else).
    fn reopen(&mut self) {}
    /// The end: write out everything held, fsync, release.
    fn close(&mut self);
}

/// How long a sink thread waits for a batch before calling [`Sink::tick`].
pub const TICK: Duration = Duration::from_millis(100);

/// Per-sink counters, shared between the fanout, the sink's thread and
/// whoever reports them (metrics, stats records).
#[derive(Debug, Default)]
pub struct SinkCounters {
    /// Records written (or exported) by the sink.
    pub records: AtomicU64,
    /// Failed writes or exports (each attempt that failed).
    pub errors: AtomicU64,
    /// Records dropped because the sink's queue was full.
    pub dropped_queue: AtomicU64,
    /// Records the sink gave up on after failures (write error, export
    /// failed after its retries).
    pub dropped_failed: AtomicU64,
    /// Records waiting in the queue now.
    pub queued: AtomicU64,
}

impl SinkCounters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// A plain copy.
    pub fn snapshot(&self) -> SinkCountersSnapshot {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SinkCountersSnapshot {
            records: g(&self.records),
            errors: g(&self.errors),
            dropped_queue: g(&self.dropped_queue),
            dropped_failed: g(&self.dropped_failed),
            queued: g(&self.queued),
        }
    }
}

/// A copy of [`SinkCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SinkCountersSnapshot {
    pub records: u64,
    pub errors: u64,
    pub dropped_queue: u64,
    pub dropped_failed: u64,
    pub queued: u64,
}

/// A sink and how the fanout should run it.
pub struct SinkSpec {
    /// Unique name (thread name, metric label).
    pub name: String,
    /// `file`, `stdout`, `prometheus`, `otlp`.
    pub sink_type: &'static str,
    /// Record kinds it takes.
    pub kinds: KindSet,
    /// Records queued at most before new batches are dropped.
    pub queue_records: u64,
    pub sink: Box<dyn Sink>,
    /// The sink's counters (the sink may count into them too).
    pub counters: Arc<SinkCounters>,
}

/// Name, type and counters of one running sink.
#[derive(Debug, Clone)]
pub struct SinkInfo {
    pub name: String,
    pub sink_type: &'static str,
    pub counters: Arc<SinkCounters>,
}

struct Slot {
    info: SinkInfo,
    kinds: KindSet,
    max_queued: u64,
    tx: SyncSender<Arc<[Record]>>,
    reopen: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// Sinks, each on its own thread behind a bounded queue.
pub struct Fanout {
    slots: Vec<Slot>,
}

/// Batches a queue holds at most (besides the bound in records).
const QUEUE_BATCHES: usize = 4096;

impl Fanout {
    /// Start a thread per sink.
    pub fn start(specs: Vec<SinkSpec>) -> io::Result<Fanout> {
        let mut slots = Vec::with_capacity(specs.len());
        for spec in specs {
            let (tx, rx) = mpsc::sync_channel::<Arc<[Record]>>(QUEUE_BATCHES);
            let reopen = Arc::new(AtomicBool::new(false));
            let info = SinkInfo {
                name: spec.name.clone(),
                sink_type: spec.sink_type,
                counters: Arc::clone(&spec.counters),
            };
            let thread = std::thread::Builder::new()
                .name(thread_name(&spec.name))
                .spawn({
                    let reopen = Arc::clone(&reopen);
                    let counters = Arc::clone(&spec.counters);
                    let kinds = spec.kinds;
                    let mut sink = spec.sink;
                    move || run_sink(&mut *sink, &rx, &reopen, &counters, kinds)
                })?;
            slots.push(Slot {
                info,
                kinds: spec.kinds,
                max_queued: spec.queue_records.max(1),
                tx,
                reopen,
                thread,
            });
        }
        Ok(Fanout { slots })
    }

    /// Hand a batch to every sink that takes some of its kinds, without
    /// ever blocking: a sink whose queue is full loses the batch (counted
    /// in `dropped_queue`).
    pub fn send(&self, batch: Arc<[Record]>) {
        if batch.is_empty() {
            return;
        }
        for slot in &self.slots {
            let n = batch
                .iter()
                .filter(|r| slot.kinds.contains(r.kind()))
                .count() as u64;
            if n == 0 {
                continue;
            }
            let c = &slot.info.counters;
            let before = c.queued.fetch_add(n, Ordering::Relaxed);
            let room = slot.max_queued.saturating_sub(before);
            let (take, part) = if n <= room {
                (n, Arc::clone(&batch))
            } else if room == 0 {
                (0, Arc::clone(&batch))
            } else {
                // Take what fits, in order; the rest is dropped.
                let part: Arc<[Record]> = batch
                    .iter()
                    .filter(|r| slot.kinds.contains(r.kind()))
                    .take(room as usize)
                    .cloned()
                    .collect();
                (room, part)
            };
            if take < n {
                c.queued.fetch_sub(n - take, Ordering::Relaxed);
                SinkCounters::add(&c.dropped_queue, n - take);
            }
            if take == 0 {
                continue;
            }
            match slot.tx.try_send(part) {
                Ok(()) => {}
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    c.queued.fetch_sub(take, Ordering::Relaxed);
                    SinkCounters::add(&c.dropped_queue, take);
                }
            }
        }
    }

    /// Ask every sink to reopen its files (SIGHUP).
    pub fn reopen(&self) {
        for slot in &self.slots {
            slot.reopen.store(true, Ordering::Relaxed);
        }
    }

    /// The running sinks.
    pub fn sinks(&self) -> Vec<SinkInfo> {
        self.slots.iter().map(|s| s.info.clone()).collect()
    }

    /// Stop: every sink takes what is queued, then closes (flush, fsync).
    /// Returns the sinks' final counters.
    pub fn close(self) -> Vec<SinkInfo> {
        let mut infos = Vec::new();
        let mut threads = Vec::new();
        for slot in self.slots {
            infos.push(slot.info);
            drop(slot.tx);
            threads.push(slot.thread);
        }
        for t in threads {
            if t.join().is_err() {
                tracing::warn!("a sink thread panicked while closing");
            }
        }
        infos
    }
}

fn thread_name(sink: &str) -> String {
    // Linux keeps 15 bytes of a thread name.
    let mut n = format!("sink-{sink}");
    while n.len() > 15 {
        n.pop();
    }
    n
}

fn run_sink(
    sink: &mut dyn Sink,
    rx: &mpsc::Receiver<Arc<[Record]>>,
    reopen: &AtomicBool,
    counters: &SinkCounters,
    kinds: KindSet,
) {
    let mut filtered: Vec<Record> = Vec::new();
    loop {
        match rx.recv_timeout(TICK) {
            Ok(batch) => {
                let all = batch.iter().all(|r| kinds.contains(r.kind()));
                let records: &[Record] = if all {
                    &batch
                } else {
                    filtered.clear();
                    filtered.extend(batch.iter().filter(|r| kinds.contains(r.kind())).cloned());
                    &filtered
                };
                counters
                    .queued
                    .fetch_sub(records.len() as u64, Ordering::Relaxed);
                guarded(counters, || sink.write(records));
                filtered.clear();
            }
            Err(RecvTimeoutError::Timeout) => guarded(counters, || sink.tick()),
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if reopen.swap(false, Ordering::Relaxed) {
            guarded(counters, || sink.reopen());
        }
    }
    guarded(counters, || sink.close());
}

/// Run sink code; a panic (a bug) is counted as an error, never spreads.
fn guarded(counters: &SinkCounters, f: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(f)).is_err() {
        SinkCounters::add(&counters.errors, 1);
    }
}

#[cfg(test)]
mod tests;
