//! `hdrtap http`: ring buffer → decode → HTTP/1 tracker → redact → output.
use std::cell::RefCell;
use std::io::ErrorKind;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hdrtap_abi::Event;
use hdrtap_bpf::{sys, HttpOptions, HttpProbe};
use hdrtap_core::http1::{Http1Tracker, TrackerConfig};
use hdrtap_core::output::{Format, Writer};
use hdrtap_core::record::{HttpKind, HttpRecord};
use hdrtap_core::redact::Redactor;
use hdrtap_core::stats::Stats;

use crate::cli::HttpArgs;

/// How long one poll of the ring buffer may wait for events.
const POLL: Duration = Duration::from_millis(100);

/// State the ring-buffer callback works on. The callback only decodes and
/// parses; records are written outside it, so a failing write can never
/// unwind through libbpf (which would abort).
struct Pipeline {
    tracker: Http1Tracker,
    records: Vec<HttpRecord>,
    decode_errors: u64,
    panics: u64,
}

pub fn run(args: &HttpArgs) -> anyhow::Result<ExitCode> {
    let missing = hdrtap_bpf::doctor::missing_caps();
    if !missing.is_empty() {
        bail!(
            "hdrtap http needs root (or CAP_BPF, CAP_PERFMON and CAP_DAC_READ_SEARCH); missing {}",
            missing.join(", ")
        );
    }
    let format = if args.json { Format::Json } else { Format::Human };
    let mut writer = match &args.output {
        Some(path) => Writer::file(path, format)
            .with_context(|| format!("cannot open output file {}", path.display()))?,
        None => Writer::stdout(format, !args.json && sys::is_tty(1)),
    };
    let redactor =
        Redactor::from_options(args.no_redact, &args.redact).context("cannot get a random redaction key")?;

    let opts = HttpOptions {
        pids: args.pids.clone(),
        comms: args.comms.clone(),
        ports: args.ports.clone(),
        ring_bytes: args.ring_mib << 20,
        call_capture: args.call_capture,
        ..HttpOptions::default()
    };
    let mut probe = HttpProbe::load(&opts).context("cannot load the HTTP capture programs")?;
    probe.attach().context("cannot attach the HTTP capture programs")?;

    let pipeline = Rc::new(RefCell::new(Pipeline {
        tracker: Http1Tracker::new(TrackerConfig {
            max_header_bytes: args.max_header_bytes as usize,
            clock_offset_ns: sys::monotonic_to_realtime_offset_ns(),
            ..TrackerConfig::default()
        }),
        records: Vec::with_capacity(1024),
        decode_errors: 0,
        panics: 0,
    }));
    let cb_pipeline = Rc::clone(&pipeline);
    let ring = probe
        .ring_buffer(move |raw: &[u8]| {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let Ok(mut guard) = cb_pipeline.try_borrow_mut() else { return };
                let p = &mut *guard;
                match hdrtap_abi::decode(raw) {
                    Ok(Event::Data(ev)) => p.tracker.on_data(&ev, &mut p.records),
                    Ok(Event::Close(ev)) => p.tracker.on_close(&ev, &mut p.records),
                    Err(e) => {
                        p.decode_errors += 1;
                        tracing::debug!("undecodable event: {e}");
                    }
                }
            }));
            if outcome.is_err() {
                if let Ok(mut p) = cb_pipeline.try_borrow_mut() {
                    p.panics += 1;
                }
            }
            0
        })
        .context("cannot open the ring buffer")?;

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).context("cannot install signal handlers")?;
    }
    if let Some(path) = &args.ready_file {
        std::fs::write(path, format!("{}\n", std::process::id()))
            .with_context(|| format!("cannot create ready file {}", path.display()))?;
    }
    if !args.quiet {
        let filters = describe_filters(args);
        eprintln!(
            "hdrtap: tracing HTTP/1.x on TCP{filters} ({} probes attached); redacting {}; Ctrl-C to stop",
            probe.attached(),
            if redactor.names().is_empty() { "nothing".to_string() } else { redactor.names().join(", ") }
        );
    }

    let started = Instant::now();
    let deadline = args.duration.map(|s| started + Duration::from_secs(s));
    let stats_every = Duration::from_secs(args.stats_interval);
    let mut next_stats = started + stats_every;
    let mut stats = Stats::default();
    let mut output_closed = false;

    loop {
        if stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        HttpProbe::poll(&ring, POLL).context("reading the ring buffer")?;
        if drain(&pipeline, &redactor, &mut writer, &mut stats) {
            output_closed = true;
            break;
        }
        if let Err(e) = writer.flush() {
            if e.kind() == ErrorKind::BrokenPipe {
                output_closed = true;
                break;
            }
            stats.output_errors += 1;
        }
        if Instant::now() >= next_stats {
            next_stats += stats_every;
            refresh_stats(&probe, &pipeline, &mut stats);
            if writer.stats(&stats, sys::realtime_ns()).is_err() {
                stats.output_errors += 1;
            }
        }
    }

    // Take what is still in the ring buffer, end every connection (a header
    // block still open becomes a record flagged incomplete), then report.
    if !output_closed {
        let _ = ring.consume();
        {
            let mut guard = pipeline.borrow_mut();
            let p = &mut *guard;
            p.tracker.close_all(&mut p.records);
        }
        drain(&pipeline, &redactor, &mut writer, &mut stats);
    }
    refresh_stats(&probe, &pipeline, &mut stats);
    if !output_closed {
        if writer.stats(&stats, sys::realtime_ns()).is_err() {
            stats.output_errors += 1;
        }
        if writer.flush().is_err() {
            stats.output_errors += 1;
        }
    }
    eprintln!("{}", stats.summary());
    let panics = pipeline.borrow().panics;
    if panics > 0 {
        eprintln!("hdrtap: {panics} events hit an internal error and were dropped (please report this)");
    }
    Ok(ExitCode::SUCCESS)
}

