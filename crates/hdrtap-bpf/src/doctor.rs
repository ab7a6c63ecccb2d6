//! `hdrtap doctor`: can this machine run hdrtap, and if not, why not.
//!
//! Each check is cheap and independent; the last ones load and attach the
//! real programs, which is the only test that cannot lie.
use std::mem::MaybeUninit;
use std::path::Path;

use libbpf_rs::libbpf_sys;
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::OpenObject;

use crate::syscalls_skel::SyscallsSkelBuilder;
use crate::{HttpOptions, HttpProbe};

/// Result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Works, with a caveat.
    Warn,
    /// hdrtap cannot work without this.
    Fail,
}

/// One row of the doctor's table.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub detail: String,
}

impl Check {
    fn new(name: impl Into<String>, status: Status, detail: impl Into<String>) -> Self {
        Check {
            name: name.into(),
            status,
            detail: detail.into(),
        }
    }
}

/// Oldest kernel with everything the HTTP programs use (bpf_loop: 5.17).
pub const MIN_KERNEL: (u32, u32) = (5, 17);

/// Run every check. Order matters only for reading.
pub fn run() -> Vec<Check> {
    let mut out = vec![kernel_version(), btf(), privileges()];
    out.push(match crate::ensure_tracefs() {
        Ok((dir, true)) => Check::new("tracefs", Status::Ok, format!("{dir} (mounted now)")),
        Ok((dir, false)) => Check::new("tracefs", Status::Ok, dir),
        Err(e) => Check::new("tracefs", Status::Fail, e.to_string()),
    });
    out.push(probe(
        "program type tracepoint",
        // SAFETY: plain FFI call with a NULL opts pointer, which libbpf accepts.
        unsafe {
            libbpf_sys::libbpf_probe_bpf_prog_type(
                libbpf_sys::BPF_PROG_TYPE_TRACEPOINT,
                std::ptr::null(),
            )
        },
    ));
    out.push(probe(
        "map type ringbuf",
        // SAFETY: as above.
        unsafe {
            libbpf_sys::libbpf_probe_bpf_map_type(
                libbpf_sys::BPF_MAP_TYPE_RINGBUF,
                std::ptr::null(),
            )
        },
    ));
    out.push(probe(
        "helper bpf_loop",
        // SAFETY: as above.
        unsafe {
            libbpf_sys::libbpf_probe_bpf_helper(
                libbpf_sys::BPF_PROG_TYPE_TRACEPOINT,
                libbpf_sys::BPF_FUNC_loop,
                std::ptr::null(),
            )
        },
    ));
    out.push(syscall_tracepoints());
    out.push(load_and_attach());
    out.push(crate::tls::doctor_check());
    out.extend(packet_checks());
    out
}

