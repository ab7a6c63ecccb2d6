//! Assertions: records against what the clients sent and received, and nginx's log.
use std::{
    collections::{BTreeMap, BTreeSet},
    thread,
    time::{Duration, Instant, UNIX_EPOCH},
};

use serde_json::{json, Value};

use crate::*;

/// Which process's view to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Server => "server",
        }
    }
}

/// What the records of a run should look like.
#[derive(Debug, Clone)]
pub struct Expect {
    /// nginx's pid: the server side's pid and tid.
    pub server_pid: u32,
    /// nginx's port: every exchange checked must have gone there.
    pub server_port: u16,
    /// Header names (lower case) whose values must be redaction markers.
    pub redacted: Vec<String>,
    /// Flags a record may carry (none by default).
    pub allowed_flags: Vec<String>,
    /// Requests are longer than `--max-header-bytes`: their records must say
    /// `truncated: true` and hold exactly the first N header lines.
    pub truncated_requests: Option<usize>,
    /// HTTPS: records must say `tls: true` and `tls_library` this name (a
    /// plaintext record must say `tls: false` and carry no `tls_library`).
    pub tls_library: Option<String>,
}

impl Expect {
    pub fn new(nginx: &Nginx) -> Expect {
        Expect {
            server_pid: nginx.pid(),
            server_port: nginx.port,
            redacted: DEFAULT_REDACTED.iter().map(|s| s.to_string()).collect(),
            allowed_flags: Vec::new(),
            truncated_requests: None,
            tls_library: None,
        }
    }

    /// Expect TLS records from the library named `lib` (e.g. `libssl.so.3`).
    pub fn tls(mut self, lib: &str) -> Expect {
        self.tls_library = Some(lib.to_string());
        self
    }

    pub fn redacted(mut self, names: &[&str]) -> Expect {
        self.redacted = names.iter().map(|s| s.to_ascii_lowercase()).collect();
        self
    }

    /// See [`Expect::truncated_requests`].
    pub fn truncated_requests(mut self, kept_headers: usize) -> Expect {
        self.truncated_requests = Some(kept_headers);
        self
    }

    pub fn allow_flags(mut self, flags: &[&str]) -> Expect {
        self.allowed_flags = flags.iter().map(|s| s.to_string()).collect();
        self
    }

    fn is_redacted(&self, name: &str) -> bool {
        self.redacted.iter().any(|r| r.eq_ignore_ascii_case(name))
    }
}

/// Parse `[REDACTED len=N hash=HEX16]` into (N, HEX16). An Authorization
/// marker keeps the scheme in front (`Bearer [REDACTED len=N ...]`, N of the
/// credentials): the length returned is then the whole value's.
pub fn parse_marker(v: &str) -> Option<(usize, String)> {
    let at = v.find("[REDACTED len=")?;
    let prefix = &v[..at];
    let scheme_ok = prefix.is_empty()
        || (prefix.ends_with([' ', '\t'])
            && prefix
                .trim()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !prefix.trim().is_empty());
    if !scheme_ok {
        return None;
    }
    let rest = v[at..].strip_prefix("[REDACTED len=")?.strip_suffix(']')?;
    let (len, hash) = rest.split_once(" hash=")?;
    let len: usize = len.parse().ok()?;
    (hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| (at + len, hash.to_string()))
}

/// Parse the URL-safe marker `REDACTED_lenN_HEX16` into (N, HEX16).
pub fn parse_url_marker(v: &str) -> Option<(usize, String)> {
    let rest = v.strip_prefix("REDACTED_len")?;
    let (len, hash) = rest.split_once('_')?;
    let len = len.parse().ok()?;
    (hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| (len, hash.to_string()))
}

