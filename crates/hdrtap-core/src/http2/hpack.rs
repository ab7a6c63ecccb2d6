//! HPACK (RFC 7541): header blocks of one direction of one HTTP/2
//! connection, decoded against that direction's dynamic table.
//!
//! Written here rather than taken from a crate (loona-hpack, fluke-hpack,
//! hpack, httlib-hpack were looked at) because an observer needs three things
//! none of them does: decoding a connection joined mid-stream, where the
//! dynamic table holds entries hdrtap never saw (they come out as unknown
//! instead of failing the whole block and every later one); the
//! never-indexed bit of each field (RFC 7541 §7.1.3: the sender's mark for
//! secrets, which hdrtap redacts); and going on after a bad field with what
//! was decoded, never inventing a field. Huffman strings: `super::huffman`.
//!
//! **Knowing the table.** A decoder that saw its direction from the start
//! knows the dynamic table exactly (`exact`): an index past it is an error.
//! One that joined mid-stream, or lost sync (a gap in the stream, a block
//! that failed), knows only the entries inserted since: they are the
//! newest, so their indices are right, and an index past them is an entry
//! from before, decoded as unknown (`None`). Once the table is known to hold
//! nothing older (a size update to 0, or the known entries filling a known
//! table size), decoding is exact again.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

use std::collections::VecDeque;

/// RFC 7541 Appendix A: the static table, index 1 first.
pub const STATIC_TABLE: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// HTTP/2's default SETTINGS_HEADER_TABLE_SIZE.
pub const DEFAULT_TABLE_SIZE: usize = 4096;

/// Per-entry overhead counted in a table's size (RFC 7541 §4.1).
const ENTRY_OVERHEAD: usize = 32;

/// Largest dynamic table hdrtap keeps per direction, whatever the peers
/// allow: entries beyond it are dropped and later references to them
/// decode as unknown.
pub const MAX_TABLE_BYTES: usize = 64 * 1024;

/// Why a block stopped decoding (the fields before it are kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HpackError {
    /// An integer ran past the block or past 2^32.
    Integer,
    /// A string ran past the block.
    StringLength,
    /// A Huffman string was not valid (bad code or padding).
    Huffman,
    /// Index 0, or an index past a table known exactly.
    Index,
    /// A dynamic table size update after the first field, or above what
    /// the receiver allows (SETTINGS_HEADER_TABLE_SIZE).
    SizeUpdate,
}

impl HpackError {
    /// For flags and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            HpackError::Integer => "integer",
            HpackError::StringLength => "string_length",
            HpackError::Huffman => "huffman",
            HpackError::Index => "index",
            HpackError::SizeUpdate => "size_update",
        }
    }
}

/// How a field was encoded (RFC 7541 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr {
    /// Indexed field (§6.1).
    Indexed,
    /// Literal with incremental indexing (§6.2.1): added to the table.
    Incremental,
    /// Literal without indexing (§6.2.2).
    WithoutIndexing,
    /// Literal never indexed (§6.2.3): the sender marked it sensitive.
    NeverIndexed,
}

/// One decoded field; `None` for a part that refers to a dynamic-table
/// entry hdrtap never saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    pub name: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub repr: Repr,
}

/// What decoding one block found besides its fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockInfo {
    /// Fields given to the sink.
    pub fields: usize,
    /// Fields with an unknown name or value.
    pub undecoded: usize,
    /// Decoded size as HTTP/2 counts it for SETTINGS_MAX_HEADER_LIST_SIZE:
    /// name + value + 32 per field (unknown parts count 0).
    pub decoded_bytes: usize,
    /// Dynamic table size updates at the block's start.
    pub size_updates: usize,
    /// Decoding stopped here; the table is no longer trusted.
    pub error: Option<HpackError>,
}

#[derive(Debug, Clone)]
struct Entry {
    name: Option<Box<[u8]>>,
    value: Option<Box<[u8]>>,
    /// RFC size (name + value + 32); with an unknown part, the known part
    /// plus 32 (a lower bound).
    size: usize,
}

/// A table entry's name and value, `None` where unknown.
type Parts<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// The decoder of one direction.
#[derive(Debug, Clone)]
pub struct Decoder {
    /// Entries hdrtap saw inserted, newest first.
    entries: VecDeque<Entry>,
    /// Sum of their sizes.
    size: usize,
    /// The table's maximum size, as the encoder last set it.
    max_size: usize,
    /// `max_size` is known (from the start, or from a size update seen).
    max_known: bool,
    /// The receiver's SETTINGS_HEADER_TABLE_SIZE: size updates above it are
    /// errors, once it is known (from the start, or from SETTINGS seen).
    max_allowed: usize,
    allowed_known: bool,
    /// `entries` is the whole table (see the module documentation).
    exact: bool,
    /// Every entry's size is exact (none has an unknown part).
    sizes_known: bool,
    /// Scratch for Huffman-decoded strings.
    huff: [Vec<u8>; 2],
}

