//! HTTP/1.x framing for one direction of one connection: a state machine that
//! finds message boundaries in a byte stream and recovers when bytes are
//! missing or are not HTTP.
//!
//! * Start line and header block ([`parse_head`]): `httparse` with strict
//!   settings, the fast path every clean block takes. A block it rejects is
//!   split by hand ([`salvage`]): every line is kept as sent — a line with
//!   an invalid name, whitespace before its colon or no colon, an obs-fold
//!   continuation, control characters in a value — and the record is
//!   flagged `malformed` with its `anomalies`. A start line that is no
//!   request or status line still ends the attempt. Leading blank lines
//!   between messages are skipped.
//! * A block cut short — by `max_header_bytes` ([`Machine::truncate`]),
//!   missing bytes or the connection's end ([`cut_parse`]) — keeps its
//!   unfinished last line too: a header with its value cut, a name cut
//!   before its colon, or (when no line break came within the limit) the
//!   start line itself with its target cut; such records carry `cut`.
//! * Wire text that is not UTF-8 makes every text of its record escaped
//!   (`crate::text::escape_wire`, flag `non_utf8`).
//! * Body: Content-Length, `Transfer-Encoding: chunked` (chunk-size lines by
//!   `httparse::parse_chunk_size`, trailers up to the blank line), read until
//!   close, or none — decided by [`framing`] from the headers and, for
//!   responses, the request they answer (HEAD, CONNECT).
//! * Recovery ("hunting"): after a parse error, or missing bytes whose framing
//!   is unknown, bytes are discarded up to the next plausible message start
//!   ([`plausible_start`]: a start line httparse accepts, or the salvager
//!   does), looked for at line starts and event starts only.
//!
//! Every verdict depends on the bytes alone (the window a long block is cut
//! at is `max_header_bytes` from the block's start), never on how they were
//! split into events: the process that wrote a message and the one that read
//! it get the same record.
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
use crate::record::{anomaly, CompactString, Framing, HttpKind};
use crate::stream::Meta;
use crate::text::escape_wire;

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
/// The version of a request whose start line was cut before its version.
pub(super) const VERSION_UNSEEN: &str = "HTTP/1.x";

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
    /// "HTTP/1.0" or "HTTP/1.1"; [`VERSION_UNSEEN`] for a request line cut
    /// before its version.
    pub version: &'static str,
    pub method: Option<CompactString>,
    pub target: Option<CompactString>,
    pub status: Option<u16>,
    pub reason: Option<CompactString>,
    /// At most `max_headers`, wire order.
    pub headers: Headers,
    /// Start line through blank line (or what is known of it, see flags).
    pub header_bytes: usize,
    /// Some wire text was not UTF-8: every text field is escaped
    /// (`crate::text::escape_wire`).
    pub non_utf8: bool,
    /// Cut by `max_header_bytes` or `max_headers`.
    pub truncated: bool,
    /// Strict parsing rejected the block (as far as it went); `headers` are
    /// its lines as the salvager split them.
    pub malformed: bool,
    /// Bytes of the block were missing; `headers` are the lines before.
    pub gap: bool,
    /// The connection closed before the block ended.
    pub incomplete: bool,
    /// The last text kept (the target if the start line was cut, else the
    /// last header's value or name) ends where the block was cut.
    pub cut: bool,
    /// `record::anomaly` bits (set only for blocks strict parsing rejected).
    pub anomalies: u8,
    /// What the Content-Length and Transfer-Encoding lines said (all of
    /// them, kept or not): [`Parsed::body`] is decided from it, and the
    /// record carries it for the rules.
    pub framing: Framing,
    /// Requests: an `Upgrade` header is present.
    pub upgrade: bool,
    /// Requests: method is HEAD / CONNECT.
    pub is_head: bool,
    pub is_connect: bool,
}

