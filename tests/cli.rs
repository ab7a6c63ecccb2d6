//! Command line behaviour: errors, doctor, not-root, lifecycle (SIGTERM,
//! SIGINT, --duration, summary and stats). Root only; run with scripts/test.sh.
#![forbid(unsafe_code)]
use std::{
    os::unix::process::CommandExt,
    process::{Command, Output},
    time::{Duration, Instant},
};

use hdrtap_tests::*;

/// hdrtap with a clean environment: what a user sees by default.
fn hdrtap(args: &[&str]) -> Output {
    run_clean(&hdrtap_bin(), args)
}

#[test]
fn not_root_is_one_line_error() {
    let _guard = setup();
    let (_dir, bin) = world_executable_copy();
    let dir = tempfile::tempdir().unwrap();
    let out = run_with_timeout(
        Command::new(&bin)
            .args(["http", "--json"])
            .current_dir(dir.path())
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE")
            .env_remove("RUST_LOG")
            .uid(65534)
            .gid(65534),
        Duration::from_secs(60),
    );
    assert_one_line_error(
        &["http", "--json", "(as uid 65534)"],
        &out,
        &["root", "privilege", "permission", "cap_bpf", "capabilit"],
    );
}

#[test]
fn doctor_passes_and_mentions_btf_and_tracefs() {
    let _guard = setup();
    let out = hdrtap(&["doctor"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "hdrtap doctor exited {} on this machine:\n{text}",
        out.status
    );
    assert!(!text.contains("panicked"), "{text}");
    assert!(text.contains("BTF"), "doctor does not mention BTF:\n{text}");
    assert!(
        text.to_lowercase().contains("tracefs"),
        "doctor does not mention tracefs:\n{text}"
    );
    let rows = text.lines().filter(|l| !l.trim().is_empty()).count();
    assert!(
        rows >= 3,
        "doctor printed {rows} line(s), expected a table:\n{text}"
    );
}

/// `doctor --json`: one object, a verdict per capture that matches what
/// this kernel has (TCX from 6.6, else the clsact fallback), and every
/// capture the other tests run here available.
#[test]
fn doctor_json_has_a_verdict_per_capture() {
    let _guard = setup();
    let out = hdrtap(&["doctor", "--json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "exit {}: {stdout}", out.status);
    let v: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(v["kind"], "doctor");
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(v["kernel"], release.trim());
    let caps = v["capabilities"].as_array().expect("capabilities");
    let status = |key: &str| {
        caps.iter()
            .find(|c| c["key"] == key)
            .unwrap_or_else(|| panic!("no verdict on {key}: {stdout}"))["status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    for key in ["http", "https", "packets-xdp", "packets-socket"] {
        assert_eq!(status(key), "ok", "{key}: {stdout}");
    }
    let tc = if kernel_has_tcx() { "ok" } else { "fallback" };
    assert_eq!(status("packets-tc"), tc, "{stdout}");
    assert!(
        ["ok", "fallback"].contains(&status("attribution").as_str()),
        "{stdout}"
    );
    let checks = v["checks"].as_array().expect("checks");
    assert!(
        checks
            .iter()
            .any(|c| c["name"] == "feature bpf_loop" && c["status"] == "ok"),
        "{stdout}"
    );
}

/// (g) SIGTERM: exit 0, summary on stderr, final stats record.
#[test]
fn sigterm_prints_summary_and_final_stats() {
    let _guard = setup();
    let nginx = Nginx::start();
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string()]);
    let id = unique_id("sum");
    let run = curl(&[
        CurlRequest::get(nginx.url_v4("/"), &id, 1),
        CurlRequest::get(nginx.url_v4("/status/404"), &id, 2),
    ]);
    let cap = hd.stop_when_http_count(run.expected_records(2));
    check_both_sides(&cap, &run, &Expect::new(&nginx));

    let lower = cap.stderr.to_lowercase();
    assert!(
        lower.contains("record"),
        "summary does not mention records:\n{}",
        cap.stderr
    );
    assert!(
        lower.contains("lost"),
        "summary does not mention lost events:\n{}",
        cap.stderr
    );

    let last = cap.records.last().expect("no records at all");
    assert_eq!(
        kind(last),
        "stats",
        "the last record is not a stats record:\n{}",
        cap.dump_all()
    );
    let http = cap.http().count() as u64;
    for field in [
        "lost_events",
        "read_failures",
        "truncated_messages",
        "parse_errors",
        "records",
    ] {
        assert!(
            last[field].is_u64(),
            "final stats has no numeric {field}: {last}"
        );
    }
    assert_eq!(
        last["lost_events"], 0,
        "events lost in a 4-message test: {last}"
    );
    assert_eq!(
        last["parse_errors"], 0,
        "parse errors on nginx/curl traffic: {last}"
    );
    assert_eq!(last["truncated_messages"], 0, "{last}");
    assert_eq!(
        last["records"],
        http,
        "final stats says records={}, the output holds {http} http records:\n{}",
        last["records"],
        cap.dump_all()
    );
    assert!(last["ts"].is_string(), "stats record without ts: {last}");
}

/// The exit summary shows the traffic, not only hdrtap's health: per side
/// the status mix, latency percentiles and the busiest endpoints (routes:
/// `/nope/42` is `/nope/*`), and the alerts by rule.
#[test]
fn exit_summary_shows_the_traffic() {
    let _guard = setup();
    let nginx = Nginx::start();
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string()]);
    let id = unique_id("sum");
    let _run = curl(&[
        CurlRequest::get(nginx.url_v4("/"), &id, 1),
        CurlRequest::get(nginx.url_v4("/nope/42"), &id, 2),
        CurlRequest::get(nginx.url_v4("/"), &id, 3).header("User-Agent", "sqlmap/1.7.2"),
    ]);
    let cap = hd.stop_when(Duration::from_secs(30), |r| {
        r.iter().filter(|v| kind(v) == "http_response").count() >= 6
    });
    let lines: Vec<&str> = cap.stderr.lines().collect();
    let what = format!("stderr:\n{}", cap.stderr);
    for side in ["served (server side)", "requested (client side)"] {
        let head = lines
            .iter()
            .position(|l| {
                l.starts_with(&format!(
                    "hdrtap: {side}: 3 responses: 2xx 2, 4xx 1; latency p50 "
                ))
            })
            .unwrap_or_else(|| panic!("no {side} line; {what}"));
        assert!(
            lines[head + 1].starts_with("hdrtap:   busiest: GET / 2, GET /nope/* 1"),
            "{what}"
        );
        assert!(
            lines[head + 2].starts_with("hdrtap:   slowest (mean): "),
            "{what}"
        );
    }
    assert!(
        lines.contains(&"hdrtap: alerts: 2 (scanner_user_agent 2)"),
        "{what}"
    );
}

