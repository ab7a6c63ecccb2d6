//! `hdrtap doctor`: print the checks as a table; non-zero exit if a needed one fails.
use std::process::ExitCode;

use hdrtap_bpf::doctor::{self, Status};

use crate::cli::DoctorArgs;

pub fn run(args: &DoctorArgs) -> anyhow::Result<ExitCode> {
    if args.tls {
        return super::tls::doctor();
    }
    let checks = doctor::run();
    let width = checks
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(10)
        .max(5);
    println!("{:width$}  {:6}  DETAIL", "CHECK", "STATUS");
    for c in &checks {
        let status = match c.status {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        };
        println!("{:width$}  {:6}  {}", c.name, status, c.detail);
    }
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .map(|c| c.name.as_str())
        .collect();
    if failed.is_empty() {
        println!("hdrtap can run here.");
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
