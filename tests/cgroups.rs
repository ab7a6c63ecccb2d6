//! Who sent it: HTTP records name the unit, container and pod of their
//! process, read from its cgroup. The test makes cgroups named as Docker,
//! containerd (kubelet, systemd driver), CRI-O (kubelet, cgroupfs driver),
//! podman and a systemd service name them, runs a Python server and curl
//! clients inside them, and checks every record's fields, that a process
//! in the root cgroup gets none, and the `--container` and `--unit`
//! filters. Root only.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hdrtap_tests::*;

const DOCKER: &str = "d0c0e1d0c0e1d0c0e1d0c0e1d0c0e1d0c0e1d0c0e1d0c0e1d0c0e1d0c0e1d0c0";
/// A container started after hdrtap, its id sharing DOCKER's first 12 digits.
const DOCKER_LATE: &str = "d0c0e1d0c0e12222222222222222222222222222222222222222222222222222";
const CONTAINERD: &str = "c0417a1ed0c0417a1ed0c0417a1ed0c0417a1ed0c0417a1ed0c0417a1ed0c041";
const CRIO: &str = "c7105000c7105000c7105000c7105000c7105000c7105000c7105000c7105000";
const PODMAN: &str = "90d3a0090d3a0090d3a0090d3a0090d3a0090d3a0090d3a0090d3a0090d3a009";
const POD_A: &str = "1b2c3d4e-5f60-7182-93a4-b5c6d7e8f901";
const POD_B: &str = "aaaabbbb-cccc-dddd-eeee-ffff00001111";

/// The cgroup v2 hierarchy (unified, or systemd's hybrid `unified/`).
fn cgroup_root() -> PathBuf {
    ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.join("cgroup.controllers").exists())
        .expect("no cgroup v2 hierarchy (cgroup.controllers) at /sys/fs/cgroup")
}

/// Cgroups made under one test directory, removed at the end.
struct Tree {
    root: PathBuf,
    top: PathBuf,
}

impl Tree {
    fn new() -> Tree {
        let root = cgroup_root();
        let top = root.join(format!("hdrtap-test-{}", std::process::id()));
        std::fs::create_dir_all(&top).expect("mkdir in the cgroup hierarchy");
        Tree { root, top }
    }

    /// Make `rel` under the test directory; its path as records name it.
    fn make(&self, rel: &str) -> (PathBuf, String) {
        let dir = self.top.join(rel);
        std::fs::create_dir_all(&dir).unwrap();
        let name = format!("/{}", dir.strip_prefix(&self.root).unwrap().display());
        (dir, name)
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        // Deepest first: a cgroup goes only once it has no children.
        let mut dirs = Vec::new();
        let mut stack = vec![self.top.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(e.path());
                }
            }
            dirs.push(d);
        }
        for d in dirs.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// `argv` started inside cgroup `dir` (the shell moves itself there and
/// becomes the program).
fn spawn_in(dir: &Path, argv: &[&str]) -> Child {
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo $$ > {}/cgroup.procs && exec \"$@\"",
            dir.display()
        ))
        .arg("sh")
        .args(argv)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn run_in(dir: &Path, argv: &[&str]) {
    let status = spawn_in(dir, argv).wait().unwrap();
    assert!(status.success(), "{argv:?} in {}: {status}", dir.display());
}

