//! Clients that report exactly what they put on the wire: curl and tests/clients/rawhttp.py.
use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Read as _, Write as _},
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
    time::Duration,
};

use serde_json::Value;

use crate::*;

/// One end of a TCP connection, as the JSON output has it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    pub ip: String,
    pub port: u16,
}

impl Endpoint {
    fn from_json(v: &Value) -> Option<Endpoint> {
        Some(Endpoint {
            ip: v["ip"].as_str()?.to_string(),
            port: u16::try_from(v["port"].as_u64()?).ok()?,
        })
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.ip.contains(':') {
            write!(f, "[{}]:{}", self.ip, self.port)
        } else {
            write!(f, "{}:{}", self.ip, self.port)
        }
    }
}

/// A request exactly as the client put it on the wire.
#[derive(Debug, Clone)]
pub struct SentRequest {
    pub method: String,
    pub target: String,
    pub version: String,
    pub headers: Vec<(String, String)>,
    /// Request line through the blank line, in bytes.
    pub header_bytes: usize,
}

/// A response header block exactly as the client received it.
#[derive(Debug, Clone)]
pub struct GotResponse {
    pub version: String,
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub header_bytes: usize,
}

/// One request/response on one connection, seen from the client.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// X-Test-Id and X-Seq of the request: how records are matched.
    pub test_id: String,
    pub seq: u32,
    pub request: SentRequest,
    pub response: Option<GotResponse>,
    /// The client's `getsockname()` / `getpeername()`.
    pub local: Endpoint,
    pub remote: Endpoint,
}

/// What a client process did.
#[derive(Debug, Clone)]
pub struct ClientRun {
    pub pid: u32,
    /// The client's comm when it reports it (python), else the expected one.
    pub comm: String,
    /// The client's only thread id, when known.
    pub tid: Option<u32>,
    pub exchanges: Vec<Exchange>,
}

impl ClientRun {
    /// Records expected from this run: requests + responses, times `sides`.
    pub fn expected_records(&self, sides: usize) -> usize {
        sides
            * self
                .exchanges
                .iter()
                .map(|e| 1 + e.response.is_some() as usize)
                .sum::<usize>()
    }

    /// Only the exchanges with `seq` in `range` (e.g. after hdrtap started).
    pub fn only_seqs(&self, keep: impl Fn(u32) -> bool) -> ClientRun {
        ClientRun {
            exchanges: self
                .exchanges
                .iter()
                .filter(|e| keep(e.seq))
                .cloned()
                .collect(),
            ..self.clone()
        }
    }
}

pub(crate) fn header_in<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// One curl transfer: a GET of `url` with extra headers (sent after curl's
/// own Host/User-Agent/Accept). X-Test-Id and X-Seq are always added first.
#[derive(Debug, Clone)]
pub struct CurlRequest {
    pub url: String,
    pub headers: Vec<(String, String)>,
    /// More curl options for this transfer (e.g. `--limit-rate`).
    pub args: Vec<String>,
}

impl CurlRequest {
    pub fn get(url: String, test_id: &str, seq: u32) -> CurlRequest {
        CurlRequest {
            url,
            headers: vec![
                ("X-Test-Id".into(), test_id.into()),
                ("X-Seq".into(), seq.to_string()),
            ],
            args: Vec::new(),
        }
    }

