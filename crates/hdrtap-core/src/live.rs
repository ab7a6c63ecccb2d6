//! The live endpoint table of `hdrtap top`: per endpoint (the side, the
//! request's method and [`route`](crate::summary::route)), from final
//! responses: how many, how many a second lately, what share failed, and
//! latency percentiles.
//!
//! - Only final responses count (as in the exit summary: requests,
//!   trailers, resets and interim 1xx responses other than 101 do not);
//!   each carries its request's method and target and its latency.
//! - The rate is over a sliding window of the last [`WINDOW_SECS`] seconds
//!   (whole seconds, the current one included), divided by the time that
//!   window covers (less at the start). The clock is the caller's: every
//!   call takes `now`, any monotonic time since any fixed origin.
//! - Errors: 4xx and 5xx are counted apart; their sum is the error share
//!   the table sorts by, 5xx breaking ties.
//! - Latency: an hdrhistogram per endpoint, in µs with two significant
//!   digits (within 1 %), growing to the slowest response seen, plus the
//!   exact maximum. Measured with latencies up to 1 s: 1,792 counters (14
//!   KiB) an endpoint; three digits would take 11,264 (90 KiB, 90 MB for a
//!   thousand endpoints).
//! - At most [`MAX_ENDPOINTS`] endpoints are kept (both sides together);
//!   responses to later ones are counted in one `(other)` row per side,
//!   which the view shows like any other row.
use std::cmp::Ordering;
use std::collections::HashMap;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::record::{HttpRecord, Role};
use crate::summary::{self, endpoint_into, REQUEST_NOT_SEEN};

/// Endpoints kept at most; later ones are counted in `(other)`.
pub const MAX_ENDPOINTS: usize = summary::MAX_ENDPOINTS;
/// Seconds the rate is averaged over.
pub const WINDOW_SECS: u64 = 5;
/// The route of the rows holding the endpoints past the bound.
pub const OTHER: &str = "(other)";

/// Responses per whole second over the last [`WINDOW_SECS`] seconds.
#[derive(Debug, Clone, Default)]
struct Window {
    /// The second each slot counts (slot `s % WINDOW_SECS`).
    secs: [u64; WINDOW_SECS as usize],
    counts: [u64; WINDOW_SECS as usize],
}

impl Window {
    fn add(&mut self, now: Duration) {
        let s = now.as_secs();
        let i = (s % WINDOW_SECS) as usize;
        if self.secs[i] != s {
            self.secs[i] = s;
            self.counts[i] = 0;
        }
        self.counts[i] += 1;
    }

    /// Responses per second over the window ending at `now`, for a table
    /// that started at `started`.
    fn rate(&self, now: Duration, started: Duration) -> f64 {
        let s = now.as_secs();
        let first = s.saturating_sub(WINDOW_SECS - 1);
        let n: u64 = self
            .secs
            .iter()
            .zip(self.counts)
            .filter(|(sec, _)| (first..=s).contains(sec))
            .map(|(_, c)| c)
            .sum();
        let from = Duration::from_secs(first).max(started);
        let span = now.saturating_sub(from).as_secs_f64().max(1.0);
        n as f64 / span
    }
}

/// One endpoint's numbers.
#[derive(Debug, Clone)]
pub struct Row {
    pub side: Role,
    /// The request's method; empty for `(other)` and [`REQUEST_NOT_SEEN`].
    pub method: String,
    /// The request's route, [`OTHER`] or [`REQUEST_NOT_SEEN`].
    pub route: String,
    /// Final responses.
    pub count: u64,
    pub status_4xx: u64,
    pub status_5xx: u64,
    window: Window,
    latency: Histogram<u64>,
    max_ns: u64,
}

impl Row {
    fn new(side: Role, method: &str, route: &str) -> Row {
        // In µs from 1 µs; grows to the largest latency seen.
        let mut latency = Histogram::new_with_max(1000, 2).expect("static histogram bounds");
        latency.auto(true);
        Row {
            side,
            method: method.to_string(),
            route: route.to_string(),
            count: 0,
            status_4xx: 0,
            status_5xx: 0,
            window: Window::default(),
            latency,
            max_ns: 0,
        }
    }

