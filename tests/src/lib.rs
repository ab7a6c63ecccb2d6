//! Harness for hdrtap's root-only integration tests.
//!
//! A test looks like this:
//!
//! ```no_run
//! use hdrtap_tests::*;
//! let _guard = setup(); // root check + one test at a time
//! let nginx = Nginx::start();
//! let hd = Hdrtap::start(&["--port", &nginx.port.to_string()]);
//! let run = curl(&[CurlRequest::get(nginx.url_v4("/"), "my-test", 1)]);
//! let cap = hd.stop_when_http_count(run.expected_records(2));
//! let exp = Expect::new(&nginx);
//! check_side(&cap, &run, Role::Client, &exp);
//! check_side(&cap, &run, Role::Server, &exp);
//! ```
//!
//! Everything is compared with what the client reports it actually sent and
//! received (curl's `-v` trace, or the JSON lines of `clients/rawhttp.py`)
//! and with nginx's JSON access log, never with constants. Tests never skip:
//! without root, [`require_root`] panics.
#![forbid(unsafe_code)]

mod bpfobj;
mod check;
mod clients;
mod daemon;
mod env;
mod gotls;
mod h2;
mod hdrtap;
mod load;
mod nginx;
mod tls;

pub use bpfobj::*;
pub use check::*;
pub use clients::*;
pub use daemon::*;
pub use env::*;
pub use gotls::*;
pub use h2::*;
pub use hdrtap::*;
pub use load::*;
pub use nginx::*;
pub use serde_json::{json, Value};
pub use tls::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curl_trace_parses() {
        let trace = "*   Trying 127.0.0.1:8080...\n\
                     > GET /?a=1 HTTP/1.1\r\n> Host: 127.0.0.1:8080\r\n> User-Agent: curl/7.88.1\r\n\
                     > Accept: */*\r\n> X-Seq: 5\r\n> \r\n\
                     < HTTP/1.1 404 Not Found\r\n< Server: nginx\r\n< Content-Length: 3\r\n< \r\n\
                     { [3 bytes data]\n";
        let (sent, got) = parse_curl_trace(trace);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].method, "GET");
        assert_eq!(sent[0].target, "/?a=1");
        assert_eq!(sent[0].headers[3], ("X-Seq".to_string(), "5".to_string()));
        assert_eq!(
            sent[0].header_bytes,
            "GET /?a=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\nX-Seq: 5\r\n\r\n".len()
        );
        assert_eq!(got[0].status, 404);
        assert_eq!(got[0].reason, "Not Found");
        assert_eq!(got[0].headers.len(), 2);
    }

    #[test]
    fn markers_parse() {
        assert_eq!(
            parse_marker("[REDACTED len=16 hash=0123456789abcdef]"),
            Some((16, "0123456789abcdef".into()))
        );
        assert_eq!(parse_marker("Bearer x"), None);
        assert_eq!(parse_marker("[REDACTED len=16 hash=0123]"), None);
        // A kept scheme counts in the length.
        assert_eq!(
            parse_marker("Bearer [REDACTED len=9 hash=0123456789abcdef]"),
            Some((16, "0123456789abcdef".into()))
        );
        assert_eq!(
            parse_marker("x=y [REDACTED len=9 hash=0123456789abcdef]"),
            None
        );
        assert_eq!(
            parse_url_marker("REDACTED_len6_0123456789abcdef"),
            Some((6, "0123456789abcdef".into()))
        );
    }

    #[test]
    fn header_compare_reports_differences() {
        let exp = Expect {
            server_pid: 0,
            server_port: 0,
            redacted: vec!["cookie".into()],
            allowed_flags: vec![],
            truncated_requests: None,
            tls_library: None,
        };
        let wire = vec![
            ("Host".to_string(), "a".to_string()),
            ("Cookie".into(), "a=b".into()),
        ];
        let ok = vec![
            ("Host".to_string(), "a".to_string()),
            (
                "Cookie".into(),
                "[REDACTED len=3 hash=00112233445566ff]".into(),
            ),
        ];
        assert!(compare_headers(&ok, &wire, &exp).is_ok());
        assert!(
            compare_headers(&wire, &wire, &exp).is_err(),
            "unredacted cookie accepted"
        );
        assert!(
            compare_headers(&ok[..1], &wire, &exp).is_err(),
            "missing header accepted"
        );
        let wrong_len = vec![
            ok[0].clone(),
            (
                "Cookie".into(),
                "[REDACTED len=4 hash=00112233445566ff]".into(),
            ),
        ];
        assert!(compare_headers(&wrong_len, &wire, &exp).is_err());
        let swapped = vec![ok[1].clone(), ok[0].clone()];
        assert!(
            compare_headers(&swapped, &wire, &exp).is_err(),
            "reordered headers accepted"
        );
    }
}
