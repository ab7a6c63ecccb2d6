//! What the running kernel offers hdrtap: every kernel feature a capture
//! depends on, probed on this kernel (never guessed from its version
//! number: distributions backport), with the first mainline release that
//! has it, for messages and docs.
//!
//! The loaders call [`require`] before loading an object, so a kernel that
//! lacks a feature gives one line naming it instead of a verifier log, and
//! `hdrtap doctor` and the kernel matrix (`scripts/kernels.sh`) show the
//! same verdicts.
use std::collections::HashMap;
use std::sync::Mutex;

use libbpf_rs::libbpf_sys;

use crate::BpfError;

/// A kernel feature hdrtap's programs use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Feature {
    /// Kernel BTF at /sys/kernel/btf/vmlinux (CO-RE, tp_btf programs).
    Btf,
    /// BPF_MAP_TYPE_RINGBUF: every capture's event channel.
    RingBuf,
    /// The bpf_loop helper: the HTTP copy loop, the body scan, the packet filter.
    BpfLoop,
    /// The bpf_task_pt_regs helper: syscall arguments read at exit.
    TaskPtRegs,
    /// BPF_MAP_TYPE_TASK_STORAGE: a thread's TLS call in flight.
    TaskStorage,
    /// The bpf_get_attach_cookie helper in uprobe programs: which TLS
    /// library a hit came from.
    AttachCookie,
    /// The bpf_xdp_load_bytes helper: the XDP hook's packet reads.
    XdpLoadBytes,
    /// The BTF tracepoints sock_send_length and sock_recv_length: process
    /// attribution of packets from every send and receive (without them,
    /// a fallback from the syscall path, see `PacketProbe`).
    SockLenTracepoints,
}

/// Whether the running kernel has a feature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    Yes,
    No,
    /// The probe itself failed (typically: no permission to load a
    /// program); the real load will tell.
    Unknown(String),
}

impl Feature {
    /// Every feature, in the order `doctor` lists them.
    pub const ALL: [Feature; 8] = [
        Feature::Btf,
        Feature::RingBuf,
        Feature::BpfLoop,
        Feature::TaskPtRegs,
        Feature::TaskStorage,
        Feature::AttachCookie,
        Feature::XdpLoadBytes,
        Feature::SockLenTracepoints,
    ];

    /// What it is, as users and kernel docs call it.
    pub fn name(self) -> &'static str {
        match self {
            Feature::Btf => "kernel BTF (CONFIG_DEBUG_INFO_BTF)",
            Feature::RingBuf => "BPF ring buffer maps",
            Feature::BpfLoop => "the bpf_loop helper",
            Feature::TaskPtRegs => "the bpf_task_pt_regs helper",
            Feature::TaskStorage => "BPF task storage maps",
            Feature::AttachCookie => "the bpf_get_attach_cookie helper for uprobes",
            Feature::XdpLoadBytes => "the bpf_xdp_load_bytes helper",
            Feature::SockLenTracepoints => "the sock_send_length/sock_recv_length tracepoints",
        }
    }

    /// A short key, for tables and JSON.
    pub fn key(self) -> &'static str {
        match self {
            Feature::Btf => "btf",
            Feature::RingBuf => "ringbuf",
            Feature::BpfLoop => "bpf_loop",
            Feature::TaskPtRegs => "bpf_task_pt_regs",
            Feature::TaskStorage => "task_storage",
            Feature::AttachCookie => "uprobe_attach_cookie",
            Feature::XdpLoadBytes => "bpf_xdp_load_bytes",
            Feature::SockLenTracepoints => "sock_len_tracepoints",
        }
    }

    /// The first mainline release with the feature (distribution kernels
    /// may have it earlier through backports: the probe decides).
    pub fn since(self) -> &'static str {
        match self {
            Feature::Btf => "5.2",
            Feature::RingBuf => "5.8",
            Feature::BpfLoop => "5.17",
            Feature::TaskPtRegs => "5.15",
            Feature::TaskStorage => "5.11",
            Feature::AttachCookie => "5.15",
            Feature::XdpLoadBytes => "5.18",
            // Absent in 6.2, present in 6.5 (the __tracepoint_ symbols in
            // the System.map of Ubuntu's 6.2.0-39 and 6.5.0-45 kernels);
            // the kernel matrix boots 6.1 (absent) and 6.8, 6.12 (present).
            Feature::SockLenTracepoints => "6.5",
        }
    }

    /// Probe the running kernel (cached for the life of the process).
    pub fn presence(self) -> Presence {
        static CACHE: Mutex<Option<HashMap<Feature, Presence>>> = Mutex::new(None);
        let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
        let map = cache.get_or_insert_with(HashMap::new);
        if let Some(p) = map.get(&self) {
            return p.clone();
        }
        let p = self.probe();
        // A failed probe (no permission yet) is not remembered.
        if !matches!(p, Presence::Unknown(_)) {
            map.insert(self, p.clone());
        }
        p
    }

    fn probe(self) -> Presence {
        match self {
            Feature::Btf => presence(std::path::Path::new(BTF_PATH).exists()),
            Feature::RingBuf => map_type(libbpf_sys::BPF_MAP_TYPE_RINGBUF),
            Feature::TaskStorage => map_type(libbpf_sys::BPF_MAP_TYPE_TASK_STORAGE),
            Feature::BpfLoop => helper(
                libbpf_sys::BPF_PROG_TYPE_TRACEPOINT,
                libbpf_sys::BPF_FUNC_loop,
            ),
            Feature::TaskPtRegs => helper(
                libbpf_sys::BPF_PROG_TYPE_TRACEPOINT,
                libbpf_sys::BPF_FUNC_task_pt_regs,
            ),
            Feature::AttachCookie => helper(
                libbpf_sys::BPF_PROG_TYPE_KPROBE,
                libbpf_sys::BPF_FUNC_get_attach_cookie,
            ),
            Feature::XdpLoadBytes => helper(
                libbpf_sys::BPF_PROG_TYPE_XDP,
                libbpf_sys::BPF_FUNC_xdp_load_bytes,
            ),
            Feature::SockLenTracepoints => {
                match (
                    btf_tracepoint("sock_send_length"),
                    btf_tracepoint("sock_recv_length"),
                ) {
                    (Presence::Yes, Presence::Yes) => Presence::Yes,
                    (Presence::Unknown(e), _) | (_, Presence::Unknown(e)) => Presence::Unknown(e),
                    _ => Presence::No,
                }
            }
        }
    }
}

