//! clsact filters outlive a killed hdrtap: unlike TCX and XDP links, a tc
//! filter added over netlink belongs to the interface, not to a descriptor,
//! so `kill -9` used to leave hdrtap's filters (and the qdisc it added)
//! running. The fix: with each clsact attachment, hdrtap starts a small
//! helper — itself, re-executed as `hdrtap __clsact-reaper ...` — that
//! holds the read end of a pipe whose write end only hdrtap has. When hdrtap
//! ends in any way, the pipe reaches end-of-file; the helper then removes
//! the filters that are still there and still run hdrtap's programs (after
//! an orderly exit hdrtap has removed them itself, so it finds none), the
//! qdisc too if hdrtap created it, and exits.
//!
//! The helper keeps only CAP_NET_ADMIN, ignores SIGINT/SIGTERM/SIGHUP (a
//! Ctrl-C reaches the whole process group; hdrtap cleans up itself then), and
//! allocates nothing between fork and exec (std's `Command` does the exec).

use std::io::{self, Read};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};

use libbpf_rs::libbpf_sys;

use crate::caps::{self, Cap, CapSet};

/// The argument that makes `hdrtap` run as the helper (see [`main_if_reaper`]).
pub const ARG: &str = "__clsact-reaper";

/// One clsact filter hdrtap attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filter {
    pub ifindex: i32,
    /// `BPF_TC_INGRESS` or `BPF_TC_EGRESS`.
    pub point: u32,
    pub handle: u32,
    pub priority: u32,
    /// The program it runs (so a filter replaced since is left alone).
    pub prog_id: u32,
}

impl Filter {
    fn arg(&self) -> String {
        format!(
            "{}:{}:{}:{}:{}",
            self.ifindex, self.point, self.handle, self.priority, self.prog_id
        )
    }

    fn parse(s: &str) -> Option<Filter> {
        let mut it = s.split(':').map(|p| p.parse::<i64>().ok());
        let mut next = || it.next().flatten();
        Some(Filter {
            ifindex: i32::try_from(next()?).ok()?,
            point: u32::try_from(next()?).ok()?,
            handle: u32::try_from(next()?).ok()?,
            priority: u32::try_from(next()?).ok()?,
            prog_id: u32::try_from(next()?).ok()?,
        })
    }

    fn hook(&self) -> libbpf_sys::bpf_tc_hook {
        // SAFETY: bpf_tc_hook is plain old data; zero is its default.
        let mut hook: libbpf_sys::bpf_tc_hook = unsafe { std::mem::zeroed() };
        hook.sz = std::mem::size_of::<libbpf_sys::bpf_tc_hook>() as libbpf_sys::size_t;
        hook.ifindex = self.ifindex;
        hook.attach_point = self.point;
        hook
    }

    fn opts(&self) -> libbpf_sys::bpf_tc_opts {
        // SAFETY: bpf_tc_opts is plain old data; zero is its default.
        let mut opts: libbpf_sys::bpf_tc_opts = unsafe { std::mem::zeroed() };
        opts.sz = std::mem::size_of::<libbpf_sys::bpf_tc_opts>() as libbpf_sys::size_t;
        opts.handle = self.handle;
        opts.priority = self.priority;
        opts
    }

    /// The id of the program the filter runs now, if it exists.
    pub fn query(&self) -> Option<u32> {
        let hook = self.hook();
        let mut opts = self.opts();
        // SAFETY: hook and opts are valid, initialized structs for the call.
        let rc = unsafe { libbpf_sys::bpf_tc_query(&hook, &mut opts) };
        (rc == 0).then_some(opts.prog_id)
    }

    fn detach(&self) -> bool {
        let hook = self.hook();
        let opts = self.opts();
        // SAFETY: hook and opts are valid, initialized structs for the call;
        // opts has only handle and priority set, as bpf_tc_detach requires.
        unsafe { libbpf_sys::bpf_tc_detach(&hook, &opts) == 0 }
    }
}

/// The running helper; dropping it (or hdrtap ending) lets it act.
#[derive(Debug)]
pub struct Reaper {
    _pipe: OwnedFd,
}

/// Start the helper for `filters`; `qdisc_of` is the interface whose clsact
/// qdisc hdrtap created (to remove as well), if any.
pub fn spawn(filters: &[Filter], qdisc_of: Option<i32>) -> io::Result<Reaper> {
    let mut fds = [0i32; 2];
    // SAFETY: fds is a valid array of two ints for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 returned two new descriptors that nothing else owns.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg(ARG)
        .arg(std::process::id().to_string())
        .arg(qdisc_of.map_or("-".to_string(), |i| i.to_string()))
        .args(filters.iter().map(Filter::arg))
        .stdin(Stdio::from(read))
        .stdout(Stdio::null());
    cmd.spawn()?;
    Ok(Reaper { _pipe: write })
}

/// If this process was started as the helper (`hdrtap __clsact-reaper PID
/// QDISC_IFINDEX FILTER...`), do its job and return the exit code; None
/// otherwise. Call first thing in `main`.
pub fn main_if_reaper() -> Option<u8> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) != Some(ARG) {
        return None;
    }
    let parent = args.get(2).cloned().unwrap_or_default();
    let qdisc_of: Option<i32> = args.get(3).and_then(|s| s.parse().ok());
    let filters: Vec<Filter> = args
        .iter()
        .skip(4)
        .filter_map(|s| Filter::parse(s))
        .collect();
    // SAFETY: setting signal dispositions to SIG_IGN has no preconditions.
    unsafe {
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGPIPE] {
            libc::signal(sig, libc::SIG_IGN);
        }
    }
    let _ = caps::drop_except(CapSet::of(&[Cap::NET_ADMIN]));
    // The query of a filter whose qdisc hdrtap already removed makes the
    // kernel answer "Parent Qdisc doesn't exists", which libbpf would print
    // after hdrtap's summary: that is the expected answer here, not news.
    let _ = libbpf_rs::set_print(None);
    // Block until hdrtap is gone (end-of-file: every write end closed).
    let mut buf = [0u8; 64];
    let mut stdin = io::stdin().lock();
    loop {
        match stdin.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    let mut removed = 0;
    for f in &filters {
        if f.query() == Some(f.prog_id) && f.detach() {
            removed += 1;
        }
    }
    if removed > 0 {
        if let Some(ifindex) = qdisc_of {
            let mut hook = Filter {
                ifindex,
                point: libbpf_sys::BPF_TC_INGRESS | libbpf_sys::BPF_TC_EGRESS,
                handle: 0,
                priority: 0,
                prog_id: 0,
            }
            .hook();
            // SAFETY: hook is a valid, initialized struct for the call.
            unsafe { libbpf_sys::bpf_tc_hook_destroy(&mut hook) };
        }
        eprintln!(
            "hdrtap: hdrtap (pid {parent}) ended without removing its tc filters: removed {removed} (and the clsact qdisc it added, if any)"
        );
    }
    Some(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_round_trip_through_arguments() {
        let f = Filter {
            ifindex: 7,
            point: libbpf_sys::BPF_TC_EGRESS,
            handle: 0x4854,
            priority: 1,
            prog_id: 4242,
        };
        assert_eq!(Filter::parse(&f.arg()), Some(f));
        assert_eq!(Filter::parse("1:2:3"), None);
        assert_eq!(Filter::parse("a:b:c:d:e"), None);
    }
}
