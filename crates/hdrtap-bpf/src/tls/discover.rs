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
pub const SSL_FUNCS: [&str; 7] = [
    "SSL_write",
    "SSL_read",
    "SSL_write_ex",
    "SSL_read_ex",
    "SSL_set_fd",
    // Memory-BIO users (Node.js): where an SSL is tied to the socket its
    // thread just read from, before any application data moves.
    "SSL_do_handshake",
    // The SSL's socket is forgotten: a new SSL at the same address is
    // another connection.
    "SSL_free",
];

/// The functions hdrtap hooks in GnuTLS. `gnutls_record_send` only
/// tail-calls `gnutls_record_send2` (Debian 12's 3.7.9), whose first three
/// arguments are the same: the latter is hooked when the file has it, so
/// that both entry points are seen once. Both, and `gnutls_record_recv`,
/// take (session, buffer, size) and return the bytes moved or a negative
/// error, as `SSL_write`/`SSL_read` do: the same BPF programs serve them.
/// `gnutls_transport_set_int2(session, recv_fd, send_fd)` names the socket
/// as `SSL_set_fd` does (`gnutls_transport_set_int` is a macro for it).
pub const GNUTLS_FUNCS: [&str; 5] = [
    "gnutls_record_send2",
    "gnutls_record_send",
    "gnutls_record_recv",
    "gnutls_transport_set_int2",
    // As SSL_free: the session's socket is forgotten.
    "gnutls_deinit",
];

/// What an ELF file's symbol tables and sections say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ElfFacts {
    /// Which of [`SSL_FUNCS`] it defines (`.symtab` or `.dynsym`).
    pub ssl: [bool; 7],
    /// It has a `.symtab` (not stripped).
    pub has_symtab: bool,
    /// It has a `.dynsym` (dynamically linked or exporting symbols).
    pub has_dynsym: bool,
    /// Built by Go (`.go.buildinfo` section or `runtime.buildVersion`).
    pub go: bool,
    /// Holds rustls (a symbol mentions `rustls`).
    pub rustls: bool,
    /// Which of [`GNUTLS_FUNCS`] it defines.
    pub gnutls: [bool; 5],
    /// OpenSSL's own read and write routines behind the public functions,
    /// when they can be hooked instead of them (see [`IoEntries`]).
    pub io: Option<IoEntries>,
    /// Go: the version that built it (`go1.19.8`), from `.go.buildinfo`.
    pub go_version: Option<String>,
    /// Go: where crypto/tls's Read and Write can be hooked (x86-64, with
    /// their symbols).
    pub go_tls: Option<GoTls>,
}

/// The Go functions hooked: `crypto/tls.(*Conn).Read` and `Write`.
pub const GO_TLS_FUNCS: [&str; 2] = ["crypto/tls.(*Conn).Read", "crypto/tls.(*Conn).Write"];

/// The itab of (*net.TCPConn, net.Conn): the interface value a tls.Conn
/// holds over a TCP socket (the name changed from `go.` to `go:` in 1.20).
const GO_TCPCONN_ITABS: [&str; 2] = [
    "go.itab.*net.TCPConn,net.Conn",
    "go:itab.*net.TCPConn,net.Conn",
];

/// Where Go's crypto/tls is hooked in one file, as file offsets: Read and
/// Write just past their stack check (see [`after_stack_check`]), and
/// every RET instruction of Read (its result is taken there, never with a
/// uretprobe: see bpf/l7/gotls.bpf.c). Write's bytes are taken when it
/// starts, so that a request is never seen after its response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GoTls {
    pub read: u64,
    pub write: u64,
    pub read_rets: Vec<u64>,
    /// Virtual address of the (*net.TCPConn, net.Conn) itab, if the file
    /// is not position-independent (else 0: not checked).
    pub tcpconn_itab: u64,
}

