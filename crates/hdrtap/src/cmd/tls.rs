//! The TLS parts of the commands: starting OpenSSL capture for `hdrtap
//! http`, naming hooked libraries in the tracker, and `hdrtap doctor --tls`.
use std::process::ExitCode;

use anyhow::Context;
use hdrtap_bpf::tls::{self, Coverage, TlsCapture, TlsLibrary};
use hdrtap_bpf::{caps, BpfError, HttpProbe};
use hdrtap_core::http::HttpTracker;

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

/// What HTTPS capture keeps with `--drop-caps`: hooking OpenSSL in processes
/// started later reads their /proc files and attaches uprobes.
pub const RUNTIME_CAPS: caps::CapSet = caps::CapSet(
    1 << 2 // CAP_DAC_READ_SEARCH
        | 1 << 19 // CAP_SYS_PTRACE
        | 1 << 21 // CAP_SYS_ADMIN
        | 1 << 38 // CAP_PERFMON
        | 1 << 39, // CAP_BPF
);

/// Whether HTTPS capture can work with this process's capabilities. Without
/// CAP_SYS_ADMIN (uprobes) it is off; without CAP_SYS_PTRACE it only finds
/// OpenSSL in processes of hdrtap's own user. Either way one warning line
/// names what is missing; plain HTTP is not affected.
pub fn privileged() -> bool {
    let unmet = caps::unmet(&caps::tls_needs(), caps::effective());
    if unmet.is_empty() {
        return true;
    }
    let off = unmet.iter().any(|n| n.cap == caps::Cap::SYS_ADMIN);
    eprintln!(
        "hdrtap: warning: HTTPS capture is {}: {} (use --no-tls to silence this)",
        if off {
            "off"
        } else {
            "limited to this user's processes"
        },
        caps::describe_unmet(&unmet)
    );
    !off
}

/// Tell the tracker what the library ids of TLS events stand for.
pub fn name_libraries(tracker: &mut HttpTracker, libs: &[TlsLibrary]) {
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
        "no OpenSSL or GnuTLS found yet".to_string()
    } else {
        names.join(", ")
    };
    let watch = if tls.exec_watch() {
        ""
    } else {
        ", new processes NOT watched"
    };
    format!("HTTPS via TLS library uprobes: {found}{watch}")
}

/// `hdrtap doctor --tls`: one line per process with TCP sockets (with
/// `json`: one JSON array of objects, the same fields).
pub fn doctor(json: bool) -> anyhow::Result<ExitCode> {
    let procs = tls::survey();
    let rows: Vec<(&tls::ProcessTls, &str, String)> = procs
        .iter()
        .map(|p| {
            let (status, detail) = coverage_text(&p.coverage);
            (p, status, detail)
        })
        .collect();
    let covered = procs.iter().filter(|p| p.coverage.covered()).count();
    if json {
        let list: Vec<serde_json::Value> = rows
            .iter()
            .map(|(p, status, detail)| {
                serde_json::json!({
                    "pid": p.pid,
                    "comm": p.comm,
                    "exe": p.exe,
                    "tcp_sockets": p.tcp_sockets,
                    "https": status,
                    "detail": detail,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(list));
        return Ok(ExitCode::SUCCESS);
    }
    let comm_w = procs.iter().map(|p| p.comm.len()).max().unwrap_or(4).max(4);
    println!(
        "{:>7}  {:comm_w$}  {:>4}  {:11}  DETAIL",
        "PID", "COMM", "TCP", "HTTPS"
    );
    for (p, status, detail) in &rows {
        println!(
            "{:>7}  {:comm_w$}  {:>4}  {:11}  {detail}",
            p.pid, p.comm, p.tcp_sockets, status
        );
    }
    println!(
        "{} process(es) with TCP sockets; HTTPS shown in cleartext for {covered} (OpenSSL 3.x, GnuTLS 3.7, Go crypto/tls 1.17+; OpenSSL 1.1.x has the same symbols but is untested).",
        procs.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// The HTTPS column (`covered`, `NOT covered`, `unknown`, `no TLS`) and
/// the detail of one process's coverage.
fn coverage_text(c: &Coverage) -> (&'static str, String) {
    match c {
        Coverage::Library { name, path } => ("covered", format!("by {name} ({path})")),
        Coverage::Static {
            path,
            stack,
            symbols,
        } => (
            "covered",
            format!(
                "{stack} linked into {path} (static, {})",
                if *symbols {
                    "symbols present"
                } else {
                    "stripped: functions found through .gopclntab"
                }
            ),
        ),
        Coverage::Unsupported(why) => ("NOT covered", why.clone()),
        Coverage::Stripped { path } => (
            "unknown",
            format!("{path} is stripped and uses no OpenSSL or GnuTLS library, and is not Go: TLS built into it cannot be hooked"),
        ),
        Coverage::None => ("no TLS", "no TLS library found (plain TCP only)".to_string()),
    }
}
