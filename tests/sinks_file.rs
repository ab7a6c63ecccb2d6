//! The file sink under load with a small rotation size: concatenating the
//! rotated files gives every record exactly once, every line is whole JSON,
//! every file is 0600 (and gzipped when asked). Root only; scripts/test.sh.
#![forbid(unsafe_code)]
use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use hdrtap_tests::*;

/// The records of `out.ndjson` and its rotations, oldest first.
fn all_records(dir: &Path, compress: bool) -> (Vec<Value>, usize) {
    let mut rotated: Vec<(u32, std::path::PathBuf)> = fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            let name = p.file_name()?.to_str()?.to_string();
            let rest = name.strip_prefix("out.ndjson.")?;
            let n = rest.strip_suffix(".gz").unwrap_or(rest);
            Some((n.parse().ok()?, p))
        })
        .collect();
    rotated.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut out = Vec::new();
    for (_, p) in &rotated {
        assert_eq!(
            fs::metadata(p).unwrap().permissions().mode() & 0o777,
            0o600,
            "{}",
            p.display()
        );
        let text = if compress {
            assert!(
                p.to_str().unwrap().ends_with(".gz"),
                "{} not compressed",
                p.display()
            );
            let mut s = String::new();
            flate2::read::GzDecoder::new(fs::File::open(p).unwrap())
                .read_to_string(&mut s)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            s
        } else {
            let meta = fs::metadata(p).unwrap();
            assert!(
                meta.len() <= 65536,
                "{} is {} bytes, over max_size",
                p.display(),
                meta.len()
            );
            fs::read_to_string(p).unwrap()
        };
        out.extend(parse_ndjson(&text, &p.display().to_string()));
    }
    let cur = dir.join("out.ndjson");
    assert_eq!(
        fs::metadata(&cur).unwrap().permissions().mode() & 0o777,
        0o600
    );
    out.extend(read_ndjson(&cur));
    (out, rotated.len())
}

fn rotation_under_load(compress: bool) {
    let _guard = setup();
    let nginx = Nginx::start();
    let d = Daemon::start(&format!(
        "stats_interval = 1\n[http]\nports = [{}]\ntls = false\n\
         [[sinks]]\ntype = \"file\"\npath = \"{{dir}}/out.ndjson\"\nmax_size = \"64KiB\"\nmax_files = 1000\ncompress = {compress}\nqueue_records = 1000000\n",
        nginx.port
    ));
    let id = unique_id("rot");
    let load = SeqLoad::start(
        format!("127.0.0.1:{}", nginx.port).parse().unwrap(),
        "/",
        4,
        // About 1,000 requests a second in all (4,000 records): load that a
        // debug build keeps up with, so that every record reaches the sink.
        Some(250.0),
        &id,
    );
    std::thread::sleep(Duration::from_secs(5));
    let exchanges = load.finish();
    assert!(exchanges.len() > 500, "only {} exchanges", exchanges.len());
    std::thread::sleep(Duration::from_millis(500));
    let exit = d.stop();
    assert!(
        exit.stderr
            .contains("0 dropped (queue full), 0 dropped (failed)"),
        "the file sink dropped records:\n{}",
        exit.stderr
    );
    let (records, files) = all_records(exit.dir(), compress);
    assert!(
        files >= 5,
        "only {files} rotations for {} records\nstderr:\n{}",
        records.len(),
        exit.stderr
    );

    // Ids: every record (not stats) has one, and together they are exactly
    // 1..=N: nothing lost or duplicated across rotations.
    let mut ids: Vec<u64> = records
        .iter()
        .filter(|v| kind(v) != "stats")
        .map(|v| v["id"].as_u64().unwrap())
        .collect();
    let n = ids.len() as u64;
    ids.sort();
    assert_eq!(ids, (1..=n).collect::<Vec<_>>(), "ids missing or repeated");

    // Each request of the load, exactly once on each side (when the kernel
    // lost nothing; otherwise at most once).
    let last = records
        .iter()
        .rev()
        .find(|v| v["source"] == "http")
        .expect("final http stats");
    let lost = last["lost_events"].as_u64().unwrap() + last["gaps"].as_u64().unwrap();
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    for v in records.iter().filter(|v| kind(v) == "http_request") {
        if header(v, "X-Test-Id").as_deref() != Some(id.as_str()) {
            continue;
        }
        let seq = header(v, "X-Seq").unwrap();
        *seen
            .entry((v["role"].as_str().unwrap().to_string(), seq))
            .or_default() += 1;
    }
    for ex in &exchanges {
        for role in ["client", "server"] {
            let c = seen
                .get(&(role.to_string(), ex.seq.to_string()))
                .copied()
                .unwrap_or(0);
            if lost == 0 {
                assert_eq!(
                    c, 1,
                    "{role} request {} seen {c} times\n{}",
                    ex.seq, exit.stderr
                );
            } else {
                assert!(c <= 1, "{role} request {} seen {c} times", ex.seq);
            }
        }
    }
    assert_eq!(
        last["records"].as_u64().unwrap(),
        records.iter().filter(|v| is_http(v)).count() as u64,
        "the final stats count every HTTP record the files hold"
    );
}

#[test]
fn rotation_under_load_loses_and_tears_nothing() {
    rotation_under_load(false);
}

#[test]
fn gzip_rotation_under_load_loses_and_tears_nothing() {
    rotation_under_load(true);
}
