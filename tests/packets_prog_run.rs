//! The packet programs in the real kernel, fed crafted packets with
//! BPF_PROG_TEST_RUN: what they copy, how they flag malformed headers, and
//! that the kernel parser + filter agree with their Rust references
//! (`hdrtap_core::filter::{extract, eval}`) field by field and verdict by
//! verdict. Needs root (loads BPF programs); fails, never skips, without it.

use std::cell::RefCell;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::rc::Rc;

use hdrtap_abi::{self as abi, PfInsn};
use hdrtap_bpf::packets::{Directions, PacketOptions, PacketProbe, TestProg};
use hdrtap_bpf::RingBuffer;
use hdrtap_core::filter::{self, extract, Fields};
use hdrtap_core::packet::build::*;
use hdrtap_core::packet::{decode_event, decode_frame, Link};
use proptest::prelude::*;

fn require_root() {
    assert_eq!(
        hdrtap_bpf::sys::euid(),
        0,
        "these tests load BPF programs and run them with BPF_PROG_TEST_RUN: run them as root"
    );
}

const A4: Ipv4Addr = Ipv4Addr::new(10, 1, 2, 3);
const B4: Ipv4Addr = Ipv4Addr::new(192, 168, 9, 8);

fn a6() -> Ipv6Addr {
    "fd00::1".parse().unwrap()
}
fn b6() -> Ipv6Addr {
    "2001:db8::2".parse().unwrap()
}

/// A loaded probe and the events its ring buffer delivered.
struct Rig {
    probe: &'static PacketProbe,
    ring: RingBuffer<'static>,
    events: Rc<RefCell<Vec<Vec<u8>>>>,
}

impl Rig {
    fn new(opts: PacketOptions) -> Rig {
        require_root();
        hdrtap_bpf::route_libbpf_logs();
        let probe = PacketProbe::load(&opts).unwrap_or_else(|e| panic!("{e}\n{}", e.log()));
        // Leaked: a test process's worth of probes.
        let probe: &'static PacketProbe = Box::leak(Box::new(probe));
        let events = Rc::new(RefCell::new(Vec::new()));
        let sink = Rc::clone(&events);
        let ring = probe
            .ring_buffer(move |b: &[u8]| {
                sink.borrow_mut().push(b.to_vec());
                0
            })
            .unwrap();
        Rig {
            probe,
            ring,
            events,
        }
    }

    fn default() -> Rig {
        Rig::new(PacketOptions {
            owners: false,
            ring_bytes: 1 << 20,
            ..PacketOptions::default()
        })
    }

    fn filter(&self, insns: &[PfInsn]) {
        self.probe
            .set_filter(&abi::encode_pf_prog(insns).unwrap())
            .unwrap();
    }

    /// Run `prog` over `pkt`; the events it wrote.
    fn run(&self, prog: TestProg, pkt: &[u8]) -> Vec<Vec<u8>> {
        self.events.borrow_mut().clear();
        let rc = self.probe.test_run(prog, pkt, None).unwrap();
        let expect_rc = match prog {
            TestProg::TcIngress | TestProg::TcEgress => u32::MAX, // TC_ACT_UNSPEC / TCX_NEXT
            TestProg::Xdp => 2,                                   // XDP_PASS
            TestProg::Socket => 0,                                // nothing queued
        };
        assert_eq!(rc, expect_rc, "{prog:?} return value");
        self.ring.consume().unwrap();
        std::mem::take(&mut *self.events.borrow_mut())
    }

    fn accepts(&self, prog: TestProg, pkt: &[u8]) -> bool {
        let ev = self.run(prog, pkt);
        assert!(ev.len() <= 1);
        ev.len() == 1
    }
}

