//! The packet capture object (`bpf/net/packets.bpf.c`): tc, XDP and
//! socket-filter programs feeding one ring buffer, plus the tracing programs
//! that remember which process owns a socket.
//!
//! Everything attached here goes away when the [`PacketProbe`] is dropped:
//! TCX and XDP attachments are BPF links held as file descriptors (the kernel
//! removes them when the last descriptor closes, so even SIGKILL leaves
//! nothing behind); socket filters die with their AF_PACKET sockets; clsact
//! filters (kernels before 6.6, or `TcMode::Clsact`) are detached by `Drop`,
//! and the clsact qdisc is destroyed when hdrtap created it; if hdrtap is
//! killed first, a helper process does it (`crate::reaper`).
use std::ffi::CString;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use hdrtap_abi as abi;
use libbpf_rs::libbpf_sys;
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{
    Link, MapCore, MapFlags, OpenObject, RingBuffer, TcHook, TcHookBuilder, TC_EGRESS, TC_INGRESS,
};

use crate::packets_skel::{PacketsSkel, PacketsSkelBuilder};
use crate::BpfError;

/// Number of packet counters (see `enum hdrtap_pkt_counter`).
pub const PACKET_COUNTERS: usize = abi::HDRTAP_PCTR_MAX as usize;

/// How tc programs are attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcMode {
    /// TCX where the kernel has it (>= 6.6), clsact otherwise.
    Auto,
    /// TCX bpf_link only.
    Tcx,
    /// A clsact qdisc and direct-action filters (netlink).
    Clsact,
}

/// What an attachment turned out to be, for the start-up line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attached {
    /// TCX link(s).
    Tcx,
    /// clsact filters; `created_qdisc` when hdrtap added the qdisc.
    Clsact { created_qdisc: bool },
    /// XDP in the driver (native mode).
    XdpNative,
    /// XDP in the generic (skb) path.
    XdpGeneric,
    /// An AF_PACKET socket with the filter.
    Socket,
}

impl Attached {
    /// Short description, e.g. `tcx`, `xdp generic`.
    pub fn describe(self) -> &'static str {
        match self {
            Attached::Tcx => "tcx",
            Attached::Clsact { .. } => "clsact",
            Attached::XdpNative => "xdp native",
            Attached::XdpGeneric => "xdp generic",
            Attached::Socket => "af_packet socket filter",
        }
    }
}

/// Which directions to capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Directions {
    pub ingress: bool,
    pub egress: bool,
}

impl Directions {
    pub const BOTH: Directions = Directions {
        ingress: true,
        egress: true,
    };
    pub const IN: Directions = Directions {
        ingress: true,
        egress: false,
    };
    pub const OUT: Directions = Directions {
        ingress: false,
        egress: true,
    };
    pub const NONE: Directions = Directions {
        ingress: false,
        egress: false,
    };

    /// Every direction either of `self` and `other` captures.
    pub fn union(self, other: Directions) -> Directions {
        Directions {
            ingress: self.ingress || other.ingress,
            egress: self.egress || other.egress,
        }
    }

    fn mask(self) -> u8 {
        (u8::from(self.ingress) << abi::HDRTAP_PKT_IN)
            | (u8::from(self.egress) << abi::HDRTAP_PKT_OUT)
    }
}

/// What the kernel side should capture.
#[derive(Debug, Clone)]
pub struct PacketOptions {
    /// Bytes copied from the start of each packet (1..=HDRTAP_PKT_SNAPLEN_MAX).
    pub snaplen: u32,
    /// Keep 1 in `sample` accepted packets (1 = all).
    pub sample: u32,
    pub directions: Directions,
    /// Attribute packets to processes (loads tracing programs).
    pub owners: bool,
    /// Attribute them through the syscall fallback even where the socket
    /// tracepoints exist (tests of the fallback on new kernels).
    pub owner_fallback: bool,
    /// Ring-buffer size in bytes (a power of two, multiple of the page size).
    pub ring_bytes: u32,
    /// `hdrtap http --source packets`: only TCP segments with payload,
    /// SYN, FIN or RST, copied whole up to `snaplen`
    /// (1..=HDRTAP_PKT_L7_SNAPLEN_MAX), for the reassembler.
    pub l7: bool,
}

