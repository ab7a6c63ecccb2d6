//! The traffic at a glance, for the exit summary of `hdrtap http`: per side
//! (the traced process served or made the requests), the status mix,
//! latency percentiles, the busiest and the slowest endpoints; and the
//! alerts by rule. Endpoints are a method and a route ([`route`]: the path
//! without its query, identifiers folded), at most [`MAX_ENDPOINTS`] of
//! them. It sees records after redaction, like every other output.
use std::collections::HashMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;

use crate::record::{HttpRecord, Role, STATUS_CLASSES};
use crate::sink::Record;

/// Distinct endpoints kept per side; later ones are counted as `(other)`.
pub const MAX_ENDPOINTS: usize = 1000;
/// Endpoints listed per line.
const TOP: usize = 5;

/// A request target as a route: the path without query or fragment, with
/// each segment that looks like an identifier (a number, a UUID, a long
/// hex or mixed letters-and-digits token) folded to `*`, so that
/// `/users/42/orders?page=2` and `/users/7/orders` are one endpoint.
pub fn route(target: &str) -> String {
    let mut out = String::with_capacity(target.len());
    route_into(target, &mut out);
    out
}

/// The endpoint a response answers, appended to `out`: its request's
/// method and [`route`] (`GET /users/*`), or [`REQUEST_NOT_SEEN`].
pub fn endpoint_into(r: &HttpRecord, out: &mut String) {
    match &r.request {
        Some(q) => {
            out.push_str(&q.method);
            out.push(' ');
            route_into(&q.target, out);
        }
        None => out.push_str(REQUEST_NOT_SEEN),
    }
}

/// The endpoint of a response whose request hdrtap did not see.
pub const REQUEST_NOT_SEEN: &str = "(request not seen)";

/// Record `ns` into a latency histogram (in µs, at least 1).
pub fn record_latency(h: &mut Histogram<u64>, ns: u64) {
    let _ = h.record((ns / 1000).max(1));
}

/// The latency at quantile `q` (0..=1) of a histogram of
/// [`record_latency`], in ns.
pub fn latency_at(h: &Histogram<u64>, q: f64) -> u64 {
    h.median_equivalent(h.value_at_quantile(q)) * 1000
}

/// [`route`], appended to `out` (no allocation when it has room).
fn route_into(target: &str, out: &mut String) {
    let path = target.split(['?', '#']).next().unwrap_or("");
    if path.is_empty() {
        out.push('/');
        return;
    }
    for (i, seg) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(if is_identifier(seg) { "*" } else { seg });
    }
}