/// Compare captured headers with the ones on the wire: same names, same order,
/// same values, except that redacted headers must carry a marker whose `len`
/// is the byte length of the real value.
pub fn compare_headers(
    got: &[(String, String)],
    wire: &[(String, String)],
    exp: &Expect,
) -> Result<(), String> {
    let mut problems = Vec::new();
    if got.len() != wire.len() {
        problems.push(format!(
            "{} headers captured, {} on the wire",
            got.len(),
            wire.len()
        ));
    }
    for (i, pair) in got.iter().zip(wire.iter()).enumerate() {
        let ((gn, gv), (wn, wv)) = pair;
        if gn != wn {
            problems.push(format!("header #{i}: name {gn:?}, on the wire {wn:?}"));
            continue;
        }
        if exp.is_redacted(wn) {
            let kept = gv.find("[REDACTED").map_or("", |i| &gv[..i]);
            match parse_marker(gv) {
                Some(_) if !wv.starts_with(kept) => problems.push(format!(
                    "header #{i} {wn}: marker {gv:?} keeps {kept:?}, the value does not start so"
                )),
                Some((len, _)) if len == wv.len() => {}
                Some((len, _)) => problems.push(format!(
                    "header #{i} {wn}: marker says len={len}, the value has {} bytes",
                    wv.len()
                )),
                None => problems.push(format!(
                    "header #{i} {wn}: {gv:?} is not a redaction marker [REDACTED len=N hash=HEX16]"
                )),
            }
        } else if gv != wv {
            problems.push(format!(
                "header #{i} {wn}: value {gv:?}, on the wire {wv:?}"
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}\n    captured: {got:?}\n    on wire:  {wire:?}",
            problems.join("\n    ")
        ))
    }
}

fn check_ts(rec: &Value, cap: &Capture) -> Result<i64, String> {
    let ts = rec["ts"].as_str().ok_or("no ts string")?;
    let parsed = chrono::DateTime::parse_from_rfc3339(ts).map_err(|e| format!("ts {ts:?}: {e}"))?;
    if !ts.ends_with('Z') {
        return Err(format!("ts {ts:?} is not UTC (…Z)"));
    }
    let ns = parsed.timestamp_nanos_opt().ok_or("ts out of range")?;
    let lo = cap.started.duration_since(UNIX_EPOCH).unwrap().as_nanos() as i64 - 2_000_000_000;
    let hi = cap.stopped.duration_since(UNIX_EPOCH).unwrap().as_nanos() as i64 + 2_000_000_000;
    if ns < lo || ns > hi {
        return Err(format!("ts {ts:?} is outside hdrtap's run"));
    }
    Ok(ns)
}

#[allow(clippy::too_many_arguments)]
fn check_common(
    rec: &Value,
    cap: &Capture,
    side: Role,
    pid: u32,
    tid: Option<u32>,
    comm: &str,
    local: &Endpoint,
    remote: &Endpoint,
    exp: &Expect,
) -> Vec<String> {
    let mut p = Vec::new();
    let mut want = |what: &str, got: &Value, want: Value| {
        if *got != want {
            p.push(format!("{what}: got {got}, want {want}"));
        }
    };
    want("role", &rec["role"], json!(side.as_str()));
    want("pid", &rec["pid"], json!(pid));
    if let Some(tid) = tid {
        want("tid", &rec["tid"], json!(tid));
    }
    want("comm", &rec["comm"], json!(comm));
    want(
        "local",
        &rec["local"],
        json!({"ip": local.ip, "port": local.port}),
    );
    want(
        "remote",
        &rec["remote"],
        json!({"ip": remote.ip, "port": remote.port}),
    );
    want("tls", &rec["tls"], json!(exp.tls_library.is_some()));
    want(
        "source",
        &rec["source"],
        json!(if exp.tls_library.is_some() {
            "tls"
        } else {
            "syscall"
        }),
    );
    want(
        "tls_library",
        &rec["tls_library"],
        exp.tls_library.as_ref().map_or(Value::Null, |l| json!(l)),
    );
    let truncated = kind(rec) == "http_request" && exp.truncated_requests.is_some();
    want("truncated", &rec["truncated"], json!(truncated));
    if !rec["tid"].is_u64() {
        p.push(format!("tid is not a number: {}", rec["tid"]));
    }
    if !rec["conn_id"].is_u64() {
        p.push(format!("conn_id is not a number: {}", rec["conn_id"]));
    }
    if !rec["cgroup_id"].is_u64() {
        p.push(format!("cgroup_id is not a number: {}", rec["cgroup_id"]));
    }
    match &rec["flags"] {
        Value::Null => {}
        Value::Array(flags) => {
            if flags.is_empty() {
                p.push("flags is present but empty (should be omitted)".into());
            }
            for f in flags {
                if !exp.allowed_flags.iter().any(|a| f == a.as_str()) {
                    p.push(format!("unexpected flag {f}"));
                }
            }
        }
        other => p.push(format!("flags is not an array: {other}")),
    }
    if let Err(e) = check_ts(rec, cap) {
        p.push(e);
    }
    p
}

