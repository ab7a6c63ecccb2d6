//! `hdrtap http`: load and attach the HTTP (and TLS) capture, feed its ring
//! buffer to the pipeline (`hdrtap_core::pipeline::HttpPipeline`: HTTP/1
//! and HTTP/2, rules, redaction), and write what comes out.
use std::cell::RefCell;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use hdrtap_bpf::packets::PacketProbe;
use hdrtap_bpf::tls::TlsCapture;
use hdrtap_bpf::{caps, sys, HttpOptions, HttpProbe, RingBuffer};
use hdrtap_core::cgroup::Cgroups;
use hdrtap_core::filter_http::HttpFilter;
use hdrtap_core::http::HttpTracker;
use hdrtap_core::http1::TrackerConfig;
use hdrtap_core::link::Linker;
use hdrtap_core::pipeline::HttpPipeline;
use hdrtap_core::pipeline::PacketPipeline;
use hdrtap_core::record::HttpKind;
use hdrtap_core::redact::Redactor;
use hdrtap_core::rules::{Rules, RulesConfig};
use hdrtap_core::sink::Record;
use hdrtap_core::stats::LinkCounters;
use hdrtap_core::stats::Stats;
use hdrtap_core::summary::TrafficSummary;
use std::time::Instant;

use super::common::{self, Control, Output, Session};
use crate::cli::{HttpArgs, HttpFilterArgs, HttpScope};

pub fn run(args: &HttpArgs, verbose: u8) -> anyhow::Result<ExitCode> {
    if let Some(file) = &args.read {
        return super::show::read_back(
            file,
            &args.filter,
            &super::show::Out {
                json: args.common.json,
                count: args.common.count,
                view: &args.view,
                verbose,
            },
        );
    }
    check_pids(&args.scope)?;
    let ctl = Control::cli(&args.common)?;
    let rules = (!args.no_rules).then(RulesConfig::default);
    let output =
        || common::direct_output(&args.common, |tty| common::view(&args.view, verbose, tty));
    Ok(common::print_summary(capture(args, rules, output, ctl)?))
}

/// A filter on a process that is not there would show nothing, silently.
pub fn check_pids(scope: &HttpScope) -> anyhow::Result<()> {
    for pid in &scope.pids {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            bail!("no process with pid {pid} (see ps)");
        }
    }
    Ok(())
}

