//! SIGKILL during capture leaves nothing behind: for every hook (`hdrtap
//! http`: syscall tracepoints and the OpenSSL uprobes; `hdrtap packets`: tc
//! as TCX links, XDP, the socket filter, and the clsact fallback), every
//! BPF program, map and link hdrtap held (read from its /proc/PID/fdinfo
//! before the kill, so other BPF users on the machine do not matter) is gone
//! from the kernel afterwards (bpftool), no perf event still runs one of its
//! programs (bpftool perf: tracepoints, uprobes), tracefs' uprobe/kprobe
//! lists are unchanged, and the interface has the qdiscs, tc filters and XDP
//! state it had before (tc, ip link). Root only.
#![forbid(unsafe_code)]
#[path = "netns/mod.rs"]
mod netns;

use std::process::Command;

use hdrtap_tests::*;
use netns::*;

/// SIGKILL hdrtap, reap it, and check that `held` disappears.
fn kill_and_check(what: &str, hd: Hdrtap, held: &BpfIds) {
    assert!(
        !held.progs.is_empty() && !held.maps.is_empty(),
        "{what}: hdrtap holds no BPF programs or maps? {held:?}"
    );
    let pid = hd.pid();
    send_signal(pid, libc::SIGKILL);
    drop(hd); // reaps it
    eventually(
        || {
            format!(
                "{what}: left in the kernel after SIGKILL: {:?} (held {held:?})",
                held.still_alive()
            )
        },
        || held.still_alive().is_empty(),
    );
    let perf = perf_attachments_of(&held.progs);
    assert!(
        perf.is_empty(),
        "{what}: perf events still run hdrtap's programs: {perf:?}"
    );
}

fn sh(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&run(cmd).stdout).into_owned()
}

#[test]
fn sigkill_of_http_capture_leaves_no_tracepoint_uprobe_or_map() {
    let _guard = setup();
    // An HTTPS server maps libssl.so.3, so the OpenSSL uprobes get attached.
    let nginx = Nginx::start_tls();
    let uprobe_events = tracefs_file("uprobe_events");
    let kprobe_events = tracefs_file("kprobe_events");
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string()]);
    let held = BpfIds::of_process(hd.pid());
    let stderr = std::fs::read_to_string(hd.dir().join("stderr.txt")).unwrap();
    assert!(
        stderr.contains("libssl.so.3"),
        "the OpenSSL uprobes were not attached, nothing to check:\n{stderr}"
    );
    // Tracepoints (31 syscall programs) and uprobes are perf events with a
    // program, or links holding them.
    let perf = perf_attachments_of(&held.progs);
    assert!(
        perf.iter()
            .any(|e| e["fd_type"] == "uprobe" || e["fd_type"] == "uretprobe"),
        "no uprobe of hdrtap in bpftool perf: {perf:?}"
    );
    assert!(
        perf.iter().any(|e| e["fd_type"] == "tracepoint"),
        "no tracepoint of hdrtap in bpftool perf: {perf:?}"
    );
    // Traffic while it runs, so that every path has been used.
    let id = unique_id("kill");
    curl(&[CurlRequest::get(nginx.url_v4("/"), &id, 1)]);
    kill_and_check("http", hd, &held);
    assert_eq!(
        tracefs_file("uprobe_events"),
        uprobe_events,
        "uprobe_events changed"
    );
    assert_eq!(
        tracefs_file("kprobe_events"),
        kprobe_events,
        "kprobe_events changed"
    );
}

/// (qdiscs, ingress filters, egress filters, `ip -d link`) of pka.
fn iface_state(t: &Topology) -> [String; 4] {
    let tc = |args: &[&str]| sh(t.in_a("tc").args(args));
    [
        tc(&["qdisc", "show", "dev", IF_A]),
        tc(&["filter", "show", "dev", IF_A, "ingress"]),
        tc(&["filter", "show", "dev", IF_A, "egress"]),
        sh(Command::new("ip").args(["-n", &t.ns_a, "-d", "link", "show", IF_A])),
    ]
}

#[test]
fn sigkill_of_packet_capture_leaves_no_link_filter_qdisc_or_xdp() {
    let _guard = setup();
    let topo = Topology::new();
    let clean = iface_state(&topo);
    assert!(
        !clean[3].contains("prog/xdp"),
        "XDP already attached: {}",
        clean[3]
    );
    // Without TCX links (before 6.6) `auto` falls back to clsact.
    let tc_auto = if kernel_has_tcx() { "tcx" } else { "clsact" };
    for (hook, extra, expect) in [
        ("tc", vec![], tc_auto),
        ("xdp", vec![], "xdp"),
        ("socket", vec![], "af_packet"),
        ("tc", vec!["--no-process"], tc_auto),
        // The fallback for kernels without TCX: netlink filters on a clsact
        // qdisc, which the kernel does not tie to hdrtap's life.
        ("tc", vec!["--tc-attach", "clsact"], "clsact"),
    ] {
        let what = format!("--hook {hook} {extra:?}");
        let mut args = vec!["-i", IF_A, "--hook", hook];
        args.extend(&extra);
        let hd = Hdrtap::start_wrapped(&topo.wrapper_a(), &["packets", "--json"], &args);
        let stderr = std::fs::read_to_string(hd.dir().join("stderr.txt")).unwrap();
        assert!(stderr.contains(expect), "{what}: {stderr}");
        let during = iface_state(&topo);
        match hook {
            "xdp" => assert!(during[3].contains("prog/xdp"), "{what}: {}", during[3]),
            "tc" if expect == "clsact" => {
                assert!(during[1].contains("tc_ingress"), "{what}: {}", during[1])
            }
            _ => {}
        }
        // Packets while it runs.
        run(topo
            .in_a("ping")
            .args(["-c", "2", "-i", "0.2", "-W", "1", "10.77.0.2"]));
        let held = BpfIds::of_process(hd.pid());
        kill_and_check(&what, hd, &held);
        eventually(
            || {
                format!(
                    "{what}: interface state after SIGKILL differs:\n{:#?}\nbefore:\n{clean:#?}",
                    iface_state(&topo)
                )
            },
            || iface_state(&topo) == clean,
        );
    }
}
