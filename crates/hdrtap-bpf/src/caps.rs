//! Linux capabilities: which ones each command needs and why, which ones this
//! process has, and giving up the ones it no longer needs once attached.
//!
//! What the kernel (6.x) asks of hdrtap, found by running each command as an
//! unprivileged user with exactly the listed ambient capabilities (see
//! `tests/privileges.rs` and docs/PRIVILEGES.md):
//!
//! | capability            | needed for |
//! |-----------------------|------------|
//! | `CAP_BPF`             | creating maps, loading programs (every command) |
//! | `CAP_PERFMON`         | tracing programs (syscall tracepoints, `tp_btf`) and their reads of process memory; packets: the verifier's limits for the parser, and the process-attribution programs |
//! | `CAP_DAC_READ_SEARCH` | `hdrtap http` when not root: tracefs (`/sys/kernel/tracing`, mode 0700) holds the tracepoint ids |
//! | `CAP_SYS_ADMIN`       | mounting tracefs when it is not mounted; uprobes (the kernel's `perf_uprobe` PMU demands it), so HTTPS capture |
//! | `CAP_SYS_PTRACE`      | HTTPS capture: reading `/proc/PID/maps` and `/proc/PID/root` of other users' (and more privileged) processes |
//! | `CAP_NET_ADMIN`       | `hdrtap packets` (every hook: the object's tc and XDP programs are loaded): TCX/XDP links, clsact qdiscs and filters (and removing them at exit) |
//! | `CAP_NET_RAW`         | `hdrtap packets --hook socket`: the AF_PACKET socket |
//!
//! `CAP_SYS_ADMIN` also stands in for `CAP_BPF` and `CAP_PERFMON` (the
//! kernel accepts it for both).

use std::fmt;
use std::io;

/// The packet hooks (shared with the command line and the records).
pub use hdrtap_abi::Hook;

/// One capability (its number in `linux/capability.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cap(u32);

impl Cap {
    pub const DAC_READ_SEARCH: Cap = Cap(2);
    pub const SETPCAP: Cap = Cap(8);
    pub const NET_ADMIN: Cap = Cap(12);
    pub const NET_RAW: Cap = Cap(13);
    pub const SYS_PTRACE: Cap = Cap(19);
    pub const SYS_ADMIN: Cap = Cap(21);
    pub const PERFMON: Cap = Cap(38);
    pub const BPF: Cap = Cap(39);

    /// The capability's number.
    pub fn number(self) -> u32 {
        self.0
    }

    /// `CAP_...` name.
    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "CAP_CHOWN",
            1 => "CAP_DAC_OVERRIDE",
            2 => "CAP_DAC_READ_SEARCH",
            3 => "CAP_FOWNER",
            4 => "CAP_FSETID",
            5 => "CAP_KILL",
            6 => "CAP_SETGID",
            7 => "CAP_SETUID",
            8 => "CAP_SETPCAP",
            9 => "CAP_LINUX_IMMUTABLE",
            10 => "CAP_NET_BIND_SERVICE",
            11 => "CAP_NET_BROADCAST",
            12 => "CAP_NET_ADMIN",
            13 => "CAP_NET_RAW",
            14 => "CAP_IPC_LOCK",
            15 => "CAP_IPC_OWNER",
            16 => "CAP_SYS_MODULE",
            17 => "CAP_SYS_RAWIO",
            18 => "CAP_SYS_CHROOT",
            19 => "CAP_SYS_PTRACE",
            20 => "CAP_SYS_PACCT",
            21 => "CAP_SYS_ADMIN",
            22 => "CAP_SYS_BOOT",
            23 => "CAP_SYS_NICE",
            24 => "CAP_SYS_RESOURCE",
            25 => "CAP_SYS_TIME",
            26 => "CAP_SYS_TTY_CONFIG",
            27 => "CAP_MKNOD",
            28 => "CAP_LEASE",
            29 => "CAP_AUDIT_WRITE",
            30 => "CAP_AUDIT_CONTROL",
            31 => "CAP_SETFCAP",
            32 => "CAP_MAC_OVERRIDE",
            33 => "CAP_MAC_ADMIN",
            34 => "CAP_SYSLOG",
            35 => "CAP_WAKE_ALARM",
            36 => "CAP_BLOCK_SUSPEND",
            37 => "CAP_AUDIT_READ",
            38 => "CAP_PERFMON",
            39 => "CAP_BPF",
            40 => "CAP_CHECKPOINT_RESTORE",
            _ => "CAP_UNKNOWN",
        }
    }
}

