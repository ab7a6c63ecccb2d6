//! Load generators for the fault tests: keep-alive clients that number every
//! request (`X-Seq`) and remember exactly what went over the wire, many short
//! connections, many idle ones, and raising the open-files limit for them.
use std::{
    io::{self, Read, Write},
    net::{SocketAddr, TcpStream},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

/// One request/response exchange of a [`SeqLoad`] client.
#[derive(Debug, Clone)]
pub struct SeqExchange {
    pub seq: u64,
    /// Which client connection (0-based).
    pub conn: usize,
    /// When the request was written, and when its response was complete.
    pub sent: Instant,
    pub done: Instant,
    /// Bytes of the request as written (one write).
    pub req_bytes: usize,
    /// Bytes of the response: header block, and body.
    pub resp_head: usize,
    pub resp_body: usize,
}

/// `conns` keep-alive connections to `addr`, each sending `GET path` with
/// `X-Test-Id` and a machine-wide increasing `X-Seq`, one at a time (the
/// next request after the whole response), at most `per_conn_rate` requests
/// a second each (None: as fast as possible), until stopped.
pub struct SeqLoad {
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<io::Result<Vec<SeqExchange>>>>,
    pub started: Instant,
}

impl SeqLoad {
    pub fn start(
        addr: SocketAddr,
        path: &str,
        conns: usize,
        per_conn_rate: Option<f64>,
        test_id: &str,
    ) -> SeqLoad {
        let interval = per_conn_rate.map(|r| Duration::from_secs_f64(1.0 / r));
        let stop = Arc::new(AtomicBool::new(false));
        let seq = Arc::new(AtomicU64::new(1));
        let mut threads = Vec::new();
        for conn in 0..conns {
            let (stop, seq) = (Arc::clone(&stop), Arc::clone(&seq));
            let (path, id) = (path.to_string(), test_id.to_string());
            threads.push(thread::spawn(move || {
                let mut s = TcpStream::connect(addr)?;
                s.set_nodelay(true)?;
                s.set_read_timeout(Some(Duration::from_secs(10)))?;
                let mut out = Vec::new();
                let mut buf = Vec::with_capacity(4096);
                let mut next_at = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    if let Some(iv) = interval {
                        let now = Instant::now();
                        if next_at > now {
                            thread::sleep(next_at - now);
                        }
                        next_at += iv;
                    }
                    let n = seq.fetch_add(1, Ordering::Relaxed);
                    let req = format!(
                        "GET {path}?seq={n} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: hdrtap-seqload\r\nX-Test-Id: {id}\r\nX-Seq: {n}\r\n\r\n"
                    );
                    let sent = Instant::now();
                    s.write_all(req.as_bytes())?;
                    let (head, body) = read_response(&mut s, &mut buf)?;
                    out.push(SeqExchange {
                        seq: n,
                        conn,
                        sent,
                        done: Instant::now(),
                        req_bytes: req.len(),
                        resp_head: head,
                        resp_body: body,
                    });
                }
                Ok(out)
            }));
        }
        SeqLoad {
            stop,
            threads,
            started: Instant::now(),
        }
    }

    /// Stop after the exchanges in flight; every exchange, in seq order.
    pub fn finish(self) -> Vec<SeqExchange> {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        for t in self.threads {
            all.extend(t.join().expect("load thread panicked").expect("load I/O"));
        }
        all.sort_by_key(|e| e.seq);
        all
    }
}

/// Read one response (header block + Content-Length body) into `buf`
/// (which keeps nothing between calls: requests are not pipelined).
/// Returns (header bytes, body bytes).
pub fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<(usize, usize)> {
    buf.clear();
    let mut chunk = [0u8; 8192];
    let head = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed mid-response",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let text = String::from_utf8_lossy(&buf[..head]).to_ascii_lowercase();
    let body = text
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while buf.len() < head + body {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed mid-body",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    if buf.len() != head + body {
        return Err(io::Error::other("more bytes than one response"));
    }
    Ok((head, body))
}

/// Raise this process's open-files limit to at least `n`: the soft limit up
/// to the hard one, and the hard one too when allowed (CAP_SYS_RESOURCE).
pub fn raise_nofile(n: u64) {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    // None is RLIM_INFINITY.
    let lim = getrlimit(Resource::Nofile);
    if lim.current.is_none_or(|c| c >= n) {
        return;
    }
    let hard = lim.maximum;
    let new = Rlimit {
        current: Some(n),
        maximum: hard.map(|h| h.max(n)),
    };
    if let Err(e) = setrlimit(Resource::Nofile, new) {
        panic!("setrlimit(NOFILE, {n}) (hard limit {hard:?}): {e}");
    }
}