/// The crafted packets: every protocol, and the malformed ones.
fn packets() -> Vec<(&'static str, Vec<u8>)> {
    let mut v = Vec::new();
    let mut syn = FrameSpec::tcp4(A4, B4, 40000, 443, 0x02);
    if let L4::Tcp { options, .. } = &mut syn.l4 {
        *options = vec![
            2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
        ];
    }
    v.push(("tcp4 syn", build(&syn)));
    v.push((
        "tcp4 ack+data",
        build(&FrameSpec {
            payload: b"GET / HTTP/1.1\r\n".to_vec(),
            ..FrameSpec::tcp4(B4, A4, 80, 40000, 0x18)
        }),
    ));
    v.push(("udp6", build(&FrameSpec::udp6(a6(), b6(), 5353, 53))));
    let mut ext = FrameSpec::udp6(a6(), b6(), 1000, 2000);
    ext.l4 = L4::Tcp {
        sport: 22,
        dport: 50000,
        seq: 5,
        ack: 6,
        flags: 0x11,
        window: 9,
        urg: 0,
        options: vec![],
    };
    if let L3::V6 { ext: e, .. } = &mut ext.l3 {
        *e = vec![
            (0, pad_options(6)),
            (60, pad_options(14)),
            (43, vec![0, 0, 0, 0, 0, 0]),
            (51, vec![0; 10]),
            (44, fragment(0, true, 9)),
        ];
    }
    v.push(("ipv6 ext chain to tcp", build(&ext)));
    let mut frag6 = FrameSpec::udp6(a6(), b6(), 1, 2);
    if let L3::V6 { ext: e, .. } = &mut frag6.l3 {
        *e = vec![(44, fragment(64, false, 1))];
    }
    v.push(("ipv6 non-first fragment", build(&frag6)));
    let mut long6 = FrameSpec::udp6(a6(), b6(), 1, 2);
    if let L3::V6 { ext: e, .. } = &mut long6.l3 {
        *e = (0..9).map(|_| (60, pad_options(6))).collect();
    }
    v.push(("ipv6 nine extension headers", build(&long6)));
    let mut vlan = FrameSpec::tcp4(A4, B4, 1, 8080, 0x12);
    vlan.vlans = vec![(0x8100, 0x2000 | 42)];
    v.push(("vlan tcp", build(&vlan)));
    let mut qinq = FrameSpec::udp6(a6(), b6(), 7, 8);
    qinq.vlans = vec![(0x88a8, 100), (0x8100, 200)];
    v.push(("qinq udp6", build(&qinq)));
    let mut three = FrameSpec::udp6(a6(), b6(), 7, 8);
    three.vlans = vec![(0x88a8, 1), (0x8100, 2), (0x8100, 3)];
    v.push(("three tags", build(&three)));
    v.push((
        "arp",
        build(&FrameSpec {
            dst: [0xff; 6],
            src: [2, 0, 0, 0, 0, 1],
            vlans: vec![],
            l3: L3::Arp {
                op: 2,
                sha: [2, 0, 0, 0, 0, 1],
                spa: A4,
                tha: [2, 0, 0, 0, 0, 2],
                tpa: B4,
            },
            l4: L4::None,
            payload: vec![],
        }),
    ));
    let mut icmp = FrameSpec::tcp4(A4, B4, 0, 0, 0);
    icmp.l4 = L4::Icmp {
        icmp_type: 8,
        code: 0,
        id: 1,
        seq: 2,
    };
    v.push(("icmp echo", build(&icmp)));
    let mut icmp6 = FrameSpec::udp6(a6(), b6(), 0, 0);
    icmp6.l4 = L4::Icmp {
        icmp_type: 135,
        code: 0,
        id: 0,
        seq: 0,
    };
    v.push(("icmp6 ns", build(&icmp6)));
    let mut frag4 = FrameSpec::tcp4(A4, B4, 1, 2, 2);
    if let L3::V4 { frag_offset, .. } = &mut frag4.l3 {
        *frag_offset = 8;
    }
    v.push(("ipv4 non-first fragment", build(&frag4)));
    let mut ihl = FrameSpec::tcp4(A4, B4, 1, 2, 2);
    if let L3::V4 { ihl: i, .. } = &mut ihl.l3 {
        *i = Some(4);
    }
    v.push(("ipv4 ihl 4", build(&ihl)));
    let mut opts4 = FrameSpec::tcp4(A4, B4, 1, 2, 2);
    if let L3::V4 { options, .. } = &mut opts4.l3 {
        *options = vec![1, 1, 1, 0];
    }
    v.push(("ipv4 options", build(&opts4)));
    let mut cut = build(&FrameSpec::tcp4(A4, B4, 1, 2, 2));
    cut.truncate(14 + 20 + 10);
    v.push(("tcp cut short", cut));
    let mut cut6 = build(&ext);
    cut6.truncate(14 + 40 + 12);
    v.push(("ipv6 chain cut short", cut6));
    let mut badv = build(&FrameSpec::udp6(a6(), b6(), 1, 2));
    badv[14] = 0x45;
    v.push(("ipv6 ethertype, version 4", badv));
    let mut doff = build(&FrameSpec::tcp4(A4, B4, 1, 2, 2));
    doff[14 + 20 + 12] = 0x30;
    v.push(("tcp data offset 3", doff));
    v.push((
        "other ethertype",
        build(&FrameSpec {
            dst: [1; 6],
            src: [2; 6],
            vlans: vec![],
            l3: L3::Other {
                ethertype: 0x88cc,
                body: vec![0; 30],
            },
            l4: L4::None,
            payload: vec![],
        }),
    ));
    let mut big = FrameSpec::tcp4(A4, B4, 1, 2, 0x10);
    big.payload = vec![0x5a; 1200];
    v.push(("1254-byte packet", build(&big)));
    v
}