impl Default for PacketOptions {
    fn default() -> Self {
        PacketOptions {
            snaplen: abi::HDRTAP_PKT_SNAPLEN_DEFAULT,
            sample: 1,
            directions: Directions::BOTH,
            owners: true,
            owner_fallback: false,
            ring_bytes: 16 << 20,
            l7: false,
        }
    }
}

/// A network interface, from /sys/class/net.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub index: u32,
    /// ARPHRD_* type (1 Ethernet, 772 loopback, 65534 none, ...).
    pub arphrd: u16,
    /// IFF_UP is set.
    pub up: bool,
}

impl Interface {
    /// How packets on this interface start, or None when hdrtap cannot
    /// decode its link layer.
    pub fn link(&self) -> Option<u8> {
        match self.arphrd {
            1 | 772 => Some(abi::HDRTAP_LINK_ETHER as u8), // ARPHRD_ETHER, ARPHRD_LOOPBACK
            519 | 65534 => Some(abi::HDRTAP_LINK_RAW_IP as u8), // ARPHRD_RAWIP, ARPHRD_NONE
            _ => None,
        }
    }

    /// A loopback interface (ARPHRD_LOOPBACK): every packet on it is sent
    /// and received by this host, so tc and AF_PACKET see it twice.
    pub fn is_loopback(&self) -> bool {
        self.arphrd == 772
    }
}

/// Every network interface of this network namespace, by index.
pub fn interfaces() -> std::io::Result<Vec<Interface>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/sys/class/net")? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let dir = entry.path();
        let read = |f: &str| {
            std::fs::read_to_string(dir.join(f))
                .unwrap_or_default()
                .trim()
                .to_string()
        };
        let Ok(index) = read("ifindex").parse::<u32>() else {
            continue;
        };
        let arphrd = read("type").parse::<u16>().unwrap_or(0);
        let flags = u32::from_str_radix(read("flags").trim_start_matches("0x"), 16).unwrap_or(0);
        out.push(Interface {
            name,
            index,
            arphrd,
            up: flags & 1 != 0,
        });
    }
    out.sort_by_key(|i| i.index);
    Ok(out)
}

