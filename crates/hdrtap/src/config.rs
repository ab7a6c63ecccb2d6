//! `hdrtap run`'s configuration file (TOML): which captures run, redaction,
//! security rules, and the sinks. docs/DAEMON.md documents every key;
//! `packaging/hdrtap.example.toml` (printed by `--print-example-config`)
//! shows them all.
//!
//! Every option of `hdrtap http` and `hdrtap packets` has a key here. A
//! capture is configured by filling the CLI's own typed options
//! ([`HttpArgs`], [`PacketsArgs`], their shared [`CaptureCommon`]) from
//! the file, each key checked by what checks its flag (the bounds in
//! [`crate::cli`], the name parsers, the filter compiler), so a key and its
//! flag accept the same values and can never mean different things.
//!
//! Errors are one line naming the file, the line and the key:
//! `config /etc/hdrtap.toml: line 12, key sinks[1].max_files: invalid type: string "x", expected u32`.
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::ValueEnum;
use hdrtap_abi::Hook;
use hdrtap_core::output::Format;
use hdrtap_core::rules::{RulesConfig, RULES};
use hdrtap_core::sink::{FileOptions, KindSet};
use hdrtap_export::otlp::{BodyMode, OtlpOptions, Protocol};
use serde::Deserialize;

use crate::cli::{
    self, Bounds, CaptureCommon, DirectionArg, HttpArgs, HttpFilterArgs, HttpScope, PacketsArgs,
    SideArg, TcAttachArg, ViewArgs,
};
use hdrtap_core::filter_http::{parse_latency, StatusSpec};

/// The example configuration: every key, commented.
pub const EXAMPLE: &str = include_str!("../../../packaging/hdrtap.example.toml");

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    stats_interval: Option<u64>,
    duration: Option<u64>,
    ready_file: Option<PathBuf>,
    #[serde(default)]
    quiet: bool,
    http: Option<HttpCfg>,
    packets: Option<PacketsCfg>,
    #[serde(default)]
    redaction: RedactionCfg,
    #[serde(default)]
    rules: RulesCfg,
    #[serde(default)]
    sinks: Vec<SinkCfg>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpCfg {
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    pids: Vec<u32>,
    #[serde(default)]
    comms: Vec<String>,
    #[serde(default)]
    ports: Vec<u16>,
    max_header_bytes: Option<u32>,
    call_capture: Option<u32>,
    ring_mib: Option<u32>,
    #[serde(default = "yes")]
    tls: bool,
    #[serde(default)]
    drop_caps: bool,
    #[serde(default)]
    methods: Vec<String>,
    path: Option<String>,
    host: Option<String>,
    #[serde(default)]
    status: Vec<String>,
    header: Option<String>,
    min_latency: Option<String>,
    side: Option<String>,
    #[serde(default)]
    containers: Vec<String>,
    #[serde(default)]
    units: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PacketsCfg {
    #[serde(default = "yes")]
    enabled: bool,
    hook: Option<String>,
    #[serde(default)]
    interfaces: Vec<String>,
    direction: Option<String>,
    snaplen: Option<u32>,
    sample: Option<u32>,
    ring_mib: Option<u32>,
    #[serde(default = "yes")]
    process: bool,
    tc_attach: Option<String>,
    filter: Option<String>,
    #[serde(default)]
    drop_caps: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RedactionCfg {
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    headers: Vec<String>,
    /// Query parameters redacted besides the default list.
    #[serde(default)]
    params: Vec<String>,
    /// Query parameters of the default list left in clear.
    #[serde(default)]
    no_params: Vec<String>,
}

impl Default for RedactionCfg {
    fn default() -> Self {
        RedactionCfg {
            enabled: true,
            headers: Vec::new(),
            params: Vec::new(),
            no_params: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesCfg {
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    disable: Vec<String>,
    max_header_value_bytes: Option<usize>,
    max_header_count: Option<usize>,
    #[serde(default)]
    scanner_user_agents: Vec<String>,
    cleartext_on_loopback: Option<bool>,
    hpack_bomb_min_bytes: Option<usize>,
    hpack_bomb_ratio: Option<usize>,
}

impl Default for RulesCfg {
    fn default() -> Self {
        RulesCfg {
            enabled: true,
            disable: Vec::new(),
            max_header_value_bytes: None,
            max_header_count: None,
            scanner_user_agents: Vec::new(),
            cleartext_on_loopback: None,
            hpack_bomb_min_bytes: None,
            hpack_bomb_ratio: None,
        }
    }
}

/// A size: bytes, or a string with a unit (`"100MiB"`, `"10M"`, `"512k"`).
#[derive(Debug, Clone, Copy)]
struct Size(u64);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(Size(n)),
            Raw::S(s) => parse_size(&s).map(Size).map_err(serde::de::Error::custom),
        }
    }
}

fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| {
        format!("{s:?} is not a size (bytes, or a number with K, M, G, KiB, MiB, GiB)")
    })?;
    let mul: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "{s:?}: unknown unit {unit:?} (use K, M, G, KiB, MiB or GiB)"
            ))
        }
    };
    n.checked_mul(mul)
        .ok_or_else(|| format!("{s:?} is too large"))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SinkCfg {
    #[serde(rename = "type")]
    sink_type: SinkType,
    name: Option<String>,
    kinds: Option<Vec<String>>,
    queue_records: Option<u64>,
    // file, stdout
    format: Option<String>,
    // file
    path: Option<PathBuf>,
    max_size: Option<Size>,
    max_files: Option<u32>,
    compress: Option<bool>,
    // prometheus
    listen: Option<String>,
    max_hosts: Option<usize>,
    max_routes: Option<usize>,
    // otlp
    protocol: Option<String>,
    endpoint: Option<String>,
    timeout_ms: Option<u64>,
    batch_size: Option<usize>,
    batch_timeout_ms: Option<u64>,
    retry_initial_ms: Option<u64>,
    retry_max_ms: Option<u64>,
    retry_max_elapsed_ms: Option<u64>,
    compression: Option<String>,
    body: Option<String>,
    headers: Option<BTreeMap<String, String>>,
    resource: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum SinkType {
    File,
    Stdout,
    Prometheus,
    Otlp,
}

impl SinkType {
    fn name(self) -> &'static str {
        match self {
            SinkType::File => "file",
            SinkType::Stdout => "stdout",
            SinkType::Prometheus => "prometheus",
            SinkType::Otlp => "otlp",
        }
    }
}

