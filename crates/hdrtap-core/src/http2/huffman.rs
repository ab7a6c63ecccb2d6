//! HPACK's Huffman code (RFC 7541 §5.2, Appendix B): a decoder that reads
//! a byte a step through a state table built once from the code table
//! the `httlib-huffman` crate publishes (`ENCODE_TABLE`).
//!
//! Written here, not taken from that crate's decoder, because the latter
//! accepts padding that is not a prefix of EOS (zero bits), which §5.2
//! requires to be an error, and allocates on every string.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

use std::sync::OnceLock;

use httlib_huffman::encoder::table::ENCODE_TABLE;

/// The symbol that must never be decoded (§5.2).
const EOS: usize = 256;

/// A step from a tree node on one byte, packed: bits 0–7 the node
/// reached, 8–15 and 16–23 the symbols completed on the way (at most two:
/// every code has 5 bits or more), 24–25 how many, [`FAIL`] if EOS was
/// decoded or the bits lead nowhere (the string is invalid).
type Step = u32;
const FAIL: Step = 1 << 26;

struct Machine {
    /// `steps[node * 256 + byte]`: 256 KiB, built once.
    steps: Vec<Step>,
    /// Per node: the bits since the last symbol are a valid padding (at
    /// most 7, all ones, §5.2).
    accepts: Vec<bool>,
}

fn machine() -> &'static Machine {
    static M: OnceLock<Machine> = OnceLock::new();
    M.get_or_init(build)
}

/// The code tree: internal nodes, children as node ids or leaves (`!sym`).
fn build() -> Machine {
    // children[node] = [zero, one]; 0 = none yet (node 0 is the root, never
    // a child); a leaf is stored as -(sym + 1).
    let mut children: Vec<[i32; 2]> = vec![[0, 0]];
    let mut depth: Vec<u8> = vec![0];
    let mut ones: Vec<bool> = vec![true];
    for (sym, &(len, code)) in ENCODE_TABLE.iter().enumerate() {
        let mut node = 0usize;
        for i in (0..len).rev() {
            let bit = ((code >> i) & 1) as usize;
            let last = i == 0;
            let slot = children
                .get(node)
                .and_then(|c| c.get(bit))
                .copied()
                .unwrap_or(0);
            if last {
                if let Some(c) = children.get_mut(node).and_then(|c| c.get_mut(bit)) {
                    *c = -(sym as i32 + 1);
                }
            } else if slot > 0 {
                node = slot as usize;
            } else {
                let id = children.len();
                let d = depth.get(node).copied().unwrap_or(0) + 1;
                let o = ones.get(node).copied().unwrap_or(false) && bit == 1;
                children.push([0, 0]);
                depth.push(d);
                ones.push(o);
                if let Some(c) = children.get_mut(node).and_then(|c| c.get_mut(bit)) {
                    *c = id as i32;
                }
                node = id;
            }
        }
    }
    let n = children.len();
    // 257 leaves make 256 internal nodes: a node id fits the step's 8 bits.
    debug_assert!(n <= 256);
    let mut steps: Vec<Step> = vec![FAIL; n * 256];
    for node in 0..n {
        for byte in 0..=255u8 {
            let mut cur = node;
            let mut syms: Vec<u8> = Vec::with_capacity(2);
            let mut fail = false;
            for i in (0..8).rev() {
                let bit = ((byte >> i) & 1) as usize;
                let child = children
                    .get(cur)
                    .and_then(|c| c.get(bit))
                    .copied()
                    .unwrap_or(0);
                if child < 0 {
                    let sym = (-child - 1) as usize;
                    if sym == EOS || syms.len() == 2 {
                        fail = true;
                        break;
                    }
                    syms.push(sym as u8);
                    cur = 0;
                } else if child == 0 {
                    fail = true;
                    break;
                } else {
                    cur = child as usize;
                }
            }
            let st = if fail {
                FAIL
            } else {
                (cur as u32 & 0xff)
                    | u32::from(syms.first().copied().unwrap_or(0)) << 8
                    | u32::from(syms.get(1).copied().unwrap_or(0)) << 16
                    | (syms.len() as u32) << 24
            };
            if let Some(s) = steps.get_mut(node * 256 + usize::from(byte)) {
                *s = st;
            }
        }
    }
    let accepts = (0..n)
        .map(|i| {
            depth.get(i).copied().unwrap_or(u8::MAX) <= 7 && ones.get(i).copied().unwrap_or(false)
        })
        .collect();
    Machine { steps, accepts }
}

/// Decode `src` onto the end of `out`; false if it is not a valid Huffman
/// string (a bad code, EOS, or padding other than up to 7 one-bits).
pub fn decode(src: &[u8], out: &mut Vec<u8>) -> bool {
    let m = machine();
    // At most one symbol per five bits (the shortest code).
    out.reserve(src.len() * 8 / 5 + 1);
    let mut node = 0usize;
    for &b in src {
        let Some(&st) = m.steps.get(node * 256 + usize::from(b)) else {
            return false;
        };
        if st & FAIL != 0 {
            return false;
        }
        let count = (st >> 24) & 3;
        if count >= 1 {
            out.push((st >> 8) as u8);
        }
        if count == 2 {
            out.push((st >> 16) as u8);
        }
        node = (st & 0xff) as usize;
    }
    m.accepts.get(node).copied().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dec(src: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        decode(src, &mut out).then_some(out)
    }

    #[test]
    fn rfc_examples_and_invalid_strings() {
        // RFC 7541 C.4.1: "www.example.com".
        let www = [
            0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff,
        ];
        assert_eq!(dec(&www).as_deref(), Some(&b"www.example.com"[..]));
        assert_eq!(dec(&[]).as_deref(), Some(&b""[..]));
        // '0' is 00000: the three bits after it must be ones.
        assert_eq!(dec(&[0x07]).as_deref(), Some(&b"0"[..]));
        assert_eq!(dec(&[0x00]), None, "zero padding");
        // Eight bits of ones are too much padding.
        assert_eq!(dec(&[0x07, 0xff]), None);
        // EOS itself.
        assert_eq!(dec(&[0xff, 0xff, 0xff, 0xff]), None);
    }

    proptest! {
        /// Whatever the encoder (httlib-huffman's, all-ones padding) makes
        /// decodes back; garbage never panics.
        #[test]
        fn round_trip(s in proptest::collection::vec(any::<u8>(), 0..200), junk in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut enc = Vec::new();
            httlib_huffman::encode(&s, &mut enc).unwrap();
            prop_assert_eq!(dec(&enc), Some(s));
            let _ = dec(&junk);
        }
    }
}
