//! A stalled sink: `hdrtap http -o FILE` on a file system that fills up
//! (a 256 KiB tmpfs this test mounts). Capture goes on while writes fail,
//! every record that could not be written is counted (summary and stats),
//! no partial line is left in the file, and once space is back the records
//! that follow are written again; the exit status is 1 (records were lost).
//! Root only.
#![forbid(unsafe_code)]
use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    thread,
    time::{Duration, Instant},
};

use hdrtap_tests::*;

/// A small tmpfs mounted on a temp dir; unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "hdrtap-test",
            ])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mount tmpfs: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .output();
    }
}

fn free_bytes(p: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(p)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0)
}

fn lines_of(p: &Path) -> Vec<Value> {
    let text = fs::read_to_string(p).unwrap_or_default();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "the output ends in a partial line: ...{:?}",
        &text[text.len().saturating_sub(120)..]
    );
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("line {} is not complete JSON ({e}): {l:?}", i + 1))
        })
        .collect()
}

#[test]
fn full_file_system_drops_are_counted_and_capture_goes_on() {
    let _guard = setup();
    let fs_ = Tmpfs::mount("256k");
    // Leave about 16 KiB free.
    let filler = fs_.path().join("filler");
    let free = free_bytes(fs_.path());
    fs::write(
        &filler,
        vec![b'x'; (free.saturating_sub(16 * 1024)) as usize],
    )
    .unwrap();
    let nginx = Nginx::start();
    let work = tempfile::tempdir().unwrap();
    let output: PathBuf = fs_.path().join("out.ndjson");
    let ready = work.path().join("ready");
    let stderr = work.path().join("stderr");
    let mut child = spawn_until_ready(
        Command::new(hdrtap_bin())
            .args([
                "http",
                "--json",
                "--no-tls",
                "--stats-interval",
                "1",
                "--port",
            ])
            .arg(nginx.port.to_string())
            .arg("-o")
            .arg(&output)
            .arg("--ready-file")
            .arg(&ready),
        &ready,
        &stderr,
        "hdrtap http",
    );

    // 150 exchanges: about 600 records, far more than 16 KiB.
    let id_a = unique_id("full");
    let run_a = raw_client(&RawOpts::new("127.0.0.1", nginx.port, "normal", 150, &id_a));
    thread::sleep(Duration::from_millis(1500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "hdrtap died on a full file system:\n{}",
        fs::read_to_string(&stderr).unwrap_or_default()
    );
    assert!(
        free_bytes(fs_.path()) < 4096,
        "the file system did not fill up"
    );

    // Space again: capture never stopped, so what follows is written.
    fs::remove_file(&filler).unwrap();
    let id_b = unique_id("after");
    let run_b = raw_client(&RawOpts::new("127.0.0.1", nginx.port, "normal", 5, &id_b));
    let want_b = run_b.expected_records(2);
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    let count_b = || {
        fs::read_to_string(&output)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(&id_b))
            .count()
    };
    while count_b() < want_b && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
    }

    send_signal(child.id(), libc::SIGTERM);
    let status = wait_timeout(&mut child, STOP_TIMEOUT).expect("hdrtap did not stop");
    let err = fs::read_to_string(&stderr).unwrap_or_default();
    // Records were lost to the full disk: said at once, and the exit status is 1.
    assert_eq!(status.code(), Some(1), "hdrtap exited {status}:\n{err}");
    assert!(err.contains("warning: cannot write records"), "{err}");
    assert!(err.contains("could not be written"), "{err}");
    assert!(
        !err.contains("internal error") && !err.contains("panicked"),
        "{err}"
    );
    let recs = lines_of(&output);
    let a: Vec<&Value> = recs
        .iter()
        .filter(|v| {
            is_http(v)
                && (header(v, "X-Test-Id").as_deref() == Some(id_a.as_str())
                    || header(v, "X-Echo-Test-Id").as_deref() == Some(id_a.as_str()))
        })
        .collect();
    let b = recs
        .iter()
        .filter(|v| {
            is_http(v)
                && (header(v, "X-Test-Id").as_deref() == Some(id_b.as_str())
                    || header(v, "X-Echo-Test-Id").as_deref() == Some(id_b.as_str()))
        })
        .count();
    assert_eq!(b, want_b, "records after space came back:\n{err}");
    let last = recs
        .iter()
        .rev()
        .find(|v| kind(v) == "stats")
        .expect("no stats record");
    let errors = last["output_errors"].as_u64().unwrap();
    let want_a = run_a.expected_records(2);
    eprintln!(
        "sink: {} of {want_a} records written while full, {errors} output errors; summary: {}",
        a.len(),
        err.lines().last().unwrap_or("")
    );
    assert!(
        a.len() < want_a,
        "nothing was dropped: the file system never filled?"
    );
    // Every record not written is counted (stats records that failed too).
    assert!(
        a.len() as u64 + errors >= want_a as u64,
        "{} written + {errors} counted < {want_a} records: {last}",
        a.len()
    );
    assert_eq!(last["lost_events"], 0, "{last}");
    assert!(
        err.contains(&format!("{errors} records not written (output errors)"))
            || err.contains("records not written"),
        "the summary does not say what was not written:\n{err}"
    );
}

