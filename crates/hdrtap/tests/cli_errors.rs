//! The command line's errors for bad arguments, checked without root or a
//! kernel: clap rejects them before anything is loaded. Part of a plain
//! `cargo test` (the root-only tests are in the hdrtap-tests crate).
#![forbid(unsafe_code)]
use std::{path::Path, process::Output};

use hdrtap_tests::{assert_one_line_error, run_clean};

/// The hdrtap this test was built with, with a clean environment: what a
/// user sees by default.
fn hdrtap(args: &[&str]) -> Output {
    run_clean(Path::new(env!("CARGO_BIN_EXE_hdrtap")), args)
}

#[test]
fn bad_port_value_is_one_line_error() {
    let args = ["http", "--port", "notaport"];
    assert_one_line_error(&args, &hdrtap(&args), &["notaport"]);
}

#[test]
fn out_of_range_port_is_one_line_error() {
    let args = ["http", "--port", "70000"];
    assert_one_line_error(&args, &hdrtap(&args), &["70000"]);
}

#[test]
fn unknown_flag_is_one_line_error() {
    let args = ["http", "--bogus"];
    assert_one_line_error(&args, &hdrtap(&args), &["--bogus"]);
}
