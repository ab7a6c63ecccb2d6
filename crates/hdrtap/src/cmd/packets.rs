//! `hdrtap packets`: tc / XDP / socket-filter programs → ring buffer →
//! decode every header → output.
use std::cell::RefCell;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use hdrtap_bpf::packets::{
    interfaces, Attached, Directions, Interface, OwnerMode, PacketOptions, PacketProbe, TcMode,
};
use hdrtap_bpf::{caps, sys, RingBuffer};
use hdrtap_core::cgroup::Cgroups;
use hdrtap_core::filter;
use hdrtap_core::output::{rotated_name, Format, Writer};
use hdrtap_core::packet::flag;
use hdrtap_core::pipeline::PacketPipeline;
use hdrtap_core::sink::Record;
use hdrtap_core::stats::PacketStats;

use super::common::{self, Control, Output, Session};
use crate::cli::{DirectionArg, PacketsArgs, TcAttachArg};
use hdrtap_abi::{self as abi, Hook};

struct PacketSession<'a> {
    probe: &'a PacketProbe,
    ring: RingBuffer<'a>,
    pipeline: Rc<RefCell<PacketPipeline>>,
    stats: PacketStats,
}

impl Session for PacketSession<'_> {
    type Stats = PacketStats;
    const SOURCE: &'static str = "packets";

    fn poll(&mut self, timeout: Duration) -> anyhow::Result<()> {
        PacketProbe::poll(&self.ring, timeout).context("reading the ring buffer")
    }

    fn drain(&mut self, out: &mut Vec<Record>) {
        self.pipeline.borrow_mut().drain(out);
    }

    fn count(&mut self, rec: &Record) {
        if let Record::Packet(rec) = rec {
            let s = &mut self.stats;
            s.records += 1;
            let has = |f| rec.headers.flags.contains(&f);
            s.truncated += u64::from(has(flag::TRUNCATED));
            s.malformed += u64::from(has(flag::MALFORMED));
            s.fragments += u64::from(has(flag::FRAGMENT));
            s.snapped += u64::from(has(flag::SNAPPED));
            s.with_process += u64::from(rec.owner.is_some());
        }
    }

    fn ring_fill(&self) -> Option<(u64, u64)> {
        hdrtap_bpf::ring_fill(&self.ring)
    }

    fn finish(&mut self) {
        let _ = self.ring.consume();
    }

    fn stats(&mut self) -> &PacketStats {
        match self.probe.counters() {
            Ok(c) => self.stats.set_kernel(&c),
            Err(e) => tracing::warn!("cannot read kernel counters: {e}"),
        }
        self.stats.decode_errors = self.pipeline.borrow().decode_errors;
        &self.stats
    }

    fn output_error(&mut self) {
        self.stats.output_errors += 1;
    }

    fn summary(&self) -> Vec<String> {
        let mut lines = vec![self.stats.summary()];
        let panics = self.pipeline.borrow().panics;
        if panics > 0 {
            lines.push(format!("hdrtap: {panics} events hit an internal error and were dropped (please report this)"));
        }
        lines
    }
}

/// The interfaces to capture on: the ones named, or (none named, or `any`)
/// every interface that is up and has a link layer hdrtap decodes.
pub(crate) fn pick_interfaces(named: &[String]) -> anyhow::Result<Vec<Interface>> {
    let all = interfaces().context("cannot list network interfaces (/sys/class/net)")?;
    // `-i any`, as in tcpdump: every interface that is up.
    if named.is_empty() || named.iter().any(|n| n == "any") {
        let picked: Vec<Interface> = all
            .into_iter()
            .filter(|i| {
                let ok = i.up && i.link().is_some();
                if i.up && !ok {
                    tracing::info!("skipping {}: link type {} is not decoded", i.name, i.arphrd);
                }
                ok
            })
            .collect();
        if picked.is_empty() {
            bail!("no interface is up (name one with -i)");
        }
        return Ok(picked);
    }
    let mut out = Vec::new();
    for name in named {
        let Some(i) = all.iter().find(|i| &i.name == name) else {
            bail!("no such interface: {name} (see ip link)");
        };
        if i.link().is_none() {
            bail!("interface {name} has link type {}, which hdrtap does not decode (Ethernet, loopback, raw IP)", i.arphrd);
        }
        if !out.contains(i) {
            out.push(i.clone());
        }
    }
    Ok(out)
}

