//! Finding TLS libraries in processes: `/proc/PID/maps` parsing and ELF
//! symbol checks. No BPF here; everything is testable without root.
//!
//! Files are named as the kernel names them in `/proc/PID/maps` — the
//! super block's device and the inode of the file actually mapped (for
//! overlayfs, the real file underneath) — which is also what a uprobe is
//! registered on. Two paths to one file (a container's view and the host's)
//! are one [`FileId`], so each file is hooked once.
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use object::read::ReadCache;
use object::{Architecture, Object, ObjectSection, ObjectSymbol, SectionKind};

/// A file as the kernel names it: `s_dev` in the kernel's encoding
/// (`MAJOR << 20 | MINOR`) and the inode number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

/// One line of `/proc/PID/maps` that maps a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    /// Mapped executable (`x` in the permissions).
    pub exec: bool,
    pub file: FileId,
    /// The path as the process sees it (its mount namespace), without a
    /// trailing ` (deleted)`.
    pub path: String,
    /// The file was deleted (or replaced) since it was mapped.
    pub deleted: bool,
}

impl Mapping {
    /// Paths under which this process's file can be opened from here, best
    /// first: `map_files` names the mapped file itself (no path lookup in
    /// the process's mount namespace, deleted files work; needs
    /// CAP_SYS_ADMIN), then the path through the process's root directory
    /// (other mount namespaces work).
    pub fn open_paths(&self, pid: u32) -> [PathBuf; 2] {
        [
            PathBuf::from(format!(
                "/proc/{pid}/map_files/{:x}-{:x}",
                self.start, self.end
            )),
            PathBuf::from(format!("/proc/{pid}/root{}", self.path)),
        ]
    }

    /// The file's name (last path component).
    pub fn file_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

/// Parse the text of `/proc/PID/maps`, keeping lines that map a file
/// (anonymous, `[heap]`, `[vdso]` ... are skipped). Malformed lines are skipped.
pub fn parse_maps(text: &str) -> Vec<Mapping> {
    text.lines().filter_map(parse_maps_line).collect()
}

fn parse_maps_line(line: &str) -> Option<Mapping> {
    // start-end perms offset major:minor inode   path (may hold spaces)
    let mut rest = line;
    let mut field = || {
        let t = rest.trim_start();
        let end = t.find(char::is_whitespace).unwrap_or(t.len());
        let (f, r) = t.split_at(end);
        rest = r;
        f
    };
    let range = field();
    let perms = field();
    let _offset = field();
    let dev = field();
    let inode = field();
    let path = rest.trim_start();
    if !path.starts_with('/') {
        return None;
    }
    let (start, end) = range.split_once('-')?;
    let (major, minor) = dev.split_once(':')?;
    let ino: u64 = inode.parse().ok()?;
    if ino == 0 {
        return None;
    }
    let major = u64::from_str_radix(major, 16).ok()?;
    let minor = u64::from_str_radix(minor, 16).ok()?;
    let (path, deleted) = match path.strip_suffix(" (deleted)") {
        Some(p) => (p, true),
        None => (path, false),
    };
    Some(Mapping {
        start: u64::from_str_radix(start, 16).ok()?,
        end: u64::from_str_radix(end, 16).ok()?,
        exec: perms.as_bytes().get(2) == Some(&b'x'),
        file: FileId {
            dev: (major << 20) | minor,
            ino,
        },
        path: path.to_string(),
        deleted,
    })
}

/// The functions hdrtap hooks in an OpenSSL-compatible library.
pub const SSL_FUNCS: [&str; 5] = [
    "SSL_write",
    "SSL_read",
    "SSL_write_ex",
    "SSL_read_ex",
    "SSL_set_fd",
];

/// The functions hdrtap hooks in GnuTLS. `gnutls_record_send` only
/// tail-calls `gnutls_record_send2` (Debian 12's 3.7.9), whose first three
/// arguments are the same: the latter is hooked when the file has it, so
/// that both entry points are seen once. Both, and `gnutls_record_recv`,
/// take (session, buffer, size) and return the bytes moved or a negative
/// error, as `SSL_write`/`SSL_read` do: the same BPF programs serve them.
/// `gnutls_transport_set_int2(session, recv_fd, send_fd)` names the socket
/// as `SSL_set_fd` does (`gnutls_transport_set_int` is a macro for it).
pub const GNUTLS_FUNCS: [&str; 4] = [
    "gnutls_record_send2",
    "gnutls_record_send",
    "gnutls_record_recv",
    "gnutls_transport_set_int2",
];

/// What an ELF file's symbol tables and sections say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ElfFacts {
    /// Which of [`SSL_FUNCS`] it defines (`.symtab` or `.dynsym`).
    pub ssl: [bool; 5],
    /// It has a `.symtab` (not stripped).
    pub has_symtab: bool,
    /// It has a `.dynsym` (dynamically linked or exporting symbols).
    pub has_dynsym: bool,
    /// Built by Go (`.go.buildinfo` section or `runtime.buildVersion`).
    pub go: bool,
    /// Holds rustls (a symbol mentions `rustls`).
    pub rustls: bool,
    /// Which of [`GNUTLS_FUNCS`] it defines.
    pub gnutls: [bool; 4],
    /// OpenSSL's own read and write routines behind the public functions,
    /// when they can be hooked instead of them (see [`IoEntries`]).
    pub io: Option<IoEntries>,
}

