use std::net::{Ipv4Addr, Ipv6Addr};

use hdrtap_abi::build::{packet_event, PacketSpec};
use proptest::prelude::*;

use super::build::*;
use super::*;

const A4: Ipv4Addr = Ipv4Addr::new(10, 1, 2, 3);
const B4: Ipv4Addr = Ipv4Addr::new(192, 168, 9, 8);

fn a6() -> Ipv6Addr {
    "fd00::1".parse().unwrap()
}
fn b6() -> Ipv6Addr {
    "fd00::2".parse().unwrap()
}

fn decode(f: &[u8]) -> Headers {
    decode_frame(f, Link::Ether, None, 0, f.len() as u32)
}

fn tcp_syn_with_options() -> FrameSpec {
    let mut s = FrameSpec::tcp4(A4, B4, 40000, 80, 0x02);
    let mut opts = vec![2, 4, 0x05, 0xb4]; // MSS 1460
    opts.extend([4, 2]); // SACK permitted
    opts.extend([8, 10, 0, 0, 0, 1, 0, 0, 0, 2]); // TS 1 2
    opts.extend([1, 3, 3, 7]); // NOP, WS 7
    if let L4::Tcp { options, seq, .. } = &mut s.l4 {
        *options = opts;
        *seq = 0xdeadbeef;
    }
    s
}

#[test]
fn tcp_ipv4_every_field() {
    let mut s = tcp_syn_with_options();
    if let L3::V4 { tos, id, ttl, .. } = &mut s.l3 {
        *tos = 0xb9; // DSCP 46, ECN 1
        *id = 0x1234;
        *ttl = 63;
    }
    let f = build(&s);
    let h = decode(&f);
    assert!(h.flags.is_empty(), "{:?}", h.flags);
    let e = h.eth.as_ref().unwrap();
    assert_eq!(e.src.to_string(), "02:00:00:00:00:01");
    assert_eq!(e.ethertype, 0x0800);
    let ip = h.ipv4.as_ref().unwrap();
    assert_eq!((ip.version, ip.ihl, ip.dscp, ip.ecn), (4, 5, 46, 1));
    assert_eq!(
        (ip.id, ip.ttl, ip.protocol, ip.df, ip.mf, ip.frag_offset),
        (0x1234, 63, 6, true, false, 0)
    );
    assert_eq!(usize::from(ip.total_len), f.len() - 14);
    assert_eq!(ip.checksum, u16::from_be_bytes([f[24], f[25]]));
    assert_eq!(checksum(&f[14..34]), 0, "header checksum verifies");
    assert_eq!((ip.src, ip.dst, ip.options), (A4, B4, false));
    let t = h.tcp.as_ref().unwrap();
    assert_eq!(
        (t.sport, t.dport, t.seq, t.ack, t.window),
        (40000, 80, 0xdeadbeef, 0, 65535)
    );
    assert_eq!(t.flags, vec!["SYN"]);
    assert_eq!(t.data_offset, 10);
    assert_eq!(t.options.mss, Some(1460));
    assert!(t.options.sack_permitted);
    assert_eq!((t.options.ts_val, t.options.ts_ecr), (Some(1), Some(2)));
    assert_eq!(t.options.wscale, Some(7));
    assert_eq!(t.payload_len, Some(0));
}

#[test]
fn sack_blocks_and_every_flag_name() {
    let mut s = FrameSpec::tcp4(A4, B4, 1, 2, 0xff);
    if let L4::Tcp { options, .. } = &mut s.l4 {
        *options = vec![
            1, 1, 5, 18, 0, 0, 0, 10, 0, 0, 0, 20, 0, 0, 0, 30, 0, 0, 0, 40,
        ];
    }
    s.payload = b"hello".to_vec();
    let h = decode(&build(&s));
    let t = h.tcp.unwrap();
    assert_eq!(t.options.sack, vec![[10, 20], [30, 40]]);
    assert_eq!(
        t.flags,
        vec!["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"]
    );
    assert_eq!(t.payload_len, Some(5));
}

