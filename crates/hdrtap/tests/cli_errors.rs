//! The command line's errors for bad arguments, and `--version`, checked without root or a
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

#[test]
fn a_mistyped_flag_gets_the_suggestion_and_the_subcommands_help() {
    let args = ["http", "--cmm", "nginx"];
    let out = hdrtap(&args);
    assert_one_line_error(&args, &out, &["--cmm"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("'--comm'"), "no suggestion: {err}");
    assert!(err.contains("hdrtap http --help"), "{err}");
}

/// An unknown option is an error naming it, never a word of the filter.
#[test]
fn packets_unknown_option_is_not_a_filter_word() {
    let args = ["packets", "--bogus", "tcp"];
    let out = hdrtap(&args);
    assert_one_line_error(&args, &out, &["--bogus"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("filter"), "{err}");
    assert!(err.contains("hdrtap packets --help"), "{err}");
}

/// `--pid` of a process that is not there: an error, not an empty capture.
#[test]
fn pid_of_no_process_is_an_error() {
    // pid_max itself is never a pid.
    let pid = std::fs::read_to_string("/proc/sys/kernel/pid_max").unwrap();
    let args = ["http", "--pid", pid.trim()];
    assert_one_line_error(&args, &hdrtap(&args), &["no process with pid"]);
}

/// `--version` names the commit built and what the build can do.
#[test]
fn version_names_the_commit_and_the_features() {
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("git");
    assert!(head.status.success(), "git rev-parse failed");
    let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
    let out = hdrtap(&["--version"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("(commit {head})")), "{text}");
    for what in ["captures:", "sinks:", "otlp"] {
        assert!(text.contains(what), "{what}: {text}");
    }
}

/// A flag that needs another says which, on the one line.
#[test]
fn print_without_an_output_file_names_what_is_missing() {
    let args = ["http", "--print"];
    assert_one_line_error(&args, &hdrtap(&args), &["--output <PATH>"]);
    let args = ["packets", "--hook", "kprobe"];
    assert_one_line_error(&args, &hdrtap(&args), &["possible values: tc, xdp, socket"]);
}

/// `hdrtap top` draws on a terminal: into a pipe or a file it refuses at
/// once, with one line pointing at what works there.
#[test]
fn top_without_a_terminal_is_one_line_error() {
    let args = ["top"];
    let out = hdrtap(&args);
    assert_one_line_error(&args, &out, &["needs a terminal"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("hdrtap http --json"), "{err}");
    assert!(out.stdout.is_empty(), "wrote to stdout: {:?}", out.stdout);
}

/// `hdrtap http`'s packet options without `--source packets|both`, and
/// process scopes with packets only: one line saying what to do instead.
#[test]
fn packet_options_need_the_packet_source() {
    let args = ["http", "port", "80"];
    assert_one_line_error(&args, &hdrtap(&args), &["--source packets"]);
    let args = ["http", "-i", "lo"];
    assert_one_line_error(&args, &hdrtap(&args), &["--source packets"]);
    let args = ["http", "--source", "packets", "--comm", "nginx"];
    assert_one_line_error(&args, &hdrtap(&args), &["--pid and --comm"]);
    let args = ["http", "--source", "packets", "--hook", "xdp"];
    assert_one_line_error(&args, &hdrtap(&args), &["xdp"]);
    let args = ["http", "--source", "packets", "-s", "10"];
    assert_one_line_error(&args, &hdrtap(&args), &["10"]);
    let args = ["http", "--source", "wire"];
    assert_one_line_error(&args, &hdrtap(&args), &["wire"]);
}