fn is_identifier(seg: &str) -> bool {
    let digits = seg.bytes().filter(u8::is_ascii_digit).count();
    if seg.is_empty() || digits == 0 {
        return false;
    }
    let hex = seg.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    digits == seg.len()
        || (hex && seg.len() >= 16)
        || (seg.len() >= 20
            && seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

#[derive(Default)]
struct Endpoint {
    count: u64,
    latency_sum_ns: u128,
    latencies: u64,
}

impl Endpoint {
    fn add(&mut self, latency_ns: Option<u64>) {
        self.count += 1;
        if let Some(ns) = latency_ns {
            self.latency_sum_ns += u128::from(ns);
            self.latencies += 1;
        }
    }
}

/// One side's traffic.
struct Side {
    /// Responses by status class: 1xx (final 101 only) .. 5xx, other.
    classes: [u64; 6],
    latency: Histogram<u64>,
    /// The slowest response, exactly.
    max_ns: u64,
    endpoints: HashMap<String, Endpoint>,
    other: Endpoint,
}

impl Side {
    fn new() -> Side {
        Side {
            classes: [0; 6],
            // 1 µs to 1 hour, in µs, 3 significant digits.
            latency: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .expect("static histogram bounds"),
            max_ns: 0,
            endpoints: HashMap::new(),
            other: Endpoint::default(),
        }
    }

    fn total(&self) -> u64 {
        self.classes.iter().sum()
    }
}

/// The traffic seen so far.
pub struct TrafficSummary {
    /// Server side (the process answered), client side (it asked).
    sides: [Side; 2],
    alerts: HashMap<&'static str, u64>,
    /// The endpoint key being looked up: one buffer, reused, so that a
    /// response to a known endpoint allocates nothing.
    key: String,
}

impl Default for TrafficSummary {
    fn default() -> Self {
        TrafficSummary {
            sides: [Side::new(), Side::new()],
            alerts: HashMap::new(),
            key: String::with_capacity(128),
        }
    }
}

impl TrafficSummary {
    /// Count what one record says (final responses and alerts).
    pub fn observe(&mut self, rec: &Record) {
        match rec {
            Record::Http(r) => self.response(r),
            Record::Alert(a) => *self.alerts.entry(a.rule).or_insert(0) += 1,
            Record::Packet(_) | Record::Stats(_) => {}
        }
    }

    fn response(&mut self, r: &HttpRecord) {
        let Some(class) = r.final_status_class() else {
            return;
        };
        let side = &mut self.sides[usize::from(r.role == Role::Client)];
        if let Some(n) = side.classes.get_mut(class) {
            *n += 1;
        }
        if let Some(ns) = r.latency_ns {
            record_latency(&mut side.latency, ns);
            side.max_ns = side.max_ns.max(ns);
        }
        let key = &mut self.key;
        key.clear();
        endpoint_into(r, key);
        // One lookup for an endpoint already seen (the usual case).
        let n = side.endpoints.len();
        if let Some(e) = side.endpoints.get_mut(key.as_str()) {
            e.add(r.latency_ns);
        } else if n < MAX_ENDPOINTS {
            side.endpoints
                .entry(key.clone())
                .or_default()
                .add(r.latency_ns);
        } else {
            side.other.add(r.latency_ns);
        }
    }

    /// The summary lines (none if nothing was seen).
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (side, what) in self
            .sides
            .iter()
            .zip(["served (server side)", "requested (client side)"])
        {
            let total = side.total();
            if total == 0 {
                continue;
            }
            let mut l = format!("hdrtap: {what}: {total} responses:");
            let mix: Vec<String> = STATUS_CLASSES
                .iter()
                .zip(side.classes)
                .filter(|(_, n)| *n > 0)
                .map(|(c, n)| format!("{c} {n}"))
                .collect();
            let _ = write!(l, " {}", mix.join(", "));
            if !side.latency.is_empty() {
                let h = &side.latency;
                let q = |p: f64| ms(latency_at(h, p));
                let _ = write!(
                    l,
                    "; latency p50 {}, p95 {}, p99 {}, max {}",
                    q(0.5),
                    q(0.95),
                    q(0.99),
                    ms(side.max_ns)
                );
            }
            out.push(l);
            let mut by_count: Vec<(&String, &Endpoint)> = side.endpoints.iter().collect();
            by_count.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.0.cmp(b.0)));
            let top: Vec<String> = by_count
                .iter()
                .take(TOP)
                .map(|(k, e)| format!("{k} {}", e.count))
                .collect();
            let mut l = format!("hdrtap:   busiest: {}", top.join(", "));
            if side.other.count > 0 {
                let _ = write!(
                    l,
                    " (and {} responses past {MAX_ENDPOINTS} endpoints)",
                    side.other.count
                );
            }
            out.push(l);
            let mut by_latency: Vec<(&String, f64)> = side
                .endpoints
                .iter()
                .filter(|(_, e)| e.latencies > 0)
                .map(|(k, e)| (k, e.latency_sum_ns as f64 / e.latencies as f64))
                .collect();
            by_latency.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
            if !by_latency.is_empty() {
                let top: Vec<String> = by_latency
                    .iter()
                    .take(TOP)
                    .map(|(k, mean)| format!("{k} {}", ms(*mean as u64)))
                    .collect();
                out.push(format!("hdrtap:   slowest (mean): {}", top.join(", ")));
            }
        }
        let total: u64 = self.alerts.values().sum();
        if total > 0 {
            let mut rules: Vec<(&&str, &u64)> = self.alerts.iter().collect();
            rules.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let list: Vec<String> = rules.iter().map(|(r, n)| format!("{r} {n}")).collect();
            out.push(format!("hdrtap: alerts: {total} ({})", list.join(", ")));
        }
        out
    }
}