    pub fn arg(mut self, arg: &str) -> CurlRequest {
        self.args.push(arg.into());
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> CurlRequest {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// Run ONE curl process doing all `reqs` in order (`--next`; curl reuses the
/// connection when host and port match) and return what it sent and got,
/// parsed from its `-v` trace and `-w '%{json}'`.
pub fn curl(reqs: &[CurlRequest]) -> ClientRun {
    let mut cmd = Command::new("curl");
    for (i, r) in reqs.iter().enumerate() {
        if i > 0 {
            cmd.arg("--next");
        }
        cmd.args([
            "-sS",
            "-v",
            "--http1.1",
            "--max-time",
            "10",
            "-o",
            "/dev/null",
        ]);
        cmd.args(["-w", "%{json}\\n"]);
        cmd.args(&r.args);
        if r.url.starts_with("https:") {
            // The test nginx's certificate is self-signed.
            cmd.arg("-k");
        }
        for (n, v) in &r.headers {
            // curl drops "Name:" with no value; "Name;" sends it empty.
            if v.is_empty() {
                cmd.arg("-H").arg(format!("{n};"));
            } else {
                cmd.arg("-H").arg(format!("{n}: {v}"));
            }
        }
        cmd.arg(&r.url);
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn curl (run scripts/setup.sh)");
    let pid = child.id();
    let out = child.wait_with_output().expect("wait curl");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "curl failed ({}): {cmd:?}\n{stderr}",
        out.status
    );
    let (sent, got) = parse_curl_trace(&stderr);
    let infos: Vec<Value> = stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("curl -w json {l:?}: {e}")))
        .collect();
    assert!(
        sent.len() == reqs.len() && got.len() == reqs.len() && infos.len() == reqs.len(),
        "curl trace: {} requests, {} responses, {} -w lines for {} URLs:\n{stderr}\n{stdout}",
        sent.len(),
        got.len(),
        infos.len(),
        reqs.len()
    );
    let exchanges = sent
        .into_iter()
        .zip(got)
        .zip(infos)
        .map(|((request, response), info)| {
            let test_id = header_in(&request.headers, "X-Test-Id")
                .unwrap_or("")
                .to_string();
            let seq = header_in(&request.headers, "X-Seq")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let ep = |ip: &str, port: &str| Endpoint {
                ip: info[ip].as_str().unwrap_or("?").to_string(),
                port: info[port].as_u64().unwrap_or(0) as u16,
            };
            Exchange {
                test_id,
                seq,
                local: ep("local_ip", "local_port"),
                remote: ep("remote_ip", "remote_port"),
                request,
                response: Some(response),
            }
        })
        .collect();
    ClientRun {
        pid,
        comm: "curl".into(),
        tid: None,
        exchanges,
    }
}

/// Parse curl's `-v` trace: `> ` lines are request header lines as sent,
/// `< ` lines response header lines as received.
pub fn parse_curl_trace(trace: &str) -> (Vec<SentRequest>, Vec<GotResponse>) {
    let mut sent = Vec::new();
    let mut got = Vec::new();
    let mut req: Vec<String> = Vec::new();
    let mut resp: Vec<String> = Vec::new();
    let block_bytes = |lines: &[String]| lines.iter().map(|l| l.len() + 2).sum::<usize>() + 2;
    let split = |l: &String| {
        let (n, v) = l.split_once(':').unwrap_or((l, ""));
        (n.to_string(), v.trim_matches([' ', '\t']).to_string())
    };
    for line in trace.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if let Some(rest) = line
            .strip_prefix("> ")
            .or(if line == ">" { Some("") } else { None })
        {
            if rest.is_empty() {
                if !req.is_empty() {
                    let mut parts = req[0].splitn(3, ' ');
                    sent.push(SentRequest {
                        method: parts.next().unwrap_or("").into(),
                        target: parts.next().unwrap_or("").into(),
                        version: parts.next().unwrap_or("").into(),
                        headers: req[1..].iter().map(split).collect(),
                        header_bytes: block_bytes(&req),
                    });
                    req.clear();
                }
            } else {
                req.push(rest.to_string());
            }
        } else if let Some(rest) =
            line.strip_prefix("< ")
                .or(if line == "<" { Some("") } else { None })
        {
            if rest.is_empty() {
                if !resp.is_empty() {
                    let mut parts = resp[0].splitn(3, ' ');
                    got.push(GotResponse {
                        version: parts.next().unwrap_or("").into(),
                        status: parts.next().and_then(|s| s.parse().ok()).unwrap_or(0),
                        reason: parts.next().unwrap_or("").into(),
                        headers: resp[1..].iter().map(split).collect(),
                        header_bytes: block_bytes(&resp),
                    });
                    resp.clear();
                }
            } else {
                resp.push(rest.to_string());
            }
        }
    }
    (sent, got)
}

/// `tests/clients/rawhttp.py`, running.
pub struct RawClient {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    lines: Vec<Value>,
    args: Vec<String>,
}

/// Options for [`RawClient`]: see `tests/clients/rawhttp.py --help`.
#[derive(Debug, Clone)]
pub struct RawOpts {
    pub host: String,
    pub port: u16,
    pub mode: &'static str,
    pub count: u32,
    pub test_id: String,
    pub paths: String,
    pub headers: Vec<String>,
    /// Further `--flag value` pairs (`--send-api`, `--recv-api`, `--method`,
    /// `--body-size`, `--big-header`).
    pub extra: Vec<(String, String)>,
}

impl RawOpts {
    pub fn new(host: &str, port: u16, mode: &'static str, count: u32, test_id: &str) -> RawOpts {
        RawOpts {
            host: host.into(),
            port,
            mode,
            count,
            test_id: test_id.into(),
            paths: "/".into(),
            headers: Vec::new(),
            extra: Vec::new(),
        }
    }

    /// Any other rawhttp.py option, e.g. `.opt("--send-api", "sendmsg")`;
    /// an empty value passes the flag alone (`.opt("--in-thread", "")`).
    pub fn opt(mut self, flag: &str, value: &str) -> RawOpts {
        self.extra.push((flag.into(), value.into()));
        self
    }

    pub fn paths(mut self, paths: &str) -> RawOpts {
        self.paths = paths.into();
        self
    }

    pub fn header(mut self, h: &str) -> RawOpts {
        self.headers.push(h.into());
        self
    }
}

