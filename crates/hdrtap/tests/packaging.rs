//! The packaging, checked statically (no Docker engine or Kubernetes here):
//! the configurations shipped pass `hdrtap run --check-config`, the
//! manifests parse (PyYAML) and keep their security settings, every
//! Dockerfile `COPY` source exists, `systemd-analyze verify` accepts the
//! unit. No root, no BPF: part of a plain `cargo test`. Needs python3 with
//! PyYAML (Debian: python3-yaml) and systemd-analyze.
#![forbid(unsafe_code)]
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hdrtap_tests::{run_with_timeout, workspace_root};
use serde_json::{json, Value};

/// The hdrtap this test was built with.
fn hdrtap_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_hdrtap"))
}

fn packaging() -> PathBuf {
    workspace_root().join("packaging")
}

/// `text` passes `--check-config`, which opens what the daemon would: on
/// this machine, its log directory is a temporary one and its metrics port
/// a free one.
fn check_config(text: &str, what: &str) {
    let dir = tempfile::tempdir().unwrap();
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let text = text
        .replace("/var/log/hdrtap/", &format!("{}/", dir.path().display()))
        .replace("127.0.0.1:9464", &free.to_string())
        .replace("0.0.0.0:9464", &free.to_string());
    let f = dir.path().join("c.toml");
    fs::write(&f, text).unwrap();
    let out = run_with_timeout(
        Command::new(hdrtap_bin())
            .args(["run", "--check-config"])
            .arg(&f),
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "{what} does not check: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every YAML document of `file`, as JSON (through python3's PyYAML).
fn yaml_docs(file: &str) -> Vec<Value> {
    let out = run_with_timeout(
        Command::new("python3").args([
            "-c",
            "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        ])
        .arg(packaging().join(file)),
        Duration::from_secs(30),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("No module named 'yaml'"),
        "python3 has no PyYAML: install python3-yaml (scripts/setup.sh does)"
    );
    assert!(out.status.success(), "{file} is not valid YAML: {err}");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn shipped_configurations_are_valid() {
    for f in ["hdrtap.example.toml", "hdrtap.container.toml"] {
        check_config(&fs::read_to_string(packaging().join(f)).unwrap(), f);
    }
    let docs = yaml_docs("k8s/daemonset.yaml");
    let cm = docs
        .iter()
        .find(|d| d["kind"] == "ConfigMap")
        .expect("a ConfigMap");
    check_config(
        cm["data"]["hdrtap.toml"].as_str().unwrap(),
        "the DaemonSet's ConfigMap",
    );
}

#[test]
fn daemonset_has_least_privilege_and_the_mounts() {
    let docs = yaml_docs("k8s/daemonset.yaml");
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        ["Namespace", "ServiceAccount", "ConfigMap", "DaemonSet"]
    );
    let ds = docs.iter().find(|d| d["kind"] == "DaemonSet").unwrap();
    let spec = &ds["spec"]["template"]["spec"];
    assert_eq!(spec["hostPID"], true);
    let c = &spec["containers"][0];
    let sc = &c["securityContext"];
    assert_eq!(sc["privileged"], false);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    let add: Vec<&str> = sc["capabilities"]["add"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for cap in [
        "BPF",
        "PERFMON",
        "DAC_READ_SEARCH",
        "SYS_ADMIN",
        "SYS_PTRACE",
    ] {
        assert!(add.contains(&cap), "{cap} missing: {add:?}");
    }
    for cap in add.iter() {
        assert!(
            [
                "BPF",
                "PERFMON",
                "DAC_READ_SEARCH",
                "SYS_ADMIN",
                "SYS_PTRACE",
                "NET_ADMIN",
                "NET_RAW"
            ]
            .contains(cap),
            "more than capture needs: {cap}"
        );
    }
    let mounts: Vec<&str> = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap())
        .collect();
    for m in ["/etc/hdrtap", "/sys/kernel/btf", "/sys/kernel/tracing"] {
        assert!(mounts.contains(&m), "{m} not mounted: {mounts:?}");
    }
    for m in c["volumeMounts"].as_array().unwrap() {
        assert_eq!(m["readOnly"], true, "{m}");
    }
    assert_eq!(c["ports"][0]["containerPort"], 9464);
}

#[test]
fn collector_config_receives_otlp_logs() {
    let docs = yaml_docs("otel-collector.yaml");
    let c = &docs[0];
    assert!(c["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
        .as_str()
        .unwrap()
        .ends_with(":4317"));
    assert!(c["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
        .as_str()
        .unwrap()
        .ends_with(":4318"));
    let logs = &c["service"]["pipelines"]["logs"];
    assert_eq!(logs["receivers"], json!(["otlp"]));
    for e in logs["exporters"].as_array().unwrap() {
        assert!(
            c["exporters"][e.as_str().unwrap()].is_object()
                || c["exporters"].get(e.as_str().unwrap()).is_some(),
            "{e}"
        );
    }
}

#[test]
fn dockerfile_copies_what_exists_and_runs_the_daemon() {
    let text = fs::read_to_string(packaging().join("Dockerfile")).unwrap();
    let froms: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(froms.len(), 2, "multi-stage: {froms:?}");
    assert!(
        froms[0].contains("bookworm") && froms[1].contains("debian:bookworm-slim"),
        "{froms:?}"
    );
    for line in text
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from="))
    {
        let parts: Vec<&str> = line.split_whitespace().collect();
        for src in &parts[1..parts.len() - 1] {
            assert!(
                workspace_root().join(src).exists(),
                "COPY source {src} does not exist"
            );
        }
    }
    assert!(
        text.contains(
            r#"ENTRYPOINT ["/usr/local/bin/hdrtap", "run", "--config", "/etc/hdrtap/hdrtap.toml"]"#
        ),
        "entrypoint"
    );
    for pkg in ["clang-19", "libelf-dev", "zlib1g-dev", "libelf1", "zlib1g"] {
        assert!(text.contains(pkg), "{pkg}");
    }
}

#[test]
fn systemd_unit_verifies() {
    let unit = fs::read_to_string(packaging().join("hdrtap.service")).unwrap();
    for key in [
        "ExecStart=/usr/local/bin/hdrtap run --config /etc/hdrtap/hdrtap.toml",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "CapabilityBoundingSet=",
        "AmbientCapabilities=",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
    ] {
        assert!(unit.contains(key), "{key} missing");
    }
    // systemd-analyze wants the binaries to exist: point at the one built.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hdrtap.service");
    fs::write(
        &path,
        unit.replace("/usr/local/bin/hdrtap", &hdrtap_bin().display().to_string()),
    )
    .unwrap();
    let out = run_with_timeout(
        Command::new("systemd-analyze").arg("verify").arg(&path),
        Duration::from_secs(60),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify: {err}");
    assert!(
        !err.contains("hdrtap.service"),
        "remarks about the unit: {err}"
    );
}