pub fn run(args: &PacketsArgs) -> anyhow::Result<ExitCode> {
    let ctl = Control::cli(&args.common)?;
    let output = || match &args.write {
        Some(path) => pcapng_output(args, path),
        None => common::direct_output(&args.common, |_| Default::default()),
    };
    Ok(common::print_summary(capture(args, output, ctl)?))
}

/// `-w FILE`: packets as pcapng to the file (or stdout), and with --print
/// readable lines on stdout besides.
fn pcapng_output(args: &PacketsArgs, path: &std::path::Path) -> anyhow::Result<Output> {
    let to_stdout = path.as_os_str() == "-";
    if to_stdout && args.common.print {
        bail!("--print and -w - would both write to stdout: give -w a file");
    }
    if to_stdout && sys::is_tty(1) {
        bail!(
            "-w - writes binary pcapng: pipe it (hdrtap packets -w - | tshark -r -) or give a file"
        );
    }
    if to_stdout && args.rotate_mb.is_some() {
        bail!("-C rotates capture files: give -w a file, not -");
    }
    let first = rotated_name(path, 0, args.rotate_files);
    let mut writer = if to_stdout {
        Writer::new(Box::new(std::io::stdout()), Format::Json, false)
    } else {
        Writer::file(&first, Format::Json)
            .with_context(|| format!("cannot open capture file {}", first.display()))?
    }
    .pcapng(args.snaplen);
    if let Some(mb) = args.rotate_mb {
        writer = writer.rotate(path, mb.saturating_mul(1_000_000), args.rotate_files);
    }
    let print = args
        .common
        .print
        .then(|| Writer::stdout(Format::Human, sys::is_tty(1)));
    Ok(Output::Direct(writer, print))
}