impl RawClient {
    pub fn spawn(o: &RawOpts) -> RawClient {
        let mut args = vec![
            clients_dir().join("rawhttp.py").display().to_string(),
            "--host".into(),
            o.host.clone(),
            "--port".into(),
            o.port.to_string(),
            "--mode".into(),
            o.mode.into(),
            "--count".into(),
            o.count.to_string(),
            "--test-id".into(),
            o.test_id.clone(),
            "--paths".into(),
            o.paths.clone(),
        ];
        for h in &o.headers {
            args.push("--header".into());
            args.push(h.clone());
        }
        for (flag, value) in &o.extra {
            args.push(flag.clone());
            if !value.is_empty() {
                args.push(value.clone());
            }
        }
        Self::spawn_program("python3", args)
    }

    /// Any program speaking rawhttp.py's line protocol (hello, connected,
    /// sent, response, waiting, done on stdout; "go" on stdin): e.g.
    /// `tests/clients/httpsclient.py` or the static TLS test client.
    pub fn spawn_program(program: &str, args: Vec<String>) -> RawClient {
        let mut child = Command::new(program)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {program} (run scripts/setup.sh): {e}"));
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        RawClient {
            child,
            stdin,
            stdout,
            lines: Vec::new(),
            args,
        }
    }

    /// The client's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Read output lines until one with `"event": event` (panics on EOF).
    pub fn wait_event(&mut self, event: &str) {
        loop {
            let mut line = String::new();
            let n = self
                .stdout
                .read_line(&mut line)
                .expect("read rawhttp stdout");
            if n == 0 {
                let status = self.child.wait().unwrap();
                let mut err = String::new();
                let _ = self.child.stderr.as_mut().unwrap().read_to_string(&mut err);
                panic!(
                    "rawhttp.py {:?} ended ({status}) before {event:?}:\n{}\nstderr:\n{err}",
                    self.args,
                    self.lines
                        .iter()
                        .map(|l| l.to_string())
                        .collect::<Vec<_>>()
                        .join("\n")
                );
            }
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("rawhttp.py printed non-JSON {line:?}: {e}"));
            let done = v["event"] == event;
            self.lines.push(v);
            if done {
                return;
            }
        }
    }

    /// Tell a `wait`-mode client to send the rest.
    pub fn go(&mut self) {
        let stdin = self.stdin.as_mut().expect("stdin already closed");
        stdin.write_all(b"go\n").unwrap();
        stdin.flush().unwrap();
    }

    /// Read to the end, check the client exited 0, and return what it did.
    pub fn finish(mut self) -> ClientRun {
        self.stdin.take();
        self.wait_event("done");
        let status = wait_timeout(&mut self.child, Duration::from_secs(20))
            .unwrap_or_else(|| panic!("rawhttp.py {:?} did not exit", self.args));
        assert!(
            status.success(),
            "rawhttp.py {:?} exited {status}",
            self.args
        );
        client_run_from_lines(&self.lines)
    }
}

/// Run rawhttp.py to completion.
pub fn raw_client(o: &RawOpts) -> ClientRun {
    RawClient::spawn(o).finish()
}

fn pairs(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_str().unwrap().to_string(),
                p[1].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn client_run_from_lines(lines: &[Value]) -> ClientRun {
    let hello = lines
        .iter()
        .find(|v| v["event"] == "hello")
        .expect("hello line");
    let conn = lines
        .iter()
        .find(|v| v["event"] == "connected")
        .expect("connected line");
    let local = Endpoint::from_json(&conn["local"]).unwrap();
    let remote = Endpoint::from_json(&conn["remote"]).unwrap();
    let mut responses: BTreeMap<u64, GotResponse> = BTreeMap::new();
    for v in lines.iter().filter(|v| v["event"] == "response") {
        responses.insert(
            v["seq"].as_u64().unwrap(),
            GotResponse {
                version: v["version"].as_str().unwrap().into(),
                status: v["status"].as_u64().unwrap() as u16,
                reason: v["reason"].as_str().unwrap().into(),
                headers: pairs(&v["headers"]),
                header_bytes: v["header_bytes"].as_u64().unwrap() as usize,
            },
        );
    }
    let exchanges = lines
        .iter()
        .filter(|v| v["event"] == "sent")
        .map(|v| {
            let seq = v["seq"].as_u64().unwrap();
            let headers = pairs(&v["headers"]);
            Exchange {
                test_id: header_in(&headers, "X-Test-Id").unwrap().to_string(),
                seq: seq as u32,
                request: SentRequest {
                    method: v["method"].as_str().unwrap().into(),
                    target: v["target"].as_str().unwrap().into(),
                    version: v["version"].as_str().unwrap().into(),
                    headers,
                    header_bytes: v["header_bytes"].as_u64().unwrap() as usize,
                },
                response: responses.remove(&seq),
                local: local.clone(),
                remote: remote.clone(),
            }
        })
        .collect();
    ClientRun {
        pid: hello["pid"].as_u64().unwrap() as u32,
        comm: hello["comm"].as_str().unwrap().into(),
        tid: hello["tid"].as_u64().map(|t| t as u32),
        exchanges,
    }
}
