//! cargo fuzz run config_parse — see fuzz/README.md and hdrtap_fuzz::config_parse.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hdrtap_fuzz::config_parse(data));
