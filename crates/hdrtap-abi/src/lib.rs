//! Rust face of `bpf/include/hdrtap_abi.h`.
//!
//! [`raw`] holds the bindgen output (types and constants, generated at build
//! time from the header). [`decode`] turns one ring-buffer record into an
//! [`Event`] with checked, unaligned reads at offsets taken from the
//! generated structs — no pointer casts, no `unsafe` outside the generated
//! module (bindgen's flexible-array helper has unsafe accessors we never call).

#![deny(unsafe_code)]

use std::fmt;
use std::mem::{offset_of, size_of};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Generated bindings (bindgen) of the ABI header.
#[allow(
    non_camel_case_types,
    non_upper_case_globals,
    dead_code,
    unsafe_code,
    clippy::all
)]
pub mod raw {
    include!(concat!(env!("OUT_DIR"), "/abi.rs"));
}

pub use raw::*;

// Layout pins: the numbers the C header asserts, asserted again here.
const _: () = assert!(size_of::<raw::hdrtap_tuple>() == raw::HDRTAP_TUPLE_SIZE as usize);
const _: () = assert!(size_of::<raw::hdrtap_event_hdr>() == raw::HDRTAP_EVENT_HDR_SIZE as usize);
const _: () = assert!(size_of::<raw::hdrtap_data_event>() == raw::HDRTAP_DATA_EVENT_SIZE as usize);
const _: () =
    assert!(size_of::<raw::hdrtap_close_event>() == raw::HDRTAP_CLOSE_EVENT_SIZE as usize);
const _: () =
    assert!(offset_of!(raw::hdrtap_data_event, pos) == raw::HDRTAP_EVENT_HDR_SIZE as usize);
const _: () = assert!(offset_of!(raw::hdrtap_data_event, comm) == 80);
const _: () = assert!(offset_of!(raw::hdrtap_data_event, tuple) == 96);
const _: () = assert!(raw::HDRTAP_CHUNK_MAX.is_power_of_two());
const _: () = assert!(offset_of!(raw::hdrtap_data_event, tls_lib) == 74);
const _: () = assert!(offset_of!(raw::hdrtap_data_event, tcp_seq) == 76);
const _: () = assert!(offset_of!(raw::hdrtap_data_event, sock_cookie) == 136);
const _: () = assert!(size_of::<raw::hdrtap_file_event>() == raw::HDRTAP_FILE_EVENT_SIZE as usize);

/// Size of a data event's fixed part; payload follows.
pub const DATA_EVENT_SIZE: usize = raw::HDRTAP_DATA_EVENT_SIZE as usize;
/// Size of a close event.
pub const CLOSE_EVENT_SIZE: usize = raw::HDRTAP_CLOSE_EVENT_SIZE as usize;

/// Direction of payload as seen from the traced process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The process wrote/sent the bytes.
    Egress,
    /// The process read/received the bytes.
    Ingress,
}

impl Direction {
    /// 0 for egress, 1 for ingress (the kernel's index).
    pub fn index(self) -> usize {
        match self {
            Direction::Egress => 0,
            Direction::Ingress => 1,
        }
    }
}

/// What the kernel knows of the process's role on the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KernelRole {
    /// First seen on a data syscall.
    Unknown,
    /// The process called connect().
    Client,
    /// The process got the socket from accept().
    Server,
}

/// A connection's endpoints, read by the kernel from the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tuple {
    pub local_ip: IpAddr,
    pub local_port: u16,
    pub remote_ip: IpAddr,
    pub remote_port: u16,
}

/// One payload event.
#[derive(Clone, Copy)]
pub struct DataEvent<'a> {
    pub tgid: u32,
    pub tid: u32,
    pub fd: i32,
    /// CLOCK_MONOTONIC nanoseconds.
    pub ts_ns: u64,
    pub conn_id: u64,
    /// Stream offset of `data[0]` in this direction.
    pub pos: u64,
    /// Stream bytes this event stands for (`>= data.len()`).
    pub orig_len: u64,
    /// Bytes the whole syscall moved.
    pub call_len: u64,
    pub cgroup_id: u64,
    /// `enum hdrtap_data_flags` bits.
    pub flags: u16,
    pub dir: Direction,
    pub role: KernelRole,
    /// `enum hdrtap_source`.
    pub source: u8,
    /// With `HDRTAP_DF_TLS`: id of the hooked TLS library file (0 otherwise).
    pub tls_lib: u16,
    /// With `HDRTAP_DF_SEQ`: the TCP sequence number of the byte at `pos`.
    pub tcp_seq: Option<u32>,
    /// The socket's cookie (packet records' `conn_id`); 0 if it had none.
    pub sock_cookie: u64,
    /// Task name, NUL-padded.
    pub comm: [u8; raw::HDRTAP_COMM_LEN as usize],
    pub tuple: Tuple,
    /// The captured payload.
    pub data: &'a [u8],
}

impl DataEvent<'_> {
    /// The task name without NUL padding, lossily as UTF-8.
    pub fn comm_str(&self) -> String {
        comm_to_string(&self.comm)
    }

    /// True if any flag in `mask` is set.
    pub fn has_flag(&self, mask: u32) -> bool {
        u32::from(self.flags) & mask != 0
    }
}

impl fmt::Debug for DataEvent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataEvent")
            .field("conn_id", &self.conn_id)
            .field("tgid", &self.tgid)
            .field("tid", &self.tid)
            .field("fd", &self.fd)
            .field("dir", &self.dir)
            .field("pos", &self.pos)
            .field("orig_len", &self.orig_len)
            .field("cap_len", &self.data.len())
            .field("flags", &format_args!("{:#x}", self.flags))
            .field("comm", &self.comm_str())
            .finish_non_exhaustive()
    }
}

