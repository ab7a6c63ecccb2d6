//! The TLS parts of the commands: starting OpenSSL capture for `hdrtap
//! http`, naming hooked libraries in the tracker, and `hdrtap doctor --tls`.
use std::process::ExitCode;

use anyhow::Context;
use hdrtap_bpf::tls::{self, Coverage, TlsCapture, TlsLibrary};
use hdrtap_bpf::{BpfError, HttpProbe};
use hdrtap_core::http1::Http1Tracker;

/// Hook OpenSSL in every running process and watch new ones. A failure is a
/// warning (plaintext HTTP still works), except missing privileges.
pub fn start(probe: &HttpProbe) -> anyhow::Result<Option<TlsCapture>> {
    match TlsCapture::start(probe) {
        Ok(t) => Ok(Some(t)),
        Err(e @ BpfError::Permission) => Err(e).context("cannot attach the TLS uprobes"),
        Err(e) => {
            eprintln!("hdrtap: warning: HTTPS capture is off: {e}");
            Ok(None)
        }
    }
}

/// Tell the tracker what the library ids of TLS events stand for.
pub fn name_libraries(tracker: &mut Http1Tracker, libs: &[TlsLibrary]) {
    for lib in libs {
        tracker.set_tls_library(lib.id, &lib.name);
    }
}

/// The TLS part of the start-up line.
pub fn describe(tls: Option<&TlsCapture>) -> String {
    let Some(tls) = tls else {
        return "HTTPS: off".to_string();
    };
    let mut names: Vec<String> = tls
        .libraries()
        .iter()
        .map(|l| {
            if l.static_binary {
                format!("{} (static)", l.name)
            } else {
                l.name.clone()
            }
        })
        .collect();
    names.sort();
    names.dedup();
    let found = if names.is_empty() {
        "no OpenSSL found yet".to_string()
    } else {
        names.join(", ")
    };
    let watch = if tls.exec_watch() {
        ""
    } else {
        ", new processes NOT watched"
    };
    format!("HTTPS via OpenSSL uprobes: {found}{watch}")
}

/// `hdrtap doctor --tls`: one line per process with TCP sockets.
pub fn doctor() -> anyhow::Result<ExitCode> {
    let procs = tls::survey();
    let comm_w = procs.iter().map(|p| p.comm.len()).max().unwrap_or(4).max(4);
    println!(
        "{:>7}  {:comm_w$}  {:>4}  {:11}  DETAIL",
        "PID", "COMM", "TCP", "HTTPS"
    );
    let mut covered = 0;
    for p in &procs {
        let (status, detail) = match &p.coverage {
            Coverage::Library { name, path } => ("covered", format!("by {name} ({path})")),
            Coverage::Static { path } => ("covered", format!("OpenSSL linked into {path} (static, symbols present)")),
            Coverage::Unsupported(why) => ("NOT covered", why.clone()),
            Coverage::Stripped { path } => (
                "unknown",
                format!("{path} is stripped and uses no OpenSSL library: TLS built into it cannot be hooked"),
            ),
            Coverage::None => ("no TLS", "no TLS library found (plain TCP only)".to_string()),
        };
        if p.coverage.covered() {
            covered += 1;
        }
        println!(
            "{:>7}  {:comm_w$}  {:>4}  {:11}  {detail}",
            p.pid, p.comm, p.tcp_sockets, status
        );
    }
    println!(
        "{} process(es) with TCP sockets; HTTPS shown in cleartext for {covered} (OpenSSL 3.x; 1.1.x has the same symbols but is untested).",
        procs.len()
    );
    Ok(ExitCode::SUCCESS)
}