/// File offsets of the two functions every public OpenSSL read and write
/// goes through: `ssl_read_internal` and `ssl_write_internal` (OpenSSL
/// 1.1.1 and 3.x, `ssl/ssl_lib.c`), with `SSL_read_ex`'s signature and
/// result (1 and `*readbytes`, or <= 0). They are not exported; they are
/// found as the callee of `SSL_read_ex`/`SSL_write_ex`, which only adjust
/// the stack and call them.
///
/// Why hook them: a uprobe replaces the probed instruction with a trap and
/// must then run the original instruction. x86's uprobe code emulates a few
/// kinds (`push`, jumps, calls); any other is single-stepped out of line,
/// a second trap. In Debian's libssl the public functions start with
/// `sub $0x18,%rsp` (single-stepped) and the internal ones with `push`
/// (emulated). On this project's VMs a single-stepped probe hit measured
/// about 14.5 µs and an emulated one about 0.43 µs (docs/PERFORMANCE.md,
/// HTTPS). Only found when the file's code matches the exact shapes
/// checked here; otherwise the public functions are hooked as before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoEntries {
    pub read: u64,
    pub write: u64,
}

impl ElfFacts {
    /// SSL_write and SSL_read are there: the file can be hooked as OpenSSL.
    pub fn openssl(&self) -> bool {
        self.ssl[0] && self.ssl[1]
    }

    /// gnutls_record_send(2) and gnutls_record_recv are there: the file can
    /// be hooked as GnuTLS.
    pub fn gnutls(&self) -> bool {
        (self.gnutls[0] || self.gnutls[1]) && self.gnutls[2]
    }

    /// The TLS library the file would be hooked as: `OpenSSL` (first, and
    /// for OpenSSL-compatible libraries) or `GnuTLS`.
    pub fn stack(&self) -> &'static str {
        if self.openssl() || !self.gnutls() {
            "OpenSSL"
        } else {
            "GnuTLS"
        }
    }

    /// The file can be hooked, as OpenSSL or as GnuTLS.
    pub fn hookable(&self) -> bool {
        self.openssl() || self.gnutls()
    }

    /// The GnuTLS functions to hook: `gnutls_record_send2` rather than
    /// `gnutls_record_send` (see [`GNUTLS_FUNCS`]).
    pub fn gnutls_funcs(&self) -> impl Iterator<Item = &'static str> + '_ {
        let send2 = self.gnutls[0];
        GNUTLS_FUNCS
            .iter()
            .zip(self.gnutls)
            .filter(move |(f, on)| *on && !(send2 && **f == "gnutls_record_send"))
            .map(|(f, _)| *f)
    }

    /// Defined names of [`SSL_FUNCS`].
    pub fn ssl_funcs(&self) -> impl Iterator<Item = &'static str> + '_ {
        SSL_FUNCS
            .iter()
            .zip(self.ssl)
            .filter(|(_, on)| *on)
            .map(|(f, _)| *f)
    }
}