impl Parsed {
    /// How the body is delimited, as the headers say.
    pub fn body(&self) -> BodyLen {
        body_len(&self.framing)
    }

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
            match p.body() {
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
            match p.body() {
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

    /// A scan positioned after `line`: the bytes of the current line so far
    /// (no LF among them), e.g. where a cut block's window ended.
    pub fn after(line: &[u8]) -> Self {
        let mut s = LineScan::new();
        // No LF in `line`, so no blank line ends in it.
        let _ = s.feed(line);
        s
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

/// Outcome of [`parse_head`].
#[derive(Debug)]
pub(super) enum HeadResult {
    Complete(Parsed),
    /// Valid so far; needs more bytes.
    Partial,
    /// Not an HTTP/1.x start line (whatever follows it).
    Invalid,
}

/// Parse the header block at the start of `buf` with httparse, keeping at
/// most `max_headers` headers (all of them still count for framing). A block
/// httparse rejects is split line by line by [`salvage`] instead, which
/// keeps every line as sent and flags the result `malformed`.
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
    // Rare paths: more headers than slots, or invalid input.
    if err == httparse::Error::TooManyHeaders {
        // A heap buffer sized by the line count, so the whole block fits.
        let lines = buf.iter().filter(|&&b| b == b'\n').count() + 1;
        let mut big = vec![MaybeUninit::uninit(); lines];
        match try_parse(buf, kind, &strict, &mut big, max_headers) {
            Ok(Status::Complete(p)) => return HeadResult::Complete(p),
            Ok(Status::Partial) => return HeadResult::Partial,
            Err(_) => {}
        }
    }
    match salvage(buf, kind, max_headers, false) {
        HeadResult::Complete(mut p) => {
            p.malformed = true;
            p.anomalies = anomaly::scan(head(buf, p.header_bytes));
            HeadResult::Complete(p)
        }
        other => other,
    }
}

/// Whether strict parsing rejects `block` as far as it goes (an unfinished
/// block it accepts so far is `Partial`, not rejected).
fn strict_rejects(block: &[u8], kind: HttpKind) -> bool {
    let lines = block.iter().filter(|&&b| b == b'\n').count() + 1;
    let mut slots = vec![MaybeUninit::<Header<'_>>::uninit(); lines];
    let cfg = strict_config();
    match kind {
        HttpKind::Request => cfg
            .parse_request_with_uninit_headers(
                &mut httparse::Request::new(&mut []),
                block,
                &mut slots,
            )
            .is_err(),
        HttpKind::Response | HttpKind::Trailers | HttpKind::Reset => cfg
            .parse_response_with_uninit_headers(
                &mut httparse::Response::new(&mut []),
                block,
                &mut slots,
            )
            .is_err(),
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

/// What framing needs from a block's header lines, gathered line by line.
#[derive(Default)]
struct FramingHeaders {
    framing: Framing,
    upgrade: bool,
}

impl FramingHeaders {
    /// One header line (names compared case-insensitively).
    #[inline(always)]
    fn see(&mut self, name: &[u8], value: &[u8]) {
        self.framing.see(name, value);
        if name.len() == 7 && name.eq_ignore_ascii_case(b"upgrade") {
            self.upgrade = true;
        }
    }
}

/// How a body is delimited, from what the framing lines said.
fn body_len(f: &Framing) -> BodyLen {
    match (f.transfer_encodings > 0, f.content_lengths > 0, f.length()) {
        (true, _, _) if f.chunked => BodyLen::Chunked,
        (true, _, _) => BodyLen::OtherCoding,
        (false, true, Some(n)) => BodyLen::Length(n),
        (false, true, None) => BodyLen::BadLength,
        (false, false, _) => BodyLen::Absent,
    }
}

/// Wire text as a record field: as it is, or escaped (`esc`, the record has
/// text that is not UTF-8).
fn field(b: &[u8], esc: bool) -> CompactString {
    if esc {
        CompactString::from(escape_wire(b).as_ref())
    } else {
        // UTF-8 whenever `esc` is false; lossy only as a fallback.
        CompactString::from_utf8_lossy(b)
    }
}

/// Header lines as record text, escaped if `esc`.
fn wire_headers<'a>(
    pairs: impl ExactSizeIterator<Item = (&'a [u8], &'a [u8])>,
    esc: bool,
) -> Headers {
    let mut out = Headers::with_capacity(pairs.len(), 0);
    for (name, value) in pairs {
        if esc {
            out.push(&escape_wire(name), &escape_wire(value));
        } else {
            out.push(
                &String::from_utf8_lossy(name),
                &String::from_utf8_lossy(value),
            );
        }
    }
    out
}

fn is_utf8(b: &[u8]) -> bool {
    std::str::from_utf8(b).is_ok()
}

/// The reason phrase of the status line at the start of `buf`, as sent
/// (httparse gives "" for one with bytes above 0x7f).
fn raw_reason(buf: &[u8]) -> Option<&[u8]> {
    let line = head(buf, buf.iter().position(|&b| b == b'\n')?);
    parse_start(strip_cr(line), HttpKind::Response)?.reason
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
        let mut fr = FramingHeaders::default();
        for h in headers {
            fr.see(h.name.as_bytes(), h.value);
        }
        let kept = headers.get(..keep).unwrap_or(headers);
        // An empty reason may be one with bytes above 0x7f, which httparse
        // does not show: take it from the status line.
        let raw = reason
            .filter(|r| r.is_empty())
            .and_then(|_| raw_reason(buf));
        let reason_utf8 = raw.is_none_or(is_utf8);
        // Fast path: the kept lines as one copy of their part of the block.
        let fast = header_region(buf, kept)
            .filter(|_| reason_utf8)
            .and_then(|block| {
                Headers::from_block(block, kept.iter().map(|h| (h.name.as_bytes(), h.value)))
            });
        let (out, esc) = match fast {
            Some(out) => (out, false),
            None => {
                // Names, method and target are UTF-8 (httparse checks them).
                let esc = !reason_utf8 || !kept.iter().all(|h| is_utf8(h.value));
                let pairs = kept.iter().map(|h| (h.name.as_bytes(), h.value));
                (wire_headers(pairs, esc), esc)
            }
        };
        let text = |s: &str| {
            if esc {
                field(s.as_bytes(), true)
            } else {
                CompactString::from(s)
            }
        };
        let reason = match raw {
            Some(r) => Some(field(r, esc)),
            None => reason.map(text),
        };
        Parsed::assemble(
            kind,
            if version == Some(0) {
                "HTTP/1.0"
            } else {
                "HTTP/1.1"
            },
            (method.map(str::as_bytes), method.map(text)),
            path.map(text),
            (code, reason),
            (out, headers.len() > kept.len()),
            header_bytes,
            esc,
            &fr,
        )
    }

    /// The block's record fields from its wire text (every slice as sent),
    /// for blocks the salvager split: `headers` are all its lines, of which
    /// the first `keep` are kept.
    fn from_wire(
        kind: HttpKind,
        start: &Start<'_>,
        headers: &[(&[u8], &[u8])],
        header_bytes: usize,
        keep: usize,
    ) -> Parsed {
        let mut fr = FramingHeaders::default();
        for (name, value) in headers {
            fr.see(name, value);
        }
        let kept = headers.get(..keep).unwrap_or(headers);
        let esc = ![start.method, start.target, start.reason]
            .into_iter()
            .flatten()
            .all(is_utf8)
            || !kept.iter().all(|(n, v)| is_utf8(n) && is_utf8(v));
        let text = |s: &[u8]| field(s, esc);
        Parsed::assemble(
            kind,
            start.version,
            (start.method, start.method.map(text)),
            start.target.map(text),
            (start.status, start.reason.map(text)),
            (
                wire_headers(kept.iter().copied(), esc),
                headers.len() > kept.len(),
            ),
            header_bytes,
            esc,
            &fr,
        )
    }

    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn assemble(
        kind: HttpKind,
        version: &'static str,
        // The method as sent and as record text.
        (raw_method, method): (Option<&[u8]>, Option<CompactString>),
        target: Option<CompactString>,
        (status, reason): (Option<u16>, Option<CompactString>),
        // The kept headers; whether some were left out.
        (headers, truncated): (Headers, bool),
        header_bytes: usize,
        non_utf8: bool,
        fr: &FramingHeaders,
    ) -> Parsed {
        let body = body_len(&fr.framing);
        Parsed {
            kind,
            version,
            method,
            target,
            status,
            reason,
            truncated,
            headers,
            header_bytes,
            non_utf8,
            // A bad Content-Length, or a request body in an unknown coding,
            // leaves the end of the message unknown: the block is malformed.
            malformed: body == BodyLen::BadLength
                || (kind == HttpKind::Request && body == BodyLen::OtherCoding),
            gap: false,
            incomplete: false,
            cut: false,
            anomalies: 0,
            framing: fr.framing,
            upgrade: fr.upgrade && kind == HttpKind::Request,
            is_head: raw_method == Some(b"HEAD"),
            is_connect: raw_method == Some(b"CONNECT"),
        }
    }
}

// The line salvager.
//
// httparse accepts a header block or rejects it; in its lenient mode it
// skips the invalid header lines, and a NUL or bare CR in a value makes it
// give up on the block altogether. Those lines are exactly what a log of
// hostile traffic must show, and a slice httparse hands back can only be a
// line it accepted, so a block strict parsing rejects (and every block cut
// short) is split here instead, line by line, keeping each line as sent.
// Complete clean blocks never come here (only an empty reason phrase has
// its status line looked at again, see `raw_reason`).

/// A start line's parts, as slices of the line.
#[derive(Debug, Clone, Copy)]
struct Start<'a> {
    version: &'static str,
    method: Option<&'a [u8]>,
    target: Option<&'a [u8]>,
    status: Option<u16>,
    reason: Option<&'a [u8]>,
}

/// A byte of a token (a method or header name), RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `line` without one trailing CR (the CR of its CRLF).
fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// `b` without leading SP and HT.
fn trim_ws_start(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|&&c| c == b' ' || c == b'\t').count();
    tail(b, n)
}

/// `b` without trailing SP and HT.
fn trim_ws_end(b: &[u8]) -> &[u8] {
    let n = b
        .iter()
        .rev()
        .take_while(|&&c| c == b' ' || c == b'\t')
        .count();
    head(b, b.len() - n)
}

/// `b` without leading and trailing spaces (SP only: request-line delimiters).
fn trim_sp(b: &[u8]) -> &[u8] {
    let lead = b.iter().take_while(|&&c| c == b' ').count();
    let b = tail(b, lead);
    let trail = b.iter().rev().take_while(|&&c| c == b' ').count();
    head(b, b.len() - trail)
}

/// The version constant for `HTTP/1.0` or `HTTP/1.1`.
fn version_of(b: &[u8]) -> Option<&'static str> {
    match b {
        b"HTTP/1.0" => Some("HTTP/1.0"),
        b"HTTP/1.1" => Some("HTTP/1.1"),
        _ => None,
    }
}

/// A complete start line (without its line break): `METHOD SP target SP
/// HTTP/1.x`, the target being everything between the first space and the
/// last one (runs of spaces are one delimiter, as httparse's settings have
/// it), or `HTTP/1.x SP 3DIGIT [SP reason]`, the reason as sent. None if the
/// line is neither (no token method, no target, another version).
fn parse_start(line: &[u8], kind: HttpKind) -> Option<Start<'_>> {
    match kind {
        HttpKind::Request => {
            let sp = line.iter().position(|&b| b == b' ')?;
            let method = head(line, sp);
            if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
                return None;
            }
            let last = line.iter().rposition(|&b| b == b' ')?;
            let version = version_of(tail(line, last + 1))?;
            let target = trim_sp(line.get(sp..last)?);
            if target.is_empty() {
                return None;
            }
            Some(Start {
                version,
                method: Some(method),
                target: Some(target),
                status: None,
                reason: None,
            })
        }
        HttpKind::Response | HttpKind::Trailers | HttpKind::Reset => {
            let (status, reason) = status_and_reason(tail(line, 8))?;
            Some(Start {
                version: version_of(head(line, 8))?,
                method: None,
                target: None,
                status: Some(status),
                reason: Some(reason),
            })
        }
    }
}