impl fmt::Display for Cap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of capabilities (bit `n` = capability number `n`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapSet(pub u64);

impl CapSet {
    pub const EMPTY: CapSet = CapSet(0);

    pub fn of(caps: &[Cap]) -> CapSet {
        CapSet(caps.iter().fold(0, |acc, c| acc | 1u64 << c.0))
    }

    pub fn contains(self, c: Cap) -> bool {
        c.0 < 64 && self.0 & (1u64 << c.0) != 0
    }

    pub fn insert(&mut self, c: Cap) {
        if c.0 < 64 {
            self.0 |= 1u64 << c.0;
        }
    }

    pub fn intersect(self, other: CapSet) -> CapSet {
        CapSet(self.0 & other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The capabilities in the set, lowest number first.
    pub fn iter(self) -> impl Iterator<Item = Cap> {
        (0..64).filter(move |n| self.0 & (1u64 << n) != 0).map(Cap)
    }

    /// `CAP_A, CAP_B` (or `none`).
    pub fn names(self) -> String {
        if self.is_empty() {
            return "none".to_string();
        }
        self.iter().map(Cap::name).collect::<Vec<_>>().join(", ")
    }
}

/// The three sets of a process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessCaps {
    pub effective: CapSet,
    pub permitted: CapSet,
    pub inheritable: CapSet,
}

/// This process's capability sets (capget(2)).
pub fn current() -> io::Result<ProcessCaps> {
    let sets = rustix::thread::capabilities(None)?;
    Ok(ProcessCaps {
        effective: CapSet(sets.effective.bits()),
        permitted: CapSet(sets.permitted.bits()),
        inheritable: CapSet(sets.inheritable.bits()),
    })
}

/// The effective set (empty if it cannot be read).
pub fn effective() -> CapSet {
    current().map(|c| c.effective).unwrap_or_default()
}

/// One thing a command needs: a capability (or one that stands in for it,
/// e.g. `CAP_SYS_ADMIN` for `CAP_BPF`) and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    pub cap: Cap,
    /// Also accepted by the kernel instead of `cap`.
    pub or: Option<Cap>,
    /// What it is for, e.g. "load BPF programs".
    pub why: &'static str,
}

impl Need {
    pub const fn new(cap: Cap, why: &'static str) -> Need {
        Need { cap, or: None, why }
    }

    /// `cap`, or `CAP_SYS_ADMIN` in its place.
    pub const fn or_sys_admin(cap: Cap, why: &'static str) -> Need {
        Need {
            cap,
            or: Some(Cap::SYS_ADMIN),
            why,
        }
    }

    /// Met by this effective set.
    pub fn met_by(&self, eff: CapSet) -> bool {
        eff.contains(self.cap) || self.or.is_some_and(|c| eff.contains(c))
    }
}

/// The needs in `needs` that `eff` does not meet.
pub fn unmet(needs: &[Need], eff: CapSet) -> Vec<Need> {
    needs.iter().copied().filter(|n| !n.met_by(eff)).collect()
}

/// One line naming what is missing and why, e.g. "missing CAP_BPF (load BPF
/// programs), CAP_PERFMON (attach tracing programs)".
pub fn describe_unmet(unmet: &[Need]) -> String {
    let parts: Vec<String> = unmet
        .iter()
        .map(|n| format!("{} ({})", n.cap, n.why))
        .collect();
    format!("missing {}", parts.join(", "))
}

/// Give up every capability not in `keep`: the bounding set first (when
/// CAP_SETPCAP allows it), then the ambient and inheritable sets, then the
/// effective and permitted sets; and set no_new_privs, so no later exec can
/// bring any back. Returns the effective set afterwards. Capabilities in
/// `keep` that the process does not have stay absent.
pub fn drop_except(keep: CapSet) -> io::Result<CapSet> {
    use rustix::thread::{CapabilitySet, CapabilitySets};
    let now = current()?;
    let keep = keep.intersect(now.permitted);
    rustix::thread::set_no_new_privs(true)?;
    if now.effective.contains(Cap::SETPCAP) {
        for n in 0..=last_cap() {
            if keep.contains(Cap(n)) {
                continue;
            }
            // EINVAL for numbers the kernel does not know is harmless.
            let _ = rustix::thread::remove_capability_from_bounding_set(
                CapabilitySet::from_bits_retain(1u64 << n),
            );
        }
    }
    rustix::thread::clear_ambient_capability_set()?;
    let keep = CapabilitySet::from_bits_retain(keep.0);
    rustix::thread::set_capabilities(
        None,
        CapabilitySets {
            effective: keep,
            permitted: keep,
            inheritable: CapabilitySet::empty(),
        },
    )?;
    Ok(current()?.effective)
}

/// The highest capability number this kernel knows.
fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
        .min(63)
}

// ---- what each command needs ---------------------------------------------

