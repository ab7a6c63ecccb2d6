//! pcapng encoding of packet records, for `hdrtap packets -w FILE`: the
//! file Wireshark and tshark open, with what only hdrtap knows about each
//! packet (the process that sent or received it) in the packet's comment.
//!
//! The blocks themselves are pcap-file's ([`PcapNgWriter`] over a `Vec`);
//! this module decides what goes in them:
//! - one Section Header Block, naming hdrtap as the application;
//! - one Interface Description Block per interface, written before its
//!   first packet, with the interface's name, the snaplen and nanosecond
//!   timestamps (`if_tsresol` 9);
//! - one Enhanced Packet Block per packet: the captured bytes, the length on
//!   the wire as the original length, the direction in `epb_flags`
//!   (inbound / outbound), and a comment such as
//!   `pid=4242 tid=4243 comm=curl sock_cookie=8193` when the kernel knew the
//!   packet's socket.

use std::borrow::Cow;
use std::time::Duration;

use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::section_header::{SectionHeaderBlock, SectionHeaderOption};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::{DataLink, Endianness};

use crate::packet::{Dir, Link, PacketRecord};

/// `epb_flags` bits 0-1: the packet's direction (pcapng, section 4.3.1).
const EPB_INBOUND: u32 = 1;
const EPB_OUTBOUND: u32 = 2;

/// Turns packet records into pcapng blocks.
pub struct Encoder {
    blocks: PcapNgWriter<Vec<u8>>,
    snaplen: u32,
    /// The interface index of each Interface Description Block written, in
    /// order: a packet's interface id is its position here.
    ifaces: Vec<u32>,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("snaplen", &self.snaplen)
            .field("ifaces", &self.ifaces)
            .finish_non_exhaustive()
    }
}

impl Encoder {
    /// An encoder whose first output ([`Encoder::take`]) is the section
    /// header; `snaplen` is what each interface block says was kept.
    pub fn new(snaplen: u32) -> Self {
        Encoder {
            blocks: section(),
            snaplen,
            ifaces: Vec::new(),
        }
    }

    /// Append the blocks encoded since the last call to `out`.
    pub fn take(&mut self, out: &mut Vec<u8>) {
        out.append(self.blocks.get_mut());
    }

    /// The snaplen each interface block gives.
    pub fn snaplen(&self) -> u32 {
        self.snaplen
    }

    /// Interface blocks encoded so far.
    pub fn interfaces(&self) -> usize {
        self.ifaces.len()
    }

    /// Forget the interface blocks after the first `n` (their bytes were
    /// lost to a failed write): the next packet on one of them writes its
    /// block again. `n == 0` with `header_lost` starts a new section.
    pub fn rewind(&mut self, n: usize, header_lost: bool) {
        self.ifaces.truncate(n);
        if header_lost {
            self.blocks = section();
            self.ifaces.clear();
        } else {
            self.blocks.get_mut().clear();
        }
    }

    /// Encode `rec` (its interface block first, if it is the interface's
    /// first packet). False when the record kept no bytes to write.
    pub fn packet(&mut self, rec: &PacketRecord) -> bool {
        let Some(frame) = &rec.frame else {
            return false;
        };
        let id = match self.ifaces.iter().position(|&i| i == rec.ifindex) {
            Some(id) => id,
            None => {
                let idb = InterfaceDescriptionBlock {
                    linktype: match frame.link {
                        Link::Ether => DataLink::ETHERNET,
                        Link::RawIp => DataLink::RAW,
                    },
                    snaplen: self.snaplen,
                    options: vec![
                        InterfaceDescriptionOption::IfName(Cow::Owned(rec.ifname.to_string())),
                        InterfaceDescriptionOption::IfTsResol(9),
                    ],
                };
                if self.blocks.write_pcapng_block(idb).is_err() {
                    return false;
                }
                self.ifaces.push(rec.ifindex);
                self.ifaces.len() - 1
            }
        };
        let mut options = vec![EnhancedPacketOption::Flags(match rec.dir {
            Dir::In => EPB_INBOUND,
            Dir::Out => EPB_OUTBOUND,
        })];
        if let Some(c) = comment(rec) {
            options.push(EnhancedPacketOption::Comment(Cow::Owned(c)));
        }
        let epb = EnhancedPacketBlock {
            interface_id: id as u32,
            timestamp: Duration::from_nanos(rec.ts_unix_ns),
            original_len: rec.wire_len,
            data: Cow::Borrowed(&frame.bytes),
            options,
        };
        // Writing to a Vec fails only for an interface id never described,
        // which the lookup above rules out.
        self.blocks.write_pcapng_block(epb).is_ok()
    }
}

/// A block writer holding the section header, little-endian as every
/// machine hdrtap runs on.
fn section() -> PcapNgWriter<Vec<u8>> {
    let shb = SectionHeaderBlock {
        endianness: Endianness::native(),
        options: vec![SectionHeaderOption::UserApplication(Cow::Owned(format!(
            "hdrtap {}",
            env!("CARGO_PKG_VERSION")
        )))],
        ..Default::default()
    };
    // Writing to a Vec cannot fail.
    PcapNgWriter::with_section_header(Vec::with_capacity(64 * 1024), shb)
        .expect("a section header written to memory")
}

