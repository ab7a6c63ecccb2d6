//! Process attribution of packets through the syscall fallback (kernels
//! without the sock_send_length/sock_recv_length tracepoints, e.g. Debian
//! 12's 6.1), forced here on whatever kernel runs the tests: the packet
//! programs on tc of `lo`, and this test process as the owner of a TCP
//! connection (client and server ends) and of a UDP socket.
//! Needs root and tracefs; fails, never skips, without them.

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::rc::Rc;
use std::time::{Duration, Instant};

use hdrtap_abi as abi;
use hdrtap_bpf::packets::{Directions, OwnerMode, PacketOptions, PacketProbe, TcMode};

/// What the test needs of one packet on lo.
#[derive(Debug)]
struct Seen {
    tgid: u32,
    out: bool,
    proto: u8,
    sport: u16,
    dport: u16,
    payload: usize,
}

/// IPv4 over lo's all-zero Ethernet header; None for anything else.
fn parse(ev: &abi::PacketEvent<'_>) -> Option<Seen> {
    let d = ev.data;
    if d.len() < 14 + 20 || d[12..14] != [0x08, 0x00] {
        return None;
    }
    let ihl = usize::from(d[14] & 0xf) * 4;
    let total = usize::from(u16::from_be_bytes([d[16], d[17]]));
    let proto = d[23];
    let l4 = 14 + ihl;
    if d.len() < l4 + 4 {
        return None;
    }
    let hdr = match proto {
        6 if d.len() > l4 + 12 => usize::from(d[l4 + 12] >> 4) * 4,
        17 => 8,
        _ => return None,
    };
    Some(Seen {
        tgid: ev.tgid,
        out: u32::from(ev.dir) == abi::HDRTAP_PKT_OUT,
        proto,
        sport: u16::from_be_bytes([d[l4], d[l4 + 1]]),
        dport: u16::from_be_bytes([d[l4 + 2], d[l4 + 3]]),
        payload: total.saturating_sub(ihl + hdr),
    })
}

#[test]
fn syscall_fallback_attributes_tcp_both_ends_and_udp_after_its_first_send() {
    assert_eq!(
        hdrtap_bpf::sys::euid(),
        0,
        "this test loads and attaches BPF programs: run it as root"
    );
    hdrtap_bpf::route_libbpf_logs();
    let opts = PacketOptions {
        owner_fallback: true,
        ring_bytes: 1 << 20,
        ..PacketOptions::default()
    };
    let mut probe = PacketProbe::load(&opts).unwrap_or_else(|e| panic!("{e}\n{}", e.log()));
    assert_eq!(probe.owners(), OwnerMode::Syscalls);
    let lo = hdrtap_bpf::packets::if_index("lo").expect("lo");
    probe
        .attach_tc(lo, Directions::BOTH, TcMode::Auto)
        .unwrap_or_else(|e| panic!("{e}"));
    let seen = Rc::new(RefCell::new(Vec::new()));
    let sink = Rc::clone(&seen);
    let ring = probe
        .ring_buffer(move |b: &[u8]| {
            if let Ok(ev) = abi::decode_packet(b) {
                if let Some(s) = parse(&ev) {
                    sink.borrow_mut().push(s);
                }
            }
            0
        })
        .unwrap();

    // TCP: connect (owner_state), accept4 and send/recv (the fallback).
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (mut server, _) = listener.accept().unwrap();
    let mut buf = [0u8; 64];
    for round in 0..3 {
        // std sends with send(2) and reads with recv(2): sendto, recvfrom.
        client.write_all(b"ping").unwrap();
        let n = server.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"ping", "round {round}");
        server.write_all(b"pong").unwrap();
        let n = client.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"pong", "round {round}");
    }
    // UDP: the first datagram goes out before its socket's owner is known
    // (its cookie is made on the way out); the next ones carry it.
    let udp_rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_port = udp_tx.local_addr().unwrap().port();
    for _ in 0..3 {
        udp_tx
            .send_to(b"datagram", udp_rx.local_addr().unwrap())
            .unwrap();
        udp_rx.recv_from(&mut buf).unwrap();
    }

    let me = std::process::id();
    let deadline = Instant::now() + Duration::from_secs(10);
    let done = |v: &[Seen]| {
        let server_data = v
            .iter()
            .any(|s| s.proto == 6 && s.out && s.sport == port && s.payload > 0);
        let udp = v
            .iter()
            .filter(|s| s.proto == 17 && s.out && s.sport == udp_port)
            .count();
        server_data && udp >= 3
    };
    // The kernel wakes readers only when the ring fills: take what is there.
    ring.consume().unwrap();
    while !done(&seen.borrow()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        ring.consume().unwrap();
    }
    let v = seen.borrow();
    assert!(done(&v), "not every packet came: {v:#?}");

    // The client's SYN: its owner came from connect().
    let syn = v
        .iter()
        .find(|s| s.proto == 6 && s.out && s.dport == port)
        .expect("the client's first segment");
    assert_eq!(syn.tgid, me, "client segment not attributed: {v:#?}");
    // The server end was never connect()ed or listen()ed: only accept4 and
    // the send/recv exits of the fallback can name its owner.
    let server_data: Vec<&Seen> = v
        .iter()
        .filter(|s| s.proto == 6 && s.out && s.sport == port && s.payload > 0)
        .collect();
    assert!(
        server_data.iter().all(|s| s.tgid == me),
        "server data not attributed to pid {me}: {server_data:#?}"
    );
    let udp: Vec<&Seen> = v
        .iter()
        .filter(|s| s.proto == 17 && s.out && s.sport == udp_port)
        .collect();
    assert!(
        udp[1..].iter().all(|s| s.tgid == me),
        "UDP datagrams after the first not attributed to pid {me}: {udp:#?}"
    );
}