    fn add(&mut self, r: &HttpRecord, class: usize, now: Duration) {
        self.count += 1;
        match class {
            3 => self.status_4xx += 1,
            4 => self.status_5xx += 1,
            _ => {}
        }
        self.window.add(now);
        if let Some(ns) = r.latency_ns {
            summary::record_latency(&mut self.latency, ns);
            self.max_ns = self.max_ns.max(ns);
        }
    }

    /// `METHOD route` (what the filter matches), or the route alone.
    pub fn label(&self) -> String {
        if self.method.is_empty() {
            self.route.clone()
        } else {
            format!("{} {}", self.method, self.route)
        }
    }

    /// Share of responses that were 4xx, 0..=1.
    pub fn share_4xx(&self) -> f64 {
        share(self.status_4xx, self.count)
    }

    /// Share of responses that were 5xx, 0..=1.
    pub fn share_5xx(&self) -> f64 {
        share(self.status_5xx, self.count)
    }

    /// Share of responses that were 4xx or 5xx, 0..=1.
    pub fn error_share(&self) -> f64 {
        share(self.status_4xx + self.status_5xx, self.count)
    }

    /// The latency at quantile `q` (0..=1), in ns, at most the maximum
    /// (the histogram's bucket middle can be past it); None when no
    /// response had one.
    pub fn latency_ns(&self, q: f64) -> Option<u64> {
        (!self.latency.is_empty()).then(|| summary::latency_at(&self.latency, q).min(self.max_ns))
    }

    /// The slowest response, exactly, in ns; None when no response had a latency.
    pub fn max_ns(&self) -> Option<u64> {
        (!self.latency.is_empty()).then_some(self.max_ns)
    }
}

fn share(n: u64, of: u64) -> f64 {
    if of == 0 {
        0.0
    } else {
        n as f64 / of as f64
    }
}

/// What the view is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// Responses, most first.
    Count,
    /// Responses per second lately, most first.
    Rate,
    /// Error share (4xx + 5xx), highest first; 5xx share breaks ties.
    Errors,
    /// Median latency, slowest first.
    P50,
    /// 99th percentile latency, slowest first.
    P99,
    /// `METHOD route`, alphabetically.
    Route,
}

impl SortKey {
    pub const ALL: [SortKey; 6] = [
        SortKey::Count,
        SortKey::Rate,
        SortKey::Errors,
        SortKey::P50,
        SortKey::P99,
        SortKey::Route,
    ];

    /// The key after this one (Tab).
    pub fn next(self) -> SortKey {
        let i = Self::ALL.iter().position(|k| *k == self).unwrap_or(0);
        Self::ALL[(i + 1) % Self::ALL.len()]
    }

    pub fn name(self) -> &'static str {
        match self {
            SortKey::Count => "count",
            SortKey::Rate => "rate",
            SortKey::Errors => "errors",
            SortKey::P50 => "p50",
            SortKey::P99 => "p99",
            SortKey::Route => "route",
        }
    }
}

/// Every endpoint seen, bounded.
#[derive(Debug)]
pub struct Table {
    rows: Vec<Row>,
    /// Side and endpoint key (`s GET /a/*`) → index in `rows`.
    index: HashMap<String, usize>,
    /// The endpoints past the bound: server side, client side.
    other: [Row; 2],
    max_endpoints: usize,
    started: Duration,
    total: u64,
    window: Window,
    /// The key being looked up, reused.
    key: String,
}

impl Table {
    /// An empty table started at `now`, keeping [`MAX_ENDPOINTS`] endpoints.
    pub fn new(now: Duration) -> Table {
        Table::with_max_endpoints(MAX_ENDPOINTS, now)
    }

    /// An empty table started at `now`, keeping `max` endpoints.
    pub fn with_max_endpoints(max: usize, now: Duration) -> Table {
        Table {
            rows: Vec::new(),
            index: HashMap::new(),
            other: [
                Row::new(Role::Server, "", OTHER),
                Row::new(Role::Client, "", OTHER),
            ],
            max_endpoints: max,
            started: now,
            total: 0,
            window: Window::default(),
            key: String::with_capacity(128),
        }
    }