/// A tracked connection was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseEvent {
    pub tgid: u32,
    pub tid: u32,
    pub fd: i32,
    pub ts_ns: u64,
    pub conn_id: u64,
    /// Stream bytes seen per direction, indexed by [`Direction::index`].
    pub bytes: [u64; 2],
}

/// A decoded ring-buffer record.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    Data(DataEvent<'a>),
    Close(CloseEvent),
}

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than its kind's fixed part.
    #[error("event of {len} bytes is shorter than its {need}-byte header")]
    TooShort { len: usize, need: usize },
    /// The kind field is not one we know.
    #[error("unknown event kind {0}")]
    UnknownKind(u16),
    /// cap_len says more payload than the record holds, or more than a chunk.
    #[error("event claims {cap_len} payload bytes but carries {have}")]
    BadLength { cap_len: u32, have: usize },
    /// Invalid direction or family.
    #[error("event field {field} has invalid value {value}")]
    BadField { field: &'static str, value: u64 },
}

/// Bounds-checked little readers at generated offsets.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn bytes<const N: usize>(&self, off: usize) -> [u8; N] {
        let mut out = [0u8; N];
        // Callers check the record length against the struct size first.
        if let Some(src) = self.0.get(off..off + N) {
            out.copy_from_slice(src);
        }
        out
    }
    fn u8(&self, off: usize) -> u8 {
        self.bytes::<1>(off)[0]
    }
    fn u16(&self, off: usize) -> u16 {
        u16::from_ne_bytes(self.bytes(off))
    }
    fn u32(&self, off: usize) -> u32 {
        u32::from_ne_bytes(self.bytes(off))
    }
    fn i32(&self, off: usize) -> i32 {
        i32::from_ne_bytes(self.bytes(off))
    }
    fn u64(&self, off: usize) -> u64 {
        u64::from_ne_bytes(self.bytes(off))
    }
}

macro_rules! off {
    ($t:ident . $($f:tt).+) => {
        offset_of!(raw::$t, $($f).+)
    };
}

/// Decode one ring-buffer record.
pub fn decode(buf: &[u8]) -> Result<Event<'_>, DecodeError> {
    let hdr_size = raw::HDRTAP_EVENT_HDR_SIZE as usize;
    if buf.len() < hdr_size {
        return Err(DecodeError::TooShort {
            len: buf.len(),
            need: hdr_size,
        });
    }
    let r = Reader(buf);
    let kind = r.u16(off!(hdrtap_event_hdr.kind));
    let tgid = r.u32(off!(hdrtap_event_hdr.tgid));
    let tid = r.u32(off!(hdrtap_event_hdr.tid));
    let fd = r.i32(off!(hdrtap_event_hdr.fd));
    let ts_ns = r.u64(off!(hdrtap_event_hdr.ts_ns));
    let conn_id = r.u64(off!(hdrtap_event_hdr.conn_id));
    match u32::from(kind) {
        raw::HDRTAP_EV_DATA => {
            if buf.len() < DATA_EVENT_SIZE {
                return Err(DecodeError::TooShort {
                    len: buf.len(),
                    need: DATA_EVENT_SIZE,
                });
            }
            let cap_len = r.u32(off!(hdrtap_data_event.cap_len));
            let have = buf.len() - DATA_EVENT_SIZE;
            if cap_len as usize > have || cap_len > raw::HDRTAP_CHUNK_MAX {
                return Err(DecodeError::BadLength { cap_len, have });
            }
            let orig_len = r.u64(off!(hdrtap_data_event.orig_len));
            if orig_len < u64::from(cap_len) {
                return Err(DecodeError::BadField {
                    field: "orig_len",
                    value: orig_len,
                });
            }
            let dir = match u32::from(r.u8(off!(hdrtap_data_event.dir))) {
                raw::HDRTAP_DIR_EGRESS => Direction::Egress,
                raw::HDRTAP_DIR_INGRESS => Direction::Ingress,
                v => {
                    return Err(DecodeError::BadField {
                        field: "dir",
                        value: v.into(),
                    })
                }
            };
            let role = match u32::from(r.u8(off!(hdrtap_data_event.role))) {
                raw::HDRTAP_ROLE_CLIENT => KernelRole::Client,
                raw::HDRTAP_ROLE_SERVER => KernelRole::Server,
                _ => KernelRole::Unknown,
            };
            let t = off!(hdrtap_data_event.tuple);
            let tuple = decode_tuple(&r, t)?;
            Ok(Event::Data(DataEvent {
                tgid,
                tid,
                fd,
                ts_ns,
                conn_id,
                pos: r.u64(off!(hdrtap_data_event.pos)),
                orig_len,
                call_len: r.u64(off!(hdrtap_data_event.call_len)),
                cgroup_id: r.u64(off!(hdrtap_data_event.cgroup_id)),
                flags: r.u16(off!(hdrtap_data_event.flags)),
                dir,
                role,
                source: r.u8(off!(hdrtap_data_event.source)),
                tls_lib: r.u16(off!(hdrtap_data_event.tls_lib)),
                tcp_seq: (u32::from(r.u16(off!(hdrtap_data_event.flags))) & raw::HDRTAP_DF_SEQ
                    != 0)
                    .then(|| r.u32(off!(hdrtap_data_event.tcp_seq))),
                sock_cookie: r.u64(off!(hdrtap_data_event.sock_cookie)),
                comm: r.bytes(off!(hdrtap_data_event.comm)),
                tuple,
                data: &buf[DATA_EVENT_SIZE..DATA_EVENT_SIZE + cap_len as usize],
            }))
        }
        raw::HDRTAP_EV_CLOSE => {
            if buf.len() < CLOSE_EVENT_SIZE {
                return Err(DecodeError::TooShort {
                    len: buf.len(),
                    need: CLOSE_EVENT_SIZE,
                });
            }
            let b = off!(hdrtap_close_event.bytes);
            Ok(Event::Close(CloseEvent {
                tgid,
                tid,
                fd,
                ts_ns,
                conn_id,
                bytes: [r.u64(b), r.u64(b + 8)],
            }))
        }
        _ => Err(DecodeError::UnknownKind(kind)),
    }
}

