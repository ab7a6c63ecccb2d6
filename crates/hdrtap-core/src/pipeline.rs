//! The order of the stages after the ring buffer, in one place for every
//! capture: the binary feeds raw ring-buffer records in ([`HttpPipeline::event`],
//! [`PacketPipeline::event`]) and takes finished records out (`drain`),
//! ready for its sinks. It keeps only the wiring (probes, ring buffers,
//! outputs, signals).
//!
//! HTTP: decode ([`hdrtap_abi::decode`]) → connection → protocol
//! ([`HttpTracker`]: HTTP/1 or HTTP/2) → records → per-run id → redaction
//! ([`Redactor::apply`]: nothing after it sees a secret) → security rules
//! (on the redacted record) → sinks, each alert right after its record.
//!
//! Packets: decode ([`hdrtap_abi::decode_packet`]) → record
//! ([`crate::packet::decode_event`], with the interface's name) → id → sinks.
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use hdrtap_abi::Event;

use crate::cgroup::Cgroups;
use crate::http::HttpTracker;
use crate::packet::PacketRecord;
use crate::record::{CompactString, HttpRecord};
use crate::redact::Redactor;
use crate::rules::{Alert, Rules};
use crate::sink::Record;

/// Per-run record ids (`id` in the JSON), shared by every capture of a run.
#[derive(Debug, Default)]
pub struct Ids(AtomicU64);

impl Ids {
    /// The next id (the first is 1).
    pub fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// HTTP of every version, from ring-buffer records to records for sinks.
#[derive(Debug)]
pub struct HttpPipeline {
    tracker: HttpTracker,
    redactor: Redactor,
    rules: Option<Rules>,
    ids: Arc<Ids>,
    records: Vec<Arc<HttpRecord>>,
    alerts: Vec<Alert>,
    /// Names each record's cgroup ([`HttpPipeline::with_cgroups`]).
    cgroups: Option<Cgroups>,
    /// Ring-buffer records that could not be decoded.
    pub decode_errors: u64,
    /// Events the caller dropped because handling them panicked.
    pub panics: u64,
}

impl HttpPipeline {
    pub fn new(
        tracker: HttpTracker,
        redactor: Redactor,
        rules: Option<Rules>,
        ids: Arc<Ids>,
    ) -> Self {
        HttpPipeline {
            tracker,
            redactor,
            rules,
            ids,
            records: Vec::with_capacity(1024),
            alerts: Vec::new(),
            cgroups: None,
            decode_errors: 0,
            panics: 0,
        }
    }

    /// Give each record the unit, container and pod its cgroup names
    /// (before the rules and the outputs see it).
    pub fn with_cgroups(mut self, cgroups: Cgroups) -> Self {
        self.cgroups = Some(cgroups);
        self
    }

    /// One ring-buffer record.
    pub fn event(&mut self, raw: &[u8]) {
        match hdrtap_abi::decode(raw) {
            Ok(Event::Data(ev)) => self.tracker.on_data(&ev, &mut self.records),
            Ok(Event::Close(ev)) => self.tracker.on_close(&ev, &mut self.records),
            Err(e) => {
                self.decode_errors += 1;
                tracing::debug!("undecodable event: {e}");
            }
        }
    }

    /// One data event made outside the kernel (`wire`: bytes reassembled
    /// from packets); `edit` sees each record it finishes.
    pub fn data(&mut self, ev: &hdrtap_abi::DataEvent<'_>, edit: impl FnMut(&mut HttpRecord)) {
        let from = self.records.len();
        self.tracker.on_data(ev, &mut self.records);
        self.edit_from(from, edit);
    }

    /// A connection ended (made outside the kernel, as [`Self::data`]).
    pub fn close(&mut self, ev: &hdrtap_abi::CloseEvent, edit: impl FnMut(&mut HttpRecord)) {
        let from = self.records.len();
        self.tracker.on_close(ev, &mut self.records);
        self.edit_from(from, edit);
    }

