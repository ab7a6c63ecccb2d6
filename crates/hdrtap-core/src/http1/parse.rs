//! HTTP/1.x framing for one direction of one connection: a state machine that
//! finds message boundaries in a byte stream and recovers when bytes are
//! missing or are not HTTP.
//!
//! * Start line and header block: `httparse` ([`parse_head`]). Leading blank
//!   lines between messages are skipped.
//! * Body: Content-Length, `Transfer-Encoding: chunked` (chunk-size lines by
//!   `httparse::parse_chunk_size`, trailers up to the blank line), read until
//!   close, or none — decided by [`framing`] from the headers and, for
//!   responses, the request they answer (HEAD, CONNECT).
//! * Recovery ("hunting"): after a parse error, or missing bytes whose framing
//!   is unknown, bytes are discarded up to the next plausible message start
//!   ([`plausible_start`]: a start line httparse accepts), looked for at line
//!   starts and event starts only.
//!
//! The machine never copies payload and never builds records: it hands each
//! parsed header block ([`Parsed`], owned strings) to a [`Sink`] — the
//! connection, which pairs requests with responses and emits the record — and
//! is told back how the body is framed ([`Next`]). Bytes it cannot consume yet
//! (an unfinished header block, chunk-size line or candidate start line) are
//! left to the caller, which offers them again with more bytes appended; the
//! machine bounds how many it ever leaves (`max_header_bytes`), so a
//! direction's buffer stays bounded whatever arrives.
//!
//! Why a separate room: the framing rules are pure functions of bytes and
//! headers, testable without events, connections or pairing.

use std::mem::{self, MaybeUninit};

use httparse::{Header, ParserConfig, Status};

use super::TrackerStats;
use crate::headers::Headers;
use crate::record::{CompactString, HttpKind};
use crate::stream::Meta;

/// Longest chunk-size line (with extensions) waited for; longer is an error.
const MAX_CHUNK_LINE: usize = 4096;
/// Header slots kept on the stack for a parse (uninitialised, so free).
const STACK_HEADERS: usize = 256;
/// A header block still going after this many times `max_header_bytes`
/// (truncated, skipping to its end), or a trailer section longer than
/// `max_header_bytes`, is given up as not HTTP.
const SKIP_HEAD_FACTOR: usize = 64;
/// The smallest `max_header_bytes` the machine accepts.
pub(super) const MIN_HEADER_BYTES: usize = 256;
/// HTTP/2 with prior knowledge starts with this; such a connection is left alone.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n";

/// How the body of a message is delimited, as the headers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BodyLen {
    /// Neither Content-Length nor Transfer-Encoding.
    Absent,
    /// A valid Content-Length (and no Transfer-Encoding).
    Length(u64),
    /// Transfer-Encoding whose last coding is chunked.
    Chunked,
    /// Transfer-Encoding whose last coding is not chunked.
    OtherCoding,
    /// Content-Length not a number, or several different ones.
    BadLength,
}

/// One parsed header block, owned, plus what framing needs from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Parsed {
    pub kind: HttpKind,
    /// "HTTP/1.0" or "HTTP/1.1".
    pub version: &'static str,
    pub method: Option<CompactString>,
    pub target: Option<CompactString>,
    pub status: Option<u16>,
    pub reason: Option<CompactString>,
    /// At most `max_headers`, wire order.
    pub headers: Headers,
    /// Start line through blank line (or what is known of it, see flags).
    pub header_bytes: usize,
    pub non_utf8: bool,
    /// Cut by `max_header_bytes` or `max_headers`.
    pub truncated: bool,
    /// httparse rejected the block; `headers` are the lines it could read.
    pub malformed: bool,
    /// Bytes of the block were missing; `headers` are the lines before.
    pub gap: bool,
    /// The connection closed before the block ended.
    pub incomplete: bool,
    /// `record::anomaly` bits (set only for blocks strict parsing rejected).
    pub anomalies: u8,
    pub body: BodyLen,
    /// Requests: an `Upgrade` header is present.
    pub upgrade: bool,
    /// Requests: method is HEAD / CONNECT.
    pub is_head: bool,
    pub is_connect: bool,
}

impl Parsed {
    /// The block cannot be trusted to tell where the message ends.
    fn damaged(&self) -> bool {
        self.gap || self.incomplete || self.malformed
    }
}

/// What a response's framing needs to know about the request it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ReqInfo {
    pub head: bool,
    pub connect: bool,
}

/// Where in a body the machine is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Body {
    /// This many body bytes remain.
    Length(u64),
    /// Expecting a chunk-size line.
    ChunkSize,
    /// This many bytes of chunk data remain.
    ChunkData(u64),
    /// Expecting the CRLF after chunk data.
    ChunkDataEnd,
    /// After the last chunk: trailer lines up to a blank line.
    Trailers { scan: LineScan, seen: usize },
}

/// What follows a header block (returned by [`framing`] via the [`Sink`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Next {
    /// No body: the next message starts right after the block.
    Idle,
    /// A body; afterwards `Idle`, or `AwaitTunnel` if `then_await`.
    Body { body: Body, then_await: bool },
    /// An Upgrade or CONNECT request: hold this direction's bytes until the
    /// response says whether the connection became a tunnel.
    AwaitTunnel,
    /// A response delimited by the connection closing.
    UntilClose,
    /// The connection is no longer HTTP/1 (101, CONNECT 2xx, HTTP/2).
    Tunnel,
    /// Framing unknown: look for the next plausible message start.
    Hunt,
}

/// How the message after `p` is delimited. `req` is the request a response
/// answers (None for requests, or an unpaired response).
pub(super) fn framing(p: &Parsed, req: Option<ReqInfo>) -> Next {
    match p.kind {
        HttpKind::Request => {
            let then_await = p.upgrade || p.is_connect;
            let after = if then_await {
                Next::AwaitTunnel
            } else {
                Next::Idle
            };
            if p.damaged() {
                return Next::Hunt;
            }
            match p.body {
                BodyLen::Chunked => Next::Body {
                    body: Body::ChunkSize,
                    then_await,
                },
                BodyLen::Length(0) => after,
                BodyLen::Length(n) => Next::Body {
                    body: Body::Length(n),
                    then_await,
                },
                // The missing part of a truncated block may hold Content-Length.
                BodyLen::Absent if p.truncated => Next::Hunt,
                BodyLen::Absent => after,
                BodyLen::OtherCoding | BodyLen::BadLength => Next::Hunt,
            }
        }
        // HTTP/1 parses requests and responses only.
        HttpKind::Response | HttpKind::Trailers | HttpKind::Reset => {
            let status = p.status.unwrap_or(0);
            let req = req.unwrap_or(ReqInfo {
                head: false,
                connect: false,
            });
            if status == 101 || (req.connect && (200..300).contains(&status)) {
                return Next::Tunnel;
            }
            if p.damaged() {
                return Next::Hunt;
            }
            if (100..200).contains(&status) || status == 204 || status == 304 || req.head {
                return Next::Idle;
            }
            match p.body {
                BodyLen::Chunked => Next::Body {
                    body: Body::ChunkSize,
                    then_await: false,
                },
                BodyLen::OtherCoding => Next::UntilClose,
                BodyLen::Length(0) => Next::Idle,
                BodyLen::Length(n) => Next::Body {
                    body: Body::Length(n),
                    then_await: false,
                },
                BodyLen::BadLength => Next::Hunt,
                BodyLen::Absent if p.truncated => Next::Hunt,
                BodyLen::Absent => Next::UntilClose,
            }
        }
    }
}

