//! `hdrtap show FILE` and `hdrtap http -r FILE`: saved NDJSON read back
//! (`hdrtap_core::readback`), through the HTTP filters of `hdrtap http`,
//! drawn as readable records (or written again as NDJSON), with the traffic
//! summary on stderr. Lines that are not records are counted and said.
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, ErrorKind};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use hdrtap_bpf::sys;
use hdrtap_core::output::{Format, Writer};
use hdrtap_core::readback::{parse_line, ReadRecord};
use hdrtap_core::record::{CompactString, HttpKind, HttpRecord, Role};
use hdrtap_core::sink::Record;
use hdrtap_core::summary::TrafficSummary;

use super::common;
use crate::cli::{HttpFilterArgs, ShowArgs, ViewArgs};

/// How the records read are written.
pub struct Out<'a> {
    /// NDJSON (each kept line as read) instead of readable lines.
    pub json: bool,
    /// Stop after this many HTTP records.
    pub count: Option<u64>,
    pub view: &'a ViewArgs,
    /// `-v`: every header on a line of its own.
    pub verbose: u8,
}

pub fn run(args: &ShowArgs, verbose: u8) -> anyhow::Result<ExitCode> {
    read_back(
        &args.file,
        &args.filter,
        &Out {
            json: args.json,
            count: args.count,
            view: &args.view,
            verbose,
        },
    )
}

/// Dropped record ids remembered at most, for their alerts (which follow
/// their record within one drain, so a short memory suffices).
const DROPPED_IDS: usize = 100_000;

/// What was read, for the summary.
#[derive(Default)]
struct Counts {
    lines: u64,
    shown: u64,
    filtered_out: u64,
    alerts: u64,
    stats: u64,
    packets: u64,
    unreadable: u64,
}

/// Read `file` (`-`: stdin), keep what `filter` keeps, write it to stdout.
pub fn read_back(file: &Path, filter: &HttpFilterArgs, out: &Out) -> anyhow::Result<ExitCode> {
    let name = file.display().to_string();
    let input: Box<dyn BufRead> = if file.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let f = std::fs::File::open(file).with_context(|| format!("cannot open {name}"))?;
        Box::new(BufReader::with_capacity(1 << 20, f))
    };
    let tty = sys::is_tty(1);
    let format = if out.json {
        Format::Json
    } else {
        Format::Human
    };
    let mut writer = Writer::stdout(format, !out.json && tty).with_view(common::view(
        out.view,
        out.verbose,
        tty,
    ));
    let filter = super::http::http_filter(filter);
    let mut traffic = TrafficSummary::default();
    let mut n = Counts::default();
    // Responses carry their request's method and target but not its Host
    // (for --host): taken from the request read on the same connection,
    // side and stream.
    let mut hosts: HashMap<(u64, Role, u32), CompactString> = HashMap::new();
    let mut dropped: HashSet<u64> = HashSet::new();
    let mut left = out.count;
    let mut last_kept: Option<u64> = None;

    for (i, line) in input.split(b'\n').enumerate() {
        let line = line.with_context(|| format!("cannot read {name}"))?;
        let text = String::from_utf8_lossy(&line);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        n.lines += 1;
        let rec = match parse_line(text) {
            Ok(ReadRecord::Http(r)) => {
                if left == Some(0) {
                    break;
                }
                Record::Http(Arc::new(with_request_host(*r, &mut hosts)))
            }
            Ok(ReadRecord::Alert(a)) => Record::Alert(Arc::new(a)),
            Ok(ReadRecord::Stats(_)) => {
                n.stats += 1;
                continue;
            }
            Ok(ReadRecord::Packet) => {
                n.packets += 1;
                continue;
            }
            Err(e) => {
                n.unreadable += 1;
                if n.unreadable == 1 {
                    eprintln!(
                        "hdrtap: warning: {name}:{}: not an hdrtap record: {e} (skipped; lines like it are counted)",
                        i + 1
                    );
                }
                continue;
            }
        };
        let keep = match &rec {
            Record::Http(r) => {
                let keep = filter.matches(r);
                if keep {
                    last_kept = Some(r.id);
                    left = left.map(|l| l.saturating_sub(1));
                } else {
                    n.filtered_out += 1;
                    if dropped.len() >= DROPPED_IDS {
                        dropped.clear();
                    }
                    dropped.insert(r.id);
                }
                keep
            }
            // After -c N records, only the alerts on the last one.
            Record::Alert(a) if left == Some(0) => last_kept == Some(a.record_id),
            Record::Alert(a) => !dropped.contains(&a.record_id),
            _ => true,
        };
        if !keep {
            continue;
        }
        let written = if out.json {
            // The line as read: fields this hdrtap does not know stay.
            writer.write_raw_line(text.as_bytes())
        } else {
            writer.write(&rec)
        };
        if let Err(e) = written {
            if e.kind() == ErrorKind::BrokenPipe {
                break;
            }
            return Err(e).context("cannot write to stdout");
        }
        traffic.observe(&rec);
        match rec {
            Record::Alert(_) => n.alerts += 1,
            _ => n.shown += 1,
        }
    }
    match writer.flush() {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => {}
        r => r.context("cannot write to stdout")?,
    }
    let mut summary = traffic.lines();
    summary.push(summary_line(&name, &n));
    for line in summary {
        eprintln!("{line}");
    }
    Ok(if n.unreadable > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// A response (or trailers, reset) given the Host of its request, if that
/// request was read; a request remembers its Host for them.
fn with_request_host(
    mut r: HttpRecord,
    hosts: &mut HashMap<(u64, Role, u32), CompactString>,
) -> HttpRecord {
    let key = (r.conn_id, r.role, r.stream_id().unwrap_or(0));
    if r.kind == HttpKind::Request {
        let host =
            r.h2.as_ref()
                .and_then(|h| h.authority.clone())
                .or_else(|| r.header("host").map(CompactString::from));
        if let Some(h) = host {
            if hosts.len() >= DROPPED_IDS {
                hosts.clear();
            }
            hosts.insert(key, h);
        }
    } else if let Some(req) = &mut r.request {
        req.host = hosts.get(&key).cloned();
    }
    r
}

fn summary_line(name: &str, n: &Counts) -> String {
    let mut parts = vec![
        format!("{} records shown", n.shown),
        format!("{} filtered out", n.filtered_out),
        format!("{} alerts", n.alerts),
    ];
    if n.packets > 0 {
        parts.push(format!(
            "{} packet records not shown (hdrtap show draws HTTP records and alerts)",
            n.packets
        ));
    }
    if n.stats > 0 {
        parts.push(format!("{} stats records", n.stats));
    }
    if n.unreadable > 0 {
        parts.push(format!("{} unreadable lines skipped", n.unreadable));
    }
    format!(
        "hdrtap: read {} lines of {name}: {}",
        n.lines,
        parts.join(", ")
    )
}