/// Read the symbol tables of the ELF file at `path`. With `deep`, also look
/// for Go, rustls and GnuTLS (every symbol is visited); without, stop as soon
/// as the OpenSSL functions are found. Never panics on a malformed file.
pub fn elf_facts(path: &Path, deep: bool) -> io::Result<ElfFacts> {
    let cache = ReadCache::new(File::open(path)?);
    let obj = parse_elf(&cache, path)?;
    let mut facts = ElfFacts {
        has_symtab: obj.section_by_name(".symtab").is_some(),
        has_dynsym: obj.section_by_name(".dynsym").is_some(),
        go: obj.section_by_name(".go.buildinfo").is_some(),
        ..ElfFacts::default()
    };
    // Quick no: neither string table holds the name SSL_write (each name is
    // NUL-terminated and follows a NUL), so no symbol can be it. Searching
    // the bytes is far cheaper than walking a big program's symbols.
    if !deep {
        let named = [".dynstr", ".strtab"].iter().any(|name| {
            obj.section_by_name(name)
                .and_then(|s| s.data().ok())
                .is_some_and(|d| {
                    contains(d, b"\0SSL_write\0") || contains(d, b"\0gnutls_record_recv\0")
                })
        });
        if !named {
            return Ok(facts);
        }
    }
    let mut addrs = [0u64; SSL_FUNCS.len()];
    for sym in obj.dynamic_symbols().chain(obj.symbols()) {
        let Ok(name) = sym.name_bytes() else { continue };
        if !sym.is_undefined() {
            if let Some(i) = SSL_FUNCS.iter().position(|f| f.as_bytes() == name) {
                if let (Some(slot), Some(addr)) = (facts.ssl.get_mut(i), addrs.get_mut(i)) {
                    *slot = true;
                    *addr = sym.address();
                }
            } else if let Some(i) = GNUTLS_FUNCS.iter().position(|f| f.as_bytes() == name) {
                if let Some(slot) = facts.gnutls.get_mut(i) {
                    *slot = true;
                }
            }
        }
        if deep {
            if name == b"runtime.buildVersion" {
                facts.go = true;
            }
            if !facts.rustls && contains(name, b"rustls") {
                facts.rustls = true;
            }
        } else if facts.ssl.iter().all(|&x| x) || facts.gnutls.iter().all(|&x| x) {
            break;
        }
    }
    if facts.openssl() && obj.architecture() == Architecture::X86_64 {
        let [write, read, write_ex, read_ex, _] = addrs;
        facts.io = io_entries(&obj, [read, read_ex], [write, write_ex]);
    }
    Ok(facts)
}

/// Bytes of a public function looked at: its start up to its call of the
/// internal one (`SSL_read` checks its argument first: 0x1e bytes in
/// Debian's build).
const WRAPPER_BYTES: u64 = 64;

/// [`IoEntries`] of an x86-64 file, from the addresses of `SSL_read` and
/// `SSL_read_ex` (`read`), `SSL_write` and `SSL_write_ex` (`write`).
fn io_entries<'d, O: Object<'d>>(obj: &O, read: [u64; 2], write: [u64; 2]) -> Option<IoEntries> {
    let internal = |[plain, ex]: [u64; 2]| -> Option<u64> {
        if plain == 0 || ex == 0 {
            return None;
        }
        let (ex_code, _) = code_at(obj, ex, WRAPPER_BYTES)?;
        let target = wrapper_callee(ex_code, ex)?;
        // The int form must reach the same function, or its calls would
        // go unseen.
        let (plain_code, _) = code_at(obj, plain, WRAPPER_BYTES)?;
        if !calls(plain_code, plain, target) {
            return None;
        }
        let (target_code, offset) = code_at(obj, target, 2)?;
        first_insn_emulated(target_code).then_some(offset)
    };
    Some(IoEntries {
        read: internal(read)?,
        write: internal(write)?,
    })
}

/// The file offset of the function `name` in the ELF file at `path`, from
/// its symbol tables: where a uprobe on it goes. None if it has no such
/// function.
pub fn function_file_offset(path: &Path, name: &str) -> io::Result<Option<u64>> {
    let cache = ReadCache::new(File::open(path)?);
    let obj = parse_elf(&cache, path)?;
    let sym = obj
        .dynamic_symbols()
        .chain(obj.symbols())
        .find(|s| !s.is_undefined() && s.name_bytes() == Ok(name.as_bytes()));
    Ok(sym
        .and_then(|s| code_at(&obj, s.address(), 0))
        .map(|(_, off)| off))
}

