//! An nginx of our own per test.
use std::{
    fmt::Write as _,
    fs::{self, File},
    net::{SocketAddr, TcpStream},
    path::Path,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::*;

/// An nginx of our own (single process, `master_process off`) listening on
/// 127.0.0.1:port and [::1]:port (or, [`Nginx::start_dual_stack`], on one
/// `[::]:port ipv6only=off` socket), config and logs in a temp dir. Like
/// Debian's default config it uses `sendfile on; tcp_nopush on;`. Every response
/// echoes the request's `X-Test-Id`/`X-Seq` as `X-Echo-Test-Id`/`X-Echo-Seq`, so
/// a response record can be matched to its request without trusting hdrtap's
/// pairing.
///
/// Locations: `/` small body; `/big` a 64 KiB file; `/huge` a 4 MiB file
/// written by nginx with `sendfile off` (so both ends move the body through
/// read/write calls) at 10 MB/s (`limit_rate`, as over a real network);
/// `/huge-fast` the same file at memory speed; `/huge-frames` the same, read
/// from disk 1 MiB at a time (over HTTP/2 to a client that allows it: 1 MiB
/// DATA frames); `/chunked` an SSI page
/// (chunked response); `/status/404`; `/a/...` (200, for routes with an
/// identifier: `/a/1`, `/a/2` are `/a/*`); `/setcookie` (response with
/// Set-Cookie). `/` also takes a POST and reads (discards) its body.
///
/// [`Nginx::start_tls`] serves HTTPS instead (TLS on both listeners) with a
/// self-signed certificate made by the `openssl` CLI in the temp dir; the
/// `url_*` helpers then say `https://`.
pub struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
    pub port: u16,
    /// Serving HTTPS.
    pub tls: bool,
}

/// Request headers nginx logs, as (`$http_...` variable suffix, header name).
pub const LOGGED_HEADERS: &[(&str, &str)] = &[
    ("host", "Host"),
    ("user_agent", "User-Agent"),
    ("accept", "Accept"),
    ("x_test_id", "X-Test-Id"),
    ("x_seq", "X-Seq"),
    ("x_custom", "X-Custom"),
    ("authorization", "Authorization"),
    ("cookie", "Cookie"),
    ("x_api_key", "X-Api-Key"),
];

/// Size of `/huge`.
pub const HUGE_BYTES: u64 = 4 << 20;

/// Body of `/setcookie`'s Set-Cookie header.
pub const SET_COOKIE_VALUE: &str = "sid=topsecret456; Path=/; HttpOnly";

/// Secrets `/oauth-redirect` sends back: in Location's query (an OAuth
/// authorization code and state), Content-Location's and Refresh's URLs.
pub const OAUTH_CODE: &str = "oauth-code-s3cr3t";
pub const OAUTH_STATE: &str = "oauth-state-s3cr3t";
pub const OAUTH_CONTENT_KEY: &str = "content-key-s3cr3t";
pub const OAUTH_REFRESH_TOKEN: &str = "refresh-tok-s3cr3t";

impl Nginx {
    pub fn start() -> Nginx {
        Self::start_with(false, false)
    }

    /// One dual-stack listening socket, `[::]:port ipv6only=off`: IPv4
    /// clients arrive on an AF_INET6 socket as v4-mapped addresses.
    pub fn start_dual_stack() -> Nginx {
        Self::start_with(true, false)
    }

    /// HTTPS on 127.0.0.1:port and [::1]:port (self-signed certificate).
    pub fn start_tls() -> Nginx {
        Self::start_with(false, true)
    }

    /// Plain HTTP like [`Nginx::start`], with room for `conns` connections at
    /// once (`worker_connections`, `worker_rlimit_nofile`).
    pub fn start_with_connections(conns: u32) -> Nginx {
        Self::start_opts(false, false, conns, false)
    }

    /// HTTP/2 only: with prior knowledge (h2c, nginx 1.22 does not upgrade)
    /// or, with `tls`, over TLS with ALPN `h2`; on 127.0.0.1 and [::1].
    pub fn start_h2(tls: bool) -> Nginx {
        Self::start_opts(false, tls, 1024, true)
    }

    fn start_with(dual_stack: bool, tls: bool) -> Nginx {
        Self::start_opts(dual_stack, tls, 1024, false)
    }

