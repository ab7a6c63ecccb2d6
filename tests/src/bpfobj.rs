//! What BPF objects a process holds, and whether they still exist: for the
//! tests that kill hdrtap and check it left nothing behind.
use std::{
    collections::BTreeSet,
    fs,
    process::Command,
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

/// BPF object ids held by one process, read from `/proc/PID/fdinfo/*`
/// (`prog_id:`, `map_id:`, `link_id:` lines), so they are attributed exactly
/// even when other BPF tools run on the machine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BpfIds {
    pub progs: BTreeSet<u64>,
    pub maps: BTreeSet<u64>,
    pub links: BTreeSet<u64>,
    /// Descriptors of perf events (tracepoints, uprobes).
    pub perf_events: usize,
}

impl BpfIds {
    /// Every BPF object process `pid` holds a descriptor of now.
    pub fn of_process(pid: u32) -> BpfIds {
        let mut ids = BpfIds::default();
        let Ok(rd) = fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
            return ids;
        };
        for e in rd.flatten() {
            let fd = e.file_name();
            if let Ok(link) = fs::read_link(format!("/proc/{pid}/fd/{}", fd.to_string_lossy())) {
                if link.to_string_lossy().contains("perf_event") {
                    ids.perf_events += 1;
                }
            }
            let Ok(text) = fs::read_to_string(e.path()) else {
                continue;
            };
            for line in text.lines() {
                let mut parts = line.split(':');
                let (Some(k), Some(v)) = (parts.next(), parts.next()) else {
                    continue;
                };
                let Ok(v) = v.trim().parse::<u64>() else {
                    continue;
                };
                match k.trim() {
                    "prog_id" => ids.progs.insert(v),
                    "map_id" => ids.maps.insert(v),
                    "link_id" => ids.links.insert(v),
                    _ => false,
                };
            }
        }
        ids
    }

    /// Those of these objects the kernel still has (bpftool), by kind.
    pub fn still_alive(&self) -> BpfIds {
        let alive = |kind: &str, ids: &BTreeSet<u64>| -> BTreeSet<u64> {
            let now = bpftool_ids(kind);
            ids.intersection(&now).copied().collect()
        };
        BpfIds {
            progs: alive("prog", &self.progs),
            maps: alive("map", &self.maps),
            links: alive("link", &self.links),
            perf_events: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.progs.is_empty() && self.maps.is_empty() && self.links.is_empty()
    }
}

/// Ids of every BPF object of `kind` (`prog`, `map`, `link`) in the kernel.
pub fn bpftool_ids(kind: &str) -> BTreeSet<u64> {
    let out = Command::new("bpftool")
        .args(["-j", kind, "show"])
        .output()
        .unwrap_or_else(|e| panic!("bpftool (run scripts/setup.sh): {e}"));
    assert!(
        out.status.success(),
        "bpftool -j {kind} show: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Array(vec![]));
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["id"].as_u64())
        .collect()
}

/// `bpftool perf` entries (perf events with a BPF program: tracepoints,
/// kprobes, uprobes) that run one of `progs`.
pub fn perf_attachments_of(progs: &BTreeSet<u64>) -> Vec<Value> {
    let out = Command::new("bpftool")
        .args(["-j", "perf"])
        .output()
        .expect("bpftool perf");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Array(vec![]));
    v.as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["prog_id"].as_u64().is_some_and(|id| progs.contains(&id)))
        .cloned()
        .collect()
}

/// Wait until `f` holds (5 s at most: programs are freed after an RCU grace
/// period once the last reference goes); panic with `what()` otherwise.
pub fn eventually(what: impl Fn() -> String, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(Instant::now() < deadline, "{}", what());
        thread::sleep(Duration::from_millis(100));
    }
}

/// The text of the tracefs file listing trace_uprobe/kprobe definitions.
pub fn tracefs_file(name: &str) -> String {
    fs::read_to_string(format!("/sys/kernel/tracing/{name}")).unwrap_or_default()
}

/// Resident set size and its peak (VmRSS, VmHWM) of `pid`, in KiB.
pub fn rss_kib(pid: u32) -> (u64, u64) {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Where a process's resident memory is, from /proc/PID/smaps, in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resident {
    /// Everything (VmRSS).
    pub total: u64,
    /// Mappings of files: the executable and shared libraries (shared,
    /// reclaimable, fixed: a debug build's text is 10+ MiB).
    pub files: u64,
    /// BPF map mappings (the ring buffer). The kernel maps a ring's data
    /// pages twice, back to back, so a 16 MiB ring shows as 32 MiB here.
    pub bpf_maps: u64,
    /// The rest: heap, stacks, anonymous mappings.
    pub private: u64,
}

impl Resident {
    /// Memory hdrtap itself takes from the machine: private memory plus
    /// the ring buffer's pages counted once.
    pub fn own(&self) -> u64 {
        self.private + self.bpf_maps / 2
    }
}

/// [`Resident`] of `pid` now.
pub fn resident_kib(pid: u32) -> Resident {
    let smaps = fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let mut r = Resident::default();
    let mut name = String::new();
    for line in smaps.lines() {
        if let Some(kb) = line.strip_prefix("Rss:") {
            let kb: u64 = kb.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
            r.total += kb;
            if name.starts_with('/') {
                r.files += kb;
            } else if name.starts_with("anon_inode:bpf-map") {
                r.bpf_maps += kb;
            } else {
                r.private += kb;
            }
        } else if line.split_whitespace().next().is_some_and(|w| {
            w.contains('-') && w.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
        }) {
            name = line.split_whitespace().nth(5).unwrap_or("").to_string();
        }
    }
    r
}

/// A line of `/proc/PID/status`, e.g. `CapEff`, parsed as hex.
pub fn status_hex(pid: u32, name: &str) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
}