#[test]
fn stacked_vlan_tags_are_decoded_outer_first() {
    let mut s = FrameSpec::udp6(a6(), b6(), 5353, 53);
    s.vlans = vec![(0x88a8, 0xa000 | 100), (0x8100, 0x1000 | 200)];
    let h = decode(&build(&s));
    assert_eq!(h.eth.as_ref().unwrap().ethertype, 0x88a8);
    assert_eq!(h.vlan.len(), 2);
    assert_eq!(
        (h.vlan[0].tpid, h.vlan[0].vid, h.vlan[0].pcp, h.vlan[0].dei),
        (0x88a8, 100, 5, false)
    );
    assert_eq!(h.vlan[0].ethertype, 0x8100);
    assert_eq!(
        (h.vlan[1].tpid, h.vlan[1].vid, h.vlan[1].pcp, h.vlan[1].dei),
        (0x8100, 200, 0, true)
    );
    assert_eq!(h.vlan[1].ethertype, 0x86dd);
    assert_eq!(h.udp.unwrap().dport, 53);
}

#[test]
fn offloaded_tag_is_put_back() {
    let s = FrameSpec::tcp4(A4, B4, 1, 2, 0x10);
    let f = build(&s);
    let h = decode_frame(
        &f,
        Link::Ether,
        Some((0x8100, 0x2000 | 42)),
        0,
        f.len() as u32,
    );
    assert_eq!(h.vlan.len(), 1);
    assert_eq!((h.vlan[0].vid, h.vlan[0].pcp), (42, 1));
    assert_eq!(h.eth.unwrap().ethertype, 0x8100);
    assert!(h.flags.contains(&flag::VLAN_OFFLOADED));
    assert!(h.tcp.is_some());
}

#[test]
fn arp_request() {
    let s = FrameSpec {
        dst: [0xff; 6],
        src: [2, 0, 0, 0, 0, 1],
        vlans: vec![],
        l3: L3::Arp {
            op: 1,
            sha: [2, 0, 0, 0, 0, 1],
            spa: A4,
            tha: [0; 6],
            tpa: B4,
        },
        l4: L4::None,
        payload: vec![],
    };
    let h = decode(&build(&s));
    let a = h.arp.unwrap();
    assert_eq!((a.op, a.sender_ip, a.target_ip), (1, Some(A4), Some(B4)));
    assert_eq!(a.sender_mac.unwrap().to_string(), "02:00:00:00:00:01");
}

#[test]
fn ipv6_extension_chain_walked_to_tcp() {
    let mut s = FrameSpec::udp6(a6(), b6(), 1, 2);
    s.l4 = L4::Tcp {
        sport: 443,
        dport: 5000,
        seq: 1,
        ack: 2,
        flags: 0x12,
        window: 100,
        urg: 0,
        options: vec![],
    };
    if let L3::V6 {
        ext,
        traffic_class,
        flow_label,
        ..
    } = &mut s.l3
    {
        *traffic_class = 0xb8;
        *flow_label = 0x12345;
        *ext = vec![
            (0, pad_options(6)),
            (60, pad_options(14)),
            (43, vec![0, 0, 0, 0, 0, 0]),
            (44, fragment(0, false, 77)),
        ];
    }
    let f = build(&s);
    let h = decode(&f);
    assert!(h.flags.is_empty(), "{:?}", h.flags);
    let ip = h.ipv6.unwrap();
    assert_eq!(
        (ip.traffic_class, ip.flow_label, ip.next_header, ip.protocol),
        (0xb8, 0x12345, 0, 6)
    );
    let kinds: Vec<&str> = ip.ext.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, ["hop_by_hop", "dest_opts", "routing", "fragment"]);
    assert_eq!(ip.ext[1].len, 16);
    assert_eq!(ip.ext[3].id, Some(77));
    assert_eq!(usize::from(ip.payload_len), f.len() - 14 - 40);
    let t = h.tcp.unwrap();
    assert_eq!((t.sport, t.dport), (443, 5000));
    assert_eq!(t.flags, vec!["SYN", "ACK"]);
}

