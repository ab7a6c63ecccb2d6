//! tshark as the reference for tests/packets.rs: capture with dumpcap into
//! a pcapng, dissect with `tshark -T json -e ...`, and compare every field
//! tshark dissects with the same field of hdrtap's records.
#![forbid(unsafe_code)]
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hdrtap_tests::Value;

/// Field name -> values (several for VLAN tags and SACK blocks), in a
/// canonical form: numbers in decimal, booleans as 0/1, MACs lower case.
pub type Fields = BTreeMap<String, Vec<String>>;

/// tshark fields compared, and whether every occurrence counts (else the
/// first: ICMP errors quote inner headers, which hdrtap does not decode).
const TSHARK_FIELDS: &[(&str, bool)] = &[
    ("frame.len", false),
    ("frame.cap_len", false),
    ("eth.src", false),
    ("eth.dst", false),
    ("eth.type", false),
    ("vlan.id", true),
    ("vlan.priority", true),
    ("vlan.dei", true),
    ("vlan.etype", true),
    ("ieee8021ad.id", true),
    ("ieee8021ad.priority", true),
    ("ieee8021ad.dei", true),
    ("arp.hw.type", false),
    ("arp.proto.type", false),
    ("arp.hw.size", false),
    ("arp.proto.size", false),
    ("arp.opcode", false),
    ("arp.src.hw_mac", false),
    ("arp.src.proto_ipv4", false),
    ("arp.dst.hw_mac", false),
    ("arp.dst.proto_ipv4", false),
    ("ip.version", false),
    ("ip.hdr_len", false),
    ("ip.dsfield.dscp", false),
    ("ip.dsfield.ecn", false),
    ("ip.len", false),
    ("ip.id", false),
    ("ip.flags.df", false),
    ("ip.flags.mf", false),
    ("ip.frag_offset", false),
    ("ip.ttl", false),
    ("ip.proto", false),
    ("ip.checksum", false),
    ("ip.src", false),
    ("ip.dst", false),
    ("ipv6.version", false),
    ("ipv6.tclass", false),
    ("ipv6.flow", false),
    ("ipv6.plen", false),
    ("ipv6.nxt", false),
    ("ipv6.hlim", false),
    ("ipv6.src", false),
    ("ipv6.dst", false),
    ("ipv6.hopopts.nxt", true),
    ("ipv6.dstopts.nxt", true),
    ("ipv6.routing.nxt", true),
    ("ipv6.routing.type", true),
    ("ipv6.routing.segleft", true),
    ("ipv6.fraghdr.nxt", true),
    ("ipv6.fraghdr.offset", true),
    ("ipv6.fraghdr.more", true),
    ("ipv6.fraghdr.ident", true),
    ("tcp.srcport", false),
    ("tcp.dstport", false),
    ("tcp.seq_raw", false),
    ("tcp.ack_raw", false),
    ("tcp.hdr_len", false),
    ("tcp.flags", false),
    ("tcp.window_size_value", false),
    ("tcp.checksum", false),
    ("tcp.urgent_pointer", false),
    ("tcp.len", false),
    ("tcp.options.mss_val", false),
    ("tcp.options.wscale.shift", false),
    ("tcp.options.sack_perm", false),
    ("tcp.options.sack_le", true),
    ("tcp.options.sack_re", true),
    ("tcp.options.timestamp.tsval", false),
    ("tcp.options.timestamp.tsecr", false),
    ("udp.srcport", false),
    ("udp.dstport", false),
    ("udp.length", false),
    ("udp.checksum", false),
    ("icmp.type", false),
    ("icmp.code", false),
    ("icmp.checksum", false),
    ("icmp.ident", false),
    ("icmp.seq", false),
    ("icmpv6.type", false),
    ("icmpv6.code", false),
    ("icmpv6.checksum", false),
    ("icmpv6.echo.identifier", false),
    ("icmpv6.echo.sequence_number", false),
];

/// Canonical form of one tshark value.
fn canon(field: &str, v: &str) -> String {
    let v = v.trim();
    if field == "tcp.options.sack_perm" {
        return "1".into(); // present
    }
    if field == "tcp.flags" {
        let n = u64::from_str_radix(v.trim_start_matches("0x"), 16).unwrap_or(u64::MAX);
        return (n & 0xff).to_string();
    }
    if let Some(hex) = v.strip_prefix("0x") {
        if let Ok(n) = u64::from_str_radix(hex, 16) {
            return n.to_string();
        }
    }
    match v {
        "True" | "true" => "1".into(),
        "False" | "false" => "0".into(),
        _ => v.to_lowercase(),
    }
}