/// Check the arguments and privileges, load and attach the packet capture,
/// then run it to the end. `make_output` is called once the arguments are
/// checked and before anything is loaded. Returns the summary lines.
pub fn capture(
    args: &PacketsArgs,
    make_output: impl FnOnce() -> anyhow::Result<Output>,
    mut ctl: Control,
) -> anyhow::Result<Vec<String>> {
    let unmet = caps::unmet(&caps::packets_needs(args.hook), caps::effective());
    if !unmet.is_empty() {
        bail!(
            "hdrtap packets needs root or these capabilities: {} (see docs/PRIVILEGES.md)",
            caps::describe_unmet(&unmet)
        );
    }
    let expr = args.filter.join(" ");
    let program = filter::compile(&expr).map_err(|e| anyhow::anyhow!("{e}"))?;
    let ifaces = pick_interfaces(&args.interfaces)?;
    let iface_dirs: Vec<Directions> = ifaces
        .iter()
        .map(|i| directions(args.direction, i.is_loopback()))
        .collect();
    if args.hook == Hook::Xdp && iface_dirs.iter().any(|d| !d.ingress) {
        bail!("XDP sees received packets only: use --hook tc or --hook socket for --direction out");
    }
    // The programs' direction mask: per interface, tc attaches only the
    // wanted hooks and the socket ignores outgoing packets when asked.
    let any_dirs = iface_dirs
        .iter()
        .copied()
        .fold(Directions::NONE, Directions::union);
    let mut output = make_output()?;

    let opts = PacketOptions {
        snaplen: args.snaplen,
        sample: args.sample,
        directions: any_dirs,
        owners: !args.no_process,
        owner_fallback: false,
        ring_bytes: args.common.ring_mib << 20,
        l7: false,
    };
    let mut probe = PacketProbe::load(&opts).context("cannot load the packet capture programs")?;
    probe
        .set_filter(&program.encode())
        .context("cannot install the filter")?;
    let tc_mode = match args.tc_attach {
        TcAttachArg::Auto => TcMode::Auto,
        TcAttachArg::Tcx => TcMode::Tcx,
        TcAttachArg::Clsact => TcMode::Clsact,
    };
    let (described, clsact) = attach_each(&mut probe, &ifaces, &iface_dirs, args.hook, tc_mode)?;
    if args.drop_caps {
        // clsact filters (and a qdisc hdrtap added) are removed at exit over
        // netlink; TCX/XDP links and sockets go with their descriptors.
        let keep = if clsact {
            caps::CapSet::of(&[caps::Cap::NET_ADMIN])
        } else {
            caps::CapSet::EMPTY
        };
        let kept = caps::drop_except(keep).context("--drop-caps: cannot drop capabilities")?;
        if !args.common.quiet {
            eprintln!("hdrtap: capabilities dropped; kept: {}", kept.names());
        }
    }

    let pipeline = pipeline(&ifaces, Arc::clone(&ctl.ids), args.write.is_some());
    let ring = ring(&probe, &pipeline)?;

    let mut extras = Vec::new();
    if !program.insns.is_empty() {
        extras.push(format!(
            "filter '{}' ({} kernel instructions)",
            program.source,
            program.insns.len()
        ));
    }
    extras.push(format!("snaplen {}", args.snaplen));
    if args.sample > 1 {
        extras.push(format!("1 in {} sampled", args.sample));
    }
    match probe.owners() {
        OwnerMode::SockTracepoints => {}
        OwnerMode::Syscalls => {
            extras.push("process attribution from syscalls (no sock_send_length tracepoint)".into())
        }
        OwnerMode::Off => extras.push("no process attribution".into()),
    }
    let what = format!(
        "capturing packets on {}; {}",
        described.join(", "),
        extras.join(", ")
    );
    ctl.take_on_ready()(&what)?;

    let mut session = PacketSession {
        probe: &probe,
        ring,
        pipeline,
        stats: PacketStats::default(),
    };
    common::run_loop(&mut session, &mut output, &ctl)
}

/// The decoding pipeline of packets captured on `ifaces`, records with
/// their bytes if `keep_frames`.
pub(crate) fn pipeline(
    ifaces: &[Interface],
    ids: Arc<common::Ids>,
    keep_frames: bool,
) -> Rc<RefCell<PacketPipeline>> {
    let pipeline = PacketPipeline::new(
        ifaces
            .iter()
            .map(|i| (i.index, i.name.as_str().into()))
            .collect(),
        // An interface that appeared after start (or an index never seen).
        Box::new(|ifindex| {
            interfaces()
                .ok()?
                .into_iter()
                .find(|i| i.index == ifindex)
                .map(|i| i.name)
        }),
        sys::monotonic_to_realtime_offset_ns(),
        ids,
    )
    .keep_frames(keep_frames);
    // Packets whose process is known name its unit, container and pod.
    Rc::new(RefCell::new(match Cgroups::system() {
        Some(cg) => pipeline.with_cgroups(cg),
        None => pipeline,
    }))
}

/// The ring buffer of `probe`, feeding `pipeline` ([`common::ring_callback`]).
pub(crate) fn ring<'a>(
    probe: &'a PacketProbe,
    pipeline: &Rc<RefCell<PacketPipeline>>,
) -> anyhow::Result<RingBuffer<'a>> {
    probe
        .ring_buffer(common::ring_callback(pipeline))
        .context("cannot open the ring buffer")
}