    fn edit_from(&mut self, from: usize, mut edit: impl FnMut(&mut HttpRecord)) {
        for rec in self.records.iter_mut().skip(from) {
            // The tracker's Arc is the only one yet: make_mut never clones.
            edit(Arc::make_mut(rec));
        }
    }

    /// Time passed: what waits on time comes out (CLOCK_MONOTONIC).
    pub fn tick(&mut self, now_mono_ns: u64) {
        self.tracker.tick(now_mono_ns, &mut self.records);
    }

    /// Capture is stopping: every connection ends (a header block still
    /// open becomes a record flagged `incomplete`).
    pub fn finish(&mut self) {
        self.tracker.close_all(&mut self.records);
    }

    /// The records finished since the last call, in order, each with its
    /// id, redacted, checked by the rules, and followed by its alerts.
    pub fn drain(&mut self, out: &mut Vec<Record>) {
        for mut shared in self.records.drain(..) {
            // The tracker's Arc is the only one yet: make_mut never clones.
            let rec = Arc::make_mut(&mut shared);
            rec.id = self.ids.next();
            if let Some(cg) = &mut self.cgroups {
                rec.process.workload = cg.lookup(rec.process.cgroup_id);
            }
            // First: every later stage, the rules included, and every
            // output sees only the redacted record.
            self.redactor.apply(rec);
            if let Some(rules) = &mut self.rules {
                rules.check(rec, &mut self.alerts);
            }
            out.push(Record::Http(shared));
            for mut alert in self.alerts.drain(..) {
                alert.id = self.ids.next();
                out.push(Record::Alert(Arc::new(alert)));
            }
        }
    }

    pub fn tracker(&self) -> &HttpTracker {
        &self.tracker
    }

    pub fn tracker_mut(&mut self) -> &mut HttpTracker {
        &mut self.tracker
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    pub fn rules(&self) -> Option<&Rules> {
        self.rules.as_ref()
    }
}

/// Finds an interface's name by its index (for interfaces that appear
/// after start).
pub type NameLookup = Box<dyn FnMut(u32) -> Option<String>>;

/// Packet headers, from ring-buffer records to records for sinks.
pub struct PacketPipeline {
    names: HashMap<u32, CompactString>,
    /// The interface of the last event: packets come in runs from one
    /// interface, and a compare is cheaper than hashing the index for the
    /// map (SipHash, about 120 instructions a packet under callgrind).
    last_name: Option<(u32, CompactString)>,
    lookup: NameLookup,
    clock_offset_ns: i64,
    ids: Arc<Ids>,
    records: Vec<Arc<PacketRecord>>,
    /// Ring-buffer records that could not be decoded.
    pub decode_errors: u64,
    /// Events the caller dropped because handling them panicked.
    pub panics: u64,
    /// Keep each packet's bytes ([`PacketPipeline::keep_frames`]).
    keep_frames: bool,
    /// Names each owner's cgroup ([`PacketPipeline::with_cgroups`]).
    cgroups: Option<Cgroups>,
}

impl std::fmt::Debug for PacketPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketPipeline")
            .field("names", &self.names)
            .field("records", &self.records.len())
            .finish_non_exhaustive()
    }
}

impl PacketPipeline {
    /// `names`: interface names by index known at start; `lookup` finds
    /// later ones (else `if<N>`).
    pub fn new(
        names: HashMap<u32, CompactString>,
        lookup: NameLookup,
        clock_offset_ns: i64,
        ids: Arc<Ids>,
    ) -> Self {
        PacketPipeline {
            names,
            last_name: None,
            lookup,
            clock_offset_ns,
            ids,
            records: Vec::with_capacity(1024),
            decode_errors: 0,
            panics: 0,
            keep_frames: false,
            cgroups: None,
        }
    }

    /// Give each packet whose owner is known the unit, container and pod
    /// its cgroup names.
    pub fn with_cgroups(mut self, cgroups: Cgroups) -> Self {
        self.cgroups = Some(cgroups);
        self
    }

