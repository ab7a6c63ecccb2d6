//! Per-direction stream bookkeeping: where the next byte of one direction of
//! one connection is expected, and the small buffer of bytes the parser could
//! not consume yet.
//!
//! Why a separate room: the kernel tells the truth about sizes (`pos`,
//! `orig_len`, `cap_len`), so lost events, uncaptured tails and duplicates
//! are exact numbers computed here ([`DirStream::admit`]), and the parser
//! (`http1::parse`, `http2`) only ever sees two things: "these bytes" and "n bytes
//! are missing here". The pending buffer is only used when something (a
//! header block, a chunk-size line, a candidate start line) continues in the
//! next event; a block that sits inside one event is parsed straight from the
//! event's bytes.

use hdrtap_abi::DataEvent;

/// Pending buffers larger than this are freed (not just cleared) once
/// empty, so that idle connections stay small: 65,536 idle connections that
/// each kept 4 KiB per direction would hold 512 MiB.
const KEEP_CAPACITY: usize = 256;

/// Who moved a byte and when: the parts of a data event a record needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    /// CLOCK_MONOTONIC nanoseconds of the syscall.
    pub ts_ns: u64,
    pub tgid: u32,
    pub tid: u32,
    pub cgroup_id: u64,
    /// Task name, NUL-padded.
    pub comm: [u8; hdrtap_abi::HDRTAP_COMM_LEN as usize],
    /// The socket's cookie (0: none).
    pub sock_cookie: u64,
    /// The TCP sequence number of stream offset 0 of this direction (the
    /// event's sequence number less its offset, modulo 2^32), when the
    /// kernel read one.
    pub seq_base: Option<u32>,
    /// The stream offset of the byte this metadata was asked for
    /// (`Sink::meta_at`); the event's first byte otherwise.
    pub pos: u64,
}

impl Meta {
    /// The metadata of `ev`.
    pub fn of(ev: &DataEvent<'_>) -> Self {
        Meta {
            ts_ns: ev.ts_ns,
            tgid: ev.tgid,
            tid: ev.tid,
            cgroup_id: ev.cgroup_id,
            comm: ev.comm,
            sock_cookie: ev.sock_cookie,
            seq_base: ev.tcp_seq.map(|s| s.wrapping_sub(ev.pos as u32)),
            pos: ev.pos,
        }
    }

    /// The same, describing the byte at stream offset `pos`.
    pub fn at(self, pos: u64) -> Self {
        Meta { pos, ..self }
    }

    /// The TCP sequence number of the byte this metadata describes.
    pub fn seq(&self) -> Option<u32> {
        self.seq_base.map(|b| b.wrapping_add(self.pos as u32))
    }
}

/// What one event contributes once positions are checked, in stream order:
/// `lost` missing bytes, then `data`, then `uncaptured` missing bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Admit<'a> {
    /// Bytes lost before this event (events dropped by the kernel).
    pub lost: u64,
    /// Bytes at the front of this event that were already seen, dropped.
    pub overlap: u64,
    /// Captured bytes starting at the expected position.
    pub data: &'a [u8],
    /// Bytes after `data` that the event stands for but did not capture.
    pub uncaptured: u64,
}

/// One direction of one connection: position and pending bytes.
#[derive(Debug)]
pub(crate) struct DirStream {
    /// Stream offset of the next byte expected in this direction.
    next_pos: u64,
    /// False until the first event if the stream's start is unknown (the
    /// connection was picked up late): that event's `pos` is adopted.
    synced: bool,
    /// Received bytes the parser has not consumed yet (they end at
    /// `next_pos`, unless a gap or uncaptured tail followed them, in which
    /// case the parser was told and the buffer emptied).
    pub pend: Vec<u8>,
    /// Metadata of the event that carried `pend[0]`.
    pub pend_meta: Meta,
}

impl DirStream {
    /// A direction whose first byte is stream offset 0 if `from_zero`,
    /// else wherever its first event starts.
    pub fn new(meta: Meta, from_zero: bool) -> Self {
        DirStream {
            next_pos: 0,
            synced: from_zero,
            pend: Vec::new(),
            pend_meta: meta,
        }
    }