/// One attachment; dropping it detaches.
enum Attachment {
    /// A BPF link (TCX or XDP) held by its descriptor.
    Link(#[allow(dead_code)] OwnedFd),
    /// A libbpf link (tracing programs).
    LibbpfLink(#[allow(dead_code)] Link),
    /// A clsact filter, detached by hand; `reaper` removes it if hdrtap
    /// dies first (dropped after the detach, see `crate::reaper`).
    Clsact {
        hook: TcHook,
        destroy_qdisc: bool,
        #[allow(dead_code)]
        reaper: Option<crate::reaper::Reaper>,
    },
    /// An AF_PACKET socket with the program attached.
    Socket(#[allow(dead_code)] OwnedFd),
}

impl Drop for Attachment {
    fn drop(&mut self) {
        if let Attachment::Clsact {
            hook,
            destroy_qdisc,
            ..
        } = self
        {
            if let Err(e) = hook.detach() {
                tracing::warn!("detaching a tc filter failed: {e}");
            }
            if *destroy_qdisc {
                let mut both = *hook;
                both.attach_point(TC_INGRESS | TC_EGRESS);
                if let Err(e) = both.destroy() {
                    tracing::warn!("removing the clsact qdisc hdrtap added failed: {e}");
                }
            }
        }
    }
}

/// How packets are attributed to processes (see packets.bpf.c, "owners").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerMode {
    /// From every send and receive of any socket (BTF tracepoints
    /// sock_send_length/sock_recv_length) and from connect()/listen().
    SockTracepoints,
    /// The fallback for kernels without those tracepoints: connect() and
    /// listen(), plus the exits of accept/accept4 and of the socket-only
    /// data calls (sendto, recvfrom, sendmsg, recvmsg).
    Syscalls,
    /// No attribution (`--no-process`, or neither way loads).
    Off,
}

impl OwnerMode {
    /// For start-up lines and doctor.
    pub fn describe(self) -> &'static str {
        match self {
            OwnerMode::SockTracepoints => "process attribution from socket tracepoints",
            OwnerMode::Syscalls => {
                "process attribution from syscalls (fallback: this kernel has no sock_send_length/sock_recv_length tracepoints)"
            }
            OwnerMode::Off => "no process attribution",
        }
    }
}

/// The loaded packet programs and what they are attached to.
pub struct PacketProbe {
    // Attachments first: they must go before the programs they refer to.
    attachments: Vec<Attachment>,
    skel: PacketsSkel<'static>,
    owners: OwnerMode,
}

impl PacketProbe {
    /// Open and load the programs; nothing is attached yet.
    pub fn load(opts: &PacketOptions) -> Result<Self, BpfError> {
        if !Path::new("/sys/kernel/btf/vmlinux").exists() {
            return Err(BpfError::NoBtf);
        }
        validate(opts)?;
        crate::kernel::require("hdrtap packets", crate::kernel::PACKETS_NEEDS)?;
        if !opts.owners {
            return Self::load_with(opts, OwnerMode::Off);
        }
        let mut modes = Vec::with_capacity(3);
        if !opts.owner_fallback
            && crate::kernel::Feature::SockLenTracepoints.presence() != crate::kernel::Presence::No
        {
            modes.push(OwnerMode::SockTracepoints);
        }
        modes.push(OwnerMode::Syscalls);
        let mut last = None;
        for mode in modes {
            match Self::load_with(opts, mode) {
                Ok(p) => {
                    if let Some(e) = last {
                        tracing::debug!("process attribution from socket tracepoints failed ({e}); using the syscall fallback");
                    }
                    return Ok(p);
                }
                Err(e @ BpfError::Permission) => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        // Capture works without attribution.
        if let Some(e) = last {
            tracing::warn!("process attribution unavailable ({e}); packets will have no pid/comm");
        }
        Self::load_with(opts, OwnerMode::Off)
    }

    fn load_with(opts: &PacketOptions, owners: OwnerMode) -> Result<Self, BpfError> {
        if owners == OwnerMode::Syscalls {
            // Classic tracepoints attach through tracefs.
            crate::ensure_tracefs()?;
        }
        // See HttpProbe::load: the object storage lives as long as the process.
        let storage: &'static mut MaybeUninit<OpenObject> =
            Box::leak(Box::new(MaybeUninit::uninit()));
        let mut open = PacketsSkelBuilder::default()
            .open(storage)
            .map_err(|e| BpfError::load("packets", e))?;
        {
            let ro = open
                .maps
                .rodata_data
                .as_deref_mut()
                .ok_or_else(|| BpfError::Invalid("packets object has no .rodata".into()))?;
            ro.snaplen = opts.snaplen;
            ro.l7_mode = u8::from(opts.l7);
            ro.sample_n = opts.sample;
            ro.dir_mask = opts.directions.mask();
            ro.owner_on = u8::from(owners != OwnerMode::Off);
            ro.owner_sys = u8::from(owners == OwnerMode::Syscalls);
            ro.wakeup_bytes = crate::ring::wakeup_bytes(opts.ring_bytes);
        }
        let sock_tps = owners == OwnerMode::SockTracepoints;
        let sys = owners == OwnerMode::Syscalls;
        open.progs.owner_send.set_autoload(sock_tps);
        open.progs.owner_recv.set_autoload(sock_tps);
        open.progs
            .owner_state
            .set_autoload(owners != OwnerMode::Off);
        for prog in [
            &mut open.progs.owner_sys_accept,
            &mut open.progs.owner_sys_accept4,
            &mut open.progs.owner_sys_sendto,
            &mut open.progs.owner_sys_recvfrom,
            &mut open.progs.owner_sys_sendmsg,
            &mut open.progs.owner_sys_recvmsg,
        ] {
            prog.set_autoload(sys);
        }
        open.maps
            .events
            .set_max_entries(opts.ring_bytes)
            .map_err(|source| BpfError::Map {
                map: "events",
                source,
            })?;
        // A verifier rejection is EACCES too: only root-ness decides Permission.
        let skel = open.load().map_err(|e| {
            if crate::is_permission(&e) && crate::sys::euid() != 0 {
                BpfError::Permission
            } else {
                BpfError::load("packets", e)
            }
        })?;
        let mut probe = PacketProbe {
            attachments: Vec::new(),
            skel,
            owners,
        };
        probe.attach_owners()?;
        Ok(probe)
    }

    fn attach_owners(&mut self) -> Result<(), BpfError> {
        let p = &self.skel.progs;
        let progs = match self.owners {
            OwnerMode::Off => vec![],
            OwnerMode::SockTracepoints => vec![&p.owner_send, &p.owner_recv, &p.owner_state],
            OwnerMode::Syscalls => vec![
                &p.owner_state,
                &p.owner_sys_accept,
                &p.owner_sys_accept4,
                &p.owner_sys_sendto,
                &p.owner_sys_recvfrom,
                &p.owner_sys_sendmsg,
                &p.owner_sys_recvmsg,
            ],
        };
        for prog in progs {
            let link = prog.attach().map_err(|source| BpfError::Attach {
                program: prog.name().to_string_lossy().into_owned(),
                section: prog.section().to_string_lossy().into_owned(),
                source,
            })?;
            self.attachments.push(Attachment::LibbpfLink(link));
        }
        Ok(())
    }

    /// Whether and how packets are attributed to processes.
    pub fn owners(&self) -> OwnerMode {
        self.owners
    }

    /// Install a compiled filter program: exactly HDRTAP_PF_PROG_SIZE bytes
    /// (see `hdrtap_abi::encode_pf_prog`). Takes effect for the next packet.
    pub fn set_filter(&self, prog: &[u8]) -> Result<(), BpfError> {
        if prog.len() != abi::HDRTAP_PF_PROG_SIZE as usize {
            return Err(BpfError::Invalid(format!(
                "filter program is {} bytes, expected {}",
                prog.len(),
                abi::HDRTAP_PF_PROG_SIZE
            )));
        }
        self.skel
            .maps
            .pf_prog
            .update(&0u32.to_ne_bytes(), prog, MapFlags::ANY)
            .map_err(|source| BpfError::Map {
                map: "pf_prog",
                source,
            })
    }

    /// Tell the programs how packets on `ifindex` start (non-Ethernet links).
    pub fn set_link(&self, ifindex: u32, link: u8) -> Result<(), BpfError> {
        if u32::from(link) == abi::HDRTAP_LINK_ETHER {
            return Ok(());
        }
        self.skel
            .maps
            .links
            .update(&ifindex.to_ne_bytes(), &[link], MapFlags::ANY)
            .map_err(|source| BpfError::Map {
                map: "links",
                source,
            })
    }

    /// Attach the tc programs of the wanted directions to `ifindex`.
    pub fn attach_tc(
        &mut self,
        ifindex: u32,
        dirs: Directions,
        mode: TcMode,
    ) -> Result<Attached, BpfError> {
        if mode != TcMode::Clsact {
            match self.attach_tcx(ifindex, dirs) {
                Ok(()) => return Ok(Attached::Tcx),
                Err(e) if mode == TcMode::Tcx => return Err(e),
                Err(e) => tracing::debug!("TCX attach failed ({e}); falling back to clsact"),
            }
        }
        self.attach_clsact(ifindex, dirs)
    }

    fn attach_tcx(&mut self, ifindex: u32, dirs: Directions) -> Result<(), BpfError> {
        let mut links = Vec::new();
        for (wanted, prog, attach_type) in [
            (
                dirs.ingress,
                &self.skel.progs.tc_ingress,
                libbpf_sys::BPF_TCX_INGRESS,
            ),
            (
                dirs.egress,
                &self.skel.progs.tc_egress,
                libbpf_sys::BPF_TCX_EGRESS,
            ),
        ] {
            if !wanted {
                continue;
            }
            let fd = link_create(prog.as_fd().as_raw_fd(), ifindex, attach_type, 0)
                .map_err(|e| attach_error(prog.name().to_string_lossy().as_ref(), "tcx", e))?;
            links.push(Attachment::Link(fd));
        }
        self.attachments.extend(links);
        Ok(())
    }

    fn attach_clsact(&mut self, ifindex: u32, dirs: Directions) -> Result<Attached, BpfError> {
        let created = create_clsact(ifindex)?;
        let mut result = Ok(Attached::Clsact {
            created_qdisc: created,
        });
        let mut hooks = Vec::new();
        let mut filters = Vec::new();
        for (wanted, prog, point) in [
            (dirs.ingress, &self.skel.progs.tc_ingress, TC_INGRESS),
            (dirs.egress, &self.skel.progs.tc_egress, TC_EGRESS),
        ] {
            if !wanted {
                continue;
            }
            let mut hook = TcHookBuilder::new(prog.as_fd())
                .ifindex(ifindex as i32)
                .replace(true)
                .handle(CLSACT_HANDLE)
                .priority(CLSACT_PRIORITY)
                .hook(point);
            match hook.attach() {
                Ok(h) => {
                    hooks.push(h);
                    let mut f = crate::reaper::Filter {
                        ifindex: ifindex as i32,
                        point,
                        handle: CLSACT_HANDLE,
                        priority: CLSACT_PRIORITY,
                        prog_id: 0,
                    };
                    if let Some(id) = f.query() {
                        f.prog_id = id;
                        filters.push(f);
                    }
                }
                Err(source) => {
                    result = Err(if crate::is_permission(&source) {
                        BpfError::Permission
                    } else {
                        BpfError::Attach {
                            program: prog.name().to_string_lossy().into_owned(),
                            section: "tc (clsact)".into(),
                            source,
                        }
                    });
                    break;
                }
            }
        }
        // The qdisc goes with the last filter hdrtap attached to it, and so
        // does the helper that removes them all should hdrtap be killed.
        let n = hooks.len();
        let mut reaper = None;
        if n > 0 {
            match crate::reaper::spawn(&filters, created.then_some(ifindex as i32)) {
                Ok(r) => reaper = Some(r),
                Err(e) => tracing::warn!(
                    "cannot start the helper that removes the tc filters if hdrtap is killed: {e}"
                ),
            }
        }
        for (i, hook) in hooks.into_iter().enumerate() {
            let last = i + 1 == n;
            self.attachments.push(Attachment::Clsact {
                hook,
                destroy_qdisc: created && last,
                reaper: if last { reaper.take() } else { None },
            });
        }
        if n == 0 && created {
            let mut hook = TcHookBuilder::new(self.skel.progs.tc_ingress.as_fd())
                .ifindex(ifindex as i32)
                .hook(TC_INGRESS | TC_EGRESS);
            let _ = hook.destroy();
        }
        result
    }

    /// Attach the XDP program to `ifindex`: native mode if the driver can,
    /// generic mode otherwise.
    pub fn attach_xdp(&mut self, ifindex: u32) -> Result<Attached, BpfError> {
        let prog = &self.skel.progs.xdp_ingress;
        let fd = prog.as_fd().as_raw_fd();
        let (link, mode) = match link_create(
            fd,
            ifindex,
            libbpf_sys::BPF_XDP,
            libbpf_sys::XDP_FLAGS_DRV_MODE,
        ) {
            Ok(l) => (l, Attached::XdpNative),
            Err(native) => {
                tracing::debug!(
                    "native XDP on ifindex {ifindex} failed ({native}); trying generic mode"
                );
                let l = link_create(
                    fd,
                    ifindex,
                    libbpf_sys::BPF_XDP,
                    libbpf_sys::XDP_FLAGS_SKB_MODE,
                )
                .map_err(|e| attach_error("xdp_ingress", "xdp", e))?;
                (l, Attached::XdpGeneric)
            }
        };
        self.attachments.push(Attachment::Link(link));
        Ok(mode)
    }

    /// Open an AF_PACKET socket bound to `ifindex` with the socket filter.
    /// With `dirs` ingress only, the kernel does not pass the socket the
    /// packets this host sends (PACKET_IGNORE_OUTGOING), so the filter does
    /// not even run for them; other choices are made by the program's
    /// direction mask.
    pub fn attach_socket(&mut self, ifindex: u32, dirs: Directions) -> Result<Attached, BpfError> {
        let prog_fd = self.skel.progs.sock_filter.as_fd().as_raw_fd();
        let sock = packet_socket(ifindex, prog_fd, dirs == Directions::IN)
            .map_err(|e| attach_error("sock_filter", "socket", e))?;
        self.attachments.push(Attachment::Socket(sock));
        Ok(Attached::Socket)
    }

    /// Number of attachments (links, filters, sockets).
    pub fn attached(&self) -> usize {
        self.attachments.len()
    }

    /// A reader of the event ring buffer; `cb` gets each raw event.
    pub fn ring_buffer<'a, F>(&'a self, cb: F) -> Result<RingBuffer<'a>, BpfError>
    where
        F: FnMut(&[u8]) -> i32 + 'a,
    {
        crate::ring::events_reader(&self.skel.maps.events, cb)
    }

    /// Kernel counters summed over CPUs, indexed by `enum hdrtap_pkt_counter`.
    pub fn counters(&self) -> Result<[u64; PACKET_COUNTERS], BpfError> {
        crate::ring::sum_counters(&self.skel.maps.counters)
    }

    /// Wait for events and consume a batch, as [`crate::HttpProbe::poll`].
    pub fn poll(rb: &RingBuffer<'_>, timeout: Duration) -> Result<(), BpfError> {
        crate::ring::poll(rb, timeout)
    }

    /// Run one program over `data` with BPF_PROG_TEST_RUN (tests): returns
    /// the program's return value. tc and socket programs get an skb, XDP a
    /// frame; `ctx` optionally sets the `__sk_buff`/`xdp_md` fields.
    // ProgramInput is non-exhaustive: it cannot be built with a literal.
    #[allow(clippy::field_reassign_with_default)]
    pub fn test_run(
        &self,
        prog: TestProg,
        data: &[u8],
        ctx: Option<&mut [u8]>,
    ) -> Result<u32, BpfError> {
        let p = match prog {
            TestProg::TcIngress => &self.skel.progs.tc_ingress,
            TestProg::TcEgress => &self.skel.progs.tc_egress,
            TestProg::Xdp => &self.skel.progs.xdp_ingress,
            TestProg::Socket => &self.skel.progs.sock_filter,
        };
        let mut input = libbpf_rs::ProgramInput::default();
        input.data_in = Some(data);
        input.context_in = ctx;
        input.repeat = 1;
        p.test_run(input)
            .map(|o| o.return_value)
            .map_err(|source| BpfError::Map {
                map: "test_run",
                source,
            })
    }
}

/// Programs [`PacketProbe::test_run`] can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestProg {
    TcIngress,
    TcEgress,
    Xdp,
    Socket,
}

fn attach_error(program: &str, section: &str, e: std::io::Error) -> BpfError {
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        return BpfError::Permission;
    }
    BpfError::Attach {
        program: program.to_string(),
        section: section.to_string(),
        source: e.into(),
    }
}

