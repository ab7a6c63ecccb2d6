//! Compile each BPF object with clang-19 and generate its libbpf-rs skeleton.
use std::{env, path::PathBuf};

use libbpf_cargo::SkeletonBuilder;

const OBJECTS: &[(&str, &str)] = &[
    ("l7/syscalls.bpf.c", "syscalls"),
    ("net/packets.bpf.c", "packets"),
];

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bpf");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let clang = env::var("HDRTAP_CLANG").unwrap_or_else(|_| "clang-19".into());
    let include = root.join("include");
    for dir in ["include", "lib", "l7", "net"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!("cargo:rerun-if-env-changed=HDRTAP_CLANG");
    // The kernel's HTTP gate, built for the host too so tests run the same code.
    println!("cargo:rerun-if-changed=csrc/sniff_host.c");
    cc::Build::new()
        .file("csrc/sniff_host.c")
        .warnings(true)
        .flag_if_supported("-Wno-unknown-pragmas")
        .compile("hdrtap_sniff_host");

    for (src, name) in OBJECTS {
        SkeletonBuilder::new()
            .source(root.join(src))
            .obj(out.join(format!("{name}.bpf.o")))
            .clang(&clang)
            .clang_args([
                format!("-I{}", include.display()),
                "-Wall".to_string(),
                "-Wno-unused-function".to_string(),
                "-O2".to_string(),
                "-g".to_string(),
            ])
            .build_and_generate(out.join(format!("{name}.skel.rs")))
            .unwrap_or_else(|e| panic!("building {src} with {clang} failed: {e:#}"));
    }
}