/// Size of a file event (TLS library discovery).
pub const FILE_EVENT_SIZE: usize = raw::HDRTAP_FILE_EVENT_SIZE as usize;

/// A process exec'd or mapped an executable file the kernel was not told
/// about (record of the `file_events` ring buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileEvent {
    /// True for exec, false for an executable mmap.
    pub exec: bool,
    pub tgid: u32,
    /// The file as the kernel names it: `s_dev` (MAJOR << 20 | MINOR) and inode.
    pub dev: u64,
    pub ino: u64,
}

/// Decode one record of the `file_events` ring buffer.
pub fn decode_file_event(buf: &[u8]) -> Result<FileEvent, DecodeError> {
    if buf.len() < FILE_EVENT_SIZE {
        return Err(DecodeError::TooShort {
            len: buf.len(),
            need: FILE_EVENT_SIZE,
        });
    }
    let r = Reader(buf);
    let kind = r.u16(off!(hdrtap_file_event.kind));
    let exec = match u32::from(kind) {
        raw::HDRTAP_EV_EXEC => true,
        raw::HDRTAP_EV_MMAP_EXEC => false,
        _ => return Err(DecodeError::UnknownKind(kind)),
    };
    let f = off!(hdrtap_file_event.file);
    Ok(FileEvent {
        exec,
        tgid: r.u32(off!(hdrtap_file_event.tgid)),
        dev: r.u64(f + off!(hdrtap_file_key.dev)),
        ino: r.u64(f + off!(hdrtap_file_key.ino)),
    })
}

fn decode_tuple(r: &Reader<'_>, base: usize) -> Result<Tuple, DecodeError> {
    let family = r.u16(base + off!(hdrtap_tuple.family));
    let laddr: [u8; 16] = r.bytes(base + off!(hdrtap_tuple.laddr));
    let raddr: [u8; 16] = r.bytes(base + off!(hdrtap_tuple.raddr));
    let ip = |a: [u8; 16]| -> Result<IpAddr, DecodeError> {
        match u32::from(family) {
            raw::HDRTAP_AF_INET => Ok(IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3]))),
            // A dual-stack socket shows IPv4 peers as ::ffff:a.b.c.d; report them as IPv4.
            raw::HDRTAP_AF_INET6 => Ok(IpAddr::V6(Ipv6Addr::from(a)).to_canonical()),
            v => Err(DecodeError::BadField {
                field: "family",
                value: v.into(),
            }),
        }
    };
    Ok(Tuple {
        local_ip: ip(laddr)?,
        local_port: r.u16(base + off!(hdrtap_tuple.lport)),
        remote_ip: ip(raddr)?,
        remote_port: r.u16(base + off!(hdrtap_tuple.rport)),
    })
}

// ---- packets (`hdrtap packets`) -------------------------------------------

const _: () = assert!(size_of::<raw::hdrtap_pkt_event>() == raw::HDRTAP_PKT_EVENT_SIZE as usize);
const _: () =
    assert!(offset_of!(raw::hdrtap_pkt_event, ifindex) == raw::HDRTAP_EVENT_HDR_SIZE as usize);
const _: () = assert!(offset_of!(raw::hdrtap_pkt_event, cgroup_id) == 56);
const _: () = assert!(offset_of!(raw::hdrtap_pkt_event, comm) == 64);
const _: () = assert!(size_of::<raw::hdrtap_pf_insn>() == raw::HDRTAP_PF_INSN_SIZE as usize);
const _: () = assert!(size_of::<raw::hdrtap_skip_key>() == 16);
const _: () = assert!(size_of::<raw::hdrtap_pf_prog>() == raw::HDRTAP_PF_PROG_SIZE as usize);

/// Where packets are captured (`enum hdrtap_pkt_hook`): the one definition
/// the command line, the privilege checks, the loader and the records share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hook {
    /// tc ingress and egress (TCX link, or clsact).
    Tc,
    /// XDP, ingress only.
    Xdp,
    /// Socket filter on an AF_PACKET socket, both directions.
    Socket,
}

impl Hook {
    /// Every hook, in `--hook`'s order.
    pub const ALL: [Hook; 3] = [Hook::Tc, Hook::Xdp, Hook::Socket];

    /// The name on the command line, in the configuration and in records.
    pub fn name(self) -> &'static str {
        match self {
            Hook::Tc => "tc",
            Hook::Xdp => "xdp",
            Hook::Socket => "socket",
        }
    }

    /// The hook called `name`.
    pub fn from_name(name: &str) -> Option<Hook> {
        Hook::ALL.into_iter().find(|h| h.name() == name)
    }

    /// The hook of a packet event's `hook` byte.
    pub fn from_raw(raw: u8) -> Option<Hook> {
        match u32::from(raw) {
            raw::HDRTAP_HOOK_TC => Some(Hook::Tc),
            raw::HDRTAP_HOOK_XDP => Some(Hook::Xdp),
            raw::HDRTAP_HOOK_SOCKET => Some(Hook::Socket),
            _ => None,
        }
    }
}

