//! `HttpProbe::poll` on the real kernel: events that never reach the ring's
//! wake-up level are still taken without waiting once the reader is awake.
//! Needs root and tracefs; fails, never skips, without them.
//!
//! Before, each poll waited on the ring's epoll descriptor, which the
//! kernel signals only when the ring fills up; below that level every
//! timeout brought one batch of 256 events, so steady traffic under the
//! wake-up level came out later and later.

use std::cell::Cell;
use std::process::Command;
use std::rc::Rc;
use std::time::{Duration, Instant};

use hdrtap_abi::{Direction, Event};
use hdrtap_bpf::{HttpOptions, HttpProbe};

/// Requests the child writes, one `send` each: many batches of 256, and
/// some 200 KB in all, far below the wake-up level of a 16 MiB ring.
const SENDS: usize = 3000;

/// A TCP client and server on loopback in one process: the client sends
/// SENDS small HTTP requests, one `send` each, and the server reads them.
const CHILD: &str = r#"
import socket, sys
n = int(sys.argv[1])
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)
cli = socket.create_connection(srv.getsockname())
peer, _ = srv.accept()
req = b"GET /poll HTTP/1.1\r\nHost: poll.test\r\n\r\n"
for _ in range(n):
    cli.sendall(req)
    got = 0
    while got < len(req):
        got += len(peer.recv(65536))
cli.close()
peer.close()
"#;

#[test]
fn poll_drains_events_below_the_wakeup_level_without_waiting() {
    assert_eq!(
        hdrtap_bpf::sys::euid(),
        0,
        "this test loads and attaches BPF programs: run it as root"
    );
    hdrtap_bpf::route_libbpf_logs();
    let mut probe =
        HttpProbe::load(&HttpOptions::default()).unwrap_or_else(|e| panic!("{e}\n{}", e.log()));
    probe.attach().unwrap_or_else(|e| panic!("{e}"));

    let child = Command::new("python3")
        .args(["-c", CHILD, &SENDS.to_string()])
        .spawn()
        .expect("python3 (scripts/setup.sh installs it)");
    let child_pid = child.id();
    let sent = Rc::new(Cell::new(0usize));
    let seen = Rc::clone(&sent);
    let rb = probe
        .ring_buffer(move |raw: &[u8]| {
            if let Ok(Event::Data(ev)) = hdrtap_abi::decode(raw) {
                if ev.tgid == child_pid && ev.dir == Direction::Egress {
                    seen.set(seen.get() + 1);
                }
            }
            0
        })
        .expect("ring buffer");
    let status = child.wait_with_output().expect("child").status;
    assert!(status.success(), "the traffic child failed: {status}");

    // Every event is in the ring now (the kernel writes it before the call
    // returns). With a timeout this long, a poll that waited on the
    // descriptor would blow the deadline after its first batch.
    let timeout = Duration::from_secs(5);
    let deadline = Duration::from_secs(8);
    let started = Instant::now();
    let mut polls = 0;
    while sent.get() < SENDS {
        assert!(
            started.elapsed() < deadline,
            "{} of {SENDS} client sends read after {polls} polls in {:?}: \
             poll waited while events were pending",
            sent.get(),
            started.elapsed()
        );
        HttpProbe::poll(&rb, timeout).expect("poll");
        polls += 1;
    }
    assert_eq!(sent.get(), SENDS, "one event per send, none lost");
    // At most 256 events a poll: the client's sends and the server's reads
    // took at least this many polls, none of them a wait.
    assert!(polls >= SENDS / 256, "{polls} polls for {SENDS} sends");
    let counters = probe.counters().expect("counters");
    assert_eq!(
        counters[hdrtap_abi::HDRTAP_CTR_RINGBUF_DROPS as usize],
        0,
        "events lost to a full ring"
    );
}
