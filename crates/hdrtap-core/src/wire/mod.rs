//! HTTP from packets (`hdrtap http --source packets`): TCP segments a packet
//! hook copied → per-connection reassembly ([`reasm::Half`], one per
//! direction) → the byte streams, as data events, into an
//! [`HttpPipeline`] of their own — the same HTTP/1 and HTTP/2 trackers,
//! redaction and rules as the syscall path.
//!
//! A connection is keyed by interface and address pair. Its client is the
//! end that sent the SYN (or got the SYN-ACK); joined mid-stream, the end
//! with the higher port (an ephemeral one). Records are written from the
//! client's end: `local` is the client, `role` is `client` unless the
//! bytes say otherwise, and the process is the one the kernel found for a
//! packet's socket (local traffic only).
pub mod reasm;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use etherparse::{LaxNetSlice, LaxSlicedPacket, TransportSlice};
use hdrtap_abi::{self as abi, CloseEvent, DataEvent, Direction, KernelRole, PacketEvent, Tuple};
use serde::Serialize;

use crate::pipeline::{HttpPipeline, NameLookup};
use crate::record::{flag, HttpKind, HttpRecord};
use crate::sink::Record;
use reasm::{Chunk, Half, Segment};

/// Limits of the reassembly.
#[derive(Debug, Clone)]
pub struct WireConfig {
    /// Connections tracked at most; the longest idle one goes first.
    pub max_flows: usize,
    /// Captured bytes held behind holes, all connections together; past
    /// it the connection that grew gives up its holes.
    pub max_held_bytes: usize,
    /// A hole not filled within this long (packet time) is given up.
    pub hole_timeout_ns: u64,
    /// A connection with no packet for this long is ended.
    pub idle_timeout_ns: u64,
}

impl Default for WireConfig {
    fn default() -> Self {
        WireConfig {
            max_flows: 16_384,
            max_held_bytes: 64 << 20,
            hole_timeout_ns: 2_000_000_000,
            idle_timeout_ns: 300_000_000_000,
        }
    }
}

/// What the reassembly counted (JSON stats with the `wire_` prefix).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WireCounters {
    /// Packet events read, and those that were not TCP over IP hdrtap
    /// could slice (cut inside the headers, or undecodable).
    pub wire_packets: u64,
    pub wire_undecodable: u64,
    /// Packet events the kernel lost to a full ring buffer (their bytes
    /// show as holes).
    pub wire_events_lost: u64,
    /// TCP connections followed since start, open now, ended for lack of
    /// room (`max_flows`) and for idleness.
    pub wire_conns: u64,
    pub wire_conns_open: u64,
    pub wire_conns_evicted: u64,
    pub wire_conns_idle: u64,
    /// Segments that came ahead of a hole.
    pub wire_out_of_order: u64,
    /// Payload bytes seen again (retransmissions, duplicates), dropped.
    pub wire_duplicate_bytes: u64,
    /// Overlapping bytes that differed from the first copy: the first copy
    /// is kept and the record flagged `conflict`.
    pub wire_conflict_bytes: u64,
    /// Holes given up on (never filled, over the memory budget, or at the
    /// end), and the payload bytes lost in them.
    pub wire_gaps: u64,
    pub wire_lost_bytes: u64,
    /// Payload bytes on the wire past the snaplen (not captured).
    pub wire_snapped_bytes: u64,
    /// Bytes held behind holes now (gauge).
    pub wire_held_bytes: u64,
}

impl WireCounters {
    /// The summary line at exit.
    pub fn summary(&self) -> String {
        format!(
            "hdrtap: packets: {} TCP segments read ({} not decodable, {} lost to a full ring buffer), {} connections ({} evicted, {} idle); {} out of order, {} duplicate bytes, {} conflicting bytes, {} holes given up ({} bytes lost), {} bytes past the snaplen",
            self.wire_packets,
            self.wire_undecodable,
            self.wire_events_lost,
            self.wire_conns,
            self.wire_conns_evicted,
            self.wire_conns_idle,
            self.wire_out_of_order,
            self.wire_duplicate_bytes,
            self.wire_conflict_bytes,
            self.wire_gaps,
            self.wire_lost_bytes,
            self.wire_snapped_bytes,
        )
    }

    /// Whether anything was lost.
    pub fn any_loss(&self) -> bool {
        self.wire_undecodable
            + self.wire_events_lost
            + self.wire_lost_bytes
            + self.wire_snapped_bytes
            > 0
    }
}

