//! Root check, binary location, global lock, ports, process helpers.
use std::{
    fs::{self, File},
    net::{Ipv6Addr, TcpListener},
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex, MutexGuard,
    },
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

/// Headers hdrtap redacts by default (lower case).
pub const DEFAULT_REDACTED: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-auth-token",
];

/// How long to wait for hdrtap's ready file.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long to wait for records to show up after the traffic before stopping.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long hdrtap may take to exit after SIGTERM/SIGINT.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// Panic (never skip) unless we run as root: the tests load BPF programs.
pub fn require_root() {
    let euid = rustix::process::geteuid().as_raw();
    assert!(
        euid == 0,
        "hdrtap integration tests must run as root (euid is {euid}): they load eBPF programs. \
         Run them as root with ./scripts/test.sh; without root, \
         `cargo test --workspace --exclude hdrtap-tests` runs every other test"
    );
}

/// The workspace root (parent of this crate).
/// A directory for programs a test process builds: target/<profile>/NAME/<pid>
/// (test binaries run one at a time, so the previous process's build is
/// removed: a new file each run, and nothing left in /tmp). Returns
/// target/<profile> and the directory.
pub fn fresh_build_dir(name: &str) -> (PathBuf, PathBuf) {
    // target/<profile>/deps/<test binary> -> target/<profile>
    let exe = std::env::current_exe().unwrap();
    let target = exe
        .ancestors()
        .nth(2)
        .expect("test binary under target/<profile>/deps")
        .to_path_buf();
    let top = target.join(name);
    let _ = fs::remove_dir_all(&top);
    let dir = top.join(std::process::id().to_string());
    fs::create_dir_all(&dir).unwrap();
    (target, dir)
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The hdrtap binary under test: `$HDRTAP_BIN`, else `<target>/debug/hdrtap`.
pub fn hdrtap_bin() -> PathBuf {
    let path = match std::env::var_os("HDRTAP_BIN") {
        Some(p) => PathBuf::from(p),
        None => {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| workspace_root().join("target"));
            let target = if target.is_relative() {
                workspace_root().join(target)
            } else {
                target
            };
            target.join("debug").join("hdrtap")
        }
    };
    assert!(
        path.is_file(),
        "hdrtap binary not found at {} (set HDRTAP_BIN): run scripts/test.sh or cargo build -p hdrtap",
        path.display()
    );
    path
}

/// `tests/clients/`.
pub fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("clients")
}

static LOCK: Mutex<()> = Mutex::new(());

/// Held for the whole test: one integration test at a time, in this process
/// (mutex) and across processes on the machine (flock on a file in /tmp).
pub struct TestGuard {
    _flock: File,
    _mutex: MutexGuard<'static, ()>,
}

/// Call first in every integration test (and keep the guard alive).
pub fn setup() -> TestGuard {
    require_root();
    hdrtap_bin();
    let mutex = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let flock = File::options()
        .create(true)
        .append(true)
        .open("/tmp/hdrtap-integration-tests.lock")
        .expect("open /tmp/hdrtap-integration-tests.lock");
    // Blocks until the lock is ours.
    rustix::fs::flock(&flock, rustix::fs::FlockOperation::LockExclusive)
        .unwrap_or_else(|e| panic!("flock /tmp/hdrtap-integration-tests.lock: {e}"));
    TestGuard {
        _flock: flock,
        _mutex: mutex,
    }
}

/// (major, minor) of the running kernel, from /proc/sys/kernel/osrelease.
/// For expectations that differ by kernel (tests/kernels.sh boots several),
/// e.g. TCX links exist from 6.6 and hdrtap falls back to clsact before.
pub fn kernel_version() -> (u32, u32) {
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").expect("osrelease");
    let mut it = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| {
            n.parse::<u32>()
                .expect("kernel release starts with major.minor")
        });
    (it.next().unwrap(), it.next().unwrap())
}

/// Whether this kernel has TCX links (Linux 6.6).
pub fn kernel_has_tcx() -> bool {
    kernel_version() >= (6, 6)
}

