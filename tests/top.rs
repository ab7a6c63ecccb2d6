//! `hdrtap top` in a real terminal: a detached tmux pane (its own tmux
//! server per test), driven with `send-keys` and read with `capture-pane`,
//! against nginx on 127.0.0.1 and curl. Root only; run with scripts/test.sh.
#![forbid(unsafe_code)]
use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

use hdrtap_tests::*;

/// How long the screen may take to show what was sent.
const SHOW_TIMEOUT: Duration = Duration::from_secs(10);

/// `hdrtap top ARGS` in a 160x40 tmux pane, its stderr and exit status
/// into files.
struct Pane {
    socket: String,
    dir: tempfile::TempDir,
}

impl Pane {
    fn start(args: &[&str]) -> Pane {
        Self::start_as(&[], &hdrtap_bin(), args)
    }

    /// `WRAPPER... BIN top ARGS` (a wrapper that execs the rest, e.g. setpriv).
    fn start_as(wrapper: &[&str], bin: &std::path::Path, args: &[&str]) -> Pane {
        let dir = tempfile::Builder::new()
            .prefix("hdrtap-top-")
            .tempdir()
            .unwrap();
        let socket = unique_id("hdrtap-top");
        let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
        let mut line: String = wrapper.iter().map(|w| quote(w) + " ").collect();
        line.push_str(&quote(&bin.display().to_string()));
        line.push_str(" top");
        for a in args {
            line.push(' ');
            line.push_str(&quote(a));
        }
        let d = dir.path().display().to_string();
        let script = format!(
            "{line} 2> {}; echo $? > {}.tmp && mv {}.tmp {}",
            quote(&format!("{d}/stderr")),
            quote(&format!("{d}/exit")),
            quote(&format!("{d}/exit")),
            quote(&format!("{d}/exit")),
        );
        let pane = Pane { socket, dir };
        let out = pane.tmux(&[
            "new-session",
            "-d",
            "-s",
            "top",
            "-x",
            "160",
            "-y",
            "40",
            &format!("sh -c {}", quote(&script)),
        ]);
        assert!(
            out.status.success(),
            "tmux new-session failed (is tmux installed? scripts/setup.sh): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pane
    }

    fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("run tmux (scripts/setup.sh installs it)")
    }

