//! OpenTelemetry logs export: records as OTLP log records, over OTLP/HTTP
//! (protobuf, `POST /v1/logs`) or OTLP/gRPC (`LogsService/Export`), to a
//! Collector.
//!
//! The sink runs on its own thread (see `hdrtap_core::sink::Fanout`):
//! * batching: records wait until `batch_size` are pending or the oldest
//!   has waited `batch_timeout`, then go out in one request;
//! * retry: a failed request that may succeed later (connection refused,
//!   timeout, HTTP 429/502/503/504, gRPC UNAVAILABLE, ...) is sent again
//!   after an exponential backoff with jitter (`retry_initial` doubling up
//!   to `retry_max`, honouring `Retry-After`), until `retry_max_elapsed`
//!   has passed; then its records are dropped and counted
//!   (`dropped_failed`). Other failures drop at once;
//! * a bounded queue: while the sink waits on a dead collector, new
//!   batches pile up in its fanout queue and, once that is full, are
//!   dropped and counted there (`dropped_queue`): capture never waits;
//! * when the collector is back, the next request succeeds and export
//!   resumes; nothing else needs to happen.
pub mod map;

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use hdrtap_core::sink::{Record, Sink, SinkCounters};
pub use map::BodyMode;

/// OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP/HTTP with protobuf bodies.
    Http,
    /// OTLP/gRPC.
    Grpc,
}

/// Settings of an [`OtlpSink`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpOptions {
    pub protocol: Protocol,
    /// `http://host:port`; for OTLP/HTTP a URL without a path gets
    /// `/v1/logs`.
    pub endpoint: String,
    /// Extra request headers (gRPC metadata), e.g. an API key.
    pub headers: Vec<(String, String)>,
    /// Per-request timeout.
    pub timeout: Duration,
    pub batch_size: usize,
    pub batch_timeout: Duration,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// Give a batch up after retrying this long.
    pub retry_max_elapsed: Duration,
    /// Gzip request bodies.
    pub gzip: bool,
    pub body: BodyMode,
    /// Resource attributes besides the defaults.
    pub resource: Vec<(String, String)>,
}

impl Default for OtlpOptions {
    fn default() -> Self {
        OtlpOptions {
            protocol: Protocol::Http,
            endpoint: "http://127.0.0.1:4318".into(),
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
            batch_size: 512,
            batch_timeout: Duration::from_secs(1),
            retry_initial: Duration::from_millis(500),
            retry_max: Duration::from_secs(5),
            retry_max_elapsed: Duration::from_secs(30),
            gzip: false,
            body: BodyMode::Json,
            resource: Vec::new(),
        }
    }
}

/// The full OTLP/HTTP logs URL for `endpoint`.
pub fn http_logs_url(endpoint: &str) -> String {
    let e = endpoint.trim_end_matches('/');
    let after_scheme = e.split_once("://").map_or(e, |(_, rest)| rest);
    if after_scheme.contains('/') {
        e.to_string()
    } else {
        format!("{e}/v1/logs")
    }
}

/// Why one export attempt failed.
#[derive(Debug)]
enum Failure {
    /// Worth trying again (after at least this long, if the server said).
    Retry(String, Option<Duration>),
    /// Never going to work.
    Permanent(String),
}

trait Transport: Send {
    fn send(&mut self, req: &ExportLogsServiceRequest) -> Result<(), Failure>;
}

struct HttpTransport {
    agent: ureq::Agent,
    url: String,
    headers: Vec<(String, String)>,
    gzip: bool,
}

impl HttpTransport {
    fn new(o: &OtlpOptions) -> HttpTransport {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(o.timeout))
            .http_status_as_error(false)
            .build()
            .new_agent();
        HttpTransport {
            agent,
            url: http_logs_url(&o.endpoint),
            headers: o.headers.clone(),
            gzip: o.gzip,
        }
    }
}