/// A validated configuration, ready to run.
#[derive(Debug)]
pub struct Plan {
    /// `hdrtap http` arguments and the rules (None: rules off).
    pub http: Option<(HttpArgs, Option<RulesConfig>)>,
    pub packets: Option<PacketsArgs>,
    pub sinks: Vec<SinkPlan>,
    pub stats_interval: u64,
    pub duration: Option<u64>,
    pub ready_file: Option<PathBuf>,
    pub quiet: bool,
}

/// One sink to build.
#[derive(Debug)]
pub struct SinkPlan {
    pub name: String,
    pub kinds: KindSet,
    pub queue_records: u64,
    pub kind: SinkKind,
}

#[derive(Debug)]
pub enum SinkKind {
    File(FileOptions),
    Stdout(Format),
    Prometheus {
        listen: SocketAddr,
        max_hosts: usize,
        max_routes: usize,
    },
    Otlp(OtlpOptions),
}

impl SinkKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            SinkKind::File(_) => "file",
            SinkKind::Stdout(_) => "stdout",
            SinkKind::Prometheus { .. } => "prometheus",
            SinkKind::Otlp(_) => "otlp",
        }
    }

    /// Where it writes, for the start-up line.
    pub fn describe(&self) -> String {
        match self {
            SinkKind::File(o) => format!("file {}", o.path.display()),
            SinkKind::Stdout(_) => "stdout".to_string(),
            SinkKind::Prometheus { listen, .. } => format!("prometheus http://{listen}/metrics"),
            SinkKind::Otlp(o) => format!(
                "otlp {} {}",
                match o.protocol {
                    Protocol::Http => "http",
                    Protocol::Grpc => "grpc",
                },
                o.endpoint
            ),
        }
    }
}

