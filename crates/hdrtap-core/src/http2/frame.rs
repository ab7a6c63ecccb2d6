//! HTTP/2 framing (RFC 9113 §4, §6): the 9-byte frame header, the client
//! preface, and what a plausible frame looks like to someone who joins a
//! connection at an unknown place.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

/// The client connection preface (§3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Frame types (§6).
pub mod ty {
    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const PRIORITY: u8 = 0x2;
    pub const RST_STREAM: u8 = 0x3;
    pub const SETTINGS: u8 = 0x4;
    pub const PUSH_PROMISE: u8 = 0x5;
    pub const PING: u8 = 0x6;
    pub const GOAWAY: u8 = 0x7;
    pub const WINDOW_UPDATE: u8 = 0x8;
    pub const CONTINUATION: u8 = 0x9;
}

/// Frame flags.
pub mod flags {
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PADDED: u8 = 0x8;
    pub const PRIORITY: u8 = 0x20;
}

/// SETTINGS parameters hdrtap uses (§6.5.2).
pub mod setting {
    pub const HEADER_TABLE_SIZE: u16 = 0x1;
    pub const MAX_FRAME_SIZE: u16 = 0x5;
}

/// The default and largest SETTINGS_MAX_FRAME_SIZE.
pub const DEFAULT_MAX_FRAME: u32 = 16_384;
pub const LARGEST_MAX_FRAME: u32 = (1 << 24) - 1;

/// A frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub len: u32,
    pub ty: u8,
    pub flags: u8,
    pub stream: u32,
}

impl Header {
    /// Parse the first 9 bytes of `b`.
    pub fn parse(b: &[u8]) -> Option<Header> {
        let h = b.get(..9)?;
        let (l, rest) = h.split_at(3);
        let (&[t, f], id) = rest.split_at(2) else {
            return None;
        };
        Some(Header {
            len: u32::from_be_bytes([0, *l.first()?, *l.get(1)?, *l.get(2)?]),
            ty: t,
            flags: f,
            // The reserved bit is ignored on receipt (§4.1).
            stream: u32::from_be_bytes(id.try_into().ok()?) & 0x7fff_ffff,
        })
    }

    /// Whether this header could start a real frame, for a reader that
    /// lost its place: a known type, a length within `max_frame`, the
    /// stream id each type requires (0 or not), the reserved bit clear,
    /// and only flags the type defines. Unknown types are legal in HTTP/2
    /// but not plausible here: the point is to tell frames from other
    /// bytes.
    pub fn plausible(raw: &[u8], max_frame: u32) -> bool {
        let Some(h) = Header::parse(raw) else {
            return false;
        };
        if raw.get(5).is_some_and(|b| b & 0x80 != 0) || h.len > max_frame {
            return false;
        }
        let (zero_stream, allowed_flags, fixed_len) = match h.ty {
            ty::DATA => (false, flags::END_STREAM | flags::PADDED, None),
            ty::HEADERS => (
                false,
                flags::END_STREAM | flags::END_HEADERS | flags::PADDED | flags::PRIORITY,
                None,
            ),
            ty::PRIORITY => (false, 0, Some(5)),
            ty::RST_STREAM => (false, 0, Some(4)),
            ty::SETTINGS => (true, flags::ACK, None),
            ty::PUSH_PROMISE => (false, flags::END_HEADERS | flags::PADDED, None),
            ty::PING => (true, flags::ACK, Some(8)),
            ty::GOAWAY => (true, 0, None),
            ty::WINDOW_UPDATE => return h.flags == 0 && h.len == 4,
            ty::CONTINUATION => (false, flags::END_HEADERS, None),
            _ => return false,
        };
        if (h.stream == 0) != zero_stream || h.flags & !allowed_flags != 0 {
            return false;
        }
        if fixed_len.is_some_and(|n| h.len != n) {
            return false;
        }
        match h.ty {
            ty::SETTINGS => h.len % 6 == 0 && (h.flags & flags::ACK == 0 || h.len == 0),
            ty::GOAWAY => h.len >= 8,
            ty::HEADERS => h.len > 0,
            _ => true,
        }
    }
}

/// Whether `data` (the bytes of one syscall, from its start) looks like a
/// run of whole HTTP/2 frames: every frame header plausible, and either
/// the frames end exactly where `data` does or at least three were seen.
/// Syscalls carry whole frames as a rule, so this tells an HTTP/2
/// connection joined mid-stream from other bytes.
pub fn plausible_run(data: &[u8], max_frame: u32) -> bool {
    let mut off = 0usize;
    let mut frames = 0;
    while off < data.len() {
        let Some(raw) = data.get(off..) else {
            return false;
        };
        if raw.len() < 9 {
            return false;
        }
        if !Header::plausible(raw, max_frame) {
            return false;
        }
        let Some(h) = Header::parse(raw) else {
            return false;
        };
        frames += 1;
        off = off.saturating_add(9).saturating_add(h.len as usize);
        if frames >= 3 {
            return true;
        }
    }
    frames > 0 && off == data.len()
}