/// One end of a connection.
type End = (IpAddr, u16);

/// A connection on one interface, its ends in a fixed order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FlowKey {
    ifindex: u32,
    lo: End,
    hi: End,
}

impl FlowKey {
    fn of(ifindex: u32, a: End, b: End) -> Self {
        if a <= b {
            FlowKey {
                ifindex,
                lo: a,
                hi: b,
            }
        } else {
            FlowKey {
                ifindex,
                lo: b,
                hi: a,
            }
        }
    }
}

#[derive(Debug)]
struct Flow {
    id: u64,
    client: End,
    server: End,
    /// 0: client → server (egress, as from the client), 1: the answers.
    halves: [Half; 2],
    last_ts: u64,
    /// The socket cookie of the local end, when a packet's socket was known.
    cookie: u64,
}

impl Flow {
    /// What every data event of this connection at `ts_ns` shares.
    fn base(&self, ts_ns: u64, owner: Option<Owner>) -> EventBase {
        EventBase {
            conn_id: self.id,
            ts_ns,
            owner,
            cookie: self.cookie,
            tuple: Tuple {
                local_ip: self.client.0,
                local_port: self.client.1,
                remote_ip: self.server.0,
                remote_port: self.server.1,
            },
        }
    }
}

/// The process a packet's socket belongs to, as the kernel found it.
#[derive(Debug, Clone, Copy)]
struct Owner {
    tgid: u32,
    tid: u32,
    cgroup_id: u64,
    comm: [u8; abi::HDRTAP_COMM_LEN as usize],
}

/// One TCP segment sliced from a packet.
struct Sliced<'a> {
    src: End,
    dst: End,
    seq: u32,
    syn: bool,
    ack: bool,
    fin: bool,
    rst: bool,
    payload: &'a [u8],
    len: u32,
}

/// The TCP segment in `ev`, if it is one hdrtap can slice.
fn slice<'a>(ev: &PacketEvent<'a>) -> Option<Sliced<'a>> {
    let data = ev.data;
    let p = if u32::from(ev.link) == abi::HDRTAP_LINK_RAW_IP {
        LaxSlicedPacket::from_ip(data).ok()?
    } else {
        LaxSlicedPacket::from_ethernet(data).ok()?
    };
    // Where the IP datagram ends in the packet (its length field; 0 on a
    // GSO packet past 64 KiB, then the packet's end).
    let at = |s: &[u8]| (s.as_ptr() as usize).wrapping_sub(data.as_ptr() as usize);
    let (src, dst, ip_end) = match p.net.as_ref()? {
        LaxNetSlice::Ipv4(ip) => {
            let h = ip.header();
            let total = usize::from(h.total_len());
            (
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
                (total > 0).then(|| at(h.slice()) + total),
            )
        }
        LaxNetSlice::Ipv6(ip) => {
            let h = ip.header();
            let plen = usize::from(h.payload_length());
            (
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
                (plen > 0).then(|| at(h.slice()) + 40 + plen),
            )
        }
        LaxNetSlice::Arp(_) => return None,
    };
    let Some(TransportSlice::Tcp(tcp)) = &p.transport else {
        return None;
    };
    let payload = tcp.payload();
    let wire = ev.wire_len as usize;
    let end = ip_end.map_or(wire, |e| e.min(wire));
    let len = end.saturating_sub(at(payload)).max(payload.len());
    Some(Sliced {
        src: (src.to_canonical(), tcp.source_port()),
        dst: (dst.to_canonical(), tcp.destination_port()),
        seq: tcp.sequence_number(),
        syn: tcp.syn(),
        ack: tcp.ack(),
        fin: tcp.fin(),
        rst: tcp.rst(),
        payload,
        len: u32::try_from(len).unwrap_or(u32::MAX),
    })
}

/// HTTP records from the TCP segments of packet events.
pub struct WireHttp {
    cfg: WireConfig,
    flows: HashMap<FlowKey, Flow>,
    /// Interface names by index.
    names: HashMap<u32, Arc<str>>,
    lookup: NameLookup,
    /// Where the connections' bytes go.
    out: Streams,
    next_id: u64,
    held: usize,
    counters: WireCounters,
    /// Last time holes and idleness were looked at (packet clock).
    last_sweep: u64,
    /// Ring-buffer records that were not packet events.
    pub decode_errors: u64,
    /// Events the caller dropped because handling them panicked.
    pub panics: u64,
}

