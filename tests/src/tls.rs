//! HTTPS helpers: the statically linked OpenSSL client, the http.client
//! client, and checks that TLS capture left no ciphertext records behind.
use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
    time::Duration,
};

use serde_json::Value;

use crate::*;

/// `tests/tls_static/tls_client.c` built once per test process, linked
/// statically against OpenSSL (`libssl.a`, `libcrypto.a`; libc dynamic), as
/// a new file: one no process maps before the test runs it. It goes next to
/// the test binaries (`target/debug/tlsstatic/<pid>/tlsstatic`; the name is
/// the process's comm, which tests check), replacing the previous process's
/// build, so test runs leave nothing in /tmp.
pub fn static_client_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let (_, dir) = fresh_build_dir("tlsstatic");
        let src = workspace_root().join("tests/tls_static/tls_client.c");
        let bin = dir.join("tlsstatic");
        let out = run_with_timeout(
            Command::new("cc")
                .args(["-O1", "-Wall", "-o"])
                .arg(&bin)
                .arg(&src)
                .args(["-l:libssl.a", "-l:libcrypto.a", "-lpthread", "-ldl"]),
            Duration::from_secs(120),
        );
        assert!(
            out.status.success(),
            "building {} against libssl.a failed (apt-get install libssl-dev build-essential): {}",
            src.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        bin
    })
    .clone()
}

/// When the static client should stop and wait for [`RawClient::go`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaticWait {
    No,
    /// Before connecting (no socket yet).
    BeforeConnect,
    /// After the TLS handshake (holding its TCP socket).
    AfterHandshake,
}

/// Start the static OpenSSL client (`bin`, see [`static_client_bin`]):
/// `count` GETs on one keep-alive HTTPS connection to host:port.
pub fn static_client(
    bin: &Path,
    host: &str,
    port: u16,
    count: u32,
    test_id: &str,
    wait: StaticWait,
) -> RawClient {
    let mut args = vec![
        host.to_string(),
        port.to_string(),
        count.to_string(),
        test_id.to_string(),
    ];
    match wait {
        StaticWait::No => {}
        StaticWait::BeforeConnect => args.extend(["--wait".into(), "before-connect".into()]),
        StaticWait::AfterHandshake => args.extend(["--wait".into(), "after-handshake".into()]),
    }
    RawClient::spawn_program(&bin.display().to_string(), args)
}

/// `tests/clients/httpsclient.py`: `count` GETs with Python's http.client
/// over one keep-alive HTTPS connection, reporting the exact plaintext.
pub fn https_client(
    host: &str,
    port: u16,
    count: u32,
    test_id: &str,
    paths: &str,
    headers: &[&str],
) -> ClientRun {
    let mut args = vec![
        clients_dir().join("httpsclient.py").display().to_string(),
        "--host".into(),
        host.into(),
        "--port".into(),
        port.to_string(),
        "--count".into(),
        count.to_string(),
        "--test-id".into(),
        test_id.into(),
        "--paths".into(),
        paths.into(),
    ];
    for h in headers {
        args.push("--header".into());
        args.push(h.to_string());
    }
    RawClient::spawn_program("python3", args).finish()
}

/// The last stats record (hdrtap writes one at exit).
pub fn final_stats(cap: &Capture) -> &Value {
    cap.stats()
        .last()
        .unwrap_or_else(|| panic!("no stats record:\n{}", cap.dump_all()))
}

/// Nothing came from the ciphertext: every HTTP record that involves `port`
/// is a TLS record, and hdrtap counted no parse error, no resync and no
/// undecodable event (it ran with `--port port`, so it saw only this
/// traffic).
pub fn check_no_ciphertext_records(cap: &Capture, port: u16) {
    let plain: Vec<&Value> = cap
        .http()
        .filter(|v| v["local"]["port"] == port || v["remote"]["port"] == port)
        .filter(|v| v["tls"] != true)
        .collect();
    assert!(
        plain.is_empty(),
        "{} record(s) on the HTTPS port {port} did not come from the TLS library (ciphertext parsed?):\n{plain:#?}\n{}",
        plain.len(),
        cap.dump_all()
    );
    let st = final_stats(cap);
    for field in [
        "parse_errors",
        "resyncs",
        "skipped_bytes",
        "decode_errors",
        "gaps",
        "tls_no_fd",
        "tls_busy",
    ] {
        assert_eq!(
            st[field],
            0,
            "stats {field} is not 0: {st}\n{}",
            cap.dump_all()
        );
    }
}

