//! The HTTP capture object: syscall tracepoints feeding one ring buffer.
use std::mem::MaybeUninit;
use std::time::Duration;

use hdrtap_abi as abi;
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, OpenObject, RingBuffer};

use crate::syscalls_skel::{SyscallsSkel, SyscallsSkelBuilder};
use crate::BpfError;

/// Number of kernel counters (see `enum hdrtap_counter`).
pub const COUNTERS: usize = abi::HDRTAP_CTR_MAX as usize;

/// What the kernel side should capture.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Only these process ids (tgids); empty: all.
    pub pids: Vec<u32>,
    /// Only processes with these names (comm, at most 15 bytes); empty: all.
    pub comms: Vec<String>,
    /// Only connections with one of these local or remote ports; empty: all.
    pub ports: Vec<u16>,
    /// Ring-buffer size in bytes (a power of two, multiple of the page size).
    pub ring_bytes: u32,
    /// Payload bytes copied per syscall at most.
    pub call_capture: u32,
    /// Connections tracked at once (LRU beyond that).
    pub max_conns: u32,
    /// TLS capture will be used (`crate::tls`): syscalls inside SSL calls
    /// then tie SSL objects to their sockets. Off: that check is compiled out.
    pub tls: bool,
    /// The kernel frames a response's body itself (from its Content-Length)
    /// and stops copying it when at least this many of its bytes are still
    /// to come; 0: only when userspace asks (`HttpProbe::skip_body`).
    pub kernel_body_skip: u64,
    /// Connections made in a cgroup given to [`HttpProbe::filter_cgroups_out`]
    /// are not tracked (`--container`, `--unit`).
    pub cgroup_filter: bool,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            pids: Vec::new(),
            comms: Vec::new(),
            ports: Vec::new(),
            ring_bytes: 16 << 20,
            call_capture: abi::HDRTAP_DEFAULT_CALL_CAPTURE,
            max_conns: 65536,
            tls: false,
            kernel_body_skip: u64::from(abi::HDRTAP_SKIP_BODY_MIN),
            cgroup_filter: false,
        }
    }
}

/// Loaded (and, after [`HttpProbe::attach`], attached) syscall programs.
pub struct HttpProbe {
    pub(crate) skel: SyscallsSkel<'static>,
    links: Vec<Link>,
}

fn skips_err(source: libbpf_rs::Error) -> BpfError {
    BpfError::Map {
        map: "skips",
        source,
    }
}

