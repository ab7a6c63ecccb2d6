//! HTTPS in cleartext from Go programs (crypto/tls): a Go server and a Go
//! client built at test time with Debian's Go 1.19 (tests/gotls/, standard
//! library only), as they are and stripped, over HTTP/1.1 and HTTP/2, both
//! ends traced. Every request and response must appear exactly once per
//! side with its sequence header, `tls: true` and the program named with
//! its Go version; nothing may come from the ciphertext; the traced
//! programs must never fail, hdrtap attaching and detaching under load.
//! Root only.
#![forbid(unsafe_code)]
use std::time::Duration;

use hdrtap_tests::*;

/// Each request `/{id}/{seq}` of `seqs` exactly once on `role`'s side, with
/// its X-Seq header, and its response exactly once, paired to it, echoing
/// the sequence (X-Seen-Seq), all `version`, TLS, from `lib` (its name
/// starts so) and without flags.
fn check_go_exchanges(
    cap: &Capture,
    id: &str,
    seqs: std::ops::RangeInclusive<u32>,
    role: &str,
    version: &str,
    lib: &str,
) {
    for seq in seqs {
        let path = format!("/{id}/{seq}");
        let reqs: Vec<&Value> = cap
            .http()
            .filter(|r| r["role"] == role && r["kind"] == "http_request")
            .filter(|r| {
                r["target"] == path.as_str() || header(r, ":path").as_deref() == Some(&path)
            })
            .collect();
        assert_eq!(
            reqs.len(),
            1,
            "{role} requests for {path}:\n{reqs:#?}\n{}",
            cap.dump_all()
        );
        let resps: Vec<&Value> = cap
            .http()
            .filter(|r| r["role"] == role && r["kind"] == "http_response")
            .filter(|r| r["request"]["target"] == path.as_str())
            .collect();
        assert_eq!(
            resps.len(),
            1,
            "{role} responses for {path}:\n{}",
            cap.dump_all()
        );
        let (req, resp) = (reqs[0], resps[0]);
        assert_eq!(
            header(req, "x-seq").as_deref(),
            Some(seq.to_string().as_str()),
            "{req}"
        );
        assert_eq!(
            header(resp, "x-seen-seq").as_deref(),
            Some(seq.to_string().as_str()),
            "{resp}"
        );
        assert_eq!(resp["status"], 200, "{resp}");
        for r in [req, resp] {
            assert_eq!(r["version"], version, "{r}");
            assert_eq!(r["tls"], true, "{r}");
            let name = r["tls_library"].as_str().unwrap_or("");
            assert!(
                name.starts_with(lib) && name.contains("(go1."),
                "tls_library {name:?}: {r}"
            );
            assert!(r.get("flags").is_none(), "{r}");
        }
    }
}

/// Server and client over HTTP/2 (Go's default with ALPN) and over
/// HTTP/1.1 (GODEBUG), a few requests at a time on shared connections.
#[test]
fn go_https_http2_and_http1_both_sides() {
    let _guard = setup();
    let bins = go_bins();
    let srv = GoServer::start(&bins.server, false);
    let hd = Hdrtap::start(&["--port", &srv.port.to_string()]);
    let (h2, h1) = (unique_id("goh2"), unique_id("goh1"));
    // -delay: a new program file is hooked within a few hundred ms of its
    // exec; its first calls before that are not seen (README, Limits).
    go_client(
        &bins.client,
        srv.port,
        false,
        &["-id", &h2, "-n", "20", "-c", "4", "-delay", "700ms"],
    );
    go_client(
        &bins.client,
        srv.port,
        true,
        &["-id", &h1, "-n", "20", "-c", "4"],
    );
    let cap = hd.stop_when_http_count(160);
    for role in ["client", "server"] {
        let lib = if role == "client" {
            "gotls-client"
        } else {
            "gotls-server"
        };
        check_go_exchanges(&cap, &h2, 1..=20, role, "HTTP/2", lib);
        check_go_exchanges(&cap, &h1, 1..=20, role, "HTTP/1.1", lib);
    }
    assert_eq!(cap.http().count(), 160, "{}", cap.dump_all());
    check_no_ciphertext_records(&cap, srv.port);
}

