//! Generated bindings for `bpf/include/hdrtap_abi.h`.
#![allow(non_camel_case_types, non_upper_case_globals, dead_code)]
include!(concat!(env!("OUT_DIR"), "/abi.rs"));