/// One packet as tshark dissected it.
pub fn from_tshark(layers: &Value, snaplen: u64) -> Fields {
    let mut f = Fields::new();
    for (name, all) in TSHARK_FIELDS {
        let Some(vals) = layers.get(*name).and_then(|v| v.as_array()) else {
            continue;
        };
        let mut out: Vec<String> = vals
            .iter()
            .filter_map(|v| v.as_str())
            .map(|v| canon(name, v))
            .collect();
        if !all {
            out.truncate(1);
        }
        if *name == "frame.cap_len" {
            out = out
                .iter()
                .map(|v| v.parse::<u64>().unwrap_or(0).min(snaplen).to_string())
                .collect();
        }
        if !out.is_empty() {
            f.insert(name.to_string(), out);
        }
    }
    f
}

fn put(f: &mut Fields, name: &str, v: &Value) {
    let s = match v {
        Value::Bool(b) => u8::from(*b).to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.to_lowercase(),
        Value::Null => return,
        other => other.to_string(),
    };
    f.entry(name.to_string()).or_default().push(s);
}

/// One hdrtap record under tshark's field names.
pub fn from_hdrtap(r: &Value) -> Fields {
    let mut f = Fields::new();
    put(&mut f, "frame.len", &r["wire_len"]);
    put(&mut f, "frame.cap_len", &r["cap_len"]);
    if let Some(e) = r.get("eth") {
        put(&mut f, "eth.src", &e["src"]);
        put(&mut f, "eth.dst", &e["dst"]);
        put(&mut f, "eth.type", &e["type"]);
    }
    for v in r["vlan"].as_array().into_iter().flatten() {
        // tshark dissects 802.1ad S-tags as ieee8021ad (no type field).
        if v["tpid"] == 0x88a8 {
            put(&mut f, "ieee8021ad.id", &v["vid"]);
            put(&mut f, "ieee8021ad.priority", &v["pcp"]);
            put(&mut f, "ieee8021ad.dei", &v["dei"]);
        } else {
            put(&mut f, "vlan.id", &v["vid"]);
            put(&mut f, "vlan.priority", &v["pcp"]);
            put(&mut f, "vlan.dei", &v["dei"]);
            put(&mut f, "vlan.etype", &v["type"]);
        }
    }
    if let Some(a) = r.get("arp") {
        for (t, h) in [
            ("arp.hw.type", "htype"),
            ("arp.proto.type", "ptype"),
            ("arp.hw.size", "hlen"),
            ("arp.proto.size", "plen"),
            ("arp.opcode", "op"),
            ("arp.src.hw_mac", "sender_mac"),
            ("arp.src.proto_ipv4", "sender_ip"),
            ("arp.dst.hw_mac", "target_mac"),
            ("arp.dst.proto_ipv4", "target_ip"),
        ] {
            if let Some(v) = a.get(h) {
                put(&mut f, t, v);
            }
        }
    }
    if let Some(ip) = r.get("ipv4") {
        for (t, h) in [
            ("ip.version", "version"),
            ("ip.dsfield.dscp", "dscp"),
            ("ip.dsfield.ecn", "ecn"),
            ("ip.len", "total_len"),
            ("ip.id", "id"),
            ("ip.flags.df", "df"),
            ("ip.flags.mf", "mf"),
            ("ip.ttl", "ttl"),
            ("ip.proto", "protocol"),
            ("ip.checksum", "checksum"),
            ("ip.src", "src"),
            ("ip.dst", "dst"),
        ] {
            put(&mut f, t, &ip[h]);
        }
        put(
            &mut f,
            "ip.hdr_len",
            &Value::from(ip["ihl"].as_u64().unwrap_or(0) * 4),
        );
        // hdrtap gives bytes (as tcpdump); tshark the header's 8-byte units.
        put(
            &mut f,
            "ip.frag_offset",
            &Value::from(ip["frag_offset"].as_u64().unwrap_or(u64::MAX) / 8),
        );
    }
    if let Some(ip) = r.get("ipv6") {
        for (t, h) in [
            ("ipv6.version", "version"),
            ("ipv6.tclass", "traffic_class"),
            ("ipv6.flow", "flow_label"),
            ("ipv6.plen", "payload_len"),
            ("ipv6.nxt", "next_header"),
            ("ipv6.hlim", "hop_limit"),
            ("ipv6.src", "src"),
            ("ipv6.dst", "dst"),
        ] {
            put(&mut f, t, &ip[h]);
        }
        // tshark's IPv6 dissector fills ip.version too.
        put(&mut f, "ip.version", &ip["version"]);
        for e in ip["ext"].as_array().into_iter().flatten() {
            let prefix = match e["type"].as_str() {
                Some("hop_by_hop") => "ipv6.hopopts",
                Some("dest_opts") => "ipv6.dstopts",
                Some("routing") => "ipv6.routing",
                Some("fragment") => "ipv6.fraghdr",
                _ => continue,
            };
            put(&mut f, &format!("{prefix}.nxt"), &e["next_header"]);
            if prefix == "ipv6.routing" {
                put(&mut f, "ipv6.routing.type", &e["routing_type"]);
                put(&mut f, "ipv6.routing.segleft", &e["segments_left"]);
            }
            if prefix == "ipv6.fraghdr" {
                put(
                    &mut f,
                    "ipv6.fraghdr.offset",
                    &Value::from(e["frag_offset"].as_u64().unwrap_or(u64::MAX) / 8),
                );
                put(&mut f, "ipv6.fraghdr.more", &e["more"]);
                put(&mut f, "ipv6.fraghdr.ident", &e["id"]);
            }
        }
    }
    if let Some(t) = r.get("tcp") {
        for (n, h) in [
            ("tcp.srcport", "sport"),
            ("tcp.dstport", "dport"),
            ("tcp.seq_raw", "seq"),
            ("tcp.ack_raw", "ack"),
            ("tcp.window_size_value", "window"),
            ("tcp.checksum", "checksum"),
            ("tcp.urgent_pointer", "urgent_ptr"),
            ("tcp.len", "payload_len"),
        ] {
            put(&mut f, n, &t[h]);
        }
        put(
            &mut f,
            "tcp.hdr_len",
            &Value::from(t["data_offset"].as_u64().unwrap_or(0) * 4),
        );
        let names = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];
        let bits: u64 = t["flags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| names.iter().position(|x| Some(*x) == n.as_str()))
            .map(|i| 1u64 << i)
            .sum();
        put(&mut f, "tcp.flags", &Value::from(bits));
        let o = &t["options"];
        put(&mut f, "tcp.options.mss_val", &o["mss"]);
        put(&mut f, "tcp.options.wscale.shift", &o["wscale"]);
        if o["sack_permitted"] == Value::Bool(true) {
            put(&mut f, "tcp.options.sack_perm", &Value::from(1));
        }
        for b in o["sack"].as_array().into_iter().flatten() {
            put(&mut f, "tcp.options.sack_le", &b[0]);
            put(&mut f, "tcp.options.sack_re", &b[1]);
        }
        put(&mut f, "tcp.options.timestamp.tsval", &o["ts_val"]);
        put(&mut f, "tcp.options.timestamp.tsecr", &o["ts_ecr"]);
    }
    if let Some(u) = r.get("udp") {
        for (n, h) in [
            ("udp.srcport", "sport"),
            ("udp.dstport", "dport"),
            ("udp.length", "len"),
            ("udp.checksum", "checksum"),
        ] {
            put(&mut f, n, &u[h]);
        }
    }
    for (key, prefix, id, seq) in [
        ("icmp", "icmp", "icmp.ident", "icmp.seq"),
        (
            "icmp6",
            "icmpv6",
            "icmpv6.echo.identifier",
            "icmpv6.echo.sequence_number",
        ),
    ] {
        if let Some(i) = r.get(key) {
            put(&mut f, &format!("{prefix}.type"), &i["type"]);
            put(&mut f, &format!("{prefix}.code"), &i["code"]);
            put(&mut f, &format!("{prefix}.checksum"), &i["checksum"]);
            if let Some(v) = i.get("id") {
                put(&mut f, id, v);
            }
            if let Some(v) = i.get("seq") {
                put(&mut f, seq, v);
            }
        }
    }
    f
}

