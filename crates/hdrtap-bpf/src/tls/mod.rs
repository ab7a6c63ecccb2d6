//! TLS (HTTPS) capture: find OpenSSL (and GnuTLS) in every process, attach
//! the uprobes of `bpf/l7/openssl.bpf.c` once per library file, and keep
//! doing so for processes started later.
//!
//! * A uprobe is registered on a file (inode), not on a process: hooking
//!   `libssl.so.3` once covers every process that maps it, now or later.
//!   So only new *files* matter: each [`FileId`] is looked at once.
//! * At start, every process's `/proc/PID/maps` is scanned (other mount
//!   namespaces through `/proc/PID/root`). Candidates are `libssl*` and
//!   `libgnutls*` files and each process's own executable (linked in
//!   statically); they are hooked when their symbol tables define
//!   `SSL_write` and `SSL_read`, or else GnuTLS's `gnutls_record_send(2)`
//!   and `gnutls_record_recv` (the same programs serve both: see
//!   [`discover::GNUTLS_FUNCS`]).
//! * Later, the kernel reports executable files it was not told about:
//!   `sched_process_exec` (a new binary) and executable `mmap`s (ld.so,
//!   dlopen). The process's maps are scanned on receipt and again shortly
//!   after, so a new library is hooked well within a second. Every file
//!   looked at is put in the kernel's `known_files` map and not reported
//!   again.
//! * Each hooked file gets an id (the uprobes' attach cookie) that TLS
//!   events carry; [`TlsLibrary::name`] is what records show.
//!
//! The uretprobe of each function is attached before its uprobe, so every
//! call whose entry is stashed also has its return seen.
pub mod discover;

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use hdrtap_abi::FileEvent;
use libbpf_rs::{Link, MapCore, MapFlags, RingBuffer, RingBufferBuilder, UprobeOpts};

pub use discover::{ElfFacts, FileId, Mapping};

use crate::{BpfError, HttpProbe};

/// Programs of the HTTP object that belong to TLS capture (attached here,
/// skipped by [`HttpProbe::attach`]).
pub const PROG_PREFIX: &str = "tls_";

/// Rescans of a process after it reported a new file: now, and later for
/// libraries mapped after the event (ld.so maps them within milliseconds).
const RESCAN_AFTER: [Duration; 2] = [Duration::from_millis(50), Duration::from_millis(400)];

/// Rescans waiting at most (an exec storm must not grow memory).
const MAX_PENDING: usize = 4096;

/// Files remembered at most; beyond, those not hooked are forgotten (and
/// looked at again if the kernel reports them again).
const MAX_FILES: usize = 65536;

/// A hooked file.
#[derive(Debug, Clone)]
pub struct TlsLibrary {
    /// The id TLS events carry (`tls_lib`): the uprobes' attach cookie.
    pub id: u16,
    /// What records show: the file name, e.g. `libssl.so.3`, or a
    /// statically linked program's name.
    pub name: String,
    /// The path in the process it was found in (that process's view).
    pub path: String,
    /// The process it was found in.
    pub pid: u32,
    pub file: FileId,
    /// OpenSSL is linked into the program itself (not a shared library).
    pub static_binary: bool,
    /// Functions hooked: `ssl_write_internal` and `ssl_read_internal`
    /// (OpenSSL's own, found behind the public ones: see
    /// [`discover::IoEntries`]), or else those of `SSL_write`, `SSL_read`,
    /// `SSL_write_ex`, `SSL_read_ex` the file has; and `SSL_set_fd`.
    pub functions: Vec<&'static str>,
}

/// What was decided about a file.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    /// Not an OpenSSL candidate, or no OpenSSL symbols.
    NotTls,
    /// Hooked as library id.
    Hooked(u16),
    /// A candidate that could not be read or hooked.
    Failed(String),
}