/// The minor version of a Go version string (`go1.19.8` → 19).
pub fn go_minor(version: &str) -> Option<u32> {
    let rest = version.strip_prefix("go1.")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Go 1.17 brought the register ABI the Go hooks read.
pub const GO_MIN_MINOR: u32 = 17;

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
    /// for OpenSSL-compatible libraries), `GnuTLS` or `Go crypto/tls`.
    pub fn stack(&self) -> &'static str {
        if self.openssl() {
            "OpenSSL"
        } else if self.gnutls() {
            "GnuTLS"
        } else if self.go_hookable() {
            "Go crypto/tls"
        } else {
            "OpenSSL"
        }
    }

    /// A Go program whose crypto/tls can be hooked: Go 1.17 or later (the
    /// register ABI), x86-64, Read and Write found with their returns.
    pub fn go_hookable(&self) -> bool {
        self.go_tls.is_some()
            && self
                .go_version
                .as_deref()
                .and_then(go_minor)
                .is_some_and(|m| m >= GO_MIN_MINOR)
    }

    /// The file can be hooked, as OpenSSL, GnuTLS or Go's crypto/tls.
    pub fn hookable(&self) -> bool {
        self.openssl() || self.gnutls() || self.go_hookable()
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
    if facts.go {
        facts.go_version = go_build_version(&obj);
    }
    if !deep && !facts.go {
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
    // Go: (address, size) of Read and Write, and the itab's address.
    let mut go_funcs = [(0u64, 0u64); GO_TLS_FUNCS.len()];
    let mut go_itab = 0u64;
    for sym in obj.dynamic_symbols().chain(obj.symbols()) {
        let Ok(name) = sym.name_bytes() else { continue };
        if facts.go && !sym.is_undefined() {
            if let Some(i) = GO_TLS_FUNCS.iter().position(|f| f.as_bytes() == name) {
                if let Some(slot) = go_funcs.get_mut(i) {
                    *slot = (sym.address(), sym.size());
                }
            } else if GO_TCPCONN_ITABS.iter().any(|f| f.as_bytes() == name) {
                go_itab = sym.address();
            }
            continue;
        }
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
    if facts.go && go_funcs.iter().any(|&(a, _)| a == 0) {
        // Stripped (`-ldflags="-s -w"`): the functions from .gopclntab.
        let text = obj.section_by_name(".text").map_or(0, |t| t.address());
        if let Some(data) = obj
            .section_by_name(".gopclntab")
            .and_then(|s| s.data().ok())
        {
            go_funcs = gopclntab_funcs(data, text, GO_TLS_FUNCS);
        }
    }
    if facts.go && obj.architecture() == Architecture::X86_64 {
        let pie = obj.kind() == object::ObjectKind::Dynamic;
        facts.go_tls = go_tls_hooks(&obj, go_funcs, if pie { 0 } else { go_itab });
    }
    if facts.openssl() && obj.architecture() == Architecture::X86_64 {
        let [write, read, write_ex, read_ex, _, _, _] = addrs;
        facts.io = io_entries(&obj, [read, read_ex], [write, write_ex]);
    }
    Ok(facts)
}

/// [`GoTls`] from the (address, size) of Read and Write: their entries and
/// RET instructions as file offsets. None if either is missing, or has no
/// RET (a function that cannot be decoded is not hooked).
fn go_tls_hooks<'d, O: Object<'d>>(obj: &O, funcs: [(u64, u64); 2], itab: u64) -> Option<GoTls> {
    let hooks = |(addr, size): (u64, u64)| -> Option<(u64, Vec<u64>)> {
        if addr == 0 || size == 0 {
            return None;
        }
        let (code, offset) = code_at(obj, addr, size)?;
        let rets = ret_offsets(code, addr);
        if rets.is_empty() {
            return None;
        }
        Some((
            offset + after_stack_check(code, addr),
            rets.into_iter().map(|r| offset + r).collect(),
        ))
    };
    let (read, read_rets) = hooks(funcs[0])?;
    let (write, _) = hooks(funcs[1])?;
    Some(GoTls {
        read,
        write,
        read_rets,
        tcpconn_itab: itab,
    })
}

/// The offset of the instruction after a Go function's stack check (the
/// `cmp ...,0x10(%r14); jbe morestack` its first instructions hold), or 0
/// without one. A goroutine whose stack must grow jumps away at that check
/// and restarts the function from its entry once the stack is copied: a
/// probe at the entry would see that call twice, a probe past the check
/// once. The arguments are still in their registers there.
pub fn after_stack_check(code: &[u8], addr: u64) -> u64 {
    use iced_x86::{Decoder, DecoderOptions, Mnemonic};
    let mut decoder = Decoder::with_ip(64, code, addr, DecoderOptions::NONE);
    for insn in decoder.iter().take(4) {
        if insn.is_invalid() {
            return 0;
        }
        if insn.mnemonic() == Mnemonic::Jbe {
            return insn.next_ip() - addr;
        }
    }
    0
}

/// Offsets (from the start of `code`, at virtual address `addr`) of every
/// RET instruction of an x86-64 function, decoded with iced-x86 (a RET's
/// bytes can appear inside other instructions: only a decoder tells).
/// Empty if the code does not decode to its end.
pub fn ret_offsets(code: &[u8], addr: u64) -> Vec<u64> {
    use iced_x86::{Decoder, DecoderOptions, Mnemonic};
    let mut decoder = Decoder::with_ip(64, code, addr, DecoderOptions::NONE);
    let mut rets = Vec::new();
    for insn in &mut decoder {
        if insn.is_invalid() {
            return Vec::new();
        }
        if insn.mnemonic() == Mnemonic::Ret {
            rets.push(insn.ip() - addr);
        }
    }
    rets
}

/// The (address, size) of each function of `names` in a Go program's
/// `.gopclntab` (at virtual address `sec_addr`), which even a stripped Go
/// program keeps (the runtime needs it for tracebacks): (0, 0) for a name
/// not found. Go 1.16 and later (magic 0xfffffffa; 0xfffffff0 from 1.18,
/// 0xfffffff1 from 1.20, whose function table holds offsets from
/// `textStart`), as laid out in Go's runtime/symtab.go (`pcHeader`,
/// `functab`, `_func`).
///
/// By hand: the Rust crates that read this table (gobin, unstrip, smda)
/// are reverse-engineering toolkits pulling in their own ELF readers or
/// disassemblers, for the two names needed here. Every read is bounds
/// checked: a damaged table gives nothing, never a panic.
pub fn gopclntab_funcs<const N: usize>(
    data: &[u8],
    text_addr: u64,
    names: [&str; N],
) -> [(u64, u64); N] {
    let mut found = [(0u64, 0u64); N];
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(
            data.get(at..at.checked_add(4)?)?.try_into().ok()?,
        ))
    };
    let Some(magic) = u32_at(0) else {
        return found;
    };
    let ptr = usize::from(data.get(7).copied().unwrap_or(0));
    if ptr != 8 && ptr != 4 {
        return found;
    }
    let word = |at: usize| -> Option<u64> {
        let b = data.get(at..at.checked_add(ptr)?)?;
        Some(if ptr == 8 {
            u64::from_le_bytes(b.try_into().ok()?)
        } else {
            u64::from(u32::from_le_bytes(b.try_into().ok()?))
        })
    };
    // Header words after the 8-byte prefix: nfunc, nfiles, [textStart],
    // funcnameOffset, cuOffset, filetabOffset, pctabOffset, pclnOffset.
    let relative = match magic {
        0xffff_fff0 | 0xffff_fff1 => true,
        0xffff_fffa => false,
        _ => return found,
    };
    let field = |i: usize| word(8 + i * ptr);
    let _ = (|| -> Option<()> {
        let nfunc = usize::try_from(field(0)?).ok()?;
        let (text_start, names_at, pcln_at) = if relative {
            let t = field(2)?;
            (if t == 0 { text_addr } else { t }, field(3)?, field(7)?)
        } else {
            (0, field(2)?, field(6)?)
        };
        let names_at = usize::try_from(names_at).ok()?;
        let pcln_at = usize::try_from(pcln_at).ok()?;
        // functab: nfunc + 1 (entry, funcoff) pairs, 4-byte offsets from
        // textStart (1.18+) or pointer-sized addresses (1.16, 1.17).
        let pair = if relative { 8 } else { 2 * ptr };
        let entry = |i: usize| -> Option<(u64, usize)> {
            let at = pcln_at.checked_add(i.checked_mul(pair)?)?;
            if relative {
                Some((
                    text_start.checked_add(u64::from(u32_at(at)?))?,
                    usize::try_from(u32_at(at + 4)?).ok()?,
                ))
            } else {
                Some((word(at)?, usize::try_from(word(at + ptr)?).ok()?))
            }
        };
        for i in 0..nfunc {
            let (addr, func_off) = entry(i)?;
            let (next, _) = entry(i + 1)?;
            // _func: entry (4 bytes, or a pointer before 1.18), then nameOff.
            let func_at = pcln_at.checked_add(func_off)?;
            let name_off = u32_at(func_at.checked_add(if relative { 4 } else { ptr })?)?;
            let name_at = names_at.checked_add(usize::try_from(name_off).ok()?)?;
            let rest = data.get(name_at..)?;
            let name = rest.get(..rest.iter().position(|&b| b == 0)?)?;
            if let Some(k) = names.iter().position(|n| n.as_bytes() == name) {
                if let Some(slot) = found.get_mut(k) {
                    *slot = (addr, next.saturating_sub(addr));
                }
                if found.iter().all(|&(a, _)| a != 0) {
                    break;
                }
            }
        }
        Some(())
    })();
    found
}