    /// Plain HTTP on port 80 of every address (`[::]:80 ipv6only=off`) of
    /// network namespace `netns`, which the test made (so port 80 is free).
    pub fn start_in_netns(netns: &str) -> Nginx {
        Self::try_start(80, true, false, 1024, false, Some(netns))
            .unwrap_or_else(|e| panic!("nginx did not start in {netns}: {e}"))
    }

    fn start_opts(dual_stack: bool, tls: bool, conns: u32, h2: bool) -> Nginx {
        let mut last_err = String::new();
        for _ in 0..5 {
            match Self::try_start(free_port(), dual_stack, tls, conns, h2, None) {
                Ok(n) => return n,
                Err(e) => last_err = e,
            }
        }
        panic!("nginx did not start: {last_err}");
    }

    fn try_start(
        port: u16,
        dual_stack: bool,
        tls: bool,
        conns: u32,
        h2: bool,
        netns: Option<&str>,
    ) -> Result<Nginx, String> {
        let dir = tempfile::Builder::new()
            .prefix("hdrtap-nginx-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        fs::create_dir_all(d.join("www")).unwrap();
        fs::create_dir_all(d.join("tmp")).unwrap();
        fs::write(d.join("www/index.txt"), "hello from hdrtap-tests\n").unwrap();
        let big: String = (0..64 * 1024 / 64).map(|i| format!("{i:063}\n")).collect();
        fs::write(d.join("www/big"), big).unwrap();
        // Sparse: no time spent writing it.
        File::create(d.join("www/huge"))
            .and_then(|f| f.set_len(HUGE_BYTES))
            .unwrap();
        fs::write(
            d.join("www/chunked.html"),
            "<html>\n<!--# echo var=\"uri\" -->\n<p>chunked by SSI</p>\n</html>\n",
        )
        .unwrap();
        let mut fields = String::from(
            "\"method\":\"$request_method\",\"uri\":\"$request_uri\",\"protocol\":\"$server_protocol\",\
             \"status\":\"$status\",\"remote_addr\":\"$remote_addr\",\"remote_port\":\"$remote_port\",\
             \"server_port\":\"$server_port\",\"connection\":\"$connection\"",
        );
        for (var, _) in LOGGED_HEADERS {
            let _ = write!(fields, ",\"{var}\":\"$http_{var}\"");
        }
        let p = d.display();
        let ssl = match (tls, h2) {
            (true, true) => " ssl http2",
            (true, false) => " ssl",
            (false, true) => " http2",
            (false, false) => "",
        };
        let listen = if dual_stack {
            format!("listen [::]:{port}{ssl} ipv6only=off;")
        } else {
            format!("listen 127.0.0.1:{port}{ssl};\n        listen [::1]:{port}{ssl};")
        };
        let listen = if tls {
            make_self_signed_cert(d)?;
            format!(
                "{listen}\n        ssl_certificate {p}/cert.pem;\n        ssl_certificate_key {p}/key.pem;"
            )
        } else {
            listen
        };
        let echo = "add_header X-Echo-Test-Id $http_x_test_id always;\n        \
                    add_header X-Echo-Seq $http_x_seq always;";
        // HTTP/2: header lists up to 512 KiB (the CONTINUATION tests), DATA
        // frames up to 1 MiB to a client that allows them (the kernel skip
        // test), and custom response fields.
        let h2_extra = if h2 {
            "http2_max_field_size 64k;\n        http2_max_header_size 512k;\n        \
             http2_chunk_size 1m;\n        \
             add_header X-H2-Custom \"custom value\" always;\n        \
             add_header X-H2-Other other always;"
        } else {
            ""
        };
        let nofile = conns + 256;
        let conf = format!(
            r#"daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile {nofile};
pid {p}/nginx.pid;
error_log {p}/error.log info;
events {{ worker_connections {conns}; }}
http {{
    client_body_temp_path {p}/tmp/body;
    proxy_temp_path {p}/tmp/proxy;
    fastcgi_temp_path {p}/tmp/fastcgi;
    uwsgi_temp_path {p}/tmp/uwsgi;
    scgi_temp_path {p}/tmp/scgi;
    types {{ text/html html; text/plain txt; }}
    default_type text/plain;
    keepalive_timeout 60s;
    keepalive_requests 100000;
    sendfile on;
    tcp_nopush on;
    large_client_header_buffers 4 64k;
    client_max_body_size 64m;
    log_format hdrtap_json escape=json '{{{fields}}}';
    access_log {p}/access.log hdrtap_json;
    server {{
        {listen}
        server_name localhost;
        root {p}/www;
        {echo}
        {h2_extra}
        location = / {{ return 200 "hello from hdrtap-tests\n"; }}
        location = /big {{ }}
        location = /huge {{ sendfile off; limit_rate 10m; }}
        location = /huge-fast {{ sendfile off; alias {p}/www/huge; }}
        location = /huge-frames {{ sendfile off; output_buffers 2 1m; alias {p}/www/huge; }}
        location = /chunked {{
            ssi on;
            default_type text/html;
            alias {p}/www/chunked.html;
        }}
        location = /status/404 {{ return 404; }}
        location /a/ {{ return 200 "a\n"; }}
        location = /oauth-redirect {{
            add_header Content-Location "/cb?key={OAUTH_CONTENT_KEY}" always;
            add_header Refresh "0; url=/next?token={OAUTH_REFRESH_TOKEN}" always;
            return 302 "http://127.0.0.1/cb?code={OAUTH_CODE}&state={OAUTH_STATE}";
        }}
        location = /setcookie {{
            {echo}
            add_header Set-Cookie "{SET_COOKIE_VALUE}" always;
            return 200 "cookie set\n";
        }}
    }}
}}
"#
        );
        fs::write(d.join("nginx.conf"), conf).unwrap();
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "nginx"]);
                c
            }
            None => Command::new("nginx"),
        };
        let mut child = cmd
            .arg("-p")
            .arg(d)
            .arg("-c")
            .arg(d.join("nginx.conf"))
            .arg("-e")
            .arg(d.join("error.log"))
            .stdin(Stdio::null())
            .stdout(File::create(d.join("stdout.txt")).unwrap())
            .stderr(File::create(d.join("stderr.txt")).unwrap())
            .spawn()
            .map_err(|e| format!("spawn nginx (is it installed? run scripts/setup.sh): {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let addrs: [SocketAddr; 2] = [
            format!("127.0.0.1:{port}").parse().unwrap(),
            format!("[::1]:{port}").parse().unwrap(),
        ];
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return Err(format!(
                    "nginx exited ({status}) on port {port}: {}{}",
                    fs::read_to_string(d.join("stderr.txt")).unwrap_or_default(),
                    fs::read_to_string(d.join("error.log")).unwrap_or_default()
                ));
            }
            let listening = match netns {
                // Only the namespace reaches it: ask from inside.
                Some(ns) => Command::new("ip")
                    .args(["netns", "exec", ns, "curl", "-s", "-o", "/dev/null"])
                    .args(["--max-time", "1", &format!("http://127.0.0.1:{port}/")])
                    .status()
                    .is_ok_and(|s| s.success()),
                None => addrs
                    .iter()
                    .all(|a| TcpStream::connect_timeout(a, Duration::from_millis(200)).is_ok()),
            };
            if listening {
                break;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("nginx not listening on {port} after 10 s"));
            }
            thread::sleep(Duration::from_millis(20));
        }
        // Let nginx log (and forget) our probe connections before any test traffic.
        thread::sleep(Duration::from_millis(50));
        Ok(Nginx {
            child,
            dir,
            port,
            tls,
        })
    }

    /// nginx's pid (the only nginx process: master_process is off).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url_v4(&self, path: &str) -> String {
        format!("{}://127.0.0.1:{}{path}", self.scheme(), self.port)
    }

    pub fn url_v6(&self, path: &str) -> String {
        format!("{}://[::1]:{}{path}", self.scheme(), self.port)
    }

    fn scheme(&self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Parsed access log lines.
    pub fn access_log(&self) -> Vec<Value> {
        fs::read_to_string(self.dir.path().join("access.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("bad access log line {l:?}: {e}"))
            })
            .collect()
    }
}

/// A self-signed certificate for localhost (P-256 key: fast to make) as
/// `cert.pem` and `key.pem` in `dir`, with the `openssl` CLI.
pub fn make_self_signed_cert(dir: &Path) -> Result<(), String> {
    let out = run_with_timeout(
        Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-nodes", "-days", "2"])
            .args(["-pkeyopt", "ec_paramgen_curve:prime256v1"])
            .args(["-subj", "/CN=localhost"])
            .arg("-keyout")
            .arg(dir.join("key.pem"))
            .arg("-out")
            .arg(dir.join("cert.pem")),
        Duration::from_secs(30),
    );
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "openssl req failed ({}; is the openssl CLI installed? run scripts/setup.sh): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        send_signal(self.child.id(), libc::SIGTERM);
        if wait_timeout(&mut self.child, Duration::from_secs(5)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