/// The HTTP capture's privileges, or one line naming what is missing
/// (`command`: who needs them).
pub fn require_privileges(command: &str) -> anyhow::Result<()> {
    let unmet = caps::unmet(&caps::http_needs(), caps::effective());
    if !unmet.is_empty() {
        bail!(
            "{command} needs root or these capabilities: {} (see docs/PRIVILEGES.md)",
            caps::describe_unmet(&unmet)
        );
    }
    Ok(())
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
    let source = args.wire.source;
    if !source.packets() && (!args.wire.filter.is_empty() || !args.wire.interfaces.is_empty()) {
        bail!(
            "a filter expression and -i are for packets: add --source packets (or both); the syscall capture is narrowed with --pid, --comm and --port"
        );
    }
    if source == crate::cli::SourceArg::Packets
        && (!args.scope.pids.is_empty() || !args.scope.comms.is_empty())
    {
        bail!("--pid and --comm pick processes, which packets do not name: with --source packets narrow the capture with --port or a filter expression (host 10.0.0.5 and port 80)");
    }
    if source == crate::cli::SourceArg::Packets && args.with_packets.is_some() {
        bail!("--with-packets links syscall records to packets: with --source packets the records come from packets already");
    }
    if source.syscalls() {
        require_privileges("hdrtap http")?;
    }
    let mut output = make_output()?;
    let redactor = Redactor::from_params(
        args.no_redact,
        &args.redact,
        &args.redact_params,
        &args.no_redact_params,
    )
    .context("cannot get a random redaction key")?;

    // --container/--unit: cgroups that do not match are filtered in the
    // kernel too, once classified (a cgroup made later is classified at
    // the next scan; until then userspace's filter alone decides). A cache
    // of its own: its scans must not spend the record cache's rescan
    // budget (one a second), or a record from a cgroup made just after
    // one of them would go unnamed, and --container would drop it.
    let filter = http_filter(&args.filter);
    let mut kernel_cgroups = if filter.by_workload() {
        Cgroups::system().map(Cgroups::tracking_new)
    } else {
        None
    };
    let opts = HttpOptions {
        cgroup_filter: kernel_cgroups.is_some(),
        pids: args.scope.pids.clone(),
        comms: args.scope.comms.clone(),
        ports: args.scope.ports.clone(),
        ring_bytes: args.common.ring_mib << 20,
        call_capture: args.call_capture,
        tls: !args.no_tls,
        ..HttpOptions::default()
    };
    let probe = if source.syscalls() {
        let mut probe = HttpProbe::load(&opts).context("cannot load the HTTP capture programs")?;
        if let Some(cg) = &mut kernel_cgroups {
            filter_cgroups(&probe, cg, &filter);
        }
        probe
            .attach()
            .context("cannot attach the HTTP capture programs")?;
        Some(probe)
    } else {
        kernel_cgroups = None;
        None
    };
    let tls = match &probe {
        Some(probe) if !args.no_tls && super::tls::privileged() => super::tls::start(probe)?,
        _ => None,
    };
    // --source packets|both: the packet capture, its own trackers.
    let wire_cap = if source.packets() {
        Some(super::wire::load(
            &args.wire,
            &args.scope.ports,
            args.common.ring_mib << 20,
        )?)
    } else {
        None
    };

    let h1 = TrackerConfig {
        max_header_bytes: args.max_header_bytes as usize,
        clock_offset_ns: sys::monotonic_to_realtime_offset_ns(),
        ..TrackerConfig::default()
    };
    let h2 = HttpTracker::h2_config_like(&h1);
    let mut names = redactor.names().to_vec();
    if redactor.redacts_never_indexed() {
        names.push("HTTP/2 never-indexed fields".into());
    }
    match redactor.params().len() {
        0 => {}
        n => names.push(format!("{n} query parameters and userinfo in URLs")),
    }
    let rules_cfg = rules;
    let rules = rules_cfg.clone().map(Rules::new);
    let rules_on = rules.as_ref().map(|r| r.enabled().count());
    // The ring-buffer callback only decodes and parses
    // (common::ring_callback); records are written after each poll.
    if Cgroups::system().is_none() {
        tracing::warn!(
            "no cgroup v2 hierarchy at /sys/fs/cgroup: records carry no unit, container or pod"
        );
    }
    let new_pipeline = |redactor: Redactor, rules: Option<Rules>| {
        let p = HttpPipeline::new(
            HttpTracker::new(h1.clone(), h2.clone()),
            redactor,
            rules,
            Arc::clone(&ctl.ids),
        );
        match Cgroups::system() {
            Some(cg) => p.with_cgroups(cg),
            None => p,
        }
    };
    // Packets and syscalls share the redaction key (a secret hashes the
    // same in both) and the rules.
    let wire = match &wire_cap {
        Some(cap) => Some(super::wire::WireSide::new(
            cap,
            new_pipeline(redactor.clone(), rules_cfg.map(Rules::new)),
        )?),
        None => None,
    };
    let pipeline = Rc::new(RefCell::new(new_pipeline(redactor, rules)));
    if let Some(tls) = &tls {
        super::tls::name_libraries(pipeline.borrow_mut().tracker_mut(), tls.libraries());
    }
    let ring = match &probe {
        Some(probe) => {
            let callback = common::ring_callback(&pipeline);
            Some(
                match &tls {
                    Some(tls) => tls.ring_buffer(probe, callback),
                    None => probe.ring_buffer(callback),
                }
                .context("cannot open the ring buffer")?,
            )
        }
        None => None,
    };
    // --with-packets: the packet capture beside it, read in the same loop.
    let packets = match &args.with_packets {
        Some(names) => Some(super::packets::capture_for_link(
            names,
            args.common.ring_mib << 20,
        )?),
        None => None,
    };
    let link = match &packets {
        Some((pprobe, ifaces, _)) => {
            let pipeline = super::packets::pipeline(ifaces, Arc::clone(&ctl.ids), false);
            let ring = super::packets::ring(pprobe, &pipeline)?;
            let wait = Duration::from_millis(args.packets_wait);
            Some(LinkSide {
                probe: pprobe,
                ring,
                pipeline,
                // Packets wait for a record at least ten seconds: a
                // request may sit in the socket that long before it is read.
                linker: Linker::new(
                    wait,
                    wait.max(LINK_KEEP),
                    LINK_MAX_PACKETS,
                    Arc::clone(&ctl.ids),
                ),
                finished: false,
            })
        }
        None => None,
    };

    let filters = describe_filters(args);
    let linking = match &packets {
        Some((_, _, on)) => format!(
            "; linking records to their TCP packets on {on} (records wait {} ms)",
            args.packets_wait
        ),
        None => String::new(),
    };
    let from = match (&probe, &wire_cap) {
        (Some(probe), None) => format!(
            "({} probes attached); {}",
            probe.attached(),
            super::tls::describe(tls.as_ref())
        ),
        (Some(probe), Some(cap)) => format!(
            "({} probes attached); {}; and {}",
            probe.attached(),
            super::tls::describe(tls.as_ref()),
            cap.described
        ),
        (None, Some(cap)) => cap.described.clone(),
        (None, None) => String::new(),
    };
    let what = format!(
        "tracing HTTP/1.x and HTTP/2 on TCP{filters} {from}; redacting {}{}{linking}",
        if names.is_empty() {
            "nothing".to_string()
        } else {
            names.join(", ")
        },
        match rules_on {
            Some(n) => format!("; {n} security rules on"),
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
        if !args.common.quiet {
            eprintln!("hdrtap: capabilities dropped; kept: {}", kept.names());
        }
    }
    ctl.take_on_ready()(&what)?;

    // Which running processes' HTTPS cannot be shown, and why (the
    // survey of `hdrtap doctor --tls`), counted in the stats: looked at
    // once, on a thread of its own, so start-up does not wait for it.
    let uncovered = tls.as_ref().map(|_| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let n = hdrtap_bpf::tls::survey()
                .iter()
                .filter(|p| p.coverage.hidden())
                .count();
            let _ = tx.send(n as u64);
        });
        rx
    });
    let mut session = HttpSession {
        probe: probe.as_ref(),
        ring,
        wire,
        pipeline,
        stats: Stats::default(),
        traffic: TrafficSummary::default(),
        filter,
        kernel_cgroups,
        next_cgroup_scan: Instant::now() + CGROUP_SCAN,
        tls,
        uncovered,
        link,
    };
    common::run_loop(&mut session, &mut output, &ctl)
}