/// SIGINT behaves like SIGTERM.
#[test]
fn sigint_flushes_and_exits_zero() {
    let _guard = setup();
    let nginx = Nginx::start();
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string()]);
    let id = unique_id("int");
    let run = curl(&[CurlRequest::get(nginx.url_v4("/"), &id, 1)]);
    std::thread::sleep(Duration::from_millis(300));
    let cap = hd.stop_with(libc::SIGINT);
    check_both_sides(&cap, &run, &Expect::new(&nginx));
    cap.assert_ends_with_stats();
}

/// --duration N exits 0 by itself after about N seconds; --stats-interval
/// emits periodic stats records.
#[test]
fn duration_and_stats_interval() {
    let _guard = setup();
    let nginx = Nginx::start();
    let hd = Hdrtap::start(&[
        "--port",
        &nginx.port.to_string(),
        "--duration",
        "3",
        "--stats-interval",
        "1",
    ]);
    let ready = Instant::now();
    let id = unique_id("dur");
    let run = curl(&[CurlRequest::get(nginx.url_v4("/"), &id, 1)]);
    let cap = hd.wait_exit(Duration::from_secs(20));
    let took = ready.elapsed();
    assert!(
        took >= Duration::from_millis(1500),
        "--duration 3 exited after {took:?}"
    );
    assert!(
        took <= Duration::from_secs(15),
        "--duration 3 exited after {took:?}"
    );
    check_both_sides(&cap, &run, &Expect::new(&nginx));
    let stats = cap.stats().count();
    assert!(
        stats >= 2,
        "--stats-interval 1 over 3 s gave {stats} stats record(s):\n{}",
        cap.dump_all()
    );
    cap.assert_ends_with_stats();
}