/// What follows a status line's version: `SP 3DIGIT [SP reason]`.
fn status_and_reason(rest: &[u8]) -> Option<(u16, &[u8])> {
    let spaces = rest.iter().take_while(|&&b| b == b' ').count();
    let rest = tail(rest, spaces);
    let digits = head(rest, 3);
    if spaces == 0 || digits.len() != 3 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let status = digits
        .iter()
        .fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
    let after = tail(rest, 3);
    let reason = match after.first() {
        None => after,
        Some(b' ') => tail(after, after.iter().take_while(|&&b| b == b' ').count()),
        Some(_) => return None,
    };
    Some((status, reason))
}

/// A start line with no line break before the block was cut: its parts as
/// far as they go, and whether its text was cut. Without its version a line
/// is weak evidence of a message, so a request needs a method of upper-case
/// letters (`A`–`Z`, `-`, `_`: real methods look like that) and a target of
/// bytes httparse takes in one (no space or control character: those are
/// kept only in complete start lines); its version is [`VERSION_UNSEEN`],
/// and a cut version (a space and a prefix of `HTTP/1.x`) is not part of
/// the target (a line complete but for its line break is not cut). A
/// response needs its status code; its reason, which runs to the line's
/// end, is cut.
fn parse_cut_start(line: &[u8], kind: HttpKind) -> Option<(Start<'_>, bool)> {
    let line = strip_cr(line);
    match kind {
        HttpKind::Request => {
            if let Some(s) = parse_start(line, kind) {
                // Complete but for its line break.
                return Some((s, false));
            }
            let sp = line.iter().position(|&b| b == b' ')?;
            let method = head(line, sp);
            let upper = |b: &u8| b.is_ascii_uppercase() || *b == b'-' || *b == b'_';
            if method.is_empty() || !method.iter().all(upper) {
                return None;
            }
            let mut target = trim_sp(tail(line, sp));
            let rest = tail(line, sp);
            if let Some(k) = rest.iter().rposition(|&b| b == b' ') {
                let v = tail(rest, k + 1);
                if b"HTTP/1.0".starts_with(v) || b"HTTP/1.1".starts_with(v) {
                    target = trim_sp(head(rest, k));
                }
            }
            let uri = |b: &u8| (0x21..0x7f).contains(b) || *b >= 0x80;
            if target.is_empty() || !target.iter().all(uri) {
                return None;
            }
            Some((
                Start {
                    version: VERSION_UNSEEN,
                    method: Some(method),
                    target: Some(target),
                    status: None,
                    reason: None,
                },
                true,
            ))
        }
        HttpKind::Response | HttpKind::Trailers | HttpKind::Reset => {
            let (status, reason) = status_and_reason(tail(line, 8))?;
            Some((
                Start {
                    version: version_of(head(line, 8))?,
                    method: None,
                    target: None,
                    status: Some(status),
                    reason: Some(reason),
                },
                true,
            ))
        }
    }
}

