//! A private two-namespace topology for the packet tests:
//!
//! ```text
//!   netns A                              netns B
//!   pka 10.77.0.1/24 fd77::1/64  <--veth-->  pkb 10.77.0.2/24 fd77::2/64
//! ```
//!
//! Both namespaces (and so the veth pair) belong to the test and are deleted
//! on drop. No traffic ever leaves them. The kernel here has no 802.1Q
//! devices (CONFIG_VLAN_8021Q off), so VLAN and QinQ traffic is hand-built
//! and sent through an AF_PACKET socket on pkb ([`Topology::inject`]).
#![allow(dead_code)]

use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const IF_A: &str = "pka";
pub const IF_B: &str = "pkb";
pub const IP4_A: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
pub const IP4_B: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);

pub fn ip6_a() -> Ipv6Addr {
    "fd77::1".parse().unwrap()
}
pub fn ip6_b() -> Ipv6Addr {
    "fd77::2".parse().unwrap()
}

/// The python helpers next to this file.
pub fn helper(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("netns")
        .join(name)
}

/// Run a command; panic with its output unless it succeeds.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn ip(args: &[&str]) -> Output {
    run(Command::new("ip").args(args))
}

pub struct Topology {
    pub ns_a: String,
    pub ns_b: String,
    pub mac_a: String,
    pub mac_b: String,
}

impl Topology {
    /// Create both namespaces and the veth pair, addresses up, quiet:
    /// no IPv6 router solicitations, no DAD, so that the only packets on
    /// the link are the ones the test sends (and the neighbour discovery
    /// they cause).
    pub fn new() -> Topology {
        static N: AtomicU32 = AtomicU32::new(0);
        remove_stale();
        let id = format!(
            "{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let mut t = Topology {
            ns_a: format!("hdtpk-{id}-a"),
            ns_b: format!("hdtpk-{id}-b"),
            mac_a: String::new(),
            mac_b: String::new(),
        };
        ip(&["netns", "add", &t.ns_a]);
        ip(&["netns", "add", &t.ns_b]);
        ip(&[
            "link", "add", IF_A, "netns", &t.ns_a, "type", "veth", "peer", "name", IF_B, "netns",
            &t.ns_b,
        ]);
        for (ns, dev, v4, v6) in [
            (&t.ns_a, IF_A, "10.77.0.1/24", "fd77::1/64"),
            (&t.ns_b, IF_B, "10.77.0.2/24", "fd77::2/64"),
        ] {
            for (k, v) in [
                ("net.ipv6.conf.all.router_solicitations", "0"),
                ("net.ipv6.conf.default.router_solicitations", "0"),
                ("net.ipv6.conf.default.accept_dad", "0"),
                ("net.ipv6.conf.all.accept_dad", "0"),
                ("net.ipv6.conf.default.dad_transmits", "0"),
            ] {
                run(Command::new("ip").args([
                    "netns",
                    "exec",
                    ns,
                    "sysctl",
                    "-qw",
                    &format!("{k}={v}"),
                ]));
            }
            ip(&["-n", ns, "addr", "add", v4, "dev", dev]);
            ip(&["-n", ns, "addr", "add", v6, "dev", dev, "nodad"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
        let mac = |ns: &str, dev: &str| {
            let out = ip(&["-n", ns, "-o", "link", "show", dev]);
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            text.split_whitespace()
                .skip_while(|w| *w != "link/ether")
                .nth(1)
                .unwrap_or_else(|| panic!("no MAC in {text}"))
                .to_string()
        };
        t.mac_a = mac(&t.ns_a, IF_A);
        t.mac_b = mac(&t.ns_b, IF_B);
        // Let the link settle (link-local address, MLD reports) before any
        // capture starts.
        t.wait_quiet();
        t
    }

    /// `ip netns exec A ...`
    pub fn in_a(&self, prog: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns_a, prog]);
        c
    }

    /// `ip netns exec B ...`
    pub fn in_b(&self, prog: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns_b, prog]);
        c
    }

    /// The wrapper that runs a program in namespace A.
    pub fn wrapper_a(&self) -> Vec<&str> {
        vec!["ip", "netns", "exec", &self.ns_a]
    }

    /// Wait until the interfaces have been up for a moment.
    fn wait_quiet(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let out = ip(&["-n", &self.ns_a, "-6", "addr", "show", "dev", IF_A]);
            if String::from_utf8_lossy(&out.stdout).contains("fe80::") {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(700));
    }

    /// Send hand-built Ethernet frames out of pkb (so they arrive on pka).
    pub fn inject(&self, frames: &[Vec<u8>]) {
        let mut child = self
            .in_b("python3")
            .arg(helper("inject.py"))
            .arg(IF_B)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn inject.py");
        {
            let stdin = child.stdin.as_mut().unwrap();
            for f in frames {
                let hex: String = f.iter().map(|b| format!("{b:02x}")).collect();
                writeln!(stdin, "{hex}").unwrap();
            }
        }
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "inject.py: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Start a background program in B (killed on drop of the guard).
    pub fn spawn_b(&self, prog: &str, args: &[&str]) -> ChildGuard {
        let child = self
            .in_b(prog)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {prog}: {e}"));
        ChildGuard(child)
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for ns in [&self.ns_a, &self.ns_b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// Namespaces left by an earlier run that died (its pid is gone).
fn remove_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix("hdtpk-") else {
            continue;
        };
        let pid: u32 = rest
            .split('-')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        if pid != 0
            && pid != std::process::id()
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = Command::new("ip").args(["netns", "del", name]).output();
        }
    }
}

/// Give `dev` in namespace `ns` MTU 576 and no GSO, so that header blocks
/// and bodies leave in many small segments.
pub fn small_segments(ns: &str, dev: &str) {
    ip(&[
        "-n",
        ns,
        "link",
        "set",
        dev,
        "mtu",
        "576",
        "gso_max_segs",
        "1",
    ]);
}

/// Load nftables `rules` with `nft` (a command to run it, e.g. in a
/// namespace): the tests' segment drops, as this kernel has no netem.
pub fn nft(mut nft: Command, rules: &str) {
    let mut child = nft
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn nft (apt-get install nftables)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(rules.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "nft failed: {rules}");
}

/// A child killed when dropped.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
