use super::*;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::sync::Mutex;
use std::time::Instant;

fn http(id: u64, pad: usize) -> Record {
    Record::Http(Arc::new(HttpRecord {
        id,
        ts_unix_ns: 1_700_000_000_000_000_000 + id,
        target: Some(format!("/{}", "p".repeat(pad)).into()),
        header_bytes: 10,
        ..crate::record::test_request(&[("Host", "a")])
    }))
}

fn stats() -> Record {
    #[derive(Serialize)]
    struct C {
        records: u64,
        lost_events: u64,
    }
    Record::Stats(Arc::new(StatsSnapshot::new(
        "http",
        0,
        &C {
            records: 3,
            lost_events: 1,
        },
    )))
}

/// A sink that records what it got, optionally slowly.
struct Probe {
    got: Arc<Mutex<Vec<u64>>>,
    delay: Duration,
    closed: Arc<AtomicBool>,
    reopened: Arc<AtomicU64>,
}

impl Sink for Probe {
    fn write(&mut self, batch: &[Record]) {
        std::thread::sleep(self.delay);
        self.got
            .lock()
            .unwrap()
            .extend(batch.iter().map(|r| r.id()));
    }
    fn reopen(&mut self) {
        self.reopened.fetch_add(1, Ordering::Relaxed);
    }
    fn close(&mut self) {
        self.closed.store(true, Ordering::Relaxed);
    }
}

struct ProbeHandles {
    got: Arc<Mutex<Vec<u64>>>,
    closed: Arc<AtomicBool>,
    reopened: Arc<AtomicU64>,
    counters: Arc<SinkCounters>,
}

fn probe(name: &str, delay: Duration, kinds: KindSet, queue: u64) -> (SinkSpec, ProbeHandles) {
    let h = ProbeHandles {
        got: Arc::default(),
        closed: Arc::default(),
        reopened: Arc::default(),
        counters: Arc::default(),
    };
    let spec = SinkSpec {
        name: name.into(),
        sink_type: "probe",
        kinds,
        queue_records: queue,
        sink: Box::new(Probe {
            got: Arc::clone(&h.got),
            delay,
            closed: Arc::clone(&h.closed),
            reopened: Arc::clone(&h.reopened),
        }),
        counters: Arc::clone(&h.counters),
    };
    (spec, h)
}

#[test]
fn a_slow_sink_never_blocks_capture_or_the_others() {
    let (slow, hs) = probe("slow", Duration::from_millis(200), KindSet::ALL, 10);
    let (fast, hf) = probe("fast", Duration::ZERO, KindSet::ALL, 100_000);
    let fanout = Fanout::start(vec![slow, fast]).unwrap();
    let t = Instant::now();
    let mut sent = 0;
    for b in 0..200u64 {
        let batch: Arc<[Record]> = (0..5).map(|i| http(b * 5 + i + 1, 0)).collect();
        sent += batch.len() as u64;
        fanout.send(batch);
    }
    assert!(
        t.elapsed() < Duration::from_millis(150),
        "send blocked: {:?}",
        t.elapsed()
    );
    fanout.reopen();
    // A reopen is taken up within a tick.
    std::thread::sleep(TICK * 3);
    let infos = fanout.close();
    assert_eq!(infos.len(), 2);
    assert_eq!(
        hf.got.lock().unwrap().len() as u64,
        sent,
        "the fast sink got everything"
    );
    let slow_got = hs.got.lock().unwrap().len() as u64;
    let s = hs.counters.snapshot();
    assert!(s.dropped_queue > 0, "{s:?}");
    assert_eq!(
        slow_got + s.dropped_queue,
        sent,
        "every record either delivered or counted: {s:?}"
    );
    assert_eq!(s.queued, 0);
    assert!(hs.closed.load(Ordering::Relaxed) && hf.closed.load(Ordering::Relaxed));
    assert_eq!(hf.reopened.load(Ordering::Relaxed), 1);
}