/// How often new cgroups are classified for the kernel's `--container` /
/// `--unit` filter.
const CGROUP_SCAN: Duration = Duration::from_secs(2);

/// Tell the kernel which of the cgroups `cg` learnt since the last call
/// `--container`/`--unit` leave out.
fn filter_cgroups(probe: &HttpProbe, cg: &mut Cgroups, filter: &HttpFilter) {
    let out: Vec<u64> = cg
        .fresh()
        .into_iter()
        .filter(|(_, w)| !filter.workload_matches(Some(w.as_ref())))
        .map(|(id, _)| id)
        .collect();
    let stored = probe.filter_cgroups_out(&out);
    if stored < out.len() {
        tracing::debug!(
            "kernel cgroup filter full: {} cgroups left to the userspace filter",
            out.len() - stored
        );
    }
}

/// How long captured packets wait for a record to claim them at least.
const LINK_KEEP: Duration = Duration::from_secs(10);
/// Packets waiting for a record at most (about 1 KiB each).
const LINK_MAX_PACKETS: usize = 100_000;
/// Polls of the packet ring (256 events each) per turn of the loop at most.
const LINK_POLL_BATCHES: usize = 64;

/// `--with-packets`: the packet capture and the join.
struct LinkSide<'a> {
    probe: &'a PacketProbe,
    ring: RingBuffer<'a>,
    pipeline: Rc<RefCell<PacketPipeline>>,
    linker: Linker,
    /// Capture is stopping: no record waits any more.
    finished: bool,
}

