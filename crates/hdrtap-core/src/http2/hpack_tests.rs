//! HPACK decoder: RFC 7541 Appendix C, the hpack-test-case corpus
//! (testdata/hpack), decoding joined mid-stream, errors, garbage.
use std::io::Read;
use std::path::PathBuf;

use proptest::prelude::*;

use super::hpack::{BlockInfo, Decoder, HpackError, Repr, MAX_TABLE_BYTES};

type Pairs = Vec<(Option<String>, Option<String>)>;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn text(b: Option<&[u8]>) -> Option<String> {
    b.map(|b| String::from_utf8_lossy(b).into_owned())
}

fn decode(d: &mut Decoder, block: &[u8]) -> (Pairs, Vec<Repr>, BlockInfo) {
    let mut pairs = Vec::new();
    let mut reprs = Vec::new();
    let info = d.decode(block, &mut |f| {
        pairs.push((text(f.name), text(f.value)));
        reprs.push(f.repr);
    });
    (pairs, reprs, info)
}

fn known(pairs: &[(&str, &str)]) -> Pairs {
    pairs
        .iter()
        .map(|(n, v)| (Some(n.to_string()), Some(v.to_string())))
        .collect()
}

/// `v` as an HPACK integer with an `n`-bit prefix under `flags` (§5.1).
fn int_bytes(flags: u8, n: u32, v: u64) -> Vec<u8> {
    let mask = (1u64 << n) - 1;
    if v < mask {
        return vec![flags | v as u8];
    }
    let mut out = vec![flags | mask as u8];
    let mut rest = v - mask;
    while rest >= 128 {
        out.push((rest & 0x7f) as u8 | 0x80);
        rest >>= 7;
    }
    out.push(rest as u8);
    out
}

/// A literal field without Huffman: `prefix` is 0x40 (incremental), 0x00
/// (without indexing) or 0x10 (never indexed); `name` a string or an index.
fn literal(prefix: u8, name: Result<&str, u8>, value: &str) -> Vec<u8> {
    let mut out = Vec::new();
    match name {
        Ok(n) => {
            out.push(prefix);
            out.push(n.len() as u8);
            out.extend_from_slice(n.as_bytes());
        }
        Err(i) => out.extend(int_bytes(
            prefix,
            if prefix == 0x40 { 6 } else { 4 },
            i.into(),
        )),
    }
    out.push(value.len() as u8);
    out.extend_from_slice(value.as_bytes());
    out
}

#[test]
fn rfc7541_c2_single_representations() {
    let mut d = Decoder::new(true);
    let (p, r, i) = decode(
        &mut d,
        &hex("400a637573746f6d2d6b65790d637573746f6d2d686561646572"),
    );
    assert_eq!(p, known(&[("custom-key", "custom-header")]));
    assert_eq!(
        (r[0], i.error, d.known_entries()),
        (Repr::Incremental, None, 1)
    );

    let mut d = Decoder::new(true);
    let (p, r, _) = decode(&mut d, &hex("040c2f73616d706c652f70617468"));
    assert_eq!(p, known(&[(":path", "/sample/path")]));
    assert_eq!((r[0], d.known_entries()), (Repr::WithoutIndexing, 0));

    let mut d = Decoder::new(true);
    let (p, r, _) = decode(&mut d, &hex("100870617373776f726406736563726574"));
    assert_eq!(p, known(&[("password", "secret")]));
    assert_eq!((r[0], d.known_entries()), (Repr::NeverIndexed, 0));

    let mut d = Decoder::new(true);
    let (p, r, _) = decode(&mut d, &hex("82"));
    assert_eq!(p, known(&[(":method", "GET")]));
    assert_eq!(r[0], Repr::Indexed);
}

/// RFC 7541 C.3 (requests, no Huffman) and C.4 (the same with Huffman).
#[test]
fn rfc7541_c3_c4_requests() {
    for blocks in [
        [
            "828684410f7777772e6578616d706c652e636f6d",
            "828684be58086e6f2d6361636865",
            "828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565",
        ],
        [
            "828684418cf1e3c2e5f23a6ba0ab90f4ff",
            "828684be5886a8eb10649cbf",
            "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf",
        ],
    ] {
        let mut d = Decoder::new(true);
        let base = [
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":authority", "www.example.com"),
        ];
        assert_eq!(decode(&mut d, &hex(blocks[0])).0, known(&base));
        let mut second = base.to_vec();
        second.push(("cache-control", "no-cache"));
        assert_eq!(decode(&mut d, &hex(blocks[1])).0, known(&second));
        let third = [
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/index.html"),
            (":authority", "www.example.com"),
            ("custom-key", "custom-value"),
        ];
        assert_eq!(decode(&mut d, &hex(blocks[2])).0, known(&third));
        assert_eq!(d.known_entries(), 3);
        assert!(d.exact());
    }
}