/// Up to `len` bytes of code at virtual address `addr` (fewer at the end of
/// its section) and the file offset of `addr`, which is what a uprobe is
/// placed at.
fn code_at<'d, O: Object<'d>>(obj: &O, addr: u64, len: u64) -> Option<(&'d [u8], u64)> {
    let sec = obj.sections().find(|s| {
        s.kind() == SectionKind::Text && (s.address()..s.address() + s.size()).contains(&addr)
    })?;
    let (file_start, _) = sec.file_range()?;
    let len = len.min(sec.address() + sec.size() - addr);
    let code = sec.data_range(addr, len).ok()??;
    Some((code, file_start + (addr - sec.address())))
}

// Hand-written byte patterns rather than an x86 decoder crate: a decoder
// would give instruction boundaries, but not what matters here, that the
// wrapper hands its arguments on untouched. Only these exact shapes are
// known to; anything else keeps the public functions hooked.

/// The callee of a function at `addr` whose code is only
/// `[endbr64] [sub $imm8,%rsp] call rel32`: neither instruction before the
/// call touches an argument register, so the callee sees the wrapper's
/// arguments, and its return address is at the top of its stack.
pub fn wrapper_callee(code: &[u8], addr: u64) -> Option<u64> {
    let mut at = 0usize;
    if code.starts_with(&[0xf3, 0x0f, 0x1e, 0xfa]) {
        at += 4;
    }
    if code.get(at..at + 3) == Some(&[0x48, 0x83, 0xec]) {
        at += 4;
    }
    call_target(code, addr, at)
}

/// Whether the code at `addr` holds a `call rel32` to `target` (any byte
/// position: a false match would need four bytes that happen to encode
/// exactly that distance).
pub fn calls(code: &[u8], addr: u64, target: u64) -> bool {
    (0..code.len()).any(|at| call_target(code, addr, at) == Some(target))
}

/// The target of a `call rel32` at byte `at` of the code at `addr`.
fn call_target(code: &[u8], addr: u64, at: usize) -> Option<u64> {
    let insn = code.get(at..at + 5)?;
    let (&op, rel) = insn.split_first()?;
    if op != 0xe8 {
        return None;
    }
    let rel = i32::from_le_bytes(rel.try_into().ok()?);
    let next = addr.checked_add(u64::try_from(at).ok()? + 5)?;
    Some(next.wrapping_add_signed(i64::from(rel)))
}

/// The first instruction is one x86's uprobe code emulates, so a probe
/// there costs one trap: `push %reg`, with or without a REX prefix
/// (`0x50+r`, `0x41 0x50+r`; emulated by the kernels this project runs
/// on, 6.18; an older kernel single-steps it, as it does `sub`).
pub fn first_insn_emulated(code: &[u8]) -> bool {
    let push = |b: u8| (0x50..=0x57).contains(&b);
    match code {
        [b, ..] if push(*b) => true,
        [0x41, b, ..] => push(*b),
        _ => false,
    }
}