    /// Count a record seen at `now` (final responses only; the rest is ignored).
    pub fn observe(&mut self, r: &HttpRecord, now: Duration) {
        let Some(class) = r.final_status_class() else {
            return;
        };
        self.total += 1;
        self.window.add(now);
        let key = &mut self.key;
        key.clear();
        key.push_str(match r.role {
            Role::Server => "s ",
            Role::Client => "c ",
        });
        endpoint_into(r, key);
        let i = match self.index.get(key.as_str()) {
            Some(&i) => i,
            None if self.rows.len() < self.max_endpoints => {
                let endpoint = &key[2..];
                let (method, route) = match endpoint.split_once(' ') {
                    Some((m, route)) if endpoint != REQUEST_NOT_SEEN => (m, route),
                    _ => ("", endpoint),
                };
                self.rows.push(Row::new(r.role, method, route));
                self.index.insert(key.clone(), self.rows.len() - 1);
                self.rows.len() - 1
            }
            None => {
                self.other[usize::from(r.role == Role::Client)].add(r, class, now);
                return;
            }
        };
        self.rows[i].add(r, class, now);
    }

    /// Final responses seen.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Final responses per second over the window ending at `now`.
    pub fn rate(&self, now: Duration) -> f64 {
        self.window.rate(now, self.started)
    }

    /// Endpoints kept (without the `(other)` rows).
    pub fn endpoints(&self) -> usize {
        self.rows.len()
    }

    /// The bound on [`Table::endpoints`].
    pub fn max_endpoints(&self) -> usize {
        self.max_endpoints
    }

    /// Responses counted in the `(other)` rows (past the bound).
    pub fn overflow(&self) -> u64 {
        self.other.iter().map(|r| r.count).sum()
    }

    /// A row's rate over the window ending at `now`.
    pub fn row_rate(&self, row: &Row, now: Duration) -> f64 {
        row.window.rate(now, self.started)
    }

    /// The rows whose `METHOD route` contains `filter` (case-insensitive;
    /// empty: every row), the `(other)` rows when they count anything,
    /// sorted by `sort` (ties: by label, then server side first).
    pub fn view(&self, sort: SortKey, filter: &str, now: Duration) -> Vec<&Row> {
        let filter = filter.to_lowercase();
        let mut rows: Vec<&Row> = self
            .rows
            .iter()
            .chain(self.other.iter().filter(|r| r.count > 0))
            .filter(|r| filter.is_empty() || r.label().to_lowercase().contains(&filter))
            .collect();
        let desc_f = |a: f64, b: f64| b.total_cmp(&a);
        // Rows without latencies last.
        let desc_lat = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => b.cmp(&a),
            (a, b) => b.is_some().cmp(&a.is_some()),
        };
        rows.sort_by(|a, b| {
            let primary = match sort {
                SortKey::Count => b.count.cmp(&a.count),
                SortKey::Rate => desc_f(self.row_rate(a, now), self.row_rate(b, now)),
                SortKey::Errors => desc_f(a.error_share(), b.error_share())
                    .then(desc_f(a.share_5xx(), b.share_5xx())),
                SortKey::P50 => desc_lat(a.latency_ns(0.5), b.latency_ns(0.5)),
                SortKey::P99 => desc_lat(a.latency_ns(0.99), b.latency_ns(0.99)),
                SortKey::Route => Ordering::Equal,
            };
            primary
                .then_with(|| a.label().cmp(&b.label()))
                .then((a.side == Role::Client).cmp(&(b.side == Role::Client)))
        });
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::test_response;

    fn s(secs: f64) -> Duration {
        Duration::from_secs_f64(secs)
    }

    fn resp(role: Role, method: &str, target: &str, status: u16, latency_ms: u64) -> HttpRecord {
        test_response(role, (method, target, None), status, latency_ms)
    }

    fn labels(rows: &[&Row]) -> Vec<String> {
        rows.iter().map(|r| r.label()).collect()
    }