/// The programs whose test runs see the packet as on the wire. The socket
/// filter is not among them: BPF_PROG_TEST_RUN hands socket filters the
/// packet from the network header (it pushes the MAC header back for tc
/// only), while AF_PACKET gives them the whole frame — so the socket hook is
/// checked against tshark in tests/packets.rs instead, and only its
/// labels and return value here.
const PROGS: [TestProg; 3] = [TestProg::TcIngress, TestProg::TcEgress, TestProg::Xdp];

#[test]
fn events_carry_the_packet_and_decode_like_userspace() {
    let rig = Rig::default();
    // A filter that accepts everything but makes the kernel parse (with no
    // filter and no process attribution it copies without parsing).
    rig.filter(&[PfInsn {
        op: abi::HDRTAP_PF_OP_TRUE as u8,
        ..PfInsn::default()
    }]);
    for (name, pkt) in packets() {
        for prog in PROGS {
            let ev = rig.run(prog, &pkt);
            assert_eq!(ev.len(), 1, "{name} {prog:?}: one event");
            let e = abi::decode_packet(&ev[0]).unwrap();
            let snap = (abi::HDRTAP_PKT_SNAPLEN_DEFAULT as usize).min(pkt.len());
            assert_eq!(e.data, &pkt[..snap], "{name} {prog:?}: copied bytes");
            assert_eq!(e.wire_len as usize, pkt.len(), "{name} {prog:?}");
            assert_eq!(
                e.has_flag(abi::HDRTAP_PKT_F_SNAPPED),
                pkt.len() > snap,
                "{name} {prog:?}"
            );
            let (hook, dir) = match prog {
                TestProg::TcIngress => (abi::HDRTAP_HOOK_TC, abi::HDRTAP_PKT_IN),
                TestProg::TcEgress => (abi::HDRTAP_HOOK_TC, abi::HDRTAP_PKT_OUT),
                TestProg::Xdp => (abi::HDRTAP_HOOK_XDP, abi::HDRTAP_PKT_IN),
                TestProg::Socket => unreachable!(),
            };
            assert_eq!(
                (u32::from(e.hook), u32::from(e.dir)),
                (hook, dir),
                "{name} {prog:?}"
            );
            // The kernel parser's flags are the Rust reference's.
            let f = extract(&pkt, 0, None, 0);
            let mask = (abi::HDRTAP_PKT_F_MALFORMED
                | abi::HDRTAP_PKT_F_FRAGMENT
                | abi::HDRTAP_PKT_F_PARSE_LIMIT) as u16;
            assert_eq!(
                e.flags & mask,
                f.flags,
                "{name} {prog:?}: parser flags {:#x} vs reference {:#x}",
                e.flags,
                f.flags
            );
            // Userspace decodes the event as it decodes the bytes.
            let rec = decode_event(&e, "lo", 0);
            let direct = decode_frame(&pkt[..snap], Link::Ether, None, 0, pkt.len() as u32);
            assert_eq!(rec.headers.ipv4, direct.ipv4, "{name}");
            assert_eq!(rec.headers.tcp, direct.tcp, "{name}");
        }
    }
    let c = rig.probe.counters().unwrap();
    assert_eq!(
        c[abi::HDRTAP_PCTR_SEEN as usize],
        c[abi::HDRTAP_PCTR_EVENTS as usize]
    );
    assert!(c[abi::HDRTAP_PCTR_MALFORMED as usize] > 0);
    // Without a filter the bytes are copied unparsed: no parser flags.
    rig.filter(&[]);
    let (_, bad) = packets()
        .into_iter()
        .find(|(n, _)| *n == "ipv4 ihl 4")
        .unwrap();
    let ev = rig.run(TestProg::TcEgress, &bad);
    let e = abi::decode_packet(&ev[0]).unwrap();
    assert_eq!(e.flags & abi::HDRTAP_PKT_F_MALFORMED as u16, 0);
    assert_eq!(e.data, &bad[..]);
}