impl LinkSide<'_> {
    /// Read the packet ring without waiting and offer what it held: all
    /// of it, up to LINK_POLL_BATCHES polls (a busy interface must not
    /// wait for the HTTP ring's timeout).
    fn poll(&mut self) -> anyhow::Result<()> {
        for _ in 0..LINK_POLL_BATCHES {
            PacketProbe::poll(&self.ring, Duration::ZERO)
                .context("reading the packet ring buffer")?;
            if hdrtap_bpf::ring_fill(&self.ring).is_none_or(|(used, _)| used == 0) {
                break;
            }
        }
        let now = Instant::now();
        let mut p = self.pipeline.borrow_mut();
        for rec in p.take() {
            self.linker.packet(rec, now);
        }
        Ok(())
    }

    fn counters(&self) -> LinkCounters {
        let kernel = self.probe.counters().unwrap_or_default();
        let get = |i: u32| kernel.get(i as usize).copied().unwrap_or(0);
        let s = &self.linker.stats;
        LinkCounters {
            link_packets_captured: get(hdrtap_abi::HDRTAP_PCTR_EVENTS),
            link_packets_lost: get(hdrtap_abi::HDRTAP_PCTR_RINGBUF_DROPS),
            link_packets_linked: s.packets_linked,
            link_packets_evicted: s.packets_evicted,
            link_records: s.records,
            link_records_incomplete: s.records_incomplete,
        }
    }
}

struct HttpSession<'a> {
    /// The syscall capture (`--source syscalls|both`).
    probe: Option<&'a HttpProbe>,
    ring: Option<RingBuffer<'a>>,
    /// The packet capture (`--source packets|both`).
    wire: Option<super::wire::WireSide<'a>>,
    pipeline: Rc<RefCell<HttpPipeline>>,
    stats: Stats,
    /// The traffic written, for the exit summary.
    traffic: TrafficSummary,
    /// `--method`, `--status`, ...: what is written.
    filter: HttpFilter,
    /// `--container`/`--unit`: the cgroups classified for the kernel's filter.
    kernel_cgroups: Option<Cgroups>,
    next_cgroup_scan: Instant,
    tls: Option<TlsCapture>,
    /// The count of processes whose HTTPS cannot be shown, once surveyed.
    uncovered: Option<std::sync::mpsc::Receiver<u64>>,
    /// `--with-packets`.
    link: Option<LinkSide<'a>>,
}