/// A duration in ns as milliseconds with a sensible precision.
pub fn ms(ns: u64) -> String {
    let ms = ns as f64 / 1e6;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{test_request, test_response};
    use std::sync::Arc;

    fn resp(role: Role, method: &str, target: &str, status: u16, latency_ms: u64) -> Record {
        Record::Http(Arc::new(test_response(
            role,
            (method, target, None),
            status,
            latency_ms,
        )))
    }

    #[test]
    fn routes_fold_identifiers_and_drop_the_query() {
        assert_eq!(route("/users/42/orders?page=2"), "/users/*/orders");
        assert_eq!(route("/users/7/orders"), "/users/*/orders");
        assert_eq!(route("/f/3fa85f64-5717-4562-b3fc-2c963f66afa6"), "/f/*");
        assert_eq!(route("/static/app.js"), "/static/app.js");
        assert_eq!(route("/v2/api"), "/v2/api");
        assert_eq!(route("*"), "*");
        assert_eq!(route("?x=1"), "/");
    }

    #[test]
    fn status_mix_percentiles_top_endpoints_and_alerts_per_side() {
        let mut s = TrafficSummary::default();
        for i in 0..90 {
            s.observe(&resp(Role::Server, "GET", &format!("/items/{i}"), 200, 1));
        }
        for _ in 0..9 {
            s.observe(&resp(Role::Server, "POST", "/login", 401, 10));
        }
        s.observe(&resp(Role::Server, "GET", "/slow", 503, 500));
        s.observe(&resp(Role::Client, "GET", "/", 200, 2));
        // Interim responses and requests are not counted.
        s.observe(&resp(Role::Server, "GET", "/", 100, 0));
        s.observe(&Record::Http(Arc::new(test_request(&[]))));
        let lines = s.lines();
        let all = lines.join("\n");
        assert_eq!(
            lines[0],
            "hdrtap: served (server side): 100 responses: 2xx 90, 4xx 9, 5xx 1; latency p50 1.00 ms, p95 10 ms, p99 10 ms, max 500 ms",
            "{all}"
        );
        assert_eq!(
            lines[1], "hdrtap:   busiest: GET /items/* 90, POST /login 9, GET /slow 1",
            "{all}"
        );
        assert_eq!(
            lines[2],
            "hdrtap:   slowest (mean): GET /slow 500 ms, POST /login 10 ms, GET /items/* 1.00 ms",
            "{all}"
        );
        assert!(
            lines[3].starts_with("hdrtap: requested (client side): 1 responses: 2xx 1"),
            "{all}"
        );
        assert!(!all.contains("alerts"), "{all}");
    }

    #[test]
    fn alerts_by_rule() {
        let mut s = TrafficSummary::default();
        let mut rules = crate::rules::Rules::new(crate::rules::RulesConfig::default());
        let mut alerts = Vec::new();
        let rec = HttpRecord {
            target: Some("/a/../../etc/passwd".into()),
            ..test_request(&[("User-Agent", "sqlmap/1.7")])
        };
        rules.check(&rec, &mut alerts);
        rules.check(&rec, &mut alerts);
        assert_eq!(alerts.len(), 4, "{alerts:?}");
        for a in alerts {
            s.observe(&Record::Alert(Arc::new(a)));
        }
        assert_eq!(
            s.lines(),
            ["hdrtap: alerts: 4 (path_traversal 2, scanner_user_agent 2)"]
        );
    }

    #[test]
    fn endpoints_are_bounded() {
        let mut s = TrafficSummary::default();
        for i in 0..(MAX_ENDPOINTS + 10) {
            s.observe(&resp(Role::Server, "GET", &format!("/p{i}x"), 200, 1));
        }
        let all = s.lines().join("\n");
        assert!(
            all.contains("(and 10 responses past 1000 endpoints)"),
            "{all}"
        );
        assert_eq!(s.sides[0].endpoints.len(), MAX_ENDPOINTS);
    }
}
