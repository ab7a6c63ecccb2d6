//! `hdrtap doctor`: can this machine run hdrtap, and if not, why not.
//!
//! Each check is cheap and independent; the last ones load and attach the
//! real programs, which is the only test that cannot lie.
use std::mem::MaybeUninit;
use std::path::Path;

use libbpf_rs::libbpf_sys;
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::OpenObject;

use crate::kernel::Presence;
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

/// What one capture can do on this kernel, the verdict `doctor` ends with
/// and the kernel matrix (`scripts/kernels.sh`) tabulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapStatus {
    /// Loaded and attached here.
    Ok,
    /// Works, through a fallback for a kernel feature this kernel lacks.
    Fallback,
    /// This kernel lacks a feature it needs (named in the detail).
    Unavailable,
    /// Should work here (the features are present) but did not load or
    /// attach: a bug, or a kernel quirk hdrtap does not know yet.
    Fail,
    /// This process lacks the privileges to load it (run as root): says
    /// nothing about the kernel.
    Denied,
}

impl CapStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CapStatus::Ok => "ok",
            CapStatus::Fallback => "fallback",
            CapStatus::Unavailable => "unavailable",
            CapStatus::Fail => "FAIL",
            CapStatus::Denied => "denied",
        }
    }
}

/// One capability's verdict.
#[derive(Debug, Clone)]
pub struct Capability {
    /// Stable key: http, https, packets-tc, packets-xdp, packets-socket,
    /// attribution.
    pub key: &'static str,
    pub status: CapStatus,
    pub detail: String,
}

impl Capability {
    fn new(key: &'static str, status: CapStatus, detail: impl Into<String>) -> Self {
        Capability {
            key,
            status,
            detail: detail.into(),
        }
    }
}

/// Everything `doctor` found.
#[derive(Debug, Clone)]
pub struct Report {
    /// `uname -r`.
    pub release: String,
    pub checks: Vec<Check>,
    pub capabilities: Vec<Capability>,
}

/// Run every check, then load and attach each capture for real: the
/// verdicts come from what loaded, never from the version number.
pub fn run() -> Report {
    let release = crate::kernel::release();
    let mut checks = vec![
        Check::new("kernel", Status::Ok, release.clone()),
        btf(),
        privileges(),
    ];
    checks.push(match crate::ensure_tracefs() {
        Ok((dir, true)) => Check::new("tracefs", Status::Ok, format!("{dir} (mounted now)")),
        Ok((dir, false)) => Check::new("tracefs", Status::Ok, dir),
        // Not root: the privileges check says so; the kernel may well have it.
        Err(e) if tracefs_denied(&e) => Check::new("tracefs", Status::Warn, e.to_string()),
        Err(e) => Check::new("tracefs", Status::Fail, e.to_string()),
    });
    checks.push(probe(
        "program type tracepoint",
        crate::kernel::prog_type(libbpf_sys::BPF_PROG_TYPE_TRACEPOINT),
    ));
    checks.extend(feature_checks());
    checks.push(syscall_tracepoints());
    let mut caps = Vec::new();
    let (http, http_check) = http_capability();
    checks.push(http_check);
    let tls_check = if http.status == CapStatus::Ok {
        let c = crate::tls::doctor_check();
        caps.push(Capability::new(
            "https",
            if c.status == Status::Ok {
                CapStatus::Ok
            } else {
                CapStatus::Fail
            },
            c.detail.clone(),
        ));
        c
    } else {
        caps.push(Capability::new(
            "https",
            http.status,
            "the OpenSSL uprobes live in the HTTP object",
        ));
        Check::new(
            "HTTPS: OpenSSL uprobes",
            Status::Warn,
            "not tried: the HTTP programs do not load",
        )
    };
    checks.push(tls_check);
    caps.insert(0, http);
    let (packet_checks, packet_caps) = packets();
    checks.extend(packet_checks);
    caps.extend(packet_caps);
    Report {
        release,
        checks,
        capabilities: caps,
    }
}