#[test]
fn non_first_fragments_have_no_transport() {
    let mut s = FrameSpec::tcp4(A4, B4, 1, 2, 0x10);
    if let L3::V4 {
        frag_offset, mf, ..
    } = &mut s.l3
    {
        *frag_offset = 1480;
        *mf = true;
    }
    let h = decode(&build(&s));
    assert!(h.tcp.is_none());
    assert!(h.flags.contains(&flag::FRAGMENT));
    let ip = h.ipv4.unwrap();
    assert_eq!((ip.frag_offset, ip.mf), (1480, true));

    let mut s6 = FrameSpec::udp6(a6(), b6(), 1, 2);
    if let L3::V6 { ext, .. } = &mut s6.l3 {
        *ext = vec![(44, fragment(8, false, 5))];
    }
    let h = decode(&build(&s6));
    assert!(h.udp.is_none());
    assert!(h.flags.contains(&flag::FRAGMENT));
    assert_eq!(h.ipv6.unwrap().ext[0].frag_offset, Some(8));
}

#[test]
fn malformed_ipv4_is_flagged_with_what_decoded() {
    // IHL 3
    let mut s = FrameSpec::tcp4(A4, B4, 1, 2, 0x02);
    if let L3::V4 { ihl, .. } = &mut s.l3 {
        *ihl = Some(3);
    }
    let h = decode(&build(&s));
    assert!(h.flags.contains(&flag::MALFORMED));
    assert_eq!(h.ipv4.as_ref().unwrap().ihl, 3);
    assert_eq!(h.ipv4.unwrap().src, A4);
    assert!(h.tcp.is_none());

    // total length past the end of the packet
    let mut s = FrameSpec::tcp4(A4, B4, 1, 2, 0x02);
    if let L3::V4 { total_len, .. } = &mut s.l3 {
        *total_len = Some(1500);
    }
    let h = decode(&build(&s));
    assert!(h.flags.contains(&flag::MALFORMED), "{:?}", h.flags);

    // TCP data offset 2
    let mut f = build(&FrameSpec::tcp4(A4, B4, 1, 2, 0x02));
    f[14 + 20 + 12] = 0x20;
    let h = decode(&f);
    assert!(h.flags.contains(&flag::MALFORMED));
    assert_eq!(h.tcp.unwrap().dport, 2);
}

#[test]
fn short_captures_are_truncated_not_malformed() {
    let f = build(&tcp_syn_with_options());
    for n in 0..f.len() {
        let h = decode_frame(&f[..n], Link::Ether, None, 0, f.len() as u32);
        assert!(
            !h.flags.contains(&flag::MALFORMED),
            "cut at {n}: {:?}",
            h.flags
        );
        if n < f.len() {
            assert!(
                h.flags.contains(&flag::TRUNCATED) || n >= 54,
                "cut at {n}: {:?}",
                h.flags
            );
        }
    }
}

#[test]
fn icmp_echo_both_families() {
    let mut s = FrameSpec::tcp4(A4, B4, 0, 0, 0);
    s.l4 = L4::Icmp {
        icmp_type: 8,
        code: 0,
        id: 77,
        seq: 3,
    };
    let h = decode(&build(&s));
    let i = h.icmp.unwrap();
    assert_eq!(
        (i.icmp_type, i.code, i.id, i.seq),
        (8, 0, Some(77), Some(3))
    );
    let mut s6 = FrameSpec::udp6(a6(), b6(), 0, 0);
    s6.l4 = L4::Icmp {
        icmp_type: 129,
        code: 0,
        id: 9,
        seq: 1,
    };
    let h = decode(&build(&s6));
    let i = h.icmp6.unwrap();
    assert_eq!((i.icmp_type, i.id, i.seq), (129, Some(9), Some(1)));
}

#[test]
fn raw_ip_links() {
    let f = build(&FrameSpec::udp6(a6(), b6(), 7, 8));
    let h = decode_frame(&f[14..], Link::RawIp, None, 0, (f.len() - 14) as u32);
    assert!(h.eth.is_none());
    assert_eq!(h.udp.unwrap().sport, 7);
}

