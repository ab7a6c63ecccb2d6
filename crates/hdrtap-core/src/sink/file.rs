//! NDJSON (or readable) lines to a file with size-based rotation, or to
//! standard output.
//!
//! File sink guarantees:
//! * the file and every rotated file are created with mode 0600;
//! * whole lines only: each batch is written as complete lines, and if a
//!   write fails part-way (full disk) the file is cut back to the last
//!   complete line; the records lost are counted, capture goes on;
//! * rotation by size: before a line would take the file past `max_bytes`,
//!   `path` becomes `path.1` (`path.1` → `path.2` … up to `max_files`, the
//!   oldest removed), optionally gzipped to `path.1.gz` (in the sink's own
//!   thread), and a new `path` is started;
//! * `reopen` (SIGHUP) closes and reopens `path`, for logrotate's
//!   rename-then-signal;
//! * `close` fsyncs.
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Record, Sink, SinkCounters};
use crate::output::{Format, JsonMemo};

/// Settings of a [`FileSink`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOptions {
    pub path: PathBuf,
    pub format: Format,
    /// Rotate before the file would grow past this many bytes; 0: never.
    pub max_bytes: u64,
    /// Rotated files kept (`path.1` … `path.N`); 0 keeps none.
    pub max_files: u32,
    /// Gzip rotated files (`path.N.gz`).
    pub compress: bool,
}

/// Lines to a file, rotated by size. See the module documentation.
pub struct FileSink {
    opts: FileOptions,
    file: Option<File>,
    /// Bytes in the current file.
    size: u64,
    buf: Vec<u8>,
    /// What records repeat, for NDJSON ([`Record::write_memo`]).
    pub(super) memo: Option<Box<JsonMemo>>,
    counters: Arc<SinkCounters>,
}

/// Open `path` for appending, created with mode 0600 if new: how the file
/// sink opens its file (and `hdrtap run --check-config` checks it can).
pub fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
}

impl FileSink {
    /// Open (create with mode 0600, or append to) `opts.path`.
    pub fn open(opts: FileOptions, counters: Arc<SinkCounters>) -> io::Result<FileSink> {
        let file = open_append(&opts.path)?;
        let size = file.metadata()?.len();
        Ok(FileSink {
            opts,
            file: Some(file),
            size,
            buf: Vec::with_capacity(256 * 1024),
            memo: None,
            counters,
        })
    }

    fn rotated(&self, n: u32) -> PathBuf {
        let mut p = self.opts.path.clone().into_os_string();
        p.push(format!(".{n}"));
        if self.opts.compress {
            p.push(".gz");
        }
        PathBuf::from(p)
    }

    /// Move the current file aside and start a new one.
    fn rotate(&mut self) {
        if let Some(f) = self.file.take() {
            let _ = f.sync_all();
        }
        let path = self.opts.path.clone();
        let n = self.opts.max_files;
        if n == 0 {
            let _ = fs::remove_file(&path);
        } else {
            let _ = fs::remove_file(self.rotated(n));
            for k in (1..n).rev() {
                let _ = fs::rename(self.rotated(k), self.rotated(k + 1));
            }
            if self.opts.compress {
                let mut plain = path.clone().into_os_string();
                plain.push(".1");
                let plain = PathBuf::from(plain);
                match fs::rename(&path, &plain) {
                    Ok(()) => {
                        if let Err(e) = gzip_file(&plain, &self.rotated(1)) {
                            tracing::warn!("cannot compress {}: {e}", plain.display());
                            SinkCounters::add(&self.counters.errors, 1);
                        }
                    }
                    Err(e) => {
                        tracing::warn!("cannot rotate {}: {e}", path.display());
                        SinkCounters::add(&self.counters.errors, 1);
                    }
                }
            } else if let Err(e) = fs::rename(&path, self.rotated(1)) {
                tracing::warn!("cannot rotate {}: {e}", path.display());
                SinkCounters::add(&self.counters.errors, 1);
            }
        }
        self.reopen_file();
    }

    fn reopen_file(&mut self) {
        self.file = None;
        match open_append(&self.opts.path).and_then(|f| Ok((f.metadata()?.len(), f))) {
            Ok((size, f)) => {
                self.size = size;
                self.file = Some(f);
            }
            Err(e) => {
                tracing::warn!("cannot open {}: {e}", self.opts.path.display());
                SinkCounters::add(&self.counters.errors, 1);
            }
        }
    }

