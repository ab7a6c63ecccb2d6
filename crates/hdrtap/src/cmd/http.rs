//! `hdrtap http`: ring buffer → decode → HTTP/1 tracker → redact → output.
use std::cell::RefCell;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use hdrtap_abi::Event;
use hdrtap_bpf::tls::TlsCapture;
use hdrtap_bpf::{caps, sys, HttpOptions, HttpProbe, RingBuffer};
use hdrtap_core::http1::{Http1Tracker, TrackerConfig};
use hdrtap_core::record::{HttpKind, HttpRecord};
use hdrtap_core::redact::Redactor;
use hdrtap_core::rules::{Alert, Rules, RulesConfig};
use hdrtap_core::sink::Record;
use hdrtap_core::stats::Stats;

use super::common::{self, Control, Ids, Output, Session};
use crate::cli::HttpArgs;

/// State the ring-buffer callback works on. The callback only decodes and
/// parses; records are written outside it, so a failing write can never
/// unwind through libbpf (which would abort).
struct Pipeline {
    tracker: Http1Tracker,
    records: Vec<Arc<HttpRecord>>,
    decode_errors: u64,
    panics: u64,
}

pub fn run(args: &HttpArgs) -> anyhow::Result<ExitCode> {
    let ctl = Control::cli(
        args.duration,
        args.stats_interval,
        args.ready_file.clone(),
        args.quiet,
    )?;
    let rules = (!args.no_rules).then(RulesConfig::default);
    let output = || common::direct_output(args.json, args.output.as_deref());
    Ok(common::print_summary(capture(args, rules, output, ctl)?))
}

/// Check privileges, load and attach the HTTP (and TLS) capture, then run
/// it to the end. `make_output` is called once the arguments are checked
/// and before anything is loaded. Returns the summary lines.
pub fn capture(
    args: &HttpArgs,
    rules: Option<RulesConfig>,
    make_output: impl FnOnce() -> anyhow::Result<Output>,
    mut ctl: Control,
) -> anyhow::Result<Vec<String>> {
    let unmet = caps::unmet(&caps::http_needs(), caps::effective());
    if !unmet.is_empty() {
        bail!(
            "hdrtap http needs root or these capabilities: {} (see docs/PRIVILEGES.md)",
            caps::describe_unmet(&unmet)
        );
    }
    let mut output = make_output()?;
    let redactor = Redactor::from_options(args.no_redact, &args.redact)
        .context("cannot get a random redaction key")?;

    let opts = HttpOptions {
        pids: args.pids.clone(),
        comms: args.comms.clone(),
        ports: args.ports.clone(),
        ring_bytes: args.ring_mib << 20,
        call_capture: args.call_capture,
        tls: !args.no_tls,
        ..HttpOptions::default()
    };
    let mut probe = HttpProbe::load(&opts).context("cannot load the HTTP capture programs")?;
    probe
        .attach()
        .context("cannot attach the HTTP capture programs")?;
    let tls = if args.no_tls || !super::tls::privileged() {
        None
    } else {
        super::tls::start(&probe)?
    };

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
    if let Some(tls) = &tls {
        super::tls::name_libraries(&mut pipeline.borrow_mut().tracker, tls.libraries());
    }
    let cb_pipeline = Rc::clone(&pipeline);
    let callback = move |raw: &[u8]| {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let Ok(mut guard) = cb_pipeline.try_borrow_mut() else {
                return;
            };
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
    };
    let ring = match &tls {
        Some(tls) => tls.ring_buffer(&probe, callback),
        None => probe.ring_buffer(callback),
    }
    .context("cannot open the ring buffer")?;

    let filters = describe_filters(args);
    let rules = rules.map(Rules::new);
    let what = format!(
        "tracing HTTP/1.x on TCP{filters} ({} probes attached); {}; redacting {}{}",
        probe.attached(),
        super::tls::describe(tls.as_ref()),
        if redactor.names().is_empty() {
            "nothing".to_string()
        } else {
            redactor.names().join(", ")
        },
        match &rules {
            Some(r) => format!("; {} security rules on", r.enabled().count()),
            None => "; security rules off".to_string(),
        }
    );
    if args.drop_caps {
        // With HTTPS capture, new processes' libraries are hooked at run time.
        let keep = if tls.is_some() {
            super::tls::RUNTIME_CAPS
        } else {
            caps::CapSet::EMPTY
        };
        let kept = caps::drop_except(keep).context("--drop-caps: cannot drop capabilities")?;
        if !args.quiet {
            eprintln!("hdrtap: capabilities dropped; kept: {}", kept.names());
        }
    }
    ctl.take_on_ready()(&what)?;

    let mut session = HttpSession {
        probe: &probe,
        ring,
        pipeline,
        redactor,
        rules,
        alerts: Vec::new(),
        ids: Arc::clone(&ctl.ids),
        stats: Stats::default(),
        tls,
    };
    common::run_loop(&mut session, &mut output, &ctl)
}