/// Pair each tshark packet with an hdrtap record carrying the same value in
/// every field tshark dissected. Returns a description of every tshark
/// packet without a match (with the closest record and the differing
/// fields) and of every hdrtap record left over; empty when all agree.
pub fn compare(tshark: &[Fields], hdrtap: &[Fields]) -> Vec<String> {
    let mut used = vec![false; hdrtap.len()];
    let mut problems = Vec::new();
    for (ti, t) in tshark.iter().enumerate() {
        let matches = |h: &Fields| t.iter().all(|(k, v)| h.get(k) == Some(v));
        if let Some(j) = (0..hdrtap.len()).find(|&j| !used[j] && matches(&hdrtap[j])) {
            used[j] = true;
            continue;
        }
        // The closest unused record: most tshark fields equal.
        let best = (0..hdrtap.len()).filter(|&j| !used[j]).max_by_key(|&j| {
            t.iter()
                .filter(|(k, v)| hdrtap[j].get(*k) == Some(*v))
                .count()
        });
        let diff = match best {
            Some(j) => t
                .iter()
                .filter(|(k, v)| hdrtap[j].get(*k) != Some(*v))
                .map(|(k, v)| format!("{k}: tshark {v:?} hdrtap {:?}", hdrtap[j].get(k)))
                .collect::<Vec<_>>()
                .join("; "),
            None => "no hdrtap record left".into(),
        };
        problems.push(format!(
            "tshark packet #{} not matched by hdrtap: {diff}\n    tshark: {t:?}",
            ti + 1
        ));
    }
    for (j, h) in hdrtap.iter().enumerate() {
        if !used[j] {
            problems.push(format!("hdrtap record not seen by tshark: {h:?}"));
        }
    }
    problems
}