/// `-c N` (tcpdump's habit): hdrtap stops by itself after N records,
/// exactly N, then writes its final stats record and exits 0.
#[test]
fn count_stops_after_exactly_n_http_records() {
    let _guard = setup();
    let nginx = Nginx::start();
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string(), "-c", "3"]);
    let id = unique_id("count");
    // Each exchange is 4 records (both ends are local): 3 come from the first.
    let _run = curl(&[
        CurlRequest::get(nginx.url_v4("/"), &id, 1),
        CurlRequest::get(nginx.url_v4("/"), &id, 2),
    ]);
    let cap = hd.wait_exit(Duration::from_secs(30));
    assert_eq!(cap.http().count(), 3, "{}", cap.dump_all());
    cap.assert_ends_with_stats();
}

/// tcpdump habits in `hdrtap packets`: `-i any`, `-c N`, `-n`, and options
/// after the filter expression.
#[test]
fn packets_any_interface_count_and_n() {
    let _guard = setup();
    let hd = Hdrtap::start_with(
        &["packets", "--json"],
        &["-i", "any", "icmp", "-nn", "-c", "5"],
    );
    let ping = Command::new("ping")
        .args(["-c", "20", "-i", "0.2", "-W", "1", "127.0.0.1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("ping");
    let cap = hd.wait_exit(Duration::from_secs(30));
    let mut ping = ping;
    let _ = ping.kill();
    let _ = ping.wait();
    let packets: Vec<_> = cap.records.iter().filter(|v| kind(v) == "packet").collect();
    assert_eq!(packets.len(), 5, "{}", cap.dump_all());
    assert!(
        packets.iter().all(|p| p["icmp"].is_object()),
        "not all ICMP: {}",
        cap.dump_all()
    );
}

/// `-o -` is stdout (no file named `-`).
#[test]
fn output_dash_is_stdout() {
    let _guard = setup();
    let nginx = Nginx::start();
    let dir = tempfile::tempdir().unwrap();
    let (ready, out, err) = (
        dir.path().join("ready"),
        dir.path().join("stdout"),
        dir.path().join("stderr"),
    );
    let port = nginx.port.to_string();
    let mut cmd = Command::new(hdrtap_bin());
    cmd.args(["http", "--json", "-o", "-", "-c", "2", "--port", &port])
        .arg("--ready-file")
        .arg(&ready)
        .current_dir(dir.path());
    let stdout = std::fs::File::create(&out).unwrap().into();
    let mut child = spawn_until_ready_to(&mut cmd, stdout, &ready, &err, "hdrtap http -o -");
    let _run = curl(&[CurlRequest::get(nginx.url_v4("/"), &unique_id("dash"), 1)]);
    let status = wait_timeout(&mut child, Duration::from_secs(30)).expect("-c 2 did not stop");
    assert!(status.success(), "{status}");
    let text = std::fs::read_to_string(&out).unwrap();
    let http = text
        .lines()
        .filter(|l| l.contains("\"kind\":\"http_"))
        .count();
    assert_eq!(http, 2, "stdout:\n{text}");
    assert!(!dir.path().join("-").exists(), "a file named - was created");
}

/// Records that cannot be written (stdout on /dev/full) are a warning at
/// the first failure and a non-zero exit, never a silent exit 0.
#[test]
fn lost_output_is_a_warning_and_a_failed_exit() {
    let _guard = setup();
    let nginx = Nginx::start();
    let dir = tempfile::tempdir().unwrap();
    let (ready, err) = (dir.path().join("ready"), dir.path().join("stderr"));
    let port = nginx.port.to_string();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let mut cmd = Command::new(hdrtap_bin());
    cmd.args(["http", "--json", "--port", &port])
        .arg("--ready-file")
        .arg(&ready);
    let mut child = spawn_until_ready_to(
        &mut cmd,
        full.into(),
        &ready,
        &err,
        "hdrtap http > /dev/full",
    );
    let _run = curl(&[CurlRequest::get(nginx.url_v4("/"), &unique_id("full"), 1)]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&err)
        .unwrap_or_default()
        .contains("warning: cannot write records")
    {
        assert!(Instant::now() < deadline, "no warning on stderr");
        std::thread::sleep(Duration::from_millis(50));
    }
    send_signal(child.id(), libc::SIGINT);
    let status = wait_timeout(&mut child, Duration::from_secs(20)).expect("no exit after SIGINT");
    let stderr = std::fs::read_to_string(&err).unwrap();
    assert_eq!(status.code(), Some(1), "stderr:\n{stderr}");
    assert!(stderr.contains("could not be written"), "stderr:\n{stderr}");
    assert_eq!(
        stderr.matches("warning: cannot write records").count(),
        1,
        "one warning: {stderr}"
    );
}

/// `--print`: NDJSON to the file, readable lines on stdout at the same time.
#[test]
fn print_shows_readable_lines_while_the_file_gets_json() {
    let _guard = setup();
    let nginx = Nginx::start();
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string(), "--print", "-c", "4"]);
    let id = unique_id("print");
    let _run = curl(&[CurlRequest::get(nginx.url_v4("/printed"), &id, 1)]);
    let cap = hd.wait_exit(Duration::from_secs(30));
    assert_eq!(cap.http().count(), 4, "{}", cap.dump_all());
    let text = &cap.stdout;
    // Two requests and two responses (which name their request), readable.
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("/printed")).collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines.iter().all(|l| !l.starts_with('{')), "{text}");
    let requests = lines
        .iter()
        .filter(|l| l.contains("GET /printed HTTP/1.1 |"))
        .count();
    assert_eq!(requests, 2, "{text}");
}