/// Live TLS capture for one [`HttpProbe`].
pub struct TlsCapture {
    libs: Vec<TlsLibrary>,
    files: HashMap<FileId, Verdict>,
    links: Vec<Link>,
    /// Rescans due: when, which process, and (last rescan) the file the
    /// kernel reported, to mark known then.
    pending: Vec<(Instant, u32, Option<FileId>)>,
    events: Rc<RefCell<Vec<FileEvent>>>,
    self_pid: u32,
    /// Libraries hooked since the last [`TlsCapture::take_new`].
    fresh: usize,
    failures: Vec<String>,
    exec_watch: bool,
    uprobes: usize,
}

impl TlsCapture {
    /// Attach the exec/mmap watchers, then hook OpenSSL in every running
    /// process. Failing watchers are not fatal (new processes are then
    /// only covered when they use an already hooked file): see
    /// [`TlsCapture::exec_watch`].
    pub fn start(probe: &HttpProbe) -> Result<TlsCapture, BpfError> {
        let mut tls = TlsCapture {
            libs: Vec::new(),
            files: HashMap::new(),
            links: Vec::new(),
            pending: Vec::new(),
            events: Rc::new(RefCell::new(Vec::new())),
            self_pid: std::process::id(),
            fresh: 0,
            failures: Vec::new(),
            exec_watch: true,
            uprobes: 0,
        };
        let progs = &probe.skel.progs;
        for prog in [&progs.tls_exec, &progs.tls_enter_mmap] {
            match prog.attach() {
                Ok(link) => tls.links.push(link),
                Err(source) if crate::is_permission(&source) => return Err(BpfError::Permission),
                Err(e) => {
                    tls.exec_watch = false;
                    let msg = format!(
                        "cannot watch new processes ({}): {e}",
                        prog.name().to_string_lossy()
                    );
                    tracing::warn!("{msg}");
                    tls.failures.push(msg);
                }
            }
        }
        for pid in discover::pids() {
            tls.scan_pid(probe, pid);
        }
        Ok(tls)
    }

