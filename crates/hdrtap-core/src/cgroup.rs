//! Who a cgroup is: the systemd unit, container and Kubernetes pod a
//! cgroup v2 path names ([`Workload::from_path`]), and the cache that turns
//! the kernel's cgroup ids into those paths ([`Cgroups`]).
//!
//! Written here because no crate does it for cgroup v2 ids: the names
//! follow what systemd, Docker, containerd, CRI-O, podman and the kubelet
//! (systemd and cgroupfs drivers) create:
//!
//! | layout | example |
//! |--------|---------|
//! | systemd unit | `/system.slice/nginx.service` |
//! | Docker, systemd driver | `/system.slice/docker-<id>.scope` |
//! | Docker, cgroupfs driver | `/docker/<id>` |
//! | podman | `/machine.slice/libpod-<id>.scope`, `/libpod_parent/libpod-<id>` |
//! | kubelet, systemd driver | `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid with _>.slice/cri-containerd-<id>.scope` (`crio-<id>.scope`, `docker-<id>.scope`) |
//! | kubelet, cgroupfs driver | `/kubepods/burstable/pod<uid>/<id>` (`crio-<id>`) |
//!
//! Pod names and namespaces are not in the path: they need the kubelet or
//! the API server (docs/SCHEMA.md says how they would be added).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a cgroup path says about the processes in it. Fields that do not
/// apply are `None`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Workload {
    /// The cgroup v2 path, from the hierarchy's root (`/` for the root).
    pub cgroup: String,
    /// The innermost systemd unit: `nginx.service`, `session-3.scope`.
    pub unit: Option<String>,
    /// The container's id (64 hex digits as the runtimes write it).
    pub container_id: Option<String>,
    /// `docker`, `containerd`, `cri-o`, `podman`, or `cri` for a bare id
    /// under kubepods (a CRI runtime the path does not name).
    pub container_runtime: Option<&'static str>,
    /// The Kubernetes pod's UID, dashes restored.
    pub pod_uid: Option<String>,
}

/// Every `container_runtime` value.
pub const RUNTIMES: [&str; 5] = ["docker", "containerd", "cri-o", "podman", "cri"];

/// A container id: 64 hex digits (the runtimes' full ids).
fn is_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `prefix<id>suffix` with a full container id.
fn id_between<'a>(name: &'a str, prefix: &str, suffix: &str) -> Option<&'a str> {
    let id = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
    is_id(id).then_some(id)
}

/// The container runtime and id one path component names.
fn container(name: &str, parent: Option<&str>) -> Option<(&'static str, String)> {
    const SCOPES: [(&str, &str); 5] = [
        ("docker-", "docker"),
        ("cri-containerd-", "containerd"),
        ("crio-", "cri-o"),
        ("libpod-", "podman"),
        ("containerd-", "containerd"),
    ];
    for (prefix, runtime) in SCOPES {
        // systemd driver: `<prefix><id>.scope`; cgroupfs: `<prefix><id>`.
        if let Some(id) =
            id_between(name, prefix, ".scope").or_else(|| id_between(name, prefix, ""))
        {
            return Some((runtime, id.to_string()));
        }
    }
    if is_id(name) {
        let runtime = match parent {
            Some("docker") => "docker",
            Some(p) if p.starts_with("pod") => "cri",
            _ => return None,
        };
        return Some((runtime, name.to_string()));
    }
    None
}

/// The pod UID one path component names: `pod<uid>` (cgroupfs) or
/// `kubepods-<qos>-pod<uid, _ for ->.slice` (systemd).
fn pod_uid(name: &str) -> Option<String> {
    let uid = match name.strip_suffix(".slice") {
        Some(slice) => slice.rsplit_once("-pod")?.1.replace('_', "-"),
        None => name.strip_prefix("pod")?.to_string(),
    };
    // A UID: 36 characters, hex and four dashes.
    let ok = uid.len() == 36
        && uid.bytes().filter(|&b| b == b'-').count() == 4
        && uid.bytes().all(|b| b == b'-' || b.is_ascii_hexdigit());
    ok.then_some(uid)
}