impl Decoder {
    /// A decoder for a direction seen from its start (`exact`) or joined
    /// mid-stream.
    pub fn new(from_start: bool) -> Self {
        Decoder {
            entries: VecDeque::new(),
            size: 0,
            max_size: DEFAULT_TABLE_SIZE,
            max_known: from_start,
            max_allowed: DEFAULT_TABLE_SIZE,
            allowed_known: from_start,
            exact: from_start,
            sizes_known: true,
            huff: [Vec::new(), Vec::new()],
        }
    }

    /// The receiver sent SETTINGS_HEADER_TABLE_SIZE = `n`.
    pub fn set_max_allowed(&mut self, n: usize) {
        self.max_allowed = n;
        self.allowed_known = true;
    }

    /// Whether the table is known exactly.
    pub fn exact(&self) -> bool {
        self.exact
    }

    /// Entries known now (diagnostics, tests).
    pub fn known_entries(&self) -> usize {
        self.entries.len()
    }

    /// The table's size as the encoder set it (tests).
    pub fn max_size(&self) -> usize {
        self.max_size
    }

    /// Bytes of the stream were lost: header blocks (and their insertions)
    /// may be among them, so no entry can be trusted any more.
    pub fn lost_sync(&mut self) {
        self.entries.clear();
        self.size = 0;
        self.exact = false;
        self.sizes_known = true;
        // The lost bytes may have held a size update.
        self.max_known = false;
    }