    /// A reader of the HTTP events (`cb`) and of the file events that drive
    /// this capture, in one epoll set.
    pub fn ring_buffer<'a, F>(
        &self,
        probe: &'a HttpProbe,
        cb: F,
    ) -> Result<RingBuffer<'a>, BpfError>
    where
        F: FnMut(&[u8]) -> i32 + 'a,
    {
        let events = Rc::clone(&self.events);
        let mut builder = RingBufferBuilder::new();
        builder
            .add(&probe.skel.maps.events, cb)
            .map_err(|source| BpfError::Map {
                map: "events",
                source,
            })?;
        builder
            .add(&probe.skel.maps.file_events, move |raw: &[u8]| {
                if let Ok(ev) = hdrtap_abi::decode_file_event(raw) {
                    if let Ok(mut q) = events.try_borrow_mut() {
                        q.push(ev);
                    }
                }
                0
            })
            .map_err(|source| BpfError::Map {
                map: "file_events",
                source,
            })?;
        builder.build().map_err(|source| BpfError::Map {
            map: "events",
            source,
        })
    }

    /// Handle the file events received and the rescans now due. Call after
    /// every poll of the ring buffer. Returns the libraries hooked since
    /// the last call (name them in the tracker before the next poll).
    pub fn process(&mut self, probe: &HttpProbe) -> &[TlsLibrary] {
        let now = Instant::now();
        let evs = std::mem::take(&mut *self.events.borrow_mut());
        for ev in evs {
            if ev.tgid == self.self_pid {
                continue;
            }
            self.scan_pid(probe, ev.tgid);
            // An mmap is reported on entry, before the mapping exists: look
            // again later. After the last look, the file as the kernel named
            // it is marked known too (an overlayfs file is mapped as the file
            // underneath, so that name may differ from the maps' one) —
            // only if the process was still there to be looked at, so a file
            // of a process that died at once is reported again by the next.
            if self.pending.len() + RESCAN_AFTER.len() > MAX_PENDING {
                self.pending
                    .drain(..RESCAN_AFTER.len().min(self.pending.len()));
            }
            for (i, after) in RESCAN_AFTER.iter().enumerate() {
                let last = i + 1 == RESCAN_AFTER.len();
                let file = last.then_some(FileId {
                    dev: ev.dev,
                    ino: ev.ino,
                });
                self.pending.push((now + *after, ev.tgid, file));
            }
        }
        let mut due = Vec::new();
        self.pending.retain(|&(at, pid, file)| {
            if at <= now {
                due.push((pid, file));
                false
            } else {
                true
            }
        });
        due.sort_unstable();
        let mut scanned: HashMap<u32, bool> = HashMap::new();
        for (pid, file) in due {
            let alive = match scanned.get(&pid) {
                Some(&a) => a,
                None => {
                    let a = self.scan_pid(probe, pid);
                    scanned.insert(pid, a);
                    a
                }
            };
            if let (true, Some(f)) = (alive, file) {
                self.mark_known(probe, f);
            }
        }
        let start = self.libs.len() - self.fresh;
        self.fresh = 0;
        &self.libs[start..]
    }

    /// Every hooked file.
    pub fn libraries(&self) -> &[TlsLibrary] {
        &self.libs
    }

    /// Whether new processes are watched (exec/mmap programs attached).
    pub fn exec_watch(&self) -> bool {
        self.exec_watch
    }

    /// Problems met so far (unreadable or unhookable candidates), one line each.
    pub fn failures(&self) -> &[String] {
        &self.failures
    }

    /// Uprobes and uretprobes attached.
    pub fn probes(&self) -> usize {
        self.uprobes
    }

    /// Look at every executable file process `pid` maps. False if its maps
    /// could not be read (it exited).
    fn scan_pid(&mut self, probe: &HttpProbe, pid: u32) -> bool {
        if pid == self.self_pid {
            return true;
        }
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/maps")) else {
            return false;
        };
        let exe = discover::exe_path(pid);
        if self.files.len() >= MAX_FILES {
            // Forget the files that were nothing to us; hooked ones stay.
            self.files.retain(|_, v| matches!(v, Verdict::Hooked(_)));
        }
        let mut seen_here = HashSet::new();
        for m in discover::parse_maps(&text) {
            if !m.exec || self.files.contains_key(&m.file) || !seen_here.insert(m.file) {
                continue;
            }
            let verdict = if discover::is_candidate(&m, exe.as_deref()) {
                let is_exe = exe.as_deref() == Some(m.path.as_str());
                self.consider(probe, pid, &m, is_exe)
            } else {
                Verdict::NotTls
            };
            if let Verdict::Failed(msg) = &verdict {
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    // The process left while we looked (its /proc paths are
                    // gone): not the file's fault; try again when it is
                    // mapped again.
                    tracing::debug!("TLS: {msg} (process gone; will retry)");
                    continue;
                }
                tracing::warn!("TLS: {msg}");
                self.failures.push(msg.clone());
            }
            self.files.insert(m.file, verdict);
            self.mark_known(probe, m.file);
        }
        true
    }

    /// Check a candidate's symbols and hook it.
    fn consider(&mut self, probe: &HttpProbe, pid: u32, m: &Mapping, is_exe: bool) -> Verdict {
        // The file is opened once and read and hooked through hdrtap's own
        // descriptor (/proc/self/fd/N): the process's /proc paths vanish
        // when it exits, which a short-lived program (a client making one
        // request) does before a big binary is read and hooked.
        let mut found = None;
        let mut err = None;
        for path in m.open_paths(pid) {
            let facts = std::fs::File::open(&path).and_then(|f| {
                use std::os::fd::AsRawFd;
                let own = std::path::PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd()));
                discover::elf_facts(&own, false).map(|facts| (f, own, facts))
            });
            match facts {
                Ok(x) => {
                    found = Some(x);
                    break;
                }
                Err(e) => err = Some(e),
            }
        }
        let Some((_held, path, facts)) = found else {
            let e = err.map(|e| e.to_string()).unwrap_or_default();
            return self.fail(format!("cannot read {} (pid {pid}): {e}", m.path));
        };
        if !facts.hookable() {
            return Verdict::NotTls;
        }
        let Ok(id) = u16::try_from(self.libs.len() + 1) else {
            return self.fail(format!("too many TLS libraries; {} not hooked", m.path));
        };
        match self.attach_file(probe, &path, id, &facts) {
            Ok(functions) => {
                // A Go program's TLS is its own crypto/tls: named with the
                // Go version that built it, e.g. `server (go1.19.8)`.
                let name = match (&facts.go_version, facts.openssl() || facts.gnutls()) {
                    (Some(v), false) => format!("{} ({v})", m.file_name()),
                    _ => m.file_name().to_string(),
                };
                let lib = TlsLibrary {
                    id,
                    name,
                    path: m.path.clone(),
                    pid,
                    file: m.file,
                    static_binary: is_exe,
                    functions,
                };
                tracing::info!(
                    "TLS: hooked {} ({}, pid {pid}, {}) as library {id}: {}",
                    lib.name,
                    lib.path,
                    if is_exe {
                        "statically linked"
                    } else {
                        "shared library"
                    },
                    lib.functions.join(", ")
                );
                self.libs.push(lib);
                self.fresh += 1;
                Verdict::Hooked(id)
            }
            Err(e) => self.fail(format!("cannot hook {} (pid {pid}): {e}", m.path)),
        }
    }

    fn fail(&mut self, msg: String) -> Verdict {
        Verdict::Failed(msg)
    }

    fn mark_known(&self, probe: &HttpProbe, f: FileId) {
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(&f.dev.to_ne_bytes());
        key[8..].copy_from_slice(&f.ino.to_ne_bytes());
        if let Err(e) = probe
            .skel
            .maps
            .known_files
            .update(&key, &[1u8], MapFlags::ANY)
        {
            tracing::debug!("known_files update: {e}");
        }
    }

    /// Attach the uprobes to one file (all processes: pid -1). The return
    /// probe of each function goes first. Where OpenSSL's internal read
    /// and write routines were found ([`discover::IoEntries`]), those two
    /// are hooked instead of the four public functions that call them;
    /// should that fail, the public ones are. SSL_write and SSL_read must
    /// attach; the others are taken when the file has them.
    fn attach_file(
        &mut self,
        probe: &HttpProbe,
        path: &Path,
        id: u16,
        facts: &ElfFacts,
    ) -> Result<Vec<&'static str>, String> {
        let progs = &probe.skel.progs;
        let mut links = Vec::new();
        let mut functions = Vec::new();
        // Attach one hook: its entry program, whether the return probe goes
        // with it, and where: at symbol `func` (`offset` 0), or, with no
        // symbol, at file offset `offset`.
        let attach = |links: &mut Vec<Link>,
                      entry: &libbpf_rs::ProgramMut<'_>,
                      ret: bool,
                      func: Option<&str>,
                      offset: u64|
         -> Result<(), libbpf_rs::Error> {
            let opts = |retprobe| UprobeOpts {
                cookie: u64::from(id),
                retprobe,
                func_name: func.map(str::to_string),
                ..UprobeOpts::default()
            };
            let offset = usize::try_from(offset).map_err(|_| {
                libbpf_rs::Error::from(std::io::Error::from(std::io::ErrorKind::InvalidInput))
            })?;
            if ret {
                links.push(progs.tls_ssl_ret.attach_uprobe_with_opts(
                    -1,
                    path,
                    offset,
                    opts(true),
                )?);
            }
            links.push(entry.attach_uprobe_with_opts(-1, path, offset, opts(false))?);
            Ok(())
        };
        if !facts.openssl() && !facts.gnutls() {
            if let (true, Some(go)) = (facts.go_hookable(), &facts.go_tls) {
                return self.attach_go(probe, path, id, go, links);
            }
        }
        let mut internal = false;
        if let Some(io) = facts.io {
            let mut io_links = Vec::new();
            let res = attach(&mut io_links, &progs.tls_ssl_write_ex, true, None, io.write)
                .and_then(|()| attach(&mut io_links, &progs.tls_ssl_read_ex, true, None, io.read));
            match res {
                Ok(()) => {
                    links.append(&mut io_links);
                    functions.extend(["ssl_write_internal", "ssl_read_internal"]);
                    internal = true;
                }
                // Dropping io_links detaches what did attach.
                Err(e) => tracing::debug!(
                    "TLS: internal read/write of {} not hooked ({e}); hooking SSL_read/SSL_write",
                    path.display()
                ),
            }
        }
        // OpenSSL's functions; or else GnuTLS's, which take the same
        // arguments as SSL_write, SSL_read and SSL_set_fd (see
        // discover::GNUTLS_FUNCS) and go to the same programs.
        let funcs: Vec<&'static str> = if facts.openssl() {
            facts.ssl_funcs().collect()
        } else {
            facts.gnutls_funcs().collect()
        };
        for func in funcs {
            let (entry, ret) = match func {
                "SSL_set_fd" | "gnutls_transport_set_int2" => (&progs.tls_ssl_set_fd, false),
                "SSL_do_handshake" => (&progs.tls_ssl_do_handshake, false),
                "SSL_free" | "gnutls_deinit" => (&progs.tls_ssl_free, false),
                _ if internal => continue,
                "SSL_write" | "gnutls_record_send2" | "gnutls_record_send" => {
                    (&progs.tls_ssl_write, true)
                }
                "SSL_write_ex" => (&progs.tls_ssl_write_ex, true),
                "SSL_read" | "gnutls_record_recv" => (&progs.tls_ssl_read, true),
                "SSL_read_ex" => (&progs.tls_ssl_read_ex, true),
                _ => continue,
            };
            let required = matches!(
                func,
                "SSL_write"
                    | "SSL_read"
                    | "gnutls_record_send2"
                    | "gnutls_record_send"
                    | "gnutls_record_recv"
            );
            match attach(&mut links, entry, ret, Some(func), 0) {
                Ok(()) => functions.push(func),
                Err(e) if required => return Err(format!("{func}: {e}")),
                Err(e) => tracing::debug!("TLS: {func} in {}: {e}", path.display()),
            }
        }
        self.uprobes += links.len();
        self.links.extend(links);
        Ok(functions)
    }
}

