//! HTTPS helpers: the statically linked OpenSSL client, the http.client
//! client, and checks that TLS capture left no ciphertext records behind.
use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
    time::Duration,
};

use serde_json::Value;

use crate::*;

/// `tests/tls_static/tls_client.c` built once per test process, linked
/// statically against OpenSSL (`libssl.a`, `libcrypto.a`; libc dynamic), as
/// a new file: one no process maps before the test runs it. It goes next to
/// the test binaries (`target/debug/tlsstatic/<pid>/tlsstatic`; the name is
/// the process's comm, which tests check), replacing the previous process's
/// build, so test runs leave nothing in /tmp.
pub fn static_client_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // target/debug/deps/<test binary> -> target/debug/tlsstatic
        let exe = std::env::current_exe().unwrap();
        let top = exe
            .ancestors()
            .nth(2)
            .expect("test binary under target/<profile>/deps")
            .join("tlsstatic");
        // Test binaries run one at a time: the previous build is unused.
        let _ = fs::remove_dir_all(&top);
        let dir = top.join(std::process::id().to_string());
        fs::create_dir_all(&dir).unwrap();
        let src = workspace_root().join("tests/tls_static/tls_client.c");
        let bin = dir.join("tlsstatic");
        let out = run_with_timeout(
            Command::new("cc")
                .args(["-O1", "-Wall", "-o"])
                .arg(&bin)
                .arg(&src)
                .args(["-l:libssl.a", "-l:libcrypto.a", "-lpthread", "-ldl"]),
            Duration::from_secs(120),
        );
        assert!(
            out.status.success(),
            "building {} against libssl.a failed (apt-get install libssl-dev build-essential): {}",
            src.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        bin
    })
    .clone()
}

/// When the static client should stop and wait for [`RawClient::go`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaticWait {
    No,
    /// Before connecting (no socket yet).
    BeforeConnect,
    /// After the TLS handshake (holding its TCP socket).
    AfterHandshake,
}

/// Start the static OpenSSL client (`bin`, see [`static_client_bin`]):
/// `count` GETs on one keep-alive HTTPS connection to host:port.
pub fn static_client(
    bin: &Path,
    host: &str,
    port: u16,
    count: u32,
    test_id: &str,
    wait: StaticWait,
) -> RawClient {
    let mut args = vec![
        host.to_string(),
        port.to_string(),
        count.to_string(),
        test_id.to_string(),
    ];
    match wait {
        StaticWait::No => {}
        StaticWait::BeforeConnect => args.extend(["--wait".into(), "before-connect".into()]),
        StaticWait::AfterHandshake => args.extend(["--wait".into(), "after-handshake".into()]),
    }
    RawClient::spawn_program(&bin.display().to_string(), args)
}

/// `tests/clients/httpsclient.py`: `count` GETs with Python's http.client
/// over one keep-alive HTTPS connection, reporting the exact plaintext.
pub fn https_client(
    host: &str,
    port: u16,
    count: u32,
    test_id: &str,
    paths: &str,
    headers: &[&str],
) -> ClientRun {
    let mut args = vec![
        clients_dir().join("httpsclient.py").display().to_string(),
        "--host".into(),
        host.into(),
        "--port".into(),
        port.to_string(),
        "--count".into(),
        count.to_string(),
        "--test-id".into(),
        test_id.into(),
        "--paths".into(),
        paths.into(),
    ];
    for h in headers {
        args.push("--header".into());
        args.push(h.to_string());
    }
    RawClient::spawn_program("python3", args).finish()
}

/// The last stats record (hdrtap writes one at exit).
pub fn final_stats(cap: &Capture) -> &Value {
    cap.stats()
        .last()
        .unwrap_or_else(|| panic!("no stats record:\n{}", cap.dump_all()))
}

/// Nothing came from the ciphertext: every HTTP record that involves `port`
/// is a TLS record, and hdrtap counted no parse error, no resync and no
/// undecodable event (it ran with `--port port`, so it saw only this
/// traffic).
pub fn check_no_ciphertext_records(cap: &Capture, port: u16) {
    let plain: Vec<&Value> = cap
        .http()
        .filter(|v| v["local"]["port"] == port || v["remote"]["port"] == port)
        .filter(|v| v["tls"] != true)
        .collect();
    assert!(
        plain.is_empty(),
        "{} record(s) on the HTTPS port {port} did not come from the TLS library (ciphertext parsed?):\n{plain:#?}\n{}",
        plain.len(),
        cap.dump_all()
    );
    let st = final_stats(cap);
    for field in [
        "parse_errors",
        "resyncs",
        "skipped_bytes",
        "decode_errors",
        "gaps",
        "tls_no_fd",
        "tls_busy",
    ] {
        assert_eq!(
            st[field],
            0,
            "stats {field} is not 0: {st}\n{}",
            cap.dump_all()
        );
    }
}

/// The hooked files named in hdrtap's start-up line (`HTTPS via OpenSSL
/// uprobes: a, b; ...`).
pub fn started_with_libraries(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .find_map(|l| l.split("HTTPS via OpenSSL uprobes: ").nth(1))
        .map(|rest| {
            rest.split(';')
                .next()
                .unwrap_or("")
                .split(", ")
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// A copy of the system's `libssl.so.3` (and `libcrypto.so.3`) in a temp dir:
/// a library file (inode) that no running process maps.
pub fn libssl_copy() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("hdrtap-libssl-")
        .tempdir()
        .unwrap();
    for lib in ["libssl.so.3", "libcrypto.so.3"] {
        let src = Path::new("/usr/lib/x86_64-linux-gnu").join(lib);
        fs::copy(&src, dir.path().join(lib))
            .unwrap_or_else(|e| panic!("copy {}: {e} (is libssl3 installed?)", src.display()));
    }
    dir
}