/// Handle ("HT") and priority of hdrtap's clsact filters.
const CLSACT_HANDLE: u32 = 0x4854;
const CLSACT_PRIORITY: u32 = 1;

/// bpf_link_create() for TCX and XDP links; the link lives while the fd does.
/// By hand because libbpf-rs 0.27 has no TCX attach, and its `attach_xdp`
/// takes no flags (generic mode is `XDP_FLAGS_SKB_MODE`).
fn link_create(
    prog_fd: i32,
    ifindex: u32,
    attach_type: u32,
    flags: u32,
) -> std::io::Result<OwnedFd> {
    // SAFETY: bpf_link_create_opts is plain old data; all-zero is its
    // documented default, and sz tells libbpf which fields we know.
    let mut opts: libbpf_sys::bpf_link_create_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<libbpf_sys::bpf_link_create_opts>() as libbpf_sys::size_t;
    opts.flags = flags;
    // SAFETY: prog_fd is a loaded program's descriptor that outlives the
    // call; opts is a valid, initialized struct for the call's duration.
    let fd = unsafe { libbpf_sys::bpf_link_create(prog_fd, ifindex as i32, attach_type, &opts) };
    if fd < 0 {
        return Err(std::io::Error::from_raw_os_error(-fd));
    }
    // SAFETY: bpf_link_create returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Add a clsact qdisc to `ifindex`; false when one was already there.
/// By hand because libbpf-rs's `TcHook::create` returns Ok for a qdisc
/// that already existed, and hdrtap must not remove one it did not add
/// (the filters themselves go through `TcHook`).
fn create_clsact(ifindex: u32) -> Result<bool, BpfError> {
    // SAFETY: bpf_tc_hook is plain old data; zero is its default.
    let mut hook: libbpf_sys::bpf_tc_hook = unsafe { std::mem::zeroed() };
    hook.sz = std::mem::size_of::<libbpf_sys::bpf_tc_hook>() as libbpf_sys::size_t;
    hook.ifindex = ifindex as i32;
    hook.attach_point = libbpf_sys::BPF_TC_INGRESS | libbpf_sys::BPF_TC_EGRESS;
    // SAFETY: hook is a valid, initialized struct for the duration of the call.
    let rc = unsafe { libbpf_sys::bpf_tc_hook_create(&mut hook) };
    match rc {
        0 => Ok(true),
        e if e == -libc::EEXIST => Ok(false),
        e if e == -libc::EPERM || e == -libc::EACCES => Err(BpfError::Permission),
        e => Err(BpfError::Attach {
            program: "tc".into(),
            section: "clsact qdisc".into(),
            source: std::io::Error::from_raw_os_error(-e).into(),
        }),
    }
}

/// An AF_PACKET raw socket for every protocol, bound to `ifindex`, with the
/// BPF program `prog_fd` attached (SO_ATTACH_BPF). The program returns 0,
/// so nothing is ever queued on the socket.
fn packet_socket(ifindex: u32, prog_fd: i32, ignore_outgoing: bool) -> std::io::Result<OwnedFd> {
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket(2) call.
    let raw = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            i32::from(proto),
        )
    };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: raw is a new descriptor that nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    if ignore_outgoing {
        let one: libc::c_int = 1;
        // SAFETY: the option value is a valid c_int for the length given.
        let rc = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_IGNORE_OUTGOING,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    // Attach before binding, so no packet reaches the socket unfiltered.
    // SAFETY: the option value is a valid c_int for the length given.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_BPF,
            (&prog_fd as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: sockaddr_ll is plain old data; zero is a valid starting value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: sll is a valid sockaddr_ll for the length given.
    let rc = unsafe {
        libc::bind(
            sock.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(sock)
}

/// The index of interface `name`, or None.
pub fn if_index(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: c is a valid NUL-terminated string for the call's duration.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

fn validate(opts: &PacketOptions) -> Result<(), BpfError> {
    let page = 4096u32;
    if !opts.ring_bytes.is_power_of_two() || opts.ring_bytes < page {
        return Err(BpfError::Invalid(format!(
            "ring buffer size {} is not a power of two of at least {page} bytes",
            opts.ring_bytes
        )));
    }
    let max = if opts.l7 {
        abi::HDRTAP_PKT_L7_SNAPLEN_MAX
    } else {
        abi::HDRTAP_PKT_SNAPLEN_MAX
    };
    if opts.snaplen == 0 || opts.snaplen > max {
        return Err(BpfError::Invalid(format!(
            "snaplen {} must be between 1 and {max}",
            opts.snaplen
        )));
    }
    if opts.sample == 0 {
        return Err(BpfError::Invalid("sample rate must be at least 1".into()));
    }
    if !opts.directions.ingress && !opts.directions.egress {
        return Err(BpfError::Invalid("no direction to capture".into()));
    }
    Ok(())
}
