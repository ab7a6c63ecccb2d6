//! What every capture command shares: the output (one writer for the CLI
//! commands, the sink fanout for `hdrtap run`), signals, the ready file,
//! per-run record ids, and the poll → drain → write → stats loop with its
//! orderly stop (take what is left, final stats record, summary).
use std::cell::RefCell;
use std::io::ErrorKind;
use std::path::Path;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrtap_bpf::sys;
use hdrtap_core::output::{Detail, Format, View, Writer};
use hdrtap_core::sink::{CaptureStatus, Fanout, Record, StatsSnapshot, StatusBoard};
use serde::Serialize;

use crate::cli::{ColorArg, ViewArgs};

/// How long one poll of the ring buffer may wait for events. The kernel
/// wakes hdrtap early only when the ring is three quarters full, so this is
/// how late a record may come out (hdrtap then drains the whole ring), and
/// a long body's skip request (see `Http1Tracker::take_skips`) no sooner
/// unless its chunks wake hdrtap first. 50 ms: rarer bursts of hdrtap
/// disturb the traced programs less (20 ms and a wake-up at a quarter of the
/// ring kept 0.60 of the benchmark's throughput, 50 ms and three quarters
/// 0.67; docs/PERFORMANCE.md), and 20 idle wake-ups a second.
pub const POLL: Duration = Duration::from_millis(50);
/// Records per batch handed to the sinks at most.
const FANOUT_BATCH: usize = 1024;
/// How often a daemon capture publishes its counters for /metrics.
const PUBLISH_EVERY: Duration = Duration::from_secs(1);

/// The record writer: NDJSON or readable lines, to a file (mode 0600) or
/// stdout (`-` too; flushed per line on a terminal).
pub fn open_writer(json: bool, output: Option<&Path>) -> anyhow::Result<Writer> {
    let format = if json { Format::Json } else { Format::Human };
    Ok(match output.filter(|p| p.as_os_str() != "-") {
        Some(path) => Writer::file(path, format)
            .with_context(|| format!("cannot open output file {}", path.display()))?,
        None => Writer::stdout(format, !json && sys::is_tty(1)),
    })
}

/// Where drained records go.
pub enum Output {
    /// `hdrtap http` / `hdrtap packets`: one writer, written in the
    /// capture thread (a closed stdout pipe stops capture), and with
    /// `--print` readable lines on stdout besides (a closed pipe there only
    /// stops the printing).
    Direct(Writer, Option<Writer>),
    /// `hdrtap run`: the sinks, each on its own thread; never blocks.
    Fanout(Arc<Fanout>),
}

/// A flag set by SIGINT or SIGTERM.
pub fn stop_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("cannot install signal handlers")?;
    }
    Ok(stop)
}

/// Create the ready file (holding our pid) once everything is attached.
pub fn write_ready_file(path: Option<&Path>) -> anyhow::Result<()> {
    if let Some(path) = path {
        std::fs::write(path, format!("{}\n", std::process::id()))
            .with_context(|| format!("cannot create ready file {}", path.display()))?;
    }
    Ok(())
}

pub use hdrtap_core::pipeline::Ids;

/// Called once a capture is attached, with what it captures.
pub type OnReady = Box<dyn FnOnce(&str) -> anyhow::Result<()> + Send>;

/// How a capture is driven: when to stop, where its ids come from, what
/// to do once it is attached, where to publish its counters.
pub struct Control {
    pub stop: Arc<AtomicBool>,
    pub duration: Option<u64>,
    /// `-c N`: stop after N records (HTTP messages or packets).
    pub count: Option<u64>,
    pub stats_interval: u64,
    /// Readable output (or `--print`) with an explicit `--stats-interval`:
    /// the summary so far on stderr at each interval.
    pub interim_summary: bool,
    pub ids: Arc<Ids>,
    /// Called once everything is attached, with the description of what
    /// is captured (the CLI prints it and creates the ready file).
    pub on_ready: OnReady,
    /// `hdrtap run`: publish the counters here every second (for /metrics).
    pub board: Option<Arc<StatusBoard>>,
}