/// The connection side of the machine: resolves metadata, takes parsed
/// blocks (and emits records), and holds the counters.
pub(super) trait Sink {
    /// Metadata of the event that carried byte `at` of the current input.
    fn meta_at(&self, at: usize) -> Meta;
    /// A header block: emit its record; returns how the message continues.
    fn head(&mut self, p: Parsed, meta: Meta) -> Next;
    /// True when the machine must return now (another direction must be
    /// resumed before this one goes on).
    fn should_yield(&self) -> bool;
    /// The connection speaks HTTP/2 (prior knowledge): stop parsing it.
    fn not_http1(&mut self);
    /// Counters.
    fn stats(&mut self) -> &mut TrackerStats;
}

/// Streaming search for the blank line that ends a header or trailer block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LineScan {
    /// Nothing but (at most one) CR seen on the current line.
    at_start: bool,
    cr: bool,
}

impl LineScan {
    /// A scan positioned at the start of a line.
    pub fn new() -> Self {
        LineScan {
            at_start: true,
            cr: false,
        }
    }

    /// Feed bytes; returns the offset just past the blank line's LF.
    pub fn feed(&mut self, b: &[u8]) -> Option<usize> {
        let mut i = 0;
        while let Some(&c) = b.get(i) {
            if !self.at_start {
                let k = tail(b, i).iter().position(|&c| c == b'\n')?;
                i += k + 1;
                self.at_start = true;
                self.cr = false;
                continue;
            }
            match c {
                b'\n' => return Some(i + 1),
                b'\r' if !self.cr => self.cr = true,
                _ => {
                    self.at_start = false;
                    self.cr = false;
                    continue; // re-examined by the LF search above
                }
            }
            i += 1;
        }
        None
    }
}

/// `b[i..]`, or empty.
pub(super) fn tail(b: &[u8], i: usize) -> &[u8] {
    b.get(i..).unwrap_or_default()
}

/// `b[..n]`, or all of `b`.
fn head(b: &[u8], n: usize) -> &[u8] {
    b.get(..n).unwrap_or(b)
}

/// Request or response, judging by the first bytes; None if too few to say.
fn sniff(b: &[u8]) -> Option<HttpKind> {
    if b.starts_with(b"HTTP/") {
        Some(HttpKind::Response)
    } else if b.len() < 5 && b"HTTP/".starts_with(b) {
        None
    } else {
        Some(HttpKind::Request)
    }
}

/// Parser settings for well-formed traffic: the leniencies real servers and
/// browsers accept (extra spaces in start lines, space before a response
/// header's colon, obsolete line folding in responses) are not errors.
fn strict_config() -> ParserConfig {
    let mut c = ParserConfig::default();
    c.allow_multiple_spaces_in_request_line_delimiters(true)
        .allow_multiple_spaces_in_response_status_delimiters(true)
        .allow_spaces_after_header_name_in_responses(true)
        .allow_obsolete_multiline_headers_in_responses(true);
    c
}

/// Settings for salvaging a block `strict_config` rejected: invalid header
/// lines are skipped (as browsers do).
fn lenient_config() -> ParserConfig {
    let mut c = strict_config();
    c.ignore_invalid_headers_in_requests(true)
        .ignore_invalid_headers_in_responses(true);
    c
}

/// Outcome of [`parse_head`].
#[derive(Debug)]
pub(super) enum HeadResult {
    Complete(Parsed),
    /// Valid so far; needs more bytes.
    Partial,
    /// Not an HTTP/1.x start line (or unsalvageable header block).
    Invalid,
}

