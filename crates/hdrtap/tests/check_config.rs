//! `hdrtap run --check-config` opens what `run` will open first (`nginx -t`
//! style): file sink paths, Prometheus listen addresses, the packet
//! capture's interfaces. Root-free: nothing is loaded.
#![forbid(unsafe_code)]
use std::fs;
use std::path::Path;
use std::process::Output;

use hdrtap_tests::{assert_one_line_error, run_clean};

fn check(dir: &Path, text: &str) -> Output {
    let f = dir.join("c.toml");
    fs::write(&f, text).unwrap();
    run_clean(
        Path::new(env!("CARGO_BIN_EXE_hdrtap")),
        &["run", "--check-config", f.to_str().unwrap()],
    )
}

#[test]
fn check_config_opens_sinks_and_interfaces() {
    let dir = tempfile::tempdir().unwrap();
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = held.local_addr().unwrap();
    for (text, mention) in [
        (
            "[http]\n[[sinks]]\ntype = \"file\"\npath = \"/nonexistent-dir/x.ndjson\"\n"
                .to_string(),
            "/nonexistent-dir/x.ndjson",
        ),
        (
            format!("[http]\n[[sinks]]\ntype = \"prometheus\"\nlisten = \"{busy}\"\n"),
            "cannot listen",
        ),
        (
            "[packets]\ninterfaces = [\"nosuch0\"]\n[[sinks]]\ntype = \"stdout\"\n".to_string(),
            "nosuch0",
        ),
    ] {
        let out = check(dir.path(), &text);
        assert_one_line_error(&["run", "--check-config", &text], &out, &[mention]);
    }
    // What can be opened passes, and the file is there (created 0600, like
    // nginx -t creates its logs).
    let path = dir.path().join("out.ndjson");
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let text = format!(
        "[http]\n[[sinks]]\ntype = \"file\"\npath = \"{}\"\n[[sinks]]\ntype = \"prometheus\"\nlisten = \"{free}\"\n",
        path.display()
    );
    let out = check(dir.path(), &text);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    drop(held);
}
