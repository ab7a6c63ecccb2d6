//! hdrtap-export: the sinks that ship records off the machine, shared by
//! every capture mode through `hdrtap_core::sink::Fanout`:
//!
//! * [`otlp`] — OpenTelemetry log records over OTLP/HTTP (protobuf) or
//!   OTLP/gRPC to a Collector, batched, retried with backoff, bounded,
//!   with every drop counted;
//! * [`prom`] — a Prometheus `/metrics` endpoint: traffic metrics from the
//!   records and hdrtap's own counters.
//!
//! Kept out of hdrtap-core so that the core (and its fuzz targets) does not
//! build an HTTP/2 and gRPC stack.
#![forbid(unsafe_code)]
pub mod otlp;
pub mod prom;