/// Whether `b` starts like a connection's first bytes in either role: the
/// client preface, or a server's SETTINGS frame (a server may write its
/// preface before it reads the client's). `b` may be shorter than either.
pub fn looks_like_start(b: &[u8]) -> Option<bool> {
    let n = b.len().min(PREFACE.len());
    if b.get(..n) == PREFACE.get(..n) {
        return if n >= 4 { Some(true) } else { None };
    }
    // 00 LL LL 04 FF 00 00 00 00: a SETTINGS frame on stream 0, length a
    // multiple of 6, no flags but maybe ACK (never first, but harmless).
    match b.get(..9) {
        Some(raw) => Some(
            raw.first() == Some(&0)
                && raw.get(3) == Some(&ty::SETTINGS)
                && Header::plausible(raw, DEFAULT_MAX_FRAME),
        ),
        None => {
            let prefix_ok = b.first().is_none_or(|&x| x == 0)
                && b.get(3).is_none_or(|&x| x == ty::SETTINGS)
                && b.get(4).is_none_or(|&x| x == 0);
            if prefix_ok {
                None
            } else {
                Some(false)
            }
        }
    }
}

/// One frame's bytes: the 9-byte header, then `payload` (tests).
#[cfg(test)]
pub(crate) fn encode(t: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    v.push(t);
    v.push(flags);
    v.extend_from_slice(&stream.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(len: u32, ty: u8, flags: u8, stream: u32) -> Vec<u8> {
        let mut v = len.to_be_bytes()[1..].to_vec();
        v.push(ty);
        v.push(flags);
        v.extend_from_slice(&stream.to_be_bytes());
        v.extend(std::iter::repeat_n(0u8, len as usize));
        v
    }

    #[test]
    fn headers_parse_and_plausibility() {
        let f = frame(18, ty::SETTINGS, 0, 0);
        assert_eq!(
            Header::parse(&f),
            Some(Header {
                len: 18,
                ty: 4,
                flags: 0,
                stream: 0
            })
        );
        assert!(Header::plausible(&f, DEFAULT_MAX_FRAME));
        // SETTINGS on a stream, DATA on stream 0, a bad length, bad flags.
        assert!(!Header::plausible(
            &frame(6, ty::SETTINGS, 0, 1),
            DEFAULT_MAX_FRAME
        ));
        assert!(!Header::plausible(
            &frame(6, ty::DATA, 0, 0),
            DEFAULT_MAX_FRAME
        ));
        assert!(!Header::plausible(
            &frame(7, ty::SETTINGS, 0, 0),
            DEFAULT_MAX_FRAME
        ));
        assert!(!Header::plausible(
            &frame(4, ty::DATA, 0x40, 1),
            DEFAULT_MAX_FRAME
        ));
        assert!(!Header::plausible(
            &frame(20000, ty::DATA, 0, 1),
            DEFAULT_MAX_FRAME
        ));
        assert!(Header::plausible(&frame(20000, ty::DATA, 0, 1), 32768));
        assert!(!Header::plausible(b"GET / HTTP/1.1\r\n", DEFAULT_MAX_FRAME));
        assert!(!Header::plausible(
            &[0x16, 3, 3, 0, 0x40, 1, 0, 0, 0],
            DEFAULT_MAX_FRAME
        ));
    }

    #[test]
    fn runs_of_frames() {
        let mut run = frame(0, ty::SETTINGS, flags::ACK, 0);
        run.extend(frame(8, ty::PING, 0, 0));
        assert!(
            plausible_run(&run, DEFAULT_MAX_FRAME),
            "two frames ending exactly"
        );
        run.extend(frame(4, ty::WINDOW_UPDATE, 0, 0));
        run.extend_from_slice(b"garbage");
        assert!(
            plausible_run(&run, DEFAULT_MAX_FRAME),
            "three plausible frames"
        );
        let mut cut = frame(100, ty::DATA, 0, 1);
        cut.truncate(50);
        assert!(!plausible_run(&cut, DEFAULT_MAX_FRAME), "one frame, cut");
        assert!(!plausible_run(
            b"HTTP/1.1 200 OK\r\n\r\n",
            DEFAULT_MAX_FRAME
        ));
        assert!(!plausible_run(b"", DEFAULT_MAX_FRAME));
    }

    #[test]
    fn connection_starts() {
        assert_eq!(looks_like_start(PREFACE), Some(true));
        assert_eq!(looks_like_start(b"PRI "), Some(true));
        assert_eq!(looks_like_start(b"PR"), None);
        assert_eq!(looks_like_start(&frame(18, ty::SETTINGS, 0, 0)), Some(true));
        assert_eq!(looks_like_start(&[0, 0]), None);
        assert_eq!(looks_like_start(b"GET "), Some(false));
        assert_eq!(looks_like_start(&frame(8, ty::PING, 0, 0)), Some(false));
    }
}