impl Control {
    /// The control of a CLI capture command (`hdrtap http`, `hdrtap
    /// packets`): its own stop flag (SIGINT/SIGTERM) and record ids; once
    /// everything is attached, the ready file is created and, unless
    /// `quiet`, the start-up line printed.
    pub fn cli(common: &crate::cli::CaptureCommon) -> anyhow::Result<Control> {
        let (quiet, ready_file) = (common.quiet, common.ready_file.clone());
        Ok(Control {
            stop: stop_flag()?,
            duration: common.duration,
            count: common.count,
            stats_interval: common
                .stats_interval
                .unwrap_or(crate::cli::STATS_INTERVAL.default),
            interim_summary: (!common.json || common.print) && common.stats_interval.is_some(),
            ids: Arc::new(Ids::default()),
            on_ready: Box::new(move |what: &str| {
                // The start-up line first: a script that waits for the
                // ready file then finds it on stderr (tests/fault_kill.rs
                // reads it at once; under emulation the two raced).
                if !quiet {
                    eprintln!("hdrtap: {what}; Ctrl-C to stop");
                }
                write_ready_file(ready_file.as_deref())
            }),
            board: None,
        })
    }

    /// The ready callback (once; later calls get a no-op).
    pub fn take_on_ready(&mut self) -> OnReady {
        std::mem::replace(&mut self.on_ready, Box::new(|_| Ok(())))
    }
}

/// Records (or lines) a CLI command could not write to its output. One
/// capture per CLI process, so one count: the exit status reports it.
static OUTPUT_LOST: AtomicU64 = AtomicU64::new(0);

/// Count `n` records the output lost; the first loss is said at once.
fn output_lost(n: u64, e: &std::io::Error) {
    if OUTPUT_LOST.fetch_add(n, Ordering::Relaxed) == 0 {
        eprintln!(
            "hdrtap: warning: cannot write records to the output ({e}); they are counted as lost and hdrtap will exit with status 1"
        );
    }
}

/// The end of a CLI capture command: its summary lines on stderr; exit 0,
/// or 1 if records could not be written to the output.
pub fn print_summary(summary: Vec<String>) -> ExitCode {
    for line in summary {
        eprintln!("{line}");
    }
    let lost = OUTPUT_LOST.load(Ordering::Relaxed);
    if lost > 0 {
        eprintln!("hdrtap: error: {lost} records could not be written to the output");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// How readable HTTP records are drawn, on stdout or in a file: with `-v`
/// every header on a line of its own; otherwise compact on a terminal and
/// whole lines in a file or pipe (grep-able). Colour with `--color always`,
/// or `auto` on a terminal unless NO_COLOR is set (no-color.org).
pub fn view(args: &ViewArgs, verbose: u8, terminal: bool) -> View {
    let detail = match (verbose, terminal) {
        (1.., _) => Detail::Headers,
        (0, true) => Detail::Compact,
        (0, false) => Detail::Line,
    };
    let color = match args.color {
        ColorArg::Always => true,
        ColorArg::Never => false,
        ColorArg::Auto => terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    };
    View { detail, color }
}

/// The output of a CLI capture command: records straight to stdout or to
/// `--output`, and with `--print` readable lines on stdout too; readable
/// HTTP records drawn in `view` (see [`view`]).
pub fn direct_output(
    common: &crate::cli::CaptureCommon,
    view: impl Fn(bool) -> View,
) -> anyhow::Result<Output> {
    if common.print
        && common
            .output
            .as_deref()
            .is_some_and(|p| p.as_os_str() == "-")
    {
        anyhow::bail!(
            "--print shows readable lines on stdout beside -o FILE; with -o - there is no file"
        );
    }
    let tty = sys::is_tty(1);
    let print = common
        .print
        .then(|| Writer::stdout(Format::Human, tty).with_view(view(tty)));
    let to_stdout = common
        .output
        .as_deref()
        .is_none_or(|p| p.as_os_str() == "-");
    let writer = open_writer(common.json, common.output.as_deref())?;
    Ok(Output::Direct(
        writer.with_view(view(to_stdout && tty)),
        print,
    ))
}

/// A pipeline a ring buffer feeds, one raw event at a time.
pub trait Feed {
    fn event(&mut self, raw: &[u8]);
    /// Count an event dropped because handling it panicked.
    fn panicked(&mut self);
}

impl Feed for hdrtap_core::pipeline::HttpPipeline {
    fn event(&mut self, raw: &[u8]) {
        hdrtap_core::pipeline::HttpPipeline::event(self, raw);
    }
    fn panicked(&mut self) {
        self.panics += 1;
    }
}

impl Feed for hdrtap_core::pipeline::PacketPipeline {
    fn event(&mut self, raw: &[u8]) {
        hdrtap_core::pipeline::PacketPipeline::event(self, raw);
    }
    fn panicked(&mut self) {
        self.panics += 1;
    }
}

/// The ring-buffer callback feeding `pipeline`. It only decodes and
/// parses: records are written outside it, so a failing write can never
/// unwind through libbpf (which would abort), and a panic while handling
/// an event is caught and counted, never propagated.
pub fn ring_callback<P: Feed>(pipeline: &Rc<RefCell<P>>) -> impl FnMut(&[u8]) -> i32 + use<P> {
    let pipeline = Rc::clone(pipeline);
    move |raw: &[u8]| {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if let Ok(mut p) = pipeline.try_borrow_mut() {
                p.event(raw);
            }
        }));
        if outcome.is_err() {
            if let Ok(mut p) = pipeline.try_borrow_mut() {
                p.panicked();
            }
        }
        0
    }
}

