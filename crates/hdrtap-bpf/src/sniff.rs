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
            b"PRI * HTTP/2.0",  // HTTP/2 preface: not HTTP/1
            b"get / http/1.1",  // methods are case-sensitive
            b"\x00\x00\x00\x00",
            b"220 smtp ready",
        ] {
            assert_eq!(sniff(s), Verdict::No, "{:?}", String::from_utf8_lossy(s));
        }
        // "G" could still become "GET ": not decided yet.
        assert_eq!(sniff(b"G"), Verdict::Maybe);
        assert_eq!(sniff(b"X"), Verdict::No);
    }
}