/// Size of a packet event's fixed part; packet bytes follow.
pub const PKT_EVENT_SIZE: usize = raw::HDRTAP_PKT_EVENT_SIZE as usize;

/// One packet as seen by one hook.
#[derive(Clone, Copy)]
pub struct PacketEvent<'a> {
    /// Owning process and thread (0 when unknown, see `owner`).
    pub tgid: u32,
    pub tid: u32,
    /// CLOCK_MONOTONIC nanoseconds.
    pub ts_ns: u64,
    /// Socket cookie of the owning socket, or 0.
    pub sock_cookie: u64,
    pub ifindex: u32,
    pub wire_len: u32,
    /// `enum hdrtap_pkt_flags` bits.
    pub flags: u16,
    /// `enum hdrtap_pkt_hook` ([`Hook::from_raw`]; checked by [`decode_packet`]).
    pub hook: u8,
    /// `enum hdrtap_pkt_dir`.
    pub dir: u8,
    /// `enum hdrtap_pkt_link`.
    pub link: u8,
    /// `enum hdrtap_pkt_owner`.
    pub owner: u8,
    /// Offloaded outer VLAN tag and its TPID (flag HDRTAP_PKT_F_VLAN_ACCEL).
    pub vlan_tci: u16,
    pub vlan_proto: u16,
    /// skb->protocol (host order), 0 for XDP.
    pub protocol: u16,
    /// Owning task's cgroup v2 id (0 when unknown).
    pub cgroup_id: u64,
    /// Owning thread's name, NUL-padded.
    pub comm: [u8; raw::HDRTAP_COMM_LEN as usize],
    /// The first bytes of the packet.
    pub data: &'a [u8],
}

impl PacketEvent<'_> {
    /// The thread name without NUL padding (empty when unknown).
    pub fn comm_str(&self) -> String {
        comm_to_string(&self.comm)
    }

    /// True if any flag in `mask` is set.
    pub fn has_flag(&self, mask: u32) -> bool {
        u32::from(self.flags) & mask != 0
    }
}

impl fmt::Debug for PacketEvent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PacketEvent")
            .field("hook", &self.hook)
            .field("dir", &self.dir)
            .field("ifindex", &self.ifindex)
            .field("wire_len", &self.wire_len)
            .field("cap_len", &self.data.len())
            .field("flags", &format_args!("{:#x}", self.flags))
            .field("tgid", &self.tgid)
            .finish_non_exhaustive()
    }
}

/// Decode one record of the packets ring buffer.
pub fn decode_packet(buf: &[u8]) -> Result<PacketEvent<'_>, DecodeError> {
    if buf.len() < PKT_EVENT_SIZE {
        return Err(DecodeError::TooShort {
            len: buf.len(),
            need: PKT_EVENT_SIZE,
        });
    }
    let r = Reader(buf);
    let kind = r.u16(off!(hdrtap_event_hdr.kind));
    if u32::from(kind) != raw::HDRTAP_EV_PACKET {
        return Err(DecodeError::UnknownKind(kind));
    }
    let cap_len = r.u16(off!(hdrtap_pkt_event.cap_len));
    let have = buf.len() - PKT_EVENT_SIZE;
    if usize::from(cap_len) > have || u32::from(cap_len) > raw::HDRTAP_PKT_L7_SNAPLEN_MAX {
        return Err(DecodeError::BadLength {
            cap_len: cap_len.into(),
            have,
        });
    }
    let wire_len = r.u32(off!(hdrtap_pkt_event.wire_len));
    if wire_len < u32::from(cap_len) {
        return Err(DecodeError::BadField {
            field: "wire_len",
            value: wire_len.into(),
        });
    }
    let hook = r.u8(off!(hdrtap_pkt_event.hook));
    if Hook::from_raw(hook).is_none() {
        return Err(DecodeError::BadField {
            field: "hook",
            value: hook.into(),
        });
    }
    let dir = r.u8(off!(hdrtap_pkt_event.dir));
    if u32::from(dir) > raw::HDRTAP_PKT_OUT {
        return Err(DecodeError::BadField {
            field: "dir",
            value: dir.into(),
        });
    }
    let link = r.u8(off!(hdrtap_pkt_event.link));
    if u32::from(link) > raw::HDRTAP_LINK_RAW_IP {
        return Err(DecodeError::BadField {
            field: "link",
            value: link.into(),
        });
    }
    Ok(PacketEvent {
        tgid: r.u32(off!(hdrtap_event_hdr.tgid)),
        tid: r.u32(off!(hdrtap_event_hdr.tid)),
        ts_ns: r.u64(off!(hdrtap_event_hdr.ts_ns)),
        sock_cookie: r.u64(off!(hdrtap_event_hdr.conn_id)),
        ifindex: r.u32(off!(hdrtap_pkt_event.ifindex)),
        wire_len,
        flags: r.u16(off!(hdrtap_pkt_event.flags)),
        hook,
        dir,
        link,
        owner: r.u8(off!(hdrtap_pkt_event.owner)),
        vlan_tci: r.u16(off!(hdrtap_pkt_event.vlan_tci)),
        vlan_proto: r.u16(off!(hdrtap_pkt_event.vlan_proto)),
        protocol: r.u16(off!(hdrtap_pkt_event.protocol)),
        cgroup_id: r.u64(off!(hdrtap_pkt_event.cgroup_id)),
        comm: r.bytes(off!(hdrtap_pkt_event.comm)),
        data: &buf[PKT_EVENT_SIZE..PKT_EVENT_SIZE + usize::from(cap_len)],
    })
}