/// One running capture: a ring buffer feeding a pipeline of records.
pub trait Session {
    type Stats: Serialize;
    /// `source` of its stats records: `http` or `packets`.
    const SOURCE: &'static str;
    /// Wait up to `timeout` for events and turn them into records.
    fn poll(&mut self, timeout: Duration) -> anyhow::Result<()>;
    /// Move the finished records into `out`, ready for output: ids
    /// assigned, rules run, secrets redacted.
    fn drain(&mut self, out: &mut Vec<Record>);
    /// A record reached the output: count it.
    fn count(&mut self, rec: &Record);
    /// Whether `rec` counts towards `-c N` (HTTP messages or packets).
    fn counts(&self, rec: &Record) -> bool {
        matches!(rec, Record::Http(_) | Record::Packet(_))
    }
    /// Capture is stopping: take what is left in the ring buffer and end
    /// whatever is still open.
    fn finish(&mut self);
    /// The counters, refreshed from the kernel.
    fn stats(&mut self) -> &Self::Stats;
    /// Bytes waiting in the ring buffer and its size.
    fn ring_fill(&self) -> Option<(u64, u64)>;
    /// Count one record or line that could not be written.
    fn output_error(&mut self);
    /// The summary for stderr at exit (one or more lines).
    fn summary(&self) -> Vec<String>;
}

/// Hand `batch` to the output. Returns true when the output is gone
/// (closed pipe) and capture should stop.
fn emit<S: Session>(session: &mut S, output: &mut Output, batch: &mut Vec<Record>) -> bool {
    if batch.is_empty() {
        return false;
    }
    match output {
        Output::Direct(writer, print) => {
            let mut closed = false;
            if let Some(p) = print {
                // Readable lines are a courtesy: on a closed pipe or an
                // error they stop, the records to the file go on.
                if batch.iter().try_for_each(|rec| p.write(rec)).is_err() || p.flush().is_err() {
                    tracing::warn!("--print: stdout failed; records still go to the output file");
                    *print = None;
                }
            }
            for rec in batch.iter() {
                match writer.write(rec) {
                    Ok(()) => session.count(rec),
                    Err(e) if e.kind() == ErrorKind::BrokenPipe => {
                        closed = true;
                        break;
                    }
                    Err(e) => {
                        // Every line the failed write lost, this one included.
                        let n = writer.take_dropped().max(1);
                        output_lost(n, &e);
                        for _ in 0..n {
                            session.output_error();
                        }
                    }
                }
            }
            batch.clear();
            closed
        }
        Output::Fanout(fanout) => {
            for rec in batch.iter() {
                session.count(rec);
            }
            // A burst (a full ring buffer read at once) goes out in pieces,
            // so that a sink's bounded queue takes what fits rather than
            // refusing the whole burst.
            while !batch.is_empty() {
                let n = batch.len().min(FANOUT_BATCH);
                fanout.send(batch.drain(..n).collect());
            }
            false
        }
    }
}

