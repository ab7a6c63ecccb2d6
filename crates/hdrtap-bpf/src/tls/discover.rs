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
use object::{Object, ObjectSection, ObjectSymbol};

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
    /// Holds GnuTLS functions (`gnutls_record_send`).
    pub gnutls: bool,
}

impl ElfFacts {
    /// SSL_write and SSL_read are there: the file can be hooked.
    pub fn hookable(&self) -> bool {
        self.ssl[0] && self.ssl[1]
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
    let file = File::open(path)?;
    let cache = ReadCache::new(file);
    let obj = object::File::parse(&cache).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })?;
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
                .is_some_and(|d| contains(d, b"\0SSL_write\0"))
        });
        if !named {
            return Ok(facts);
        }
    }
    for sym in obj.dynamic_symbols().chain(obj.symbols()) {
        let Ok(name) = sym.name_bytes() else { continue };
        if !sym.is_undefined() {
            if let Some(i) = SSL_FUNCS.iter().position(|f| f.as_bytes() == name) {
                if let Some(slot) = facts.ssl.get_mut(i) {
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
            if name == b"gnutls_record_send" {
                facts.gnutls = true;
            }
        } else if facts.ssl.iter().all(|&x| x) {
            break;
        }
    }
    Ok(facts)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A mapped file worth an ELF look for OpenSSL: a `libssl*` library, or the
/// process's own executable (statically linked OpenSSL).
pub fn is_candidate(m: &Mapping, exe: Option<&str>) -> bool {
    m.file_name().starts_with("libssl") || exe.is_some_and(|e| e == m.path)
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

    #[test]
    fn the_system_libssl_is_hookable_when_present() {
        let p = Path::new("/usr/lib/x86_64-linux-gnu/libssl.so.3");
        if p.exists() {
            let f = elf_facts(p, false).unwrap();
            assert!(f.hookable(), "{f:?}");
            assert_eq!(f.ssl_funcs().collect::<Vec<_>>(), SSL_FUNCS.to_vec());
        }
    }
}