/// One row per kernel feature hdrtap uses. A missing one that `hdrtap
/// http` needs fails; one only a packet hook needs warns.
fn feature_checks() -> Vec<Check> {
    use crate::kernel::{Feature, HTTP_NEEDS};
    Feature::ALL
        .iter()
        .filter(|f| **f != Feature::Btf) // its own row above
        .map(|&f| {
            let name = format!("feature {}", f.key());
            match f.presence() {
                Presence::Yes => Check::new(
                    name,
                    Status::Ok,
                    format!("{} (mainline {})", f.name(), f.since()),
                ),
                Presence::No => {
                    let needed_by = if HTTP_NEEDS.contains(&f) {
                        "hdrtap http cannot run"
                    } else if f == Feature::SockLenTracepoints {
                        "hdrtap packets attributes processes from syscalls instead"
                    } else {
                        "hdrtap packets cannot run"
                    };
                    let status = if HTTP_NEEDS.contains(&f) {
                        Status::Fail
                    } else {
                        Status::Warn
                    };
                    Check::new(
                        name,
                        status,
                        format!(
                            "missing: {} (mainline {}): {needed_by}",
                            f.name(),
                            f.since()
                        ),
                    )
                }
                Presence::Unknown(e) => {
                    Check::new(name, Status::Warn, format!("cannot probe: {e}"))
                }
            }
        })
        .collect()
}

/// The last lines of a load error's verifier log, for one table cell.
fn log_tail(e: &crate::BpfError) -> String {
    let tail = e.log().lines().rev().take(3).collect::<Vec<_>>();
    if tail.is_empty() {
        String::new()
    } else {
        format!(" ({})", tail.join(" / "))
    }
}

/// tracefs could not be reached for lack of privileges (not the kernel's doing).
fn tracefs_denied(e: &crate::BpfError) -> bool {
    matches!(e, crate::BpfError::Tracefs(m) if m.starts_with("permission denied"))
}

fn unavailable_or_fail(e: &crate::BpfError) -> CapStatus {
    match e {
        crate::BpfError::KernelFeature { .. } => CapStatus::Unavailable,
        // Without CAP_BPF every load fails, whatever the kernel has.
        _ if !crate::kernel::may_load_bpf() => CapStatus::Denied,
        crate::BpfError::Permission => CapStatus::Denied,
        _ => CapStatus::Fail,
    }
}

/// `hdrtap http`: the object loaded and every program attached.
fn http_capability() -> (Capability, Check) {
    let name = "HTTP programs load + attach";
    let opts = HttpOptions {
        ring_bytes: 1 << 16,
        ..HttpOptions::default()
    };
    let result = HttpProbe::load(&opts).and_then(|mut p| p.attach().map(|()| p.attached()));
    match result {
        Ok(n) => {
            let detail = format!("{n} programs attached and detached");
            (
                Capability::new("http", CapStatus::Ok, detail.clone()),
                Check::new(name, Status::Ok, detail),
            )
        }
        Err(e) => match unavailable_or_fail(&e) {
            // The privileges check fails already; this is not the kernel.
            CapStatus::Denied => {
                let detail = crate::BpfError::Permission.to_string();
                (
                    Capability::new("http", CapStatus::Denied, detail.clone()),
                    Check::new(name, Status::Warn, detail),
                )
            }
            status => {
                let detail = format!("{e}{}", log_tail(&e));
                (
                    Capability::new("http", status, e.to_string()),
                    Check::new(name, Status::Fail, detail),
                )
            }
        },
    }
}