struct HttpSession<'a> {
    probe: &'a HttpProbe,
    ring: RingBuffer<'a>,
    pipeline: Rc<RefCell<Pipeline>>,
    redactor: Redactor,
    rules: Option<Rules>,
    alerts: Vec<Alert>,
    ids: Arc<Ids>,
    stats: Stats,
    tls: Option<TlsCapture>,
}

impl Session for HttpSession<'_> {
    type Stats = Stats;
    const SOURCE: &'static str = "http";

    fn poll(&mut self, timeout: Duration) -> anyhow::Result<()> {
        HttpProbe::poll(&self.ring, timeout).context("reading the ring buffer")?;
        // Long bodies just seen: the kernel need not copy the rest of them.
        for skip in self.pipeline.borrow_mut().tracker.take_skips() {
            let dir = skip.dir.index() as u32;
            tracing::debug!(
                conn_id = skip.conn_id,
                dir,
                until = skip.until,
                "asking the kernel to skip a body"
            );
            if let Err(e) = self.probe.skip_body(skip.conn_id, dir, skip.until) {
                // Only an optimisation: the bytes are then copied as before.
                tracing::debug!("cannot ask the kernel to skip a body: {e}");
            }
        }
        // New processes may have brought new TLS libraries: hook them, and
        // name them before their first events are read.
        if let Some(tls) = &mut self.tls {
            let fresh = tls.process(self.probe);
            if !fresh.is_empty() {
                super::tls::name_libraries(&mut self.pipeline.borrow_mut().tracker, fresh);
            }
        }
        Ok(())
    }

    /// Records leave here: each gets its id, the rules look at it before
    /// redaction (alerts never quote secrets), then it is redacted.
    fn drain(&mut self, out: &mut Vec<Record>) {
        let mut records = std::mem::take(&mut self.pipeline.borrow_mut().records);
        for mut shared in records.drain(..) {
            // The tracker's Arc is the only one yet: make_mut never clones.
            let rec = Arc::make_mut(&mut shared);
            rec.id = self.ids.next();
            if let Some(rules) = &mut self.rules {
                rules.check(rec, &mut self.alerts);
            }
            self.redactor.apply(rec);
            out.push(Record::Http(shared));
            for mut alert in self.alerts.drain(..) {
                alert.id = self.ids.next();
                out.push(Record::Alert(Arc::new(alert)));
            }
        }
        // Give the allocation back for reuse.
        let mut p = self.pipeline.borrow_mut();
        if p.records.is_empty() {
            p.records = records;
        }
    }

    fn count(&mut self, rec: &Record) {
        match rec {
            Record::Http(r) => {
                self.stats.records += 1;
                match r.kind {
                    HttpKind::Request => self.stats.requests += 1,
                    HttpKind::Response => self.stats.responses += 1,
                }
            }
            Record::Alert(_) => self.stats.alerts += 1,
            Record::Packet(_) | Record::Stats(_) => {}
        }
    }

    /// Take what is still in the ring buffer and end every connection (a
    /// header block still open becomes a record flagged incomplete).
    fn finish(&mut self) {
        let _ = self.ring.consume();
        let mut guard = self.pipeline.borrow_mut();
        let p = &mut *guard;
        p.tracker.close_all(&mut p.records);
    }

    fn stats(&mut self) -> &Stats {
        refresh_stats(self.probe, &self.pipeline, &mut self.stats);
        self.stats.tls_libraries = self.tls.as_ref().map_or(0, |t| t.libraries().len() as u64);
        &self.stats
    }

    fn ring_fill(&self) -> Option<(u64, u64)> {
        hdrtap_bpf::ring_fill(&self.ring)
    }

    fn output_error(&mut self) {
        self.stats.output_errors += 1;
    }

    fn summary(&self) -> Vec<String> {
        let mut lines = vec![self.stats.summary()];
        let panics = self.pipeline.borrow().panics;
        if panics > 0 {
            lines.push(format!("hdrtap: {panics} events hit an internal error and were dropped (please report this)"));
        }
        lines
    }
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
    stats.budget_drops = t.budget_drops;
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
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(",")
}
