//! cargo fuzz run tcp_reassembly — see fuzz/README.md and hdrtap_fuzz::tcp_reassembly.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hdrtap_fuzz::tcp_reassembly(data));
