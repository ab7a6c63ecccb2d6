//! Go HTTPS peers for tests/gotls.rs: `tests/gotls/{server,client}` built
//! at test time with Debian's Go (golang-go, 1.19; standard library only,
//! no module proxy), as they are and stripped (`-ldflags="-s -w"`).
use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::OnceLock,
    time::Duration,
};

use crate::*;

/// The four Go programs, built once per test process.
#[derive(Debug, Clone)]
pub struct GoBins {
    pub server: PathBuf,
    pub client: PathBuf,
    pub server_stripped: PathBuf,
    pub client_stripped: PathBuf,
}

/// Build the Go test programs into target/<profile>/gotls/<pid>/ (each
/// test process its own, new files; the Go build cache under target/).
pub fn go_bins() -> GoBins {
    static BINS: OnceLock<GoBins> = OnceLock::new();
    BINS.get_or_init(|| {
        let (target, dir) = fresh_build_dir("gotls");
        let build = |pkg: &str, out: &Path, strip: bool| {
            let mut cmd = Command::new("go");
            cmd.arg("build").arg("-trimpath").arg("-o").arg(out);
            if strip {
                cmd.arg("-ldflags=-s -w");
            }
            cmd.arg(".")
                .current_dir(workspace_root().join("tests/gotls").join(pkg))
                .env("GOCACHE", target.join("gocache"))
                .env("GOPATH", target.join("gopath"))
                .env("GOFLAGS", "-mod=mod")
                .env("GOPROXY", "off")
                .env("GOTOOLCHAIN", "local")
                .env("CGO_ENABLED", "0");
            let out = run_with_timeout(&mut cmd, Duration::from_secs(300));
            assert!(
                out.status.success(),
                "go build of tests/gotls/{pkg} failed (apt-get install golang-go): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let bins = GoBins {
            server: dir.join("gotls-server"),
            client: dir.join("gotls-client"),
            server_stripped: dir.join("gotls-srv-s"),
            client_stripped: dir.join("gotls-cli-s"),
        };
        build("server", &bins.server, false);
        build("client", &bins.client, false);
        build("server", &bins.server_stripped, true);
        build("client", &bins.client_stripped, true);
        bins
    })
    .clone()
}

/// A Go HTTPS server (`bin`: one of [`GoBins`]) on 127.0.0.1, HTTP/2 unless
/// `http1`; killed on drop.
pub struct GoServer {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl GoServer {
    pub fn start(bin: &Path, http1: bool) -> GoServer {
        let dir = tempfile::tempdir().unwrap();
        make_self_signed_cert(dir.path()).unwrap();
        let mut cmd = Command::new(bin);
        cmd.arg("-cert")
            .arg(dir.path().join("cert.pem"))
            .arg("-key")
            .arg(dir.path().join("key.pem"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if http1 {
            cmd.env("GODEBUG", "http2server=0");
        }
        let mut child = cmd.spawn().expect("the Go test server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the Go server said {line:?}"));
        GoServer {
            child,
            port,
            _dir: dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Still running (it never exits by itself).
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for GoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run the Go client (`bin`) against `port`: `args` after the URL; with
/// `http1`, HTTP/1.1 only. Returns its stdout; asserts it exited 0.
pub fn go_client(bin: &Path, port: u16, http1: bool, args: &[&str]) -> String {
    let mut cmd = Command::new(bin);
    cmd.arg("-url")
        .arg(format!("https://127.0.0.1:{port}"))
        .args(args);
    if http1 {
        cmd.env("GODEBUG", "http2client=0");
    }
    let out = run_with_timeout(&mut cmd, Duration::from_secs(120));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "Go client {args:?} failed ({}):\n{text}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    text
}