#[test]
fn json_uses_the_documented_names() {
    let mut s = tcp_syn_with_options();
    s.vlans = vec![(0x8100, 5)];
    let raw = packet_event(
        &PacketSpec {
            tgid: 42,
            tid: 43,
            comm: "curl".into(),
            owner: hdrtap_abi::HDRTAP_OWNER_SKB_SK as u8,
            dir: hdrtap_abi::HDRTAP_PKT_OUT as u8,
            sock_cookie: 7,
            ..Default::default()
        },
        &build(&s),
    );
    let ev = hdrtap_abi::decode_packet(&raw).unwrap();
    let rec = decode_event(&ev, "veth0", 0);
    let v: serde_json::Value = serde_json::from_str(&record_json(&rec)).unwrap();
    assert_eq!(v["kind"], "packet");
    assert_eq!(
        (v["hook"].as_str(), v["dir"].as_str(), v["ifname"].as_str()),
        (Some("tc"), Some("out"), Some("veth0"))
    );
    assert_eq!(
        (v["pid"].as_u64(), v["comm"].as_str()),
        (Some(42), Some("curl"))
    );
    assert_eq!(v["vlan"][0]["vid"], 5);
    assert_eq!(v["ipv4"]["src"], "10.1.2.3");
    assert_eq!(v["tcp"]["flags"][0], "SYN");
    assert_eq!(v["tcp"]["options"]["mss"], 1460);
    assert_eq!(v["tcp"]["options"]["sack_permitted"], true);
    assert_eq!(v["eth"]["type"], 0x8100);
    assert!(v.get("flags").is_none());
    let line = record_line(&rec);
    assert!(line.contains("veth0 out tc curl[42] vlan 5 p 0, IP 10.1.2.3.40000 > 192.168.9.8.80: Flags [S], seq 3735928559"), "{line}");

    let raw = packet_event(&PacketSpec::default(), &build(&s));
    let rec = decode_event(&hdrtap_abi::decode_packet(&raw).unwrap(), "lo", 0);
    let v: serde_json::Value = serde_json::from_str(&record_json(&rec)).unwrap();
    assert!(v["pid"].is_null() && v["comm"].is_null());
}

/// The hand-written JSON is byte for byte what serde writes, for every kind
/// of packet (and with an owner, a cookie, flags, VLAN tags).
#[test]
fn fast_json_equals_serde_json() {
    let mut frames = vec![build(&tcp_syn_with_options())];
    let mut s = FrameSpec::udp6(a6(), b6(), 1, 2);
    s.vlans = vec![(0x88a8, 0x3005), (0x8100, 6)];
    if let L3::V6 { ext, .. } = &mut s.l3 {
        *ext = vec![
            (0, pad_options(6)),
            (43, vec![0, 1, 0, 0, 0, 0]),
            (44, fragment(0, true, 3)),
        ];
    }
    frames.push(build(&s));
    let mut sack = FrameSpec::tcp4(A4, B4, 1, 2, 0xff);
    if let L4::Tcp { options, .. } = &mut sack.l4 {
        *options = vec![5, 10, 0, 0, 0, 1, 0, 0, 0, 2, 30, 2];
    }
    frames.push(build(&sack));
    let mut icmp = FrameSpec::tcp4(A4, B4, 0, 0, 0);
    icmp.l4 = L4::Icmp {
        icmp_type: 3,
        code: 1,
        id: 0,
        seq: 0,
    };
    frames.push(build(&icmp));
    frames.push(build(&FrameSpec {
        dst: [0xff; 6],
        src: [0xab; 6],
        vlans: vec![],
        l3: L3::Arp {
            op: 1,
            sha: [0xab; 6],
            spa: A4,
            tha: [0; 6],
            tpa: B4,
        },
        l4: L4::None,
        payload: vec![],
    }));
    frames.push(vec![1, 2, 3]);
    for (i, f) in frames.iter().enumerate() {
        for spec in [
            PacketSpec::default(),
            PacketSpec {
                tgid: 9,
                tid: 10,
                comm: "we\"ird\n".into(),
                owner: 1,
                sock_cookie: 77,
                flags: hdrtap_abi::HDRTAP_PKT_F_SNAPPED as u16,
                ..Default::default()
            },
        ] {
            let raw = packet_event(&spec, f);
            let rec = decode_event(&hdrtap_abi::decode_packet(&raw).unwrap(), "eth\"0", 5);
            assert_eq!(
                record_json(&rec),
                format::record_json_serde(&rec),
                "frame {i}"
            );
        }
    }
}