/// systemd unit suffixes a cgroup directory can carry (slices group units,
/// they are not one).
const UNIT_SUFFIXES: [&str; 3] = [".service", ".scope", ".socket"];

impl Workload {
    /// What `path` (from the cgroup root, `/` for the root) names.
    pub fn from_path(path: &str) -> Workload {
        let mut w = Workload {
            cgroup: path.to_string(),
            ..Default::default()
        };
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let in_kubepods = parts.iter().any(|p| p.starts_with("kubepods"));
        for (i, name) in parts.iter().enumerate() {
            if UNIT_SUFFIXES.iter().any(|s| name.ends_with(s)) {
                w.unit = Some(name.to_string());
            }
            if in_kubepods && w.pod_uid.is_none() {
                w.pod_uid = pod_uid(name);
            }
            let parent = i.checked_sub(1).map(|j| parts[j]);
            if let Some((runtime, id)) = container(name, parent) {
                w.container_runtime = Some(runtime);
                w.container_id = Some(id);
            }
        }
        w
    }

    /// The names that apply, as (JSON field, value), in JSON order:
    /// `unit`, `container_id`, `container_runtime`, `pod_uid`.
    pub fn fields(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("unit", self.unit.as_deref()),
            ("container_id", self.container_id.as_deref()),
            ("container_runtime", self.container_runtime),
            ("pod_uid", self.pod_uid.as_deref()),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some((k, v?)))
    }

    /// Whether `id` starts this workload's container id (as `docker ps`
    /// shows a short one).
    pub fn container_starts_with(&self, id: &str) -> bool {
        self.container_id
            .as_deref()
            .is_some_and(|c| !id.is_empty() && c.starts_with(id))
    }
}

/// The cgroup ids of one hierarchy (cgroup v2: the inode number of each
/// cgroup's directory) and what each names. A miss rescans the hierarchy,
/// at most once per [`Cgroups::RESCAN`]; ids still unknown after it are
/// `None` until the next scan may run.
#[derive(Debug)]
pub struct Cgroups {
    root: PathBuf,
    known: HashMap<u64, Arc<Workload>>,
    scanned: Option<Instant>,
    /// The last id found and what it names: records come in runs of one
    /// process.
    last: Option<(u64, Arc<Workload>)>,
    /// Scans done so far.
    pub scans: u64,
    /// With [`Cgroups::tracking_new`]: ids learnt since [`Cgroups::fresh`]
    /// last took them.
    new_ids: Option<Vec<u64>>,
}

impl Cgroups {
    /// The shortest time between two scans of the hierarchy.
    pub const RESCAN: Duration = Duration::from_secs(1);

