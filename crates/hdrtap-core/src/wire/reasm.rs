//! One direction of a TCP connection put back in order from the segments a
//! packet hook saw: out-of-order segments wait, retransmissions and
//! overlaps are dropped (the first copy of a byte wins; a later copy that
//! differs is counted and its sequence number kept, see
//! [`Half::conflicts`]), and a hole that does not fill is given up as lost
//! bytes.
//!
//! Written here rather than taken from a crate: the TCP reassemblers on
//! crates.io either belong to a whole network stack (smoltcp's keeps no
//! bytes, only ranges) or do not report what the parser needs — the
//! stream offset of every byte, bytes a snaplen cut (known length, unknown
//! content), and exact counts of duplicates, conflicts and losses.
//!
//! Positions are 64-bit stream offsets: 0 is the byte after the SYN when the
//! handshake was seen, else the first byte hdrtap saw. A 32-bit sequence
//! number is placed next to the expected position, so a connection may
//! carry more than 4 GiB.
use std::collections::BTreeMap;

/// A segment's part of one direction: its sequence number, the payload
/// bytes captured, and how many the segment carried on the wire.
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    pub seq: u32,
    pub syn: bool,
    pub fin: bool,
    /// Captured payload (a prefix of the wire payload).
    pub payload: &'a [u8],
    /// Payload bytes on the wire (`>= payload.len()`).
    pub len: u32,
}

/// Bytes ready for the parser, in stream order.
#[derive(Debug, PartialEq, Eq)]
pub struct Chunk<'a> {
    /// Stream offset of the first byte.
    pub pos: u64,
    /// Its TCP sequence number.
    pub seq: u32,
    /// Captured bytes from `pos`.
    pub data: &'a [u8],
    /// A later copy of some of these bytes differed (the first is here).
    pub conflict: bool,
    /// Stream bytes this chunk stands for (`>= data.len()`): the rest were
    /// not captured (snaplen).
    pub len: u64,
}

/// What one direction counted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HalfStats {
    /// Segments that arrived ahead of a hole and waited.
    pub out_of_order: u64,
    /// Bytes seen again (retransmissions, duplicates), dropped.
    pub duplicate_bytes: u64,
    /// Overlapping bytes that differed from the first copy (kept).
    pub conflict_bytes: u64,
    /// Holes given up on, and the bytes in them.
    pub gaps: u64,
    pub lost_bytes: u64,
}

/// One held segment (ranges held never overlap).
#[derive(Debug)]
struct Held {
    data: Vec<u8>,
    len: u64,
    /// A later copy differed.
    conflict: bool,
}

/// One direction of one connection.
#[derive(Debug, Default)]
pub struct Half {
    /// Sequence number of stream offset 0, once known.
    base: Option<u32>,
    /// The stream started at a SYN.
    pub from_syn: bool,
    /// Stream offset of the next byte the parser needs.
    next: u64,
    /// Segments past a hole, by stream offset.
    held: BTreeMap<u64, Held>,
    /// Captured bytes in `held`.
    pub held_bytes: usize,
    /// When the oldest hole opened (the caller's clock).
    pub hole_since: Option<u64>,
    /// Where a FIN puts the end of the stream.
    fin_at: Option<u64>,
    pub stats: HalfStats,
}

impl Half {
    /// The sequence number of stream offset `pos` (when the base is known).
    pub fn seq_at(&self, pos: u64) -> Option<u32> {
        self.base.map(|b| b.wrapping_add(pos as u32))
    }

    /// The stream offset `seq` stands for: the one nearest the expected
    /// position (sequence numbers wrap every 4 GiB).
    fn pos_of(&self, base: u32, seq: u32) -> Option<u64> {
        let expected = base.wrapping_add(self.next as u32);
        let delta = i64::from(seq.wrapping_sub(expected) as i32);
        u64::try_from(self.next as i64 + delta).ok()
    }

    /// Stream offset of the next byte the parser needs.
    pub fn next_pos(&self) -> u64 {
        self.next
    }

    /// All bytes up to the FIN were handed on.
    pub fn finished(&self) -> bool {
        self.fin_at.is_some_and(|f| self.next >= f)
    }

    /// Something waits past a hole.
    pub fn has_hole(&self) -> bool {
        !self.held.is_empty()
    }