/// Move finished records through redaction to the writer. Returns true when
/// the output is gone (closed pipe) and capture should stop.
fn drain(pipeline: &Rc<RefCell<Pipeline>>, redactor: &Redactor, writer: &mut Writer, stats: &mut Stats) -> bool {
    let mut records = std::mem::take(&mut pipeline.borrow_mut().records);
    let mut closed = false;
    for rec in records.iter_mut() {
        redactor.apply(rec);
        match writer.record(rec) {
            Ok(()) => {
                stats.records += 1;
                match rec.kind {
                    HttpKind::Request => stats.requests += 1,
                    HttpKind::Response => stats.responses += 1,
                }
            }
            Err(e) if e.kind() == ErrorKind::BrokenPipe => {
                closed = true;
                break;
            }
            Err(_) => stats.output_errors += 1,
        }
    }
    // Give the allocation back for reuse.
    records.clear();
    let mut p = pipeline.borrow_mut();
    if p.records.is_empty() {
        p.records = records;
    }
    closed
}

fn refresh_stats(probe: &HttpProbe, pipeline: &Rc<RefCell<Pipeline>>, stats: &mut Stats) {
    match probe.counters() {
        Ok(c) => stats.set_kernel(&c),
        Err(e) => tracing::warn!("cannot read kernel counters: {e}"),
    }
    let p = pipeline.borrow();
    let t = p.tracker.stats();
    stats.truncated_messages = t.truncated;
    stats.incomplete_messages = t.incomplete;
    stats.parse_errors = t.parse_errors;
    stats.gaps = t.gaps;
    stats.gap_bytes = t.gap_bytes;
    stats.resyncs = t.resyncs;
    stats.skipped_bytes = t.skipped_bytes;
    stats.unpaired_responses = t.unpaired_responses;
    stats.conns_open = t.conns_open;
    stats.conns_evicted = t.conns_evicted;
    stats.decode_errors = p.decode_errors;
}

fn describe_filters(args: &HttpArgs) -> String {
    let mut parts = Vec::new();
    if !args.pids.is_empty() {
        parts.push(format!("pid {}", join(&args.pids)));
    }
    if !args.comms.is_empty() {
        parts.push(format!("comm {}", args.comms.join(",")));
    }
    if !args.ports.is_empty() {
        parts.push(format!("port {}", join(&args.ports)));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" for {}", parts.join(" and "))
    }
}

fn join<T: ToString>(v: &[T]) -> String {
    v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(",")
}