/// An OTLP sink whose collector is unreachable (a closed port on
/// 127.0.0.1): `hdrtap run` keeps capturing into its file sink, the OTLP
/// sink's records are dropped and counted (failed exports after their
/// retries, or a full queue), and hdrtap stops cleanly. Root only.
#[test]
fn unreachable_otlp_collector_drops_are_counted_and_capture_goes_on() {
    let _guard = setup();
    let nginx = Nginx::start();
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out.ndjson");
    let ready = work.path().join("ready");
    let stderr = work.path().join("stderr");
    // A port nothing listens on: bind, note, close.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let config = work.path().join("hdrtap.toml");
    fs::write(
        &config,
        format!(
            r#"ready_file = "{ready}"
stats_interval = 1
[http]
enabled = true
ports = [{port}]
tls = false
[packets]
enabled = false
[[sinks]]
type = "file"
path = "{out}"
format = "json"
[[sinks]]
type = "otlp"
protocol = "http"
endpoint = "http://127.0.0.1:{dead_port}"
timeout_ms = 200
batch_size = 16
batch_timeout_ms = 100
retry_initial_ms = 50
retry_max_ms = 100
retry_max_elapsed_ms = 300
"#,
            ready = ready.display(),
            out = out.display(),
            port = nginx.port,
        ),
    )
    .unwrap();
    let mut child = spawn_until_ready(
        Command::new(hdrtap_bin())
            .arg("run")
            .arg("--config")
            .arg(&config),
        &ready,
        &stderr,
        "hdrtap run",
    );
    let id = unique_id("otlp");
    let run = raw_client(&RawOpts::new("127.0.0.1", nginx.port, "normal", 100, &id));
    let want = run.expected_records(2);
    let deadline = Instant::now() + Duration::from_secs(10);
    let count = || {
        fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(&id))
            .count()
    };
    while count() < want && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
    }
    // Let the exporter fail its retries.
    thread::sleep(Duration::from_secs(2));
    assert!(child.try_wait().unwrap().is_none(), "hdrtap run died");
    send_signal(child.id(), libc::SIGTERM);
    let status = wait_timeout(&mut child, STOP_TIMEOUT).expect("hdrtap run did not stop");
    let err = fs::read_to_string(&stderr).unwrap_or_default();
    assert!(status.success(), "hdrtap run exited {status}:\n{err}");
    assert!(
        !err.contains("internal error") && !err.contains("panicked"),
        "{err}"
    );
    assert_eq!(count(), want, "the file sink missed records:\n{err}");
    let otlp = err
        .lines()
        .find(|l| l.contains("sink") && l.contains("(otlp)"))
        .unwrap_or_else(|| panic!("no OTLP sink line in the summary:\n{err}"));
    let num = |tag: &str| -> u64 {
        otlp.split(", ")
            .find(|p| p.contains(tag))
            .and_then(|p| p.split_whitespace().next())
            .and_then(|n| {
                n.trim_start_matches(|c: char| !c.is_ascii_digit())
                    .parse()
                    .ok()
            })
            .unwrap_or(0)
    };
    let dropped = num("dropped (queue full)") + num("dropped (failed)");
    eprintln!("otlp: {otlp}");
    assert!(
        dropped >= want as u64,
        "the OTLP sink did not count its {want} undeliverable records as dropped: {otlp}"
    );
}