#[test]
fn records_name_the_unit_container_and_pod_of_their_process() {
    let _guard = setup();
    let tree = Tree::new();
    let (server_cg, server_name) = tree.make(&format!(
        "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{CONTAINERD}.scope",
        POD_A.replace('-', "_")
    ));
    let (docker_cg, docker_name) = tree.make(&format!("system.slice/docker-{DOCKER}.scope"));
    let (crio_cg, crio_name) = tree.make(&format!("kubepods/besteffort/pod{POD_B}/crio-{CRIO}"));
    let (podman_cg, _) = tree.make(&format!("machine.slice/libpod-{PODMAN}.scope"));
    let (unit_cg, unit_name) = tree.make("system.slice/webapp.service");

    let port = free_port();
    let mut server = spawn_in(
        &server_cg,
        &[
            "python3",
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "python server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let p = port.to_string();
    let all = Hdrtap::start(&["--port", &p, "--no-tls"]);
    let by_container = Hdrtap::start(&["--port", &p, "--no-tls", "--container", &DOCKER[..12]]);
    let by_unit = Hdrtap::start(&["--port", &p, "--no-tls", "--unit", "webapp"]);
    let packets = Hdrtap::start_with(&["packets", "--json"], &["-i", "lo", "tcp", "port", &p]);

    let url = |path: &str| format!("http://127.0.0.1:{port}/{path}");
    // Made after the captures started: the kernel's --container filter has
    // not classified it, and must not lose its traffic.
    let (late_cg, _) = tree.make(&format!("system.slice/docker-{DOCKER_LATE}.scope"));
    run_in(&late_cg, &["curl", "-s", "-o", "/dev/null", &url("late")]);
    run_in(
        &docker_cg,
        &["curl", "-s", "-o", "/dev/null", &url("docker")],
    );
    run_in(&crio_cg, &["curl", "-s", "-o", "/dev/null", &url("crio")]);
    run_in(
        &podman_cg,
        &["curl", "-s", "-o", "/dev/null", &url("podman")],
    );
    run_in(&unit_cg, &["curl", "-s", "-o", "/dev/null", &url("unit")]);
    run_in(&tree.root, &["curl", "-s", "-o", "/dev/null", &url("root")]);
    std::thread::sleep(Duration::from_millis(500));
    let (cap, cap_c, cap_u) = (all.stop(), by_container.stop(), by_unit.stop());
    let cap_p = packets.stop();
    let _ = server.kill();
    let _ = server.wait();

    let find = |path: &str, role: &str| -> Value {
        cap.http()
            .find(|r| {
                kind(r) == "http_request" && r["target"] == format!("/{path}") && r["role"] == role
            })
            .unwrap_or_else(|| panic!("no {role} request for /{path}\n{}", cap.dump_all()))
            .clone()
    };
    let fields = |r: &Value| {
        [
            "cgroup",
            "unit",
            "container_id",
            "container_runtime",
            "pod_uid",
        ]
        .map(|f| r[f].as_str().map(String::from))
    };
    let s = |v: &str| Some(v.to_string());
    assert_eq!(
        fields(&find("docker", "client")),
        [
            s(&docker_name),
            Some(format!("docker-{DOCKER}.scope")),
            s(DOCKER),
            s("docker"),
            None
        ]
    );
    assert_eq!(
        fields(&find("crio", "client")),
        [s(&crio_name), None, s(CRIO), s("cri-o"), s(POD_B)]
    );
    let podman = fields(&find("podman", "client"));
    assert_eq!(podman[2..4], [s(PODMAN), s("podman")]);
    assert_eq!(
        fields(&find("unit", "client")),
        [s(&unit_name), s("webapp.service"), None, None, None]
    );
    // The server's side of every request: the containerd container of pod A.
    for path in ["docker", "crio", "podman", "unit", "root"] {
        assert_eq!(
            fields(&find(path, "server")),
            [
                s(&server_name),
                Some(format!("cri-containerd-{CONTAINERD}.scope")),
                s(CONTAINERD),
                s("containerd"),
                s(POD_A)
            ],
            "/{path}"
        );
    }
    // The root cgroup: its path, and nothing else.
    assert_eq!(
        fields(&find("root", "client")),
        [s("/"), None, None, None, None]
    );

    // Packets whose process is known name its container too.
    let pkts: Vec<&Value> = cap_p
        .records
        .iter()
        .filter(|r| kind(r) == "packet")
        .collect();
    let owned_by = |comm: &str| -> Vec<&Value> {
        pkts.iter().copied().filter(|r| r["comm"] == comm).collect()
    };
    let docker_pkts: Vec<&Value> = owned_by("curl")
        .into_iter()
        .filter(|r| r["container_id"] == DOCKER)
        .collect();
    assert!(
        !docker_pkts.is_empty(),
        "no packet of the docker curl\n{}",
        cap_p.dump_all()
    );
    assert!(docker_pkts
        .iter()
        .all(|r| r["container_runtime"] == "docker" && r["cgroup"] == docker_name.as_str()));
    let server_pkts = owned_by("python3");
    assert!(
        !server_pkts.is_empty(),
        "no packet of the server\n{}",
        cap_p.dump_all()
    );
    for r in server_pkts {
        assert_eq!(
            fields(r)[2..],
            [s(CONTAINERD), s("containerd"), s(POD_A)],
            "{r}"
        );
    }
    for r in &pkts {
        if r["pid"].is_null() {
            assert!(
                r.get("cgroup").is_none(),
                "a packet without a process names a cgroup: {r}"
            );
        }
    }

    // --container DOCKER-prefix: only the docker curl's messages.
    let targets = |c: &Capture| {
        let mut t: Vec<String> = c
            .http()
            .filter(|r| kind(r) == "http_request")
            .map(|r| {
                format!(
                    "{} {}",
                    r["role"].as_str().unwrap_or(""),
                    r["target"].as_str().unwrap_or("")
                )
            })
            .collect();
        t.sort();
        t
    };
    assert_eq!(
        targets(&cap_c),
        ["client /docker", "client /late"],
        "{}",
        cap_c.dump_all()
    );
    assert_eq!(targets(&cap_u), ["client /unit"], "{}", cap_u.dump_all());
    // The kernel left out the connections of the cgroups that do not match
    // (the server's, the other clients'), and only with a filter.
    let filtered = |c: &Capture| {
        c.stats()
            .last()
            .and_then(|s| s["conns_cgroup_filtered"].as_u64())
            .unwrap_or_else(|| panic!("no conns_cgroup_filtered\n{}", c.dump_all()))
    };
    assert_eq!(filtered(&cap), 0);
    // --container: the server's five accepted connections and the crio,
    // podman, unit and root clients'; --unit: the server's and four clients'.
    assert!(filtered(&cap_c) >= 9, "{}", filtered(&cap_c));
    assert!(filtered(&cap_u) >= 9, "{}", filtered(&cap_u));
}