/// `hdrtap packets`: the program types, then the real object loaded and
/// each hook attached to `lo` (and detached at once). Failures here are
/// warnings: `hdrtap http` does not need any of it.
fn packet_checks() -> Vec<Check> {
    let warn_unless = |name: &str, rc: i32| {
        let mut c = probe(name, rc);
        if c.status == Status::Fail {
            c.status = Status::Warn;
            c.detail.push_str(" (hdrtap packets cannot use this hook)");
        }
        c
    };
    let mut out: Vec<Check> = [
        (
            "program type sched_cls (tc)",
            libbpf_sys::BPF_PROG_TYPE_SCHED_CLS,
        ),
        ("program type xdp", libbpf_sys::BPF_PROG_TYPE_XDP),
        (
            "program type socket_filter",
            libbpf_sys::BPF_PROG_TYPE_SOCKET_FILTER,
        ),
    ]
    .into_iter()
    .map(|(name, prog_type)| {
        // SAFETY: plain FFI call with a NULL opts pointer, which libbpf accepts.
        warn_unless(name, unsafe {
            libbpf_sys::libbpf_probe_bpf_prog_type(prog_type, std::ptr::null())
        })
    })
    .collect();
    let opts = crate::PacketOptions {
        ring_bytes: 1 << 16,
        ..crate::PacketOptions::default()
    };
    let name = "packet programs load";
    let mut probe = match crate::PacketProbe::load(&opts) {
        Ok(p) => {
            let detail = if p.owners() {
                "tc, xdp, socket filter + 3 socket-owner tracing programs"
            } else {
                "tc, xdp, socket filter (no process attribution: tp_btf sock_send_length/sock_recv_length unavailable)"
            };
            out.push(Check::new(
                name,
                if p.owners() { Status::Ok } else { Status::Warn },
                detail,
            ));
            p
        }
        Err(e) => {
            let log = e
                .log()
                .lines()
                .rev()
                .take(3)
                .collect::<Vec<_>>()
                .join(" / ");
            out.push(Check::new(name, Status::Warn, format!("{e} {log}")));
            return out;
        }
    };
    let lo = crate::packets::if_index("lo").unwrap_or(1);
    let both = crate::packets::Directions::BOTH;
    let tcx = probe.attach_tc(lo, both, crate::packets::TcMode::Tcx);
    out.push(match tcx {
        Ok(_) => Check::new(
            "tc: TCX link on lo",
            Status::Ok,
            "attached and detached (kernel >= 6.6)",
        ),
        Err(e) => Check::new(
            "tc: TCX link on lo",
            Status::Warn,
            format!("{e}; hdrtap falls back to clsact"),
        ),
    });
    out.push(match probe.attach_xdp(lo) {
        Ok(mode) => Check::new(
            "xdp on lo",
            Status::Ok,
            format!("attached in {} mode", mode.describe()),
        ),
        Err(e) => Check::new("xdp on lo", Status::Warn, e.to_string()),
    });
    out.push(
        match probe.attach_socket(lo, crate::packets::Directions::IN) {
            Ok(_) => Check::new(
                "socket filter on lo",
                Status::Ok,
                "AF_PACKET socket with SO_ATTACH_BPF, PACKET_IGNORE_OUTGOING",
            ),
            Err(e) => Check::new("socket filter on lo", Status::Warn, e.to_string()),
        },
    );
    drop(probe);
    out
}

fn probe(name: &str, rc: i32) -> Check {
    match rc {
        1 => Check::new(name, Status::Ok, "supported"),
        0 => Check::new(name, Status::Fail, "not supported by this kernel"),
        e => Check::new(
            name,
            Status::Fail,
            format!("probe failed: {}", std::io::Error::from_raw_os_error(-e)),
        ),
    }
}

/// (major, minor) of a kernel release string such as "6.18.44-fc".
pub fn parse_release(release: &str) -> Option<(u32, u32)> {
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

fn kernel_version() -> Check {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let release = release.trim();
    match parse_release(release) {
        Some(v) if v >= MIN_KERNEL => Check::new(
            "kernel version",
            Status::Ok,
            format!("{release} (need >= {}.{})", MIN_KERNEL.0, MIN_KERNEL.1),
        ),
        Some(_) => Check::new(
            "kernel version",
            Status::Fail,
            format!("{release} is older than {}.{}", MIN_KERNEL.0, MIN_KERNEL.1),
        ),
        None => Check::new(
            "kernel version",
            Status::Warn,
            format!("cannot parse {release:?}"),
        ),
    }
}

fn btf() -> Check {
    let p = Path::new("/sys/kernel/btf/vmlinux");
    match std::fs::metadata(p) {
        Ok(m) => Check::new(
            "kernel BTF",
            Status::Ok,
            format!("{} ({} KiB)", p.display(), m.len() / 1024),
        ),
        Err(_) => Check::new(
            "kernel BTF",
            Status::Fail,
            "missing /sys/kernel/btf/vmlinux: the kernel needs CONFIG_DEBUG_INFO_BTF=y",
        ),
    }
}

/// Effective capability set of this process.
pub fn effective_caps() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0)
}

