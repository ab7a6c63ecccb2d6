//! cargo fuzz run packet_decode — see fuzz/README.md and hdrtap_fuzz::packet_decode.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hdrtap_fuzz::packet_decode(data));
