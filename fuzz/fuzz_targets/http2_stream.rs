//! cargo fuzz run http2_stream — see fuzz/README.md and hdrtap_fuzz::http2_stream.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hdrtap_fuzz::http2_stream(data));