impl TlsCapture {
    /// Attach Go's crypto/tls hooks to one program: a uprobe on every RET
    /// of Read (first, so that every Read seen starting is seen returning),
    /// then on Read and Write past their stack checks; and tell the kernel
    /// the program's (*net.TCPConn, net.Conn) itab. No uretprobe
    /// (bpf/l7/gotls.bpf.c).
    fn attach_go(
        &mut self,
        probe: &HttpProbe,
        path: &Path,
        id: u16,
        go: &discover::GoTls,
        mut links: Vec<Link>,
    ) -> Result<Vec<&'static str>, String> {
        let progs = &probe.skel.progs;
        let opts = || UprobeOpts {
            cookie: u64::from(id),
            retprobe: false,
            ..UprobeOpts::default()
        };
        let at = |links: &mut Vec<Link>, prog: &libbpf_rs::ProgramMut<'_>, off: u64| {
            let off = usize::try_from(off).map_err(|e| e.to_string())?;
            links.push(
                prog.attach_uprobe_with_opts(-1, path, off, opts())
                    .map_err(|e| format!("uprobe at file offset {off:#x}: {e}"))?,
            );
            Ok::<(), String>(())
        };
        for &off in &go.read_rets {
            at(&mut links, &progs.tls_go_ret, off)?;
        }
        at(&mut links, &progs.tls_go_read, go.read)?;
        at(&mut links, &progs.tls_go_write, go.write)?;
        probe
            .skel
            .maps
            .go_itabs
            .update(
                &u32::from(id).to_ne_bytes(),
                &go.tcpconn_itab.to_ne_bytes(),
                MapFlags::ANY,
            )
            .map_err(|e| format!("go_itabs: {e}"))?;
        self.uprobes += links.len();
        self.links.extend(links);
        Ok(discover::GO_TLS_FUNCS.to_vec())
    }
}