/// decode_event as it was before records were decoded in place (built by
/// value, headers from decode_frame): the reference the in-place path is
/// tested against.
fn decode_event_reference(
    ev: &PacketEvent<'_>,
    ifname: &str,
    clock_offset_ns: i64,
) -> PacketRecord {
    let link = if u32::from(ev.link) == abi::HDRTAP_LINK_RAW_IP {
        Link::RawIp
    } else {
        Link::Ether
    };
    let accel = ev
        .has_flag(abi::HDRTAP_PKT_F_VLAN_ACCEL)
        .then_some((ev.vlan_proto, ev.vlan_tci));
    let mut headers = decode_frame(ev.data, link, accel, ev.protocol, ev.wire_len);
    let extra = if accel.is_some() && link == Link::Ether && ev.data.len() >= 12 {
        4
    } else {
        0
    };
    if ev.has_flag(abi::HDRTAP_PKT_F_SNAPPED) {
        headers.flag(flag::SNAPPED);
    }
    if ev.has_flag(abi::HDRTAP_PKT_F_LOAD_FAILED) {
        headers.flag(flag::NO_DATA);
    }
    let owner = (u32::from(ev.owner) != abi::HDRTAP_OWNER_NONE && ev.tgid != 0).then(|| Owner {
        pid: ev.tgid,
        tid: ev.tid,
        comm: crate::record::comm_text(&ev.comm),
        cgroup_id: ev.cgroup_id,
    });
    PacketRecord {
        id: 0,
        ts_unix_ns: (ev.ts_ns as i64).saturating_add(clock_offset_ns).max(0) as u64,
        // decode_packet refused any other byte.
        hook: Hook::from_raw(ev.hook).unwrap_or(Hook::Tc),
        dir: if u32::from(ev.dir) == abi::HDRTAP_PKT_OUT {
            Dir::Out
        } else {
            Dir::In
        },
        ifindex: ev.ifindex,
        ifname: ifname.into(),
        wire_len: ev.wire_len.saturating_add(extra),
        cap_len: (ev.data.len() as u32).saturating_add(extra),
        owner,
        sock_cookie: ev.sock_cookie,
        headers,
        workload: None,
        frame: None,
    }
}