/// Is tracefs there and readable by this process as it is?
fn tracefs_readable() -> bool {
    ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .iter()
        .any(|d| {
            std::fs::read_dir(format!("{d}/events/syscalls")).is_ok()
                && std::fs::read(format!("{d}/events/syscalls/sys_exit_read/id")).is_ok()
        })
}

/// Is tracefs mounted where hdrtap looks? Read from /proc/self/mountinfo,
/// which anyone may read (tracefs itself is root's only).
fn tracefs_mounted() -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines().any(|line| {
        let (pre, post) = line.split_once(" - ").unwrap_or((line, ""));
        let at = pre.split_whitespace().nth(4).unwrap_or("");
        post.split_whitespace().next() == Some("tracefs")
            && (at == "/sys/kernel/tracing" || at == "/sys/kernel/debug/tracing")
    })
}

/// What `hdrtap http` cannot start without, given how the machine is set up
/// now (tracefs mounted or not, readable or not).
pub fn http_needs() -> Vec<Need> {
    let mut needs = vec![
        Need::or_sys_admin(Cap::BPF, "load BPF programs"),
        Need::or_sys_admin(Cap::PERFMON, "attach the syscall tracepoints"),
    ];
    if !tracefs_mounted() {
        needs.push(Need::new(Cap::SYS_ADMIN, "mount tracefs"));
    } else if !tracefs_readable() {
        needs.push(Need::new(
            Cap::DAC_READ_SEARCH,
            "read tracefs, which is root's only",
        ));
    }
    needs
}

/// What HTTPS capture (`hdrtap http` without `--no-tls`) needs on top.
/// Without it plain HTTP still works; hdrtap says what is missing.
pub fn tls_needs() -> Vec<Need> {
    vec![
        Need::new(Cap::SYS_ADMIN, "attach uprobes to OpenSSL"),
        Need::new(
            Cap::SYS_PTRACE,
            "read /proc/PID/maps of other users' processes to find OpenSSL",
        ),
    ]
}

/// What `hdrtap packets` cannot start without. The object holds the tc, XDP
/// and socket-filter programs and loads them all, so every hook needs
/// CAP_NET_ADMIN (the kernel demands it to load tc and XDP programs);
/// without CAP_PERFMON the verifier adds Spectre-v1 path checks under which
/// the packet parser exceeds its complexity limit (E2BIG), so it is needed
/// with and without process attribution.
pub fn packets_needs(hook: Hook) -> Vec<Need> {
    let mut needs = vec![
        Need::or_sys_admin(Cap::BPF, "load BPF programs"),
        Need::or_sys_admin(
            Cap::PERFMON,
            "have the verifier accept the packet parser and attach the process-attribution programs",
        ),
        Need::new(
            Cap::NET_ADMIN,
            match hook {
                Hook::Tc => "load and attach tc programs",
                Hook::Xdp => "load and attach XDP programs",
                Hook::Socket => "load the packet programs (tc and XDP ones included)",
            },
        ),
    ];
    if hook == Hook::Socket {
        needs.push(Need::new(Cap::NET_RAW, "open AF_PACKET sockets"));
    }
    needs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_and_names() {
        let s = CapSet::of(&[Cap::BPF, Cap::NET_RAW, Cap::DAC_READ_SEARCH]);
        assert!(s.contains(Cap::BPF) && !s.contains(Cap::PERFMON));
        assert_eq!(
            s.names(),
            "CAP_DAC_READ_SEARCH, CAP_NET_RAW, CAP_BPF",
            "lowest number first"
        );
        assert_eq!(CapSet::EMPTY.names(), "none");
        assert_eq!(Cap(38).to_string(), "CAP_PERFMON");
    }

    #[test]
    fn sys_admin_stands_in_for_bpf_and_perfmon_only() {
        let needs = packets_needs(Hook::Tc);
        let admin = CapSet::of(&[Cap::SYS_ADMIN]);
        let unmet = unmet(&needs, admin);
        assert_eq!(
            unmet.iter().map(|n| n.cap).collect::<Vec<_>>(),
            vec![Cap::NET_ADMIN]
        );
        assert!(describe_unmet(&unmet).starts_with("missing CAP_NET_ADMIN (load and attach tc"));
        let socket = packets_needs(Hook::Socket);
        assert_eq!(
            super::unmet(
                &socket,
                CapSet::of(&[Cap::BPF, Cap::PERFMON, Cap::NET_ADMIN])
            )
            .iter()
            .map(|n| n.cap)
            .collect::<Vec<_>>(),
            vec![Cap::NET_RAW]
        );
    }

    #[test]
    fn reads_own_capabilities() {
        let c = current().unwrap();
        // The effective set is always within the permitted set.
        assert_eq!(c.effective.0 & !c.permitted.0, 0);
    }
}