/// `hdrtap show FILE` and `hdrtap http -r FILE` read a real capture back:
/// every record as a readable line, the same filters as `hdrtap http`
/// (an alert goes with its record), `--json` keeps the lines as written,
/// `-v` puts each header on a line of its own, `--color always` colours the
/// status, and a line that is not a record is said and makes exit 1.
#[test]
fn show_reads_a_capture_back_with_the_http_filters() {
    let _guard = setup();
    let nginx = Nginx::start();
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string()]);
    let id = unique_id("show");
    let _run = curl(&[
        CurlRequest::get(nginx.url_v4("/?shown=1"), &id, 1),
        CurlRequest::get(nginx.url_v4("/status/404"), &id, 2).header("User-Agent", "sqlmap/1.7"),
    ]);
    let cap = hd.stop_when_http_count(8);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("saved.ndjson");
    std::fs::write(&file, &cap.raw).unwrap();
    let path = file.to_str().unwrap();
    let text = |o: &Output| String::from_utf8_lossy(&o.stdout).to_string();

    let all = hdrtap(&["show", path]);
    assert!(
        all.status.success(),
        "{}",
        String::from_utf8_lossy(&all.stderr)
    );
    let lines = text(&all);
    let http = cap.http().count();
    let alerts = cap.records.iter().filter(|r| kind(r) == "alert").count();
    assert!(alerts >= 2, "no scanner alerts:\n{}", cap.dump_all());
    assert_eq!(lines.lines().count(), http + alerts, "{lines}");
    assert!(!lines.contains('\x1b'), "colour into a pipe:\n{lines}");
    assert!(lines.contains("GET /?shown=1 HTTP/1.1 | "), "{lines}");
    let stderr = String::from_utf8_lossy(&all.stderr);
    assert!(
        stderr.contains(&format!(
            "{http} records shown, 0 filtered out, {alerts} alerts"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("2xx 1, 4xx 1"),
        "no status mix in the summary:\n{stderr}"
    );

    // The server's 404, once; the scanner request's alerts go with their
    // records (filtered out here: they are requests).
    let o = hdrtap(&["show", "--status", "4xx", "--side", "server", path]);
    let l = text(&o);
    assert_eq!(l.lines().count(), 1, "{l}");
    assert!(l.contains("404") && l.contains("server"), "{l}");
    let o = hdrtap(&[
        "http",
        "-r",
        path,
        "--path",
        "/status/*",
        "--side",
        "client",
    ]);
    let l = text(&o);
    assert_eq!(
        l.lines().filter(|x| x.contains(" ALERT ")).count(),
        1,
        "{l}"
    );
    assert_eq!(l.lines().count(), 3, "request, its alert, response:\n{l}");

    // --json: the kept lines exactly as written; -c counts HTTP records.
    let o = hdrtap(&["show", "--json", "--method", "GET", "-c", "3", path]);
    let kept = text(&o);
    let originals: Vec<&str> = cap.raw.lines().collect();
    let http_lines: Vec<&str> = kept
        .lines()
        .filter(|l| l.contains("\"kind\":\"http_"))
        .collect();
    assert_eq!(http_lines.len(), 3, "{kept}");
    for l in kept.lines() {
        assert!(originals.contains(&l), "not a line of the file: {l}");
    }

    // -v: the start line, then every header indented.
    let o = hdrtap(&["show", "-v", "--status", "200", "--side", "client", path]);
    let l = text(&o);
    let resp = cap
        .http()
        .find(|r| r["status"] == 200 && r["role"] == "client")
        .unwrap();
    assert_eq!(l.lines().count(), 1 + headers_of(resp).len(), "{l}");
    assert!(l.lines().skip(1).all(|x| x.starts_with("    ")), "{l}");

    // --color always: the status in its class's colour; NO_COLOR stops auto only.
    let o = hdrtap(&["show", "--color", "always", "--status", "404", path]);
    assert!(text(&o).contains("\x1b[33m404"), "{:?}", text(&o));

    // A line that is not a record: said with its line number, exit 1.
    let mut bad = cap.raw.clone();
    bad.push_str("{\"kind\":\"http_request\",\"id\":\"x\"}\n");
    std::fs::write(&file, bad).unwrap();
    let o = hdrtap(&["show", path]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let n = cap.raw.lines().count() + 1;
    assert!(
        err.contains(&format!("saved.ndjson:{n}: not an hdrtap record")),
        "{err}"
    );
    assert!(err.contains("1 unreadable lines skipped"), "{err}");
    assert_eq!(text(&o).lines().count(), http + alerts);
}

/// On a terminal the default is compact (key headers, then how many more),
/// in colour unless NO_COLOR is set (`script` gives hdrtap a pty).
#[test]
fn show_on_a_terminal_is_compact_and_coloured() {
    let _guard = setup();
    let nginx = Nginx::start();
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string()]);
    let id = unique_id("tty");
    let _run = curl(&[CurlRequest::get(nginx.url_v4("/?tty=1"), &id, 1)]);
    let cap = hd.stop_when_http_count(4);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.ndjson");
    std::fs::write(&file, &cap.raw).unwrap();
    let in_pty = |env: &str| {
        let cmd = format!(
            "{env} {} show --side server {}",
            hdrtap_bin().display(),
            file.display()
        );
        let o = run_with_timeout(
            Command::new("script").args(["-qec", &cmd, "/dev/null"]),
            Duration::from_secs(60),
        );
        assert!(o.status.success(), "{o:?}");
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let tty = in_pty("");
    let request = tty
        .lines()
        .find(|l| l.contains(" /?tty=1 HTTP/1.1"))
        .unwrap();
    assert!(request.contains("| Host: "), "{tty}");
    assert!(
        request.contains(" headers"),
        "no count of the headers left out: {tty}"
    );
    assert!(!request.contains("| Accept: "), "not compact: {tty}");
    assert!(
        tty.contains("\x1b[32m200"),
        "no colour on a terminal: {tty:?}"
    );
    let plain = in_pty("NO_COLOR=1");
    assert!(
        !plain.contains("\x1b["),
        "colour despite NO_COLOR: {plain:?}"
    );
}

/// Readable lines (here --print's) with an explicit --stats-interval: the
/// traffic summary so far on stderr at each interval.
#[test]
fn stats_interval_in_readable_mode_prints_the_summary_so_far() {
    let _guard = setup();
    let nginx = Nginx::start();
    let hd = Hdrtap::start(&[
        "--port",
        &nginx.port.to_string(),
        "--print",
        "-d",
        "4",
        "--stats-interval",
        "1",
    ]);
    let id = unique_id("interim");
    let _run = curl(&[CurlRequest::get(nginx.url_v4("/?interim=1"), &id, 1)]);
    let cap = hd.wait_exit(Duration::from_secs(30));
    let blocks = cap.stderr.matches("hdrtap: after ").count();
    assert!(blocks >= 2, "{}", cap.stderr);
    // An interim block (before the exit summary's last lines) has the exchange.
    let interim = cap.stderr.rsplit_once("hdrtap: after ").unwrap().1;
    assert!(
        interim.contains("served (server side): 1 responses: 2xx 1"),
        "{}",
        cap.stderr
    );
    assert!(interim.contains("busiest: GET / 1"), "{}", cap.stderr);
    assert!(
        cap.stdout.contains("GET /?interim=1 HTTP/1.1"),
        "{}",
        cap.stdout
    );
}