/// Flush a direct writer; true when the output is gone.
fn flush<S: Session>(session: &mut S, output: &mut Output) -> bool {
    if let Output::Direct(writer, _) = output {
        if let Err(e) = writer.flush() {
            if e.kind() == ErrorKind::BrokenPipe {
                return true;
            }
            let n = writer.take_dropped().max(1);
            output_lost(n, &e);
            for _ in 0..n {
                session.output_error();
            }
        }
    }
    false
}

fn stats_record<S: Session>(session: &mut S) -> Record {
    let snap = StatsSnapshot::new(S::SOURCE, sys::realtime_ns(), session.stats());
    Record::Stats(Arc::new(snap))
}

fn publish<S: Session>(session: &mut S, board: &StatusBoard) {
    let snap = StatsSnapshot::new(S::SOURCE, sys::realtime_ns(), session.stats());
    board.publish(CaptureStatus {
        stats: Arc::new(snap),
        ring_fill: session.ring_fill(),
    });
}

/// With `-c N`: cut `batch` after the record that makes `left` zero (the
/// alerts on it, which follow it, stay). Returns true once N were reached.
fn cut_at_count<S: Session>(session: &S, batch: &mut Vec<Record>, left: &mut Option<u64>) -> bool {
    let Some(n) = left.as_mut() else {
        return false;
    };
    let end = batch
        .iter()
        .enumerate()
        .find_map(|(i, rec)| {
            if !session.counts(rec) {
                return None;
            }
            if *n == 0 {
                return Some(i);
            }
            *n -= 1;
            None
        })
        .unwrap_or(batch.len());
    batch.truncate(end);
    *n == 0
}

/// Run a session until a signal, the deadline, `-c N` records or a closed output; then
/// take what is left, write the final stats record and flush. Returns the
/// summary lines.
pub fn run_loop<S: Session>(
    session: &mut S,
    output: &mut Output,
    ctl: &Control,
) -> anyhow::Result<Vec<String>> {
    let started = Instant::now();
    let deadline = ctl.duration.map(|s| started + Duration::from_secs(s));
    let stats_every = Duration::from_secs(ctl.stats_interval);
    let mut next_stats = started + stats_every;
    let mut next_publish = started;
    let mut output_closed = false;
    let mut count_left = ctl.count;
    let mut counted = false;
    let mut batch: Vec<Record> = Vec::with_capacity(1024);

    loop {
        if ctl.stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        session.poll(POLL)?;
        session.drain(&mut batch);
        counted = cut_at_count(session, &mut batch, &mut count_left);
        if emit(session, output, &mut batch) || flush(session, output) {
            output_closed = true;
            break;
        }
        if counted {
            break;
        }
        let now = Instant::now();
        if now >= next_stats {
            next_stats += stats_every;
            batch.push(stats_record(session));
            if emit(session, output, &mut batch) {
                output_closed = true;
                break;
            }
            if ctl.interim_summary {
                eprintln!("hdrtap: after {} s:", started.elapsed().as_secs());
                for line in session.summary() {
                    eprintln!("{line}");
                }
            }
        }
        if let Some(board) = &ctl.board {
            if now >= next_publish {
                next_publish = now + PUBLISH_EVERY;
                publish(session, board);
            }
        }
    }

    if !output_closed && !counted {
        session.finish();
        session.drain(&mut batch);
        cut_at_count(session, &mut batch, &mut count_left);
        output_closed = emit(session, output, &mut batch);
    }
    // Refresh the counters even when the output is gone: the summary needs them.
    let last = stats_record(session);
    if !output_closed {
        batch.push(last);
        if !emit(session, output, &mut batch) {
            flush(session, output);
        }
    }
    if let Some(board) = &ctl.board {
        publish(session, board);
    }
    Ok(session.summary())
}