    /// Decode one complete header block, giving each field to `sink` in
    /// order. Stops at the first error (see [`BlockInfo::error`]); the
    /// table is then no longer trusted (as after [`Self::lost_sync`]).
    pub fn decode(&mut self, block: &[u8], sink: &mut dyn FnMut(Field<'_>)) -> BlockInfo {
        let mut info = BlockInfo::default();
        let mut pos = 0usize;
        while pos < block.len() {
            if let Err(e) = self.field(block, &mut pos, &mut info, sink) {
                info.error = Some(e);
                self.lost_sync();
                break;
            }
        }
        info
    }

    /// Decode the representation at `block[*pos..]`.
    fn field(
        &mut self,
        block: &[u8],
        pos: &mut usize,
        info: &mut BlockInfo,
        sink: &mut dyn FnMut(Field<'_>),
    ) -> Result<(), HpackError> {
        let b = *block.get(*pos).ok_or(HpackError::Integer)?;
        if b & 0x80 != 0 {
            let index = integer(block, pos, 7)?;
            let (name, value) = self.lookup(index)?;
            let f = Field {
                name,
                value,
                repr: Repr::Indexed,
            };
            count(info, &f);
            sink(f);
            return Ok(());
        }
        if b & 0xe0 == 0x20 {
            // Dynamic table size update: only before the first field (the
            // first fields of the block may all be updates).
            let n = integer(block, pos, 5)?;
            if info.fields > 0 {
                return Err(HpackError::SizeUpdate);
            }
            info.size_updates += 1;
            self.resize(n)?;
            return Ok(());
        }
        let (repr, prefix) = if b & 0xc0 == 0x40 {
            (Repr::Incremental, 6)
        } else if b & 0xf0 == 0x10 {
            (Repr::NeverIndexed, 4)
        } else {
            (Repr::WithoutIndexing, 4)
        };
        let index = integer(block, pos, prefix)?;
        // The name: an index (into either table) or a literal string.
        let name_src = if index == 0 {
            Some(string(block, pos, &mut self.huff[0])?)
        } else {
            None
        };
        let value_src = string(block, pos, &mut self.huff[1])?;
        let name: Option<&[u8]> = match &name_src {
            None => self.lookup(index)?.0,
            Some(Str::Raw(r)) => Some(block.get(r.clone()).ok_or(HpackError::StringLength)?),
            Some(Str::Huff) => Some(&self.huff[0]),
        };
        let value: &[u8] = match value_src {
            Str::Raw(r) => block.get(r).ok_or(HpackError::StringLength)?,
            Str::Huff => &self.huff[1],
        };
        let f = Field {
            name,
            value: Some(value),
            repr,
        };
        count(info, &f);
        sink(f);
        if repr == Repr::Incremental {
            let (name, value) = (name.map(<[u8]>::to_vec), value.to_vec());
            self.insert(name, value);
        }
        Ok(())
    }

    /// The entry at `index` (1-based; static first). `None` parts: an
    /// entry from before hdrtap joined.
    fn lookup(&self, index: u64) -> Result<Parts<'_>, HpackError> {
        let i = usize::try_from(index).map_err(|_| HpackError::Index)?;
        if i == 0 {
            return Err(HpackError::Index);
        }
        if let Some((n, v)) = STATIC_TABLE.get(i - 1) {
            return Ok((Some(n.as_bytes()), Some(v.as_bytes())));
        }
        let d = i - 1 - STATIC_TABLE.len();
        match self.entries.get(d) {
            Some(e) => Ok((e.name.as_deref(), e.value.as_deref())),
            None if !self.exact => Ok((None, None)),
            None => Err(HpackError::Index),
        }
    }

    /// Add an entry (§4.4): evict from the oldest until it fits; one larger
    /// than the whole table empties it and is not added.
    fn insert(&mut self, name: Option<Vec<u8>>, value: Vec<u8>) {
        let size = name.as_ref().map_or(0, Vec::len) + value.len() + ENTRY_OVERHEAD;
        if name.is_none() {
            // Its real size is unknown, so are the evictions it causes:
            // from here on only hdrtap's own bound evicts.
            self.sizes_known = false;
        }
        if self.sizes_known && self.max_known && size > self.max_size {
            // Larger than the table: the encoder empties its table too,
            // entries hdrtap never saw included.
            self.entries.clear();
            self.size = 0;
            self.exact = true;
            return;
        }
        self.entries.push_front(Entry {
            name: name.map(Vec::into_boxed_slice),
            value: Some(value.into_boxed_slice()),
            size,
        });
        self.size += size;
        self.evict();
    }

    /// Evict past the table's size, then past hdrtap's own bound.
    fn evict(&mut self) {
        if self.sizes_known && self.max_known {
            // The encoder evicts entries hdrtap never saw first (they are
            // older): if the known ones alone are over the size, all of
            // those are gone and some known ones go too.
            while self.size > self.max_size {
                match self.entries.pop_back() {
                    Some(e) => self.size -= e.size,
                    None => break,
                }
                self.exact = true;
            }
            // No room left for an entry hdrtap did not see (each takes at
            // least 32 bytes): the table is known whole.
            if self.size + ENTRY_OVERHEAD > self.max_size {
                self.exact = true;
            }
        }
        while self.size > MAX_TABLE_BYTES {
            match self.entries.pop_back() {
                Some(e) => self.size -= e.size,
                None => break,
            }
            // Dropped by hdrtap only: the encoder still has it.
            self.exact = false;
        }
    }

    /// A dynamic table size update to `n`.
    fn resize(&mut self, n: u64) -> Result<(), HpackError> {
        let n = usize::try_from(n).map_err(|_| HpackError::SizeUpdate)?;
        if self.allowed_known && n > self.max_allowed {
            return Err(HpackError::SizeUpdate);
        }
        self.max_size = n;
        self.max_known = true;
        if n == 0 {
            // Everything is evicted, what hdrtap knew and what it did not.
            self.entries.clear();
            self.size = 0;
            self.exact = true;
            self.sizes_known = true;
            return Ok(());
        }
        self.evict();
        Ok(())
    }
}

fn count(info: &mut BlockInfo, f: &Field<'_>) {
    info.fields += 1;
    if f.name.is_none() || f.value.is_none() {
        info.undecoded += 1;
    }
    info.decoded_bytes += f.name.map_or(0, <[u8]>::len) + f.value.map_or(0, <[u8]>::len) + 32;
}

/// Where a decoded string is: a range of the block, or the Huffman scratch.
enum Str {
    Raw(std::ops::Range<usize>),
    Huff,
}

/// An integer with an `n`-bit prefix (§5.1), at most 2^32.
fn integer(block: &[u8], pos: &mut usize, n: u32) -> Result<u64, HpackError> {
    let mask = (1u64 << n) - 1;
    let first = u64::from(*block.get(*pos).ok_or(HpackError::Integer)?);
    *pos += 1;
    let mut v = first & mask;
    if v < mask {
        return Ok(v);
    }
    let mut shift = 0u32;
    loop {
        let b = u64::from(*block.get(*pos).ok_or(HpackError::Integer)?);
        *pos += 1;
        v += (b & 0x7f) << shift;
        if v > u64::from(u32::MAX) {
            return Err(HpackError::Integer);
        }
        if b & 0x80 == 0 {
            return Ok(v);
        }
        shift += 7;
        if shift > 28 {
            return Err(HpackError::Integer);
        }
    }
}

/// A string literal (§5.2): raw bytes are left in the block, Huffman ones
/// are decoded into `huff`.
fn string(block: &[u8], pos: &mut usize, huff: &mut Vec<u8>) -> Result<Str, HpackError> {
    let h = *block.get(*pos).ok_or(HpackError::StringLength)? & 0x80 != 0;
    let len = usize::try_from(integer(block, pos, 7)?).map_err(|_| HpackError::StringLength)?;
    let end = pos.checked_add(len).ok_or(HpackError::StringLength)?;
    let raw = block.get(*pos..end).ok_or(HpackError::StringLength)?;
    let range = *pos..end;
    *pos = end;
    if !h {
        return Ok(Str::Raw(range));
    }
    huff.clear();
    if !super::huffman::decode(raw, huff) {
        return Err(HpackError::Huffman);
    }
    Ok(Str::Huff)
}