/// Names of capabilities `hdrtap http` needs and this process lacks (see
/// [`crate::caps::http_needs`]).
pub fn missing_caps() -> Vec<&'static str> {
    crate::caps::unmet(&crate::caps::http_needs(), crate::caps::effective())
        .iter()
        .map(|n| n.cap.name())
        .collect()
}

fn privileges() -> Check {
    let euid = crate::sys::euid();
    let missing = missing_caps();
    if missing.is_empty() {
        let who = if euid == 0 {
            "root".to_string()
        } else {
            format!("uid {euid} with capabilities")
        };
        Check::new("privileges", Status::Ok, who)
    } else {
        let unmet = crate::caps::unmet(&crate::caps::http_needs(), crate::caps::effective());
        Check::new(
            "privileges",
            Status::Fail,
            format!(
                "{} (run as root; see docs/PRIVILEGES.md)",
                crate::caps::describe_unmet(&unmet)
            ),
        )
    }
}

/// Every syscall tracepoint the HTTP object attaches to, from its sections.
pub fn required_tracepoints() -> Vec<String> {
    let mut storage = MaybeUninit::<OpenObject>::uninit();
    let Ok(open) = SyscallsSkelBuilder::default().open(&mut storage) else {
        return Vec::new();
    };
    open.open_object()
        .progs()
        .filter_map(|p| {
            p.section()
                .to_str()
                .and_then(|s| s.strip_prefix("tracepoint/"))
                .map(str::to_string)
        })
        .collect()
}

fn syscall_tracepoints() -> Check {
    let (dir, _) = match crate::ensure_tracefs() {
        Ok(d) => d,
        Err(_) => return Check::new("syscall tracepoints", Status::Fail, "tracefs unavailable"),
    };
    let needed = required_tracepoints();
    let missing: Vec<&String> = needed
        .iter()
        .filter(|tp| !Path::new(dir).join("events").join(tp).is_dir())
        .collect();
    if needed.is_empty() {
        Check::new(
            "syscall tracepoints",
            Status::Fail,
            "cannot open the HTTP object",
        )
    } else if missing.is_empty() {
        Check::new(
            "syscall tracepoints",
            Status::Ok,
            format!("{} of {} present", needed.len(), needed.len()),
        )
    } else {
        Check::new(
            "syscall tracepoints",
            Status::Fail,
            format!(
                "missing {}: the kernel needs CONFIG_FTRACE_SYSCALLS=y",
                missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    }
}

fn load_and_attach() -> Check {
    let name = "HTTP programs load + attach";
    let opts = HttpOptions {
        ring_bytes: 1 << 16,
        ..HttpOptions::default()
    };
    let mut probe = match HttpProbe::load(&opts) {
        Ok(p) => p,
        Err(e) => {
            let log = e
                .log()
                .lines()
                .rev()
                .take(3)
                .collect::<Vec<_>>()
                .join(" / ");
            return Check::new(name, Status::Fail, format!("{e} {log}"));
        }
    };
    match probe.attach() {
        Ok(()) => Check::new(
            name,
            Status::Ok,
            format!("{} programs attached and detached", probe.attached()),
        ),
        Err(e) => Check::new(name, Status::Fail, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kernel_releases() {
        assert_eq!(parse_release("6.18.44-fc-v669"), Some((6, 18)));
        assert_eq!(parse_release("5.17.0"), Some((5, 17)));
        assert_eq!(parse_release("4.19"), Some((4, 19)));
        assert_eq!(parse_release("garbage"), None);
    }

    #[test]
    fn tracepoints_come_from_the_object() {
        let tps = required_tracepoints();
        assert!(
            tps.contains(&"syscalls/sys_exit_read".to_string()),
            "{tps:?}"
        );
        assert!(
            tps.contains(&"syscalls/sys_exit_recvmsg".to_string()),
            "{tps:?}"
        );
        assert!(
            tps.contains(&"syscalls/sys_enter_close".to_string()),
            "{tps:?}"
        );
    }
}
