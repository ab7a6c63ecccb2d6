//! HTTP-level filters (`hdrtap http --method/--path/--host/--status/
//! --header/--min-latency/--side`, and the `[http]` keys of the same
//! names), applied in userspace to the records after redaction, before any
//! output. What the kernel can filter cheaply (pid, comm, port) it already
//! does; these need the parsed message.
//!
//! A request is judged by its own start line and headers; a response (and
//! trailers, a reset) by the request it answers (method, path, host) and by
//! its own status, latency and headers. `--status` and `--min-latency` only
//! say something about responses, so with either, requests are not shown
//! (each response carries its request's method and target). An alert is
//! shown with the record it is about, or not at all.
use std::collections::HashSet;

use glob::Pattern;

use crate::cgroup::Workload;
use crate::record::{HttpKind, HttpRecord, Role};
use crate::sink::Record;

/// A set of status codes: `404`, `4xx`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusSpec {
    Code(u16),
    /// 1 to 5: every code of that hundred.
    Class(u16),
}

/// As written: `404`, `5xx`.
impl std::fmt::Display for StatusSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StatusSpec::Code(c) => write!(f, "{c}"),
            StatusSpec::Class(c) => write!(f, "{c}xx"),
        }
    }
}

impl StatusSpec {
    /// `404`, `5xx` (case-insensitive), or why not.
    pub fn parse(s: &str) -> Result<StatusSpec, String> {
        let t = s.trim().to_ascii_lowercase();
        if let Some(c) = t.strip_suffix("xx") {
            if let Ok(c @ 1..=5) = c.parse::<u16>() {
                return Ok(StatusSpec::Class(c));
            }
        } else if let Ok(code @ 100..=599) = t.parse::<u16>() {
            return Ok(StatusSpec::Code(code));
        }
        Err(format!(
            "{s:?} is not a status: a code (404) or a class (1xx to 5xx)"
        ))
    }

    fn matches(self, status: u16) -> bool {
        match self {
            StatusSpec::Code(c) => status == c,
            StatusSpec::Class(c) => status / 100 == c,
        }
    }
}

/// A glob for `--path` and `--host` (`*` any run of characters, `/`
/// included; `?` one; `[ab]`), or why not.
pub fn parse_glob(s: &str) -> Result<Pattern, String> {
    Pattern::new(s).map_err(|e| format!("{s:?} is not a glob: {e}"))
}

/// A duration: a number with `us`, `ms` or `s` (`250ms`, `1.5s`); a bare
/// number is milliseconds. In nanoseconds.
pub fn parse_latency(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("us") {
        (n, 1e3)
    } else if let Some(n) = t.strip_suffix("ms") {
        (n, 1e6)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1e9)
    } else {
        (t, 1e6)
    };
    match num.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok((v * scale) as u64),
        _ => Err(format!("{s:?} is not a duration (e.g. 250ms, 1.5s, 800us)")),
    }
}

/// The filters of one capture; the default lets everything through.
#[derive(Debug, Clone, Default)]
pub struct HttpFilter {
    /// Upper-case methods; empty: any.
    pub methods: Vec<String>,
    pub path: Option<Pattern>,
    pub host: Option<Pattern>,
    pub status: Vec<StatusSpec>,
    /// A header name (lower case) and, if given, its exact value.
    pub header: Option<(String, Option<String>)>,
    pub min_latency_ns: Option<u64>,
    pub side: Option<Role>,
    /// Container id prefixes; empty: any (and no container needed).
    pub containers: Vec<String>,
    /// systemd unit names (`nginx` stands for `nginx.service`); empty: any.
    pub units: Vec<String>,
}

impl HttpFilter {
    /// Whether any filter is set.
    pub fn is_active(&self) -> bool {
        !self.methods.is_empty()
            || self.path.is_some()
            || self.host.is_some()
            || !self.status.is_empty()
            || self.header.is_some()
            || self.min_latency_ns.is_some()
            || self.side.is_some()
            || !self.containers.is_empty()
            || !self.units.is_empty()
    }

    /// Whether `--container` or `--unit` is set: which processes pass
    /// depends on their cgroup alone, so the kernel can filter too.
    pub fn by_workload(&self) -> bool {
        !self.containers.is_empty() || !self.units.is_empty()
    }

    /// Whether a process in a cgroup naming `workload` passes `--container`
    /// and `--unit`.
    pub fn workload_matches(&self, workload: Option<&Workload>) -> bool {
        if !self.containers.is_empty()
            && !workload.is_some_and(|w| self.containers.iter().any(|c| w.container_starts_with(c)))
        {
            return false;
        }
        if !self.units.is_empty() {
            let unit = workload.and_then(|w| w.unit.as_deref());
            let named = |u: &str, want: &str| u == want || u.strip_suffix(".service") == Some(want);
            if !unit.is_some_and(|u| self.units.iter().any(|want| named(u, want))) {
                return false;
            }
        }
        true
    }

