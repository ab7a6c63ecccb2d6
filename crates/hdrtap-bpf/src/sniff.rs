//! The kernel's HTTP gate (`bpf/lib/http_sniff.bpf.h`), compiled for the host
//! so that tests exercise the exact code the BPF program runs.

/// Gate verdicts (HDRTAP_SNIFF_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    No,
    Maybe,
    Http,
}

extern "C" {
    fn hdrtap_sniff_word_host(w: u32, n: u32) -> i32;
    fn hdrtap_h2_frame_plausible_host(h: *const u8) -> i32;
}

/// Whether the kernel takes `h` (9 bytes) as an HTTP/2 frame header on a
/// connection found mid-stream.
pub fn h2_frame_plausible(h: &[u8; 9]) -> bool {
    // SAFETY: the C function reads exactly 9 bytes from the pointer, which
    // points at a live 9-byte array.
    unsafe { hdrtap_h2_frame_plausible_host(h.as_ptr()) != 0 }
}

/// What the kernel decides for a stream that starts with `prefix`
/// (only the first four bytes matter).
pub fn sniff(prefix: &[u8]) -> Verdict {
    let n = prefix.len().min(4);
    let mut w = [0u8; 4];
    w[..n].copy_from_slice(&prefix[..n]);
    // SAFETY: a pure C function of two integers, no pointers, no state.
    match unsafe { hdrtap_sniff_word_host(u32::from_le_bytes(w), n as u32) } {
        2 => Verdict::Http,
        1 => Verdict::Maybe,
        _ => Verdict::No,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_responses_pass() {
        for s in [
            "GET / HTTP/1.1",
            "POST /x",
            "PUT /",
            "HEAD /",
            "DELETE /a",
            "OPTIONS *",
            "PATCH /",
            "CONNECT host:443",
            "TRACE /",
            "HTTP/1.1 200 OK",
            "HTTP/1.0 404",
            "PROPFIND /",
        ] {
            assert_eq!(sniff(s.as_bytes()), Verdict::Http, "{s}");
        }
    }

    #[test]
    fn http2_starts_pass() {
        // The client preface, and a server's SETTINGS written first.
        assert_eq!(sniff(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Verdict::Http);
        assert_eq!(sniff(b"\x00\x00\x12\x04\x00"), Verdict::Http);
        assert_eq!(sniff(b"\x00\x00"), Verdict::Maybe);
        assert_eq!(sniff(b"PR"), Verdict::Maybe);
    }

    /// The kernel's check and userspace's (`hdrtap_core::http2::frame`)
    /// agree on every frame header a mid-stream connection may start with.
    #[test]
    fn h2_frame_plausibility_matches_userspace() {
        let mut seen = 0;
        for ty in 0..=12u8 {
            for flags in [0u8, 0x1, 0x4, 0x5, 0x8, 0x20, 0x25, 0x40, 0xff] {
                for len in [0u32, 4, 5, 6, 8, 12, 100, 16384, 16385] {
                    for stream in [0u32, 1, 0x8000_0001] {
                        let mut h = [0u8; 9];
                        h[..3].copy_from_slice(&len.to_be_bytes()[1..]);
                        h[3] = ty;
                        h[4] = flags;
                        h[5..].copy_from_slice(&stream.to_be_bytes());
                        let user = hdrtap_core::http2::frame::Header::plausible(
                            &h,
                            hdrtap_core::http2::frame::DEFAULT_MAX_FRAME,
                        );
                        assert_eq!(h2_frame_plausible(&h), user, "{h:02x?}");
                        seen += usize::from(user);
                    }
                }
            }
        }
        assert!(seen > 30, "only {seen} plausible headers in the table");
        assert!(!h2_frame_plausible(b"GET / HTT"));
        assert!(!h2_frame_plausible(&[0x16, 3, 3, 0, 0x40, 1, 0, 0, 0]));
    }

    #[test]
    fn one_byte_at_a_time_stays_maybe() {
        let req = b"GET / HTTP/1.1";
        for n in 0..4 {
            assert_eq!(sniff(&req[..n]), Verdict::Maybe, "prefix of {n} bytes");
        }
        assert_eq!(sniff(&req[..4]), Verdict::Http);
    }

    #[test]
    fn other_protocols_are_gated() {
        for s in [
            &b"\x16\x03\x01\x02"[..], // TLS ClientHello
            b"SSH-2.0-OpenSSH",
            b"*3\r\n$3\r\nSET", // redis RESP
            b"get / http/1.1",  // methods are case-sensitive
            b"\x00\x00\x00\x00",
            b"\x00\x00\x08\x06", // a PING frame first: not how HTTP/2 starts
            b"220 smtp ready",
        ] {
            assert_eq!(sniff(s), Verdict::No, "{:?}", String::from_utf8_lossy(s));
        }
        // "G" could still become "GET ": not decided yet.
        assert_eq!(sniff(b"G"), Verdict::Maybe);
        assert_eq!(sniff(b"X"), Verdict::No);
    }
}