#[test]
fn sinks_get_only_the_kinds_they_take() {
    let (only_stats, h) = probe(
        "stats",
        Duration::ZERO,
        KindSet::parse(&["stats"]).unwrap(),
        100,
    );
    let fanout = Fanout::start(vec![only_stats]).unwrap();
    fanout.send(vec![http(1, 0), stats(), http(2, 0)].into());
    fanout.send(vec![http(3, 0)].into());
    fanout.close();
    assert_eq!(*h.got.lock().unwrap(), vec![0]);
    assert_eq!(h.counters.snapshot().dropped_queue, 0);
    assert!(KindSet::parse(&["htp"]).is_err());
    let http_only = KindSet::parse(&["http"]).unwrap();
    assert!(http_only.contains(Kind::HttpRequest) && http_only.contains(Kind::HttpResponse));
    assert!(!http_only.contains(Kind::Alert));
}

#[test]
fn stats_snapshot_has_pairs_and_json() {
    let Record::Stats(s) = stats() else { panic!() };
    assert_eq!(s.get("lost_events"), Some(1));
    let v: serde_json::Value = serde_json::from_str(&s.json).unwrap();
    assert_eq!(v["kind"], "stats");
    assert_eq!(v["source"], "http");
    assert_eq!(v["records"], 3);
    let mut human = Vec::new();
    assert!(!Record::Stats(s).write(Format::Human, &mut human));
    assert!(human.is_empty());
}

fn file_sink(
    dir: &Path,
    max_bytes: u64,
    max_files: u32,
    compress: bool,
) -> (FileSink, Arc<SinkCounters>, PathBuf) {
    let path = dir.join("out.ndjson");
    let counters = Arc::new(SinkCounters::default());
    let sink = FileSink::open(
        FileOptions {
            path: path.clone(),
            format: Format::Json,
            max_bytes,
            max_files,
            compress,
        },
        Arc::clone(&counters),
    )
    .unwrap();
    (sink, counters, path)
}

use std::path::{Path, PathBuf};

/// Every line of `path` and its rotations (`.N` or `.N.gz`), oldest first.
fn all_lines(path: &Path, max_files: u32) -> Vec<String> {
    let mut out = Vec::new();
    for k in (1..=max_files).rev() {
        let plain = PathBuf::from(format!("{}.{k}", path.display()));
        let gz = PathBuf::from(format!("{}.{k}.gz", path.display()));
        let text = if gz.exists() {
            let mut s = String::new();
            flate2::read::GzDecoder::new(std::fs::File::open(&gz).unwrap())
                .read_to_string(&mut s)
                .unwrap();
            assert_eq!(
                std::fs::metadata(&gz).unwrap().permissions().mode() & 0o777,
                0o600
            );
            s
        } else if plain.exists() {
            std::fs::read_to_string(&plain).unwrap()
        } else {
            continue;
        };
        out.extend(text.lines().map(String::from));
    }
    out.extend(
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(String::from),
    );
    out
}

#[test]
fn the_file_sink_writes_what_the_plain_writer_does() {
    // Records that repeat lines and connections, and change them: the
    // memo's hits and misses both (see output/memo.rs).
    let recs: Vec<Record> = (0..40u64)
        .map(|i| {
            let seq = (i % 3).to_string();
            let mut r = crate::record::test_request(&[
                ("Host", "example.com"),
                ("ETag", "\"6b0231aa-200\""),
                ("X-Seq", &seq),
            ]);
            r.id = i;
            r.conn_id = i % 4;
            r.process.pid = (i % 5) as u32;
            Record::Http(Arc::new(r))
        })
        .chain([stats()])
        .collect();
    let mut want = Vec::new();
    for r in &recs {
        r.write(Format::Json, &mut want);
    }
    let dir = tempfile_dir();
    let (mut sink, counters, path) = file_sink(dir.path(), 0, 1, false);
    for batch in recs.chunks(7) {
        sink.write(batch);
    }
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        String::from_utf8(want).unwrap()
    );
    assert_eq!(counters.records.load(Ordering::Relaxed), 41);
    let memo = sink
        .memo
        .as_ref()
        .expect("NDJSON HTTP records go through the memo");
    assert!(
        memo.hits > 0 && memo.misses > 0,
        "{} {}",
        memo.hits,
        memo.misses
    );
}