    /// The screen as it is now.
    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", "top"]).stdout)
            .into_owned()
    }

    /// Keys by tmux name (`q`, `Enter`, `Escape`, `/`).
    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "top"];
        args.extend(keys);
        assert!(self.tmux(&args).status.success(), "send-keys {keys:?}");
    }

    /// Text typed as is.
    fn type_text(&self, text: &str) {
        assert!(
            self.tmux(&["send-keys", "-t", "top", "-l", text])
                .status
                .success(),
            "send-keys -l {text:?}"
        );
    }

    /// Poll the screen until `done` holds (within [`SHOW_TIMEOUT`]); panic
    /// with the screen and hdrtap's stderr otherwise.
    fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        self.wait_for_within(SHOW_TIMEOUT, what, done)
    }

    /// The first screen: the programs are loaded and attached first.
    fn wait_ready(&self) -> String {
        self.wait_for_within(READY_TIMEOUT, "the header and the table's columns", |s| {
            s.contains("hdrtap top") && s.contains("responses,") && s.contains("ROUTE")
        })
    }

    fn wait_for_within(
        &self,
        timeout: Duration,
        what: &str,
        done: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            if Instant::now() >= deadline || self.exit_status().is_some() {
                panic!(
                    "hdrtap top: {what}: not on screen within {timeout:?}; screen:\n{screen}\nstderr:\n{}\nexit: {:?}",
                    self.stderr(),
                    self.exit_status()
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    fn running(&self) -> bool {
        self.tmux(&["has-session", "-t", "top"]).status.success()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn stderr(&self) -> String {
        fs::read_to_string(self.path("stderr")).unwrap_or_default()
    }

    fn exit_status(&self) -> Option<String> {
        fs::read_to_string(self.path("exit"))
            .ok()
            .map(|s| s.trim().to_string())
    }

    /// Wait for hdrtap to end and its pane to close; its exit status.
    fn wait_exit(&self, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let (Some(status), false) = (self.exit_status(), self.running()) {
                return status;
            }
            thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "hdrtap top did not end within {timeout:?}; screen:\n{}\nstderr:\n{}",
            self.screen(),
            self.stderr()
        );
    }

    /// Wait for the end: exit status `status` and, last on stderr, a line
    /// starting with `line`. Lines before it can only be warnings held
    /// while the screen was taken (with HTTPS capture on, a program started
    /// meanwhile that cannot be hooked is one). Returns stderr's lines.
    fn ends_with(&self, status: &str, line: &str) -> Vec<String> {
        let got = self.wait_exit(STOP_TIMEOUT);
        let stderr = self.stderr();
        assert_eq!(got, status, "exit status; stderr:\n{stderr}");
        let lines: Vec<String> = stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect();
        let last = lines.last().map(String::as_str).unwrap_or("");
        assert!(last.starts_with(line), "stderr at exit:\n{stderr}");
        for l in &lines[..lines.len() - 1] {
            assert!(
                l.contains("WARN") || l.contains("warning"),
                "stderr at exit: not a warning: {l:?}\n{stderr}"
            );
        }
        lines
    }
}

impl Drop for Pane {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

/// The cells of the table row for `side method route`: count, rate, 4xx %,
/// 5xx % (strings as shown); None when the row is not on screen.
fn row<'a>(screen: &'a str, side: &str, method: &str, route: &str) -> Option<Vec<&'a str>> {
    screen.lines().find_map(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        (w.len() >= 7 && w[0] == side && w[1] == method && w[2] == route).then(|| w[3..7].to_vec())
    })
}

/// The routes of the table's rows, top to bottom.
fn routes(screen: &str) -> Vec<String> {
    screen
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w.len() >= 7 && (w[0] == "server" || w[0] == "client")).then(|| w[2].to_string())
        })
        .collect()
}

#[test]
fn top_counts_sorts_filters_and_quits() {
    let _guard = setup();
    let nginx = Nginx::start();
    let port = nginx.port.to_string();
    let pane = Pane::start(&["--port", &port, "--side", "server", "--no-tls"]);
    let screen = pane.wait_ready();
    assert!(
        screen.contains(&format!("port {port}")),
        "the header does not say what is traced:\n{screen}"
    );

    let id = unique_id("top");
    let mut reqs: Vec<CurlRequest> = (1..=30)
        .map(|i| CurlRequest::get(nginx.url_v4(&format!("/a/{i}")), &id, i))
        .collect();
    reqs.extend((31..=35).map(|i| CurlRequest::get(nginx.url_v4("/status/404"), &id, i)));
    let run = curl(&reqs);
    assert_eq!(run.exchanges.len(), 35);

    let screen = pane.wait_for("30 GET /a/* and 5 GET /status/*", |s| {
        row(s, "server", "GET", "/a/*").is_some_and(|r| r[0] == "30")
            && row(s, "server", "GET", "/status/*").is_some_and(|r| r[0] == "5")
    });
    let a = row(&screen, "server", "GET", "/a/*").unwrap();
    let missing = row(&screen, "server", "GET", "/status/*").unwrap();
    // COUNT RATE/S 4XX% 5XX%: all /a/* answered 200, every /status/404 (route /status/*) a 404.
    assert_eq!((a[2], a[3]), ("0.0", "0.0"), "/a/*:\n{screen}");
    assert_eq!(
        (missing[2], missing[3]),
        ("100.0", "0.0"),
        "/status/*:\n{screen}"
    );
    let rate: f64 = a[1].parse().unwrap();
    assert!(rate > 0.0, "/a/* has no rate:\n{screen}");
    assert!(
        screen.contains("35 responses"),
        "the header's total is not 35:\n{screen}"
    );
    // Sorted by count: the busier first.
    assert_eq!(routes(&screen), ["/a/*", "/status/*"], "{screen}");

    // By errors: the failing endpoint first.
    pane.keys(&["e"]);
    let screen = pane.wait_for("sorted by errors", |s| {
        s.contains("sort: errors") && routes(s) == ["/status/*", "/a/*"]
    });
    assert!(screen.contains("4XX%▼"), "{screen}");
    // Tab: the next key (p50).
    pane.keys(&["Tab"]);
    pane.wait_for("sorted by p50 after Tab", |s| s.contains("sort: p50"));

    // A filter: only the matching row.
    pane.keys(&["/"]);
    pane.type_text("GET /STAT");
    pane.wait_for("the filter being typed", |s| {
        s.contains("filter: GET /STAT_")
    });
    pane.keys(&["Enter"]);
    let screen = pane.wait_for("only /status/* after the filter", |s| {
        routes(s) == ["/status/*"]
    });
    assert!(screen.contains("1 of 2 rows"), "{screen}");
    // Esc while typing clears it: both rows again.
    pane.keys(&["/"]);
    pane.wait_for("the filter being edited", |s| {
        s.contains("filter: GET /STAT_")
    });
    pane.keys(&["Escape"]);
    pane.wait_for("both rows after Esc", |s| {
        routes(s).len() == 2 && s.contains("filter: none")
    });

    pane.keys(&["q"]);
    pane.ends_with("0", "hdrtap top: 35 responses on 2 endpoints");
}