impl std::fmt::Debug for WireHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WireHttp")
            .field("flows", &self.flows.len())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl WireHttp {
    /// `names`: interface names by index known at start; `lookup` finds
    /// later ones (else `if<N>`).
    pub fn new(
        cfg: WireConfig,
        pipeline: HttpPipeline,
        names: HashMap<u32, Arc<str>>,
        lookup: NameLookup,
    ) -> Self {
        WireHttp {
            cfg,
            flows: HashMap::new(),
            names,
            lookup,
            out: Streams {
                pipeline,
                conn_if: HashMap::new(),
                conflicts: HashMap::new(),
            },
            next_id: 1,
            held: 0,
            counters: WireCounters::default(),
            last_sweep: 0,
            decode_errors: 0,
            panics: 0,
        }
    }

    pub fn pipeline(&self) -> &HttpPipeline {
        &self.out.pipeline
    }

    /// What the reassembly counted so far.
    pub fn counters(&self) -> WireCounters {
        let mut c = self.counters;
        for f in self.flows.values() {
            for h in &f.halves {
                add_half(&mut c, h);
            }
        }
        c.wire_conns_open = self.flows.len() as u64;
        c.wire_held_bytes = self.held as u64;
        c
    }

    fn name(&mut self, ifindex: u32) -> Arc<str> {
        if let Some(n) = self.names.get(&ifindex) {
            return Arc::clone(n);
        }
        let name: Arc<str> = (self.lookup)(ifindex)
            .unwrap_or_else(|| format!("if{ifindex}"))
            .into();
        self.names.insert(ifindex, Arc::clone(&name));
        name
    }

    /// One ring-buffer record of the packet capture.
    pub fn event(&mut self, raw: &[u8]) {
        match abi::decode_packet(raw) {
            Ok(ev) => self.packet(&ev),
            Err(e) => {
                self.decode_errors += 1;
                tracing::debug!("undecodable packet event: {e}");
            }
        }
    }

    /// One packet event.
    pub fn packet(&mut self, ev: &PacketEvent<'_>) {
        self.counters.wire_packets += 1;
        let Some(s) = slice(ev) else {
            self.counters.wire_undecodable += 1;
            return;
        };
        self.counters.wire_snapped_bytes += u64::from(s.len) - s.payload.len() as u64;
        let key = FlowKey::of(ev.ifindex, s.src, s.dst);
        let owner = (ev.tgid != 0).then_some(Owner {
            tgid: ev.tgid,
            tid: ev.tid,
            cgroup_id: ev.cgroup_id,
            comm: ev.comm,
        });
        // A client's SYN that is not this connection's own (again): the
        // ports were reused, the old connection is over.
        if s.syn && !s.ack {
            if let Some(f) = self.flows.get(&key) {
                let h = &f.halves[0];
                if f.client != s.src || h.seq_at(0) != Some(s.seq.wrapping_add(1)) {
                    self.end(key);
                }
            }
        }
        if !self.flows.contains_key(&key) {
            // Only a handshake or payload starts a connection: a lone ACK,
            // FIN or RST of one hdrtap never saw carries nothing to parse.
            if !s.syn && s.payload.is_empty() && s.len == 0 {
                return;
            }
            if self.flows.len() >= self.cfg.max_flows {
                self.evict();
            }
            let (client, server) = if s.syn {
                if s.ack {
                    (s.dst, s.src)
                } else {
                    (s.src, s.dst)
                }
            } else if s.src.1 >= s.dst.1 {
                (s.src, s.dst)
            } else {
                (s.dst, s.src)
            };
            let id = self.next_id;
            self.next_id += 1;
            self.counters.wire_conns += 1;
            let ifname = self.name(ev.ifindex);
            self.out.conn_if.insert(id, ifname);
            self.flows.insert(
                key,
                Flow {
                    id,
                    client,
                    server,
                    halves: [Half::default(), Half::default()],
                    last_ts: ev.ts_ns,
                    cookie: 0,
                },
            );
        }
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        flow.last_ts = ev.ts_ns;
        if ev.sock_cookie != 0 {
            flow.cookie = ev.sock_cookie;
        }
        let d = usize::from(s.src != flow.client);
        let base = flow.base(ev.ts_ns, owner);
        let out = &mut self.out;
        let Some(half) = flow.halves.get_mut(d) else {
            return;
        };
        let seg = Segment {
            seq: s.seq,
            syn: s.syn,
            fin: s.fin,
            payload: s.payload,
            len: s.len,
        };
        let midstream = !half.from_syn && !s.syn;
        let mut deliver = |c: Chunk<'_>| out.chunk(&base, d, midstream, &c);
        let grew = half.segment(seg, ev.ts_ns, &mut deliver);
        self.held = self.held.saturating_add_signed(grew);
        if self.held > self.cfg.max_held_bytes {
            let before = half.held_bytes;
            half.flush(&mut deliver);
            self.held = self.held.saturating_sub(before);
        }
        if let Some(since) = half.hole_since {
            if ev.ts_ns.saturating_sub(since) > self.cfg.hole_timeout_ns {
                let before = half.held_bytes;
                half.skip_hole(&mut deliver);
                self.held = self.held.saturating_sub(before - half.held_bytes);
            }
        }
        let done = s.rst
            || self
                .flows
                .get(&key)
                .is_some_and(|f| f.halves.iter().all(Half::finished));
        if done {
            self.end(key);
        }
        if ev.ts_ns.saturating_sub(self.last_sweep) > 1_000_000_000 {
            self.last_sweep = ev.ts_ns;
            self.sweep(ev.ts_ns);
        }
    }

    /// End a connection: holes are given up, the trackers told.
    fn end(&mut self, key: FlowKey) {
        let Some(mut flow) = self.flows.remove(&key) else {
            return;
        };
        let ts = flow.last_ts;
        self.finish_flow(&mut flow, ts);
    }

    fn finish_flow(&mut self, flow: &mut Flow, ts: u64) {
        let base = flow.base(ts, None);
        let mut bytes = [0u64; 2];
        for (d, half) in flow.halves.iter_mut().enumerate() {
            let before = half.held_bytes;
            let midstream = !half.from_syn;
            let out = &mut self.out;
            half.flush(&mut |c: Chunk<'_>| out.chunk(&base, d, midstream, &c));
            self.held = self.held.saturating_sub(before);
            add_half(&mut self.counters, half);
            bytes[d] = half.next_pos();
        }
        let close = CloseEvent {
            tgid: 0,
            tid: 0,
            fd: -1,
            ts_ns: ts,
            conn_id: flow.id,
            bytes,
        };
        let ifname = self.out.conn_if.remove(&flow.id);
        let marks = self.out.conflicts.remove(&flow.id).unwrap_or_default();
        self.out.pipeline.close(&close, |r| {
            r.interface = ifname.clone();
            mark_conflicts(r, &marks);
        });
    }

    /// The longest idle connections go, to make room: a sixteenth of the
    /// table at once, so that a flood of new connections (SYNs of a scan)
    /// pays one scan of the table per many connections, not one each.
    fn evict(&mut self) {
        let mut by_age: Vec<(u64, FlowKey)> =
            self.flows.iter().map(|(k, f)| (f.last_ts, *k)).collect();
        let n = (by_age.len() / 16).max(1).min(by_age.len());
        if n == 0 {
            return;
        }
        by_age.select_nth_unstable_by_key(n - 1, |e| e.0);
        for (_, key) in by_age.into_iter().take(n) {
            self.counters.wire_conns_evicted += 1;
            self.end(key);
        }
    }

    /// Give up holes older than the timeout, end idle connections.
    fn sweep(&mut self, now: u64) {
        let idle: Vec<FlowKey> = self
            .flows
            .iter()
            .filter(|(_, f)| now.saturating_sub(f.last_ts) > self.cfg.idle_timeout_ns)
            .map(|(k, _)| *k)
            .collect();
        for key in idle {
            self.counters.wire_conns_idle += 1;
            self.end(key);
        }
        let timeout = self.cfg.hole_timeout_ns;
        let holed: Vec<FlowKey> = self
            .flows
            .iter()
            .filter(|(_, f)| {
                f.halves.iter().any(|h| {
                    h.hole_since
                        .is_some_and(|s| now.saturating_sub(s) > timeout)
                })
            })
            .map(|(k, _)| *k)
            .collect();
        for key in holed {
            let Some(flow) = self.flows.get_mut(&key) else {
                continue;
            };
            let base = flow.base(now, None);
            for (d, half) in flow.halves.iter_mut().enumerate() {
                while half
                    .hole_since
                    .is_some_and(|s| now.saturating_sub(s) > timeout)
                {
                    let before = half.held_bytes;
                    let midstream = !half.from_syn;
                    let out = &mut self.out;
                    half.skip_hole(&mut |c: Chunk<'_>| out.chunk(&base, d, midstream, &c));
                    self.held = self.held.saturating_sub(before - half.held_bytes);
                }
            }
        }
    }

    /// Time passed (CLOCK_MONOTONIC): holes and idle connections are looked
    /// at even when no packet comes.
    pub fn tick(&mut self, now_ns: u64) {
        if now_ns.saturating_sub(self.last_sweep) > 1_000_000_000 {
            self.last_sweep = now_ns;
            self.sweep(now_ns);
        }
        self.out.pipeline.tick(now_ns);
    }

    /// Capture is stopping: every connection ends.
    pub fn finish(&mut self) {
        let keys: Vec<FlowKey> = self.flows.keys().copied().collect();
        for key in keys {
            self.end(key);
        }
        self.out.pipeline.finish();
    }

    /// The records finished since the last call (ids, redaction, rules).
    pub fn drain(&mut self, out: &mut Vec<Record>) {
        self.out.pipeline.drain(out);
    }
}

fn add_half(c: &mut WireCounters, h: &Half) {
    c.wire_out_of_order += h.stats.out_of_order;
    c.wire_duplicate_bytes += h.stats.duplicate_bytes;
    c.wire_conflict_bytes += h.stats.conflict_bytes;
    c.wire_gaps += h.stats.gaps;
    c.wire_lost_bytes += h.stats.lost_bytes;
}

/// What every data event of one packet shares.
struct EventBase {
    conn_id: u64,
    ts_ns: u64,
    owner: Option<Owner>,
    cookie: u64,
    tuple: Tuple,
}

/// A range of one direction where a later copy of the bytes differed.
#[derive(Debug, Clone, Copy)]
struct Conflict {
    /// 0: requests (client to server), 1: responses.
    dir: usize,
    first: u32,
    last: u32,
}

/// Conflicting ranges remembered per connection at most.
const MAX_CONFLICTS: usize = 16;

/// Flag `r` `conflict` if its bytes hold one of `marks`.
fn mark_conflicts(r: &mut HttpRecord, marks: &[Conflict]) {
    let Some(range) = r.tcp_seq else { return };
    let dir = usize::from(r.kind != HttpKind::Request);
    let within = |s: u32, a: u32, b: u32| s.wrapping_sub(a) <= b.wrapping_sub(a);
    let hit = marks.iter().any(|m| {
        m.dir == dir
            && (within(m.first, range.first, range.last) || within(range.first, m.first, m.last))
    });
    if hit && !r.flags.contains(&flag::CONFLICT) {
        r.flags.push(flag::CONFLICT);
    }
}

/// Where bytes in order go: a data event into the pipeline; the interface,
/// and a conflict flag where one applies, onto the records it finishes.
struct Streams {
    pipeline: HttpPipeline,
    /// Interface of each open connection, by id.
    conn_if: HashMap<u64, Arc<str>>,
    /// Where bytes of an open connection had a conflicting copy.
    conflicts: HashMap<u64, Vec<Conflict>>,
}

impl Streams {
    fn chunk(&mut self, b: &EventBase, d: usize, midstream: bool, c: &Chunk<'_>) {
        if c.conflict {
            let v = self.conflicts.entry(b.conn_id).or_default();
            if v.len() < MAX_CONFLICTS {
                v.push(Conflict {
                    dir: d,
                    first: c.seq,
                    last: c.seq.wrapping_add((c.len.max(1) - 1) as u32),
                });
            }
        }
        let o = b.owner;
        let ev = DataEvent {
            tgid: o.map_or(0, |o| o.tgid),
            tid: o.map_or(0, |o| o.tid),
            fd: -1,
            ts_ns: b.ts_ns,
            conn_id: b.conn_id,
            pos: c.pos,
            orig_len: c.len,
            call_len: c.len,
            cgroup_id: o.map_or(0, |o| o.cgroup_id),
            flags: if midstream {
                abi::HDRTAP_DF_MIDSTREAM as u16
            } else {
                0
            },
            dir: if d == 0 {
                Direction::Egress
            } else {
                Direction::Ingress
            },
            role: KernelRole::Client,
            source: 0,
            tls_lib: 0,
            tcp_seq: Some(c.seq),
            sock_cookie: b.cookie,
            comm: o.map_or([0; abi::HDRTAP_COMM_LEN as usize], |o| o.comm),
            tuple: b.tuple,
            data: c.data,
        };
        let ifname = self.conn_if.get(&b.conn_id);
        let marks = self.conflicts.get(&b.conn_id);
        self.pipeline.data(&ev, |r| {
            r.interface = ifname.cloned();
            if let Some(m) = marks {
                mark_conflicts(r, m);
            }
        });
    }
}