impl Session for HttpSession<'_> {
    type Stats = Stats;
    const SOURCE: &'static str = "http";

    fn poll(&mut self, timeout: Duration) -> anyhow::Result<()> {
        // Packets before and after the wait: a message's packets are then
        // offered before its record leaves.
        if let Some(link) = &mut self.link {
            link.poll()?;
        }
        match (&self.ring, &mut self.wire) {
            (Some(ring), wire) => {
                HttpProbe::poll(ring, timeout).context("reading the ring buffer")?;
                if let Some(wire) = wire {
                    wire.poll(Duration::ZERO)?;
                }
            }
            (None, Some(wire)) => wire.poll(timeout)?,
            (None, None) => std::thread::sleep(timeout),
        }
        if let Some(link) = &mut self.link {
            link.poll()?;
        }
        // Time-bound records (HTTP/2 resets nothing else carried).
        self.pipeline.borrow_mut().tick(sys::monotonic_ns());
        let Some(probe) = self.probe else {
            return Ok(());
        };
        if let Some(cg) = &mut self.kernel_cgroups {
            let now = Instant::now();
            if now >= self.next_cgroup_scan {
                self.next_cgroup_scan = now + CGROUP_SCAN;
                filter_cgroups(probe, cg, &self.filter);
            }
        }
        // Long bodies just seen: the kernel need not copy the rest of them.
        for skip in self.pipeline.borrow_mut().tracker_mut().take_skips() {
            let dir = skip.dir.index() as u32;
            tracing::debug!(
                conn_id = skip.conn_id,
                dir,
                until = skip.until,
                "asking the kernel to skip a body"
            );
            if let Err(e) = probe.skip_body(skip.conn_id, dir, skip.until) {
                // Only an optimisation: the bytes are then copied as before.
                tracing::debug!("cannot ask the kernel to skip a body: {e}");
            }
        }
        // New processes may have brought new TLS libraries: hook them, and
        // name them before their first events are read.
        if let Some(tls) = &mut self.tls {
            let fresh = tls.process(probe);
            if !fresh.is_empty() {
                super::tls::name_libraries(self.pipeline.borrow_mut().tracker_mut(), fresh);
            }
        }
        Ok(())
    }

    /// Records leave here: ids, rules, redaction (`HttpPipeline::drain`).
    fn drain(&mut self, out: &mut Vec<Record>) {
        let from = out.len();
        self.pipeline.borrow_mut().drain(out);
        if let Some(wire) = &mut self.wire {
            wire.drain(out);
        }
        self.stats.filtered_out += self.filter.retain(out, from);
        if let Some(link) = &mut self.link {
            // Records wait for their packets; those whose wait is over
            // leave, after the packets they link.
            let now = Instant::now();
            link.linker.hold(out.drain(from..), now);
            link.linker.release(now, link.finished, out);
        }
    }

    fn counts(&self, rec: &Record) -> bool {
        // The packets written with --with-packets do not count for -c.
        matches!(rec, Record::Http(_))
    }

    fn count(&mut self, rec: &Record) {
        self.traffic.observe(rec);
        match rec {
            Record::Http(r) => {
                self.stats.records += 1;
                match r.kind {
                    HttpKind::Request => self.stats.requests += 1,
                    HttpKind::Response => self.stats.responses += 1,
                    HttpKind::Trailers => self.stats.trailers += 1,
                    HttpKind::Reset => self.stats.resets += 1,
                }
            }
            Record::Alert(_) => self.stats.alerts += 1,
            Record::Packet(_) | Record::Stats(_) => {}
        }
    }

    /// Take what is still in the ring buffer and end every connection (a
    /// header block still open becomes a record flagged incomplete).
    fn finish(&mut self) {
        if let Some(ring) = &self.ring {
            let _ = ring.consume();
        }
        self.pipeline.borrow_mut().finish();
        if let Some(wire) = &mut self.wire {
            wire.finish();
        }
        if let Some(link) = &mut self.link {
            // The last packets; the records still waiting leave now.
            let _ = link.poll();
            link.finished = true;
        }
    }

    fn stats(&mut self) -> &Stats {
        match (self.probe, &self.wire) {
            (Some(probe), _) => refresh_stats(probe, &self.pipeline, &mut self.stats),
            // Packets only: the trackers' counts are the reassembled streams'.
            (None, Some(wire)) => {
                let w = wire.wire();
                let t = w.pipeline().tracker();
                self.stats.set_trackers(t.http1_stats(), t.http2_stats());
            }
            (None, None) => {}
        }
        self.stats.wire = self.wire.as_ref().map(super::wire::WireSide::counters);
        self.stats.tls_libraries = self.tls.as_ref().map_or(0, |t| t.libraries().len() as u64);
        self.stats.with_packets = self.link.as_ref().map(LinkSide::counters);
        if let Some(n) = self.uncovered.as_ref().and_then(|rx| rx.try_recv().ok()) {
            self.stats.tls_uncovered_processes = n;
            self.uncovered = None;
        }
        &self.stats
    }

    fn ring_fill(&self) -> Option<(u64, u64)> {
        match (&self.ring, &self.wire) {
            (Some(ring), _) => hdrtap_bpf::ring_fill(ring),
            (None, Some(wire)) => wire.ring_fill(),
            (None, None) => None,
        }
    }

    fn output_error(&mut self) {
        self.stats.output_errors += 1;
    }

    fn summary(&self) -> Vec<String> {
        let mut lines = self.traffic.lines();
        lines.push(self.stats.summary());
        if let Some(link) = &self.stats.with_packets {
            lines.push(link.summary());
        }
        if let Some(wire) = &self.stats.wire {
            lines.push(wire.summary());
        }
        let panics = self.pipeline.borrow().panics + self.wire.as_ref().map_or(0, |w| w.panics());
        if panics > 0 {
            lines.push(format!("hdrtap: {panics} events hit an internal error and were dropped (please report this)"));
        }
        lines
    }
}