    /// Check an event's range `[pos, pos + orig_len)` (of which `data` is
    /// the captured head) against the expected position and advance it.
    pub fn admit<'a>(&mut self, pos: u64, orig_len: u64, data: &'a [u8]) -> Admit<'a> {
        if !self.synced {
            self.synced = true;
            self.next_pos = pos;
        }
        let cap = data.len() as u64;
        // decode() guarantees orig_len >= cap_len; stay safe if a caller did not.
        let orig_len = orig_len.max(cap);
        let end = pos.saturating_add(orig_len);
        if end <= self.next_pos {
            // Entirely seen before (or empty): nothing new.
            return Admit {
                lost: 0,
                overlap: orig_len,
                data: &[],
                uncaptured: 0,
            };
        }
        let (lost, skip) = if pos >= self.next_pos {
            (pos - self.next_pos, 0)
        } else {
            (0, self.next_pos - pos)
        };
        // skip < orig_len here because end > next_pos.
        let data = data.get(skip.min(cap) as usize..).unwrap_or_default();
        let uncaptured = end
            .saturating_sub(pos.saturating_add(skip))
            .saturating_sub(data.len() as u64);
        self.next_pos = end;
        Admit {
            lost,
            overlap: skip,
            data,
            uncaptured,
        }
    }

    /// Stream offset of the next byte expected.
    pub fn next_pos(&self) -> u64 {
        self.next_pos
    }

    /// Heap bytes this direction holds (the pending buffer's capacity).
    pub fn heap_bytes(&self) -> usize {
        self.pend.capacity()
    }

    /// Free a large pending buffer once it is empty.
    pub fn compact(&mut self) {
        if self.pend.is_empty() && self.pend.capacity() > KEEP_CAPACITY {
            self.pend = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        Meta {
            ts_ns: 0,
            tgid: 0,
            tid: 0,
            cgroup_id: 0,
            comm: [0; 16],
            sock_cookie: 0,
            seq_base: None,
            pos: 0,
        }
    }

    #[test]
    fn in_order_events_have_no_gap() {
        let mut s = DirStream::new(meta(), true);
        let a = s.admit(0, 3, b"abc");
        assert_eq!(
            a,
            Admit {
                lost: 0,
                overlap: 0,
                data: b"abc",
                uncaptured: 0
            }
        );
        let a = s.admit(3, 2, b"de");
        assert_eq!(
            a,
            Admit {
                lost: 0,
                overlap: 0,
                data: b"de",
                uncaptured: 0
            }
        );
    }

    #[test]
    fn lost_events_and_uncaptured_tails_are_exact() {
        let mut s = DirStream::new(meta(), true);
        s.admit(0, 3, b"abc");
        let a = s.admit(10, 8, b"xy");
        assert_eq!(
            a,
            Admit {
                lost: 7,
                overlap: 0,
                data: b"xy",
                uncaptured: 6
            }
        );
        let a = s.admit(18, 5, b"");
        assert_eq!(
            a,
            Admit {
                lost: 0,
                overlap: 0,
                data: b"",
                uncaptured: 5
            }
        );
    }

    #[test]
    fn overlap_drops_the_seen_prefix() {
        let mut s = DirStream::new(meta(), true);
        s.admit(0, 5, b"abcde");
        let a = s.admit(3, 4, b"defg");
        assert_eq!(
            a,
            Admit {
                lost: 0,
                overlap: 2,
                data: b"fg",
                uncaptured: 0
            }
        );
        // Entirely old.
        let a = s.admit(0, 7, b"abcdefg");
        assert_eq!(a.data, b"");
        assert_eq!(a.overlap, 7);
        // Overlap reaching into the uncaptured tail.
        let a = s.admit(5, 10, b"fgh");
        assert_eq!(
            a,
            Admit {
                lost: 0,
                overlap: 2,
                data: b"h",
                uncaptured: 7
            }
        );
    }

    #[test]
    fn unknown_start_adopts_the_first_position() {
        let mut s = DirStream::new(meta(), false);
        let a = s.admit(5000, 3, b"abc");
        assert_eq!(
            a,
            Admit {
                lost: 0,
                overlap: 0,
                data: b"abc",
                uncaptured: 0
            }
        );
        let a = s.admit(5004, 1, b"e");
        assert_eq!(a.lost, 1);
    }

    #[test]
    fn absurd_positions_do_not_overflow() {
        let mut s = DirStream::new(meta(), true);
        let a = s.admit(u64::MAX - 1, u64::MAX, b"ab");
        assert_eq!(a.lost, u64::MAX - 1);
        assert_eq!(a.data, b"ab");
        assert_eq!((a.overlap, a.uncaptured), (0, 0));
        let a = s.admit(u64::MAX, 5, b"x");
        assert_eq!(a.data, b"");
        // orig_len smaller than the payload is treated as the payload length.
        let mut s = DirStream::new(meta(), true);
        let a = s.admit(0, 1, b"abc");
        assert_eq!(a.data, b"abc");
    }
}
