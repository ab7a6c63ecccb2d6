//! Least privilege: each command runs as an unprivileged user (nobody) with
//! exactly the capabilities docs/PRIVILEGES.md lists for it (ambient, with
//! the bounding set cut to the same list by setpriv, so nothing else can be
//! gained), each missing capability is one error line naming it, and
//! `--drop-caps` leaves hdrtap with only what it still needs at run time
//! (read from /proc/PID/status while it runs) and capture still works.
//! Root only (to start the unprivileged runs and nginx).
#![forbid(unsafe_code)]
use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::PathBuf,
    process::{Child, Command},
    thread,
    time::Duration,
};

use hdrtap_tests::*;

/// A world-writable scratch dir and a world-executable copy of hdrtap.
struct Scratch {
    _bin_dir: tempfile::TempDir,
    bin: PathBuf,
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        let (bin_dir, bin) = world_executable_copy();
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
        Scratch {
            _bin_dir: bin_dir,
            bin,
            dir,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `setpriv` running hdrtap as nobody with exactly `caps` (setpriv
    /// names: `bpf`, `perfmon`, ...) in its effective, permitted, ambient
    /// and bounding sets.
    fn as_nobody(&self, caps: &[&str], args: &[&str]) -> Command {
        let list: String = caps.iter().map(|c| format!(",+{c}")).collect();
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(format!("--inh-caps=-all{list}"))
            .arg(format!("--ambient-caps=-all{list}"))
            .arg(format!("--bounding-set=-all{list}"))
            .arg(&self.bin)
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LOG");
        cmd
    }
}

/// A running hdrtap started by [`spawn_ready`].
struct Running {
    child: Child,
    stderr: PathBuf,
    output: PathBuf,
}

impl Running {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM; exit 0 expected; the NDJSON lines and stderr.
    fn stop(mut self) -> (Vec<Value>, String) {
        send_signal(self.child.id(), libc::SIGTERM);
        let status = wait_timeout(&mut self.child, STOP_TIMEOUT).expect("hdrtap did not stop");
        let stderr = fs::read_to_string(&self.stderr).unwrap_or_default();
        assert!(status.success(), "hdrtap exited {status}:\n{stderr}");
        let recs = fs::read_to_string(&self.output)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (recs, stderr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start hdrtap `args` (a subcommand and its flags, a packet filter last),
/// as nobody with `caps` or else as root, writing JSON to `tag`.ndjson in
/// the scratch dir; wait for its ready file.
fn spawn_ready(s: &Scratch, caps: Option<&[&str]>, args: &[&str], tag: &str) -> Running {
    let output = s.path(&format!("{tag}.ndjson"));
    let ready = s.path(&format!("{tag}.ready"));
    let stderr = s.path(&format!("{tag}.stderr"));
    let (out, rdy) = (output.display().to_string(), ready.display().to_string());
    let mut full = vec![args[0], "--json", "-o", &out, "--ready-file", &rdy];
    full.extend(&args[1..]);
    let mut cmd = match caps {
        Some(caps) => s.as_nobody(caps, &full),
        None => {
            let mut c = Command::new(&s.bin);
            c.args(&full);
            c
        }
    };
    let what = format!("hdrtap {cmd:?}");
    let child = spawn_until_ready(&mut cmd, &ready, &stderr, &what);
    Running {
        child,
        stderr,
        output,
    }
}

/// Run to completion; assert a one-line error naming `cap`.
fn fails_naming(s: &Scratch, caps: &[&str], args: &[&str], cap: &str) {
    let out = run_with_timeout(&mut s.as_nobody(caps, args), Duration::from_secs(60));
    let err = String::from_utf8_lossy(&out.stderr);
    let what = format!(
        "hdrtap {args:?} with only {caps:?}: exit {}\n{err}",
        out.status
    );
    assert_eq!(out.status.code(), Some(1), "{what}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{what}\nexpected one line");
    assert!(
        lines[0].contains(cap),
        "{what}\nthe error does not name {cap}"
    );
    assert!(!err.contains("panicked"), "{what}");
}

const HTTP_CAPS: &[&str] = &["bpf", "perfmon", "dac_read_search"];
const TLS_CAPS: &[&str] = &[
    "bpf",
    "perfmon",
    "dac_read_search",
    "sys_admin",
    "sys_ptrace",
];
const PACKET_CAPS: &[&str] = &["bpf", "perfmon", "net_admin"];
const SOCKET_CAPS: &[&str] = &["bpf", "perfmon", "net_admin", "net_raw"];

fn without<'a>(caps: &[&'a str], drop: &str) -> Vec<&'a str> {
    caps.iter().copied().filter(|c| *c != drop).collect()
}

#[test]
fn each_missing_capability_is_one_error_line_naming_it() {
    let _guard = setup();
    let s = Scratch::new();
    for cap in HTTP_CAPS {
        fails_naming(
            &s,
            &without(HTTP_CAPS, cap),
            &["http", "--no-tls", "-d", "1"],
            &format!("CAP_{}", cap.to_uppercase()),
        );
    }
    for (hook, caps) in [
        ("tc", PACKET_CAPS),
        ("xdp", PACKET_CAPS),
        ("socket", SOCKET_CAPS),
    ] {
        for cap in caps {
            fails_naming(
                &s,
                &without(caps, cap),
                &["packets", "--hook", hook, "-i", "lo", "-d", "1"],
                &format!("CAP_{}", cap.to_uppercase()),
            );
        }
    }
}

#[test]
fn http_runs_as_nobody_with_exactly_its_capabilities() {
    let _guard = setup();
    let s = Scratch::new();
    let nginx = Nginx::start();
    let port = nginx.port.to_string();
    let hd = spawn_ready(
        &s,
        Some(HTTP_CAPS),
        &["http", "--no-tls", "--port", &port],
        "http",
    );
    assert_eq!(
        status_hex(hd.pid(), "CapEff"),
        (1 << 2) | (1 << 38) | (1 << 39),
        "not exactly the listed capabilities"
    );
    let id = unique_id("caps");
    let run = curl(&[CurlRequest::get(nginx.url_v4("/"), &id, 1)]);
    thread::sleep(Duration::from_millis(500));
    let (recs, stderr) = hd.stop();
    let n = recs.iter().filter(|v| is_http(v)).count();
    assert_eq!(n, run.expected_records(2), "{stderr}\n{recs:?}");
    // Without TLS capabilities, HTTPS capture says what it lacks.
    let hd = spawn_ready(
        &s,
        Some(HTTP_CAPS),
        &["http", "--port", &port],
        "http-tls-off",
    );
    let (_, stderr) = hd.stop();
    assert!(
        stderr.contains("HTTPS capture is off") && stderr.contains("CAP_SYS_ADMIN"),
        "{stderr}"
    );
}

#[test]
fn https_runs_as_nobody_with_the_tls_capabilities() {
    let _guard = setup();
    let s = Scratch::new();
    let nginx = Nginx::start_tls();
    let port = nginx.port.to_string();
    let hd = spawn_ready(&s, Some(TLS_CAPS), &["http", "--port", &port], "https");
    let id = unique_id("tlscaps");
    curl(&[CurlRequest::get(nginx.url_v4("/"), &id, 1)]);
    thread::sleep(Duration::from_millis(500));
    let (recs, stderr) = hd.stop();
    let tls: Vec<&Value> = recs
        .iter()
        .filter(|v| is_http(v) && v["tls"] == true)
        .filter(|v| {
            header(v, "X-Test-Id").as_deref() == Some(id.as_str())
                || header(v, "X-Echo-Test-Id").as_deref() == Some(id.as_str())
        })
        .collect();
    assert_eq!(
        tls.len(),
        4,
        "HTTPS not captured in cleartext:\n{stderr}\n{recs:?}"
    );
}

#[test]
fn packets_run_as_nobody_with_exactly_their_capabilities() {
    let _guard = setup();
    let s = Scratch::new();
    for (hook, caps) in [
        ("tc", PACKET_CAPS),
        ("xdp", PACKET_CAPS),
        ("socket", SOCKET_CAPS),
    ] {
        let hd = spawn_ready(
            &s,
            Some(caps),
            &["packets", "--hook", hook, "-i", "lo", "udp port 9"],
            &format!("packets-{hook}"),
        );
        // One UDP datagram to the discard port on lo.
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.send_to(b"hdrtap", "127.0.0.1:9").unwrap();
        thread::sleep(Duration::from_millis(500));
        let (recs, stderr) = hd.stop();
        let n = recs.iter().filter(|v| kind(v) == "packet").count();
        assert!(
            n >= 1,
            "--hook {hook} as nobody captured nothing:\n{stderr}"
        );
    }
}

fn cap_bits(names: &[u32]) -> u64 {
    names.iter().fold(0, |a, n| a | 1u64 << n)
}

#[test]
fn drop_caps_keeps_only_what_runtime_needs_and_capture_goes_on() {
    let _guard = setup();
    let s = Scratch::new();
    let nginx = Nginx::start();
    let port = nginx.port.to_string();
    // http --no-tls: nothing left at all, and capture, counters, final stats go on.
    let hd = spawn_ready(
        &s,
        None,
        &["http", "--no-tls", "--drop-caps", "--port", &port],
        "drop-http",
    );
    for set in ["CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb"] {
        assert_eq!(status_hex(hd.pid(), set), 0, "{set} after --drop-caps");
    }
    let status = fs::read_to_string(format!("/proc/{}/status", hd.pid())).unwrap();
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    let id = unique_id("dropcaps");
    let run = curl(&[CurlRequest::get(nginx.url_v4("/"), &id, 1)]);
    thread::sleep(Duration::from_millis(500));
    let (recs, stderr) = hd.stop();
    assert!(
        stderr.contains("capabilities dropped; kept: none"),
        "{stderr}"
    );
    let http = recs.iter().filter(|v| is_http(v)).count();
    assert_eq!(http, run.expected_records(2), "{stderr}");
    let last = recs.last().unwrap();
    assert_eq!(kind(last), "stats");
    assert!(
        last["kernel_events"].as_u64().unwrap() >= 4,
        "kernel counters not readable after dropping capabilities: {last}"
    );
    // http with TLS: what hooking OpenSSL in new processes needs.
    let hd = spawn_ready(
        &s,
        None,
        &["http", "--drop-caps", "--port", &port],
        "drop-tls",
    );
    assert_eq!(
        status_hex(hd.pid(), "CapEff"),
        cap_bits(&[2, 19, 21, 38, 39]),
        "CapEff with TLS after --drop-caps"
    );
    hd.stop();
    // packets: TCX links need nothing; clsact keeps CAP_NET_ADMIN to remove
    // its filters and qdisc at exit, and does.
    let topo_q = || {
        String::from_utf8_lossy(
            &Command::new("tc")
                .args(["qdisc", "show", "dev", "lo"])
                .output()
                .unwrap()
                .stdout,
        )
        .into_owned()
    };
    let before = topo_q();
    for (mode, bits) in [("tcx", 0u64), ("clsact", 1u64 << 12)] {
        let hd = spawn_ready(
            &s,
            None,
            &[
                "packets",
                "-i",
                "lo",
                "--tc-attach",
                mode,
                "--drop-caps",
                "udp port 9",
            ],
            &format!("drop-packets-{mode}"),
        );
        assert_eq!(status_hex(hd.pid(), "CapEff"), bits, "{mode}: CapEff");
        let (_, stderr) = hd.stop();
        assert!(stderr.contains("capabilities dropped"), "{stderr}");
        assert_eq!(topo_q(), before, "{mode}: qdiscs on lo changed:\n{stderr}");
    }
}