/// The HTTP filters of `args` (checked when they were parsed).
pub fn http_filter(args: &HttpFilterArgs) -> HttpFilter {
    use hdrtap_core::filter_http::parse_glob;
    use hdrtap_core::record::Role;
    HttpFilter {
        methods: args.methods.clone(),
        path: args.path.as_deref().and_then(|p| parse_glob(p).ok()),
        host: args
            .host
            .as_deref()
            .and_then(|h| parse_glob(&h.to_ascii_lowercase()).ok()),
        status: args.status.clone(),
        header: args.header.as_ref().map(|h| match h.split_once('=') {
            Some((n, v)) => (n.to_ascii_lowercase(), Some(v.to_string())),
            None => (h.to_ascii_lowercase(), None),
        }),
        min_latency_ns: args.min_latency,
        side: args.side.map(|s| match s {
            crate::cli::SideArg::Client => Role::Client,
            crate::cli::SideArg::Server => Role::Server,
        }),
        containers: args.containers.clone(),
        units: args.units.clone(),
    }
}

fn refresh_stats(probe: &HttpProbe, pipeline: &Rc<RefCell<HttpPipeline>>, stats: &mut Stats) {
    match probe.counters() {
        Ok(c) => stats.set_kernel(&c),
        Err(e) => tracing::warn!("cannot read kernel counters: {e}"),
    }
    let p = pipeline.borrow();
    stats.set_trackers(p.tracker().http1_stats(), p.tracker().http2_stats());
    stats.decode_errors = p.decode_errors;
}

fn describe_filters(args: &HttpArgs) -> String {
    let mut parts = Vec::new();
    if !args.scope.pids.is_empty() {
        parts.push(format!("pid {}", join(&args.scope.pids)));
    }
    if !args.scope.comms.is_empty() {
        parts.push(format!("comm {}", args.scope.comms.join(",")));
    }
    if !args.scope.ports.is_empty() {
        parts.push(format!("port {}", join(&args.scope.ports)));
    }
    if !args.filter.methods.is_empty() {
        parts.push(format!("method {}", args.filter.methods.join(",")));
    }
    for (what, v) in [
        ("path", &args.filter.path),
        ("host", &args.filter.host),
        ("header", &args.filter.header),
    ] {
        if let Some(v) = v {
            parts.push(format!("{what} {v}"));
        }
    }
    if !args.filter.status.is_empty() {
        let s: Vec<String> = args.filter.status.iter().map(|s| s.to_string()).collect();
        parts.push(format!("status {}", s.join(",")));
    }
    if let Some(ns) = args.filter.min_latency {
        parts.push(format!("latency >= {} ms", ns as f64 / 1e6));
    }
    if let Some(side) = args.filter.side {
        parts.push(format!("{side:?} side").to_lowercase());
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