/// One CMP of `field` with every bit compared.
fn cmp(field: u32, lo: u64, hi: u64, family: u8) -> PfInsn {
    let wide = field == abi::HDRTAP_PF_SRC_ADDR || field == abi::HDRTAP_PF_DST_ADDR;
    PfInsn {
        op: abi::HDRTAP_PF_OP_CMP as u8,
        field: field as u8,
        family,
        value: [lo, hi],
        mask: [u64::MAX, if wide { u64::MAX } else { 0 }],
    }
}

/// For every field: the kernel agrees with the Rust reference on whether
/// the packet has it and on its exact value.
#[test]
fn kernel_fields_equal_the_rust_reference() {
    let rig = Rig::default();
    for (name, pkt) in packets() {
        let f: Fields = extract(&pkt, 0, None, 0);
        for field in 1..abi::HDRTAP_PF_FIELD_MAX {
            let present = [PfInsn {
                op: abi::HDRTAP_PF_OP_CMP as u8,
                field: field as u8,
                ..PfInsn::default()
            }];
            for prog in PROGS {
                rig.filter(&present);
                assert_eq!(
                    rig.accepts(prog, &pkt),
                    f.has(field),
                    "{name} {prog:?}: field {field} present?"
                );
                if let Some((lo, hi)) = f.get(field) {
                    rig.filter(&[cmp(field, lo, hi, f.family)]);
                    assert!(
                        rig.accepts(prog, &pkt),
                        "{name} {prog:?}: field {field} == {lo:#x}/{hi:#x}"
                    );
                    rig.filter(&[cmp(field, lo ^ 1, hi, 0)]);
                    assert!(
                        !rig.accepts(prog, &pkt),
                        "{name} {prog:?}: field {field} != {:#x}",
                        lo ^ 1
                    );
                    if field == abi::HDRTAP_PF_SRC_ADDR {
                        let other = if f.family == 4 { 6 } else { 4 };
                        rig.filter(&[cmp(field, lo, hi, other)]);
                        assert!(
                            !rig.accepts(prog, &pkt),
                            "{name} {prog:?}: family {other} matched"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn socket_filter_queues_nothing_and_labels_its_events() {
    let rig = Rig::default();
    let (_, pkt) = &packets()[0];
    let ev = rig.run(TestProg::Socket, pkt); // asserts the return value 0
    assert_eq!(ev.len(), 1);
    let e = abi::decode_packet(&ev[0]).unwrap();
    assert_eq!(
        (u32::from(e.hook), u32::from(e.dir)),
        (abi::HDRTAP_HOOK_SOCKET, abi::HDRTAP_PKT_IN)
    );
    // From the network header (see PROGS): the wire length is the skb's.
    assert_eq!(e.wire_len as usize, pkt.len() - 14);
}

#[test]
fn filter_counts_and_empty_filter() {
    let rig = Rig::default();
    let (_, pkt) = &packets()[0];
    rig.filter(&filter::compile("udp").unwrap().insns);
    assert!(!rig.accepts(TestProg::TcIngress, pkt));
    rig.filter(&[]);
    assert!(rig.accepts(TestProg::TcIngress, pkt));
    let c = rig.probe.counters().unwrap();
    assert_eq!(c[abi::HDRTAP_PCTR_FILTERED as usize], 1);
    assert_eq!(c[abi::HDRTAP_PCTR_EVENTS as usize], 1);
}

#[test]
fn direction_snaplen_and_sampling_are_applied_in_the_kernel() {
    let rig = Rig::new(PacketOptions {
        owners: false,
        ring_bytes: 1 << 20,
        snaplen: 64,
        sample: 4,
        directions: Directions {
            ingress: true,
            egress: false,
        },
        ..PacketOptions::default()
    });
    let (_, big) = packets()
        .into_iter()
        .find(|(n, _)| *n == "1254-byte packet")
        .unwrap();
    assert!(
        rig.run(TestProg::TcEgress, &big).is_empty(),
        "egress not wanted"
    );
    let mut got = 0;
    for _ in 0..400 {
        for ev in rig.run(TestProg::TcIngress, &big) {
            let e = abi::decode_packet(&ev).unwrap();
            assert_eq!((e.data.len(), e.wire_len as usize), (64, big.len()));
            assert!(e.has_flag(abi::HDRTAP_PKT_F_SNAPPED));
            got += 1;
        }
    }
    let c = rig.probe.counters().unwrap();
    assert_eq!(c[abi::HDRTAP_PCTR_FILTERED as usize], 1);
    assert_eq!(c[abi::HDRTAP_PCTR_EVENTS as usize], got);
    assert_eq!(c[abi::HDRTAP_PCTR_SAMPLED_OUT as usize] + got, 400);
    // 1 in 4 of 400: 100 expected; this range fails once in millions of runs.
    assert!((50..=150).contains(&got), "{got} of 400 sampled at 1 in 4");
}

fn arb_expr() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("tcp".to_string()),
        Just("udp".to_string()),
        Just("icmp".to_string()),
        Just("icmp6".to_string()),
        Just("arp".to_string()),
        Just("ip".to_string()),
        Just("ip6".to_string()),
        Just("vlan".to_string()),
        Just("vlan 200".to_string()),
        Just("vlan 42".to_string()),
        prop::sample::select(vec![22u16, 53, 443, 2000, 8080, 40000])
            .prop_map(|p| format!("port {p}")),
        Just("src port 40000".to_string()),
        Just("portrange 1000-3000".to_string()),
        Just("host 10.1.2.3".to_string()),
        Just("dst host 192.168.9.8".to_string()),
        Just("net 2001:db8::/32".to_string()),
        Just("src net fd00::/8".to_string()),
        Just("net 10.0.0.0/8".to_string()),
        Just("tcp[tcpflags] & tcp-syn != 0".to_string()),
        Just("tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-ack".to_string()),
        Just("tcp[tcpflags] != 0x12".to_string()),
        Just("icmp[icmptype] == icmp-echo".to_string()),
        Just("icmp6[icmp6type] == 135".to_string()),
        Just("ip6 proto 6".to_string()),
    ];
    leaf.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} and {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} or {b})")),
            inner.prop_map(|a| format!("not {a}")),
        ]
    })
}

thread_local! {
    static RIG: Rig = Rig::default();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// The kernel's verdict is the Rust reference evaluator's, for random
    /// expressions over every crafted packet and every program.
    #[test]
    fn kernel_and_rust_verdicts_agree(expr in arb_expr()) {
        let Ok(prog) = filter::compile(&expr) else { return Ok(()) };
        RIG.with(|rig| {
            rig.filter(&prog.insns);
            for (name, pkt) in packets() {
                let want = prog.matches(&extract(&pkt, 0, None, 0));
                for p in [TestProg::TcIngress, TestProg::Xdp] {
                    assert_eq!(rig.accepts(p, &pkt), want, "{expr:?} on {name} with {p:?}");
                }
            }
        });
    }
}