/// Parse the header block at the start of `buf` with httparse, keeping at
/// most `max_headers` headers (all of them still count for framing). A block
/// httparse rejects is parsed again skipping invalid header lines; if that
/// works the result is flagged `malformed`.
pub(super) fn parse_head(buf: &[u8], kind: HttpKind, max_headers: usize) -> HeadResult {
    let mut stack = [const { MaybeUninit::<Header<'_>>::uninit() }; STACK_HEADERS];
    let mut heap: Vec<MaybeUninit<Header<'_>>>;
    let slots: &mut [MaybeUninit<Header<'_>>] = if max_headers <= STACK_HEADERS {
        stack.get_mut(..max_headers).unwrap_or_default()
    } else {
        heap = vec![MaybeUninit::uninit(); max_headers];
        &mut heap
    };
    let strict = strict_config();
    let err = match try_parse(buf, kind, &strict, slots, max_headers) {
        Ok(Status::Complete(p)) => return HeadResult::Complete(p),
        Ok(Status::Partial) => return HeadResult::Partial,
        Err(e) => e,
    };
    // Rare paths: more headers than slots, or invalid input. Size a heap
    // buffer by the line count so the whole block fits.
    let lines = buf.iter().filter(|&&b| b == b'\n').count() + 1;
    let mut big = vec![MaybeUninit::uninit(); lines];
    if err == httparse::Error::TooManyHeaders {
        match try_parse(buf, kind, &strict, &mut big, max_headers) {
            Ok(Status::Complete(p)) => return HeadResult::Complete(p),
            Ok(Status::Partial) => return HeadResult::Partial,
            Err(_) => {}
        }
    }
    match try_parse(buf, kind, &lenient_config(), &mut big, max_headers) {
        Ok(Status::Complete(mut p)) => {
            p.malformed = true;
            p.anomalies = crate::record::anomaly::scan(buf);
            HeadResult::Complete(p)
        }
        Ok(Status::Partial) => HeadResult::Partial,
        Err(httparse::Error::HeaderValue) => salvage_ctl(buf, kind, max_headers),
        Err(_) => HeadResult::Invalid,
    }
}

/// A header value with a NUL or a CR not followed by LF defeats even the
/// lenient parse (httparse gives up on the whole block). Such lines are
/// what header-injection attempts look like, so rather than lose the
/// message: in a copy of the header block, turn those bytes into DEL (0x7f,
/// also invalid, so the lenient parse skips just that line; same length, so
/// every offset holds) and parse again. The record is `malformed` with the
/// `ctl_in_value` anomaly; the offending lines are left out, like every
/// other invalid line.
fn salvage_ctl(buf: &[u8], kind: HttpKind, max_headers: usize) -> HeadResult {
    // The header block: through the first empty line, or all of `buf`.
    let end = buf
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| i + 2)
        .or_else(|| buf.windows(3).position(|w| w == b"\n\r\n").map(|i| i + 3))
        .unwrap_or(buf.len());
    let mut copy = buf.to_vec();
    let mut changed = false;
    for i in 0..end.min(copy.len()) {
        let next = copy.get(i + 1).copied();
        if let Some(b) = copy.get_mut(i) {
            if *b == 0 || (*b == b'\r' && next != Some(b'\n')) {
                *b = 0x7f;
                changed = true;
            }
        }
    }
    if !changed {
        return HeadResult::Invalid;
    }
    let lines = copy.iter().filter(|&&b| b == b'\n').count() + 1;
    let mut slots = vec![MaybeUninit::uninit(); lines];
    match try_parse(&copy, kind, &lenient_config(), &mut slots, max_headers) {
        Ok(Status::Complete(mut p)) => {
            p.malformed = true;
            p.anomalies = crate::record::anomaly::scan(buf) | crate::record::anomaly::CTL_IN_VALUE;
            HeadResult::Complete(p)
        }
        Ok(Status::Partial) => HeadResult::Partial,
        Err(_) => HeadResult::Invalid,
    }
}

// Inlined, with Parsed::build: otherwise the Parsed (a few hundred bytes)
// is built in one frame and copied out through each return, and those
// copies were libc memcpy calls, 3% of hdrtap http's CPU time under load
// (perf, nginx+wrk). parse_head itself stays out of line: inlining it too
// into the parser's step measured slower.
#[inline(always)]
fn try_parse<'b>(
    buf: &'b [u8],
    kind: HttpKind,
    cfg: &ParserConfig,
    slots: &mut [MaybeUninit<Header<'b>>],
    keep: usize,
) -> httparse::Result<Parsed> {
    Ok(match kind {
        HttpKind::Request => {
            let mut req = httparse::Request::new(&mut []);
            match cfg.parse_request_with_uninit_headers(&mut req, buf, slots)? {
                Status::Complete(n) => Status::Complete(Parsed::build(
                    kind,
                    req.version,
                    (req.method, req.path),
                    (None, None),
                    (req.headers, buf),
                    n,
                    keep,
                )),
                Status::Partial => Status::Partial,
            }
        }
        // HTTP/1 parses requests and responses only.
        HttpKind::Response | HttpKind::Trailers | HttpKind::Reset => {
            let mut resp = httparse::Response::new(&mut []);
            match cfg.parse_response_with_uninit_headers(&mut resp, buf, slots)? {
                Status::Complete(n) => Status::Complete(Parsed::build(
                    kind,
                    resp.version,
                    (None, None),
                    (resp.code, resp.reason),
                    (resp.headers, buf),
                    n,
                    keep,
                )),
                Status::Partial => Status::Partial,
            }
        }
    })
}

/// The bytes of `buf` from the first header's name to the last one's value,
/// located by where httparse's slices point (they all point into `buf`).
fn header_region<'a>(buf: &'a [u8], headers: &[Header<'_>]) -> Option<&'a [u8]> {
    let base = buf.as_ptr() as usize;
    let first = headers.first()?;
    let last = headers.last()?;
    let start = (first.name.as_ptr() as usize).checked_sub(base)?;
    let end = (last.value.as_ptr() as usize)
        .checked_sub(base)?
        .checked_add(last.value.len())?;
    buf.get(start..end)
}

impl Parsed {
    #[inline(always)]
    fn build(
        kind: HttpKind,
        version: Option<u8>,
        (method, path): (Option<&str>, Option<&str>),
        (code, reason): (Option<u16>, Option<&str>),
        // The parsed headers and the bytes they point into.
        (headers, buf): (&[Header<'_>], &[u8]),
        header_bytes: usize,
        keep: usize,
    ) -> Parsed {
        let mut non_utf8 = false;
        let mut cl: Option<Option<u64>> = None; // Some(None): invalid
        let mut te: Option<bool> = None; // Some(last coding is chunked)
        let mut upgrade = false;
        let kept = headers.get(..keep).unwrap_or(headers);
        // Fast path: the kept lines as one copy of their part of the block.
        let fast = header_region(buf, kept).and_then(|block| {
            Headers::from_block(block, kept.iter().map(|h| (h.name.as_bytes(), h.value)))
        });
        let from_block = fast.is_some();
        let mut out = fast.unwrap_or_default();
        for h in headers {
            let name = h.name;
            if name.eq_ignore_ascii_case("content-length") {
                let v = content_length(h.value);
                cl = Some(match cl {
                    None => v,
                    Some(prev) if prev == v => v,
                    Some(_) => None,
                });
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                te = Some(last_coding_is_chunked(h.value));
            } else if name.eq_ignore_ascii_case("upgrade") {
                upgrade = true;
            }
            if !from_block && out.len() < keep {
                match std::str::from_utf8(h.value) {
                    Ok(value) => out.push(name, value),
                    Err(_) => {
                        non_utf8 = true;
                        out.push(name, &String::from_utf8_lossy(h.value));
                    }
                }
            }
        }
        let body = match (te, cl) {
            (Some(true), _) => BodyLen::Chunked,
            (Some(false), _) => BodyLen::OtherCoding,
            (None, Some(Some(n))) => BodyLen::Length(n),
            (None, Some(None)) => BodyLen::BadLength,
            (None, None) => BodyLen::Absent,
        };
        let method = method.map(CompactString::from);
        let is_head = method.as_deref() == Some("HEAD");
        let is_connect = method.as_deref() == Some("CONNECT");
        Parsed {
            kind,
            version: if version == Some(0) {
                "HTTP/1.0"
            } else {
                "HTTP/1.1"
            },
            method,
            target: path.map(CompactString::from),
            status: code,
            reason: reason.map(CompactString::from),
            truncated: headers.len() > kept.len(),
            headers: out,
            header_bytes,
            non_utf8,
            // A bad Content-Length, or a request body in an unknown coding,
            // leaves the end of the message unknown: the block is malformed.
            malformed: body == BodyLen::BadLength
                || (kind == HttpKind::Request && body == BodyLen::OtherCoding),
            gap: false,
            incomplete: false,
            anomalies: 0,
            body,
            upgrade: upgrade && kind == HttpKind::Request,
            is_head,
            is_connect,
        }
    }
}

/// A Content-Length value: decimal digits, optionally a comma-separated list
/// of equal values. None if invalid.
fn content_length(v: &[u8]) -> Option<u64> {
    let mut out: Option<u64> = None;
    for part in v.split(|&b| b == b',') {
        let part = part.trim_ascii();
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n = std::str::from_utf8(part).ok()?.parse::<u64>().ok()?;
        match out {
            Some(prev) if prev != n => return None,
            _ => out = Some(n),
        }
    }
    out
}

/// Whether the last coding in a Transfer-Encoding value is `chunked`.
fn last_coding_is_chunked(v: &[u8]) -> bool {
    v.rsplit(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .find(|c| !c.is_empty())
        .is_some_and(|c| c.eq_ignore_ascii_case(b"chunked"))
}

/// Verdict on a candidate message start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Plausible {
    /// A complete start line httparse accepts.
    Yes,
    /// Not a start line.
    No,
    /// Valid so far; the line continues past the available bytes.
    NeedMore,
}

/// Does `b` begin with a request line (`TOKEN SP target SP HTTP/1.x`) or
/// status line (`HTTP/1.x SP 3DIGIT …`)? httparse judges the first line
/// alone, with no header slots: a valid start line leaves it wanting more
/// (the header block). Lines longer than `limit` are not plausible.
pub(super) fn plausible_start(b: &[u8], limit: usize) -> Plausible {
    match b.first() {
        None => return Plausible::NeedMore,
        Some(b'\r' | b'\n') => return Plausible::No,
        Some(_) => {}
    }
    // Judge the first line only: what follows is the header block's business.
    let w = head(b, limit);
    let w = match w.iter().position(|&c| c == b'\n') {
        Some(k) => head(w, k + 1),
        None => w,
    };
    let cfg = strict_config();
    let res = match sniff(w) {
        Some(HttpKind::Response | HttpKind::Trailers | HttpKind::Reset) => {
            cfg.parse_response(&mut httparse::Response::new(&mut []), w)
        }
        Some(HttpKind::Request) => cfg.parse_request(&mut httparse::Request::new(&mut []), w),
        None => Ok(Status::Partial),
    };
    match res {
        Ok(Status::Complete(_)) | Err(httparse::Error::TooManyHeaders) => Plausible::Yes,
        Ok(Status::Partial) if w.contains(&b'\n') => Plausible::Yes,
        Ok(Status::Partial) if b.len() < limit => Plausible::NeedMore,
        Ok(Status::Partial) | Err(_) => Plausible::No,
    }
}

/// Result of [`hunt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hunted {
    /// A plausible start at the returned offset.
    Found,
    /// A candidate at the returned offset needs more bytes.
    NeedMore,
    /// No start in the bytes; whether their end is a line start.
    Exhausted { line_start: bool },
}

/// Look for a plausible message start in `b`: at offset 0 if `line_start`,
/// at `boundary` (where the current event's bytes begin, if in `b`), and
/// after every LF. Returns the bytes to skip and what was found there.
///
/// A candidate line that runs across `boundary` loses to a plausible start
/// at `boundary` itself: messages start at syscalls far more often than a
/// start line is split by one, and a body's last bytes without a newline
/// (`…abc`) must not swallow the request written after them (`abcGET /`).
fn hunt(b: &[u8], boundary: Option<usize>, line_start: bool, limit: usize) -> (usize, Hunted) {
    let mut i = 0;
    let mut cand = line_start || boundary == Some(0);
    loop {
        if i >= b.len() {
            return (b.len(), Hunted::Exhausted { line_start: cand });
        }
        if cand {
            let verdict = plausible_start(tail(b, i), limit);
            if verdict != Plausible::No {
                if let Some(e) = boundary.filter(|&e| e > i && e < b.len()) {
                    let spans = !head(b, e).get(i..).unwrap_or_default().contains(&b'\n');
                    if spans {
                        match plausible_start(tail(b, e), limit) {
                            Plausible::Yes => return (e, Hunted::Found),
                            Plausible::NeedMore => return (e, Hunted::NeedMore),
                            Plausible::No => {}
                        }
                    }
                }
                return (
                    i,
                    if verdict == Plausible::Yes {
                        Hunted::Found
                    } else {
                        Hunted::NeedMore
                    },
                );
            }
        }
        let nl = tail(b, i)
            .iter()
            .position(|&c| c == b'\n')
            .map(|k| i + k + 1);
        let ev = boundary.filter(|&e| e > i && e < b.len());
        i = match (nl, ev) {
            (Some(a), Some(e)) => a.min(e),
            (Some(a), None) => a,
            (None, Some(e)) => e,
            (None, None) => return (b.len(), Hunted::Exhausted { line_start: false }),
        };
        cand = true;
    }
}

/// Length of the blank lines (CRLF or LF) at the start of `b`; false if `b`
/// ends in a lone CR (more bytes needed to judge).
fn blank_prefix(b: &[u8]) -> (usize, bool) {
    let mut s = 0;
    loop {
        match b.get(s) {
            Some(b'\n') => s += 1,
            Some(b'\r') => match b.get(s + 1) {
                Some(b'\n') => s += 2,
                Some(_) => return (s, true),
                None => return (s, false),
            },
            _ => return (s, true),
        }
    }
}

/// Parse the complete lines of an unfinished block: cut after the last LF,
/// append CRLF, give it to httparse.
fn cut_parse(block: &[u8], max_headers: usize) -> Option<Parsed> {
    let kind = sniff(block)?;
    let cut = block.iter().rposition(|&b| b == b'\n')? + 1;
    let mut tmp = Vec::with_capacity(cut + 2);
    tmp.extend_from_slice(head(block, cut));
    tmp.extend_from_slice(b"\r\n");
    match parse_head(&tmp, kind, max_headers) {
        HeadResult::Complete(p) => Some(p),
        HeadResult::Partial | HeadResult::Invalid => None,
    }
}

/// A truncated header block whose record waits for the block's end.
#[derive(Debug)]
struct Held {
    parsed: Parsed,
    meta: Meta,
}

#[derive(Debug)]
enum St {
    /// Between messages: the next bytes start a header block.
    Idle,
    /// Looking for a plausible message start. `line_start`: the input's
    /// first byte starts a line (or an event). `counted`: this hunt has
    /// already been counted in `resyncs`.
    Hunt {
        line_start: bool,
        counted: bool,
    },
    Body(Body),
    /// The record of a truncated block is held until the block ends.
    SkipHead {
        scan: LineScan,
        held: Box<Held>,
        seen: usize,
    },
    /// Waiting for the response to an Upgrade/CONNECT request.
    AwaitTunnel,
    /// A response body delimited by close.
    UntilClose,
    /// Not HTTP/1 any more.
    Tunnel,
}

/// One step of [`Machine::run`].
struct Step {
    consumed: usize,
    /// Return to the caller now (more bytes needed, or yield).
    stop: bool,
}

impl Step {
    fn go(consumed: usize) -> Self {
        Step {
            consumed,
            stop: false,
        }
    }
    fn wait(consumed: usize) -> Self {
        Step {
            consumed,
            stop: true,
        }
    }
}

/// The framing state machine of one direction.
#[derive(Debug)]
pub(super) struct Machine {
    st: St,
    /// After the current body, wait for a tunnel decision.
    then_await: bool,
    /// In `Idle`, the length of the input at the last `Partial` parse: the
    /// block cannot complete until an LF arrives past it.
    idle_scan: usize,
    max_header_bytes: usize,
    max_headers: usize,
}

impl Machine {
    /// A machine at a message boundary, or hunting for one if the
    /// connection was picked up mid-stream.
    pub fn new(midstream: bool, max_header_bytes: usize, max_headers: usize) -> Self {
        Machine {
            st: if midstream {
                St::Hunt {
                    line_start: true,
                    counted: false,
                }
            } else {
                St::Idle
            },
            then_await: false,
            idle_scan: 0,
            max_header_bytes: max_header_bytes.max(MIN_HEADER_BYTES),
            max_headers,
        }
    }

    fn set(&mut self, st: St) {
        self.st = st;
        self.idle_scan = 0;
    }

    fn hunt_soft(&mut self) {
        self.set(St::Hunt {
            line_start: true,
            counted: false,
        });
    }

    fn apply(&mut self, next: Next) {
        match next {
            Next::Idle => self.set(St::Idle),
            Next::Body { body, then_await } => {
                self.set(St::Body(body));
                self.then_await = then_await;
            }
            Next::AwaitTunnel => self.set(St::AwaitTunnel),
            Next::UntilClose => self.set(St::UntilClose),
            Next::Tunnel => self.set(St::Tunnel),
            Next::Hunt => self.hunt_soft(),
        }
    }

    fn body_done(&mut self) {
        if mem::take(&mut self.then_await) {
            self.set(St::AwaitTunnel);
        } else {
            self.set(St::Idle);
        }
    }

    /// The response to this direction's Upgrade/CONNECT request did not
    /// open a tunnel: parse on.
    pub fn resume(&mut self) {
        self.then_await = false;
        if matches!(self.st, St::AwaitTunnel) {
            self.set(St::Idle);
        }
    }

    /// Stop parsing for good (tunnel).
    pub fn stop(&mut self) {
        self.set(St::Tunnel);
    }

    /// The caller dropped the bytes the machine left (tunnel excepted):
    /// look for the next message start.
    pub fn lost_sync(&mut self) {
        if !matches!(self.st, St::Tunnel | St::UntilClose) {
            self.set(St::Hunt {
                line_start: false,
                counted: true,
            });
        }
    }

    /// Bytes from here on that are certainly message body: the rest of a
    /// Content-Length body, or of the current chunk's data (its CRLF and
    /// the next chunk-size line are not included). 0 elsewhere.
    pub fn body_ahead(&self) -> u64 {
        match self.st {
            St::Body(Body::Length(rem) | Body::ChunkData(rem)) => rem,
            _ => 0,
        }
    }

    /// A short name of the state, for tests.
    #[cfg(test)]
    pub fn state_name(&self) -> &'static str {
        match self.st {
            St::Idle => "idle",
            St::Hunt { .. } => "hunt",
            St::Body(_) => "body",
            St::SkipHead { .. } => "skip_head",
            St::AwaitTunnel => "await_tunnel",
            St::UntilClose => "until_close",
            St::Tunnel => "tunnel",
        }
    }

    /// Consume as much of `input` as possible; returns how many bytes were
    /// consumed. The rest must be offered again, with more bytes appended.
    /// `boundary` is the offset in `input` where the current event's bytes
    /// begin (0 when all of `input` is the current event's).
    pub fn run(&mut self, input: &[u8], boundary: usize, sink: &mut impl Sink) -> usize {
        let mut i = 0;
        let mut idle_steps = 0;
        while i < input.len() {
            let step = self.step(input, i, boundary, sink);
            i = i.saturating_add(step.consumed).min(input.len());
            if step.stop {
                break;
            }
            // Every state change without consumption leads to one that
            // consumes; this guard only bounds a bug.
            if step.consumed == 0 {
                idle_steps += 1;
                if idle_steps > 8 {
                    break;
                }
            } else {
                idle_steps = 0;
            }
        }
        i
    }

    fn step(&mut self, input: &[u8], i: usize, boundary: usize, sink: &mut impl Sink) -> Step {
        let rest = tail(input, i);
        let limit = self.max_header_bytes;
        match &mut self.st {
            St::Idle => self.step_idle(rest, i, sink),
            St::Hunt {
                line_start,
                counted,
            } => {
                let (n, found) = hunt(rest, boundary.checked_sub(i), *line_start, limit);
                if n > 0 {
                    let stats = sink.stats();
                    stats.skipped_bytes = stats.skipped_bytes.saturating_add(n as u64);
                    if !*counted {
                        stats.resyncs += 1;
                        *counted = true;
                    }
                }
                match found {
                    Hunted::Found => {
                        self.set(St::Idle);
                        Step::go(n)
                    }
                    Hunted::NeedMore => {
                        *line_start = true;
                        Step::wait(n)
                    }
                    Hunted::Exhausted { line_start: ls } => {
                        *line_start = ls;
                        Step::go(n)
                    }
                }
            }
            St::Body(body) => {
                let body = *body;
                self.step_body(body, rest, sink)
            }
            St::SkipHead { scan, seen, .. } => match scan.feed(rest) {
                Some(k) => {
                    let total = seen.saturating_add(k);
                    if let St::SkipHead { held, .. } = mem::replace(&mut self.st, St::Idle) {
                        let Held { mut parsed, meta } = *held;
                        parsed.header_bytes = total;
                        let next = sink.head(parsed, meta);
                        self.apply(next);
                    }
                    Step {
                        consumed: k,
                        stop: sink.should_yield(),
                    }
                }
                None => {
                    *seen = seen.saturating_add(rest.len());
                    if *seen > limit.saturating_mul(SKIP_HEAD_FACTOR) {
                        // No end in sight: not a header block after all.
                        let seen = *seen;
                        if let St::SkipHead { held, .. } = mem::replace(&mut self.st, St::Idle) {
                            let Held { mut parsed, meta } = *held;
                            parsed.header_bytes = seen;
                            parsed.malformed = true;
                            let next = sink.head(parsed, meta);
                            if next != Next::Tunnel {
                                self.hunt_soft();
                            } else {
                                self.apply(next);
                            }
                        }
                    }
                    Step::go(rest.len())
                }
            },
            St::AwaitTunnel => {
                if rest.len() > limit {
                    // Far more than a request while waiting: these are not
                    // HTTP/1 bytes in order; look for a message start.
                    self.hunt_from_next_byte(sink)
                } else {
                    Step::wait(0)
                }
            }
            St::UntilClose | St::Tunnel => Step::go(rest.len()),
        }
    }

    fn step_idle(&mut self, rest: &[u8], at: usize, sink: &mut impl Sink) -> Step {
        let (s, settled) = blank_prefix(rest);
        if s > 0 {
            self.idle_scan = 0;
            return Step::go(s);
        }
        if !settled {
            return Step::wait(0);
        }
        if rest.starts_with(H2_PREFACE) {
            sink.not_http1();
            self.set(St::Tunnel);
            return Step::go(0);
        }
        if rest.len() < H2_PREFACE.len() && H2_PREFACE.starts_with(rest) {
            return Step::wait(0);
        }
        let Some(kind) = sniff(rest) else {
            return Step::wait(0);
        };
        let limit = self.max_header_bytes;
        if rest.len() < limit && self.idle_scan > 0 && !tail(rest, self.idle_scan).contains(&b'\n')
        {
            // No new line since the last attempt: still partial.
            self.idle_scan = rest.len();
            return Step::wait(0);
        }
        match parse_head(head(rest, limit), kind, self.max_headers) {
            HeadResult::Complete(p) => {
                let n = p.header_bytes;
                let next = sink.head(p, sink.meta_at(at));
                self.apply(next);
                Step {
                    consumed: n,
                    stop: sink.should_yield(),
                }
            }
            HeadResult::Partial if rest.len() < limit => {
                self.idle_scan = rest.len();
                Step::wait(0)
            }
            HeadResult::Partial => self.truncate(head(rest, limit), at, sink),
            HeadResult::Invalid => self.framing_error(sink),
        }
    }

    /// `window` (max_header_bytes long) holds no complete header block: keep
    /// the complete lines as a truncated record, skip to the block's end.
    fn truncate(&mut self, window: &[u8], at: usize, sink: &mut impl Sink) -> Step {
        let cut = window.iter().rposition(|&b| b == b'\n').map(|k| k + 1);
        match (cut, cut_parse(window, self.max_headers)) {
            (Some(cut), Some(mut parsed)) => {
                parsed.truncated = true;
                let meta = sink.meta_at(at);
                self.set(St::SkipHead {
                    scan: LineScan::new(),
                    held: Box::new(Held { parsed, meta }),
                    seen: cut,
                });
                Step::go(cut)
            }
            // Not even a start line within the limit.
            _ => self.framing_error(sink),
        }
    }

    /// Not HTTP where a message (or chunk line) should start: count it and
    /// hunt from the next byte.
    fn framing_error(&mut self, sink: &mut impl Sink) -> Step {
        sink.stats().parse_errors += 1;
        self.hunt_from_next_byte(sink)
    }

    /// Hunt, excluding the current byte as a candidate (it was tried).
    fn hunt_from_next_byte(&mut self, sink: &mut impl Sink) -> Step {
        let stats = sink.stats();
        stats.resyncs += 1;
        stats.skipped_bytes = stats.skipped_bytes.saturating_add(1);
        self.set(St::Hunt {
            line_start: false,
            counted: true,
        });
        Step::go(1)
    }

    fn step_body(&mut self, body: Body, rest: &[u8], sink: &mut impl Sink) -> Step {
        match body {
            Body::Length(rem) => {
                let n = rem.min(rest.len() as u64);
                let left = rem - n;
                if left == 0 {
                    self.body_done();
                } else {
                    self.st = St::Body(Body::Length(left));
                }
                Step::go(n as usize)
            }
            Body::ChunkSize => match httparse::parse_chunk_size(rest) {
                Ok(Status::Complete((n, 0))) => {
                    self.st = St::Body(Body::Trailers {
                        scan: LineScan::new(),
                        seen: 0,
                    });
                    Step::go(n)
                }
                Ok(Status::Complete((n, size))) => {
                    self.st = St::Body(Body::ChunkData(size));
                    Step::go(n)
                }
                Ok(Status::Partial) if rest.len() <= MAX_CHUNK_LINE => Step::wait(0),
                Ok(Status::Partial) | Err(_) => self.framing_error(sink),
            },
            Body::ChunkData(rem) => {
                let n = rem.min(rest.len() as u64);
                let left = rem - n;
                self.st = St::Body(if left == 0 {
                    Body::ChunkDataEnd
                } else {
                    Body::ChunkData(left)
                });
                Step::go(n as usize)
            }
            Body::ChunkDataEnd => match (rest.first(), rest.get(1)) {
                (Some(b'\n'), _) => {
                    self.st = St::Body(Body::ChunkSize);
                    Step::go(1)
                }
                (Some(b'\r'), Some(b'\n')) => {
                    self.st = St::Body(Body::ChunkSize);
                    Step::go(2)
                }
                (Some(b'\r'), None) => Step::wait(0),
                _ => self.framing_error(sink),
            },
            Body::Trailers { mut scan, seen } => match scan.feed(rest) {
                Some(k) => {
                    self.body_done();
                    Step::go(k)
                }
                None => {
                    let seen = seen.saturating_add(rest.len());
                    if seen > self.max_header_bytes {
                        return self.framing_error(sink);
                    }
                    self.st = St::Body(Body::Trailers { scan, seen });
                    Step::go(rest.len())
                }
            },
        }
    }

    /// `len` bytes following `pend` (the bytes the machine left unconsumed)
    /// are missing. The caller empties `pend` afterwards. Returns false only
    /// when the missing bytes were all inside a body, so no message start
    /// can have been among them (pairing relies on counting messages).
    pub fn gap(&mut self, pend: &[u8], mut len: u64, sink: &mut impl Sink) -> bool {
        while len > 0 {
            match &mut self.st {
                St::Idle => {
                    let (s, _) = blank_prefix(pend);
                    let block = tail(pend, s);
                    if block.is_empty() {
                        // Between messages: just a new position.
                        self.hunt_soft();
                    } else {
                        self.header_gap(block, s, sink);
                    }
                    return true;
                }
                St::Hunt {
                    line_start,
                    counted,
                } => {
                    if !pend.is_empty() {
                        let stats = sink.stats();
                        stats.skipped_bytes = stats.skipped_bytes.saturating_add(pend.len() as u64);
                        if !*counted {
                            stats.resyncs += 1;
                            *counted = true;
                        }
                    }
                    *line_start = true;
                    return true;
                }
                St::Body(Body::Length(rem)) => {
                    if len < *rem {
                        *rem -= len;
                        return false;
                    }
                    len -= *rem;
                    self.body_done();
                }
                St::Body(Body::ChunkData(rem)) => {
                    if len < *rem {
                        *rem -= len;
                        return false;
                    }
                    len -= *rem;
                    self.st = St::Body(Body::ChunkDataEnd);
                }
                St::Body(_) => {
                    // Chunk framing lines or trailers missing: lost track.
                    let stats = sink.stats();
                    stats.skipped_bytes = stats.skipped_bytes.saturating_add(pend.len() as u64);
                    self.hunt_soft();
                    return true;
                }
                St::SkipHead { seen, .. } => {
                    let seen = *seen;
                    if let St::SkipHead { held, .. } = mem::replace(&mut self.st, St::Idle) {
                        let Held { mut parsed, meta } = *held;
                        parsed.header_bytes = seen;
                        parsed.gap = true;
                        sink.stats().header_gaps += 1;
                        let next = sink.head(parsed, meta);
                        if next == Next::Tunnel {
                            self.apply(next);
                        } else {
                            self.hunt_soft();
                        }
                    }
                    return true;
                }
                St::AwaitTunnel => {
                    let stats = sink.stats();
                    stats.skipped_bytes = stats.skipped_bytes.saturating_add(pend.len() as u64);
                    self.hunt_soft();
                    return true;
                }
                St::UntilClose | St::Tunnel => return false,
            }
        }
        false
    }

    /// Bytes of the header block `block` (at offset `at` of the pending
    /// bytes) are missing after it: emit what its complete lines say, flagged
    /// `gap`, or count a parse error; then hunt.
    fn header_gap(&mut self, block: &[u8], at: usize, sink: &mut impl Sink) {
        sink.stats().header_gaps += 1;
        match cut_parse(block, self.max_headers) {
            Some(mut parsed) => {
                parsed.gap = true;
                parsed.header_bytes = block.len();
                let next = sink.head(parsed, sink.meta_at(at));
                if next == Next::Tunnel {
                    self.apply(next);
                } else {
                    self.hunt_soft();
                }
            }
            None => {
                let stats = sink.stats();
                stats.parse_errors += 1;
                stats.resyncs += 1;
                stats.skipped_bytes = stats.skipped_bytes.saturating_add(block.len() as u64);
                self.set(St::Hunt {
                    line_start: true,
                    counted: true,
                });
            }
        }
    }

    /// The connection closed with `pend` unconsumed: a header block in
    /// progress becomes a record flagged `incomplete` if its start line is
    /// complete (and counts in `incomplete` either way).
    pub fn finish(&mut self, pend: &[u8], sink: &mut impl Sink) {
        match mem::replace(&mut self.st, St::Tunnel) {
            St::Idle => {
                let (s, _) = blank_prefix(pend);
                let block = tail(pend, s);
                if block.is_empty() {
                    return;
                }
                sink.stats().incomplete += 1;
                if let Some(mut parsed) = cut_parse(block, self.max_headers) {
                    parsed.incomplete = true;
                    parsed.header_bytes = block.len();
                    sink.head(parsed, sink.meta_at(s));
                }
            }
            St::SkipHead { held, seen, .. } => {
                sink.stats().incomplete += 1;
                let Held { mut parsed, meta } = *held;
                parsed.header_bytes = seen;
                parsed.incomplete = true;
                sink.head(parsed, meta);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(buf: &[u8], kind: HttpKind) -> Parsed {
        match parse_head(buf, kind, 256) {
            HeadResult::Complete(p) => p,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn line_scan_finds_blank_line_across_pieces() {
        let block = b"Host: a\r\nX: y\r\n\r\nBODY";
        for split in 0..block.len() {
            let mut s = LineScan::new();
            let (a, b) = block.split_at(split);
            let end = match s.feed(a) {
                Some(k) => k,
                None => split + s.feed(b).unwrap(),
            };
            assert_eq!(end, block.len() - 4, "split {split}");
        }
        assert_eq!(LineScan::new().feed(b"\r\n"), Some(2));
        assert_eq!(LineScan::new().feed(b"\n"), Some(1));
        assert_eq!(LineScan::new().feed(b"a\nb\n\n"), Some(5));
        assert_eq!(LineScan::new().feed(b"a\r\nb\r\n"), None);
    }

    #[test]
    fn content_length_and_transfer_encoding() {
        assert_eq!(content_length(b"42"), Some(42));
        assert_eq!(content_length(b" 7 "), Some(7));
        assert_eq!(content_length(b"5, 5"), Some(5));
        assert_eq!(content_length(b"5, 6"), None);
        assert_eq!(content_length(b"-1"), None);
        assert_eq!(content_length(b""), None);
        assert_eq!(content_length(b"99999999999999999999999"), None);
        assert!(last_coding_is_chunked(b"chunked"));
        assert!(last_coding_is_chunked(b"gzip, Chunked"));
        assert!(!last_coding_is_chunked(b"chunked, gzip"));
        assert!(!last_coding_is_chunked(b""));
        let p = parsed(
            b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            HttpKind::Request,
        );
        assert_eq!(p.body, BodyLen::BadLength);
        assert!(p.malformed);
        let p = parsed(
            b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            HttpKind::Request,
        );
        assert_eq!(p.body, BodyLen::Chunked);
        let p = parsed(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            HttpKind::Response,
        );
        assert_eq!((p.body, p.malformed), (BodyLen::OtherCoding, false));
    }

    #[test]
    fn framing_rules() {
        let req = |s: &[u8]| parsed(s, HttpKind::Request);
        let resp = |s: &[u8]| parsed(s, HttpKind::Response);
        assert_eq!(framing(&req(b"GET / HTTP/1.1\r\n\r\n"), None), Next::Idle);
        assert_eq!(
            framing(&req(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n"), None),
            Next::Body {
                body: Body::Length(5),
                then_await: false
            }
        );
        assert_eq!(
            framing(&req(b"CONNECT h:443 HTTP/1.1\r\n\r\n"), None),
            Next::AwaitTunnel
        );
        assert_eq!(
            framing(&req(b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n"), None),
            Next::AwaitTunnel
        );
        let ok = resp(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n");
        let head = ReqInfo {
            head: true,
            connect: false,
        };
        let connect = ReqInfo {
            head: false,
            connect: true,
        };
        assert_eq!(framing(&ok, Some(head)), Next::Idle);
        assert_eq!(framing(&ok, Some(connect)), Next::Tunnel);
        assert_eq!(
            framing(&ok, None),
            Next::Body {
                body: Body::Length(9),
                then_await: false
            }
        );
        assert_eq!(
            framing(&resp(b"HTTP/1.1 204 No\r\nContent-Length: 9\r\n\r\n"), None),
            Next::Idle
        );
        assert_eq!(framing(&resp(b"HTTP/1.1 304 NM\r\n\r\n"), None), Next::Idle);
        assert_eq!(
            framing(&resp(b"HTTP/1.1 100 Continue\r\n\r\n"), None),
            Next::Idle
        );
        assert_eq!(
            framing(&resp(b"HTTP/1.1 101 Switching\r\n\r\n"), None),
            Next::Tunnel
        );
        assert_eq!(
            framing(&resp(b"HTTP/1.0 200 OK\r\n\r\n"), None),
            Next::UntilClose
        );
        let mut t = resp(b"HTTP/1.0 200 OK\r\n\r\n");
        t.truncated = true;
        assert_eq!(framing(&t, None), Next::Hunt);
    }

    #[test]
    fn plausible_starts() {
        use Plausible::*;
        assert_eq!(plausible_start(b"GET / HTTP/1.1\r\n", 1024), Yes);
        assert_eq!(plausible_start(b"GET / HTTP/1.1\r\nHost: x\r\n", 1024), Yes);
        assert_eq!(plausible_start(b"PROPFIND /a HTTP/1.0\n", 1024), Yes);
        assert_eq!(plausible_start(b"HTTP/1.1 200 OK\r\n", 1024), Yes);
        assert_eq!(plausible_start(b"HTTP/1.1 404\r\n", 1024), Yes);
        assert_eq!(plausible_start(b"GET / HTTP/1.", 1024), NeedMore);
        assert_eq!(plausible_start(b"HTT", 1024), NeedMore);
        assert_eq!(plausible_start(b"HTTP/1.1 20", 1024), NeedMore);
        assert_eq!(plausible_start(b"GET / HTTP/2.0\r\n", 1024), No);
        assert_eq!(plausible_start(b"hello world\r\n", 1024), No);
        assert_eq!(plausible_start(b"\r\nGET / HTTP/1.1\r\n", 1024), No);
        assert_eq!(plausible_start(b"\x16\x03\x01\x02\x00", 1024), No);
        assert_eq!(plausible_start(b"GET /aaaaaaaaaaaaaaaa", 8), No);
    }

    #[test]
    fn hunt_prefers_line_and_event_starts() {
        let b = b"xx GET / HTTP/1.1\r\nzz\nGET / HTTP/1.1\r\n";
        assert_eq!(hunt(b, None, false, 1024), (22, Hunted::Found));
        // An event boundary is a candidate even mid-line.
        assert_eq!(hunt(b, Some(3), false, 1024), (3, Hunted::Found));
        assert_eq!(
            hunt(b"abc\r\nGET / HT", None, true, 1024),
            (5, Hunted::NeedMore)
        );
        assert_eq!(
            hunt(b"abc\n", None, false, 1024),
            (4, Hunted::Exhausted { line_start: true })
        );
        assert_eq!(
            hunt(b"abc", None, false, 1024),
            (3, Hunted::Exhausted { line_start: false })
        );
        assert_eq!(hunt(b"abc", Some(0), false, 1024), (0, Hunted::NeedMore));
        // A line start whose line runs into the next event loses to the event start.
        assert_eq!(
            hunt(b"abcGET / HTTP/1.1\r\n", Some(3), true, 1024),
            (3, Hunted::Found)
        );
        // ...unless the event start is no message start.
        assert_eq!(
            hunt(b"GET / HTTP/1.1\r\n", Some(3), true, 1024),
            (0, Hunted::Found)
        );
    }

    #[test]
    fn too_many_headers_keeps_the_first_ones_and_all_framing() {
        let mut b = b"POST / HTTP/1.1\r\n".to_vec();
        for i in 0..10 {
            b.extend_from_slice(format!("H{i}: v\r\n").as_bytes());
        }
        b.extend_from_slice(b"Content-Length: 3\r\n\r\n");
        let HeadResult::Complete(p) = parse_head(&b, HttpKind::Request, 4) else {
            panic!()
        };
        assert_eq!(p.headers.len(), 4);
        assert!(p.truncated);
        assert!(!p.malformed);
        assert_eq!(p.body, BodyLen::Length(3));
        assert_eq!(p.header_bytes, b.len());
    }

    #[test]
    fn invalid_header_line_is_salvaged_as_malformed() {
        let b = b"GET / HTTP/1.1\r\nGood: 1\r\nBad Name: 2\r\nAlso: 3\r\n\r\n";
        let HeadResult::Complete(p) = parse_head(b, HttpKind::Request, 256) else {
            panic!()
        };
        assert!(p.malformed);
        assert_eq!(
            p.headers,
            [("Good", "1"), ("Also", "3")]
                .into_iter()
                .collect::<Headers>()
        );
        assert!(matches!(
            parse_head(b"GET / HTTP/9.9\r\n\r\n", HttpKind::Request, 256),
            HeadResult::Invalid
        ));
        // A NUL (or a bare CR) in a value: the line is left out, the block
        // kept, flagged (header injection attempts look like this).
        let HeadResult::Complete(p) = parse_head(
            b"GET / HTTP/1.1\r\nA: \0\r\nB: 2\r\n\r\n",
            HttpKind::Request,
            256,
        ) else {
            panic!()
        };
        assert!(p.malformed);
        assert_eq!(p.anomalies, crate::record::anomaly::CTL_IN_VALUE);
        assert_eq!(p.headers, [("B", "2")].into_iter().collect::<Headers>());
        assert_eq!(
            p.header_bytes,
            b"GET / HTTP/1.1\r\nA: \0\r\nB: 2\r\n\r\n".len()
        );
    }

    #[test]
    fn cut_parse_keeps_complete_lines() {
        let p = cut_parse(b"GET /x HTTP/1.1\r\nA: 1\r\nB: tw", 256).unwrap();
        assert_eq!(p.headers, [("A", "1")].into_iter().collect::<Headers>());
        assert_eq!(p.target.as_deref(), Some("/x"));
        assert!(cut_parse(b"GET /x HTT", 256).is_none());
    }
}