/// `hdrtap packets`: the object loaded, then each hook attached to `lo`
/// (and detached at once). Failures here are warnings among the checks:
/// `hdrtap http` does not need any of it.
fn packets() -> (Vec<Check>, Vec<Capability>) {
    use crate::packets::{Directions, OwnerMode, TcMode};
    let warn_unless = |name: &str, p: Presence| {
        let mut c = probe(name, p);
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
    .map(|(name, prog_type)| warn_unless(name, crate::kernel::prog_type(prog_type)))
    .collect();
    let opts = crate::PacketOptions {
        ring_bytes: 1 << 16,
        ..crate::PacketOptions::default()
    };
    let name = "packet programs load";
    let keys = ["packets-tc", "packets-xdp", "packets-socket", "attribution"];
    let mut probe = match crate::PacketProbe::load(&opts) {
        Ok(p) => {
            out.push(Check::new(
                name,
                if p.owners() == OwnerMode::SockTracepoints {
                    Status::Ok
                } else {
                    Status::Warn
                },
                format!("tc, xdp, socket filter; {}", p.owners().describe()),
            ));
            p
        }
        Err(e) => {
            out.push(Check::new(
                name,
                Status::Warn,
                format!("{e}{}", log_tail(&e)),
            ));
            let status = unavailable_or_fail(&e);
            let caps = keys
                .iter()
                .map(|k| Capability::new(k, status, e.to_string()))
                .collect();
            return (out, caps);
        }
    };
    let mut caps = Vec::new();
    caps.push(match probe.owners() {
        OwnerMode::SockTracepoints => Capability::new(
            "attribution",
            CapStatus::Ok,
            "sock_send_length/sock_recv_length tracepoints",
        ),
        OwnerMode::Syscalls => Capability::new(
            "attribution",
            CapStatus::Fallback,
            "from syscalls (connect, listen, accept, send*/recv* calls): no sock_send_length/sock_recv_length tracepoints",
        ),
        OwnerMode::Off => Capability::new(
            "attribution",
            CapStatus::Fail,
            "neither the socket tracepoints nor the syscall fallback loaded (hdrtap -v packets says why)",
        ),
    });
    let lo = crate::packets::if_index("lo").unwrap_or(1);
    let both = Directions::BOTH;
    let tcx = probe.attach_tc(lo, both, TcMode::Tcx);
    match tcx {
        Ok(_) => {
            out.push(Check::new(
                "tc: TCX link on lo",
                Status::Ok,
                "attached and detached (kernel >= 6.6)",
            ));
            caps.push(Capability::new("packets-tc", CapStatus::Ok, "TCX links"));
        }
        Err(e) => {
            out.push(Check::new(
                "tc: TCX link on lo",
                Status::Warn,
                format!("{e}; hdrtap falls back to clsact"),
            ));
            let mut clsact = crate::PacketProbe::load(&crate::PacketOptions {
                owners: false,
                ..opts.clone()
            });
            let r = clsact.as_mut().map_err(|e| e.to_string()).and_then(|p| {
                p.attach_tc(lo, both, TcMode::Clsact)
                    .map_err(|e| e.to_string())
            });
            match r {
                Ok(_) => {
                    out.push(Check::new(
                        "tc: clsact filters on lo",
                        Status::Ok,
                        "attached and detached",
                    ));
                    caps.push(Capability::new(
                        "packets-tc",
                        CapStatus::Fallback,
                        "clsact qdisc filters: no TCX links (mainline 6.6)",
                    ));
                }
                Err(e) => {
                    out.push(Check::new(
                        "tc: clsact filters on lo",
                        Status::Warn,
                        e.clone(),
                    ));
                    caps.push(Capability::new("packets-tc", CapStatus::Fail, e));
                }
            }
        }
    }
    match probe.attach_xdp(lo) {
        Ok(mode) => {
            let detail = format!("attached in {} mode", mode.describe());
            out.push(Check::new("xdp on lo", Status::Ok, detail.clone()));
            caps.push(Capability::new("packets-xdp", CapStatus::Ok, detail));
        }
        Err(e) => {
            out.push(Check::new("xdp on lo", Status::Warn, e.to_string()));
            caps.push(Capability::new(
                "packets-xdp",
                CapStatus::Fail,
                e.to_string(),
            ));
        }
    }
    match probe.attach_socket(lo, Directions::IN) {
        Ok(_) => {
            let detail = "AF_PACKET socket with SO_ATTACH_BPF, PACKET_IGNORE_OUTGOING";
            out.push(Check::new("socket filter on lo", Status::Ok, detail));
            caps.push(Capability::new("packets-socket", CapStatus::Ok, detail));
        }
        Err(e) => {
            out.push(Check::new(
                "socket filter on lo",
                Status::Warn,
                e.to_string(),
            ));
            caps.push(Capability::new(
                "packets-socket",
                CapStatus::Fail,
                e.to_string(),
            ));
        }
    }
    drop(probe);
    // In the order of `keys`.
    caps.sort_by_key(|c| keys.iter().position(|k| *k == c.key));
    (out, caps)
}

fn probe(name: &str, p: Presence) -> Check {
    match p {
        Presence::Yes => Check::new(name, Status::Ok, "supported"),
        Presence::No => Check::new(name, Status::Fail, "not supported by this kernel"),
        // No privileges: the privileges check fails already; this says
        // nothing about the kernel.
        Presence::Unknown(e) if e == crate::kernel::DENIED => Check::new(name, Status::Warn, e),
        Presence::Unknown(e) => Check::new(name, Status::Fail, format!("probe failed: {e}")),
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
        Err(e) if tracefs_denied(&e) => {
            return Check::new(
                "syscall tracepoints",
                Status::Warn,
                "not checked: tracefs is root's only",
            )
        }
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

#[cfg(test)]
mod tests {
    use super::*;

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