/// `hdrtap doctor`'s HTTPS row: load the HTTP object with TLS on and hook
/// OpenSSL in the running processes (then let it all go). A warning, not a
/// failure: plaintext HTTP works without it.
pub fn doctor_check() -> crate::doctor::Check {
    use crate::doctor::{Check, Status};
    let name = "HTTPS: OpenSSL uprobes";
    let opts = crate::HttpOptions {
        ring_bytes: 1 << 16,
        tls: true,
        ..crate::HttpOptions::default()
    };
    let probe = match HttpProbe::load(&opts) {
        Ok(p) => p,
        Err(e) => {
            return Check {
                name: name.into(),
                status: Status::Warn,
                detail: e.to_string(),
            }
        }
    };
    match TlsCapture::start(&probe) {
        Ok(t) if !t.exec_watch() => Check {
            name: name.into(),
            status: Status::Warn,
            detail: format!(
                "new processes cannot be watched: {}",
                t.failures().join("; ")
            ),
        },
        Ok(t) if t.libraries().is_empty() => Check {
            name: name.into(),
            status: Status::Ok,
            detail: "exec/mmap watch attached; no process uses OpenSSL right now".into(),
        },
        Ok(t) => {
            let mut names: Vec<&str> = t.libraries().iter().map(|l| l.name.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            Check {
                name: name.into(),
                status: Status::Ok,
                detail: format!(
                    "{} uprobes on {} file(s) attached and detached: {} (see: hdrtap doctor --tls)",
                    t.probes(),
                    t.libraries().len(),
                    names.join(", ")
                ),
            }
        }
        Err(e) => Check {
            name: name.into(),
            status: Status::Warn,
            detail: e.to_string(),
        },
    }
}

/// Where a running process's TLS stands, for `hdrtap doctor --tls`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Coverage {
    /// Hooked through this library file (name, path as the process sees it).
    Library { name: String, path: String },
    /// A TLS library (`stack`: OpenSSL, GnuTLS, or Go's crypto/tls with
    /// the Go version) linked into the program, with its symbols: the
    /// program is hooked.
    /// `symbols`: found through its symbol table (else, Go, through
    /// `.gopclntab`: a stripped program).
    Static {
        path: String,
        stack: String,
        symbols: bool,
    },
    /// TLS hdrtap cannot hook, and why.
    Unsupported(String),
    /// A stripped program with no OpenSSL symbols: if it has TLS built in,
    /// it cannot be hooked.
    Stripped { path: String },
    /// No TLS library found.
    None,
}

