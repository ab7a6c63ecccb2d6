//! The Prometheus sink against a real Prometheus server (Debian's
//! `prometheus`): it scrapes hdrtap's /metrics every second, and the series
//! it stores have the values the traffic implies; `promtool check metrics`
//! accepts the exposition. Root only; run with scripts/test.sh.
#![forbid(unsafe_code)]
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use hdrtap_tests::*;

#[test]
fn prometheus_scrapes_hdrtap_and_finds_the_expected_series() {
    let _guard = setup();
    let nginx = Nginx::start();
    let metrics_port = free_port();
    let d = Daemon::start(&format!(
        "[http]\nports = [{}]\n\
         [[sinks]]\ntype = \"prometheus\"\nlisten = \"127.0.0.1:{metrics_port}\"\n\
         [[sinks]]\ntype = \"file\"\npath = \"{{dir}}/out.ndjson\"\n",
        nginx.port
    ));
    let prom = Prometheus::start(metrics_port);
    prom.wait_value(r#"up{job="hdrtap"}"#, Duration::from_secs(30), |v| v == 1.0);

    let id = unique_id("prom");
    let mut reqs = Vec::new();
    for seq in 1..=5 {
        reqs.push(CurlRequest::get(nginx.url_v4("/"), &id, seq));
    }
    for seq in 6..=8 {
        reqs.push(CurlRequest::get(nginx.url_v4("/status/404"), &id, seq));
    }
    // One scanner: an alert on each side.
    reqs.push(
        CurlRequest::get(nginx.url_v4("/"), &id, 9).header("User-Agent", "sqlmap/1.7.2#stable"),
    );
    let run = curl(&reqs);
    assert_eq!(run.exchanges.len(), 9);
    let host = format!("127.0.0.1:{}", nginx.port);

    // nginx's view (role server): 6 x 2xx, 3 x 4xx, all GET, one Host.
    let q = |class: &str| {
        format!(
            r#"hdrtap_http_requests_total{{job="hdrtap",method="GET",status_class="{class}",role="server",host="{host}"}}"#
        )
    };
    let t = Duration::from_secs(30);
    assert_eq!(prom.wait_value(&q("2xx"), t, |v| v >= 6.0), 6.0);
    assert_eq!(prom.wait_value(&q("4xx"), t, |v| v >= 3.0), 3.0);
    // The route label: the path, its numeric segment folded.
    assert_eq!(
        prom.wait_value(
            r#"sum(hdrtap_http_requests_total{role="server",route="/status/*"})"#,
            t,
            |v| v >= 3.0
        ),
        3.0
    );
    assert_eq!(
        prom.wait_value(
            r#"sum(hdrtap_http_requests_total{role="server",route="/"})"#,
            t,
            |v| v >= 6.0
        ),
        6.0
    );
    prom.wait_value(
        r#"sum(hdrtap_http_request_duration_seconds_count{role="server"})"#,
        t,
        |v| v >= 9.0,
    );
    assert_eq!(
        prom.wait_value(
            r#"hdrtap_alerts_total{rule="scanner_user_agent",severity="medium"}"#,
            t,
            |v| v >= 2.0
        ),
        2.0
    );
    // Rules that did not fire are there, at 0 (so increase() works).
    assert_eq!(
        prom.wait_value(r#"hdrtap_alerts_total{rule="path_traversal"}"#, t, |_| true),
        0.0
    );
    // Self metrics: events received, nothing lost, the ring buffer, the sinks.
    prom.wait_value(r#"hdrtap_events_total{capture="http"}"#, t, |v| v > 0.0);
    assert_eq!(
        prom.wait_value(
            r#"sum(hdrtap_events_lost_total{capture="http"})"#,
            t,
            |_| true
        ),
        0.0
    );
    assert_eq!(
        prom.wait_value(
            r#"hdrtap_ring_buffer_size_bytes{capture="http"}"#,
            t,
            |_| true
        ),
        16.0 * 1024.0 * 1024.0
    );
    prom.wait_value(r#"hdrtap_ring_buffer_fill_ratio{capture="http"}"#, t, |v| {
        (0.0..=1.0).contains(&v)
    });
    prom.wait_value(
        r#"hdrtap_sink_records_total{sink="file",type="file"}"#,
        t,
        |v| v >= 36.0,
    );
    assert_eq!(
        prom.wait_value(r#"sum(hdrtap_sink_dropped_records_total)"#, t, |_| true),
        0.0
    );
    prom.wait_value(r#"hdrtap_connections_tracked{capture="http"}"#, t, |v| {
        v >= 0.0
    });

    // promtool accepts what Prometheus scraped.
    let (status, body) = http_get(metrics_port, "/metrics").expect("GET /metrics");
    assert_eq!(status, 200);
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn promtool (Debian package prometheus; run scripts/setup.sh)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- exposition:\n{body}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool has remarks:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    d.stop();
}

#[test]
fn the_host_label_is_capped() {
    let _guard = setup();
    let nginx = Nginx::start();
    let metrics_port = free_port();
    let d = Daemon::start(&format!(
        "[http]\nports = [{}]\ntls = false\n\
         [[sinks]]\ntype = \"prometheus\"\nlisten = \"127.0.0.1:{metrics_port}\"\nmax_hosts = 2\n",
        nginx.port
    ));
    let id = unique_id("hosts");
    let reqs: Vec<CurlRequest> = (1..=5)
        .map(|i| {
            CurlRequest::get(nginx.url_v4("/"), &id, i).header("Host", &format!("h{i}.example"))
        })
        .collect();
    curl(&reqs);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let body = loop {
        let (_, body) = http_get(metrics_port, "/metrics").unwrap();
        let total: f64 = body
            .lines()
            .filter(|l| {
                l.starts_with("hdrtap_http_requests_total{") && l.contains("role=\"server\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        if total >= 5.0 || std::time::Instant::now() > deadline {
            break body;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let hosts: std::collections::BTreeSet<&str> = body
        .lines()
        .filter(|l| l.starts_with("hdrtap_http_requests_total{"))
        .filter_map(|l| l.split("host=\"").nth(1)?.split('"').next())
        .collect();
    assert!(hosts.len() <= 3, "{hosts:?}");
    assert!(hosts.contains("__overflow__"), "{hosts:?}\n{body}");
    d.stop();
}
