//! HPACK's Huffman code (RFC 7541 §5.2, Appendix B): a decoder that reads
//! four bits a step through a state table built once from the code table
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

/// A step from a tree node on four bits.
#[derive(Debug, Clone, Copy, Default)]
struct Step {
    /// The node reached.
    next: u16,
    /// A symbol completed on the way (at most one: every code has 5 bits
    /// or more).
    sym: u8,
    emits: bool,
    /// EOS was decoded, or the bits lead nowhere: the string is invalid.
    fail: bool,
}

struct Machine {
    /// `steps[node * 16 + nibble]`.
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
    let mut steps = vec![Step::default(); n * 16];
    for node in 0..n {
        for nib in 0..16u8 {
            let mut cur = node;
            let mut st = Step::default();
            for i in (0..4).rev() {
                let bit = ((nib >> i) & 1) as usize;
                let child = children
                    .get(cur)
                    .and_then(|c| c.get(bit))
                    .copied()
                    .unwrap_or(0);
                if child < 0 {
                    let sym = (-child - 1) as usize;
                    if sym == EOS || st.emits {
                        st.fail = true;
                        break;
                    }
                    st.sym = sym as u8;
                    st.emits = true;
                    cur = 0;
                } else if child == 0 {
                    st.fail = true;
                    break;
                } else {
                    cur = child as usize;
                }
            }
            st.next = cur as u16;
            if let Some(s) = steps.get_mut(node * 16 + nib as usize) {
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
    let mut node = 0usize;
    for &b in src {
        for nib in [b >> 4, b & 0xf] {
            let Some(st) = m.steps.get(node * 16 + nib as usize) else {
                return false;
            };
            if st.fail {
                return false;
            }
            if st.emits {
                out.push(st.sym);
            }
            node = st.next as usize;
        }
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