    #[test]
    fn counts_errors_and_percentiles_per_endpoint() {
        let mut t = Table::new(s(0.0));
        // /items/1 .. /items/100 answered in 1 .. 100 ms: one endpoint.
        for i in 1..=100 {
            t.observe(
                &resp(Role::Server, "GET", &format!("/items/{i}"), 200, i),
                s(1.0),
            );
        }
        for status in [404, 404, 500, 503] {
            t.observe(&resp(Role::Server, "POST", "/login", status, 7), s(1.0));
        }
        t.observe(&resp(Role::Server, "POST", "/login", 200, 7), s(1.0));
        // Interim responses, requests: not counted.
        t.observe(&resp(Role::Server, "GET", "/", 100, 1), s(1.0));
        t.observe(&crate::record::test_request(&[]), s(1.0));
        assert_eq!((t.total(), t.endpoints()), (105, 2));

        let rows = t.view(SortKey::Count, "", s(1.0));
        assert_eq!(labels(&rows), ["GET /items/*", "POST /login"]);
        let items = rows[0];
        assert_eq!(
            (items.count, items.status_4xx, items.status_5xx),
            (100, 0, 0)
        );
        // Two significant digits: within 1 % of the exact values.
        let near = |got: Option<u64>, ms: f64| {
            let got = got.unwrap() as f64 / 1e6;
            assert!((got - ms).abs() <= ms * 0.01, "{got} ms, expected {ms} ms");
        };
        near(items.latency_ns(0.5), 50.0);
        near(items.latency_ns(0.95), 95.0);
        near(items.latency_ns(0.99), 99.0);
        assert_eq!(items.max_ns(), Some(100_000_000));
        // A bucket's middle is never shown past the slowest response.
        let mut one = Table::new(s(0.0));
        one.observe(&resp(Role::Server, "GET", "/", 200, 0), s(0.0));
        let mut r = resp(Role::Server, "GET", "/", 200, 0);
        r.latency_ns = Some(6_020_000);
        one.observe(&r, s(0.0));
        let row = one.view(SortKey::Count, "", s(0.0))[0];
        assert_eq!(row.latency_ns(0.99), Some(6_020_000));
        assert_eq!(row.max_ns(), Some(6_020_000));
        let login = rows[1];
        assert_eq!((login.count, login.status_4xx, login.status_5xx), (5, 2, 2));
        assert!((login.share_4xx() - 0.4).abs() < 1e-9);
        assert!((login.share_5xx() - 0.4).abs() < 1e-9);
        assert!((login.error_share() - 0.8).abs() < 1e-9);
        assert_eq!(items.error_share(), 0.0);
    }

    #[test]
    fn sides_are_separate_rows_and_unpaired_responses_have_their_own() {
        let mut t = Table::new(s(0.0));
        t.observe(&resp(Role::Server, "GET", "/a/1", 200, 1), s(0.5));
        t.observe(&resp(Role::Client, "GET", "/a/2", 200, 1), s(0.5));
        let mut unpaired = resp(Role::Client, "GET", "/", 200, 1);
        unpaired.request = None;
        t.observe(&unpaired, s(0.5));
        let rows = t.view(SortKey::Route, "", s(0.5));
        let got: Vec<(Role, &str, &str)> = rows
            .iter()
            .map(|r| (r.side, r.method.as_str(), r.route.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (Role::Client, "", REQUEST_NOT_SEEN),
                (Role::Server, "GET", "/a/*"),
                (Role::Client, "GET", "/a/*"),
            ]
        );
    }

    #[test]
    fn rate_is_over_the_last_five_seconds_and_expires() {
        let mut t = Table::new(s(0.0));
        // 10 a second for 10 seconds.
        for sec in 0..10 {
            for i in 0..10 {
                let now = s(sec as f64 + i as f64 / 10.0);
                t.observe(&resp(Role::Server, "GET", "/", 200, 1), now);
            }
        }
        let rows = t.view(SortKey::Count, "", s(9.95));
        let row = rows[0];
        // Seconds 5..=9, 50 responses over 4.95 s.
        let want = 50.0 / 4.95;
        assert!((t.row_rate(row, s(9.95)) - want).abs() < 1e-9);
        assert!((t.rate(s(9.95)) - want).abs() < 1e-9);
        // Two idle seconds later: seconds 7..=11 hold 30 over 4.5 s.
        assert!((t.row_rate(row, s(11.5)) - 30.0 / 4.5).abs() < 1e-9);
        // After the window: nothing, though the count stays.
        assert_eq!(t.row_rate(row, s(15.0)), 0.0);
        assert_eq!(t.rate(s(100.0)), 0.0);
        assert_eq!(row.count, 100);
        // At the start, the window is as long as the table is old (at least 1 s).
        let mut young = Table::new(s(100.0));
        for _ in 0..6 {
            young.observe(&resp(Role::Server, "GET", "/", 200, 1), s(100.2));
        }
        assert!((young.rate(s(100.5)) - 6.0).abs() < 1e-9);
        assert!((young.rate(s(102.0)) - 3.0).abs() < 1e-9);
    }

