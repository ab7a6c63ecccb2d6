//! cargo fuzz run abi_decode — see fuzz/README.md and hdrtap_fuzz::abi_decode.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hdrtap_fuzz::abi_decode(data));