/// Stripped programs (`-ldflags="-s -w"`): the functions come from
/// .gopclntab; the same records. `doctor --tls` says how they are covered.
#[test]
fn stripped_go_programs_are_covered() {
    let _guard = setup();
    let bins = go_bins();
    let srv = GoServer::start(&bins.server_stripped, false);
    let hd = Hdrtap::start(&["--port", &srv.port.to_string()]);
    let id = unique_id("gostrip");
    go_client(
        &bins.client_stripped,
        srv.port,
        false,
        &["-id", &id, "-n", "20", "-c", "4", "-delay", "700ms"],
    );
    let doctor = run_clean(&hdrtap_bin(), &["doctor", "--tls"]);
    let cap = hd.stop_when_http_count(80);
    check_go_exchanges(&cap, &id, 1..=20, "client", "HTTP/2", "gotls-cli-s");
    check_go_exchanges(&cap, &id, 1..=20, "server", "HTTP/2", "gotls-srv-s");
    check_no_ciphertext_records(&cap, srv.port);
    let text = String::from_utf8_lossy(&doctor.stdout);
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&srv.pid().to_string()))
        .unwrap_or_else(|| panic!("no line for the stripped Go server in:\n{text}"));
    assert!(
        line.contains(" covered ")
            && line.contains("Go crypto/tls (go1.")
            && line.contains(".gopclntab"),
        "{line}"
    );
}

/// Many goroutines on few threads: 200 requests, 50 at a time, with
/// GOMAXPROCS=2, over HTTP/2 and HTTP/1.1: calls are keyed by goroutine,
/// so each is still seen once, whole, on the right connection.
#[test]
fn many_goroutines_on_two_threads() {
    let _guard = setup();
    let bins = go_bins();
    let srv = GoServer::start(&bins.server, false);
    let hd = Hdrtap::start(&["--port", &srv.port.to_string()]);
    let (h2, h1) = (unique_id("gomany2"), unique_id("gomany1"));
    let run = |http1: bool, id: &str, delay: &str| {
        let mut cmd = std::process::Command::new(&bins.client);
        cmd.args(["-url", &format!("https://127.0.0.1:{}", srv.port)])
            .args(["-id", id, "-n", "200", "-c", "50", "-q", "-delay", delay])
            .env("GOMAXPROCS", "2");
        if http1 {
            cmd.env("GODEBUG", "http2client=0");
        }
        let out = run_with_timeout(&mut cmd, Duration::from_secs(120));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("done 200 0"),
            "{text}"
        );
    };
    run(false, &h2, "700ms");
    run(true, &h1, "0s");
    let cap = hd.stop_when_http_count(1600);
    for role in ["client", "server"] {
        let lib = if role == "client" {
            "gotls-client"
        } else {
            "gotls-server"
        };
        check_go_exchanges(&cap, &h2, 1..=200, role, "HTTP/2", lib);
        check_go_exchanges(&cap, &h1, 1..=200, role, "HTTP/1.1", lib);
    }
    check_no_ciphertext_records(&cap, srv.port);
}

/// A Go program started after hdrtap, from a file no process had mapped
/// (a fresh copy): hooked when it starts, its requests seen.
#[test]
fn go_client_started_after_hdrtap_is_hooked() {
    let _guard = setup();
    let bins = go_bins();
    let srv = GoServer::start(&bins.server, true);
    let hd = Hdrtap::start(&["--port", &srv.port.to_string()]);
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("gotls-fresh");
    std::fs::copy(&bins.client, &fresh).unwrap();
    let id = unique_id("gofresh");
    go_client(
        &fresh,
        srv.port,
        true,
        &["-id", &id, "-n", "5", "-delay", "700ms"],
    );
    let cap = hd.stop_when_http_count(20);
    check_go_exchanges(&cap, &id, 1..=5, "client", "HTTP/1.1", "gotls-fresh");
    check_go_exchanges(&cap, &id, 1..=5, "server", "HTTP/1.1", "gotls-server");
}

/// The traced programs never fail while hdrtap attaches and detaches its
/// Go hooks again and again under load (goroutine stacks move: no
/// uretprobes, a probe past the stack check).
#[test]
fn go_programs_survive_attach_and_detach_under_load() {
    let _guard = setup();
    let bins = go_bins();
    let mut srv = GoServer::start(&bins.server, false);
    let id = unique_id("gochurn");
    let mut client = std::process::Command::new(&bins.client)
        .args(["-url", &format!("https://127.0.0.1:{}", srv.port)])
        .args(["-id", &id, "-n", "100", "-c", "20", "-q", "-for", "8s"])
        .env("GOMAXPROCS", "2")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen = 0;
    for _ in 0..3 {
        let hd = Hdrtap::start(&["--port", &srv.port.to_string()]);
        std::thread::sleep(Duration::from_millis(1200));
        let cap = hd.stop();
        seen += cap
            .http()
            .filter(|r| r["tls"] == true && r["role"] == "client")
            .count();
        std::thread::sleep(Duration::from_millis(300));
    }
    let status = wait_timeout(&mut client, Duration::from_secs(60)).expect("client exits");
    let mut out = String::new();
    std::io::Read::read_to_string(client.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert!(
        status.success(),
        "the Go client failed ({status}):\n{}",
        out.lines().rev().take(5).collect::<Vec<_>>().join("\n")
    );
    assert!(out.contains(" 0\n") && out.contains("done "), "{out}");
    assert!(srv.alive(), "the Go server died");
    assert!(seen > 0, "no Go TLS record in three attachments");
}
