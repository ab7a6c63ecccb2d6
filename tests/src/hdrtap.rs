//! Running hdrtap and reading what it wrote.
use std::{
    fmt::Write as _,
    fs::{self, File},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    thread,
    time::{Duration, Instant, SystemTime},
};

use serde_json::Value;

use crate::*;

/// A running `hdrtap http --json` writing NDJSON into a temp file.
pub struct Hdrtap {
    child: Option<Child>,
    dir: tempfile::TempDir,
    output: PathBuf,
    stderr: PathBuf,
    args: Vec<String>,
    started: SystemTime,
}

/// What a stopped hdrtap left behind.
#[derive(Debug)]
pub struct Capture {
    /// Every NDJSON line, parsed, in file order.
    pub records: Vec<Value>,
    /// The output file as written.
    pub raw: String,
    /// hdrtap's stderr.
    pub stderr: String,
    /// hdrtap's stdout (records go to the output file; `--print` writes here).
    pub stdout: String,
    pub status: ExitStatus,
    /// hdrtap's command line (for messages).
    pub args: Vec<String>,
    /// When hdrtap was started and stopped (to sanity-check `ts`).
    pub started: SystemTime,
    pub stopped: SystemTime,
}

impl Hdrtap {
    /// `hdrtap http --json --output <tmp> --ready-file <tmp> <extra...>`, waiting
    /// until the ready file exists.
    pub fn start(extra: &[&str]) -> Hdrtap {
        Self::start_with(&["http", "--json"], extra)
    }

    /// `hdrtap <pre...> --output <tmp> --ready-file <tmp> <extra...>`.
    pub fn start_with(pre: &[&str], extra: &[&str]) -> Hdrtap {
        Self::start_wrapped(&[], pre, extra)
    }

    /// Like [`Hdrtap::start_with`], run through `wrapper` (a command that
    /// execs its arguments, e.g. `ip netns exec NS`), so that signals still
    /// reach hdrtap itself.
    pub fn start_wrapped(wrapper: &[&str], pre: &[&str], extra: &[&str]) -> Hdrtap {
        let dir = tempfile::Builder::new()
            .prefix("hdrtap-test-")
            .tempdir()
            .unwrap();
        let output = dir.path().join("out.ndjson");
        let ready = dir.path().join("ready");
        let stderr = dir.path().join("stderr.txt");
        let mut args: Vec<String> = pre.iter().map(|s| s.to_string()).collect();
        args.extend([
            "--output".to_string(),
            output.display().to_string(),
            "--ready-file".to_string(),
            ready.display().to_string(),
        ]);
        args.extend(extra.iter().map(|s| s.to_string()));
        let started = SystemTime::now();
        let bin = hdrtap_bin();
        let mut cmd = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        cmd.args(&args);
        let child = spawn_until_ready(&mut cmd, &ready, &stderr, &format!("hdrtap {args:?}"));
        Hdrtap {
            child: Some(child),
            dir,
            output,
            stderr,
            args,
            started,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// The directory holding hdrtap's files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Complete lines of the output file so far, parsed (partial last line ignored).
    pub fn peek(&self) -> Vec<Value> {
        let text = fs::read_to_string(&self.output).unwrap_or_default();
        let complete = match text.rfind('\n') {
            Some(i) => &text[..=i],
            None => "",
        };
        complete
            .lines()
            .filter(|l| !l.trim().is_empty())
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Poll the output until `done` holds (or `timeout`), then stop.
    pub fn stop_when(self, timeout: Duration, done: impl Fn(&[Value]) -> bool) -> Capture {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline && !done(&self.peek()) {
            thread::sleep(Duration::from_millis(50));
        }
        self.stop()
    }

    /// Stop once at least `n` http_request/http_response records are out (or
    /// after [`SETTLE_TIMEOUT`]).
    pub fn stop_when_http_count(self, n: usize) -> Capture {
        self.stop_when(SETTLE_TIMEOUT, |r| {
            r.iter().filter(|v| is_http(v)).count() >= n
        })
    }

    /// SIGTERM, wait, parse. Panics unless hdrtap exits 0 within [`STOP_TIMEOUT`].
    pub fn stop(self) -> Capture {
        self.stop_with(libc::SIGTERM)
    }

    /// Send `sig`, wait, parse. Panics unless hdrtap exits 0.
    pub fn stop_with(mut self, sig: libc::c_int) -> Capture {
        let mut child = self.child.take().unwrap();
        send_signal(child.id(), sig);
        let status = match wait_timeout(&mut child, STOP_TIMEOUT) {
            Some(s) => s,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "hdrtap {:?} did not exit within {STOP_TIMEOUT:?} of signal {sig}; stderr:\n{}",
                    self.args,
                    fs::read_to_string(&self.stderr).unwrap_or_default()
                );
            }
        };
        self.collect(status)
    }

    /// Wait for hdrtap to exit by itself (e.g. `--duration`).
    pub fn wait_exit(mut self, timeout: Duration) -> Capture {
        let mut child = self.child.take().unwrap();
        let status = match wait_timeout(&mut child, timeout) {
            Some(s) => s,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "hdrtap {:?} did not exit by itself within {timeout:?}; stderr:\n{}",
                    self.args,
                    fs::read_to_string(&self.stderr).unwrap_or_default()
                );
            }
        };
        self.collect(status)
    }

    fn collect(self, status: ExitStatus) -> Capture {
        let raw = fs::read_to_string(&self.output).unwrap_or_else(|e| {
            panic!(
                "hdrtap {:?} left no readable output file {}: {e}",
                self.args,
                self.output.display()
            )
        });
        let stderr = fs::read_to_string(&self.stderr).unwrap_or_default();
        let stdout =
            fs::read_to_string(self.stderr.with_file_name("stdout.txt")).unwrap_or_default();
        let mut records = Vec::new();
        for (i, line) in raw.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Value>(line) {
                Ok(v) if v.is_object() => records.push(v),
                Ok(v) => panic!("output line {} is JSON but not an object: {v}", i + 1),
                Err(e) => panic!(
                    "output line {} is not JSON ({e}): {line:?}\nstderr:\n{stderr}",
                    i + 1
                ),
            }
        }
        assert!(
            raw.is_empty() || raw.ends_with('\n'),
            "output does not end with a newline (not flushed?): ...{:?}",
            &raw[raw.len().saturating_sub(200)..]
        );
        let cap = Capture {
            records,
            raw,
            stderr,
            stdout,
            status,
            args: self.args.clone(),
            started: self.started,
            stopped: SystemTime::now(),
        };
        assert!(
            status.success(),
            "hdrtap {:?} exited with {status}, expected 0; stderr:\n{}",
            cap.args,
            cap.stderr
        );
        cap
    }
}

