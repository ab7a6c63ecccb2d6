//! hdrtap-core: everything after the ring buffer, testable without root.
//!
//! Data walks one way: [`hdrtap_abi::decode`] → [`http::HttpTracker`]
//! (per connection: protocol detection, then [`http1::Http1Tracker`] or
//! [`http2::Http2Tracker`], reassembly and parsing) →
//! [`record::HttpRecord`] → [`rules`] → [`redact::Redactor`] → [`output`]
//! sinks; [`pipeline`] holds that order for every capture.
//!
//! Packets: [`hdrtap_abi::decode_packet`] → [`packet::decode_event`] →
//! [`packet::PacketRecord`] → [`output`] sinks; [`filter`] compiles the
//! tcpdump-style expression the kernel evaluates.
//!
//! Every capture mode ends in the same place: [`rules`] look at HTTP
//! records (after [`redact`]) and emit alerts, and [`sink::Record`]s go to
//! one writer (the CLI commands) or to a [`sink::Fanout`] of sinks, each on
//! its own thread behind a bounded queue (`hdrtap run`).
#![forbid(unsafe_code)]

pub mod cgroup;
pub mod filter;
pub mod filter_http;
pub mod headers;
pub mod http;
pub mod http1;
pub mod http2;
pub mod link;
pub mod live;
pub mod output;
pub mod packet;
pub mod pcapng;
pub mod pipeline;
pub mod readback;
pub mod record;
pub mod redact;
pub mod rules;
pub mod sink;
pub mod stats;
mod stream;
pub mod summary;
mod table;
pub mod text;
pub mod wire;
