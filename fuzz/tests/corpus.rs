//! Every seed (`testdata/fuzz/<target>/`) and every input a fuzzer once
//! failed on (`fuzz/regressions/<target>/`) through its target, on stable
//! Rust with no instrumentation: `cargo test --manifest-path fuzz/Cargo.toml`.
//! A regression file's name says what it found (see fuzz/README.md).
use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn inputs(target: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in [
        root().join("testdata/fuzz").join(target),
        root().join("fuzz/regressions").join(target),
    ] {
        let Ok(rd) = fs::read_dir(&dir) else { continue };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_file() {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

fn run(target: &str, f: fn(&[u8]), min_seeds: usize) {
    let files = inputs(target);
    assert!(
        files.len() >= min_seeds,
        "{target}: {} inputs, expected at least {min_seeds} (seeds are made by `cargo run --manifest-path fuzz/Cargo.toml --example seeds`)",
        files.len()
    );
    for p in files {
        let data = fs::read(&p).unwrap();
        let r = std::panic::catch_unwind(|| f(&data));
        assert!(r.is_ok(), "{target}: {} fails", p.display());
    }
}

#[test]
fn abi_decode() {
    run("abi_decode", hdrtap_fuzz::abi_decode, 5);
}

#[test]
fn http1_stream() {
    run("http1_stream", hdrtap_fuzz::http1_stream, 5);
}

#[test]
fn packet_decode() {
    run("packet_decode", hdrtap_fuzz::packet_decode, 5);
}

#[test]
fn filter_parse() {
    run("filter_parse", hdrtap_fuzz::filter_parse, 5);
}

#[test]
fn config_parse() {
    run("config_parse", hdrtap_fuzz::config_parse, 5);
}

/// The script encoding round-trips, so seeds say what they mean.
#[test]
fn scripts_round_trip() {
    use hdrtap_abi::Direction;
    use hdrtap_fuzz::{decode_script, encode_script, Op};
    let ops = vec![
        Op::Data {
            conn: 1,
            dir: Direction::Ingress,
            lost: 0,
            back: 0,
            uncaptured: 0,
            flags: 0,
            bytes: b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        },
        Op::Data {
            conn: 2,
            dir: Direction::Egress,
            lost: 7,
            back: 0,
            uncaptured: 0,
            flags: hdrtap_abi::HDRTAP_DF_MIDSTREAM as u16,
            bytes: vec![b'x'; 300],
        },
        Op::Close { conn: 1 },
    ];
    assert_eq!(decode_script(&encode_script(9, &ops)), (9, ops));
}

#[test]
fn http2_stream() {
    run("http2_stream", hdrtap_fuzz::http2_stream, 12);
}

#[test]
fn tcp_reassembly() {
    run("tcp_reassembly", hdrtap_fuzz::tcp_reassembly, 5);
}