/// Check that every exchange of `run` appears exactly once on `side` (client:
/// the client process; server: nginx), with the headers exactly as on the wire,
/// right tuple/pid/comm, responses paired with the right request, latency > 0,
/// requests and responses in wire order, one conn_id per connection.
pub fn check_side(cap: &Capture, run: &ClientRun, side: Role, exp: &Expect) {
    assert!(
        !run.exchanges.is_empty(),
        "nothing to check: the client run has no exchanges"
    );
    let (pid, tid, comm) = match side {
        Role::Client => (run.pid, run.tid, run.comm.clone()),
        Role::Server => (exp.server_pid, Some(exp.server_pid), "nginx".to_string()),
    };
    let test_ids: BTreeSet<&str> = run.exchanges.iter().map(|e| e.test_id.as_str()).collect();
    let on_side = |v: &Value| is_http(v) && v["role"] == side.as_str() && v["pid"] == json!(pid);
    let context = || {
        format!(
            "\n--- {} side records of pid {pid}:\n{}--- all records:\n{}",
            side.as_str(),
            cap.dump(|v| on_side(v)),
            cap.dump_all()
        )
    };
    let mut problems: Vec<String> = Vec::new();
    let mut conn_ids: BTreeMap<(Endpoint, Endpoint), BTreeSet<u64>> = BTreeMap::new();

    for ex in &run.exchanges {
        let (local, remote) = match side {
            Role::Client => (&ex.local, &ex.remote),
            Role::Server => (&ex.remote, &ex.local),
        };
        let tag = format!("{} {}#{}", side.as_str(), ex.test_id, ex.seq);
        assert_eq!(
            ex.remote.port, exp.server_port,
            "harness: {tag} went to port {}, not to this nginx",
            ex.remote.port
        );
        let reqs: Vec<&Value> = cap
            .http()
            .filter(|v| {
                kind(v) == "http_request"
                    && v["role"] == side.as_str()
                    && header(v, "X-Test-Id").as_deref() == Some(&ex.test_id)
                    && header(v, "X-Seq") == Some(ex.seq.to_string())
            })
            .collect();
        if reqs.len() != 1 {
            problems.push(format!(
                "{tag} {} {}: {} request records, want exactly 1: {reqs:?}",
                ex.request.method,
                ex.request.target,
                reqs.len()
            ));
            continue;
        }
        let rq = reqs[0];
        let mut p = check_common(rq, cap, side, pid, tid, &comm, local, remote, exp);
        for (what, want) in [
            ("method", json!(ex.request.method)),
            ("target", json!(ex.request.target)),
            ("version", json!(ex.request.version)),
            ("header_bytes", json!(ex.request.header_bytes)),
        ] {
            if rq[what] != want {
                p.push(format!("{what}: got {}, want {want}", rq[what]));
            }
        }
        let wire = match exp.truncated_requests {
            Some(n) => &ex.request.headers[..n.min(ex.request.headers.len())],
            None => &ex.request.headers[..],
        };
        if let Err(e) = compare_headers(&headers_of(rq), wire, exp) {
            p.push(e);
        }
        for x in p {
            problems.push(format!("{tag} request: {x}\n    record: {rq}"));
        }
        if let Some(id) = rq["conn_id"].as_u64() {
            conn_ids
                .entry((local.clone(), remote.clone()))
                .or_default()
                .insert(id);
        }

        let Some(resp) = &ex.response else { continue };
        let resps: Vec<&Value> = cap
            .http()
            .filter(|v| {
                kind(v) == "http_response"
                    && v["role"] == side.as_str()
                    && header(v, "X-Echo-Test-Id").as_deref() == Some(&ex.test_id)
                    && header(v, "X-Echo-Seq") == Some(ex.seq.to_string())
            })
            .collect();
        if resps.len() != 1 {
            problems.push(format!(
                "{tag} response {}: {} response records, want exactly 1: {resps:?}",
                resp.status,
                resps.len()
            ));
            continue;
        }
        let rs = resps[0];
        let mut p = check_common(rs, cap, side, pid, tid, &comm, local, remote, exp);
        for (what, want) in [
            ("status", json!(resp.status)),
            ("reason", json!(resp.reason)),
            ("version", json!(resp.version)),
            ("header_bytes", json!(resp.header_bytes)),
            (
                "request",
                json!({"method": ex.request.method, "target": ex.request.target}),
            ),
            ("conn_id", rq["conn_id"].clone()),
        ] {
            if rs[what] != want {
                p.push(format!("{what}: got {}, want {want}", rs[what]));
            }
        }
        match rs["latency_ns"].as_u64() {
            Some(l) if l > 0 => {}
            _ => p.push(format!(
                "latency_ns: got {}, want a number > 0",
                rs["latency_ns"]
            )),
        }
        if let (Ok(a), Ok(b)) = (check_ts(rq, cap), check_ts(rs, cap)) {
            if b < a {
                p.push(format!(
                    "response ts {} is before its request's {}",
                    rs["ts"], rq["ts"]
                ));
            }
        }
        if let Err(e) = compare_headers(&headers_of(rs), &resp.headers, exp) {
            p.push(e);
        }
        for x in p {
            problems.push(format!("{tag} response: {x}\n    record: {rs}"));
        }
    }

    // Wire order: per connection, X-Seq of requests (and X-Echo-Seq of
    // responses) in file order must be the order the client sent them.
    let mut by_conn: BTreeMap<(Endpoint, Endpoint), Vec<&Exchange>> = BTreeMap::new();
    for ex in &run.exchanges {
        by_conn
            .entry((ex.local.clone(), ex.remote.clone()))
            .or_default()
            .push(ex);
    }
    for ((l, r), exs) in &by_conn {
        let sent: Vec<String> = exs
            .iter()
            .map(|e| format!("{}#{}", e.test_id, e.seq))
            .collect();
        let in_file = |k: &str, id_h: &str, seq_h: &str| -> Vec<String> {
            cap.http()
                .filter(|v| kind(v) == k && v["role"] == side.as_str())
                .filter_map(|v| Some((header(v, id_h)?, header(v, seq_h)?)))
                .filter(|(id, seq)| {
                    exs.iter()
                        .any(|e| &e.test_id == id && e.seq.to_string() == *seq)
                })
                .map(|(id, seq)| format!("{id}#{seq}"))
                .collect()
        };
        let reqs = in_file("http_request", "X-Test-Id", "X-Seq");
        if reqs != sent {
            problems.push(format!(
                "{} side, connection {l} -> {r}: requests in output order {reqs:?}, sent {sent:?}",
                side.as_str()
            ));
        }
        let want_resp: Vec<String> = exs
            .iter()
            .filter(|e| e.response.is_some())
            .map(|e| format!("{}#{}", e.test_id, e.seq))
            .collect();
        let resps = in_file("http_response", "X-Echo-Test-Id", "X-Echo-Seq");
        if resps != want_resp {
            problems.push(format!(
                "{} side, connection {l} -> {r}: responses in output order {resps:?}, received {want_resp:?}",
                side.as_str()
            ));
        }
    }
    // One conn_id per connection, distinct connections distinct ids.
    let mut seen: BTreeMap<u64, (Endpoint, Endpoint)> = BTreeMap::new();
    for (conn, ids) in &conn_ids {
        if ids.len() != 1 {
            problems.push(format!(
                "{} side, connection {} -> {}: several conn_ids {ids:?}",
                side.as_str(),
                conn.0,
                conn.1
            ));
        }
        for id in ids {
            if let Some(other) = seen.insert(*id, conn.clone()) {
                problems.push(format!(
                    "{} side: conn_id {id} used for {} -> {} and {} -> {}",
                    side.as_str(),
                    other.0,
                    other.1,
                    conn.0,
                    conn.1
                ));
            }
        }
    }
    // Nothing extra for these test ids (duplicates, phantom records).
    let expected = run.expected_records(1);
    let extra: Vec<&Value> = cap
        .http()
        .filter(|v| v["role"] == side.as_str())
        .filter(|v| {
            header(v, "X-Test-Id")
                .or_else(|| header(v, "X-Echo-Test-Id"))
                .is_some_and(|id| test_ids.contains(id.as_str()))
        })
        .collect();
    if extra.len() != expected {
        problems.push(format!(
            "{} side: {} records carry these test ids, want {expected}",
            side.as_str(),
            extra.len()
        ));
    }
    assert!(
        problems.is_empty(),
        "{} problem(s) on the {} side:\n  {}{}",
        problems.len(),
        side.as_str(),
        problems.join("\n  "),
        context()
    );
}

