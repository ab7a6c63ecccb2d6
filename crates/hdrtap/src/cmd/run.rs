//! `hdrtap run`: daemon mode. The captures of a configuration file, each on
//! its own thread with its own session, feed one fanout of sinks; SIGTERM
//! or SIGINT stops the captures, drains, flushes and closes every sink;
//! SIGHUP makes the file sinks reopen their paths.
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use hdrtap_bpf::sys;
use hdrtap_core::sink::{
    Fanout, FileSink, Record, SinkCounters, SinkInfo, SinkSpec, StatsSnapshot, StatusBoard,
    StdoutSink,
};
use hdrtap_export::otlp::OtlpSink;
use hdrtap_export::prom::{Exposition, MetricsServer, PromSink, Traffic};

use super::common::{self, Control, Ids, Output};
use crate::cli::RunArgs;
use crate::config::{self, Plan, SinkKind};

pub fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    if args.print_example_config {
        print!("{}", config::EXAMPLE);
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(path) = &args.check_config {
        let plan = config::load(path)?;
        preflight(&plan)?;
        println!("hdrtap: {} is valid: {}", path.display(), plan.describe());
        return Ok(ExitCode::SUCCESS);
    }
    let Some(path) = &args.config else {
        bail!("hdrtap run needs --config FILE (or --check-config FILE, --print-example-config)");
    };
    let plan = config::load(path)?;
    daemon(plan)
}

/// `--check-config` opens what `run` will open first, as `nginx -t` does:
/// each file sink's path (created if new, never truncated), each
/// Prometheus listen address (bound, then released), the packet capture's
/// interfaces. An OTLP collector is not contacted: the sink waits and
/// retries for one that starts later.
fn preflight(plan: &Plan) -> anyhow::Result<()> {
    for (i, s) in plan.sinks.iter().enumerate() {
        match &s.kind {
            SinkKind::File(o) => {
                hdrtap_core::sink::open_append(&o.path).with_context(|| {
                    format!("sinks[{i}] ({}): cannot open {}", s.name, o.path.display())
                })?;
            }
            SinkKind::Prometheus { listen, .. } => {
                std::net::TcpListener::bind(listen).with_context(|| {
                    format!("sinks[{i}] ({}): cannot listen on {listen}", s.name)
                })?;
            }
            SinkKind::Stdout(_) | SinkKind::Otlp(_) => {}
        }
    }
    if let Some(p) = &plan.packets {
        super::packets::pick_interfaces(&p.interfaces).context("packets.interfaces")?;
    }
    Ok(())
}