impl Plan {
    /// One line: what would run.
    pub fn describe(&self) -> String {
        let mut caps = Vec::new();
        if let Some((a, rules)) = &self.http {
            caps.push(format!(
                "http{}{}",
                if a.no_tls { "" } else { "+tls" },
                if rules.is_some() {
                    " (rules on)"
                } else {
                    " (rules off)"
                }
            ));
        }
        if let Some(p) = &self.packets {
            caps.push(format!("packets ({:?})", p.hook).to_lowercase());
        }
        let sinks: Vec<String> = self
            .sinks
            .iter()
            .map(|s| format!("{} [{}]", s.name, s.kind.describe()))
            .collect();
        format!(
            "captures: {}; sinks: {}",
            if caps.is_empty() {
                "none".into()
            } else {
                caps.join(", ")
            },
            sinks.join(", ")
        )
    }
}

/// A configuration error: the key, where it is, and what is wrong.
#[derive(Debug)]
pub struct ConfigError {
    file: PathBuf,
    line: Option<usize>,
    key: String,
    message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config {}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ": line {l}")?;
        }
        if !self.key.is_empty() {
            write!(f, ", key {}", self.key)?;
        }
        write!(f, ": {}", self.message.replace('\n', " "))
    }
}

impl std::error::Error for ConfigError {}

/// A key path in the document: table keys and array indices.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

fn key_string(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// 1-based line of byte offset `at`.
fn line_at(text: &str, at: usize) -> usize {
    text.get(..at.min(text.len()))
        .map_or(0, |t| t.bytes().filter(|&b| b == b'\n').count())
        + 1
}

/// The line of the value at `path` (or of the nearest parent present).
fn line_of(text: &str, path: &[Seg]) -> Option<usize> {
    use toml::de::{DeTable, DeValue};
    let root = DeTable::parse(text).ok()?;
    let root_span = root.span();
    let mut cur = DeValue::Table(root.into_inner());
    let mut span = root_span;
    for seg in path {
        let next = match seg {
            Seg::Key(k) => cur.get(k.as_str()),
            Seg::Index(i) => cur.get(*i),
        };
        match next {
            Some(v) => {
                span = v.span();
                let inner = v.get_ref().clone();
                cur = inner;
            }
            None => break,
        }
    }
    Some(line_at(text, span.start))
}

/// Load and validate `path`.
pub fn load(path: &Path) -> Result<Plan, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        line: None,
        key: String::new(),
        message: format!("cannot read: {e}"),
    })?;
    parse(path, &text)
}

/// Validate the text of a configuration file named `file`.
pub fn parse(file: &Path, text: &str) -> Result<Plan, ConfigError> {
    let err_at = |path: &[Seg], message: String| ConfigError {
        file: file.to_path_buf(),
        line: line_of(text, path),
        key: key_string(path),
        message,
    };
    let de = toml::Deserializer::parse(text).map_err(|e| ConfigError {
        file: file.to_path_buf(),
        line: e.span().map(|s| line_at(text, s.start)),
        key: String::new(),
        message: e.message().trim().to_string(),
    })?;
    let raw: File = serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.inner();
        ConfigError {
            file: file.to_path_buf(),
            line: inner.span().map(|s| line_at(text, s.start)),
            key: if key == "." { String::new() } else { key },
            message: inner.message().trim().to_string(),
        }
    })?;
    build(raw, &err_at)
}

type ErrAt<'a> = &'a dyn Fn(&[Seg], String) -> ConfigError;

fn k(name: &str) -> Seg {
    Seg::Key(name.to_string())
}

/// The key at `path` (strings), `[index]` appended if given.
fn key(path: &[&str], index: Option<usize>) -> Vec<Seg> {
    let mut p: Vec<Seg> = path.iter().map(|s| k(s)).collect();
    if let Some(i) = index {
        p.push(Seg::Index(i));
    }
    p
}

/// Every value of the list at `path`, checked; an error names its index.
fn each<T, U>(
    err_at: ErrAt<'_>,
    path: &[&str],
    values: &[T],
    check: impl Fn(&T) -> Result<U, String>,
) -> Result<Vec<U>, ConfigError> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| check(v).map_err(|m| err_at(&key(path, Some(i)), m)))
        .collect()
}