/// Whether `b`, a start line without its line break yet, may still become
/// one [`parse_start`] accepts: a token method and a space (requests), or
/// what there is of `HTTP/1.x SP` (responses).
fn start_prefix(b: &[u8], kind: HttpKind) -> bool {
    match kind {
        HttpKind::Request => {
            let n = b.iter().take_while(|&&c| is_tchar(c)).count();
            n > 0 && b.get(n) == Some(&b' ')
        }
        HttpKind::Response | HttpKind::Trailers | HttpKind::Reset => {
            let v = head(b, 8);
            (b"HTTP/1.0".starts_with(v) || b"HTTP/1.1".starts_with(v))
                && b.get(8).is_none_or(|&c| c == b' ')
        }
    }
}

/// A header line the salvager found: ranges of the block.
#[derive(Debug, Clone, Copy)]
struct Span {
    name: (usize, usize),
    value: (usize, usize),
}

/// Add the header line `line` (line break excluded), which sits at `at` in
/// the block; `cut`: it is the unfinished last line of a cut block. Returns
/// the index of the header it went to.
fn salvage_line(spans: &mut Vec<Span>, at: usize, line: &[u8], cut: bool) -> usize {
    let end = at + line.len();
    if matches!(line.first(), Some(b' ' | b'\t')) {
        if let Some(prev) = spans.last_mut() {
            // obs-fold: the previous value goes on, with the line break
            // and the leading whitespace as sent.
            let text = trim_ws_end(line);
            if !trim_ws_start(text).is_empty() {
                prev.value.1 = at + text.len();
            }
            return spans.len() - 1;
        }
        // Nothing to continue: a line without a name.
        spans.push(Span {
            name: (at, at),
            value: (at, end),
        });
        return spans.len() - 1;
    }
    let span = match line.iter().position(|&b| b == b':') {
        Some(c) => {
            let v = tail(line, c + 1);
            let lead = v.len() - trim_ws_start(v).len();
            let len = trim_ws_end(trim_ws_start(v)).len();
            let vs = at + c + 1 + lead;
            Span {
                name: (at, at + c),
                value: (vs, vs + len),
            }
        }
        // Cut before its colon: a name, cut.
        None if cut => Span {
            name: (at, end),
            value: (end, end),
        },
        // No colon: no name, the whole line as the value.
        None => Span {
            name: (at, at),
            value: (at, end),
        },
    };
    spans.push(span);
    spans.len() - 1
}

