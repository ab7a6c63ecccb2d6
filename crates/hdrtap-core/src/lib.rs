//! hdrtap-core: everything after the ring buffer, testable without root.
//!
//! Data walks one way: [`hdrtap_abi::decode`] → [`http1::Http1Tracker`]
//! (per-connection reassembly and HTTP/1.x parsing) → [`record::HttpRecord`]
//! → [`redact::Redactor`] → [`output`] sinks.
//!
//! Packets: [`hdrtap_abi::decode_packet`] → [`packet::decode_event`] →
//! [`packet::PacketRecord`] → [`output`] sinks; [`filter`] compiles the
//! tcpdump-style expression the kernel evaluates.
//!
//! Every capture mode ends in the same place: [`rules`] look at HTTP
//! records (before redaction) and emit alerts, and [`sink::Record`]s go to
//! one writer (the CLI commands) or to a [`sink::Fanout`] of sinks, each on
//! its own thread behind a bounded queue (`hdrtap run`).

pub mod filter;
pub mod headers;
pub mod http1;
pub mod http2;
pub mod output;
pub mod packet;
pub mod record;
pub mod redact;
pub mod rules;
pub mod sink;
pub mod stats;