/// RFC 7541 C.5 (responses, table of 256 bytes, evictions) and C.6 (the
/// same with Huffman).
#[test]
fn rfc7541_c5_c6_responses_with_evictions() {
    for blocks in [
        [
            "4803333032580770726976617465611d4d6f6e2c203231204f637420323031332032303a31333a323120474d546e1768747470733a2f2f7777772e6578616d706c652e636f6d",
            "4803333037c1c0bf",
            "88c1611d4d6f6e2c203231204f637420323031332032303a31333a323220474d54c05a04677a69707738666f6f3d4153444a4b48514b425a584f5157454f50495541585157454f49553b206d61782d6167653d333630303b2076657273696f6e3d31",
        ],
        [
            "488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad171863c78f0b97c8e9ae82ae43d3",
            "4883640effc1c0bf",
            "88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007",
        ],
    ] {
        let mut d = Decoder::new(true);
        // The encoder uses a 256-byte table: a size update would say so on
        // the wire; the RFC example sets it out of band.
        assert_eq!(decode(&mut d, &[0x3f, 0xe1, 0x01]).2.size_updates, 1);
        assert_eq!(d.max_size(), 256);
        let common = |status: &str, date: &str| {
            vec![
                (":status".to_string(), status.to_string()),
                ("cache-control".into(), "private".into()),
                ("date".into(), date.into()),
                ("location".into(), "https://www.example.com".into()),
            ]
        };
        let strip = |p: Pairs| -> Vec<(String, String)> {
            p.into_iter().map(|(n, v)| (n.unwrap(), v.unwrap())).collect()
        };
        let (p, _, i) = decode(&mut d, &hex(blocks[0]));
        assert_eq!(i.error, None);
        assert_eq!(strip(p), common("302", "Mon, 21 Oct 2013 20:13:21 GMT"));
        assert_eq!(d.known_entries(), 4);
        let (p, _, _) = decode(&mut d, &hex(blocks[1]));
        assert_eq!(strip(p), common("307", "Mon, 21 Oct 2013 20:13:21 GMT"));
        assert_eq!(d.known_entries(), 4);
        let (p, _, _) = decode(&mut d, &hex(blocks[2]));
        let mut third = common("200", "Mon, 21 Oct 2013 20:13:22 GMT");
        third.push(("content-encoding".into(), "gzip".into()));
        third.push((
            "set-cookie".into(),
            "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1".into(),
        ));
        assert_eq!(strip(p), third);
        // RFC: three entries left, 215 bytes.
        assert_eq!(d.known_entries(), 3);
    }
}

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/hpack")
}

/// Every block of every story of testdata/hpack decodes to its header list.
#[test]
fn hpack_test_case_corpus() {
    let mut stories = 0;
    let mut blocks = 0;
    for dir in std::fs::read_dir(corpus_dir()).expect("testdata/hpack") {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&dir).unwrap() {
            let path = f.unwrap().path();
            let mut json = String::new();
            flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap())
                .read_to_string(&mut json)
                .unwrap();
            let story: serde_json::Value = serde_json::from_str(&json).unwrap();
            let mut d = Decoder::new(true);
            for case in story["cases"].as_array().unwrap() {
                if let Some(n) = case["header_table_size"].as_u64() {
                    // SETTINGS_HEADER_TABLE_SIZE, acknowledged: the encoder
                    // may use up to this (and says so with a size update).
                    d.set_max_allowed(n as usize);
                }
                let (pairs, _, info) = decode(&mut d, &hex(case["wire"].as_str().unwrap()));
                let want: Pairs = case["headers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| {
                        let (n, v) = h.as_object().unwrap().iter().next().unwrap();
                        (Some(n.clone()), Some(v.as_str().unwrap().to_string()))
                    })
                    .collect();
                assert_eq!(
                    info.error,
                    None,
                    "{} seqno {}",
                    path.display(),
                    case["seqno"]
                );
                assert_eq!(pairs, want, "{} seqno {}", path.display(), case["seqno"]);
                assert!(d.exact());
                blocks += 1;
            }
            stories += 1;
        }
    }
    assert!(
        stories >= 5 * 30,
        "only {stories} stories in testdata/hpack"
    );
    assert!(blocks > 10_000, "only {blocks} blocks");
}