/// One filter instruction (`struct hdrtap_pf_insn`), as plain Rust data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PfInsn {
    /// `enum hdrtap_pf_op`.
    pub op: u8,
    /// `enum hdrtap_pf_field`.
    pub field: u8,
    /// Address family a CMP on an address requires (4, 6 or 0).
    pub family: u8,
    pub value: [u64; 2],
    pub mask: [u64; 2],
}

/// Encode a filter program as the kernel's `struct hdrtap_pf_prog` (the
/// value of the `pf_prog` map). None when it has too many instructions.
pub fn encode_pf_prog(insns: &[PfInsn]) -> Option<Vec<u8>> {
    if insns.len() > raw::HDRTAP_PF_MAX_INSNS as usize {
        return None;
    }
    let mut b = vec![0u8; raw::HDRTAP_PF_PROG_SIZE as usize];
    let len = u32::try_from(insns.len()).ok()?;
    b.get_mut(off!(hdrtap_pf_prog.len)..off!(hdrtap_pf_prog.len) + 4)?
        .copy_from_slice(&len.to_ne_bytes());
    let base = off!(hdrtap_pf_prog.insns);
    let size = size_of::<raw::hdrtap_pf_insn>();
    for (i, insn) in insns.iter().enumerate() {
        let o = base + i * size;
        let slot = b.get_mut(o..o + size)?;
        slot[off!(hdrtap_pf_insn.op)] = insn.op;
        slot[off!(hdrtap_pf_insn.field)] = insn.field;
        slot[off!(hdrtap_pf_insn.family)] = insn.family;
        let v = off!(hdrtap_pf_insn.value);
        let m = off!(hdrtap_pf_insn.mask);
        slot[v..v + 8].copy_from_slice(&insn.value[0].to_ne_bytes());
        slot[v + 8..v + 16].copy_from_slice(&insn.value[1].to_ne_bytes());
        slot[m..m + 8].copy_from_slice(&insn.mask[0].to_ne_bytes());
        slot[m + 8..m + 16].copy_from_slice(&insn.mask[1].to_ne_bytes());
    }
    Some(b)
}

/// Encode a key of the `skips` map (`struct hdrtap_skip_key`): connection
/// `conn_id`, direction `dir` (`enum hdrtap_direction`).
pub fn encode_skip_key(conn_id: u64, dir: u32) -> [u8; size_of::<raw::hdrtap_skip_key>()] {
    let mut b = [0u8; size_of::<raw::hdrtap_skip_key>()];
    let c = off!(hdrtap_skip_key.conn_id);
    let d = off!(hdrtap_skip_key.dir);
    b[c..c + 8].copy_from_slice(&conn_id.to_ne_bytes());
    b[d..d + 4].copy_from_slice(&dir.to_ne_bytes());
    b
}

/// A NUL-padded task name as a string.
pub fn comm_to_string(comm: &[u8]) -> String {
    String::from_utf8_lossy(comm_bytes(comm)).into_owned()
}

/// A NUL-padded task name without its padding.
pub fn comm_bytes(comm: &[u8]) -> &[u8] {
    let end = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
    &comm[..end]
}

/// Builders of raw events, for tests and fuzzing of the layers above.
pub mod build {
    use super::*;

    /// Fields of a data event to encode.
    #[derive(Debug, Clone)]
    pub struct DataSpec {
        pub tgid: u32,
        pub tid: u32,
        pub fd: i32,
        pub ts_ns: u64,
        pub conn_id: u64,
        pub pos: u64,
        pub orig_len: Option<u64>,
        pub call_len: Option<u64>,
        pub cgroup_id: u64,
        pub flags: u16,
        pub dir: Direction,
        pub role: KernelRole,
        pub comm: String,
        pub tuple: Tuple,
        /// `enum hdrtap_source` (default: write).
        pub source: u8,
        /// Library id of a TLS event (with flag `HDRTAP_DF_TLS`).
        pub tls_lib: u16,
        /// TCP sequence number of the first byte (with flag `HDRTAP_DF_SEQ`).
        pub tcp_seq: u32,
        pub sock_cookie: u64,
    }

    impl Default for DataSpec {
        fn default() -> Self {
            DataSpec {
                tgid: 100,
                tid: 100,
                fd: 3,
                ts_ns: 1,
                conn_id: 1,
                pos: 0,
                orig_len: None,
                call_len: None,
                cgroup_id: 1,
                flags: 0,
                dir: Direction::Egress,
                role: KernelRole::Client,
                comm: "test".into(),
                source: raw::HDRTAP_SRC_WRITE as u8,
                tls_lib: 0,
                tcp_seq: 0,
                sock_cookie: 0,
                tuple: Tuple {
                    local_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                    local_port: 40000,
                    remote_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                    remote_port: 80,
                },
            }
        }
    }

    fn put(buf: &mut [u8], off: usize, bytes: &[u8]) {
        buf[off..off + bytes.len()].copy_from_slice(bytes);
    }

    fn addr16(ip: IpAddr) -> (u16, [u8; 16]) {
        match ip {
            IpAddr::V4(v4) => {
                let mut a = [0u8; 16];
                a[..4].copy_from_slice(&v4.octets());
                (raw::HDRTAP_AF_INET as u16, a)
            }
            IpAddr::V6(v6) => (raw::HDRTAP_AF_INET6 as u16, v6.octets()),
        }
    }