impl Drop for Hdrtap {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            send_signal(child.id(), libc::SIGTERM);
            if wait_timeout(&mut child, Duration::from_secs(5)).is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// `kind` is http_request or http_response.
pub fn is_http(v: &Value) -> bool {
    matches!(kind(v), "http_request" | "http_response")
}

pub fn kind(v: &Value) -> &str {
    v["kind"].as_str().unwrap_or("")
}

/// The headers of a record as (name, value) pairs; panics on a bad shape.
pub fn headers_of(v: &Value) -> Vec<(String, String)> {
    let arr = v["headers"]
        .as_array()
        .unwrap_or_else(|| panic!("record has no headers array: {v}"));
    arr.iter()
        .map(|h| match h.as_array().map(|a| a.as_slice()) {
            Some([Value::String(n), Value::String(val)]) => (n.clone(), val.clone()),
            _ => panic!("header is not a [name, value] pair of strings: {h} in {v}"),
        })
        .collect()
}

/// First value of header `name` (case-insensitive) in a record.
pub fn header(v: &Value, name: &str) -> Option<String> {
    v["headers"].as_array()?.iter().find_map(|h| {
        let a = h.as_array()?;
        if a.first()?.as_str()?.eq_ignore_ascii_case(name) {
            a.get(1)?.as_str().map(String::from)
        } else {
            None
        }
    })
}

impl Capture {
    pub fn http(&self) -> impl Iterator<Item = &Value> {
        self.records.iter().filter(|v| is_http(v))
    }

    pub fn stats(&self) -> impl Iterator<Item = &Value> {
        self.records.iter().filter(|v| kind(v) == "stats")
    }

    /// Records matching `pred`, one per line, for failure messages (at most 80).
    pub fn dump(&self, pred: impl Fn(&Value) -> bool) -> String {
        let matching: Vec<&Value> = self.records.iter().filter(|v| pred(v)).collect();
        let mut s = format!("{} record(s):\n", matching.len());
        for v in matching.iter().take(80) {
            let _ = writeln!(s, "  {v}");
        }
        if matching.len() > 80 {
            let _ = writeln!(s, "  ... {} more", matching.len() - 80);
        }
        s
    }

    /// Everything hdrtap produced, for failure messages.
    pub fn dump_all(&self) -> String {
        format!(
            "hdrtap args: {:?}\n{}hdrtap stderr:\n{}",
            self.args,
            self.dump(|_| true),
            self.stderr
        )
    }

    /// The output ends with the final stats record (an orderly stop).
    pub fn assert_ends_with_stats(&self) {
        assert_eq!(
            self.records.last().map(kind),
            Some("stats"),
            "{}",
            self.dump_all()
        );
    }
}

/// Spawn `cmd` (an hdrtap command line) with stdout to `stdout.txt` and
/// stderr to `stderr` (both beside `stderr`), and wait until it creates
/// `ready`. Panics, with its stderr and `what` it was, if it exits first
/// or is not ready within [`READY_TIMEOUT`] (then it is killed).
pub fn spawn_until_ready(cmd: &mut Command, ready: &Path, stderr: &Path, what: &str) -> Child {
    let stdout = File::create(stderr.with_file_name("stdout.txt")).unwrap();
    spawn_until_ready_to(cmd, stdout.into(), ready, stderr, what)
}

/// [`spawn_until_ready`] with stdout going to `stdout`.
pub fn spawn_until_ready_to(
    cmd: &mut Command,
    stdout: Stdio,
    ready: &Path,
    stderr: &Path,
    what: &str,
) -> Child {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(File::create(stderr).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", hdrtap_bin().display()));
    let deadline = Instant::now() + READY_TIMEOUT;
    while !ready.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "{what} exited ({status}) before creating its ready file; stderr:\n{}",
                fs::read_to_string(stderr).unwrap_or_default()
            );
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what} did not create its ready file within {READY_TIMEOUT:?}; stderr:\n{}",
                fs::read_to_string(stderr).unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
    child
}