/// A running capture (dumpcap, through tshark) on one interface.
pub struct Tshark {
    child: Option<Child>,
    _dir: tempfile::TempDir,
    pcap: PathBuf,
    stderr: PathBuf,
}

impl Tshark {
    /// Start capturing on `iface` (through `wrapper`, e.g. `ip netns exec
    /// NS`) with an optional libpcap capture filter; returns once dumpcap
    /// says it is capturing.
    pub fn start(wrapper: &[&str], iface: &str, capture_filter: Option<&str>) -> Tshark {
        let dir = tempfile::Builder::new()
            .prefix("hdrtap-tshark-")
            .tempdir()
            .unwrap();
        let pcap = dir.path().join("cap.pcapng");
        let stderr = dir.path().join("stderr.txt");
        let mut cmd = Command::new(wrapper[0]);
        cmd.args(&wrapper[1..])
            .args(["tshark", "-i", iface, "-w"])
            .arg(&pcap);
        if let Some(f) = capture_filter {
            cmd.args(["-f", f]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("spawn tshark (apt-get install tshark)");
        let mut t = Tshark {
            child: Some(child),
            _dir: dir,
            pcap,
            stderr,
        };
        // tshark loads every dissector before dumpcap starts: seconds
        // natively, a minute or more in the kernel matrix's qemu (TCG) on a
        // busy machine (30 s was not always enough there).
        let deadline = Instant::now() + Duration::from_secs(150);
        loop {
            let err = fs::read_to_string(&t.stderr).unwrap_or_default();
            if err.contains("Capturing on") {
                break;
            }
            if let Some(status) = t.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("tshark exited ({status}) before capturing:\n{err}");
            }
            assert!(
                Instant::now() < deadline,
                "tshark did not start capturing:\n{err}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // dumpcap prints the line before its socket is fully set up (with a
        // capture filter, before the filter is attached): give it a moment
        // (the tests' begin markers cover the rest).
        std::thread::sleep(Duration::from_millis(500));
        t
    }

    /// Stop, then dissect every packet: (field map, raw layers).
    pub fn stop(self, snaplen: u64) -> Vec<(Fields, Value)> {
        self.stop_with_fields(snaplen, &[])
    }

    /// Stop, then dissect every packet asking for `extra` fields too (left
    /// in the raw layers).
    pub fn stop_with_fields(self, snaplen: u64, extra: &[&str]) -> Vec<(Fields, Value)> {
        self.stop_then(|pcap| dissect(pcap, snaplen, extra))
    }

    /// Stop, then hand the capture file to `f` (before it is deleted).
    pub fn stop_then<T>(mut self, f: impl FnOnce(&std::path::Path) -> T) -> T {
        let mut child = self.child.take().unwrap();
        hdrtap_tests::send_signal(child.id(), libc::SIGINT);
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "tshark did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
        f(&self.pcap)
    }
}

/// Every packet of the capture file `pcap` as tshark dissects it: (field
/// map, raw layers). `extra` fields are asked for too and left in the
/// layers (e.g. `frame.comment`), not in the field map.
pub fn dissect(pcap: &std::path::Path, snaplen: u64, extra: &[&str]) -> Vec<(Fields, Value)> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r")
        .arg(pcap)
        .args(["-o", "tcp.relative_sequence_numbers:FALSE", "-T", "json"]);
    for f in TSHARK_FIELDS
        .iter()
        .map(|f| f.0)
        .chain(extra.iter().copied())
    {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("run tshark -r");
    assert!(
        out.status.success(),
        "tshark -r failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Array(vec![]));
    v.as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let layers = p["_source"]["layers"].clone();
            (from_tshark(&layers, snaplen), layers)
        })
        .collect()
}

impl Drop for Tshark {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