    #[test]
    fn sorts_by_each_key() {
        let mut t = Table::new(s(0.0));
        // busy: 6 fast ones, long ago.
        for _ in 0..6 {
            t.observe(&resp(Role::Server, "GET", "/busy", 200, 1), s(0.0));
        }
        // slow: 3 slow ones, lately, one 5xx.
        for status in [200, 200, 500] {
            t.observe(&resp(Role::Server, "GET", "/slow", status, 900), s(9.0));
        }
        // missing: 4 quick 404s, lately.
        for _ in 0..4 {
            t.observe(&resp(Role::Server, "GET", "/missing", 404, 2), s(9.0));
        }
        // half: 2, one 500, lately.
        t.observe(&resp(Role::Server, "GET", "/half", 500, 3), s(9.0));
        t.observe(&resp(Role::Server, "GET", "/half", 200, 300), s(9.0));
        let now = s(9.5);
        let by = |k| labels(&t.view(k, "", now));
        // /busy is out of the rate's window; ties go by label.
        for (key, want) in [
            (SortKey::Count, ["/busy", "/missing", "/slow", "/half"]),
            (SortKey::Rate, ["/missing", "/slow", "/half", "/busy"]),
            (SortKey::Errors, ["/missing", "/half", "/slow", "/busy"]),
            (SortKey::P50, ["/slow", "/half", "/missing", "/busy"]),
            (SortKey::P99, ["/slow", "/half", "/missing", "/busy"]),
            (SortKey::Route, ["/busy", "/half", "/missing", "/slow"]),
        ] {
            assert_eq!(by(key), want.map(|r| format!("GET {r}")), "{key:?}");
        }
        let mut k = SortKey::Count;
        let mut seen = Vec::new();
        for _ in 0..SortKey::ALL.len() {
            seen.push(k.name());
            k = k.next();
        }
        assert_eq!(k, SortKey::Count);
        assert_eq!(seen, ["count", "rate", "errors", "p50", "p99", "route"]);
    }

    #[test]
    fn filter_is_a_case_insensitive_substring_of_method_and_route() {
        let mut t = Table::new(s(0.0));
        for (m, p) in [
            ("GET", "/api/users/1"),
            ("POST", "/api/users"),
            ("GET", "/static/app.js"),
        ] {
            t.observe(&resp(Role::Server, m, p, 200, 1), s(0.0));
        }
        let f = |q| labels(&t.view(SortKey::Route, q, s(0.0)));
        assert_eq!(f("API/USERS"), ["GET /api/users/*", "POST /api/users"]);
        assert_eq!(f("post "), ["POST /api/users"]);
        assert_eq!(f("get /api"), ["GET /api/users/*"]);
        assert_eq!(
            f(""),
            ["GET /api/users/*", "GET /static/app.js", "POST /api/users"]
        );
        assert!(f("nothing").is_empty());
    }

    #[test]
    fn endpoints_past_the_bound_go_to_other() {
        let mut t = Table::with_max_endpoints(3, s(0.0));
        for i in 0..5 {
            t.observe(
                &resp(Role::Server, "GET", &format!("/p{i}x"), 500, 1),
                s(0.0),
            );
        }
        // An endpoint already kept is still its own row.
        t.observe(&resp(Role::Server, "GET", "/p0x", 200, 1), s(0.0));
        t.observe(&resp(Role::Client, "GET", "/new", 200, 1), s(0.0));
        assert_eq!((t.endpoints(), t.overflow(), t.total()), (3, 3, 7));
        let rows = t.view(SortKey::Count, "", s(0.0));
        assert_eq!(
            labels(&rows),
            ["(other)", "GET /p0x", "(other)", "GET /p1x", "GET /p2x"]
        );
        assert_eq!(
            (rows[0].side, rows[0].count, rows[0].status_5xx),
            (Role::Server, 2, 2)
        );
        assert_eq!((rows[2].side, rows[2].count), (Role::Client, 1));
        assert_eq!(rows[1].count, 2);
        assert_eq!(Table::new(s(0.0)).max_endpoints(), 1000);
    }
}
