//! `hdrtap run`: configuration checks, the daemon's lifecycle (SIGHUP
//! reopens files, SIGTERM flushes every sink and exits 0), several captures
//! feeding one set of sinks. Root only; run with scripts/test.sh.
#![forbid(unsafe_code)]
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use hdrtap_tests::*;

fn hdrtap(args: &[&str]) -> std::process::Output {
    run_with_timeout(
        Command::new(hdrtap_bin()).args(args),
        Duration::from_secs(30),
    )
}

#[test]
fn check_config_names_the_key_and_line() {
    let _guard = setup();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    let out = hdrtap(&["run", "--print-example-config"]);
    assert!(out.status.success());
    // --check-config opens the sinks: the example's log directory is a
    // temporary one here, its metrics port a free one.
    let example = String::from_utf8(out.stdout)
        .unwrap()
        .replace("/var/log/hdrtap/", &format!("{}/", dir.path().display()))
        .replace("127.0.0.1:9464", &format!("127.0.0.1:{}", free_port()));
    fs::write(&good, example).unwrap();
    let out = hdrtap(&["run", "--check-config", good.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "the printed example does not check: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("is valid"));

    for (text, want) in [
        (
            "[http]\nports = [8080]\n\n[[sinks]]\ntype = \"file\"\npath = \"/tmp/x\"\nmax_filez = 3\n",
            ["line 7", "max_filez"],
        ),
        (
            "[http]\nring_mib = 3\n[[sinks]]\ntype = \"stdout\"\n",
            ["line 2", "key http.ring_mib"],
        ),
        (
            "[packets]\nfilter = \"tcp prot 80\"\n[[sinks]]\ntype = \"stdout\"\n",
            ["line 2", "key packets.filter"],
        ),
    ] {
        let bad = dir.path().join("bad.toml");
        fs::write(&bad, text).unwrap();
        let out = hdrtap(&["run", "--check-config", bad.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "accepted:\n{text}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "not one line: {stderr}");
        for w in want {
            assert!(lines[0].contains(w), "{:?} lacks {w:?}", lines[0]);
        }
    }
}

#[test]
fn sighup_reopens_files_and_sigterm_flushes_every_sink() {
    let _guard = setup();
    let nginx = Nginx::start();
    let d = Daemon::start(&format!(
        "stats_interval = 1\n[http]\nports = [{}]\n\
         [[sinks]]\ntype = \"file\"\npath = \"{{dir}}/out.ndjson\"\n\
         [[sinks]]\ntype = \"file\"\nname = \"alerts\"\npath = \"{{dir}}/alerts.ndjson\"\nformat = \"human\"\nkinds = [\"alert\"]\n",
        nginx.port
    ));
    let out = d.dir().join("out.ndjson");
    let id = unique_id("hup");
    let before = curl(&[
        CurlRequest::get(nginx.url_v4("/"), &id, 1).header("Authorization", "Bearer hup-secret-1"),
        CurlRequest::get(nginx.url_v4("/status/404"), &id, 2),
    ]);
    // Wait until the records are in the file, then rotate it away the way
    // logrotate does: rename, then SIGHUP.
    let has = |path: &std::path::Path, seq: &str| {
        read_ndjson(path).iter().any(|v| {
            is_http(v)
                && header(v, "X-Test-Id").as_deref() == Some(id.as_str())
                && header(v, "X-Seq").as_deref() == Some(seq)
        })
    };
    let deadline = std::time::Instant::now() + SETTLE_TIMEOUT;
    while !(out.exists() && has(&out, "2")) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let rotated = d.dir().join("out.ndjson.1");
    fs::rename(&out, &rotated).unwrap();
    d.signal(libc::SIGHUP);
    let deadline = std::time::Instant::now() + SETTLE_TIMEOUT;
    while !out.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(out.exists(), "SIGHUP did not reopen {}", out.display());
    let after = curl(&[CurlRequest::get(nginx.url_v4("/"), &id, 3)]);
    std::thread::sleep(Duration::from_millis(500));
    let exit = d.stop();
    assert!(exit.stderr.contains("sink file (file):"), "{}", exit.stderr);

    let old = read_ndjson(&rotated);
    let new = read_ndjson(&out);
    for (records, run, what) in [
        (&old, &before, "before SIGHUP"),
        (&new, &after, "after SIGHUP"),
    ] {
        for ex in &run.exchanges {
            let n = records
                .iter()
                .filter(|v| kind(v) == "http_request")
                .filter(|v| header(v, "X-Test-Id").as_deref() == Some(id.as_str()))
                .filter(|v| header(v, "X-Seq") == Some(ex.seq.to_string()))
                .count();
            assert_eq!(
                n, 2,
                "{what}: request {} not on both sides:\n{records:#?}",
                ex.seq
            );
        }
    }
    for p in [&rotated, &out, &exit.dir().join("alerts.ndjson")] {
        assert_eq!(
            fs::metadata(p).unwrap().permissions().mode() & 0o777,
            0o600,
            "{}",
            p.display()
        );
    }
    // SIGTERM flushed: the last lines are the final stats records, the
    // capture's then the sinks'.
    let tail: Vec<&str> = new
        .iter()
        .rev()
        .take(2)
        .map(|v| v["source"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        tail,
        ["sinks", "http"],
        "{:#?}",
        &new[new.len().saturating_sub(3)..]
    );
    let sinks = &new.last().unwrap()["sinks"];
    assert!(sinks["file"]["records"].as_u64().unwrap() > 0, "{sinks}");
    assert_eq!(sinks["alerts"]["type"], "file");
    // Ids: unique across the two files, every record and alert has one.
    let mut ids: Vec<u64> = old
        .iter()
        .chain(&new)
        .filter(|v| kind(v) != "stats")
        .map(|v| v["id"].as_u64().unwrap_or_else(|| panic!("no id: {v}")))
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "duplicate ids");
    // The alert sink: human lines, only alerts, naming records by id.
    let alerts = fs::read_to_string(exit.dir().join("alerts.ndjson")).unwrap();
    assert!(
        !alerts.is_empty(),
        "no alerts (cleartext Authorization was sent)"
    );
    for l in alerts.lines() {
        assert!(l.contains(" ALERT ") && l.contains("(record #"), "{l}");
        assert!(!l.contains("hup-secret-1"), "secret in an alert: {l}");
    }
    let all = fs::read_to_string(&out).unwrap() + &fs::read_to_string(&rotated).unwrap();
    assert!(!all.contains("hup-secret-1"), "secret in the output");
}

#[test]
fn http_and_packets_feed_the_same_sinks() {
    let _guard = setup();
    let nginx = Nginx::start();
    let d = Daemon::start(&format!(
        "[http]\nports = [{port}]\ntls = false\n\
         [packets]\nenabled = true\ninterfaces = [\"lo\"]\nfilter = \"tcp port {port}\"\n\
         [[sinks]]\ntype = \"file\"\npath = \"{{dir}}/out.ndjson\"\n",
        port = nginx.port
    ));
    let id = unique_id("both");
    let run = curl(&[CurlRequest::get(nginx.url_v4("/"), &id, 1)]);
    assert_eq!(run.exchanges.len(), 1);
    std::thread::sleep(Duration::from_millis(800));
    let exit = d.stop();
    let recs = read_ndjson(&exit.dir().join("out.ndjson"));
    let http = recs.iter().filter(|v| is_http(v)).count();
    let packets = recs.iter().filter(|v| kind(v) == "packet").count();
    assert!(http >= 4, "{http} http records:\n{}", exit.stderr);
    assert!(
        packets >= 6,
        "{packets} packet records (SYN, SYN-ACK, ACK, request, response, FINs: once each on lo)"
    );
    let sources: Vec<&str> = recs
        .iter()
        .filter(|v| kind(v) == "stats")
        .filter_map(|v| v["source"].as_str())
        .collect();
    for s in ["http", "packets", "sinks"] {
        assert!(sources.contains(&s), "no final {s} stats: {sources:?}");
    }
    let mut ids: Vec<u64> = recs.iter().filter_map(|v| v["id"].as_u64()).collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "ids are per run, shared by both captures");
    assert!(
        exit.stderr.contains("hdrtap: http: ") && exit.stderr.contains("hdrtap: packets: "),
        "{}",
        exit.stderr
    );
}

#[test]
fn a_sink_that_cannot_start_is_one_line_and_nonzero() {
    let _guard = setup();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    fs::write(
        &cfg,
        format!("[http]\n[[sinks]]\ntype = \"prometheus\"\nlisten = \"127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    let out = hdrtap(&["run", "--config", cfg.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains(&port.to_string()) && lines[0].contains("prometheus"),
        "{stderr}"
    );
}