impl Coverage {
    /// The program's TLS (if any) is captured.
    pub fn covered(&self) -> bool {
        matches!(self, Coverage::Library { .. } | Coverage::Static { .. })
    }

    /// The program may have TLS that is not captured: unsupported, or
    /// stripped with no library hdrtap knows (`doctor --tls`: `NOT covered`
    /// or `unknown`).
    pub fn hidden(&self) -> bool {
        matches!(self, Coverage::Unsupported(_) | Coverage::Stripped { .. })
    }
}

/// A process with TCP sockets and its TLS coverage.
#[derive(Debug, Clone)]
pub struct ProcessTls {
    pub pid: u32,
    pub comm: String,
    pub exe: String,
    /// TCP sockets it holds (listening ones included).
    pub tcp_sockets: usize,
    pub coverage: Coverage,
}

/// Every process holding TCP sockets, with whether hdrtap covers its TLS.
pub fn survey() -> Vec<ProcessTls> {
    let mut netns_tables: HashMap<String, HashSet<u64>> = HashMap::new();
    let mut elf_cache: HashMap<FileId, Option<ElfFacts>> = HashMap::new();
    let me = std::process::id();
    let mut out = Vec::new();
    for pid in discover::pids() {
        if pid == me {
            continue;
        }
        let socks = socket_inodes(pid);
        if socks.is_empty() {
            continue;
        }
        let ns = std::fs::read_link(format!("/proc/{pid}/ns/net"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tcp = netns_tables.entry(ns).or_insert_with(|| tcp_inodes(pid));
        let n = socks.iter().filter(|i| tcp.contains(i)).count();
        if n == 0 {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/maps")) else {
            continue;
        };
        let maps = discover::parse_maps(&text);
        let exe = discover::exe_path(pid).unwrap_or_default();
        let coverage = classify(pid, &maps, &exe, &mut elf_cache);
        out.push(ProcessTls {
            pid,
            comm: discover::comm(pid),
            exe,
            tcp_sockets: n,
            coverage,
        });
    }
    out
}

fn classify(
    pid: u32,
    maps: &[Mapping],
    exe: &str,
    cache: &mut HashMap<FileId, Option<ElfFacts>>,
) -> Coverage {
    let mut facts = |m: &Mapping| -> Option<ElfFacts> {
        cache
            .entry(m.file)
            .or_insert_with(|| {
                m.open_paths(pid)
                    .iter()
                    .find_map(|p| discover::elf_facts(p, true).ok())
            })
            .clone()
    };
    let mut seen = HashSet::new();
    let files: Vec<&Mapping> = maps.iter().filter(|m| seen.insert(m.file)).collect();
    for m in &files {
        let name = m.file_name();
        if (name.starts_with("libssl") || name.starts_with("libgnutls"))
            && facts(m).is_some_and(|f| f.hookable())
        {
            return Coverage::Library {
                name: m.file_name().to_string(),
                path: m.path.clone(),
            };
        }
    }
    let exe_map = files.iter().find(|m| m.path == exe);
    let exe_facts = exe_map.and_then(|m| facts(m));
    if let Some(f) = &exe_facts {
        if f.hookable() {
            return Coverage::Static {
                symbols: f.has_symtab,
                stack: match (&f.go_version, f.stack()) {
                    (Some(v), "Go crypto/tls") => format!("Go crypto/tls ({v})"),
                    (_, stack) => stack.to_string(),
                },
                path: exe.to_string(),
            };
        }
    }
    let has = |prefix: &str| files.iter().any(|m| m.file_name().starts_with(prefix));
    if has("libnss3") || has("libssl3.so") {
        return Coverage::Unsupported(
            "NSS (libnss3/libssl3.so) is not hooked: only OpenSSL-compatible libraries and GnuTLS are".into(),
        );
    }
    if has("libjvm") {
        return Coverage::Unsupported("Java (JSSE) TLS runs inside the JVM: not hooked".into());
    }
    if let Some(f) = &exe_facts {
        if f.go {
            let v = f.go_version.as_deref().unwrap_or("unknown version");
            let minor = f.go_version.as_deref().and_then(discover::go_minor);
            if minor.is_some_and(|m| m < discover::GO_MIN_MINOR) {
                return Coverage::Unsupported(format!(
                    "Go program built with {v}: older than go1.17 (no register ABI); crypto/tls not hooked"
                ));
            }
            if !f.has_symtab {
                return Coverage::Unsupported(format!(
                    "stripped Go program ({v}): crypto/tls is found through symbols only; not hooked"
                ));
            }
            // With symbols and no crypto/tls Read/Write: no TLS in it.
            return Coverage::None;
        }
        if f.rustls {
            return Coverage::Unsupported("Rust program with rustls built in: not hooked".into());
        }
        if !f.has_symtab {
            return Coverage::Stripped {
                path: exe.to_string(),
            };
        }
    }
    Coverage::None
}

/// Inodes of the sockets process `pid` holds (`/proc/PID/fd`).
fn socket_inodes(pid: u32) -> Vec<u64> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let link = std::fs::read_link(e.ok()?.path()).ok()?;
        let s = link.to_str()?;
        s.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
    })
    .collect()
}

/// Inodes of the TCP sockets of `pid`'s network namespace
/// (`/proc/PID/net/tcp` and `tcp6`).
fn tcp_inodes(pid: u32) -> HashSet<u64> {
    let mut out = HashSet::new();
    for f in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{f}")).unwrap_or_default();
        out.extend(parse_proc_net_tcp(&text));
    }
    out
}

/// The inode column of `/proc/net/tcp`-format text (header skipped).
pub fn parse_proc_net_tcp(text: &str) -> Vec<u64> {
    text.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(9)?.parse().ok())
        .filter(|&i| i != 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_tcp_inodes() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 123456 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:1F90 0100007F:C350 06 00000000:00000000 03:00000F2A 00000000     0        0 0 3 0000000000000000\n";
        assert_eq!(parse_proc_net_tcp(text), vec![123456]);
        assert!(parse_proc_net_tcp("garbage\n1 2 3").is_empty());
    }
}
