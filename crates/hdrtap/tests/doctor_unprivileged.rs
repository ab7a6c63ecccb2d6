//! `hdrtap doctor` without privileges blames the privileges, never the
//! kernel. Root-free: run as root, it drops them in a user namespace first.
#![forbid(unsafe_code)]
use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::time::Duration;

use hdrtap_tests::run_with_timeout;
use serde_json::Value;

#[test]
fn doctor_without_privileges_says_permission_not_unsupported() {
    let bin = env!("CARGO_BIN_EXE_hdrtap");
    let root = std::fs::metadata("/proc/self").unwrap().uid() == 0;
    let mut cmd = if root {
        // uid nobody, no capabilities (files stay readable).
        let mut c = Command::new("unshare");
        c.args(["--user", bin]);
        c
    } else {
        Command::new(bin)
    };
    // -v: the logs on stderr (a pipe here) carry no colour codes.
    cmd.args(["-v", "doctor", "--json"]);
    let out = run_with_timeout(&mut cmd, Duration::from_secs(60));
    assert!(!out.status.success(), "doctor passed without privileges");
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    for c in report["capabilities"].as_array().unwrap() {
        assert_eq!(c["status"], "denied", "{c}");
    }
    let checks = report["checks"].as_array().unwrap();
    let privileges = checks.iter().find(|c| c["name"] == "privileges").unwrap();
    assert_eq!(privileges["status"], "fail", "{privileges}");
    for c in checks {
        let detail = c["detail"].as_str().unwrap_or("");
        for kernel_blame in ["not supported by this kernel", "missing:", "lacks"] {
            assert!(!detail.contains(kernel_blame), "blames the kernel: {c}");
        }
        if c["name"] != "privileges" {
            assert_ne!(c["status"], "fail", "only privileges should fail: {c}");
        }
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("privileges"), "{stderr}");
    assert!(
        stderr.contains("DEBUG") || stderr.contains("INFO"),
        "no -v logs: {stderr}"
    );
    assert!(!stderr.contains('\x1b'), "ANSI codes in a pipe: {stderr:?}");
}