/// Without `--side`, both ends on the machine: a row for what nginx served
/// and one for what curl asked, each with every response; default HTTPS
/// capture on (the uprobes attached).
#[test]
fn top_shows_each_side_of_an_endpoint() {
    let _guard = setup();
    let nginx = Nginx::start();
    let pane = Pane::start(&["--port", &nginx.port.to_string()]);
    pane.wait_ready();
    let id = unique_id("top-sides");
    let reqs: Vec<CurlRequest> = (1..=3)
        .map(|i| CurlRequest::get(nginx.url_v4(&format!("/a/{i}?q={i}")), &id, i))
        .collect();
    curl(&reqs);
    let screen = pane.wait_for("3 GET /a/* on each side", |s| {
        ["server", "client"]
            .iter()
            .all(|side| row(s, side, "GET", "/a/*").is_some_and(|r| r[0] == "3"))
    });
    assert_eq!(routes(&screen), ["/a/*", "/a/*"], "{screen}");
    assert!(screen.contains("6 responses"), "{screen}");
    pane.keys(&["q"]);
    pane.ends_with("0", "hdrtap top: 6 responses on 2 endpoints");
}

/// `-d SECS` ends by itself: exit 0, the pane closes.
#[test]
fn top_stops_after_its_duration() {
    let _guard = setup();
    let started = Instant::now();
    let pane = Pane::start(&["--duration", "2", "--no-tls", "--port", "1"]);
    pane.wait_ready();
    let status = pane.wait_exit(STOP_TIMEOUT + Duration::from_secs(2));
    assert_eq!(status, "0", "stderr:\n{}", pane.stderr());
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "ended before its duration"
    );
    assert!(
        pane.stderr()
            .contains("hdrtap top: 0 responses on 0 endpoints"),
        "stderr:\n{}",
        pane.stderr()
    );
}

/// Without privileges: the http capture's one error line, naming the
/// command, and exit status 1; nothing is drawn (stdout is the pane's
/// terminal, the line is on stderr).
#[test]
fn top_without_privileges_is_one_line_error() {
    let _guard = setup();
    let (_bin_dir, bin) = world_executable_copy();
    let pane = Pane::start_as(
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--ambient-caps=-all",
            "--bounding-set=-all",
        ],
        &bin,
        &["--no-tls"],
    );
    let lines = pane.ends_with(
        "1",
        "hdrtap: error: hdrtap top needs root or these capabilities: ",
    );
    assert_eq!(lines.len(), 1, "{lines:?}");
}
