//! Kernel-side filters (--port, --comm, --pid) and the HTTP filters in
//! userspace (--status, --side, --header, --host, ...). Root only; run with
//! scripts/test.sh.
#![forbid(unsafe_code)]
use std::time::Duration;

use hdrtap_tests::*;

/// Wait a little for records that should NOT come, then stop.
const QUIET: Duration = Duration::from_millis(1500);

#[test]
fn port_filter_excludes_other_ports() {
    let _guard = setup();
    let nginx = Nginx::start();
    let other = loop {
        let p = free_port();
        if p != nginx.port {
            break p;
        }
    };
    let hd = Hdrtap::start(&["--port", &other.to_string()]);
    let id = unique_id("portf");
    let run = curl(&[
        CurlRequest::get(nginx.url_v4("/"), &id, 1),
        CurlRequest::get(nginx.url_v6("/status/404"), &id, 2),
    ]);
    let raw = raw_client(&RawOpts::new("127.0.0.1", nginx.port, "normal", 3, &id));
    assert_eq!(run.exchanges.len() + raw.exchanges.len(), 5);
    let cap = hd.stop_when(QUIET, |r| r.iter().any(is_http));
    let ours: Vec<&Value> = cap
        .http()
        .filter(|v| {
            v["local"]["port"] == json!(nginx.port) || v["remote"]["port"] == json!(nginx.port)
        })
        .collect();
    assert!(
        ours.is_empty(),
        "--port {other}: {} record(s) of traffic to port {}:\n{}",
        ours.len(),
        nginx.port,
        cap.dump_all()
    );
    check_port_filter(&cap, other);
    assert!(
        cap.stats().count() >= 1,
        "no stats record:\n{}",
        cap.dump_all()
    );
}

#[test]
fn comm_filter_keeps_only_that_process_name() {
    let _guard = setup();
    let nginx = Nginx::start();
    let hd = Hdrtap::start(&["--comm", "curl"]);
    let id = unique_id("commf");
    let run = curl(&[
        CurlRequest::get(nginx.url_v4("/?a"), &id, 1).header("X-Custom", "from curl"),
        CurlRequest::get(nginx.url_v4("/status/404"), &id, 2),
    ]);
    // Traffic from another program to the same server, at the same time.
    let raw_id = unique_id("commf-py");
    let raw = raw_client(&RawOpts::new("127.0.0.1", nginx.port, "normal", 3, &raw_id));
    let cap = hd.stop_when(QUIET, |r| {
        r.iter().filter(|v| is_http(v)).count() > run.expected_records(1)
    });
    let not_curl: Vec<&Value> = cap.http().filter(|v| v["comm"] != "curl").collect();
    assert!(
        not_curl.is_empty(),
        "--comm curl: {} record(s) from other processes:\n{}",
        not_curl.len(),
        cap.dump_all()
    );
    check_side(&cap, &run, Role::Client, &Expect::new(&nginx));
    let py: Vec<&Value> = cap
        .http()
        .filter(|v| {
            header(v, "X-Test-Id").as_deref() == Some(raw_id.as_str())
                || header(v, "X-Echo-Test-Id").as_deref() == Some(raw_id.as_str())
        })
        .collect();
    assert!(
        py.is_empty(),
        "python's traffic captured under --comm curl: {py:#?} ({} exchanges)",
        raw.exchanges.len()
    );
}

#[test]
fn pid_filter_keeps_only_that_process() {
    let _guard = setup();
    let nginx = Nginx::start();
    let hd = Hdrtap::start(&["--pid", &nginx.pid().to_string()]);
    let id = unique_id("pidf");
    let run = curl(&[
        CurlRequest::get(nginx.url_v4("/"), &id, 1),
        CurlRequest::get(nginx.url_v6("/chunked"), &id, 2).header("X-Custom", "v6"),
    ]);
    let cap = hd.stop_when(QUIET, |r| {
        r.iter().filter(|v| is_http(v)).count() > run.expected_records(1)
    });
    let others: Vec<&Value> = cap
        .http()
        .filter(|v| v["pid"] != json!(nginx.pid()))
        .collect();
    assert!(
        others.is_empty(),
        "--pid {}: {} record(s) of other processes:\n{}",
        nginx.pid(),
        others.len(),
        cap.dump_all()
    );
    check_side(&cap, &run, Role::Server, &Expect::new(&nginx));
}