/// The number at `path` within `b`, or `b`'s default when absent.
fn bounded<T>(
    err_at: ErrAt<'_>,
    path: &[&str],
    v: Option<T>,
    b: Bounds<T>,
) -> Result<T, ConfigError>
where
    T: Copy + PartialOrd + fmt::Display + std::str::FromStr + Into<u64> + Send + Sync + 'static,
{
    b.check(v.unwrap_or(b.default))
        .map_err(|m| err_at(&key(path, None), m))
}

/// The optional string at `path`, checked by `check`.
fn optional<T>(
    err_at: ErrAt<'_>,
    path: &[&str],
    v: &Option<String>,
    check: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, ConfigError> {
    v.as_deref()
        .map(|s| check(s).map_err(|m| err_at(&key(path, None), m)))
        .transpose()
}

/// A keyword at `path` (`hook`; the value enums through [`value_enum`]), or the default.
fn keyword<T>(
    err_at: ErrAt<'_>,
    path: &[&str],
    v: Option<&str>,
    default: T,
    parse: impl Fn(&str) -> Option<T>,
    names: &str,
) -> Result<T, ConfigError> {
    match v {
        None => Ok(default),
        Some(s) => parse(s).ok_or_else(|| {
            err_at(
                &key(path, None),
                format!("invalid value {s:?}: expected one of {names}"),
            )
        }),
    }
}

/// The value of a clap value enum (`direction`, `tc_attach`, `side`) at
/// `path`, if given: the flag's own names, and the same list in the error.
fn value_enum<T: ValueEnum>(
    err_at: ErrAt<'_>,
    path: &[&str],
    v: Option<&str>,
) -> Result<Option<T>, ConfigError> {
    let Some(s) = v else {
        return Ok(None);
    };
    let names = T::value_variants()
        .iter()
        .filter_map(|v| v.to_possible_value())
        .map(|p| p.get_name().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    keyword(
        err_at,
        path,
        Some(s),
        None,
        |s| T::from_str(s, false).ok().map(Some),
        &names,
    )
}

fn build(f: File, err_at: ErrAt<'_>) -> Result<Plan, ConfigError> {
    // Settings every capture shares, checked like their flags.
    let duration = f
        .duration
        .map(|d| cli::DURATION.check(d))
        .transpose()
        .map_err(|m| err_at(&key(&["duration"], None), m))?;
    let stats_interval = bounded(
        err_at,
        &["stats_interval"],
        f.stats_interval,
        cli::STATS_INTERVAL,
    )?;
    // Records go to the sinks as JSON; the start-up line is the daemon's.
    let common = |ring_mib: u32| CaptureCommon {
        json: true,
        output: None,
        print: false,
        count: None,
        duration,
        ready_file: None,
        stats_interval: Some(stats_interval),
        ring_mib,
        quiet: true,
    };

    // Disabled sections are still checked: a mistake there is still a mistake.
    let http = match f.http.as_ref() {
        None => None,
        Some(h) => {
            let r = &f.redaction;
            let args = HttpArgs {
                common: common(bounded(
                    err_at,
                    &["http", "ring_mib"],
                    h.ring_mib,
                    cli::RING_MIB,
                )?),
                scope: HttpScope {
                    pids: each(err_at, &["http", "pids"], &h.pids, |v| cli::PID.check(*v))?,
                    comms: each(err_at, &["http", "comms"], &h.comms, |v| cli::parse_comm(v))?,
                    ports: each(err_at, &["http", "ports"], &h.ports, |v| {
                        cli::PORT.check(*v)
                    })?,
                },
                no_redact: !r.enabled,
                redact: each(err_at, &["redaction", "headers"], &r.headers, |v| {
                    cli::parse_header_name(v)
                })?,
                redact_params: each(err_at, &["redaction", "params"], &r.params, |v| {
                    cli::parse_param_name(v)
                })?,
                no_redact_params: each(err_at, &["redaction", "no_params"], &r.no_params, |v| {
                    cli::parse_param_name(v)
                })?,
                max_header_bytes: bounded(
                    err_at,
                    &["http", "max_header_bytes"],
                    h.max_header_bytes,
                    cli::MAX_HEADER_BYTES,
                )?,
                call_capture: bounded(
                    err_at,
                    &["http", "call_capture"],
                    h.call_capture,
                    cli::CALL_CAPTURE,
                )?,
                no_tls: !h.tls,
                no_rules: !f.rules.enabled,
                drop_caps: h.drop_caps,
                // The daemon does not join packets (hdrtap http --with-packets does).
                with_packets: None,
                packets_wait: 1000,
                wire: Default::default(),
                filter: HttpFilterArgs {
                    methods: each(err_at, &["http", "methods"], &h.methods, |v| {
                        cli::parse_method(v)
                    })?,
                    path: optional(err_at, &["http", "path"], &h.path, cli::parse_glob)?,
                    host: optional(err_at, &["http", "host"], &h.host, cli::parse_glob)?,
                    status: each(err_at, &["http", "status"], &h.status, |v| {
                        StatusSpec::parse(v)
                    })?,
                    header: optional(
                        err_at,
                        &["http", "header"],
                        &h.header,
                        cli::parse_header_filter,
                    )?,
                    min_latency: optional(
                        err_at,
                        &["http", "min_latency"],
                        &h.min_latency,
                        parse_latency,
                    )?,
                    side: value_enum::<SideArg>(err_at, &["http", "side"], h.side.as_deref())?,
                    containers: each(err_at, &["http", "containers"], &h.containers, |v| {
                        cli::parse_container(v)
                    })?,
                    units: h.units.clone(),
                },
                // Sinks draw their own lines, without colour.
                view: ViewArgs::default(),
                read: None,
            };
            let rules = if f.rules.enabled {
                Some(rules_config(&f.rules, err_at)?)
            } else {
                None
            };
            Some((args, rules))
        }
    }
    .filter(|_| f.http.as_ref().is_some_and(|h| h.enabled));

    let packets = match f.packets.as_ref() {
        None => None,
        Some(p) => {
            if let Some(expr) = &p.filter {
                hdrtap_core::filter::compile(expr).map_err(|e| {
                    err_at(
                        &key(&["packets", "filter"], None),
                        format!("filter expression: {e}"),
                    )
                })?;
            }
            let hooks = Hook::ALL.map(Hook::name).join(", ");
            Some(PacketsArgs {
                hook: keyword(
                    err_at,
                    &["packets", "hook"],
                    p.hook.as_deref(),
                    Hook::Tc,
                    Hook::from_name,
                    &hooks,
                )?,
                interfaces: p.interfaces.clone(),
                direction: value_enum(err_at, &["packets", "direction"], p.direction.as_deref())?
                    .unwrap_or(DirectionArg::Auto),
                snaplen: bounded(err_at, &["packets", "snaplen"], p.snaplen, cli::SNAPLEN)?,
                sample: bounded(err_at, &["packets", "sample"], p.sample, cli::SAMPLE)?,
                common: common(bounded(
                    err_at,
                    &["packets", "ring_mib"],
                    p.ring_mib,
                    cli::RING_MIB,
                )?),
                no_process: !p.process,
                tc_attach: value_enum(err_at, &["packets", "tc_attach"], p.tc_attach.as_deref())?
                    .unwrap_or(TcAttachArg::Auto),
                drop_caps: p.drop_caps,
                // The daemon's outputs are its sinks; pcapng is the CLI's -w.
                write: None,
                rotate_mb: None,
                rotate_files: None,
                numeric: 0,
                // One argument, as after "--" on the command line.
                filter: p.filter.iter().cloned().collect(),
            })
        }
    }
    .filter(|_| f.packets.as_ref().is_some_and(|p| p.enabled));
    if http.is_none() && packets.is_none() {
        return Err(err_at(
            &[],
            "no capture enabled: add an [http] or a [packets] table".into(),
        ));
    }

    let mut sinks = Vec::new();
    for (i, s) in f.sinks.iter().enumerate() {
        sinks.push(sink_plan(i, s, err_at)?);
    }
    if sinks.is_empty() {
        return Err(err_at(
            &[],
            "no sink: add at least one [[sinks]] table (type = \"file\", \"stdout\", \"prometheus\" or \"otlp\")".into(),
        ));
    }
    // Unique names: defaults get a number when their type repeats.
    let mut seen: Vec<String> = Vec::new();
    for (i, (s, cfg)) in sinks.iter_mut().zip(&f.sinks).enumerate() {
        if seen.contains(&s.name) {
            if cfg.name.is_some() {
                return Err(err_at(
                    &[k("sinks"), Seg::Index(i), k("name")],
                    format!("two sinks are called {:?}", s.name),
                ));
            }
            let mut n = 2;
            while seen.contains(&format!("{}-{n}", s.name)) {
                n += 1;
            }
            s.name = format!("{}-{n}", s.name);
        }
        seen.push(s.name.clone());
    }

    Ok(Plan {
        http,
        packets,
        sinks,
        stats_interval,
        duration: f.duration,
        ready_file: f.ready_file,
        quiet: f.quiet,
    })
}

fn rules_config(r: &RulesCfg, err_at: ErrAt<'_>) -> Result<RulesConfig, ConfigError> {
    let mut cfg = RulesConfig::default();
    for (i, id) in r.disable.iter().enumerate() {
        if !RULES.iter().any(|x| x.id == id) {
            let known: Vec<&str> = RULES.iter().map(|x| x.id).collect();
            return Err(err_at(
                &[k("rules"), k("disable"), Seg::Index(i)],
                format!("unknown rule {id:?} (rules: {})", known.join(", ")),
            ));
        }
        cfg.disabled.push(id.clone());
    }
    if let Some(n) = r.max_header_value_bytes {
        if n == 0 {
            return Err(err_at(
                &[k("rules"), k("max_header_value_bytes")],
                "must be at least 1".into(),
            ));
        }
        cfg.max_header_value_bytes = n;
    }
    if let Some(n) = r.max_header_count {
        if n == 0 {
            return Err(err_at(
                &[k("rules"), k("max_header_count")],
                "must be at least 1".into(),
            ));
        }
        cfg.max_header_count = n;
    }
    cfg.extra_scanner_agents = r.scanner_user_agents.clone();
    if let Some(b) = r.cleartext_on_loopback {
        cfg.cleartext_on_loopback = b;
    }
    for (key, v, slot) in [
        (
            "hpack_bomb_min_bytes",
            r.hpack_bomb_min_bytes,
            &mut cfg.hpack_bomb_min_bytes,
        ),
        (
            "hpack_bomb_ratio",
            r.hpack_bomb_ratio,
            &mut cfg.hpack_bomb_ratio,
        ),
    ] {
        if let Some(n) = v {
            if n == 0 {
                return Err(err_at(&[k("rules"), k(key)], "must be at least 1".into()));
            }
            *slot = n;
        }
    }
    Ok(cfg)
}

fn format_of(v: Option<&str>, default: Format) -> Result<Format, String> {
    match v {
        None => Ok(default),
        Some("json") => Ok(Format::Json),
        Some("human") => Ok(Format::Human),
        Some(other) => Err(format!("format {other:?}: expected \"json\" or \"human\"")),
    }
}

fn ms(v: Option<u64>, default: Duration, min: u64, max: u64) -> Result<Duration, String> {
    match v {
        None => Ok(default),
        Some(n) if (min..=max).contains(&n) => Ok(Duration::from_millis(n)),
        Some(n) => Err(format!("{n} is not in {min}..={max} (milliseconds)")),
    }
}

fn sink_plan(i: usize, s: &SinkCfg, err_at: ErrAt<'_>) -> Result<SinkPlan, ConfigError> {
    let at = |key: &str| vec![k("sinks"), Seg::Index(i), k(key)];
    let ty = s.sink_type;
    // Keys that belong to other sink types are mistakes.
    let present: &[(&str, bool, &[SinkType])] = &[
        (
            "format",
            s.format.is_some(),
            &[SinkType::File, SinkType::Stdout],
        ),
        ("path", s.path.is_some(), &[SinkType::File]),
        ("max_size", s.max_size.is_some(), &[SinkType::File]),
        ("max_files", s.max_files.is_some(), &[SinkType::File]),
        ("compress", s.compress.is_some(), &[SinkType::File]),
        ("listen", s.listen.is_some(), &[SinkType::Prometheus]),
        ("max_hosts", s.max_hosts.is_some(), &[SinkType::Prometheus]),
        (
            "max_routes",
            s.max_routes.is_some(),
            &[SinkType::Prometheus],
        ),
        ("protocol", s.protocol.is_some(), &[SinkType::Otlp]),
        ("endpoint", s.endpoint.is_some(), &[SinkType::Otlp]),
        ("timeout_ms", s.timeout_ms.is_some(), &[SinkType::Otlp]),
        ("batch_size", s.batch_size.is_some(), &[SinkType::Otlp]),
        (
            "batch_timeout_ms",
            s.batch_timeout_ms.is_some(),
            &[SinkType::Otlp],
        ),
        (
            "retry_initial_ms",
            s.retry_initial_ms.is_some(),
            &[SinkType::Otlp],
        ),
        ("retry_max_ms", s.retry_max_ms.is_some(), &[SinkType::Otlp]),
        (
            "retry_max_elapsed_ms",
            s.retry_max_elapsed_ms.is_some(),
            &[SinkType::Otlp],
        ),
        ("compression", s.compression.is_some(), &[SinkType::Otlp]),
        ("body", s.body.is_some(), &[SinkType::Otlp]),
        ("headers", s.headers.is_some(), &[SinkType::Otlp]),
        ("resource", s.resource.is_some(), &[SinkType::Otlp]),
    ];
    for (key, set, types) in present {
        if *set && !types.contains(&ty) {
            return Err(err_at(
                &at(key),
                format!("`{key}` is not a setting of a {} sink", ty.name()),
            ));
        }
    }
    let kinds = match &s.kinds {
        Some(names) => KindSet::parse(names).map_err(|m| err_at(&at("kinds"), m))?,
        None if ty == SinkType::Prometheus => KindSet::parse(&["http_response", "packet", "alert"])
            .map_err(|m| err_at(&at("kinds"), m))?,
        None => KindSet::ALL,
    };
    let queue_records = match s.queue_records {
        None => 65_536,
        Some(n) if (1..=100_000_000).contains(&n) => n,
        Some(n) => {
            return Err(err_at(
                &at("queue_records"),
                format!("{n} is not in 1..=100000000"),
            ))
        }
    };
    let kind = match ty {
        SinkType::File => {
            let path = s.path.clone().ok_or_else(|| {
                err_at(
                    &[k("sinks"), Seg::Index(i)],
                    "a file sink needs `path`".into(),
                )
            })?;
            let format = format_of(s.format.as_deref(), Format::Json)
                .map_err(|m| err_at(&at("format"), m))?;
            let max_files = s.max_files.unwrap_or(5);
            if max_files > 1000 {
                return Err(err_at(
                    &at("max_files"),
                    format!("{max_files} is not in 0..=1000"),
                ));
            }
            let max_bytes = s.max_size.map_or(100 << 20, |m| m.0);
            if max_bytes != 0 && max_bytes < 4096 {
                return Err(err_at(
                    &at("max_size"),
                    format!("{max_bytes} bytes: rotate at 4096 bytes or more (0: never)"),
                ));
            }
            SinkKind::File(FileOptions {
                path,
                format,
                max_bytes,
                max_files,
                compress: s.compress.unwrap_or(false),
            })
        }
        SinkType::Stdout => SinkKind::Stdout(
            format_of(s.format.as_deref(), Format::Json).map_err(|m| err_at(&at("format"), m))?,
        ),
        SinkType::Prometheus => {
            let listen = s.listen.as_deref().unwrap_or("127.0.0.1:9464");
            let listen: SocketAddr = listen.parse().map_err(|_| {
                err_at(
                    &at("listen"),
                    format!("{listen:?} is not an address:port (e.g. \"127.0.0.1:9464\" or \"[::]:9464\")"),
                )
            })?;
            let cap = |key: &str, v: Option<usize>| match v.unwrap_or(100) {
                n @ 0..=100_000 => Ok(n),
                n => Err(err_at(&at(key), format!("{n} is not in 0..=100000"))),
            };
            SinkKind::Prometheus {
                listen,
                max_hosts: cap("max_hosts", s.max_hosts)?,
                max_routes: cap("max_routes", s.max_routes)?,
            }
        }
        SinkType::Otlp => SinkKind::Otlp(otlp_options(s, &at, err_at)?),
    };
    Ok(SinkPlan {
        name: s.name.clone().unwrap_or_else(|| ty.name().to_string()),
        kinds,
        queue_records,
        kind,
    })
}

fn otlp_options(
    s: &SinkCfg,
    at: &dyn Fn(&str) -> Vec<Seg>,
    err_at: ErrAt<'_>,
) -> Result<OtlpOptions, ConfigError> {
    let d = OtlpOptions::default();
    let protocol = match s.protocol.as_deref() {
        None | Some("http") | Some("http/protobuf") => Protocol::Http,
        Some("grpc") => Protocol::Grpc,
        Some(other) => {
            return Err(err_at(
                &at("protocol"),
                format!("{other:?}: expected \"http\" (OTLP/HTTP, protobuf) or \"grpc\""),
            ))
        }
    };
    let endpoint = match &s.endpoint {
        Some(e) => e.clone(),
        None if protocol == Protocol::Grpc => "http://127.0.0.1:4317".into(),
        None => "http://127.0.0.1:4318".into(),
    };
    let rest = endpoint.strip_prefix("http://");
    if rest.is_none_or(|r| r.is_empty() || r.starts_with('/')) {
        let why = if endpoint.starts_with("https://") {
            "https is not supported (this build has no TLS client): send to a Collector on the node or in the cluster over http://, and let it forward with TLS"
        } else {
            "expected http://HOST:PORT"
        };
        return Err(err_at(&at("endpoint"), format!("{endpoint:?}: {why}")));
    }
    let gzip = match s.compression.as_deref() {
        None | Some("none") => false,
        Some("gzip") => true,
        Some(other) => {
            return Err(err_at(
                &at("compression"),
                format!("{other:?}: expected \"none\" or \"gzip\""),
            ))
        }
    };
    let body = match s.body.as_deref() {
        None | Some("json") => BodyMode::Json,
        Some("summary") => BodyMode::Summary,
        Some(other) => {
            return Err(err_at(
                &at("body"),
                format!("{other:?}: expected \"json\" or \"summary\""),
            ))
        }
    };
    let batch_size = s.batch_size.unwrap_or(d.batch_size);
    if !(1..=100_000).contains(&batch_size) {
        return Err(err_at(
            &at("batch_size"),
            format!("{batch_size} is not in 1..=100000"),
        ));
    }
    let m = |key: &str, v: Option<u64>, def: Duration, min: u64, max: u64| {
        ms(v, def, min, max).map_err(|e| err_at(&at(key), e))
    };
    let headers: Vec<(String, String)> =
        s.headers.clone().unwrap_or_default().into_iter().collect();
    for (name, value) in &headers {
        let ok_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !ok_name || value.bytes().any(|b| b < 0x20 && b != b'\t') {
            return Err(err_at(
                &at("headers"),
                format!("{name:?} is not a valid header"),
            ));
        }
    }
    Ok(OtlpOptions {
        protocol,
        endpoint,
        headers,
        timeout: m("timeout_ms", s.timeout_ms, d.timeout, 10, 600_000)?,
        batch_size,
        batch_timeout: m(
            "batch_timeout_ms",
            s.batch_timeout_ms,
            d.batch_timeout,
            1,
            600_000,
        )?,
        retry_initial: m(
            "retry_initial_ms",
            s.retry_initial_ms,
            d.retry_initial,
            1,
            600_000,
        )?,
        retry_max: m("retry_max_ms", s.retry_max_ms, d.retry_max, 1, 3_600_000)?,
        retry_max_elapsed: m(
            "retry_max_elapsed_ms",
            s.retry_max_elapsed_ms,
            d.retry_max_elapsed,
            0,
            86_400_000,
        )?,
        gzip,
        body,
        resource: s.resource.clone().unwrap_or_default().into_iter().collect(),
    })
}

#[cfg(test)]
mod tests;