    /// Take one segment; bytes now in order go to `deliver`. Returns the
    /// change in held bytes (for the caller's memory budget).
    pub fn segment(
        &mut self,
        seg: Segment<'_>,
        now: u64,
        deliver: &mut impl FnMut(Chunk<'_>),
    ) -> isize {
        let before = self.held_bytes as isize;
        // Payload starts after the SYN's sequence number.
        let data_seq = seg.seq.wrapping_add(u32::from(seg.syn));
        if seg.syn && (self.base.is_none() || (self.next == 0 && self.held.is_empty())) {
            self.base = Some(data_seq);
            self.from_syn = true;
        }
        let base = *self.base.get_or_insert(data_seq);
        let Some(start) = self.pos_of(base, data_seq) else {
            // Before the stream's first byte: an old segment.
            self.stats.duplicate_bytes += u64::from(seg.len);
            return 0;
        };
        let len = u64::from(seg.len);
        let end = start + len;
        if seg.fin && self.fin_at.is_none() {
            self.fin_at = Some(end);
        }
        if len == 0 {
            return 0;
        }
        let payload = seg.payload.get(..seg.len as usize).unwrap_or(seg.payload);
        if end <= self.next {
            self.stats.duplicate_bytes += len;
            return 0;
        }
        // The front already handed on: dropped (not compared: those bytes
        // are the parser's now).
        let (start, payload) = if start < self.next {
            let skip = self.next - start;
            self.stats.duplicate_bytes += skip;
            let cut = usize::try_from(skip)
                .unwrap_or(usize::MAX)
                .min(payload.len());
            (self.next, payload.get(cut..).unwrap_or_default())
        } else {
            (start, payload)
        };
        if start == self.next && self.held.is_empty() {
            // In order, nothing waiting: straight through, no copy.
            deliver(Chunk {
                pos: start,
                seq: base.wrapping_add(start as u32),
                data: payload,
                conflict: false,
                len: end - start,
            });
            self.next = end;
            return 0;
        }
        if start > self.next {
            self.stats.out_of_order += 1;
            if self.hole_since.is_none() {
                self.hole_since = Some(now);
            }
        }
        self.hold(start, payload, end);
        self.drain(deliver);
        self.held_bytes as isize - before
    }

    /// Keep `[start, end)` (captured: `payload` from `start`), first copy
    /// winning wherever something is held already.
    fn hold(&mut self, start: u64, payload: &[u8], end: u64) {
        let piece = |from: u64, to: u64| -> Held {
            let a = usize::try_from(from - start)
                .unwrap_or(usize::MAX)
                .min(payload.len());
            let b = usize::try_from(to - start)
                .unwrap_or(usize::MAX)
                .min(payload.len());
            Held {
                data: payload.get(a..b).unwrap_or_default().to_vec(),
                len: to - from,
                conflict: false,
            }
        };
        // Held ranges that may overlap [start, end): the one starting
        // before it, and every one starting inside it.
        let mut over: Vec<(u64, u64)> = Vec::new();
        if let Some((&s, h)) = self.held.range(..start).next_back() {
            if s + h.len > start {
                over.push((s, s + h.len));
            }
        }
        over.extend(self.held.range(start..end).map(|(&s, h)| (s, s + h.len)));
        let mut cur = start;
        let mut new = Vec::new();
        for (hs, he) in over {
            if cur < hs {
                new.push((cur, piece(cur, hs)));
            }
            let (os, oe) = (cur.max(hs), end.min(he));
            if os < oe {
                self.compare(hs, os, oe, start, payload);
            }
            cur = cur.max(he);
        }
        if cur < end {
            new.push((cur, piece(cur, end)));
        }
        for (s, h) in new {
            self.held_bytes += h.data.len();
            self.held.insert(s, h);
        }
    }

    /// Compare the overlap `[os, oe)` of the held range at `hs` with the
    /// new copy (captured bytes only) and count it as duplicate or conflict.
    fn compare(&mut self, hs: u64, os: u64, oe: u64, start: u64, payload: &[u8]) {
        let n = oe - os;
        let Some(h) = self.held.get_mut(&hs) else {
            return;
        };
        let old = h
            .data
            .get(usize::try_from(os - hs).unwrap_or(usize::MAX)..)
            .unwrap_or_default();
        let new = payload
            .get(usize::try_from(os - start).unwrap_or(usize::MAX)..)
            .unwrap_or_default();
        let both = (n as usize).min(old.len()).min(new.len());
        let differ = old.get(..both) != new.get(..both);
        if differ {
            h.conflict = true;
            self.stats.conflict_bytes += n;
        } else {
            self.stats.duplicate_bytes += n;
        }
    }

    /// Hand on held bytes that are now in order.
    fn drain(&mut self, deliver: &mut impl FnMut(Chunk<'_>)) {
        while let Some(entry) = self.held.first_entry() {
            let s = *entry.key();
            if s > self.next {
                break;
            }
            let h = entry.remove();
            self.held_bytes -= h.data.len();
            let end = s + h.len;
            if end > self.next {
                // `hold` keeps held ranges apart from each other, and
                // `segment` trims what was handed on: s == next here.
                deliver(Chunk {
                    pos: s,
                    seq: self.base.unwrap_or(0).wrapping_add(s as u32),
                    data: &h.data,
                    len: h.len,
                    conflict: h.conflict,
                });
                self.next = end;
            }
        }
        if self.held.is_empty() {
            self.hole_since = None;
        }
    }

    /// Give up the first hole: its bytes are lost, and what waited behind
    /// it goes on (up to the next hole). Returns the bytes lost.
    pub fn skip_hole(&mut self, deliver: &mut impl FnMut(Chunk<'_>)) -> u64 {
        let Some((&s, _)) = self.held.first_key_value() else {
            return 0;
        };
        let lost = s.saturating_sub(self.next);
        self.stats.gaps += 1;
        self.stats.lost_bytes += lost;
        self.next = s;
        self.drain(deliver);
        lost
    }

    /// Give up every hole (the connection ends).
    pub fn flush(&mut self, deliver: &mut impl FnMut(Chunk<'_>)) {
        while self.has_hole() {
            self.skip_hole(deliver);
        }
    }
}