/// Joined mid-stream: entries from before are unknown, not invented; those
/// inserted after are exact; filling a known table makes it exact again.
#[test]
fn joined_midstream_decodes_what_it_saw_inserted() {
    // The encoder's table already holds two entries hdrtap never saw.
    let mut d = Decoder::new(false);
    assert!(!d.exact());
    // Index 62 and 63: the two old entries. Index 2: static.
    let (p, _, i) = decode(&mut d, &[0x82, 0xbe, 0xbf]);
    assert_eq!(
        p,
        vec![
            (Some(":method".into()), Some("GET".into())),
            (None, None),
            (None, None)
        ]
    );
    assert_eq!((i.fields, i.undecoded, i.error), (3, 2, None));
    // A literal with incremental indexing whose name is an old entry: its
    // value is known, its name is not; it becomes index 62.
    let mut block = literal(0x40, Err(63), "v1");
    block.extend(literal(0x40, Ok("x-new"), "fresh"));
    let (p, _, i) = decode(&mut d, &block);
    assert_eq!(p[0], (None, Some("v1".into())));
    assert_eq!(p[1], (Some("x-new".into()), Some("fresh".into())));
    assert_eq!(i.undecoded, 1);
    // Now 62 is x-new, 63 the half-known one, 64 an old one.
    let (p, _, _) = decode(&mut d, &[0xbe, 0xbf, 0xc0]);
    assert_eq!(
        p,
        vec![
            (Some("x-new".into()), Some("fresh".into())),
            (None, Some("v1".into())),
            (None, None)
        ]
    );
    // A size update to 0 empties the table: exact from here.
    let (_, _, i) = decode(&mut d, &[0x20]);
    assert_eq!((i.size_updates, d.exact(), d.known_entries()), (1, true, 0));
    let (_, _, i) = decode(&mut d, &[0xbe]);
    assert_eq!(i.error, Some(HpackError::Index));
}

#[test]
fn known_entries_filling_a_known_table_make_it_exact() {
    let mut d = Decoder::new(false);
    // Size update to 100: one 32+ byte entry hdrtap never saw may remain.
    decode(&mut d, &[0x3f, 0x45]);
    assert_eq!(d.max_size(), 100);
    assert!(!d.exact());
    // 32 + 10 + 30 = 72 bytes known: 28 left, no room for an unknown one.
    let (_, _, i) = decode(&mut d, &literal(0x40, Ok("0123456789"), &"v".repeat(30)));
    assert_eq!(i.error, None);
    assert!(d.exact());
}

#[test]
fn errors_stop_the_block_keep_earlier_fields_and_distrust_the_table() {
    let cases: &[(&[u8], HpackError)] = &[
        (&[0x82, 0x80], HpackError::Index), // index 0
        (&[0x82, 0xbf], HpackError::Index), // past an exact table
        (&[0x82, 0x04, 0x05, b'a'], HpackError::StringLength),
        (
            &[0x82, 0x04, 0x84, 0xff, 0xff, 0xff, 0xff],
            HpackError::Huffman,
        ), // EOS inside
        (&[0x82, 0x04, 0x81, 0x00], HpackError::Huffman), // padding not all ones
        (&[0x82, 0x20], HpackError::SizeUpdate),          // after a field
        (
            &[0x82, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
            HpackError::Integer,
        ),
        (&[0x82, 0x3f], HpackError::Integer), // cut integer
    ];
    for (block, err) in cases {
        let mut d = Decoder::new(true);
        decode(&mut d, &literal(0x40, Ok("a"), "b"));
        let (p, _, i) = decode(&mut d, block);
        assert_eq!(i.error, Some(*err), "{block:02x?}");
        assert_eq!(p[0], (Some(":method".into()), Some("GET".into())));
        assert!(!d.exact(), "{block:02x?}");
        assert_eq!(d.known_entries(), 0);
    }
    // A size update above SETTINGS_HEADER_TABLE_SIZE.
    let mut d = Decoder::new(true);
    d.set_max_allowed(100);
    assert_eq!(
        decode(&mut d, &[0x3f, 0x46]).2.error,
        Some(HpackError::SizeUpdate)
    );
}

#[test]
fn the_table_is_bounded() {
    let mut d = Decoder::new(true);
    // The receiver allows a 1 MiB table and the encoder uses it.
    d.set_max_allowed(1 << 20);
    decode(&mut d, &[0x3f, 0xe1, 0xff, 0x3f]); // 31 + 0x3f + (0x7f << 7) + (0x3f << 14)
    let value = "v".repeat(100);
    for i in 0..2000 {
        let (_, _, info) = decode(&mut d, &literal(0x40, Ok(&format!("n{i:04}")), &value));
        assert_eq!(info.error, None);
    }
    // 2000 entries of 137 bytes do not fit hdrtap's bound.
    assert!(d.known_entries() * 137 <= MAX_TABLE_BYTES);
    assert!(!d.exact());
    // The newest is still right; one past what hdrtap kept is unknown.
    let (p, _, _) = decode(&mut d, &[0xbe]);
    assert_eq!(p[0].0.as_deref(), Some("n1999"));
    let past = 62 + d.known_entries() as u64;
    let (p, _, i) = decode(&mut d, &int_bytes(0x80, 7, past));
    assert_eq!((p[0].clone(), i.error), ((None, None), None));
}

proptest! {
    /// Garbage never panics, and an exact decoder that errs stops trusting.
    #[test]
    fn garbage_is_handled(blocks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..8), from_start in any::<bool>()) {
        let mut d = Decoder::new(from_start);
        for b in &blocks {
            let (p, _, i) = decode(&mut d, b);
            prop_assert_eq!(p.len(), i.fields);
            prop_assert!(i.undecoded <= i.fields);
            if i.error.is_some() {
                prop_assert!(!d.exact());
            }
        }
    }
}