    /// Write `data` (`lines` complete lines) to the current file.
    fn write_chunk(&mut self, data: &[u8], lines: u64) {
        if data.is_empty() {
            return;
        }
        if self.file.is_none() {
            self.reopen_file();
        }
        let Some(file) = self.file.as_mut() else {
            SinkCounters::add(&self.counters.dropped_failed, lines);
            return;
        };
        let (complete, res) = crate::output::write_lines(file, data);
        if res.is_ok() {
            self.size += data.len() as u64;
            SinkCounters::add(&self.counters.records, lines);
            return;
        }
        // Never leave a partial line behind: cut back to the last newline.
        if let Err(e) = crate::output::cut_back(file, self.size + complete as u64) {
            tracing::warn!(
                "cannot cut a partial line from {}: {e}",
                self.opts.path.display()
            );
        }
        let written = data
            .get(..complete)
            .unwrap_or_default()
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64;
        self.size += complete as u64;
        SinkCounters::add(&self.counters.records, written);
        SinkCounters::add(&self.counters.dropped_failed, lines.saturating_sub(written));
        SinkCounters::add(&self.counters.errors, 1);
    }
}

impl Sink for FileSink {
    fn write(&mut self, batch: &[Record]) {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let mut chunk_start = 0;
        let mut lines = 0u64;
        for rec in batch {
            let start = buf.len();
            if !rec.write_memo(self.opts.format, &mut buf, &mut self.memo) {
                continue;
            }
            let max = self.opts.max_bytes;
            let pending = (start - chunk_start) as u64;
            let grown = self.size + (buf.len() - chunk_start) as u64;
            if max > 0 && grown > max && self.size + pending > 0 {
                // The lines before this one fill the current file.
                self.write_chunk(buf.get(chunk_start..start).unwrap_or_default(), lines);
                self.rotate();
                chunk_start = start;
                lines = 0;
            }
            lines += 1;
        }
        self.write_chunk(buf.get(chunk_start..).unwrap_or_default(), lines);
        if buf.capacity() > 4 << 20 {
            buf = Vec::with_capacity(256 * 1024);
        }
        self.buf = buf;
    }

    fn reopen(&mut self) {
        if let Some(f) = self.file.take() {
            let _ = f.sync_all();
        }
        self.reopen_file();
    }

    fn close(&mut self) {
        if let Some(f) = self.file.take() {
            if let Err(e) = f.sync_all() {
                tracing::warn!("cannot fsync {}: {e}", self.opts.path.display());
                SinkCounters::add(&self.counters.errors, 1);
            }
        }
    }
}

/// Gzip `from` into `to` (mode 0600, through `to.part`), then remove `from`.
fn gzip_file(from: &Path, to: &Path) -> io::Result<()> {
    let mut part = to.as_os_str().to_owned();
    part.push(".part");
    let part = PathBuf::from(part);
    let result = (|| {
        let mut input = File::open(from)?;
        let out = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&part)?;
        let mut gz =
            flate2::write::GzEncoder::new(io::BufWriter::new(out), flate2::Compression::default());
        io::copy(&mut input, &mut gz)?;
        let out = gz.finish()?.into_inner().map_err(|e| e.into_error())?;
        out.sync_all()?;
        fs::rename(&part, to)?;
        fs::remove_file(from)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&part);
    }
    result
}

/// Lines to standard output. A write error (closed pipe) is counted; in a
/// daemon it does not stop capture.
pub struct StdoutSink {
    format: Format,
    buf: Vec<u8>,
    /// What records repeat, for NDJSON ([`Record::write_memo`]).
    memo: Option<Box<JsonMemo>>,
    counters: Arc<SinkCounters>,
}

impl StdoutSink {
    pub fn new(format: Format, counters: Arc<SinkCounters>) -> StdoutSink {
        StdoutSink {
            format,
            buf: Vec::with_capacity(64 * 1024),
            memo: None,
            counters,
        }
    }
}

impl Sink for StdoutSink {
    fn write(&mut self, batch: &[Record]) {
        self.buf.clear();
        let mut lines = 0;
        for rec in batch {
            if rec.write_memo(self.format, &mut self.buf, &mut self.memo) {
                lines += 1;
            }
        }
        if self.buf.is_empty() {
            return;
        }
        let mut out = io::stdout().lock();
        match out.write_all(&self.buf).and_then(|()| out.flush()) {
            Ok(()) => SinkCounters::add(&self.counters.records, lines),
            Err(_) => {
                SinkCounters::add(&self.counters.errors, 1);
                SinkCounters::add(&self.counters.dropped_failed, lines);
            }
        }
    }

    fn close(&mut self) {
        let _ = io::stdout().lock().flush();
    }
}