fn parse_elf<'d>(
    cache: &'d ReadCache<File>,
    path: &Path,
) -> io::Result<object::File<'d, &'d ReadCache<File>>> {
    object::File::parse(cache).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A mapped file worth an ELF look for OpenSSL or GnuTLS: a `libssl*` or
/// `libgnutls*` library, or the
/// process's own executable (statically linked OpenSSL).
pub fn is_candidate(m: &Mapping, exe: Option<&str>) -> bool {
    let name = m.file_name();
    name.starts_with("libssl") || name.starts_with("libgnutls") || exe.is_some_and(|e| e == m.path)
}

/// The executable of process `pid` as its maps name it (`/proc/PID/exe`).
pub fn exe_path(pid: u32) -> Option<String> {
    let link = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    let s = link.to_string_lossy();
    Some(s.strip_suffix(" (deleted)").unwrap_or(&s).to_string())
}

/// Process ids in /proc, ascending.
pub fn pids() -> Vec<u32> {
    let mut out: Vec<u32> = std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    out.sort_unstable();
    out
}

/// The short name of process `pid` (`/proc/PID/comm`).
pub fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim_end().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
55d0c0a00000-55d0c0a2e000 r--p 00000000 fd:01 1311234                    /usr/sbin/nginx
55d0c0a2e000-55d0c0b21000 r-xp 0002e000 fd:01 1311234                    /usr/sbin/nginx
55d0c1a00000-55d0c1a21000 rw-p 00000000 00:00 0                          [heap]
7f1c2e400000-7f1c2e4a5000 r-xp 00020000 fd:01 1835123                    /usr/lib/x86_64-linux-gnu/libssl.so.3
7f1c2e500000-7f1c2e501000 r-xp 00000000 00:2a 77                         /opt/my app/lib/libssl.so.1.1 (deleted)
7ffd4a1f0000-7ffd4a1f2000 r-xp 00000000 00:00 0                          [vdso]
garbage line
";

    #[test]
    fn maps_lines_parse() {
        let m = parse_maps(MAPS);
        assert_eq!(m.len(), 4, "{m:#?}");
        assert!(!m[0].exec && m[1].exec);
        assert_eq!(
            m[1].file,
            FileId {
                dev: (0xfd << 20) | 1,
                ino: 1311234
            }
        );
        assert_eq!(m[2].file_name(), "libssl.so.3");
        assert_eq!(
            m[2].open_paths(42)[1],
            PathBuf::from("/proc/42/root/usr/lib/x86_64-linux-gnu/libssl.so.3")
        );
        assert_eq!(m[3].path, "/opt/my app/lib/libssl.so.1.1");
        assert!(m[3].deleted);
        assert_eq!(
            m[3].open_paths(7)[0],
            PathBuf::from("/proc/7/map_files/7f1c2e500000-7f1c2e501000")
        );
        assert!(is_candidate(&m[2], None));
        assert!(is_candidate(&m[1], Some("/usr/sbin/nginx")));
        assert!(!is_candidate(&m[1], Some("/usr/bin/curl")));
    }

    #[test]
    fn garbage_maps_never_panic() {
        for s in [
            "",
            "-",
            "a-b c d e:f g /x",
            "1-2 r-xp 0 zz:1 5 /x",
            "1-2 r 0 1:1 5 /x",
            "\u{0}\u{ff}",
        ] {
            let _ = parse_maps(s);
        }
    }

    #[test]
    fn elf_facts_of_this_test_binary_and_of_garbage() {
        let me = std::env::current_exe().unwrap();
        let f = elf_facts(&me, true).unwrap();
        assert!(!f.hookable(), "the test binary has no OpenSSL: {f:?}");
        assert!(!f.go);
        let dir = std::env::temp_dir().join(format!("hdrtap-elf-{}", std::process::id()));
        std::fs::write(&dir, b"\x7fELF\x02\x01\x01garbage").unwrap();
        assert!(elf_facts(&dir, true).is_err());
        let _ = std::fs::remove_file(&dir);
    }

    /// Debian's libgnutls30 (apt needs it: always there): hookable as
    /// GnuTLS, through gnutls_record_send2 rather than gnutls_record_send.
    #[test]
    fn the_system_libgnutls_is_hookable_as_gnutls() {
        let p = Path::new("/usr/lib/x86_64-linux-gnu/libgnutls.so.30");
        for deep in [false, true] {
            let f = elf_facts(p, deep).unwrap();
            assert!(f.hookable() && f.gnutls() && !f.openssl(), "{f:?}");
            assert_eq!(f.stack(), "GnuTLS");
            assert_eq!(
                f.gnutls_funcs().collect::<Vec<_>>(),
                [
                    "gnutls_record_send2",
                    "gnutls_record_recv",
                    "gnutls_transport_set_int2"
                ]
            );
            assert!(f.io.is_none());
        }
        let m = Mapping {
            path: p.display().to_string(),
            ..parse_maps(MAPS)[2].clone()
        };
        assert!(is_candidate(&m, None));
    }

    #[test]
    fn the_system_libssl_is_hookable_when_present() {
        let p = Path::new("/usr/lib/x86_64-linux-gnu/libssl.so.3");
        if p.exists() {
            let f = elf_facts(p, false).unwrap();
            assert!(f.hookable(), "{f:?}");
            assert_eq!(f.ssl_funcs().collect::<Vec<_>>(), SSL_FUNCS.to_vec());
            // Debian 12's libssl3: SSL_read_ex/SSL_write_ex are
            // `sub $8,%rsp; call`, and their callees start with a push.
            let io = f.io.expect("internal read/write found in Debian's libssl3");
            assert_ne!(io.read, io.write);
            let bytes = std::fs::read(p).unwrap();
            for off in [io.read, io.write] {
                let at = usize::try_from(off).unwrap();
                assert!(
                    first_insn_emulated(&bytes[at..at + 2]),
                    "{off:#x}: {:02x?}",
                    &bytes[at..at + 4]
                );
            }
        }
    }

    /// Debian 12 libssl3's `SSL_read_ex` at 0x354c0 and the head of
    /// `SSL_read` at 0x35430 (objdump), both calling 0x35290.
    const READ_EX: &[u8] = &[
        0x48, 0x83, 0xec, 0x08, 0xe8, 0xc7, 0xfd, 0xff, 0xff, 0x31, 0xd2,
    ];
    const READ: &[u8] = &[
        0x48, 0x83, 0xec, 0x18, 0x64, 0x48, 0x8b, 0x04, 0x25, 0x28, 0x00, 0x00, 0x00, 0x48, 0x89,
        0x44, 0x24, 0x08, 0x31, 0xc0, 0x85, 0xd2, 0x78, 0x2f, 0x48, 0x89, 0xe1, 0x48, 0x63, 0xd2,
        0xe8, 0x3d, 0xfe, 0xff, 0xff, 0x85, 0xc0,
    ];

    #[test]
    fn wrapper_callee_accepts_only_a_stack_adjustment_before_the_call() {
        assert_eq!(wrapper_callee(READ_EX, 0x354c0), Some(0x35290));
        // With endbr64 first (CET builds), everything shifts by four.
        let cet = [&[0xf3, 0x0f, 0x1e, 0xfa][..], READ_EX].concat();
        assert_eq!(wrapper_callee(&cet, 0x354bc), Some(0x35290));
        // A bare call, and a forward one.
        assert_eq!(wrapper_callee(&[0xe8, 0x10, 0, 0, 0], 0x1000), Some(0x1015));
        // Anything that could change an argument first: not accepted.
        // mov %rdi,%rbx; call ...
        assert_eq!(
            wrapper_callee(&[0x48, 0x89, 0xfb, 0xe8, 0, 0, 0, 0], 0x1000),
            None
        );
        // SSL_read checks its argument before calling: not a wrapper.
        assert_eq!(wrapper_callee(READ, 0x35430), None);
        // Cut short, or no call at all.
        assert_eq!(wrapper_callee(&READ_EX[..7], 0x354c0), None);
        assert_eq!(wrapper_callee(&[], 0), None);
        assert_eq!(wrapper_callee(&[0x48, 0x83, 0xec, 0x08, 0xc3], 0), None);
    }

    #[test]
    fn calls_finds_the_call_to_that_target_only() {
        assert!(calls(READ, 0x35430, 0x35290));
        assert!(!calls(READ, 0x35430, 0x35291));
        assert!(!calls(&READ[..READ.len() - 3], 0x35430, 0x35290));
        assert!(!calls(&[], 0, 0));
        // No wrap-around panic near the top of the address space.
        assert!(!calls(&[0xe8, 0xff, 0xff, 0xff, 0x7f], u64::MAX - 2, 0));
    }

    #[test]
    fn only_pushes_count_as_emulated() {
        assert!(first_insn_emulated(&[0x41, 0x55])); // push %r13
        assert!(first_insn_emulated(&[0x55, 0x48])); // push %rbp
        assert!(first_insn_emulated(&[0x53])); // push %rbx
        assert!(!first_insn_emulated(&[0x48, 0x83, 0xec, 0x18])); // sub $0x18,%rsp
        assert!(!first_insn_emulated(&[0x41, 0x89])); // mov ..., %r..
        assert!(!first_insn_emulated(&[0x41]));
        assert!(!first_insn_emulated(&[0xf3, 0x0f, 0x1e, 0xfa])); // endbr64
        assert!(!first_insn_emulated(&[]));
    }
}
