//! `hdrtap http --source packets|both`: the packet capture in its L7 mode
//! (TCP segments with payload, copied whole up to the snaplen) feeding the
//! reassembler and the HTTP trackers (`hdrtap_core::wire::WireHttp`).
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use anyhow::{bail, Context};
use hdrtap_abi::{self as abi, Hook};
use hdrtap_bpf::packets::{Directions, Interface, OwnerMode, PacketOptions, PacketProbe, TcMode};
use hdrtap_bpf::{caps, sys, RingBuffer};
use hdrtap_core::filter;
use hdrtap_core::pipeline::HttpPipeline;
use hdrtap_core::sink::Record;
use hdrtap_core::wire::{WireConfig, WireCounters, WireHttp};

use super::common;
use super::packets::{attach_each, directions, pick_interfaces};
use crate::cli::WireArgs;

impl common::Feed for WireHttp {
    fn event(&mut self, raw: &[u8]) {
        WireHttp::event(self, raw);
    }
    fn panicked(&mut self) {
        self.panics += 1;
    }
}

/// The packet capture for HTTP: loaded, filtered and attached.
pub struct WireCapture {
    pub probe: PacketProbe,
    pub ifaces: Vec<Interface>,
    /// What it captures, for the start-up line.
    pub described: String,
}

/// Load and attach the L7 packet capture `w` asks for, on `ports` only
/// when there are some (`--port`).
pub fn load(w: &WireArgs, ports: &[u16], ring_bytes: u32) -> anyhow::Result<WireCapture> {
    let unmet = caps::unmet(&caps::packets_needs(w.hook), caps::effective());
    if !unmet.is_empty() {
        bail!(
            "hdrtap http --source {} needs root or these capabilities: {} (see docs/PRIVILEGES.md)",
            if w.source.syscalls() {
                "both"
            } else {
                "packets"
            },
            caps::describe_unmet(&unmet)
        );
    }
    // HTTP rides on TCP: --port and the user's expression narrow that.
    let mut expr = "tcp".to_string();
    if !ports.is_empty() {
        let ports: Vec<String> = ports.iter().map(|p| format!("port {p}")).collect();
        expr.push_str(&format!(" and ({})", ports.join(" or ")));
    }
    if !w.filter.is_empty() {
        expr.push_str(&format!(" and ({})", w.filter.join(" ")));
    }
    let program = filter::compile(&expr).map_err(|e| anyhow::anyhow!("{e}"))?;
    let ifaces = pick_interfaces(&w.interfaces)?;
    let dirs: Vec<Directions> = ifaces
        .iter()
        .map(|i| directions(w.direction, i.is_loopback()))
        .collect();
    let opts = PacketOptions {
        snaplen: w.snaplen,
        sample: 1,
        directions: dirs
            .iter()
            .copied()
            .fold(Directions::NONE, Directions::union),
        // The socket filter sees no socket: the tracing programs that note
        // sockets' owners would run on every send and receive for nothing.
        owners: w.hook == Hook::Tc,
        owner_fallback: false,
        ring_bytes,
        l7: true,
    };
    let mut probe = PacketProbe::load(&opts).context("cannot load the packet capture programs")?;
    probe
        .set_filter(&program.encode())
        .context("cannot install the filter")?;
    let (described, _) = attach_each(&mut probe, &ifaces, &dirs, w.hook, TcMode::Auto)?;
    let mut what = format!(
        "from packets on {}, reassembled; filter '{}', snaplen {}",
        described.join(", "),
        program.source,
        w.snaplen
    );
    if w.hook == Hook::Tc && probe.owners() == OwnerMode::Off {
        what.push_str(", no process attribution");
    }
    Ok(WireCapture {
        probe,
        ifaces,
        described: what,
    })
}

/// Polls of the packet ring (256 events each) per turn of the loop at most.
const POLL_BATCHES: usize = 64;

/// The capture running: its ring, and the reassembly it feeds.
pub struct WireSide<'a> {
    probe: &'a PacketProbe,
    ring: RingBuffer<'a>,
    wire: Rc<RefCell<WireHttp>>,
}

impl<'a> WireSide<'a> {
    /// `pipeline`: where the reassembled streams' records go (its own
    /// trackers; redaction and rules as the syscall path's).
    pub fn new(cap: &'a WireCapture, pipeline: HttpPipeline) -> anyhow::Result<Self> {
        let names = cap
            .ifaces
            .iter()
            .map(|i| (i.index, std::sync::Arc::from(i.name.as_str())))
            .collect();
        let lookup = Box::new(|ifindex| {
            hdrtap_bpf::packets::interfaces()
                .ok()?
                .into_iter()
                .find(|i: &Interface| i.index == ifindex)
                .map(|i| i.name)
        });
        let wire = Rc::new(RefCell::new(WireHttp::new(
            WireConfig::default(),
            pipeline,
            names,
            lookup,
        )));
        let ring = cap
            .probe
            .ring_buffer(common::ring_callback(&wire))
            .context("cannot open the packet ring buffer")?;
        Ok(WireSide {
            probe: &cap.probe,
            ring,
            wire,
        })
    }

    /// Wait up to `timeout` for packets, then read what the ring holds
    /// (up to POLL_BATCHES polls: a busy interface must not wait a turn).
    pub fn poll(&mut self, timeout: Duration) -> anyhow::Result<()> {
        PacketProbe::poll(&self.ring, timeout).context("reading the packet ring buffer")?;
        for _ in 0..POLL_BATCHES {
            if hdrtap_bpf::ring_fill(&self.ring).is_none_or(|(used, _)| used == 0) {
                break;
            }
            PacketProbe::poll(&self.ring, Duration::ZERO)
                .context("reading the packet ring buffer")?;
        }
        self.wire.borrow_mut().tick(sys::monotonic_ns());
        Ok(())
    }

    pub fn drain(&mut self, out: &mut Vec<Record>) {
        self.wire.borrow_mut().drain(out);
    }

    /// The last packets; every connection ends.
    pub fn finish(&mut self) {
        let _ = self.ring.consume();
        self.wire.borrow_mut().finish();
    }

    pub fn ring_fill(&self) -> Option<(u64, u64)> {
        hdrtap_bpf::ring_fill(&self.ring)
    }

    /// The reassembly's counters and the kernel's.
    pub fn counters(&self) -> WireCounters {
        let w = self.wire.borrow();
        let mut c = w.counters();
        match self.probe.counters() {
            Ok(k) => {
                c.wire_events_lost = k
                    .get(abi::HDRTAP_PCTR_RINGBUF_DROPS as usize)
                    .copied()
                    .unwrap_or(0);
            }
            Err(e) => tracing::warn!("cannot read the packet capture's counters: {e}"),
        }
        c.wire_undecodable += w.decode_errors;
        c
    }

    pub fn wire(&self) -> std::cell::Ref<'_, WireHttp> {
        self.wire.borrow()
    }

    pub fn panics(&self) -> u64 {
        self.wire.borrow().panics
    }
}
