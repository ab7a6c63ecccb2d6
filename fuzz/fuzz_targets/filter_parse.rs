//! cargo fuzz run filter_parse — see fuzz/README.md and hdrtap_fuzz::filter_parse.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hdrtap_fuzz::filter_parse(data));
