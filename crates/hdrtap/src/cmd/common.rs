//! What every capture command shares: the output writer, signals, the
//! ready file, and the poll → drain → flush → stats loop with its orderly
//! stop (take what is left, final stats record, summary on stderr).
use std::io::ErrorKind;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrtap_bpf::sys;
use hdrtap_core::output::{Format, StatsRecord, Writer};

/// How long one poll of the ring buffer may wait for events.
pub const POLL: Duration = Duration::from_millis(100);

/// The record writer: NDJSON or readable lines, to a file (mode 0600) or
/// stdout (flushed per line on a terminal).
pub fn open_writer(json: bool, output: Option<&Path>) -> anyhow::Result<Writer> {
    let format = if json { Format::Json } else { Format::Human };
    Ok(match output {
        Some(path) => Writer::file(path, format)
            .with_context(|| format!("cannot open output file {}", path.display()))?,
        None => Writer::stdout(format, !json && sys::is_tty(1)),
    })
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

/// One running capture: a ring buffer feeding a pipeline of records.
pub trait Session {
    type Stats: StatsRecord;
    /// Wait up to `timeout` for events and turn them into records.
    fn poll(&mut self, timeout: Duration) -> anyhow::Result<()>;
    /// Write the finished records; true when the output is gone (closed pipe).
    fn drain(&mut self, writer: &mut Writer) -> bool;
    /// Capture is stopping: take what is left in the ring buffer and end
    /// whatever is still open.
    fn finish(&mut self);
    /// The counters, refreshed from the kernel.
    fn stats(&mut self) -> &Self::Stats;
    /// Count one record or line that could not be written.
    fn output_error(&mut self);
    /// The summary for stderr at exit (one or more lines).
    fn summary(&self) -> Vec<String>;
}

/// When to stop and how often to write stats.
pub struct LoopOptions {
    pub stop: Arc<AtomicBool>,
    pub duration: Option<u64>,
    pub stats_interval: u64,
}

/// Run a session until a signal, the deadline or a closed output; then
/// flush, write the final stats record and print the summary.
pub fn run_loop<S: Session>(
    session: &mut S,
    writer: &mut Writer,
    opts: &LoopOptions,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let deadline = opts.duration.map(|s| started + Duration::from_secs(s));
    let stats_every = Duration::from_secs(opts.stats_interval);
    let mut next_stats = started + stats_every;
    let mut output_closed = false;

    loop {
        if opts.stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        session.poll(POLL)?;
        if session.drain(writer) {
            output_closed = true;
            break;
        }
        if let Err(e) = writer.flush() {
            if e.kind() == ErrorKind::BrokenPipe {
                output_closed = true;
                break;
            }
            session.output_error();
        }
        if Instant::now() >= next_stats {
            next_stats += stats_every;
            let failed = writer.stats(session.stats(), sys::realtime_ns()).is_err();
            if failed {
                session.output_error();
            }
        }
    }

    if !output_closed {
        session.finish();
        session.drain(writer);
    }
    // Refresh the counters even when the output is gone: the summary needs them.
    let stats = session.stats();
    let failed = !output_closed && writer.stats(stats, sys::realtime_ns()).is_err();
    if failed {
        session.output_error();
    }
    if !output_closed && writer.flush().is_err() {
        session.output_error();
    }
    for line in session.summary() {
        eprintln!("{line}");
    }
    Ok(())
}