impl Transport for HttpTransport {
    fn send(&mut self, req: &ExportLogsServiceRequest) -> Result<(), Failure> {
        let mut body = req.encode_to_vec();
        let mut r = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/x-protobuf");
        if self.gzip {
            let mut gz = flate2::write::GzEncoder::new(
                Vec::with_capacity(body.len() / 4),
                flate2::Compression::fast(),
            );
            if gz.write_all(&body).is_ok() {
                if let Ok(z) = gz.finish() {
                    body = z;
                    r = r.header("Content-Encoding", "gzip");
                }
            }
        }
        for (k, v) in &self.headers {
            r = r.header(k, v);
        }
        match r.send(&body[..]) {
            Ok(resp) => {
                let status = resp.status().as_u16();
                if (200..300).contains(&status) {
                    return Ok(());
                }
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let msg = format!("HTTP {status} from {}", self.url);
                if matches!(status, 429 | 502 | 503 | 504) {
                    Err(Failure::Retry(msg, retry_after))
                } else {
                    Err(Failure::Permanent(msg))
                }
            }
            Err(e) => Err(Failure::Retry(format!("{}: {e}", self.url), None)),
        }
    }
}

struct GrpcTransport {
    rt: tokio::runtime::Runtime,
    client: Option<LogsServiceClient<tonic::transport::Channel>>,
    endpoint: String,
    headers: Vec<(
        tonic::metadata::AsciiMetadataKey,
        tonic::metadata::AsciiMetadataValue,
    )>,
    timeout: Duration,
    gzip: bool,
}

impl GrpcTransport {
    fn new(o: &OtlpOptions) -> std::io::Result<GrpcTransport> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let mut headers = Vec::new();
        for (k, v) in &o.headers {
            let key = k.to_ascii_lowercase().parse().map_err(|_| {
                std::io::Error::other(format!("header name {k:?} is not valid gRPC metadata"))
            })?;
            let value = v.parse().map_err(|_| {
                std::io::Error::other(format!(
                    "the value of header {k:?} is not valid gRPC metadata"
                ))
            })?;
            headers.push((key, value));
        }
        Ok(GrpcTransport {
            rt,
            client: None,
            endpoint: o.endpoint.clone(),
            headers,
            timeout: o.timeout,
            gzip: o.gzip,
        })
    }

    fn client(&mut self) -> Result<LogsServiceClient<tonic::transport::Channel>, Failure> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let ep = tonic::transport::Endpoint::from_shared(self.endpoint.clone())
            .map_err(|e| Failure::Permanent(format!("endpoint {}: {e}", self.endpoint)))?
            .connect_timeout(self.timeout)
            .timeout(self.timeout);
        let _guard = self.rt.enter();
        let mut c = LogsServiceClient::new(ep.connect_lazy());
        if self.gzip {
            c = c.send_compressed(tonic::codec::CompressionEncoding::Gzip);
        }
        self.client = Some(c.clone());
        Ok(c)
    }
}

impl Transport for GrpcTransport {
    fn send(&mut self, req: &ExportLogsServiceRequest) -> Result<(), Failure> {
        let mut client = self.client()?;
        let mut request = tonic::Request::new(req.clone());
        request.set_timeout(self.timeout);
        for (k, v) in &self.headers {
            request.metadata_mut().insert(k.clone(), v.clone());
        }
        match self.rt.block_on(client.export(request)) {
            Ok(_) => Ok(()),
            Err(status) => {
                use tonic::Code;
                let msg = format!(
                    "gRPC {:?} from {}: {}",
                    status.code(),
                    self.endpoint,
                    status.message()
                );
                match status.code() {
                    Code::Unavailable
                    | Code::ResourceExhausted
                    | Code::Aborted
                    | Code::Cancelled
                    | Code::DeadlineExceeded
                    | Code::OutOfRange
                    | Code::DataLoss
                    | Code::Unknown => Err(Failure::Retry(msg, None)),
                    _ => Err(Failure::Permanent(msg)),
                }
            }
        }
    }
}

/// The OTLP logs sink. See the module documentation.
pub struct OtlpSink {
    opts: OtlpOptions,
    transport: Box<dyn Transport>,
    resource: Resource,
    pending: Vec<Record>,
    /// When the oldest pending record arrived.
    pending_since: Option<Instant>,
    counters: Arc<SinkCounters>,
    /// Set when hdrtap is stopping: retries give up at once.
    stopping: Arc<AtomicBool>,
    rng: u64,
    /// Last failure reported in the log (to not repeat it every batch).
    last_error: Option<String>,
}