/// The Go version in `.go.buildinfo` (Go 1.13 and later): inline after the
/// 32-byte header since Go 1.18 (flag bit 2), else through a pointer to a
/// string header.
fn go_build_version<'d, O: Object<'d>>(obj: &O) -> Option<String> {
    let sec = obj.section_by_name(".go.buildinfo")?;
    let data = sec.data().ok()?;
    if !data.starts_with(b"\xff Go buildinf:") {
        return None;
    }
    let ptr_size = usize::from(*data.get(14)?);
    let flags = *data.get(15)?;
    if flags & 2 != 0 {
        // A uvarint length, then the text.
        let mut at = 32;
        let (mut len, mut shift) = (0usize, 0);
        loop {
            let b = *data.get(at)?;
            at += 1;
            len |= usize::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 28 {
                return None;
            }
        }
        let text = data.get(at..at.checked_add(len)?)?;
        return String::from_utf8(text.to_vec()).ok();
    }
    let big = flags & 1 != 0;
    let word = |b: &[u8]| -> Option<u64> {
        Some(match (ptr_size, big) {
            (8, false) => u64::from_le_bytes(b.get(..8)?.try_into().ok()?),
            (8, true) => u64::from_be_bytes(b.get(..8)?.try_into().ok()?),
            (4, false) => u64::from(u32::from_le_bytes(b.get(..4)?.try_into().ok()?)),
            (4, true) => u64::from(u32::from_be_bytes(b.get(..4)?.try_into().ok()?)),
            _ => return None,
        })
    };
    let at_addr = |addr: u64, len: u64| -> Option<&'d [u8]> {
        obj.sections()
            .find(|s| (s.address()..s.address() + s.size()).contains(&addr))?
            .data_range(addr, len)
            .ok()?
    };
    let header = at_addr(word(data.get(16..)?)?, 2 * ptr_size as u64)?;
    let (ptr, len) = (word(header)?, word(header.get(ptr_size..)?)?);
    if len > 64 {
        return None;
    }
    String::from_utf8(at_addr(ptr, len)?.to_vec()).ok()
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

    /// Go 1.19's crypto/tls.(*Conn).Read (objdump of a test build): the
    /// stack check is `cmp 0x10(%r14),%rsp; jbe`, then the body starts.
    const GO_READ_HEAD: &[u8] = &[
        0x49, 0x3b, 0x66, 0x10, // cmp 0x10(%r14),%rsp
        0x0f, 0x86, 0xc2, 0x03, 0x00, 0x00, // jbe +0x3c2
        0x48, 0x83, 0xec, 0x68, // sub $0x68,%rsp
        0x48, 0x89, 0x6c, 0x24, 0x60, // mov %rbp,0x60(%rsp)
        0x48, 0x83, 0xc4, 0x68, // add $0x68,%rsp
        0xc3, // ret
        0xb8, 0xc3, 0x00, 0x00, 0x00, // mov $0xc3,%eax: a C3 byte that is no RET
        0xc3, // ret
    ];

    #[test]
    fn go_function_shapes_decode() {
        assert_eq!(after_stack_check(GO_READ_HEAD, 0x5a14a0), 10);
        // The large-frame form: lea -0x68(%rsp),%r12; cmp 0x10(%r14),%r12; jbe.
        let write = [
            0x4c, 0x8d, 0x64, 0x24, 0x98, 0x4d, 0x3b, 0x66, 0x10, 0x0f, 0x86, 0x64, 0x07, 0x00,
            0x00, 0x48, 0x81, 0xec, 0xe8, 0x00, 0x00, 0x00,
        ];
        assert_eq!(after_stack_check(&write, 0x59ffe0), 15);
        assert_eq!(after_stack_check(&[0x55, 0x48, 0x89, 0xe5, 0xc3], 0), 0);
        assert_eq!(ret_offsets(GO_READ_HEAD, 0x5a14a0), vec![23, 29]);
        // Garbage does not decode: no RET is trusted.
        assert!(ret_offsets(&[0x0f, 0xff, 0xff, 0xff], 0).is_empty());
        assert_eq!(go_minor("go1.19.8"), Some(19));
        assert_eq!(go_minor("go1.21rc2"), Some(21));
        assert_eq!(go_minor("devel"), None);
    }

    /// A .gopclntab in Go 1.18's layout, built by hand: two functions.
    fn pclntab_118() -> Vec<u8> {
        let mut d = Vec::new();
        d.extend_from_slice(&0xffff_fff0u32.to_le_bytes());
        d.extend_from_slice(&[0, 0, 1, 8]);
        let names_at = 80u64;
        let pcln_at = 128u64;
        // nfunc, nfiles, textStart, funcnameOffset, cuOffset, filetabOffset, pctabOffset, pclnOffset
        for w in [2u64, 0, 0x401000, names_at, 0, 0, 0, pcln_at] {
            d.extend_from_slice(&w.to_le_bytes());
        }
        d.resize(names_at as usize, 0);
        d.extend_from_slice(b"main.main\0crypto/tls.(*Conn).Read\0");
        d.resize(pcln_at as usize, 0);
        // functab: (entryoff, funcoff) x 3, then the _funcs.
        for (entry, func) in [(0x10u32, 24u32), (0x80, 32), (0xa0, 0)] {
            d.extend_from_slice(&entry.to_le_bytes());
            d.extend_from_slice(&func.to_le_bytes());
        }
        for (entry, name) in [(0x10u32, 0i32), (0x80, 10)] {
            d.extend_from_slice(&entry.to_le_bytes());
            d.extend_from_slice(&name.to_le_bytes());
        }
        d
    }

    #[test]
    fn gopclntab_finds_functions_and_survives_damage() {
        let d = pclntab_118();
        let got = gopclntab_funcs(&d, 0, ["crypto/tls.(*Conn).Read", "main.main", "nope"]);
        assert_eq!(got, [(0x401080, 0x20), (0x401010, 0x70), (0, 0)]);
        // Every cut and every byte changed: an answer or nothing, never a panic.
        for i in 0..d.len() {
            let _ = gopclntab_funcs(&d[..i], 0, ["main.main"]);
            for x in [0u8, 0xff, 0x7f] {
                let mut m = d.clone();
                m[i] = x;
                let _ = gopclntab_funcs(&m, 0x1000, ["main.main"]);
            }
        }
        let mut old = d.clone();
        old[..4].copy_from_slice(&0xffff_fffbu32.to_le_bytes());
        assert_eq!(gopclntab_funcs(&old, 0, ["main.main"]), [(0, 0)]);
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
                    "gnutls_transport_set_int2",
                    "gnutls_deinit"
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
