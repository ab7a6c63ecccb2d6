//! cargo fuzz run http1_stream — see fuzz/README.md and hdrtap_fuzz::http1_stream.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hdrtap_fuzz::http1_stream(data));