/// The hooked files named in hdrtap's start-up line (`HTTPS via TLS library
/// uprobes: a, b; ...`).
pub fn started_with_libraries(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .find_map(|l| l.split("HTTPS via TLS library uprobes: ").nth(1))
        .map(|rest| {
            rest.split(';')
                .next()
                .unwrap_or("")
                .split(", ")
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// A copy of the system's `libssl.so.3` (and `libcrypto.so.3`) in a temp dir:
/// a library file (inode) that no running process maps.
pub fn libssl_copy() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("hdrtap-libssl-")
        .tempdir()
        .unwrap();
    for lib in ["libssl.so.3", "libcrypto.so.3"] {
        let src = Path::new("/usr/lib/x86_64-linux-gnu").join(lib);
        fs::copy(&src, dir.path().join(lib))
            .unwrap_or_else(|e| panic!("copy {}: {e} (is libssl3 installed?)", src.display()));
    }
    dir
}

/// `gnutls-serv --http` (Debian's gnutls-bin) on 127.0.0.1:port with a
/// self-signed certificate; killed on drop.
pub struct GnutlsServ {
    child: std::process::Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl GnutlsServ {
    pub fn start() -> GnutlsServ {
        let dir = tempfile::tempdir().unwrap();
        make_self_signed_cert(dir.path()).unwrap();
        let port = free_port();
        let child = Command::new("gnutls-serv")
            .args(["--http", "-p", &port.to_string()])
            .arg("--x509certfile")
            .arg(dir.path().join("cert.pem"))
            .arg("--x509keyfile")
            .arg(dir.path().join("key.pem"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("gnutls-serv (apt package gnutls-bin; scripts/setup.sh installs it)");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "gnutls-serv is not listening on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        GnutlsServ {
            child,
            port,
            _dir: dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for GnutlsServ {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTPS request with `gnutls-cli` (a new connection): the request on
/// its stdin, which stays open until the response has come (on EOF the
/// client says goodbye at once). Returns what it printed.
pub fn gnutls_cli_get(port: u16, path: &str, seq: u32) -> String {
    use std::io::{Read, Write};
    let mut child = Command::new("gnutls-cli")
        .args(["--insecure", "-p", &port.to_string(), "127.0.0.1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("gnutls-cli (apt package gnutls-bin)");
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nX-Seq: {seq}\r\nAuthorization: Bearer gnutls-secret-{seq}\r\n\r\n"
    );
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut sent = false;
        // The request once the handshake is done; then read until the
        // response's end of headers.
        while std::time::Instant::now() < deadline {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
            let text = String::from_utf8_lossy(&out);
            if !sent && text.contains("Handshake was completed") {
                let _ = stdin.write_all(req.as_bytes());
                let _ = stdin.flush();
                sent = true;
            }
            if sent && text.contains("HTTP/1.") && text.contains("\r\n\r\n") {
                break;
            }
        }
        drop(stdin);
        String::from_utf8_lossy(&out).into_owned()
    });
    let out = reader.join().unwrap();
    if crate::wait_timeout(&mut child, Duration::from_secs(10)).is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert!(
        out.contains("HTTP/1."),
        "gnutls-cli got no HTTP response from port {port}:\n{out}"
    );
    out
}

/// The Node.js HTTPS server of tests/node/server.js on 127.0.0.1, with a
/// self-signed certificate; killed on drop.
pub struct NodeServer {
    child: std::process::Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl NodeServer {
    pub fn start() -> NodeServer {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        make_self_signed_cert(dir.path()).unwrap();
        let mut child = Command::new("node")
            .arg(workspace_root().join("tests/node/server.js"))
            .arg(dir.path().join("cert.pem"))
            .arg(dir.path().join("key.pem"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("node (apt package nodejs)");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the node server said {line:?}"));
        NodeServer {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for NodeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// tests/node/client.js: `n` GETs of /id/SEQ, `c` at a time on keep-alive
/// sockets, after `delay_ms`; asserts all succeeded.
pub fn node_client(port: u16, id: &str, n: u32, c: u32, delay_ms: u32) {
    let out = run_with_timeout(
        Command::new("node")
            .arg(workspace_root().join("tests/node/client.js"))
            .args([
                port.to_string(),
                id.to_string(),
                n.to_string(),
                c.to_string(),
                delay_ms.to_string(),
            ]),
        Duration::from_secs(120),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains(&format!("done {n} 0")),
        "node client: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