/// The packet's comment: who sent or received it, when the kernel knew.
fn comment(rec: &PacketRecord) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(o) = &rec.owner {
        parts.push(format!("pid={} tid={} comm={}", o.pid, o.tid, o.comm));
    }
    for (field, v) in rec.workload.iter().flat_map(|w| w.fields()) {
        let key = match field {
            "container_id" => "container",
            "container_runtime" => "runtime",
            other => other,
        };
        parts.push(format!("{key}={v}"));
    }
    if rec.sock_cookie != 0 {
        parts.push(format!("sock_cookie={}", rec.sock_cookie));
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// A packet record on interface `ifindex` named `name` whose 60 bytes are
/// all `fill`, kept for writing (tests here and in `output`).
#[cfg(test)]
pub(crate) fn test_packet(ifindex: u32, name: &str, fill: u8) -> PacketRecord {
    let ev = hdrtap_abi::build::packet_event(&Default::default(), &[0u8; 60]);
    let mut r = crate::packet::decode_event(
        &hdrtap_abi::decode_packet(&ev).expect("a packet event"),
        name,
        0,
    );
    r.ifindex = ifindex;
    r.frame = Some(crate::packet::Frame {
        link: Link::Ether,
        bytes: vec![fill; 60].into(),
    });
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{Hook, Owner};
    use pcap_file::pcapng::{Block, PcapNgReader};

    fn record(ifindex: u32, name: &str, dir: Dir, owner: bool) -> PacketRecord {
        let mut r = test_packet(ifindex, name, 0xab);
        r.dir = dir;
        r.hook = Hook::Tc;
        r.ts_unix_ns = 1_700_000_000_123_456_789;
        r.wire_len = 1500;
        r.owner = owner.then(|| Owner {
            pid: 4242,
            tid: 4243,
            comm: "curl".into(),
            cgroup_id: 0,
        });
        r.sock_cookie = if owner { 8193 } else { 0 };
        r
    }

    /// What pcap-file reads back is what was written: one interface block
    /// per interface before its first packet, nanosecond timestamps, the
    /// wire length, the direction and the owner's comment.
    #[test]
    fn blocks_read_back() {
        let mut e = Encoder::new(256);
        let mut out = Vec::new();
        for r in [
            record(1, "lo", Dir::In, true),
            record(7, "veth0", Dir::Out, false),
            record(1, "lo", Dir::Out, false),
        ] {
            assert!(e.packet(&r));
        }
        let mut none = record(1, "lo", Dir::In, false);
        none.frame = None;
        assert!(!e.packet(&none), "a record without bytes writes nothing");
        e.take(&mut out);
        assert_eq!(e.interfaces(), 2);

        let mut rd = PcapNgReader::new(out.as_slice()).unwrap();
        let mut blocks = Vec::new();
        while let Some(b) = rd.next_block() {
            blocks.push(b.unwrap().into_owned());
        }
        let kinds: Vec<&str> = blocks
            .iter()
            .map(|b| match b {
                Block::InterfaceDescription(_) => "idb",
                Block::EnhancedPacket(_) => "epb",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, ["idb", "epb", "idb", "epb", "epb"]);
        let Block::InterfaceDescription(idb) = &blocks[2] else {
            unreachable!()
        };
        assert_eq!(idb.snaplen, 256);
        assert!(idb
            .options
            .contains(&InterfaceDescriptionOption::IfName("veth0".into())));
        let epbs: Vec<_> = blocks
            .iter()
            .filter_map(|b| match b {
                Block::EnhancedPacket(p) => Some(p),
                _ => None,
            })
            .collect();
        assert_eq!(
            epbs.iter().map(|p| p.interface_id).collect::<Vec<_>>(),
            [0, 1, 0]
        );
        assert_eq!(epbs[0].original_len, 1500);
        assert_eq!(epbs[0].data.len(), 60);
        assert_eq!(
            epbs[0].timestamp,
            Duration::from_nanos(1_700_000_000_123_456_789)
        );
        assert!(epbs[0]
            .options
            .contains(&EnhancedPacketOption::Flags(EPB_INBOUND)));
        assert!(epbs[0].options.contains(&EnhancedPacketOption::Comment(
            "pid=4242 tid=4243 comm=curl sock_cookie=8193".into()
        )));
        assert!(epbs[1]
            .options
            .contains(&EnhancedPacketOption::Flags(EPB_OUTBOUND)));
        assert_eq!(epbs[1].options.len(), 1, "no owner, no comment");
    }

    /// After lost bytes the encoder writes the lost interface blocks (or
    /// the whole section) again.
    #[test]
    fn rewind_rewrites_what_was_lost() {
        let mut e = Encoder::new(128);
        let mut out = Vec::new();
        e.packet(&record(1, "lo", Dir::In, false));
        e.packet(&record(2, "eth0", Dir::In, false));
        e.take(&mut out);
        e.rewind(1, false);
        out.clear();
        e.packet(&record(2, "eth0", Dir::In, false));
        e.take(&mut out);
        // An interface block (type 1) comes first again.
        assert_eq!(u32::from_ne_bytes(out[..4].try_into().unwrap()), 1);
        e.rewind(0, true);
        out.clear();
        e.take(&mut out);
        // A section header (0x0A0D0D0A) starts the rest.
        assert_eq!(
            u32::from_ne_bytes(out[..4].try_into().unwrap()),
            0x0A0D_0D0A
        );
        assert_eq!(e.interfaces(), 0);
    }
}