/// What a capture thread reports once: attached (with its description) or not.
type Ready = (&'static str, Result<String, String>);

struct CaptureThread {
    name: &'static str,
    handle: JoinHandle<anyhow::Result<Vec<String>>>,
}

/// The built sinks, before the fanout starts them.
struct Sinks {
    specs: Vec<SinkSpec>,
    servers: Vec<MetricsServer>,
    described: Vec<String>,
}

fn build_sinks(
    plan: &Plan,
    board: &Arc<StatusBoard>,
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<(Sinks, Arc<Mutex<Vec<SinkInfo>>>)> {
    let all_sinks: Arc<Mutex<Vec<SinkInfo>>> = Arc::default();
    let mut specs = Vec::new();
    let mut servers = Vec::new();
    let mut described = Vec::new();
    for s in &plan.sinks {
        let counters = Arc::new(SinkCounters::default());
        let sink: Box<dyn hdrtap_core::sink::Sink> = match &s.kind {
            SinkKind::File(o) => Box::new(
                FileSink::open(o.clone(), Arc::clone(&counters)).with_context(|| {
                    format!("sink {}: cannot open {}", s.name, o.path.display())
                })?,
            ),
            SinkKind::Stdout(format) => Box::new(StdoutSink::new(*format, Arc::clone(&counters))),
            SinkKind::Prometheus {
                listen,
                max_hosts,
                max_routes,
            } => {
                let traffic = Arc::new(Mutex::new(Traffic::new(*max_hosts, *max_routes)));
                let server = MetricsServer::start(
                    *listen,
                    Exposition {
                        traffic: Arc::clone(&traffic),
                        board: Arc::clone(board),
                        sinks: Arc::clone(&all_sinks),
                    },
                )
                .with_context(|| format!("sink {}", s.name))?;
                servers.push(server);
                Box::new(PromSink::new(traffic, Arc::clone(&counters)))
            }
            SinkKind::Otlp(o) => Box::new(
                OtlpSink::new(o.clone(), Arc::clone(&counters), Arc::clone(stop))
                    .with_context(|| format!("sink {}", s.name))?,
            ),
        };
        described.push(format!("{} ({})", s.name, s.kind.describe()));
        specs.push(SinkSpec {
            name: s.name.clone(),
            sink_type: s.kind.type_name(),
            kinds: s.kinds,
            queue_records: s.queue_records,
            sink,
            counters,
        });
    }
    *all_sinks.lock().unwrap_or_else(|p| p.into_inner()) = specs
        .iter()
        .map(|s| SinkInfo {
            name: s.name.clone(),
            sink_type: s.sink_type,
            counters: Arc::clone(&s.counters),
        })
        .collect();
    Ok((
        Sinks {
            specs,
            servers,
            described,
        },
        all_sinks,
    ))
}

/// A `{"kind":"stats","source":"sinks"}` record: every sink's counters.
fn sinks_record(infos: &[SinkInfo]) -> Record {
    let ts = sys::realtime_ns();
    let mut fields = Vec::new();
    let mut sinks = serde_json::Map::new();
    for s in infos {
        let c = s.counters.snapshot();
        for (k, v) in [
            ("records", c.records),
            ("errors", c.errors),
            ("dropped_queue", c.dropped_queue),
            ("dropped_failed", c.dropped_failed),
            ("queued", c.queued),
        ] {
            fields.push((format!("{}.{k}", s.name), v));
        }
        let mut obj = serde_json::to_value(c).unwrap_or_default();
        if let Some(m) = obj.as_object_mut() {
            m.insert("type".into(), s.sink_type.into());
        }
        sinks.insert(s.name.clone(), obj);
    }
    let json = serde_json::json!({
        "kind": "stats",
        "ts": hdrtap_core::output::rfc3339_ns(ts),
        "source": "sinks",
        "sinks": sinks,
    })
    .to_string();
    Record::Stats(Arc::new(StatsSnapshot {
        source: "sinks",
        ts_unix_ns: ts,
        fields,
        json,
    }))
}

fn daemon(plan: Plan) -> anyhow::Result<ExitCode> {
    let stop = common::stop_flag()?;
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&hup))
        .context("cannot install the SIGHUP handler")?;
    let board = Arc::new(StatusBoard::default());
    let ids = Arc::new(Ids::default());

    let (sinks, _all) = build_sinks(&plan, &board, &stop)?;
    let Sinks {
        specs,
        servers,
        described,
    } = sinks;
    let fanout = Arc::new(Fanout::start(specs).context("cannot start the sink threads")?);

    let (ready_tx, ready_rx) = mpsc::channel::<Ready>();
    let mut threads: Vec<CaptureThread> = Vec::new();
    let mut plan = plan;
    if let Some((args, rules)) = plan.http.take() {
        let ctl = capture_control(&plan, "http", &stop, &ids, &board, &ready_tx);
        let out = Arc::clone(&fanout);
        let tx = ready_tx.clone();
        threads.push(spawn_capture("http", tx, move || {
            super::http::capture(&args, rules, || Ok(Output::Fanout(out)), ctl)
        })?);
    }
    if let Some(args) = plan.packets.take() {
        let ctl = capture_control(&plan, "packets", &stop, &ids, &board, &ready_tx);
        let out = Arc::clone(&fanout);
        let tx = ready_tx.clone();
        threads.push(spawn_capture("packets", tx, move || {
            super::packets::capture(&args, || Ok(Output::Fanout(out)), ctl)
        })?);
    }
    drop(ready_tx);

    // Every capture attached, or the first failure.
    let mut failure = None;
    for _ in 0..threads.len() {
        match ready_rx.recv() {
            Ok((name, Ok(what))) => {
                if !plan.quiet {
                    eprintln!("hdrtap: {name}: {what}");
                }
            }
            Ok((name, Err(e))) => {
                failure = Some(anyhow!("{name} capture: {e}"));
                break;
            }
            Err(_) => break,
        }
    }
    if let Some(e) = failure {
        stop.store(true, Ordering::Relaxed);
        shutdown(threads, fanout, servers);
        return Err(e);
    }
    // The start-up lines first, then the ready file (see Control::cli).
    if !plan.quiet {
        eprintln!(
            "hdrtap: sinks: {}; SIGTERM to stop, SIGHUP to reopen files",
            described.join(", ")
        );
    }
    if let Err(e) = common::write_ready_file(plan.ready_file.as_deref()) {
        stop.store(true, Ordering::Relaxed);
        shutdown(threads, fanout, servers);
        return Err(e);
    }

    // Until a signal, the deadline, or every capture ends by itself.
    let stats_every = Duration::from_secs(plan.stats_interval);
    let mut next_stats = Instant::now() + stats_every;
    while !stop.load(Ordering::Relaxed) && threads.iter().any(|t| !t.handle.is_finished()) {
        std::thread::sleep(Duration::from_millis(50));
        if hup.swap(false, Ordering::Relaxed) {
            tracing::info!("SIGHUP: reopening output files");
            fanout.reopen();
        }
        if Instant::now() >= next_stats {
            next_stats += stats_every;
            fanout.send(vec![sinks_record(&fanout.sinks())].into());
        }
    }
    stop.store(true, Ordering::Relaxed);
    let (summaries, errors) = join(threads);
    fanout.send(vec![sinks_record(&fanout.sinks())].into());
    let infos = close(fanout);
    for s in servers {
        s.stop();
    }
    for (name, lines) in summaries {
        for line in lines {
            eprintln!(
                "{}",
                line.replacen("hdrtap: ", &format!("hdrtap: {name}: "), 1)
            );
        }
    }
    for s in &infos {
        let c = s.counters.snapshot();
        eprintln!(
            "hdrtap: sink {} ({}): {} records, {} errors, {} dropped (queue full), {} dropped (failed)",
            s.name, s.sink_type, c.records, c.errors, c.dropped_queue, c.dropped_failed
        );
    }
    if let Some(e) = errors.into_iter().next() {
        return Err(e);
    }
    Ok(ExitCode::SUCCESS)
}