const BTF_PATH: &str = "/sys/kernel/btf/vmlinux";

fn presence(yes: bool) -> Presence {
    if yes {
        Presence::Yes
    } else {
        Presence::No
    }
}

/// Why a probe says nothing without privileges.
pub const DENIED: &str = "permission denied: probing the kernel needs CAP_BPF (run as root)";

/// Whether this process may create maps and load programs (CAP_BPF, or
/// CAP_SYS_ADMIN in its place). Without, libbpf's probes answer "not
/// supported" for everything, which is about the process, not the kernel.
pub fn may_load_bpf() -> bool {
    let eff = crate::caps::effective();
    eff.contains(crate::caps::Cap::BPF) || eff.contains(crate::caps::Cap::SYS_ADMIN)
}

/// libbpf's probe result: 1 supported, 0 not (or, unprivileged, not
/// allowed to tell), negative errno when the probe could not run.
pub fn from_rc(rc: i32) -> Presence {
    match rc {
        1 => Presence::Yes,
        _ if rc <= 0 && !may_load_bpf() => Presence::Unknown(DENIED.into()),
        0 => Presence::No,
        e => Presence::Unknown(std::io::Error::from_raw_os_error(-e).to_string()),
    }
}

/// Whether the kernel runs BPF programs of `prog_type`.
pub fn prog_type(prog_type: libbpf_sys::bpf_prog_type) -> Presence {
    // SAFETY: plain FFI call with a NULL opts pointer, which libbpf accepts.
    from_rc(unsafe { libbpf_sys::libbpf_probe_bpf_prog_type(prog_type, std::ptr::null()) })
}

fn map_type(map_type: libbpf_sys::bpf_map_type) -> Presence {
    // SAFETY: plain FFI call with a NULL opts pointer, which libbpf accepts.
    from_rc(unsafe { libbpf_sys::libbpf_probe_bpf_map_type(map_type, std::ptr::null()) })
}

fn helper(prog_type: libbpf_sys::bpf_prog_type, helper: libbpf_sys::bpf_func_id) -> Presence {
    // SAFETY: plain FFI call with a NULL opts pointer, which libbpf accepts.
    from_rc(unsafe { libbpf_sys::libbpf_probe_bpf_helper(prog_type, helper, std::ptr::null()) })
}

/// Whether vmlinux BTF describes the tracepoint `name` (the
/// `btf_trace_<name>` typedef a `tp_btf/<name>` program attaches by).
pub fn btf_tracepoint(name: &str) -> Presence {
    if !std::path::Path::new(BTF_PATH).exists() {
        return Presence::No;
    }
    match libbpf_rs::btf::Btf::from_vmlinux() {
        Ok(btf) => presence(
            btf.type_by_name::<libbpf_rs::btf::types::Typedef<'_>>(&format!("btf_trace_{name}"))
                .is_some(),
        ),
        Err(e) => Presence::Unknown(e.to_string()),
    }
}

/// The running kernel's release (`uname -r`).
pub fn release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Fail with [`BpfError::KernelFeature`] naming the first feature of
/// `features` this kernel lacks; `what` is the command or capture that
/// needs them. Features whose probe could not run are let through: the
/// load itself then decides (and reports permission problems as such).
pub fn require(what: &'static str, features: &[Feature]) -> Result<(), BpfError> {
    for &f in features {
        if f.presence() == Presence::No {
            return Err(BpfError::KernelFeature {
                what,
                feature: f.name(),
                since: f.since(),
                release: release(),
            });
        }
    }
    Ok(())
}

/// What `hdrtap http` needs (the TLS uprobes live in the same object).
pub const HTTP_NEEDS: &[Feature] = &[
    Feature::Btf,
    Feature::RingBuf,
    Feature::BpfLoop,
    Feature::TaskPtRegs,
    Feature::TaskStorage,
    Feature::AttachCookie,
];

/// What `hdrtap packets` needs (every hook is in one object).
pub const PACKETS_NEEDS: &[Feature] = &[
    Feature::Btf,
    Feature::RingBuf,
    Feature::BpfLoop,
    Feature::XdpLoadBytes,
];
