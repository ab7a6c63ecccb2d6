//! `hdrtap http --with-packets` against tshark: every HTTP/1 record links
//! exactly the packets that carried its message, retransmissions included.
//!
//! Two namespaces joined by a veth pair (tests/netns): a Python server in A,
//! curl in B. The link's MTU is 576 and its GSO is off, so that a request
//! with a 6 KB header block leaves in a dozen 524-byte segments. This
//! kernel has no netem, so losses come from nftables in A: every fourth
//! data segment towards the server is dropped at prerouting, after tc and
//! AF_PACKET saw it, so curl's TCP retransmits it. hdrtap runs in A with
//! the packet capture on pka; tshark captures pka independently. For each
//! record, the packets tshark shows carrying bytes of the record's TCP
//! sequence range (same flow, payload overlapping) must be exactly the
//! packets the record links, by (ports, sequence number, length), and both
//! ends of an exchange link the same ones.
#![forbid(unsafe_code)]

#[path = "netns/mod.rs"]
mod netns;
#[path = "packets_tshark.rs"]
mod tshark;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::time::Duration;

use hdrtap_tests::*;
use netns::*;
use tshark::Tshark;

/// Requests sent (each on its own connection).
const REQUESTS: usize = 6;

/// A TCP segment with payload: (source port, destination port, sequence
/// number, payload length).
type Seg = (u16, u16, u32, u32);

/// The payload segments tshark captured, and the retransmitted ones.
fn tshark_segments(shark: Tshark) -> (Vec<Seg>, BTreeSet<Seg>) {
    let mut segs = Vec::new();
    let mut retrans = BTreeSet::new();
    for (_, layers) in shark.stop_with_fields(65535, &["tcp.analysis.retransmission"]) {
        let num = |name: &str| -> Option<u64> {
            layers[name]
                .as_array()
                .and_then(|a| a.first())
                .and_then(|v| v.as_str())
                .and_then(|s| s.parse().ok())
        };
        let (Some(sp), Some(dp), Some(seq), Some(len)) = (
            num("tcp.srcport"),
            num("tcp.dstport"),
            num("tcp.seq_raw"),
            num("tcp.len"),
        ) else {
            continue;
        };
        if len == 0 {
            continue;
        }
        let seg = (sp as u16, dp as u16, seq as u32, len as u32);
        if layers.get("tcp.analysis.retransmission").is_some() {
            retrans.insert(seg);
        }
        segs.push(seg);
    }
    (segs, retrans)
}

/// Whether `seg` carries a byte of `[first, last]` (sequence numbers wrap).
fn carries(seg: &Seg, first: u32, last: u32) -> bool {
    let rlen = u64::from(last.wrapping_sub(first)) + 1;
    let start = u64::from(seg.2.wrapping_sub(first));
    start < rlen || u64::from(first.wrapping_sub(seg.2)) < u64::from(seg.3)
}

fn sorted(mut v: Vec<Seg>) -> Vec<Seg> {
    v.sort_unstable();
    v
}