/// `b[r.0..r.1]`, or empty.
fn range(b: &[u8], r: (usize, usize)) -> &[u8] {
    b.get(r.0..r.1).unwrap_or_default()
}

/// Split the header block at the start of `buf` line by line, keeping every
/// line as sent, in wire order: a start line as [`parse_start`] splits it
/// (anything else is `Invalid`); a header line as name (the bytes before
/// its first colon, spaces and all) and value (after the colon, SP and HT
/// trimmed at both ends, control characters kept); a line without a colon
/// as an empty name and the whole line as its value; an obs-fold line (one
/// starting with SP or HT) as part of the previous header's value, line
/// break included. Lines end at LF (one CR before it is the line break's);
/// the block ends at the first empty line.
///
/// `cut`: `buf` ends where the block was cut, and its unfinished last line
/// is kept (the start line too: [`parse_cut_start`]), a header line as cut
/// (a line with no colon yet is a name); the result has `cut` if that line
/// is in the record. Without `cut`, an unfinished block is `Partial`.
///
/// Not flagged `malformed` here: the callers know why they came.
fn salvage(buf: &[u8], kind: HttpKind, max_headers: usize, cut: bool) -> HeadResult {
    let (start, mut cut_text, mut i) = match buf.iter().position(|&b| b == b'\n') {
        Some(k) => match parse_start(strip_cr(head(buf, k)), kind) {
            Some(s) => (s, false, k + 1),
            None => return HeadResult::Invalid,
        },
        None if cut => match parse_cut_start(buf, kind) {
            Some((s, c)) => (s, c, buf.len()),
            None => return HeadResult::Invalid,
        },
        None if start_prefix(buf, kind) => return HeadResult::Partial,
        None => return HeadResult::Invalid,
    };
    let mut spans = Vec::new();
    let mut end = None;
    while i < buf.len() {
        let rest = tail(buf, i);
        match rest.iter().position(|&b| b == b'\n') {
            Some(k) => {
                let line = strip_cr(head(rest, k));
                if line.is_empty() {
                    end = Some(i + k + 1);
                    break;
                }
                salvage_line(&mut spans, i, line, false);
                i += k + 1;
            }
            None => {
                let line = strip_cr(rest);
                if cut && !line.is_empty() {
                    cut_text = salvage_line(&mut spans, i, line, true) < max_headers;
                }
                break;
            }
        }
    }
    if end.is_none() && !cut {
        return HeadResult::Partial;
    }
    let pairs: Vec<(&[u8], &[u8])> = spans
        .iter()
        .map(|s| (range(buf, s.name), range(buf, s.value)))
        .collect();
    let mut p = Parsed::from_wire(kind, &start, &pairs, end.unwrap_or(buf.len()), max_headers);
    p.cut = cut_text;
    HeadResult::Complete(p)
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
/// (the header block). A line httparse rejects is judged again as the
/// salvager would take it (a target that is not UTF-8, control characters
/// in it, a reason with them), so that the messages [`parse_head`] keeps
/// are found after a resync too. Lines longer than `limit` are not
/// plausible.
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
    let kind = sniff(w);
    let res = match kind {
        Some(HttpKind::Response | HttpKind::Trailers | HttpKind::Reset) => {
            cfg.parse_response(&mut httparse::Response::new(&mut []), w)
        }
        Some(HttpKind::Request) => cfg.parse_request(&mut httparse::Request::new(&mut []), w),
        None => Ok(Status::Partial),
    };
    match (res, kind) {
        (Ok(Status::Complete(_)) | Err(httparse::Error::TooManyHeaders), _) => Plausible::Yes,
        (Ok(Status::Partial), _) if w.contains(&b'\n') => Plausible::Yes,
        (Ok(Status::Partial), _) if b.len() < limit => Plausible::NeedMore,
        (Ok(Status::Partial), _) | (Err(_), None) => Plausible::No,
        (Err(_), Some(kind)) => match w.iter().position(|&c| c == b'\n') {
            Some(k) if parse_start(strip_cr(head(w, k)), kind).is_some() => Plausible::Yes,
            None if b.len() < limit && start_prefix(w, kind) => Plausible::NeedMore,
            _ => Plausible::No,
        },
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
/// While both lines are unfinished, the earlier candidate is kept: the
/// bytes are not skipped before the line ends and says which one holds.
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
                            Plausible::NeedMore if verdict == Plausible::Yes => {
                                return (e, Hunted::NeedMore)
                            }
                            // Both unfinished: wait until the line says
                            // (a message written a few bytes per syscall
                            // has an event start inside its start line, and
                            // `ET /x` looks as plausible as `GET /x`).
                            Plausible::NeedMore | Plausible::No => {}
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

/// What an unfinished header block says: every line, its unfinished last
/// one (even the start line) included, as [`salvage`] splits them; None if
/// not even a start line can be made out. `malformed` when strict parsing
/// rejects the bytes as far as they go, with the anomalies of its lines
/// (the last one judged as far as it goes: a name cut before its colon is
/// no bad name).
fn cut_parse(block: &[u8], max_headers: usize) -> Option<Parsed> {
    let kind = sniff(block)?;
    let HeadResult::Complete(mut p) = salvage(block, kind, max_headers, true) else {
        return None;
    };
    if strict_rejects(block, kind) {
        p.malformed = true;
        let last = block.iter().rposition(|&b| b == b'\n').map_or(0, |k| k + 1);
        let mut lines = head(block, last).to_vec();
        let partial = strip_cr(tail(block, last));
        if last > 0 && !partial.is_empty() {
            lines.extend_from_slice(partial);
            if !partial.contains(&b':') && !matches!(partial.first(), Some(b' ' | b'\t')) {
                lines.push(b':');
            }
            lines.extend_from_slice(b"\r\n");
        }
        p.anomalies = anomaly::scan(&lines);
    }
    Some(p)
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
    /// what it holds as a truncated record (every line, the unfinished last
    /// one too, even the start line: [`cut_parse`]), skip to the block's
    /// end. The window is the same however the bytes arrived.
    fn truncate(&mut self, window: &[u8], at: usize, sink: &mut impl Sink) -> Step {
        match cut_parse(window, self.max_headers) {
            Some(mut parsed) => {
                parsed.truncated = true;
                let meta = sink.meta_at(at);
                // The scan goes on from inside the window's last line.
                let last = window
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |k| k + 1);
                self.set(St::SkipHead {
                    scan: LineScan::after(tail(window, last)),
                    held: Box::new(Held { parsed, meta }),
                    seen: window.len(),
                });
                Step::go(window.len())
            }
            // Not even a start line within the limit.
            None => self.framing_error(sink),
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
        let content_length = |v: &[u8]| Framing::of([(&b"Content-Length"[..], v)]).length();
        let last_coding_is_chunked =
            |v: &[u8]| Framing::of([(&b"Transfer-Encoding"[..], v)]).chunked;
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
        assert_eq!(p.body(), BodyLen::BadLength);
        assert!(p.malformed);
        let p = parsed(
            b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            HttpKind::Request,
        );
        assert_eq!(p.body(), BodyLen::Chunked);
        let p = parsed(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            HttpKind::Response,
        );
        assert_eq!((p.body(), p.malformed), (BodyLen::OtherCoding, false));
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
        // Both unfinished: wait at the first (byte-per-syscall writers).
        assert_eq!(hunt(b"GE", Some(1), true, 1024), (0, Hunted::NeedMore));
        assert_eq!(
            hunt(b"GET /x HTTP/1.1\r\n", Some(17), true, 1024),
            (0, Hunted::Found)
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
        assert_eq!(p.body(), BodyLen::Length(3));
        assert_eq!(p.header_bytes, b.len());
    }

    fn hv(p: &Parsed) -> Vec<(&str, &str)> {
        p.headers.iter().collect()
    }

    #[test]
    fn invalid_header_lines_are_kept_as_sent() {
        use crate::record::anomaly::*;
        let b = b"GET / HTTP/1.1\r\nGood: 1\r\nBad Name: 2\r\nSp : 3\r\nNo colon here\r\n\
                  Fold: a\r\n  b\r\n\tc \r\nNul: x\0y\r\nCr: x\ry\r\nCtl: \x01\x7f\r\n:empty\r\nAlso: 3\r\n\r\n";
        let p = parsed(b, HttpKind::Request);
        assert!(p.malformed);
        assert!(!p.non_utf8 && !p.cut && !p.truncated);
        assert_eq!(
            hv(&p),
            [
                ("Good", "1"),
                ("Bad Name", "2"),
                ("Sp ", "3"),
                ("", "No colon here"),
                ("Fold", "a\r\n  b\r\n\tc"),
                ("Nul", "x\0y"),
                ("Cr", "x\ry"),
                ("Ctl", "\x01\x7f"),
                ("", "empty"),
                ("Also", "3"),
            ]
        );
        assert_eq!(p.anomalies, OBS_FOLD | BAD_HEADER_NAME | CTL_IN_VALUE);
        assert_eq!(p.header_bytes, b.len());
        assert_eq!(
            (p.method.as_deref(), p.target.as_deref(), p.version),
            (Some("GET"), Some("/"), "HTTP/1.1")
        );
        // Unfinished: more bytes needed, whatever the line it stops in.
        for end in 17..b.len() - 1 {
            assert!(
                matches!(
                    parse_head(&b[..end], HttpKind::Request, 256),
                    HeadResult::Partial
                ),
                "{end}"
            );
        }
        // Framing still reads the lines (names compared case-insensitively).
        let p = parsed(
            b"POST / HTTP/1.1\r\nX\0: 1\r\ncontent-LENGTH: 4\r\n\r\n",
            HttpKind::Request,
        );
        assert_eq!((p.body(), p.malformed), (BodyLen::Length(4), true));
        // A bad start line is still no message.
        for bad in [
            &b"GET / HTTP/9.9\r\n\r\n"[..],
            b"GET  HTTP/1.1\r\nA\0: 1\r\n\r\n",
            b"G\x01T / HTTP/1.1\r\n\r\n",
            b"hello world\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
        ] {
            assert!(
                matches!(parse_head(bad, HttpKind::Request, 256), HeadResult::Invalid)
                    || matches!(
                        parse_head(bad, sniff(bad).unwrap(), 256),
                        HeadResult::Invalid
                    ),
                "{bad:?}"
            );
        }
        // An obs-fold with nothing to continue is a line without a name;
        // more lines than kept: truncated, framing sees them all.
        let p = match parse_head(
            b"GET / HTTP/1.1\r\n folded\r\nA: 1\r\nB\0: 2\r\nContent-Length: 0\r\n\r\n",
            HttpKind::Request,
            2,
        ) {
            HeadResult::Complete(p) => p,
            other => panic!("{other:?}"),
        };
        assert_eq!(hv(&p), [("", " folded"), ("A", "1")]);
        assert!(p.truncated);
        assert_eq!(p.body(), BodyLen::Length(0));
    }

    #[test]
    fn request_targets_and_status_lines_the_salvager_splits() {
        // Not UTF-8: escaped, and so is everything else of the record.
        let p = parsed(
            b"GET /caf\xe9?q=a\\b HTTP/1.1\r\nX-L: \xe9t\xe9\r\nX-B: \\\r\n\r\n",
            HttpKind::Request,
        );
        assert!(p.malformed && p.non_utf8);
        assert_eq!(p.target.as_deref(), Some("/caf\\xe9?q=a\\x5cb"));
        assert_eq!(hv(&p), [("X-L", "\\xe9t\\xe9"), ("X-B", "\\x5c")]);
        // Spaces and control characters inside a target; runs of spaces
        // around it are delimiters.
        let p = parsed(
            b"GET  /a b\x01  HTTP/1.0\r\nA\0: 1\r\n\r\n",
            HttpKind::Request,
        );
        assert_eq!(
            (p.target.as_deref(), p.version),
            (Some("/a b\x01"), "HTTP/1.0")
        );
        // A reason phrase with Latin-1 bytes (httparse shows it as "").
        let p = parsed(
            b"HTTP/1.1 200 D\xe9j\xe0 vu\r\nA: \\\r\n\r\n",
            HttpKind::Response,
        );
        assert!(!p.malformed && p.non_utf8);
        assert_eq!(p.reason.as_deref(), Some("D\\xe9j\\xe0 vu"));
        assert_eq!(hv(&p), [("A", "\\x5c")]);
        // ...and with a control character (httparse rejects the line).
        let p = parsed(b"HTTP/1.1 404 No\x01t\r\n\r\n", HttpKind::Response);
        assert!(p.malformed && !p.non_utf8);
        assert_eq!(
            (p.status, p.reason.as_deref()),
            (Some(404), Some("No\x01t"))
        );
        // A clean value with Latin-1 bytes: strict parsing keeps it.
        let p = parsed(
            b"GET /x HTTP/1.1\r\nA: caf\xe9\\\r\n\r\n",
            HttpKind::Request,
        );
        assert!(!p.malformed && p.non_utf8);
        assert_eq!(hv(&p), [("A", "caf\\xe9\\x5c")]);
        assert_eq!(
            crate::text::unescape_wire(p.headers.first("a").unwrap()),
            b"caf\xe9\\"
        );
    }

    #[test]
    fn cut_parse_keeps_the_unfinished_last_line() {
        let p = cut_parse(b"GET /x HTTP/1.1\r\nA: 1\r\nB: tw", 256).unwrap();
        assert_eq!(hv(&p), [("A", "1"), ("B", "tw")]);
        assert_eq!(p.target.as_deref(), Some("/x"));
        assert!(p.cut && !p.malformed);
        // A name cut before its colon.
        let p = cut_parse(b"GET /x HTTP/1.1\r\nA: 1\r\nX-Lo", 256).unwrap();
        assert_eq!(hv(&p), [("A", "1"), ("X-Lo", "")]);
        assert!(p.cut && !p.malformed && p.anomalies == 0);
        // An invalid one.
        let p = cut_parse(b"GET /x HTTP/1.1\r\nBad Na", 256).unwrap();
        assert_eq!(hv(&p), [("Bad Na", "")]);
        assert!(p.cut && p.malformed);
        assert_eq!(p.anomalies, crate::record::anomaly::BAD_HEADER_NAME);
        // A fold cut short continues its header.
        let p = cut_parse(b"HTTP/1.1 200 OK\r\nA: 1\r\n  an", 256).unwrap();
        assert_eq!(hv(&p), [("A", "1\r\n  an")]);
        assert!(p.cut);
        // Cut in the blank line, or right after a line: nothing is cut.
        for b in [
            &b"GET /x HTTP/1.1\r\nA: 1\r\n\r"[..],
            b"GET /x HTTP/1.1\r\nA: 1\r\n",
        ] {
            let p = cut_parse(b, 256).unwrap();
            assert_eq!(hv(&p), [("A", "1")]);
            assert!(!p.cut);
        }
        // The start line itself: method and target, the version unseen.
        for (b, target) in [
            (&b"GET /x HTT"[..], "/x"),
            (b"GET /x ", "/x"),
            (b"GET /x", "/x"),
            (b"GET  /x  HTTP/1", "/x"),
            (b"GET /caf\xe9", "/caf\\xe9"),
        ] {
            let p = cut_parse(b, 256).unwrap();
            assert_eq!(
                (p.method.as_deref(), p.target.as_deref(), p.version),
                (Some("GET"), Some(target), VERSION_UNSEEN),
                "{b:?}"
            );
            assert!(p.cut && p.headers.is_empty());
        }
        let p = cut_parse(b"HTTP/1.0 500 Internal Ser", 256).unwrap();
        assert_eq!(
            (p.status, p.reason.as_deref(), p.version),
            (Some(500), Some("Internal Ser"), "HTTP/1.0")
        );
        assert!(p.cut);
        // Complete but for its line break: nothing cut.
        let p = cut_parse(b"GET /x HTTP/1.1", 256).unwrap();
        assert_eq!((p.version, p.cut), ("HTTP/1.1", false));
        // Too little to be a message.
        for b in [
            &b"GET "[..],
            b"GET",
            b"get /x",
            b"GET /x y",
            b"GET /x\0",
            b"P Hq\x10\xc8",
            b"hello world",
            b"HTTP/1.1 2",
            b"HTTP/1.1 20x",
        ] {
            assert!(cut_parse(b, 256).is_none(), "{b:?}");
        }
    }

    #[test]
    fn line_scan_can_start_inside_a_line() {
        assert_eq!(LineScan::after(b"Host: a").feed(b"\r\n\r\nX"), Some(4));
        assert_eq!(LineScan::after(b"").feed(b"\r\nX"), Some(2));
        assert_eq!(LineScan::after(b"\r").feed(b"\nX"), Some(1));
        assert_eq!(LineScan::after(b"GET /aaa").feed(b"\r\n\r\n"), Some(4));
        assert_eq!(LineScan::after(b"GET /aaa").feed(b"\n"), None);
    }

    #[test]
    fn plausible_starts_include_what_the_salvager_keeps() {
        use Plausible::*;
        assert_eq!(plausible_start(b"GET /caf\xe9 HTTP/1.1\r\n", 1024), Yes);
        assert_eq!(plausible_start(b"GET /a\x01 HTTP/1.1\r\n", 1024), Yes);
        assert_eq!(plausible_start(b"HTTP/1.1 200 \xe9\x01\r\n", 1024), Yes);
        assert_eq!(plausible_start(b"GET /a\x01", 1024), NeedMore);
        assert_eq!(plausible_start(b"GET /a\x01", 4), No);
        assert_eq!(plausible_start(b"GET /a\x01 HTTP/2.0\r\n", 1024), No);
    }
}
