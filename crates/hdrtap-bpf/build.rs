//! Compile each BPF unit with clang-19, link the units of each object with
//! libbpf's static linker, and generate the object's libbpf-rs skeleton.
use std::{env, path::PathBuf, process::Command};

use libbpf_cargo::SkeletonBuilder;
use libbpf_rs::Linker;

/// Each object: its name (and the skeleton's) and its units. The units of
/// one object share maps and settings through a header (bpf/l7/capture.bpf.h).
const OBJECTS: &[(&str, &[&str])] = &[
    (
        "syscalls",
        &["l7/syscalls.bpf.c", "l7/openssl.bpf.c", "l7/gotls.bpf.c"],
    ),
    ("packets", &["net/packets.bpf.c"]),
    // Count-only programs for bench/suite.sh's floor arms, loaded by
    // examples/floors.rs from the object itself (no skeleton).
    ("floors", &["bench/floors.bpf.c"]),
];

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bpf");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let clang = env::var("HDRTAP_CLANG").unwrap_or_else(|_| "clang-19".into());
    let include = root.join("include");
    for dir in ["include", "lib", "l7", "net", "bench"] {
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

    // libbpf's headers (bpf_helpers.h, ...), from the vendored libbpf.
    let headers = out.join("libbpf-headers");
    std::fs::create_dir_all(headers.join("bpf")).unwrap();
    for (file, text) in libbpf_rs::libbpf_sys::API_HEADERS.iter() {
        std::fs::write(headers.join("bpf").join(file), text).unwrap();
    }
    let arch = match env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("x86_64") => "x86",
        Ok("aarch64") => "arm64",
        Ok("powerpc64") => "powerpc",
        Ok("s390x") => "s390",
        Ok("riscv64") => "riscv",
        Ok(other) => panic!("no BPF target arch known for {other}"),
        Err(e) => panic!("CARGO_CFG_TARGET_ARCH: {e}"),
    };

    for (name, units) in OBJECTS {
        let obj = out.join(format!("{name}.bpf.o"));
        let mut linker = Linker::new(&obj)
            .unwrap_or_else(|e| panic!("starting the link of {name}.bpf.o: {e:#}"));
        for src in *units {
            // Compiled here rather than by libbpf-cargo, whose builder links
            // every object it compiles on its own: a unit's extern maps
            // would then become definitions and clash at the real link.
            let unit = out.join(src.replace('/', "_").replace(".bpf.c", ".unit.o"));
            let status = Command::new(&clang)
                .arg(format!("-I{}", include.display()))
                .arg(format!("-I{}", headers.display()))
                .arg(format!("-D__TARGET_ARCH_{arch}"))
                .args(["-Wall", "-Wno-unused-function", "-fno-stack-protector"])
                .args(["-O2", "-g", "-target", "bpf", "-c"])
                .arg(root.join(src))
                .arg("-o")
                .arg(&unit)
                .status()
                .unwrap_or_else(|e| panic!("running {clang}: {e}"));
            assert!(status.success(), "building {src} with {clang} failed");
            linker
                .add_file(&unit)
                .unwrap_or_else(|e| panic!("linking {src} into {name}.bpf.o: {e:#}"));
        }
        linker
            .link()
            .unwrap_or_else(|e| panic!("linking {name}.bpf.o: {e:#}"));
        if *name == "floors" {
            continue;
        }
        SkeletonBuilder::new()
            .obj(&obj)
            .generate(out.join(format!("{name}.skel.rs")))
            .unwrap_or_else(|e| panic!("generating the skeleton of {name}.bpf.o: {e:#}"));
    }
}