#[test]
fn records_link_exactly_the_packets_tshark_shows() {
    require_root();
    let topo = Topology::new();
    for (ns, dev) in [(&topo.ns_a, IF_A), (&topo.ns_b, IF_B)] {
        small_segments(ns, dev);
    }
    // Every fourth data segment towards the server is lost (nft's own
    // counter: deterministic), after tc and AF_PACKET saw it.
    nft(
        topo.in_a("nft"),
        "table inet hdrtap_loss {\n chain pre {\n  type filter hook prerouting priority raw;\n  \
         tcp dport 8080 ip length > 200 numgen inc mod 4 == 1 counter drop\n }\n}\n",
    );

    let _server = ChildGuard(
        topo.in_a("python3")
            .args(["-m", "http.server", "8080", "--bind", "10.77.0.1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn python3 -m http.server"),
    );
    std::thread::sleep(Duration::from_millis(800));
    let shark = Tshark::start(&topo.wrapper_a(), IF_A, Some("tcp port 8080"));
    let cap = Hdrtap::start_wrapped(
        &topo.wrapper_a(),
        &["http", "--json"],
        &[
            "--with-packets=pka",
            "--packets-wait",
            "3000",
            "--port",
            "8080",
        ],
    );
    let big = "b".repeat(6000);
    for i in 0..REQUESTS {
        let out = topo
            .in_b("curl")
            .args([
                "-sS",
                "-o",
                "/dev/null",
                "--max-time",
                "30",
                "-H",
                &format!("X-Test: link-{i}"),
                "-H",
                &format!("X-Big: {big}"),
                "http://10.77.0.1:8080/",
            ])
            .output()
            .expect("run curl");
        assert!(out.status.success(), "curl: {out:?}");
    }
    // Records wait 3 s for late packets; stopping releases the rest.
    std::thread::sleep(Duration::from_secs(4));
    let cap = cap.stop();
    let (segs, retrans) = tshark_segments(shark);

    let packets: BTreeMap<u64, Seg> = cap
        .records
        .iter()
        .filter(|r| kind(r) == "packet")
        .map(|r| {
            let t = &r["tcp"];
            (
                r["id"].as_u64().unwrap(),
                (
                    t["sport"].as_u64().unwrap() as u16,
                    t["dport"].as_u64().unwrap() as u16,
                    t["seq"].as_u64().unwrap() as u32,
                    t["payload_len"].as_u64().unwrap_or(0) as u32,
                ),
            )
        })
        .collect();
    let mut checked = 0;
    let mut links: BTreeMap<(String, u32), Vec<Vec<Seg>>> = BTreeMap::new();
    let mut linked_retrans = 0;
    for r in cap.http() {
        let Some(range) = r.get("tcp_seq") else {
            panic!("record without tcp_seq:\n{r}")
        };
        let (first, last) = (
            range["first"].as_u64().unwrap() as u32,
            range["last"].as_u64().unwrap() as u32,
        );
        let (from, to) = if r["role"] == "server" && kind(r) == "http_request"
            || r["role"] == "client" && kind(r) == "http_response"
        {
            (&r["remote"], &r["local"])
        } else {
            (&r["local"], &r["remote"])
        };
        let (sp, dp) = (
            from["port"].as_u64().unwrap() as u16,
            to["port"].as_u64().unwrap() as u16,
        );
        let want = sorted(
            segs.iter()
                .filter(|s| s.0 == sp && s.1 == dp && carries(s, first, last))
                .copied()
                .collect(),
        );
        let ids: Vec<u64> = r["packets"]
            .as_array()
            .unwrap_or_else(|| panic!("record without packets:\n{r}"))
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        let got = sorted(
            ids.iter()
                .map(|id| {
                    *packets
                        .get(id)
                        .unwrap_or_else(|| panic!("packet {id} not written before its record"))
                })
                .collect(),
        );
        assert_eq!(
            got, want,
            "record's packets (hdrtap) vs the packets tshark shows carrying [{first}, {last}]:\n{r}"
        );
        assert_eq!(
            r["packets_complete"], true,
            "{r}\npackets: {got:?}\ntshark: {segs:?}"
        );
        if kind(r) == "http_request" {
            assert!(
                want.len() >= 10,
                "a 6 KB request in 524-byte segments: {want:?}"
            );
            assert_eq!(range["whole"], true, "{r}");
            linked_retrans += want.iter().filter(|s| retrans.contains(s)).count();
        }
        links
            .entry((kind(r).to_string(), first))
            .or_default()
            .push(got);
        checked += 1;
    }
    // Both ends of each exchange: requests and responses, client and server.
    assert_eq!(checked, 4 * REQUESTS, "{}", cap.dump_all());
    for (k, n) in &links {
        assert!(
            n.len() == 2 && n[0] == n[1],
            "both ends of {k:?} link the same packets: {n:?}"
        );
    }
    assert!(
        linked_retrans >= REQUESTS,
        "every request lost a segment and its retransmission is linked ({linked_retrans}; tshark's retransmissions: {retrans:?})"
    );
    let stats = cap.stats().last().expect("a stats record").clone();
    assert_eq!(stats["link_packets_lost"], 0, "{stats}");
    assert_eq!(stats["link_records_incomplete"], 0, "{stats}");
    assert_eq!(stats["link_records"], 4 * REQUESTS as u64, "{stats}");
}