    /// The cgroups under `root` (normally `/sys/fs/cgroup`), scanned at
    /// the first lookup.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Cgroups {
            root: root.into(),
            known: HashMap::new(),
            scanned: None,
            last: None,
            scans: 0,
            new_ids: None,
        }
    }

    /// Keep the ids each scan learns for [`Cgroups::fresh`].
    pub fn tracking_new(mut self) -> Self {
        self.new_ids = Some(Vec::new());
        self
    }

    /// With [`Cgroups::tracking_new`]: the cgroups learnt since the last
    /// call (every one at the first), after a scan of the hierarchy if one
    /// may run ([`Cgroups::RESCAN`]).
    pub fn fresh(&mut self) -> Vec<(u64, Arc<Workload>)> {
        if self.may_scan() {
            self.scan();
        }
        let ids = self
            .new_ids
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        ids.into_iter()
            .filter_map(|id| self.known.get(&id).map(|w| (id, Arc::clone(w))))
            .collect()
    }

    /// The machine's cgroup v2 hierarchy: `/sys/fs/cgroup` (unified), or
    /// `/sys/fs/cgroup/unified` (systemd's hybrid layout); `None` without
    /// one.
    pub fn system() -> Option<Self> {
        ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
            .into_iter()
            .map(Path::new)
            .find(|p| p.join("cgroup.controllers").exists())
            .map(Cgroups::new)
    }

    /// What cgroup `id` names, or `None` if it is not (or no longer) in the
    /// hierarchy.
    pub fn lookup(&mut self, id: u64) -> Option<Arc<Workload>> {
        if let Some((last, w)) = &self.last {
            if *last == id {
                return Some(Arc::clone(w));
            }
        }
        if !self.known.contains_key(&id) && self.may_scan() {
            self.scan();
        }
        let found = self.known.get(&id).cloned()?;
        self.last = Some((id, Arc::clone(&found)));
        Some(found)
    }

    fn may_scan(&self) -> bool {
        self.scanned.is_none_or(|t| t.elapsed() >= Self::RESCAN)
    }

    /// Walk the hierarchy and learn every cgroup's id and path.
    fn scan(&mut self) {
        use std::os::unix::fs::MetadataExt;
        self.scanned = Some(Instant::now());
        self.scans += 1;
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(meta) = std::fs::metadata(&dir) else {
                continue;
            };
            if !self.known.contains_key(&meta.ino()) {
                let rel = relative(&self.root, &dir);
                self.known
                    .insert(meta.ino(), Arc::new(Workload::from_path(&rel)));
                if let Some(new) = &mut self.new_ids {
                    new.push(meta.ino());
                }
            }
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(e.path());
                }
            }
        }
    }
}

