//! `hdrtap run` (daemon mode) and the real parts its sinks talk to: a
//! Prometheus server, an OTLP receiver decoding with the official
//! OpenTelemetry protobuf schema, and plain HTTP GETs.
use std::{
    fs::{self, File},
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::*;

/// A running `hdrtap run --config FILE`.
pub struct Daemon {
    child: Option<Child>,
    dir: Option<tempfile::TempDir>,
    stderr: PathBuf,
    config: String,
}

/// What a stopped daemon left.
#[derive(Debug)]
pub struct DaemonExit {
    pub status: ExitStatus,
    pub stderr: String,
    dir: tempfile::TempDir,
}

impl DaemonExit {
    /// The daemon's directory (its files are still there).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Daemon {
    /// Write `config` (with `{dir}` replaced by the daemon's temp dir and a
    /// `ready_file` added) and run `hdrtap run --config`, waiting for ready.
    pub fn start(config: &str) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("hdrtap-daemon-")
            .tempdir()
            .unwrap();
        let ready = dir.path().join("ready");
        let text = format!(
            "ready_file = {:?}\n{}",
            ready.display().to_string(),
            config.replace("{dir}", &dir.path().display().to_string())
        );
        let path = dir.path().join("hdrtap.toml");
        fs::write(&path, &text).unwrap();
        let stderr = dir.path().join("stderr.txt");
        let child = spawn_until_ready(
            Command::new(hdrtap_bin())
                .arg("run")
                .arg("--config")
                .arg(&path),
            &ready,
            &stderr,
            &format!("hdrtap run with config:\n{text}\n--"),
        );
        Daemon {
            child: Some(child),
            dir: Some(dir),
            stderr,
            config: text,
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.as_ref().unwrap().path()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn signal(&self, sig: libc::c_int) {
        send_signal(self.pid(), sig);
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// SIGTERM, wait; panics unless it exits 0 within [`STOP_TIMEOUT`].
    pub fn stop(mut self) -> DaemonExit {
        let mut child = self.child.take().unwrap();
        send_signal(child.id(), libc::SIGTERM);
        let status = wait_timeout(&mut child, STOP_TIMEOUT).unwrap_or_else(|| {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "hdrtap run did not exit within {STOP_TIMEOUT:?} of SIGTERM; stderr:\n{}",
                self.stderr()
            )
        });
        let exit = DaemonExit {
            status,
            stderr: self.stderr(),
            dir: self.dir.take().unwrap(),
        };
        assert!(
            status.success(),
            "hdrtap run exited {status}; config:\n{}\nstderr:\n{}",
            self.config,
            exit.stderr
        );
        exit
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            send_signal(child.id(), libc::SIGTERM);
            if wait_timeout(&mut child, Duration::from_secs(10)).is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Every line of an NDJSON file, parsed; panics on a line that is not a
/// JSON object (a torn line) or a missing final newline.
pub fn read_ndjson(path: &Path) -> Vec<Value> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    parse_ndjson(&text, &path.display().to_string())
}

pub fn parse_ndjson(text: &str, what: &str) -> Vec<Value> {
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "{what} does not end with a newline: ...{:?}",
        &text[text.len().saturating_sub(200)..]
    );
    text.lines()
        .enumerate()
        .map(|(i, l)| match serde_json::from_str::<Value>(l) {
            Ok(v) if v.is_object() => v,
            _ => panic!("{what} line {} is not a JSON object: {l:?}", i + 1),
        })
        .collect()
}

/// `GET path` on 127.0.0.1:port: (status, body).
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Some((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// The value of a sample in a Prometheus text exposition (the first line
/// starting with `prefix`, e.g. `name{a="b"}`).
pub fn metric(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix) && l[prefix.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Percent-encode a query parameter.
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A real Prometheus server (Debian's `prometheus`) scraping one target
/// every second, with its own config and storage in a temp dir.
pub struct Prometheus {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
    log: PathBuf,
}

impl Prometheus {
    pub fn start(target_port: u16) -> Prometheus {
        let dir = tempfile::Builder::new()
            .prefix("hdrtap-prometheus-")
            .tempdir()
            .unwrap();
        let port = free_port();
        let config = dir.path().join("prometheus.yml");
        fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: hdrtap\n    scrape_interval: 1s\n    \
                 static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n"
            ),
        )
        .unwrap();
        let log = dir.path().join("prometheus.log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(File::create(dir.path().join("stdout.txt")).unwrap())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("spawn prometheus (Debian package prometheus; run scripts/setup.sh): {e}")
            });
        let p = Prometheus {
            child,
            port,
            _dir: dir,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while http_get(port, "/-/ready").map(|(s, _)| s) != Some(200) {
            assert!(
                Instant::now() < deadline,
                "prometheus not ready on {port}; log:\n{}",
                fs::read_to_string(&p.log).unwrap_or_default()
            );
            thread::sleep(Duration::from_millis(200));
        }
        p
    }

    /// An instant query through the HTTP API: the `data.result` array.
    pub fn query(&self, promql: &str) -> Vec<Value> {
        let path = format!("/api/v1/query?query={}", url_encode(promql));
        let Some((200, body)) = http_get(self.port, &path) else {
            return Vec::new();
        };
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        assert_eq!(v["status"], "success", "{promql}: {body}");
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// The single value of `promql` once `ok` holds for it (or panic after
    /// `timeout`, with the last answer).
    pub fn wait_value(&self, promql: &str, timeout: Duration, ok: impl Fn(f64) -> bool) -> f64 {
        let deadline = Instant::now() + timeout;
        let mut last = Vec::new();
        loop {
            last = {
                let r = self.query(promql);
                if r.is_empty() {
                    last
                } else {
                    r
                }
            };
            if let Some(v) = last
                .first()
                .and_then(|s| s["value"][1].as_str())
                .and_then(|v| v.parse::<f64>().ok())
            {
                if ok(v) {
                    return v;
                }
            }
            assert!(
                Instant::now() < deadline,
                "prometheus query {promql:?}: last answer {last:?}; prometheus log:\n{}",
                fs::read_to_string(&self.log).unwrap_or_default()
            );
            thread::sleep(Duration::from_millis(300));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        send_signal(self.child.id(), libc::SIGTERM);
        if wait_timeout(&mut self.child, Duration::from_secs(10)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The Python with opentelemetry-proto and grpcio (scripts/setup.sh makes
/// the venv `target/pyotlp`).
pub fn otlp_python() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let target = if target.is_relative() {
        workspace_root().join(target)
    } else {
        target
    };
    let py = target.join("pyotlp").join("bin").join("python3");
    assert!(
        py.exists(),
        "{} missing: run scripts/setup.sh (it makes a venv with opentelemetry-proto and grpcio)",
        py.display()
    );
    py
}

/// `tests/clients/otlp_receiver.py`, running.
pub struct OtlpReceiver {
    child: Option<Child>,
    pub http_port: Option<u16>,
    pub grpc_port: Option<u16>,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

impl OtlpReceiver {
    /// Listen for OTLP/HTTP (`http`) and/or OTLP/gRPC (`grpc`) on these
    /// ports (0: any free port).
    pub fn start(http: Option<u16>, grpc: Option<u16>) -> OtlpReceiver {
        let dir = tempfile::Builder::new()
            .prefix("hdrtap-otlp-")
            .tempdir()
            .unwrap();
        let out = dir.path().join("records.ndjson");
        let mut r = OtlpReceiver {
            child: None,
            http_port: http,
            grpc_port: grpc,
            out,
            _dir: dir,
        };
        r.spawn();
        r
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(otlp_python());
        cmd.arg(clients_dir().join("otlp_receiver.py"))
            .arg("--out")
            .arg(&self.out);
        if let Some(p) = self.http_port {
            cmd.arg("--http-port").arg(p.to_string());
        }
        if let Some(p) = self.grpc_port {
            cmd.arg("--grpc-port").arg(p.to_string());
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn otlp_receiver.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("otlp_receiver.py said {line:?}: {e}"));
        assert_eq!(v["event"], "listening", "{v}");
        if self.http_port.is_some() {
            self.http_port = v["http_port"].as_u64().map(|p| p as u16);
        }
        if self.grpc_port.is_some() {
            self.grpc_port = v["grpc_port"].as_u64().map(|p| p as u16);
        }
        self.child = Some(child);
    }

    /// Stop listening (the collector goes down).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            send_signal(c.id(), libc::SIGTERM);
            if wait_timeout(&mut c, Duration::from_secs(10)).is_none() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }

    /// Listen again on the same ports (the collector comes back).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Every log record received so far.
    pub fn records(&self) -> Vec<Value> {
        let text = fs::read_to_string(&self.out).unwrap_or_default();
        parse_ndjson(&text, "otlp receiver output")
    }

    /// Wait until `done` holds for the records received (or the timeout).
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let r = self.records();
            if done(&r) || Instant::now() >= deadline {
                return r;
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Send raw bytes to 127.0.0.1:port on a new connection and read what comes
/// back until the peer closes or `wait` passes. Returns the status code of
/// the first response, if any.
pub fn send_raw(port: u16, bytes: &[u8], wait: Duration) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(wait)).unwrap();
    s.write_all(bytes).expect("send");
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                raw.extend_from_slice(&buf[..n]);
                if raw.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
        }
    }
    let text = String::from_utf8_lossy(&raw);
    text.split_whitespace().nth(1).and_then(|s| s.parse().ok())
}