/// Both sides.
pub fn check_both_sides(cap: &Capture, run: &ClientRun, exp: &Expect) {
    check_side(cap, run, Role::Client, exp);
    check_side(cap, run, Role::Server, exp);
}

/// Every http record must involve `port` (hdrtap ran with `--port port`).
pub fn check_port_filter(cap: &Capture, port: u16) {
    let bad: Vec<&Value> = cap
        .http()
        .filter(|v| v["local"]["port"] != json!(port) && v["remote"]["port"] != json!(port))
        .collect();
    assert!(
        bad.is_empty(),
        "with --port {port}, {} record(s) involve neither end on port {port}:\n{bad:#?}",
        bad.len()
    );
}

/// Compare nginx's access log with the client's requests and with hdrtap's
/// server-side records: one log line per request, same method/URI/protocol/
/// status/client port, and every logged header value equal to the value the
/// client sent and (unless redacted) to the value hdrtap captured from nginx.
pub fn check_access_log(nginx: &Nginx, cap: &Capture, run: &ClientRun, exp: &Expect) {
    // nginx writes the log line after the response; give it a moment.
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut log = nginx.access_log();
    while Instant::now() < deadline
        && run.exchanges.iter().any(|e| {
            !log.iter().any(|l| {
                l["x_test_id"] == e.test_id.as_str()
                    && l["x_seq"].as_str() == Some(&e.seq.to_string())
            })
        })
    {
        thread::sleep(Duration::from_millis(50));
        log = nginx.access_log();
    }
    let mut problems = Vec::new();
    for ex in &run.exchanges {
        let tag = format!("{}#{}", ex.test_id, ex.seq);
        let lines: Vec<&Value> = log
            .iter()
            .filter(|l| {
                l["x_test_id"] == ex.test_id.as_str()
                    && l["x_seq"].as_str() == Some(&ex.seq.to_string())
            })
            .collect();
        if lines.len() != 1 {
            problems.push(format!("{tag}: {} access log lines, want 1", lines.len()));
            continue;
        }
        let l = lines[0];
        let status = ex
            .response
            .as_ref()
            .map(|r| r.status.to_string())
            .unwrap_or_default();
        for (field, want) in [
            ("method", ex.request.method.clone()),
            ("uri", ex.request.target.clone()),
            ("protocol", ex.request.version.clone()),
            ("status", status),
            ("remote_port", ex.local.port.to_string()),
        ] {
            if l[field] != want.as_str() {
                problems.push(format!(
                    "{tag}: nginx logged {field}={}, client says {want:?}",
                    l[field]
                ));
            }
        }
        let server_rec = cap.http().find(|v| {
            kind(v) == "http_request"
                && v["role"] == "server"
                && header(v, "X-Test-Id").as_deref() == Some(&ex.test_id)
                && header(v, "X-Seq") == Some(ex.seq.to_string())
        });
        for (var, name) in LOGGED_HEADERS {
            let logged = l[*var].as_str().unwrap_or("");
            let sent = header_in(&ex.request.headers, name).unwrap_or("");
            if logged != sent {
                problems.push(format!(
                    "{tag}: nginx logged {name}: {logged:?}, client sent {sent:?}"
                ));
            }
            if exp.is_redacted(name) {
                continue;
            }
            if let Some(rec) = server_rec {
                let captured = header(rec, name).unwrap_or_default();
                if captured != logged {
                    problems.push(format!(
                        "{tag}: hdrtap (server side) captured {name}: {captured:?}, nginx logged {logged:?}"
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "access log vs client vs hdrtap:\n  {}\naccess log:\n{}\n{}",
        problems.join("\n  "),
        log.iter()
            .map(|l| l.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
        cap.dump_all()
    );
}

/// What a long-body run's last stats record says (bytes).
pub struct BodyCounts {
    pub copied: u64,
    pub not_copied: u64,
    /// Response bodies the kernel framed itself.
    pub framed: u64,
}

/// Run `reqs` (one curl, one connection) while hdrtap runs, and check every
/// record on both sides (`exp`); no record flagged; nothing lost, no gap,
/// no resync; and every byte of the `bodies` bytes the long bodies moved
/// (both ends counted) copied, clipped or counted in
/// `body_bytes_not_copied`.
fn long_body_run(nginx: &Nginx, exp: &Expect, reqs: &[CurlRequest], bodies: u64) -> BodyCounts {
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string()]);
    let run = curl(reqs);
    let cap = hd.stop_when_http_count(run.expected_records(2));
    check_both_sides(&cap, &run, exp);
    let flagged: Vec<&Value> = cap.http().filter(|v| v.get("flags").is_some()).collect();
    assert!(flagged.is_empty(), "flagged records: {flagged:#?}");
    let stats = cap.stats().last().expect("no stats record");
    for field in ["lost_events", "gaps", "resyncs"] {
        assert_eq!(stats[field], 0, "{field}: {stats}");
    }
    let n = |f: &str| stats[f].as_u64().unwrap_or_else(|| panic!("{f}: {stats}"));
    let counts = BodyCounts {
        copied: n("captured_bytes"),
        not_copied: n("body_bytes_not_copied"),
        framed: n("bodies_framed_in_kernel"),
    };
    let clipped = n("clipped_bytes"); // calls of more than --call-capture
    assert!(
        counts.copied + counts.not_copied + clipped >= bodies,
        "body bytes unaccounted for: {} copied + {} not copied + {clipped} clipped < {bodies}",
        counts.copied,
        counts.not_copied
    );
    eprintln!(
        "{} of {bodies} body bytes not copied, {} copied; {} bodies framed in the kernel",
        counts.not_copied, counts.copied, counts.framed
    );
    counts
}

/// Long bodies at network speed: curl fetches `/huge` (4 MiB, 10 MB/s)
/// three times, then a small page, on one connection (see
/// `long_body_run` for what every run checks). The first bytes of each
/// body are copied until it is framed; then the kernel stops copying it.
/// At least three quarters of the body bytes must not be copied.
pub fn check_long_bodies_not_copied(nginx: &Nginx, exp: &Expect) {
    let id = unique_id("huge");
    // At 10 MB/s (here and in nginx's limit_rate) a body takes ~400 ms: a
    // transfer over a real network, not loopback at memory speed.
    let huge = |seq| {
        CurlRequest::get(nginx.url_v4("/huge"), &id, seq)
            .arg("--limit-rate")
            .arg("10M")
    };
    let reqs = [
        huge(1),
        huge(2),
        huge(3),
        CurlRequest::get(nginx.url_v4("/?after=huge"), &id, 4),
    ];
    // Three bodies cross the hooks twice: nginx's writes, curl's reads.
    let bodies = 3 * 2 * HUGE_BYTES;
    let c = long_body_run(nginx, exp, &reqs, bodies);
    // 95-98% was not copied in eleven runs (HTTP and HTTPS) before the
    // kernel framed responses itself.
    assert!(
        c.not_copied >= bodies * 3 / 4,
        "only {} of {bodies} body bytes were not copied",
        c.not_copied
    );
}

/// Long bodies at memory speed (`/huge-fast`): nginx can write a whole
/// 4 MiB body into loopback's socket buffers before hdrtap has read its
/// header block, so only the kernel's own framing of the response (its
/// Content-Length, read in the call that carries the header block) keeps
/// the rest out of the ring. Three downloads, then HEAD of the same file
/// (a Content-Length of 4 MiB and no body: nothing may be skipped after
/// it) and a small page, on one connection. Both ends frame every GET's
/// body in the kernel (`bodies_framed_in_kernel` = 3 per side), and at
/// most one call's bytes per body and side are copied.
pub fn check_long_bodies_framed_in_kernel(nginx: &Nginx, exp: &Expect) {
    let id = unique_id("hugefast");
    let huge = |seq| CurlRequest::get(nginx.url_v4("/huge-fast"), &id, seq);
    let reqs = [
        huge(1),
        huge(2),
        huge(3),
        huge(4).arg("--head"),
        CurlRequest::get(nginx.url_v4("/?after=head"), &id, 5),
    ];
    let bodies = 3 * 2 * HUGE_BYTES;
    let c = long_body_run(nginx, exp, &reqs, bodies);
    assert_eq!(c.framed, 6, "bodies framed in the kernel");
    // The header block's call and a few before the skip entry is read:
    // well under 5% of each body (a call is at most a few hundred KiB).
    assert!(
        c.not_copied >= bodies / 100 * 95,
        "only {} of {bodies} body bytes were not copied",
        c.not_copied
    );
}

/// Long request bodies (uploads: the kernel frames responses only, so
/// these are skipped at userspace's request alone): curl POSTs 4 MiB twice
/// at 10 MB/s, then GETs a small page, on one connection. Nothing is
/// framed in the kernel, and at least three quarters of the body bytes are
/// not copied.
pub fn check_long_uploads_not_copied(nginx: &Nginx, exp: &Expect) {
    let id = unique_id("upload");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("upload.bin");
    std::fs::write(&file, vec![b'u'; HUGE_BYTES as usize]).unwrap();
    let data = format!("@{}", file.display());
    let post = |seq| {
        CurlRequest::get(nginx.url_v4("/?upload"), &id, seq)
            .arg("--data-binary")
            .arg(&data)
            .arg("--limit-rate")
            .arg("10M")
            // No "Expect: 100-continue": the trace parser takes one
            // response per request.
            .arg("-H")
            .arg("Expect:")
    };
    let reqs = [
        post(1),
        post(2),
        CurlRequest::get(nginx.url_v4("/?after=upload"), &id, 3),
    ];
    let bodies = 2 * 2 * HUGE_BYTES;
    let c = long_body_run(nginx, exp, &reqs, bodies);
    assert_eq!(c.framed, 0, "request bodies are not framed in the kernel");
    assert!(
        c.not_copied >= bodies * 3 / 4,
        "only {} of {bodies} body bytes were not copied",
        c.not_copied
    );
}