    /// Encode a data event carrying `payload` exactly as the kernel would.
    pub fn data_event(spec: &DataSpec, payload: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; DATA_EVENT_SIZE + payload.len()];
        put(
            &mut b,
            off!(hdrtap_event_hdr.kind),
            &(raw::HDRTAP_EV_DATA as u16).to_ne_bytes(),
        );
        put(
            &mut b,
            off!(hdrtap_event_hdr.tgid),
            &spec.tgid.to_ne_bytes(),
        );
        put(&mut b, off!(hdrtap_event_hdr.tid), &spec.tid.to_ne_bytes());
        put(&mut b, off!(hdrtap_event_hdr.fd), &spec.fd.to_ne_bytes());
        put(
            &mut b,
            off!(hdrtap_event_hdr.ts_ns),
            &spec.ts_ns.to_ne_bytes(),
        );
        put(
            &mut b,
            off!(hdrtap_event_hdr.conn_id),
            &spec.conn_id.to_ne_bytes(),
        );
        let orig = spec.orig_len.unwrap_or(payload.len() as u64);
        put(&mut b, off!(hdrtap_data_event.pos), &spec.pos.to_ne_bytes());
        put(
            &mut b,
            off!(hdrtap_data_event.orig_len),
            &orig.to_ne_bytes(),
        );
        put(
            &mut b,
            off!(hdrtap_data_event.call_len),
            &spec.call_len.unwrap_or(orig).to_ne_bytes(),
        );
        put(
            &mut b,
            off!(hdrtap_data_event.cgroup_id),
            &spec.cgroup_id.to_ne_bytes(),
        );
        put(
            &mut b,
            off!(hdrtap_data_event.cap_len),
            &(payload.len() as u32).to_ne_bytes(),
        );
        put(
            &mut b,
            off!(hdrtap_data_event.flags),
            &spec.flags.to_ne_bytes(),
        );
        b[off!(hdrtap_data_event.dir)] = spec.dir.index() as u8;
        b[off!(hdrtap_data_event.role)] = match spec.role {
            KernelRole::Unknown => raw::HDRTAP_ROLE_UNKNOWN,
            KernelRole::Client => raw::HDRTAP_ROLE_CLIENT,
            KernelRole::Server => raw::HDRTAP_ROLE_SERVER,
        } as u8;
        b[off!(hdrtap_data_event.source)] = spec.source;
        put(
            &mut b,
            off!(hdrtap_data_event.tls_lib),
            &spec.tls_lib.to_ne_bytes(),
        );
        put(
            &mut b,
            off!(hdrtap_data_event.tcp_seq),
            &spec.tcp_seq.to_ne_bytes(),
        );
        put(
            &mut b,
            off!(hdrtap_data_event.sock_cookie),
            &spec.sock_cookie.to_ne_bytes(),
        );
        let comm = spec.comm.as_bytes();
        let n = comm.len().min(raw::HDRTAP_COMM_LEN as usize - 1);
        put(&mut b, off!(hdrtap_data_event.comm), &comm[..n]);
        let t = off!(hdrtap_data_event.tuple);
        let (family, laddr) = addr16(spec.tuple.local_ip);
        let (_, raddr) = addr16(spec.tuple.remote_ip);
        put(&mut b, t + off!(hdrtap_tuple.family), &family.to_ne_bytes());
        put(
            &mut b,
            t + off!(hdrtap_tuple.lport),
            &spec.tuple.local_port.to_ne_bytes(),
        );
        put(
            &mut b,
            t + off!(hdrtap_tuple.rport),
            &spec.tuple.remote_port.to_ne_bytes(),
        );
        put(&mut b, t + off!(hdrtap_tuple.laddr), &laddr);
        put(&mut b, t + off!(hdrtap_tuple.raddr), &raddr);
        put(&mut b, DATA_EVENT_SIZE, payload);
        b
    }

    /// Fields of a packet event to encode (tests and fuzzing).
    #[derive(Debug, Clone)]
    pub struct PacketSpec {
        pub tgid: u32,
        pub tid: u32,
        pub ts_ns: u64,
        pub sock_cookie: u64,
        pub ifindex: u32,
        /// None: the data length.
        pub wire_len: Option<u32>,
        pub flags: u16,
        pub hook: u8,
        pub dir: u8,
        pub link: u8,
        pub owner: u8,
        pub vlan_tci: u16,
        pub vlan_proto: u16,
        pub protocol: u16,
        /// Owning task's cgroup v2 id (0: unknown).
        pub cgroup_id: u64,
        pub comm: String,
    }

    impl Default for PacketSpec {
        fn default() -> Self {
            PacketSpec {
                tgid: 0,
                tid: 0,
                ts_ns: 1,
                sock_cookie: 0,
                ifindex: 1,
                wire_len: None,
                flags: 0,
                hook: raw::HDRTAP_HOOK_TC as u8,
                dir: raw::HDRTAP_PKT_IN as u8,
                link: raw::HDRTAP_LINK_ETHER as u8,
                owner: 0,
                vlan_tci: 0,
                vlan_proto: 0,
                protocol: 0,
                cgroup_id: 0,
                comm: String::new(),
            }
        }
    }

    /// Encode a packet event carrying `data` exactly as the kernel would.
    pub fn packet_event(spec: &PacketSpec, data: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; PKT_EVENT_SIZE + data.len()];
        put(
            &mut b,
            off!(hdrtap_event_hdr.kind),
            &(raw::HDRTAP_EV_PACKET as u16).to_ne_bytes(),
        );
        put(
            &mut b,
            off!(hdrtap_event_hdr.tgid),
            &spec.tgid.to_ne_bytes(),
        );
        put(&mut b, off!(hdrtap_event_hdr.tid), &spec.tid.to_ne_bytes());
        put(&mut b, off!(hdrtap_event_hdr.fd), &(-1i32).to_ne_bytes());
        put(
            &mut b,
            off!(hdrtap_event_hdr.ts_ns),
            &spec.ts_ns.to_ne_bytes(),
        );
        put(
            &mut b,
            off!(hdrtap_event_hdr.conn_id),
            &spec.sock_cookie.to_ne_bytes(),
        );
        put(
            &mut b,
            off!(hdrtap_pkt_event.ifindex),
            &spec.ifindex.to_ne_bytes(),
        );
        let wire = spec.wire_len.unwrap_or(data.len() as u32);
        put(&mut b, off!(hdrtap_pkt_event.wire_len), &wire.to_ne_bytes());
        put(
            &mut b,
            off!(hdrtap_pkt_event.cap_len),
            &(data.len() as u16).to_ne_bytes(),
        );
        put(
            &mut b,
            off!(hdrtap_pkt_event.flags),
            &spec.flags.to_ne_bytes(),
        );
        b[off!(hdrtap_pkt_event.hook)] = spec.hook;
        b[off!(hdrtap_pkt_event.dir)] = spec.dir;
        b[off!(hdrtap_pkt_event.link)] = spec.link;
        b[off!(hdrtap_pkt_event.owner)] = spec.owner;
        put(
            &mut b,
            off!(hdrtap_pkt_event.vlan_tci),
            &spec.vlan_tci.to_ne_bytes(),
        );
        put(
            &mut b,
            off!(hdrtap_pkt_event.vlan_proto),
            &spec.vlan_proto.to_ne_bytes(),
        );
        put(
            &mut b,
            off!(hdrtap_pkt_event.protocol),
            &spec.protocol.to_ne_bytes(),
        );
        put(
            &mut b,
            off!(hdrtap_pkt_event.cgroup_id),
            &spec.cgroup_id.to_ne_bytes(),
        );
        let comm = spec.comm.as_bytes();
        let n = comm.len().min(raw::HDRTAP_COMM_LEN as usize - 1);
        put(&mut b, off!(hdrtap_pkt_event.comm), &comm[..n]);
        put(&mut b, PKT_EVENT_SIZE, data);
        b
    }

    /// Encode a file event (exec when `exec`, else executable mmap).
    pub fn file_event(exec: bool, tgid: u32, dev: u64, ino: u64) -> Vec<u8> {
        let mut b = vec![0u8; FILE_EVENT_SIZE];
        let kind = if exec {
            raw::HDRTAP_EV_EXEC
        } else {
            raw::HDRTAP_EV_MMAP_EXEC
        } as u16;
        put(&mut b, off!(hdrtap_file_event.kind), &kind.to_ne_bytes());
        put(&mut b, off!(hdrtap_file_event.tgid), &tgid.to_ne_bytes());
        let f = off!(hdrtap_file_event.file);
        put(&mut b, f + off!(hdrtap_file_key.dev), &dev.to_ne_bytes());
        put(&mut b, f + off!(hdrtap_file_key.ino), &ino.to_ne_bytes());
        b
    }

    /// Encode a close event.
    pub fn close_event(conn_id: u64, tgid: u32, fd: i32, ts_ns: u64, bytes: [u64; 2]) -> Vec<u8> {
        let mut b = vec![0u8; CLOSE_EVENT_SIZE];
        put(
            &mut b,
            off!(hdrtap_event_hdr.kind),
            &(raw::HDRTAP_EV_CLOSE as u16).to_ne_bytes(),
        );
        put(&mut b, off!(hdrtap_event_hdr.tgid), &tgid.to_ne_bytes());
        put(&mut b, off!(hdrtap_event_hdr.tid), &tgid.to_ne_bytes());
        put(&mut b, off!(hdrtap_event_hdr.fd), &fd.to_ne_bytes());
        put(&mut b, off!(hdrtap_event_hdr.ts_ns), &ts_ns.to_ne_bytes());
        put(
            &mut b,
            off!(hdrtap_event_hdr.conn_id),
            &conn_id.to_ne_bytes(),
        );
        let o = off!(hdrtap_close_event.bytes);
        put(&mut b, o, &bytes[0].to_ne_bytes());
        put(&mut b, o + 8, &bytes[1].to_ne_bytes());
        b
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;

    #[test]
    fn data_event_round_trips() {
        let spec = DataSpec {
            pos: 77,
            orig_len: Some(100),
            flags: raw::HDRTAP_DF_CLIPPED as u16,
            dir: Direction::Ingress,
            role: KernelRole::Server,
            comm: "nginx".into(),
            tuple: Tuple {
                local_ip: "::1".parse().unwrap(),
                local_port: 8080,
                remote_ip: "::ffff:10.0.0.1".parse().unwrap(),
                remote_port: 5555,
            },
            ..Default::default()
        };
        let raw = data_event(&spec, b"GET / HTTP/1.1\r\n");
        let Event::Data(d) = decode(&raw).unwrap() else {
            panic!("not data")
        };
        assert_eq!(d.pos, 77);
        assert_eq!(d.orig_len, 100);
        assert_eq!(d.data, b"GET / HTTP/1.1\r\n");
        assert_eq!(d.dir, Direction::Ingress);
        assert_eq!(d.role, KernelRole::Server);
        assert_eq!(d.comm_str(), "nginx");
        assert_eq!(d.tuple.local_ip, "::1".parse::<IpAddr>().unwrap());
        // v4-mapped peers come out as IPv4
        assert_eq!(d.tuple.remote_ip, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(d.tuple.local_port, 8080);
        assert!(d.has_flag(raw::HDRTAP_DF_CLIPPED));
    }

    #[test]
    fn tls_event_and_file_event_round_trip() {
        let spec = DataSpec {
            flags: raw::HDRTAP_DF_TLS as u16,
            source: raw::HDRTAP_SRC_SSL_READ as u8,
            tls_lib: 513,
            ..Default::default()
        };
        let raw = data_event(&spec, b"HTTP/1.1 200 OK\r\n");
        let Event::Data(d) = decode(&raw).unwrap() else {
            panic!("not data")
        };
        assert!(d.has_flag(raw::HDRTAP_DF_TLS));
        assert_eq!((d.source, d.tls_lib), (raw::HDRTAP_SRC_SSL_READ as u8, 513));

        let f = file_event(true, 77, (8 << 20) | 1, 123456);
        assert_eq!(
            decode_file_event(&f).unwrap(),
            FileEvent {
                exec: true,
                tgid: 77,
                dev: (8 << 20) | 1,
                ino: 123456
            }
        );
        assert!(!decode_file_event(&file_event(false, 1, 2, 3)).unwrap().exec);
        for n in 0..f.len() {
            assert!(decode_file_event(&f[..n]).is_err());
        }
        let mut bad = f.clone();
        bad[0] = 1;
        assert!(decode_file_event(&bad).is_err());
    }

    #[test]
    fn close_event_round_trips() {
        let raw = close_event(9, 42, 7, 1234, [10, 20]);
        let Event::Close(c) = decode(&raw).unwrap() else {
            panic!("not close")
        };
        assert_eq!(
            (c.conn_id, c.tgid, c.fd, c.ts_ns, c.bytes),
            (9, 42, 7, 1234, [10, 20])
        );
    }

    #[test]
    fn rejects_truncated_and_lying_records() {
        let raw = data_event(&DataSpec::default(), b"abc");
        for n in 0..raw.len() {
            assert!(decode(&raw[..n]).is_err(), "prefix of {n} bytes decoded");
        }
        let mut bad = raw.clone();
        bad[0] = 99;
        assert_eq!(decode(&bad).unwrap_err(), DecodeError::UnknownKind(99));
        let mut lie = raw.clone();
        let o = offset_of!(raw::hdrtap_data_event, cap_len);
        lie[o..o + 4].copy_from_slice(&1000u32.to_ne_bytes());
        assert!(matches!(decode(&lie), Err(DecodeError::BadLength { .. })));
    }

    #[test]
    fn packet_event_round_trips() {
        let spec = PacketSpec {
            tgid: 7,
            tid: 8,
            sock_cookie: 99,
            ifindex: 3,
            wire_len: Some(1500),
            flags: raw::HDRTAP_PKT_F_SNAPPED as u16,
            hook: raw::HDRTAP_HOOK_XDP as u8,
            vlan_tci: 0x2064,
            vlan_proto: 0x8100,
            comm: "curl".into(),
            ..Default::default()
        };
        let raw = packet_event(&spec, b"abcdef");
        let p = decode_packet(&raw).unwrap();
        assert_eq!(
            (p.tgid, p.tid, p.sock_cookie, p.ifindex, p.wire_len),
            (7, 8, 99, 3, 1500)
        );
        assert_eq!(p.data, b"abcdef");
        assert_eq!(p.comm_str(), "curl");
        assert_eq!((p.vlan_tci, p.vlan_proto), (0x2064, 0x8100));
        assert!(p.has_flag(raw::HDRTAP_PKT_F_SNAPPED));
        for n in 0..raw.len() {
            assert!(
                decode_packet(&raw[..n]).is_err(),
                "prefix of {n} bytes decoded"
            );
        }
        let mut lie = raw.clone();
        let o = offset_of!(raw::hdrtap_pkt_event, wire_len);
        lie[o..o + 4].copy_from_slice(&2u32.to_ne_bytes());
        assert!(decode_packet(&lie).is_err(), "wire_len < cap_len accepted");
    }

    #[test]
    fn filter_programs_encode_at_the_header_offsets() {
        let insns = [PfInsn {
            op: 1,
            field: 6,
            family: 4,
            value: [1, 2],
            mask: [3, 4],
        }];
        let b = encode_pf_prog(&insns).unwrap();
        assert_eq!(b.len(), raw::HDRTAP_PF_PROG_SIZE as usize);
        assert_eq!(u32::from_ne_bytes(b[0..4].try_into().unwrap()), 1);
        let i = offset_of!(raw::hdrtap_pf_prog, insns);
        assert_eq!(&b[i..i + 3], &[1, 6, 4]);
        let v = i + offset_of!(raw::hdrtap_pf_insn, value);
        assert_eq!(u64::from_ne_bytes(b[v + 8..v + 16].try_into().unwrap()), 2);
        assert!(encode_pf_prog(&vec![PfInsn::default(); 65]).is_none());
    }

    #[test]
    fn garbage_never_panics() {
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for len in 0..400 {
            let buf: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = decode(&buf);
            let _ = decode_packet(&buf);
            let _ = decode_file_event(&buf);
        }
    }
}
