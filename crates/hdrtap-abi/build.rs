//! Generate Rust types from the one C header that is the kernel/user ABI.
use std::{env, path::PathBuf};

fn main() {
    let header = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bpf/include/hdrtap_abi.h");
    println!("cargo:rerun-if-changed={}", header.display());
    let bindings = bindgen::Builder::default()
        .header(header.to_string_lossy())
        .allowlist_type("hdrtap_.*")
        .allowlist_var("HDRTAP_.*")
        .default_enum_style(bindgen::EnumVariation::Consts)
        .prepend_enum_name(false)
        .derive_default(true)
        .derive_debug(true)
        .layout_tests(true)
        .use_core()
        .generate()
        .expect("bindgen failed on bpf/include/hdrtap_abi.h (is libclang installed? apt-get install clang-19)");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("abi.rs");
    bindings.write_to_file(out).expect("write abi.rs");
}