impl HttpProbe {
    /// Open and load the programs into the kernel, with filters set.
    pub fn load(opts: &HttpOptions) -> Result<Self, BpfError> {
        if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
            return Err(BpfError::NoBtf);
        }
        validate(opts)?;
        crate::kernel::require("hdrtap http", crate::kernel::HTTP_NEEDS)?;
        // The skeleton borrows its object storage for its whole life; the
        // probe lives until the process ends, so the few bytes are leaked.
        let storage: &'static mut MaybeUninit<OpenObject> =
            Box::leak(Box::new(MaybeUninit::uninit()));
        let mut open = SyscallsSkelBuilder::default()
            .open(storage)
            .map_err(|e| BpfError::load("syscalls", e))?;
        {
            let ro = open
                .maps
                .rodata_data
                .as_deref_mut()
                .ok_or_else(|| BpfError::Invalid("syscalls object has no .rodata".into()))?;
            ro.self_tgid = std::process::id();
            ro.filter_pid_on = u8::from(!opts.pids.is_empty());
            ro.filter_comm_on = u8::from(!opts.comms.is_empty());
            ro.filter_port_on = u8::from(!opts.ports.is_empty());
            ro.call_capture = opts.call_capture;
            // Wake the reader early only when the ring is filling up; body
            // chunks (events of RB_BIG_EVENT bytes) at a sixty-fourth.
            ro.wakeup_bytes = crate::ring::wakeup_bytes(opts.ring_bytes);
            ro.wakeup_big_bytes = u64::from(opts.ring_bytes / 64);
            ro.tls_on = u8::from(opts.tls);
            ro.body_skip_min = opts.kernel_body_skip;
            ro.filter_cgroup_on = u8::from(opts.cgroup_filter);
        }
        open.maps
            .events
            .set_max_entries(opts.ring_bytes)
            .map_err(|source| BpfError::Map {
                map: "events",
                source,
            })?;
        open.maps
            .conns
            .set_max_entries(opts.max_conns)
            .map_err(|source| BpfError::Map {
                map: "conns",
                source,
            })?;
        let cpus = libbpf_rs::num_possible_cpus().map_err(|source| BpfError::Map {
            map: "scratch",
            source,
        })?;
        // One slot per CPU for the tracepoints, one more for the TLS uprobes.
        if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
            ro.nr_cpus = cpus as u32;
        }
        open.maps
            .scratch
            .set_max_entries(2 * cpus as u32)
            .map_err(|source| BpfError::Map {
                map: "scratch",
                source,
            })?;
        let skel = open.load().map_err(|e| BpfError::load("syscalls", e))?;

        let one = [1u8];
        for pid in &opts.pids {
            skel.maps
                .filter_pids
                .update(&pid.to_ne_bytes(), &one, MapFlags::ANY)
                .map_err(|source| BpfError::Map {
                    map: "filter_pids",
                    source,
                })?;
        }
        for comm in &opts.comms {
            let mut key = [0u8; abi::HDRTAP_COMM_LEN as usize];
            let n = comm.len().min(key.len() - 1);
            key[..n].copy_from_slice(&comm.as_bytes()[..n]);
            skel.maps
                .filter_comms
                .update(&key, &one, MapFlags::ANY)
                .map_err(|source| BpfError::Map {
                    map: "filter_comms",
                    source,
                })?;
        }
        for port in &opts.ports {
            skel.maps
                .filter_ports
                .update(&port.to_ne_bytes(), &one, MapFlags::ANY)
                .map_err(|source| BpfError::Map {
                    map: "filter_ports",
                    source,
                })?;
        }
        Ok(HttpProbe {
            skel,
            links: Vec::new(),
        })
    }

    /// Attach every syscall program; on return all probes are live. The
    /// TLS programs (`tls_*`) are attached by [`crate::tls::TlsCapture`].
    pub fn attach(&mut self) -> Result<(), BpfError> {
        crate::tracefs::ensure_tracefs()?;
        for prog in self.skel.object_mut().progs_mut() {
            let program = prog.name().to_string_lossy().into_owned();
            let section = prog.section().to_string_lossy().into_owned();
            if program.starts_with(crate::tls::PROG_PREFIX) {
                continue;
            }
            match prog.attach() {
                Ok(link) => self.links.push(link),
                Err(source) if is_permission(&source) => return Err(BpfError::Permission),
                Err(source) => {
                    return Err(BpfError::Attach {
                        program,
                        section,
                        source,
                    })
                }
            }
        }
        Ok(())
    }

    /// Stop tracking connections made in these cgroups (ids that
    /// `--container`/`--unit` do not match; needs
    /// [`HttpOptions::cgroup_filter`]). Returns how many were stored: the
    /// map holds 16,384, and a cgroup not stored is simply not filtered in
    /// the kernel.
    pub fn filter_cgroups_out(&self, ids: &[u64]) -> usize {
        let one = [1u8];
        ids.iter()
            .take_while(|id| {
                self.skel
                    .maps
                    .filter_cgroups_out
                    .update(&id.to_ne_bytes(), &one, MapFlags::ANY)
                    .is_ok()
            })
            .count()
    }

    /// Number of attached programs.
    pub fn attached(&self) -> usize {
        self.links.len()
    }

    /// A reader of the event ring buffer; `cb` gets each raw event.
    /// Return 0 to go on; a negative value stops the current poll.
    pub fn ring_buffer<'a, F>(&'a self, cb: F) -> Result<RingBuffer<'a>, BpfError>
    where
        F: FnMut(&[u8]) -> i32 + 'a,
    {
        crate::ring::events_reader(&self.skel.maps.events, cb)
    }

    /// Tell the kernel that connection `conn_id`'s stream in direction
    /// `dir` is message body up to offset `until`: calls lying wholly
    /// before it are announced without their bytes (`HDRTAP_DF_SKIPPED`).
    ///
    /// An entry already at or past `until` is left alone. The kernel frames
    /// plain responses itself (syscalls.bpf.c, body_scan), so by the time a
    /// lagging consumer parses body 1's header block the kernel may have
    /// framed body 2 and stored its larger end; overwriting it with body 1's
    /// end made every later call of body 2 be copied in full until the
    /// consumer caught up (the likely cause of a CI failure where 1.5 MiB
    /// of 24 MiB of bodies were copied, against some 0.1 MiB normally).
    /// Stream offsets only grow, so a smaller value is always stale. What
    /// is left is the window between lookup and update, microseconds wide.
    pub fn skip_body(&self, conn_id: u64, dir: u32, until: u64) -> Result<(), BpfError> {
        if self.skip_until(conn_id, dir)?.is_some_and(|v| v >= until) {
            return Ok(());
        }
        self.skel
            .maps
            .skips
            .update(
                &abi::encode_skip_key(conn_id, dir),
                &until.to_ne_bytes(),
                MapFlags::ANY,
            )
            .map_err(skips_err)
    }

    /// Where the kernel now takes connection `conn_id`'s stream in `dir`
    /// to be body up to (written by [`Self::skip_body`] or by the kernel's
    /// own framing); `None`: no entry.
    pub fn skip_until(&self, conn_id: u64, dir: u32) -> Result<Option<u64>, BpfError> {
        let stored = self
            .skel
            .maps
            .skips
            .lookup(&abi::encode_skip_key(conn_id, dir), MapFlags::ANY)
            .map_err(skips_err)?;
        Ok(stored
            .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
            .map(u64::from_ne_bytes))
    }

    /// Kernel counters summed over CPUs, indexed by `enum hdrtap_counter`.
    pub fn counters(&self) -> Result<[u64; COUNTERS], BpfError> {
        crate::ring::sum_counters(&self.skel.maps.counters)
    }

    /// Wait up to `timeout` for the kernel to wake us, unless events are
    /// already waiting, then consume a batch of at most 256. Call in a loop:
    /// once awake the reader drains the ring batch by batch and sleeps only
    /// when it is empty, so records arrive at most `timeout` late (plus the
    /// time to process what came before them). The kernel wakes the reader
    /// early only when the ring is three quarters full: fewer, longer bursts
    /// of hdrtap disturb the traced programs less (see `ring.rs`).
    pub fn poll(rb: &RingBuffer<'_>, timeout: Duration) -> Result<(), BpfError> {
        crate::ring::poll(rb, timeout)
    }
}

fn is_permission(e: &libbpf_rs::Error) -> bool {
    crate::is_permission(e)
}

fn validate(opts: &HttpOptions) -> Result<(), BpfError> {
    let page = 4096u32;
    if !opts.ring_bytes.is_power_of_two() || opts.ring_bytes < page {
        return Err(BpfError::Invalid(format!(
            "ring buffer size {} is not a power of two of at least {page} bytes",
            opts.ring_bytes
        )));
    }
    if opts.call_capture == 0 || opts.call_capture > abi::HDRTAP_CALL_CAPTURE_MAX {
        return Err(BpfError::Invalid(format!(
            "capture per call {} must be between 1 and {}",
            opts.call_capture,
            abi::HDRTAP_CALL_CAPTURE_MAX
        )));
    }
    for comm in &opts.comms {
        if comm.is_empty() || comm.len() >= abi::HDRTAP_COMM_LEN as usize {
            return Err(BpfError::Invalid(format!(
                "process name {comm:?} must be 1 to {} bytes (the kernel's comm length)",
                abi::HDRTAP_COMM_LEN - 1
            )));
        }
    }
    Ok(())
}
