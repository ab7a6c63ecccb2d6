//! hdrtap-core: everything after the ring buffer, testable without root.
//!
//! Data walks one way: [`hdrtap_abi::decode`] → [`http1::Http1Tracker`]
//! (per-connection reassembly and HTTP/1.x parsing) → [`record::HttpRecord`]
//! → [`redact::Redactor`] → [`output`] sinks.

pub mod headers;
pub mod http1;
pub mod record;
pub mod output;
pub mod redact;
pub mod stats;
