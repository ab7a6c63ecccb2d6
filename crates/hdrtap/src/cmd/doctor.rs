//! `hdrtap doctor`: print the checks and what each capture can do here;
//! non-zero exit if `hdrtap http` cannot run.
use std::process::ExitCode;

use hdrtap_bpf::doctor::{self, CapStatus, Status};
use serde_json::json;

use crate::cli::DoctorArgs;

pub fn run(args: &DoctorArgs) -> anyhow::Result<ExitCode> {
    if args.tls {
        return super::tls::doctor(args.json);
    }
    let report = doctor::run();
    let failed: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .map(|c| c.name.as_str())
        .collect();
    if args.json {
        print_json(&report);
    } else {
        print_table(&report);
    }
    if failed.is_empty() {
        if !args.json {
            println!("hdrtap can run here.");
        }
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "hdrtap: doctor: {} needed check(s) failed: {}",
            failed.len(),
            failed.join(", ")
        );
        Ok(ExitCode::FAILURE)
    }
}

fn print_table(report: &doctor::Report) {
    let width = report
        .checks
        .iter()
        .map(|c| c.name.len())
        .chain(report.capabilities.iter().map(|c| c.key.len()))
        .max()
        .unwrap_or(10)
        .max(10);
    println!("{:width$}  {:11}  DETAIL", "CHECK", "STATUS");
    for c in &report.checks {
        let status = match c.status {
            Status::Ok if c.name == "kernel" => "info",
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        };
        println!("{:width$}  {:11}  {}", c.name, status, c.detail);
    }
    println!();
    println!("{:width$}  {:11}  DETAIL", "CAPTURE", "STATUS");
    for c in &report.capabilities {
        println!("{:width$}  {:11}  {}", c.key, c.status.as_str(), c.detail);
    }
}

/// One JSON object: the kernel, every check, every capability (the
/// kernel matrix, scripts/kernels.sh, reads the capabilities).
fn print_json(report: &doctor::Report) {
    let status = |s: Status| match s {
        Status::Ok => "ok",
        Status::Warn => "warn",
        Status::Fail => "fail",
    };
    let cap = |s: CapStatus| match s {
        CapStatus::Ok => "ok",
        CapStatus::Fallback => "fallback",
        CapStatus::Unavailable => "unavailable",
        CapStatus::Fail => "fail",
        CapStatus::Denied => "denied",
    };
    let v = json!({
        "kind": "doctor",
        "kernel": report.release,
        "checks": report.checks.iter().map(|c| json!({
            "name": c.name, "status": status(c.status), "detail": c.detail,
        })).collect::<Vec<_>>(),
        "capabilities": report.capabilities.iter().map(|c| json!({
            "key": c.key, "status": cap(c.status), "detail": c.detail,
        })).collect::<Vec<_>>(),
    });
    println!("{v}");
}