    /// Whether `r` passes.
    pub fn matches(&self, r: &HttpRecord) -> bool {
        if self.side.is_some_and(|s| s != r.role) {
            return false;
        }
        if !self.workload_matches(r.process.workload.as_deref()) {
            return false;
        }
        let request = r.kind == HttpKind::Request;
        let (method, target, host) = if request {
            (
                r.method.as_deref(),
                r.target.as_deref(),
                r.h2.as_ref()
                    .and_then(|h| h.authority.as_deref())
                    .or_else(|| r.header("host")),
            )
        } else {
            match &r.request {
                Some(q) => (
                    Some(q.method.as_str()),
                    Some(q.target.as_str()),
                    q.host.as_deref(),
                ),
                None => (None, None, None),
            }
        };
        if !self.methods.is_empty()
            && !method.is_some_and(|m| self.methods.iter().any(|x| x.eq_ignore_ascii_case(m)))
        {
            return false;
        }
        if let Some(p) = &self.path {
            let path = target.map(|t| t.split(['?', '#']).next().unwrap_or(""));
            if !path.is_some_and(|p2| p.matches(p2)) {
                return false;
            }
        }
        if let Some(p) = &self.host {
            // Without the port: `--host example.com` matches `example.com:8080`.
            let h = host.map(|h| strip_port(h).to_ascii_lowercase());
            if !h.is_some_and(|h| p.matches(&h)) {
                return false;
            }
        }
        if !self.status.is_empty() || self.min_latency_ns.is_some() {
            if request {
                return false;
            }
            let status = r.status.unwrap_or(0);
            if !self.status.is_empty() && !self.status.iter().any(|s| s.matches(status)) {
                return false;
            }
            if let Some(min) = self.min_latency_ns {
                if r.latency_ns.is_none_or(|l| l < min) {
                    return false;
                }
            }
        }
        if let Some((name, value)) = &self.header {
            let ok = r.headers.iter().any(|(n, v)| {
                n.eq_ignore_ascii_case(name) && value.as_ref().is_none_or(|want| v == want)
            });
            if !ok {
                return false;
            }
        }
        true
    }

    /// Drop the HTTP records that do not pass from `batch[from..]`, and the
    /// alerts about them. Returns how many records were dropped.
    pub fn retain(&self, batch: &mut Vec<Record>, from: usize) -> u64 {
        if !self.is_active() || from >= batch.len() {
            return 0;
        }
        let mut dropped_ids = HashSet::new();
        let mut dropped = 0;
        let mut i = 0usize;
        batch.retain(|rec| {
            i += 1;
            if i <= from {
                return true;
            }
            match rec {
                Record::Http(r) if !self.matches(r) => {
                    dropped_ids.insert(r.id);
                    dropped += 1;
                    false
                }
                Record::Alert(a) => !dropped_ids.contains(&a.record_id),
                _ => true,
            }
        });
        dropped
    }
}

