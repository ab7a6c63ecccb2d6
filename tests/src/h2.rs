//! HTTP/2 clients that report what they put on the wire: nghttp (its `-v`
//! trace is the oracle), curl, h2load, and tests/clients/h2peer.py and
//! grpc_peer.py (Python h2/hpack/hyperframe and grpcio, in the venv
//! scripts/setup.sh makes).
use std::{
    path::PathBuf,
    process::{Child, Command, Output},
};

use serde_json::Value;

use crate::*;

/// The venv's Python (h2, hpack, hyperframe, grpcio, opentelemetry-proto).
pub fn venv_python() -> PathBuf {
    otlp_python()
}

/// One `nghttp -v` request: the header fields it sent and received, in
/// order, as it printed them.
#[derive(Debug, Clone, Default)]
pub struct NghttpRun {
    /// The stream the request went on.
    pub stream: u32,
    pub sent: Vec<(String, String)>,
    pub received: Vec<(String, String)>,
    pub status: u16,
    pub trace: String,
}

/// `name: value` on an nghttp trace line (names may start with `:`).
fn field(line: &str) -> Option<(String, String)> {
    let t = line.trim_start();
    let (start, rest) = if let Some(r) = t.strip_prefix(':') {
        (":", r)
    } else {
        ("", t)
    };
    let (n, v) = rest.split_once(": ")?;
    if n.is_empty() || n.contains(' ') {
        return None;
    }
    Some((format!("{start}{n}"), v.to_string()))
}

/// `nghttp -v URL` with extra request headers (nghttp speaks prior
/// knowledge to http:// URLs and ALPN h2 to https:// ones).
pub fn nghttp(url: &str, headers: &[(&str, &str)]) -> NghttpRun {
    let mut cmd = Command::new("nghttp");
    cmd.arg("-v").arg("--no-dep");
    for (n, v) in headers {
        cmd.arg("-H").arg(format!("{n}: {v}"));
    }
    let out = cmd
        .arg(url)
        .output()
        .expect("nghttp (nghttp2-client; scripts/setup.sh installs it)");
    let trace = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "nghttp {url} failed: {}\n{trace}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut run = NghttpRun {
        trace: trace.clone(),
        ..NghttpRun::default()
    };
    let mut in_send_headers = false;
    for line in trace.lines() {
        if line.starts_with('[') {
            in_send_headers = line.contains("send HEADERS frame");
            if in_send_headers {
                run.stream = line
                    .split("stream_id=")
                    .nth(1)
                    .and_then(|s| s.trim_end_matches('>').parse().ok())
                    .unwrap_or(0);
            }
            if let Some(rest) = line.split("recv (stream_id=").nth(1) {
                if let Some((_, f)) = rest.split_once(") ") {
                    if let Some((n, v)) = field(f) {
                        if n == ":status" {
                            run.status = v.parse().unwrap_or(0);
                        }
                        run.received.push((n, v));
                    }
                }
            }
            continue;
        }
        if in_send_headers {
            if let Some(f) = field(line) {
                run.sent.push(f);
            }
        }
    }
    assert!(
        !run.sent.is_empty(),
        "no request headers in nghttp's trace:\n{trace}"
    );
    assert!(run.status != 0, "no :status in nghttp's trace:\n{trace}");
    run
}

/// `tests/clients/h2peer.py client --port P --scenario S --id ID [extra]`:
/// its JSON lines (one per stream).
pub fn h2peer(port: u16, scenario: &str, id: &str, extra: &[&str]) -> Vec<Value> {
    let out: Output = Command::new(venv_python())
        .arg(clients_dir().join("h2peer.py"))
        .args([
            "client",
            "--port",
            &port.to_string(),
            "--scenario",
            scenario,
            "--id",
            id,
        ])
        .args(extra)
        .output()
        .expect("run h2peer.py");
    assert!(
        out.status.success(),
        "h2peer {scenario} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// `[[name, value], ...]` from a peer's JSON as pairs.
pub fn pairs(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|p| {
            (
                p[0].as_str().unwrap().to_string(),
                p[1].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A Python peer server (h2peer.py or grpc_peer.py) on a free port, killed
/// on drop.
pub struct PeerServer {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl PeerServer {
    /// `script server --port P --ready FILE`.
    pub fn start(script: &str) -> PeerServer {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let ready = dir.path().join("ready");
        let child = spawn_until_ready(
            Command::new(venv_python())
                .arg(clients_dir().join(script))
                .args(["server", "--port", &port.to_string(), "--ready"])
                .arg(&ready),
            &ready,
            &dir.path().join("stderr.txt"),
            script,
        );
        PeerServer {
            child,
            port,
            _dir: dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for PeerServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// HTTP/2 records (`version` HTTP/2) of a capture carrying `x-test-id: id`
/// on their request (responses, trailers and resets by their stream).
pub fn h2_records<'a>(cap: &'a Capture, id: &str) -> Vec<&'a Value> {
    let mut streams = std::collections::BTreeSet::new();
    for v in &cap.records {
        if v["version"] == "HTTP/2"
            && v["kind"] == "http_request"
            && header(v, "x-test-id").as_deref() == Some(id)
        {
            streams.insert((v["conn_id"].as_u64(), v["stream_id"].as_u64()));
        }
    }
    cap.records
        .iter()
        .filter(|v| {
            v["version"] == "HTTP/2"
                && streams.contains(&(v["conn_id"].as_u64(), v["stream_id"].as_u64()))
        })
        .collect()
}