/// A string unique to this test run, for `X-Test-Id`.
pub fn unique_id(tag: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{tag}-{}-{:x}-{}",
        std::process::id(),
        nanos & 0xffff_ffff,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A TCP port free on both 127.0.0.1 and [::1] right now.
pub fn free_port() -> u16 {
    for _ in 0..50 {
        let v4 = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = v4.local_addr().unwrap().port();
        if TcpListener::bind((Ipv6Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
    panic!("no port free on both 127.0.0.1 and [::1]");
}

/// kill(2) `sig` to `pid` (a process the test started); a process already
/// gone is not an error.
pub fn send_signal(pid: u32, sig: libc::c_int) {
    let (Some(pid), Some(sig)) = (
        i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw),
        rustix::process::Signal::from_named_raw(sig),
    ) else {
        panic!("send_signal({pid}, {sig}): not a pid and a signal");
    };
    let _ = rustix::process::kill_process(pid, sig);
}

/// Wait for a child with a timeout (polling).
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Run a command to completion with a timeout, capturing stdout and stderr.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(File::create(&out).unwrap())
        .stderr(File::create(&err).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let status = match wait_timeout(&mut child, timeout) {
        Some(s) => s,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} did not finish within {timeout:?}; stderr:\n{}",
                fs::read_to_string(&err).unwrap_or_default()
            );
        }
    };
    Output {
        status,
        stdout: fs::read(&out).unwrap(),
        stderr: fs::read(&err).unwrap(),
    }
}

/// `bin` with `args` and a clean environment (no RUST_BACKTRACE, RUST_LOG):
/// what a user sees by default. At most 60 s.
pub fn run_clean(bin: &Path, args: &[&str]) -> Output {
    run_with_timeout(
        Command::new(bin)
            .args(args)
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE")
            .env_remove("RUST_LOG"),
        Duration::from_secs(60),
    )
}

/// Copy the hdrtap binary somewhere any user can execute it (for the
/// not-root test); returns the dir guard and the path.
pub fn world_executable_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.path().join("hdrtap");
    fs::copy(hdrtap_bin(), &path).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    (dir, path)
}

/// The cgroup v2 mount point, from /proc/self/mountinfo.
pub fn cgroup2_mount() -> PathBuf {
    let info = fs::read_to_string("/proc/self/mountinfo").expect("read /proc/self/mountinfo");
    for line in info.lines() {
        // ... mount-point ... - fstype source options
        let (pre, post) = line.split_once(" - ").unwrap_or((line, ""));
        if post.split_whitespace().next() == Some("cgroup2") {
            if let Some(mnt) = pre.split_whitespace().nth(4) {
                return PathBuf::from(mnt);
            }
        }
    }
    panic!("no cgroup2 file system mounted (see /proc/self/mountinfo)");
}

/// The cgroup v2 id (inode of the cgroup directory) of process `pid`.
pub fn cgroup_id_of(pid: u32) -> u64 {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("read /proc/PID/cgroup");
    let rel = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or_else(|| panic!("no cgroup v2 line in /proc/{pid}/cgroup:\n{text}"));
    let dir = cgroup2_mount().join(rel.trim_start_matches('/'));
    fs::metadata(&dir)
        .unwrap_or_else(|e| panic!("stat {}: {e}", dir.display()))
        .ino()
}

/// A fresh cgroup v2 directory under the cgroup2 root. On drop, processes
/// still in it are moved back to the root and the directory is removed.
pub struct Cgroup {
    pub path: PathBuf,
    /// Its id as BPF's bpf_get_current_cgroup_id() reports it (the inode).
    pub id: u64,
}

impl Cgroup {
    pub fn create() -> Cgroup {
        static N: AtomicU64 = AtomicU64::new(0);
        let path = cgroup2_mount().join(format!(
            "hdrtap-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        let id = fs::metadata(&path).unwrap().ino();
        Cgroup { path, id }
    }

    /// Move process `pid` into this cgroup.
    pub fn add(&self, pid: u32) {
        fs::write(self.path.join("cgroup.procs"), pid.to_string())
            .unwrap_or_else(|e| panic!("move {pid} into {}: {e}", self.path.display()));
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let root = cgroup2_mount().join("cgroup.procs");
        if let Ok(procs) = fs::read_to_string(self.path.join("cgroup.procs")) {
            for pid in procs.lines() {
                let _ = fs::write(&root, pid);
            }
        }
        let _ = fs::remove_dir(&self.path);
    }
}

/// Non-zero exit, exactly one non-empty line on stderr mentioning `mention`
/// (any of), no panic.
pub fn assert_one_line_error(args: &[&str], out: &Output, mention: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let what = format!(
        "hdrtap {args:?}: exit {}\nstderr:\n{stderr}\nstdout:\n{stdout}",
        out.status
    );
    assert!(!out.status.success(), "{what}\nexpected a non-zero exit");
    assert!(out.status.code().is_some(), "{what}\nkilled by a signal");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{what}\npanicked"
    );
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "{what}\nexpected exactly one line on stderr, got {}",
        lines.len()
    );
    let lower = lines[0].to_lowercase();
    assert!(
        mention.iter().any(|m| lower.contains(&m.to_lowercase())),
        "{what}\nthe error line should mention one of {mention:?}"
    );
}