/// `host[:port]` or `[v6]:port` without the port.
fn strip_port(h: &str) -> &str {
    if let Some(rest) = h.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match h.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => h,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{test_request, test_response};
    use std::sync::Arc;

    fn req(method: &str, target: &str, host: &str) -> HttpRecord {
        HttpRecord {
            method: Some(method.into()),
            target: Some(target.into()),
            ..test_request(&[("Host", host), ("X-Tenant", "acme")])
        }
    }

    fn resp(method: &str, target: &str, host: &str, status: u16, latency_ms: u64) -> HttpRecord {
        let mut r = test_response(
            Role::Server,
            (method, target, Some(host)),
            status,
            latency_ms,
        );
        r.headers = [("Content-Type", "text/html")].into_iter().collect();
        r
    }

    #[test]
    fn parses_status_globs_and_durations() {
        assert_eq!(StatusSpec::parse("5XX"), Ok(StatusSpec::Class(5)));
        assert_eq!(StatusSpec::parse("404"), Ok(StatusSpec::Code(404)));
        for s in ["404", "5xx"] {
            assert_eq!(StatusSpec::parse(s).unwrap().to_string(), s);
        }
        for bad in ["6xx", "99", "abc", "4x"] {
            assert!(StatusSpec::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_latency("250ms"), Ok(250_000_000));
        assert_eq!(parse_latency("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_latency("800us"), Ok(800_000));
        assert_eq!(parse_latency("20"), Ok(20_000_000));
        assert!(parse_latency("fast").is_err());
        assert!(parse_glob("/api/[").is_err());
    }

    #[test]
    fn each_filter_on_requests_and_responses() {
        let f = |set: &dyn Fn(&mut HttpFilter)| {
            let mut f = HttpFilter::default();
            set(&mut f);
            f
        };
        let get = req("GET", "/api/users/7?x=1", "Example.com:8080");
        let ok = resp("GET", "/api/users/7?x=1", "example.com", 200, 5);
        let err = resp("POST", "/login", "other.org", 503, 900);
        let m = f(&|f| f.methods = vec!["get".into()]);
        assert!(m.matches(&get) && m.matches(&ok) && !m.matches(&err));
        let p = f(&|f| f.path = Some(parse_glob("/api/*").unwrap()));
        assert!(p.matches(&get) && p.matches(&ok) && !p.matches(&err));
        let h = f(&|f| f.host = Some(parse_glob("example.com").unwrap()));
        assert!(h.matches(&get) && h.matches(&ok) && !h.matches(&err));
        let s = f(&|f| f.status = vec![StatusSpec::Class(5)]);
        assert!(!s.matches(&get) && !s.matches(&ok) && s.matches(&err));
        let l = f(&|f| f.min_latency_ns = Some(parse_latency("100ms").unwrap()));
        assert!(!l.matches(&get) && !l.matches(&ok) && l.matches(&err));
        let hd = f(&|f| f.header = Some(("x-tenant".into(), Some("acme".into()))));
        assert!(hd.matches(&get) && !hd.matches(&ok));
        let hn = f(&|f| f.header = Some(("content-type".into(), None)));
        assert!(!hn.matches(&get) && hn.matches(&ok));
        let side = f(&|f| f.side = Some(Role::Server));
        assert!(!side.matches(&get) && side.matches(&ok));
        assert!(!HttpFilter::default().is_active());
        assert_eq!(strip_port("[::1]:80"), "::1");
        assert_eq!(strip_port("::1"), "::1");
    }

    /// `--container` takes id prefixes, `--unit` unit names (`nginx` for
    /// `nginx.service`); a record with no such workload never passes.
    #[test]
    fn container_and_unit_filters() {
        let id = "0123456789abcdef".repeat(4);
        let mut docker = resp("GET", "/x", "h", 200, 1);
        docker.process.workload = Some(std::sync::Arc::new(crate::cgroup::Workload::from_path(
            &format!("/system.slice/docker-{id}.scope"),
        )));
        let mut nginx = resp("GET", "/x", "h", 200, 1);
        nginx.process.workload = Some(std::sync::Arc::new(crate::cgroup::Workload::from_path(
            "/system.slice/nginx.service",
        )));
        let bare = resp("GET", "/x", "h", 200, 1);
        let f = |containers: &[&str], units: &[&str]| HttpFilter {
            containers: containers.iter().map(|s| s.to_string()).collect(),
            units: units.iter().map(|s| s.to_string()).collect(),
            ..HttpFilter::default()
        };
        let short = f(&["0123456789ab"], &[]);
        assert!(short.is_active());
        assert!(short.matches(&docker) && !short.matches(&nginx) && !short.matches(&bare));
        assert!(!f(&["fff"], &[]).matches(&docker));
        for u in ["nginx", "nginx.service"] {
            let by_unit = f(&[], &[u]);
            assert!(
                by_unit.matches(&nginx) && !by_unit.matches(&docker) && !by_unit.matches(&bare)
            );
        }
        assert!(f(&[], &[&format!("docker-{id}.scope")]).matches(&docker));
    }

    #[test]
    fn retain_drops_records_and_their_alerts_only_past_from() {
        let filter = HttpFilter {
            status: vec![StatusSpec::Code(404)],
            ..HttpFilter::default()
        };
        let mut rules = crate::rules::Rules::new(crate::rules::RulesConfig::default());
        let mut bad = resp("GET", "/x", "h", 200, 1);
        bad.id = 5;
        bad.headers = [("Content-Length", "1"), ("Transfer-Encoding", "chunked")]
            .into_iter()
            .collect();
        bad.framing = crate::record::Framing::of([
            (&b"Content-Length"[..], &b"1"[..]),
            (&b"Transfer-Encoding"[..], &b"chunked"[..]),
        ]);
        let mut alerts = Vec::new();
        rules.check(&bad, &mut alerts);
        assert_eq!(alerts.len(), 1);
        let mut keep = resp("GET", "/y", "h", 404, 1);
        keep.id = 6;
        let earlier = Record::Http(Arc::new(req("GET", "/z", "h")));
        let mut batch = vec![
            earlier,
            Record::Http(Arc::new(bad)),
            Record::Alert(Arc::new(alerts.remove(0))),
            Record::Http(Arc::new(keep)),
        ];
        assert_eq!(filter.retain(&mut batch, 1), 1);
        assert_eq!(batch.len(), 2, "{batch:?}");
        assert!(matches!(&batch[0], Record::Http(r) if r.kind == HttpKind::Request));
        assert!(matches!(&batch[1], Record::Http(r) if r.id == 6));
    }
}