fn capture_control(
    plan: &Plan,
    name: &'static str,
    stop: &Arc<AtomicBool>,
    ids: &Arc<Ids>,
    board: &Arc<StatusBoard>,
    ready: &mpsc::Sender<Ready>,
) -> Control {
    let tx = ready.clone();
    Control {
        stop: Arc::clone(stop),
        duration: plan.duration,
        count: None,
        stats_interval: plan.stats_interval,
        interim_summary: false,
        ids: Arc::clone(ids),
        on_ready: Box::new(move |what: &str| {
            let _ = tx.send((name, Ok(what.to_string())));
            Ok(())
        }),
        board: Some(Arc::clone(board)),
    }
}

fn spawn_capture(
    name: &'static str,
    ready: mpsc::Sender<Ready>,
    f: impl FnOnce() -> anyhow::Result<Vec<String>> + Send + 'static,
) -> anyhow::Result<CaptureThread> {
    let handle = std::thread::Builder::new()
        .name(format!("capture-{name}"))
        .spawn(move || {
            let result = f();
            if let Err(e) = &result {
                // Only heard if it failed before attaching; later the
                // receiver is gone and the error comes back through join.
                let _ = ready.send((name, Err(crate::one_line(e))));
            }
            result
        })
        .context("cannot start a capture thread")?;
    Ok(CaptureThread { name, handle })
}

type Summaries = Vec<(&'static str, Vec<String>)>;

fn join(threads: Vec<CaptureThread>) -> (Summaries, Vec<anyhow::Error>) {
    let mut summaries = Vec::new();
    let mut errors = Vec::new();
    for t in threads {
        match t.handle.join() {
            Ok(Ok(lines)) => summaries.push((t.name, lines)),
            Ok(Err(e)) => errors.push(e.context(format!("{} capture", t.name))),
            Err(_) => errors.push(anyhow!(
                "{} capture: internal error (thread panicked)",
                t.name
            )),
        }
    }
    (summaries, errors)
}

/// Close the fanout once the captures let go of it.
fn close(fanout: Arc<Fanout>) -> Vec<SinkInfo> {
    let mut fanout = fanout;
    for _ in 0..100 {
        match Arc::try_unwrap(fanout) {
            Ok(f) => return f.close(),
            Err(f) => {
                fanout = f;
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    tracing::warn!("sinks still in use at exit; not waiting for them");
    fanout.sinks()
}

fn shutdown(threads: Vec<CaptureThread>, fanout: Arc<Fanout>, servers: Vec<MetricsServer>) {
    let _ = join(threads);
    close(fanout);
    for s in servers {
        s.stop();
    }
}