/// `hdrtap http --with-packets`: TCP packets, by tc, on the interfaces
/// named (every one that is up when none is), attributed to processes.
/// Returns the loaded and attached capture, its interfaces and what it
/// captures (for the start-up line).
pub(crate) fn capture_for_link(
    named: &[String],
    ring_bytes: u32,
) -> anyhow::Result<(PacketProbe, Vec<Interface>, String)> {
    let unmet = caps::unmet(&caps::packets_needs(Hook::Tc), caps::effective());
    if !unmet.is_empty() {
        bail!(
            "--with-packets needs root or these capabilities: {} (see docs/PRIVILEGES.md)",
            caps::describe_unmet(&unmet)
        );
    }
    let ifaces = pick_interfaces(named)?;
    let opts = PacketOptions {
        snaplen: abi::HDRTAP_PKT_SNAPLEN_DEFAULT,
        sample: 1,
        directions: Directions::BOTH,
        owners: true,
        owner_fallback: false,
        ring_bytes,
        l7: false,
    };
    let mut probe = PacketProbe::load(&opts).context("cannot load the packet capture programs")?;
    let tcp = filter::compile("tcp").map_err(|e| anyhow::anyhow!("{e}"))?;
    probe
        .set_filter(&tcp.encode())
        .context("cannot install the filter")?;
    let dirs: Vec<Directions> = ifaces
        .iter()
        .map(|i| directions(DirectionArg::Auto, i.is_loopback()))
        .collect();
    let (described, _) = attach_each(&mut probe, &ifaces, &dirs, Hook::Tc, TcMode::Auto)?;
    Ok((probe, ifaces, described.join(", ")))
}

/// Attach `probe`'s `hook` to each interface for its directions (`dirs`,
/// in the same order), the interface table filled first. Returns what each
/// attachment is, for the start-up line, and whether a clsact filter was
/// added (removing it at exit needs CAP_NET_ADMIN).
pub(crate) fn attach_each(
    probe: &mut PacketProbe,
    ifaces: &[Interface],
    dirs: &[Directions],
    hook: Hook,
    tc_mode: TcMode,
) -> anyhow::Result<(Vec<String>, bool)> {
    let mut described = Vec::new();
    let mut clsact = false;
    for (i, &d) in ifaces.iter().zip(dirs) {
        if let Some(link) = i.link() {
            probe
                .set_link(i.index, link)
                .context("cannot configure the interface table")?;
        }
        let how = match hook {
            Hook::Tc => probe.attach_tc(i.index, d, tc_mode),
            Hook::Xdp => probe.attach_xdp(i.index),
            Hook::Socket => probe.attach_socket(i.index, d),
        }
        .with_context(|| format!("cannot attach to {}", i.name))?;
        clsact |= matches!(how, Attached::Clsact { .. });
        described.push(format!("{} ({})", i.name, describe(how, hook, d)));
    }
    Ok((described, clsact))
}

/// The directions to capture on one interface. `auto` takes one copy of
/// each packet on a loopback interface, the received one: tcpdump shows lo
/// that way (libpcap ignores the outgoing copies there), and half the
/// records cost half as much.
pub(crate) fn directions(arg: DirectionArg, loopback: bool) -> Directions {
    match arg {
        DirectionArg::Auto if loopback => Directions::IN,
        DirectionArg::Auto | DirectionArg::Both => Directions::BOTH,
        DirectionArg::In => Directions::IN,
        DirectionArg::Out => Directions::OUT,
    }
}

fn describe(how: Attached, hook: Hook, dirs: Directions) -> String {
    let d = match (dirs.ingress, dirs.egress) {
        (true, true) => "in+out",
        (true, false) => "in",
        _ => "out",
    };
    match (hook, how) {
        (Hook::Xdp, _) => format!("{}, in", how.describe()),
        (
            _,
            Attached::Clsact {
                created_qdisc: true,
            },
        ) => format!("tc clsact (qdisc added), {d}"),
        (_, Attached::Clsact { .. }) => format!("tc clsact, {d}"),
        (_, Attached::Tcx) => format!("tcx, {d}"),
        _ => format!("{}, {d}", how.describe()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_takes_one_copy_on_loopback_only() {
        use DirectionArg::*;
        let want = [
            (Auto, true, Directions::IN),
            (Auto, false, Directions::BOTH),
            (Both, true, Directions::BOTH),
            (In, false, Directions::IN),
            (Out, true, Directions::OUT),
        ];
        for (arg, lo, dirs) in want {
            assert_eq!(directions(arg, lo), dirs, "{arg:?} loopback={lo}");
        }
    }
}