proptest! {
    /// The pipeline's record, decoded in its Arc, is the record
    /// decode_event builds, on mutated and cut packets of both families,
    /// with and without an offloaded VLAN tag, an owner and snap flags.
    #[test]
    fn record_decoded_in_its_arc_equals_decode_event(
        pos in 0usize..120, byte in any::<u8>(), cut in 0usize..140,
        flags in 0u16..8, owner in 0u8..2, raw_ip in any::<bool>(),
    ) {
        let mut v6 = FrameSpec::udp6(a6(), b6(), 1, 2);
        if let L3::V6 { ext, .. } = &mut v6.l3 {
            *ext = vec![(0, pad_options(6)), (44, fragment(0, true, 1))];
        }
        let mut vlan = tcp_syn_with_options();
        vlan.vlans = vec![(0x8100, 6)];
        for mut f in [build(&v6), build(&tcp_syn_with_options()), build(&vlan)] {
            if let Some(b) = f.get_mut(pos) {
                *b = byte;
            }
            f.truncate(cut);
            let spec = PacketSpec {
                tgid: 9,
                tid: 10,
                comm: "curl".into(),
                owner,
                sock_cookie: 77,
                flags,
                vlan_proto: 0x8100,
                vlan_tci: 0x2007,
                link: if raw_ip { hdrtap_abi::HDRTAP_LINK_RAW_IP as u8 } else { 0 },
                ..Default::default()
            };
            let raw = packet_event(&spec, &f);
            let ev = hdrtap_abi::decode_packet(&raw).unwrap();
            let want = decode_event_reference(&ev, "lo", -3);
            prop_assert_eq!(&decode_event(&ev, "lo", -3), &want);
            let got = decode_event_arc(&ev, "lo".into(), -3, |_| {});
            prop_assert_eq!(&*got, &want);
            prop_assert_eq!(record_json(&got), record_json(&want));
        }
    }

    #[test]
    fn never_panics_on_garbage(data in proptest::collection::vec(any::<u8>(), 0..200), raw_ip in any::<bool>(), wire in 0u32..400) {
        let link = if raw_ip { Link::RawIp } else { Link::Ether };
        let h = decode_frame(&data, link, None, 0, wire);
        let _ = h.flags.len();
        let _ = decode_frame(&data, link, Some((0x8100, 7)), 0x86dd, wire);
    }

    #[test]
    fn never_panics_on_mutated_packets(pos in 0usize..120, byte in any::<u8>(), cut in 0usize..140) {
        let mut s = FrameSpec::udp6(a6(), b6(), 1, 2);
        if let L3::V6 { ext, .. } = &mut s.l3 {
            *ext = vec![(0, pad_options(6)), (44, fragment(0, true, 1))];
        }
        for mut f in [build(&s), build(&tcp_syn_with_options())] {
            if let Some(b) = f.get_mut(pos) {
                *b = byte;
            }
            f.truncate(cut);
            let rec = decode_frame(&f, Link::Ether, None, 0, 140);
            let r = PacketRecord {
                id: 3, ts_unix_ns: 0, hook: Hook::Tc, dir: Dir::In, ifindex: 1, ifname: "x".into(),
                wire_len: 140, cap_len: f.len() as u32, owner: None, sock_cookie: 0, headers: rec, workload: None, frame: None,
            };
            let _ = record_line(&r);
            prop_assert_eq!(record_json(&r), format::record_json_serde(&r));
        }
    }
}

/// The precomputed flags arrays are serde's array of names, for every
/// flags byte.
#[test]
fn tcp_flags_table_matches_serde_for_every_byte() {
    for bits in 0..=255u8 {
        let (text, len) = format::TCP_FLAGS_JSON[usize::from(bits)];
        let want = serde_json::to_string(&TcpFlags(bits)).unwrap();
        assert_eq!(
            &text[..usize::from(len)],
            want.as_bytes(),
            "flags {bits:#04x}"
        );
    }
}

/// A packet whose owner's cgroup is known: `cgroup_id` and the workload
/// fields follow `comm`, written by hand exactly as serde writes them.
#[test]
fn owner_cgroup_and_workload_in_json() {
    let spec = PacketSpec {
        tgid: 42,
        tid: 43,
        cgroup_id: 777,
        owner: abi::HDRTAP_OWNER_LOOKUP as u8,
        comm: "curl".into(),
        ..Default::default()
    };
    let frame = build(&tcp_syn_with_options());
    let ev_bytes = packet_event(&spec, &frame);
    let ev = hdrtap_abi::decode_packet(&ev_bytes).unwrap();
    assert_eq!(ev.cgroup_id, 777);
    let mut rec = decode_event(&ev, "lo", 0);
    assert_eq!(rec.owner.as_ref().map(|o| o.cgroup_id), Some(777));
    rec.workload = Some(Arc::new(crate::cgroup::Workload::from_path(&format!(
        "/system.slice/docker-{}.scope",
        "ab".repeat(32)
    ))));
    let json = record_json(&rec);
    assert_eq!(json, format::record_json_serde(&rec));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["cgroup_id"], 777);
    assert_eq!(v["container_runtime"], "docker");
    assert_eq!(v["unit"], format!("docker-{}.scope", "ab".repeat(32)));
}