#[test]
fn rotation_keeps_every_line_once_and_whole() {
    for compress in [false, true] {
        let dir = tempfile_dir();
        let (mut sink, counters, path) = file_sink(dir.path(), 2000, 100, compress);
        let mut id = 0;
        for batch in 0..40 {
            let recs: Vec<Record> = (0..(batch % 7 + 1))
                .map(|_| {
                    id += 1;
                    http(id, (id as usize * 13) % 300)
                })
                .collect();
            sink.write(&recs);
        }
        sink.close();
        let lines = all_lines(&path, 100);
        let ids: Vec<u64> = lines
            .iter()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(ids, (1..=id).collect::<Vec<_>>(), "compress={compress}");
        let s = counters.snapshot();
        assert_eq!((s.records, s.errors, s.dropped_failed), (id, 0, 0), "{s:?}");
        // Every file within the limit (a file holds at least one line).
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let p = entry.unwrap().path();
            let meta = std::fs::metadata(&p).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{}", p.display());
            if !compress {
                assert!(
                    meta.len() <= 2000,
                    "{} is {} bytes",
                    p.display(),
                    meta.len()
                );
            }
        }
        assert!(PathBuf::from(format!(
            "{}.1{}",
            path.display(),
            if compress { ".gz" } else { "" }
        ))
        .exists());
    }
}

#[test]
fn rotation_drops_the_oldest_beyond_max_files() {
    let dir = tempfile_dir();
    let (mut sink, _, path) = file_sink(dir.path(), 500, 2, false);
    for id in 1..=100 {
        sink.write(&[http(id, 100)]);
    }
    sink.close();
    assert!(!PathBuf::from(format!("{}.3", path.display())).exists());
    let ids: Vec<u64> = all_lines(&path, 2)
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_u64()
                .unwrap()
        })
        .collect();
    // The newest records, contiguous, ending with the last.
    assert_eq!(*ids.last().unwrap(), 100);
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "{ids:?}");
}

#[test]
fn reopen_follows_a_rename() {
    let dir = tempfile_dir();
    let (mut sink, _, path) = file_sink(dir.path(), 0, 0, false);
    sink.write(&[http(1, 0)]);
    let moved = dir.path().join("moved");
    std::fs::rename(&path, &moved).unwrap();
    sink.write(&[http(2, 0)]); // still into the renamed file
    sink.reopen();
    sink.write(&[http(3, 0)]);
    sink.close();
    assert_eq!(std::fs::read_to_string(&moved).unwrap().lines().count(), 2);
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn a_full_disk_is_counted_not_fatal() {
    let counters = Arc::new(SinkCounters::default());
    let mut sink = FileSink::open(
        FileOptions {
            path: "/dev/full".into(),
            format: Format::Json,
            max_bytes: 0,
            max_files: 0,
            compress: false,
        },
        Arc::clone(&counters),
    )
    .unwrap();
    sink.write(&[http(1, 0), http(2, 0)]);
    sink.write(&[http(3, 0)]);
    sink.close();
    let s = counters.snapshot();
    assert_eq!((s.records, s.dropped_failed), (0, 3), "{s:?}");
    assert!(s.errors >= 2, "{s:?}");
}

fn tempfile_dir() -> TempDir {
    TempDir::new()
}

/// A temporary directory removed on drop (no tempfile crate in the core).
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "hdrtap-sink-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_batch_larger_than_the_queue_is_cut_not_refused() {
    let (small, h) = probe("small", Duration::ZERO, KindSet::ALL, 10);
    let fanout = Fanout::start(vec![small]).unwrap();
    fanout.send((1..=25).map(|i| http(i, 0)).collect());
    fanout.close();
    assert_eq!(*h.got.lock().unwrap(), (1..=10).collect::<Vec<u64>>());
    let s = h.counters.snapshot();
    assert_eq!((s.dropped_queue, s.queued), (15, 0));
}