/// `dir` as a cgroup path: from `root`, starting with `/`.
fn relative(root: &Path, dir: &Path) -> String {
    let rel = dir.strip_prefix(root).unwrap_or(dir);
    format!("/{}", rel.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const UID: &str = "1b2c3d4e-5f60-7182-93a4-b5c6d7e8f901";

    fn w(
        path: &str,
    ) -> (
        Option<String>,
        Option<&'static str>,
        Option<String>,
        Option<String>,
    ) {
        let w = Workload::from_path(path);
        assert_eq!(w.cgroup, path);
        (w.unit, w.container_runtime, w.container_id, w.pod_uid)
    }

    #[test]
    fn systemd_units() {
        assert_eq!(
            w("/system.slice/nginx.service").0.as_deref(),
            Some("nginx.service")
        );
        assert_eq!(
            w("/user.slice/user-0.slice/session-3.scope").0.as_deref(),
            Some("session-3.scope")
        );
        assert_eq!(w("/system.slice"), (None, None, None, None));
        assert_eq!(w("/"), (None, None, None, None));
    }

    #[test]
    fn docker_podman_crio_containerd() {
        let id = Some(ID.to_string());
        let unit = |p: &str| Some(format!("{p}{ID}.scope"));
        assert_eq!(
            w(&format!("/system.slice/docker-{ID}.scope")),
            (unit("docker-"), Some("docker"), id.clone(), None)
        );
        assert_eq!(
            w(&format!("/docker/{ID}")),
            (None, Some("docker"), id.clone(), None)
        );
        assert_eq!(
            w(&format!("/machine.slice/libpod-{ID}.scope")),
            (unit("libpod-"), Some("podman"), id.clone(), None)
        );
        assert_eq!(
            w(&format!("/libpod_parent/libpod-{ID}")),
            (None, Some("podman"), id.clone(), None)
        );
        assert_eq!(
            w(&format!("/system.slice/crio-{ID}.scope")),
            (unit("crio-"), Some("cri-o"), id.clone(), None)
        );
        // Not an id: too short, or not hex.
        assert_eq!(w("/system.slice/docker-abc.scope").1, None);
        assert_eq!(w(&format!("/docker/{}", "g".repeat(64))).1, None);
        // A bare id outside docker/ and kubepods is no container.
        assert_eq!(w(&format!("/somewhere/{ID}")).1, None);
    }

    #[test]
    fn kubelet_systemd_and_cgroupfs_drivers() {
        let id = Some(ID.to_string());
        let uid = Some(UID.to_string());
        let slice_uid = UID.replace('-', "_");
        assert_eq!(
            w(&format!(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{slice_uid}.slice/cri-containerd-{ID}.scope"
            )),
            (Some(format!("cri-containerd-{ID}.scope")), Some("containerd"), id.clone(), uid.clone())
        );
        assert_eq!(
            w(&format!(
                "/kubepods.slice/kubepods-pod{slice_uid}.slice/crio-{ID}.scope"
            ))
            .1,
            Some("cri-o")
        );
        assert_eq!(
            w(&format!("/kubepods/burstable/pod{UID}/{ID}")),
            (None, Some("cri"), id.clone(), uid.clone())
        );
        assert_eq!(
            w(&format!("/kubepods/besteffort/pod{UID}/crio-{ID}")),
            (None, Some("cri-o"), id.clone(), uid.clone())
        );
        // The pod's own cgroup: a pod, no container.
        assert_eq!(w(&format!("/kubepods/pod{UID}")), (None, None, None, uid));
        // pod<uid> outside kubepods is not read as a pod.
        assert_eq!(w(&format!("/pod{UID}")).3, None);
    }

    #[test]
    fn short_ids_match_by_prefix() {
        let w = Workload::from_path(&format!("/docker/{ID}"));
        assert!(w.container_starts_with("0123456789ab"));
        assert!(!w.container_starts_with("123"));
        assert!(!w.container_starts_with(""));
    }

    /// Ids are directory inode numbers; a miss rescans, at most once a
    /// second.
    #[test]
    fn lookups_learn_new_cgroups_on_a_miss() {
        use std::os::unix::fs::MetadataExt;
        let root = std::env::temp_dir().join(format!("hdrtap-cg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let unit = root.join("system.slice/web.service");
        std::fs::create_dir_all(&unit).unwrap();
        let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
        let mut cg = Cgroups::new(&root);
        let got = cg.lookup(ino(&unit)).expect("found");
        assert_eq!(got.cgroup, "/system.slice/web.service");
        assert_eq!(got.unit.as_deref(), Some("web.service"));
        assert_eq!(cg.lookup(ino(&root)).unwrap().cgroup, "/");
        assert_eq!(cg.scans, 1);
        // A cgroup made after the scan: unknown until the next one may run.
        let later = root.join(format!("docker/{ID}"));
        std::fs::create_dir_all(&later).unwrap();
        assert_eq!(cg.lookup(ino(&later)), None);
        assert_eq!(cg.lookup(ino(&later)), None);
        assert_eq!(cg.scans, 1, "no second scan within a second");
        cg.scanned = cg.scanned.map(|t| t - Cgroups::RESCAN);
        assert_eq!(
            cg.lookup(ino(&later)).unwrap().container_runtime,
            Some("docker")
        );
        assert_eq!(cg.scans, 2);
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// `fresh` hands over each cgroup once: every one at the first call,
    /// then those the next scan learnt.
    #[test]
    fn fresh_gives_each_cgroup_once() {
        let root = std::env::temp_dir().join(format!("hdrtap-cgf-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("system.slice/a.service")).unwrap();
        let mut cg = Cgroups::new(&root).tracking_new();
        let mut first: Vec<String> = cg
            .fresh()
            .iter()
            .map(|(_, w)| w.cgroup.to_string())
            .collect();
        first.sort();
        assert_eq!(first, ["/", "/system.slice", "/system.slice/a.service"]);
        assert!(
            cg.fresh().is_empty(),
            "no scan within a second, nothing new"
        );
        std::fs::create_dir_all(root.join("system.slice/b.service")).unwrap();
        cg.scanned = cg.scanned.map(|t| t - Cgroups::RESCAN);
        let next: Vec<String> = cg
            .fresh()
            .iter()
            .map(|(_, w)| w.cgroup.to_string())
            .collect();
        assert_eq!(next, ["/system.slice/b.service"]);
        // Without tracking, scans keep nothing for fresh().
        let mut plain = Cgroups::new(&root);
        assert!(plain.lookup(1).is_none());
        assert!(plain.fresh().is_empty());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