#[test]
fn port_and_comm_filters_combine() {
    let _guard = setup();
    let nginx = Nginx::start();
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string(), "--comm", "nginx"]);
    let id = unique_id("both");
    let run = curl(&[CurlRequest::get(nginx.url_v4("/"), &id, 1)]);
    let cap = hd.stop_when(QUIET, |r| {
        r.iter().filter(|v| is_http(v)).count() > run.expected_records(1)
    });
    let others: Vec<&Value> = cap.http().filter(|v| v["comm"] != "nginx").collect();
    assert!(
        others.is_empty(),
        "--comm nginx: records of other processes:\n{}",
        cap.dump_all()
    );
    check_port_filter(&cap, nginx.port);
    check_side(&cap, &run, Role::Server, &Expect::new(&nginx));
}

#[test]
fn no_filter_captures_all_and_never_itself() {
    let _guard = setup();
    let nginx = Nginx::start();
    let hd = Hdrtap::start(&[]);
    let hdrtap_pid = hd.pid();
    let id = unique_id("nofilter");
    let run = curl(&[
        CurlRequest::get(nginx.url_v4("/"), &id, 1),
        CurlRequest::get(nginx.url_v4("/status/404"), &id, 2),
    ]);
    let cap = hd.stop_when(SETTLE_TIMEOUT, |r| {
        r.iter()
            .filter(|v| {
                header(v, "X-Test-Id")
                    .or_else(|| header(v, "X-Echo-Test-Id"))
                    .as_deref()
                    == Some(id.as_str())
            })
            .count()
            >= run.expected_records(2)
    });
    check_both_sides(&cap, &run, &Expect::new(&nginx));
    let own: Vec<&Value> = cap
        .http()
        .filter(|v| v["pid"] == json!(hdrtap_pid))
        .collect();
    assert!(own.is_empty(), "hdrtap traced itself: {own:#?}");
}

#[test]
fn repeated_port_flags_are_alternatives() {
    let _guard = setup();
    let a = Nginx::start();
    let b = Nginx::start();
    let unused = loop {
        let p = free_port();
        if p != a.port && p != b.port {
            break p;
        }
    };
    let hd = Hdrtap::start(&[
        "--port",
        &unused.to_string(),
        "--port",
        &a.port.to_string(),
        "--port",
        &b.port.to_string(),
    ]);
    let run_a = curl(&[CurlRequest::get(a.url_v4("/"), &unique_id("porta"), 1)]);
    let run_b = curl(&[CurlRequest::get(b.url_v6("/"), &unique_id("portb"), 1)]);
    let cap = hd.stop_when_http_count(run_a.expected_records(2) + run_b.expected_records(2));
    check_both_sides(&cap, &run_a, &Expect::new(&a));
    check_both_sides(&cap, &run_b, &Expect::new(&b));
}

/// HTTP filters: of two exchanges seen from both ends (8 records), `--side
/// server --status 4xx` keeps the one 404 the server sent; `--side client
/// --header X-Seq=2 --host 127.0.0.1` the one request curl sent with that
/// header (the Host has the port, the filter not). The final stats count
/// the rest as `filtered_out`.
#[test]
fn http_filters_keep_only_matching_messages() {
    let _guard = setup();
    let nginx = Nginx::start();
    let port = nginx.port.to_string();
    for (flags, want) in [
        (
            vec!["--side", "server", "--status", "4xx"],
            ("http_response", "server"),
        ),
        (
            vec![
                "--side",
                "client",
                "--header",
                "X-Seq=2",
                "--host",
                "127.0.0.1",
            ],
            ("http_request", "client"),
        ),
    ] {
        let mut args = vec!["--port", port.as_str()];
        args.extend(flags.iter().copied());
        let hd = Hdrtap::start(&args);
        let id = unique_id("hf");
        let _run = curl(&[
            CurlRequest::get(nginx.url_v4("/"), &id, 1),
            CurlRequest::get(nginx.url_v4("/missing"), &id, 2),
        ]);
        // curl has finished: once the kept record is out, the rest is in
        // the ring buffer, which hdrtap drains before its final stats.
        let cap = hd.stop_when(Duration::from_secs(30), |r| r.iter().any(is_http));
        let http: Vec<_> = cap.http().collect();
        assert_eq!(http.len(), 1, "{flags:?}:\n{}", cap.dump_all());
        let r = http[0];
        assert_eq!((kind(r), r["role"].as_str().unwrap()), want, "{r}");
        if want.0 == "http_response" {
            assert_eq!(r["status"], 404, "{r}");
        } else {
            assert_eq!(header(r, "x-seq").as_deref(), Some("2"), "{r}");
        }
        let last = cap.stats().last().unwrap();
        assert_eq!(last["filtered_out"], 7, "{last}");
        assert_eq!(last["records"], 1, "{last}");
    }
}