impl OtlpSink {
    /// A sink exporting to `opts.endpoint`. `stopping` cuts retries short
    /// when hdrtap is shutting down.
    pub fn new(
        opts: OtlpOptions,
        counters: Arc<SinkCounters>,
        stopping: Arc<AtomicBool>,
    ) -> std::io::Result<OtlpSink> {
        let transport: Box<dyn Transport> = match opts.protocol {
            Protocol::Http => Box::new(HttpTransport::new(&opts)),
            Protocol::Grpc => Box::new(GrpcTransport::new(&opts)?),
        };
        let mut seed = [0u8; 8];
        let _ = getrandom::fill(&mut seed);
        Ok(OtlpSink {
            resource: map::resource(&opts.resource),
            opts,
            transport,
            pending: Vec::new(),
            pending_since: None,
            counters,
            stopping,
            rng: u64::from_ne_bytes(seed) | 1,
            last_error: None,
        })
    }

    fn jitter(&mut self, d: Duration) -> Duration {
        // xorshift64: a random factor in [0.5, 1.0) of the backoff.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let f = 0.5 + (self.rng % 1000) as f64 / 2000.0;
        d.mul_f64(f)
    }

    /// Export `records` (at most one batch) with retries.
    fn export(&mut self, records: &[Record], retry: bool) {
        if records.is_empty() {
            return;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let logs = records
            .iter()
            .map(|r| map::log_record(r, self.opts.body, now))
            .collect();
        let req = ExportLogsServiceRequest {
            resource_logs: vec![map::resource_logs(&self.resource, logs)],
        };
        let n = records.len() as u64;
        let started = Instant::now();
        let mut backoff = self.opts.retry_initial;
        loop {
            match self.transport.send(&req) {
                Ok(()) => {
                    SinkCounters::add(&self.counters.records, n);
                    if self.last_error.take().is_some() {
                        tracing::warn!("OTLP export to {} works again", self.opts.endpoint);
                    }
                    return;
                }
                Err(failure) => {
                    SinkCounters::add(&self.counters.errors, 1);
                    let (msg, after) = match failure {
                        Failure::Retry(m, after) => (m, after),
                        Failure::Permanent(m) => {
                            self.give_up(n, &m);
                            return;
                        }
                    };
                    let wait = self.jitter(backoff).max(after.unwrap_or_default());
                    let stopping = self.stopping.load(Ordering::Relaxed);
                    if !retry || stopping || started.elapsed() + wait > self.opts.retry_max_elapsed
                    {
                        self.give_up(n, &msg);
                        return;
                    }
                    self.sleep(wait);
                    backoff = (backoff * 2).min(self.opts.retry_max);
                }
            }
        }
    }

    fn give_up(&mut self, n: u64, msg: &str) {
        SinkCounters::add(&self.counters.dropped_failed, n);
        if self.last_error.as_deref() != Some(msg) {
            tracing::warn!("OTLP export failed, {n} records dropped: {msg}");
            self.last_error = Some(msg.to_string());
        }
    }

    /// Sleep, waking early when hdrtap starts stopping.
    fn sleep(&self, d: Duration) {
        let until = Instant::now() + d;
        while Instant::now() < until && !self.stopping.load(Ordering::Relaxed) {
            std::thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
        }
    }

    fn export_full_batches(&mut self) {
        let size = self.opts.batch_size.max(1);
        while self.pending.len() >= size {
            let batch: Vec<Record> = self.pending.drain(..size).collect();
            self.export(&batch, true);
        }
        if self.pending.is_empty() {
            self.pending_since = None;
        }
    }
}

impl Sink for OtlpSink {
    fn write(&mut self, batch: &[Record]) {
        if self.pending.is_empty() {
            self.pending_since = Some(Instant::now());
        }
        self.pending.extend(batch.iter().cloned());
        self.export_full_batches();
        self.tick();
    }

    fn tick(&mut self) {
        let due = self
            .pending_since
            .is_some_and(|t| t.elapsed() >= self.opts.batch_timeout);
        if due {
            let batch = std::mem::take(&mut self.pending);
            self.pending_since = None;
            for chunk in batch.chunks(self.opts.batch_size.max(1)) {
                self.export(chunk, true);
            }
        }
    }

    /// Send what is pending, one attempt per batch: shutdown must not wait
    /// on a dead collector.
    fn close(&mut self) {
        let batch = std::mem::take(&mut self.pending);
        for chunk in batch.chunks(self.opts.batch_size.max(1)) {
            self.export(chunk, false);
        }
    }
}

#[cfg(test)]
mod tests;