    /// Keep each packet's bytes in its record (for `hdrtap packets -w`).
    pub fn keep_frames(mut self, keep: bool) -> Self {
        self.keep_frames = keep;
        self
    }

    fn name(&mut self, ifindex: u32) -> CompactString {
        if let Some((i, n)) = &self.last_name {
            if *i == ifindex {
                return n.clone();
            }
        }
        let name = match self.names.get(&ifindex) {
            Some(n) => n.clone(),
            None => {
                let name = CompactString::from(
                    (self.lookup)(ifindex).unwrap_or_else(|| format!("if{ifindex}")),
                );
                self.names.insert(ifindex, name.clone());
                name
            }
        };
        self.last_name = Some((ifindex, name.clone()));
        name
    }

    /// One ring-buffer record.
    pub fn event(&mut self, raw: &[u8]) {
        match hdrtap_abi::decode_packet(raw) {
            Ok(ev) => {
                let name = self.name(ev.ifindex);
                // Straight into the Arc the sinks share: a record is
                // several hundred bytes, and moving it between vectors
                // showed in perf.
                let (keep_frames, cgroups) = (self.keep_frames, &mut self.cgroups);
                let rec = crate::packet::decode_event_arc(&ev, name, self.clock_offset_ns, |r| {
                    if keep_frames {
                        r.frame = Some(crate::packet::frame_of(&ev));
                    }
                    if let Some(cg) = cgroups {
                        if ev.cgroup_id != 0 && r.owner.is_some() {
                            r.workload = cg.lookup(ev.cgroup_id);
                        }
                    }
                });
                self.records.push(rec);
            }
            Err(e) => {
                self.decode_errors += 1;
                tracing::debug!("undecodable packet event: {e}");
            }
        }
    }

    /// The records decoded since the last call, without ids (for a caller
    /// that writes only some of them: `hdrtap http --with-packets`).
    pub fn take(&mut self) -> std::vec::Drain<'_, Arc<PacketRecord>> {
        self.records.drain(..)
    }

    /// The records finished since the last call, each with its id.
    pub fn drain(&mut self, out: &mut Vec<Record>) {
        for mut rec in self.records.drain(..) {
            // The only reference yet: make_mut never clones.
            Arc::make_mut(&mut rec).id = self.ids.next();
            out.push(Record::Packet(rec));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrtap_abi::build::{packet_event, PacketSpec};
    use std::cell::Cell;
    use std::rc::Rc;

    /// Every record names its own interface, whatever the order the
    /// interfaces come in (the last-interface shortcut must not stick),
    /// and an unknown index is looked up once.
    #[test]
    fn packet_records_name_their_interface() {
        let looked_up = Rc::new(Cell::new(0));
        let seen = Rc::clone(&looked_up);
        let lookup: NameLookup = Box::new(move |i| {
            seen.set(seen.get() + 1);
            (i == 7).then(|| "new0".to_string())
        });
        let names = [(1, "lo".into()), (2, "eth0".into())].into_iter().collect();
        let mut p = PacketPipeline::new(names, lookup, 0, Arc::new(Ids::default()));
        let order = [1, 1, 2, 1, 7, 7, 9, 2, 9, 1];
        for ifindex in order {
            let spec = PacketSpec {
                ifindex,
                ..Default::default()
            };
            p.event(&packet_event(&spec, &[0u8; 14]));
        }
        let mut out = Vec::new();
        p.drain(&mut out);
        let got: Vec<(u64, String)> = out
            .iter()
            .map(|r| match r {
                Record::Packet(p) => (p.id, p.ifname.to_string()),
                _ => panic!("not a packet record"),
            })
            .collect();
        let want = [
            "lo", "lo", "eth0", "lo", "new0", "new0", "if9", "eth0", "if9", "lo",
        ];
        assert_eq!(
            got,
            want.iter()
                .enumerate()
                .map(|(i, n)| (i as u64 + 1, n.to_string()))
                .collect::<Vec<_>>()
        );
        assert_eq!(looked_up.get(), 2, "7 and 9 looked up once each");
    }
}
