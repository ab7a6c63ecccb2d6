//! Command-line flags. The doc comments are the `--help` text.
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, Parser, Subcommand};
use hdrtap_abi::Hook;
use hdrtap_core::filter_http::{parse_latency, StatusSpec};

/// `hdrtap -V`: the version and the commit built (build.rs).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("HDRTAP_COMMIT"),
    ")"
);

/// `hdrtap --version`: also what this build can capture and where it can send it.
const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("HDRTAP_COMMIT"),
    ")\ncaptures: http (HTTP/1.x, HTTP/2, gRPC; HTTPS through OpenSSL, GnuTLS and Go crypto/tls), packets (tc, xdp, socket)",
    "\nsinks: stdout, file, prometheus, otlp (http, grpc)",
    "\nbpf: CO-RE, built with clang-19; kernel 5.17 or later (hdrtap doctor)"
);

/// Log header elements with eBPF, without touching the programs it watches.
#[derive(Debug, Parser)]
#[command(
    name = "hdrtap",
    version = VERSION,
    long_version = LONG_VERSION,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// More detail. http and show: -v every header on a line of its own, -vv also debug
    /// messages on stderr, -vvv everything. Other commands: -v debug and libbpf messages,
    /// -vv everything.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per run: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Log every HTTP request and response on this machine (or, --source packets, on an
    /// interface's wire): start line and every header.
    #[command(after_long_help = HTTP_EXAMPLES)]
    Http(HttpArgs),
    /// A live table of HTTP endpoints in the terminal: rate, error share, latency percentiles.
    #[command(after_long_help = TOP_EXAMPLES)]
    Top(TopArgs),
    /// Log packet headers (Ethernet, VLAN, ARP, IPv4, IPv6, TCP, UDP, ICMP) from tc, XDP or a socket filter.
    #[command(after_long_help = PACKETS_EXAMPLES)]
    Packets(PacketsArgs),
    /// Read saved NDJSON back as readable lines, with the HTTP filters of `hdrtap http`.
    #[command(after_long_help = SHOW_EXAMPLES)]
    Show(ShowArgs),
    /// Check that this machine can run hdrtap (kernel, BTF, tracefs, privileges, program types).
    Doctor(DoctorArgs),
    /// Daemon mode: run the captures and sinks of a TOML file (file, stdout, Prometheus, OTLP).
    #[command(after_long_help = RUN_EXAMPLES)]
    Run(RunArgs),
    /// Print the completion script for a shell (bash, zsh, fish, elvish, powershell).
    #[command(
        after_long_help = "EXAMPLE:\n  hdrtap completions bash > /usr/share/bash-completion/completions/hdrtap"
    )]
    Completions(CompletionsArgs),
    /// Write the man pages (hdrtap.1, hdrtap-http.1, ...) into DIR (scripts/install.sh does).
    #[command(hide = true)]
    Man(ManArgs),
}

/// Arguments of `hdrtap completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Arguments of `hdrtap man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Where to write the pages.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

const HTTP_EXAMPLES: &str = "\
EXAMPLES:
  hdrtap http                          # every HTTP/1.x message, one line each
  hdrtap http --json -o http.ndjson    # NDJSON to a file (mode 0600)
  hdrtap http --port 8080              # only connections with port 8080 at either end
  hdrtap http --comm nginx,curl        # only these processes
  hdrtap http --pid 1234 --duration 30 # one process, for 30 seconds
  hdrtap http -c 10 --port 80,443      # the first 10 messages on ports 80 and 443
  hdrtap http --side server --status 5xx --path '/api/*'   # failing API calls, once each
  hdrtap http --min-latency 250ms --host '*.example.com'   # slow responses for one domain
  hdrtap http -v --port 8080           # every header on a line of its own, as curl -v
  hdrtap http -r http.ndjson --status 5xx   # read a saved capture back (as hdrtap show)
  hdrtap http --stats-interval 10      # also the traffic summary so far every 10 s, on stderr
  hdrtap http --redact X-Session       # also redact X-Session values
  hdrtap http --redact-param ticket    # also redact ?ticket=... in URLs
  hdrtap http --no-redact              # show secrets (Authorization, Cookie, ?token=, ...) in clear
  hdrtap http --no-tls                 # plaintext HTTP only, no TLS library uprobes
  hdrtap doctor --tls                  # which processes' HTTPS hdrtap can show, and why not
  hdrtap http --source packets -i eth1 port 80   # a router or mirror port: HTTP from the packets
  hdrtap http --source both -i eth0 --hook tc    # each local message from its process and the wire

HTTPS is shown in cleartext (records with \"tls\": true) for programs using OpenSSL
(libssl.so.3 / 1.1) or GnuTLS (libgnutls.so.30), shared or linked in statically with
symbols, and for Go programs (crypto/tls, Go 1.17+, stripped too): the uprobes are
attached to each file found in running processes and in processes started later.

Secret headers (Authorization, Proxy-Authorization, Cookie, Set-Cookie, X-Api-Key,
X-Auth-Token) are redacted by default to [REDACTED len=N hash=H]; H is a keyed hash
with a random key per run, so equal values match within one run only. So are secret
query parameters (access_token, code, sig, X-Amz-Signature, ...; see docs/SCHEMA.md)
and user:pass@ in every target, Host and URL (Referer, Location, ...), as
REDACTED_lenN_H. Redaction comes first: alerts, metrics and sinks never see a secret.
On SIGINT/SIGTERM hdrtap flushes its output and prints a summary, including every
event lost, to stderr.";

/// Capture HTTP/1.x headers from syscall tracepoints.
#[derive(Debug, Args)]
pub struct HttpArgs {
    #[command(flatten)]
    pub common: CaptureCommon,

    #[command(flatten)]
    pub scope: HttpScope,

    #[command(flatten)]
    pub filter: HttpFilterArgs,

    #[command(flatten)]
    pub view: ViewArgs,

    /// Read records back from an NDJSON file written with --json -o (`-` for stdin) instead
    /// of capturing: the same filters, -c, --json and views apply (as `hdrtap show FILE`).
    #[arg(short = 'r', long = "read", value_name = "FILE")]
    pub read: Option<PathBuf>,

    /// Do not redact the default secret headers and query parameters (those named with
    /// --redact and --redact-param still are).
    #[arg(long)]
    pub no_redact: bool,

    /// Also redact the values of this header (case-insensitive, repeatable).
    #[arg(long = "redact", value_name = "HEADER", value_parser = parse_header_name,
          value_delimiter = ',')]
    pub redact: Vec<String>,

    /// Also redact the values of this query parameter in URLs (case-insensitive, repeatable).
    #[arg(long = "redact-param", value_name = "NAME", value_parser = parse_param_name,
          value_delimiter = ',')]
    pub redact_params: Vec<String>,

    /// Do not redact this query parameter of the default list (repeatable).
    #[arg(long = "no-redact-param", value_name = "NAME", value_parser = parse_param_name,
          value_delimiter = ',')]
    pub no_redact_params: Vec<String>,

    /// Largest header block kept whole, in bytes; longer ones are cut and flagged truncated.
    #[arg(long, value_name = "BYTES", default_value_t = MAX_HEADER_BYTES.default,
          value_parser = MAX_HEADER_BYTES.parser())]
    pub max_header_bytes: u32,

    /// Payload bytes the kernel copies per syscall at most (header blocks need only the start).
    #[arg(long, value_name = "BYTES", default_value_t = CALL_CAPTURE.default,
          value_parser = CALL_CAPTURE.parser())]
    pub call_capture: u32,

    /// Do not capture HTTPS in cleartext (no OpenSSL/GnuTLS uprobes): TLS connections are then
    /// skipped.
    #[arg(long)]
    pub no_tls: bool,

    /// Do not run the security rules (no {"kind":"alert"} records; see docs/SECURITY-RULES.md).
    #[arg(long)]
    pub no_rules: bool,

    /// Once attached, give up every capability no longer needed (kept with HTTPS capture:
    /// CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN, CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH, to hook
    /// OpenSSL in new processes; with --no-tls: none). See docs/PRIVILEGES.md.
    #[arg(long)]
    pub drop_caps: bool,

    /// Also capture TCP packets (tc) on these interfaces (a comma list; alone: every interface
    /// that is up) and link each plain HTTP/1 record to the packets that carried its message:
    /// they are written as packet records before it, and it lists their ids in "packets".
    #[arg(long, value_name = "IFACE", num_args = 0.., value_delimiter = ',',
          require_equals = true, conflicts_with_all = ["drop_caps", "read"])]
    pub with_packets: Option<Vec<String>>,

    /// With --with-packets: how long records wait for their packets (retransmissions come
    /// late), in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1000, requires = "with_packets",
          value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub packets_wait: u64,

    #[command(flatten)]
    pub wire: WireArgs,
}

/// `hdrtap http --source packets|both`: HTTP reassembled from TCP packets.
#[derive(Debug, Clone, Args)]
pub struct WireArgs {
    /// Where HTTP comes from. syscalls: the socket I/O of local processes (and HTTPS from
    /// their TLS libraries). packets: TCP payload reassembled from the packets on -i
    /// interfaces, so also traffic no local process sends or receives (a router, bridge or
    /// mirror port); plain HTTP only. both: the two at once, each record saying its "source".
    #[arg(long, value_enum, default_value_t = SourceArg::Syscalls,
          conflicts_with_all = ["read"])]
    pub source: SourceArg,

    /// With --source packets|both: capture on this interface (repeatable, or a comma list).
    /// Default, or `any`: every interface that is up.
    #[arg(short, long = "interface", value_name = "IFACE", value_delimiter = ',')]
    pub interfaces: Vec<String>,

    /// With --source packets|both: the packet hook, socket (an AF_PACKET socket filter, the
    /// default) or tc (ingress+egress).
    #[arg(long, default_value = "socket", value_parser = wire_hook_parser())]
    pub hook: Hook,

    /// With --source packets|both: which direction to capture (as hdrtap packets; auto takes
    /// each packet of a loopback interface once).
    #[arg(long, value_enum, default_value_t = DirectionArg::Auto)]
    pub direction: DirectionArg,

    /// With --source packets|both: bytes of each packet the kernel copies at most. Segments
    /// longer than this (GRO/GSO super-packets) lose their tail: counted, and a record whose
    /// header block falls in it is flagged gap.
    #[arg(short = 's', long, value_name = "BYTES", default_value_t = WIRE_SNAPLEN.default,
          value_parser = WIRE_SNAPLEN.parser())]
    pub snaplen: u32,

    /// With --source packets|both: a tcpdump-style filter on the packets, evaluated in the
    /// kernel with `tcp and (...)` around it, e.g. `port 80` or `host 10.0.0.5 and port 8080`.
    #[arg(value_name = "FILTER")]
    pub filter: Vec<String>,
}

impl Default for WireArgs {
    /// HTTP from syscalls only (what `hdrtap run` and `hdrtap top` capture).
    fn default() -> Self {
        WireArgs {
            source: SourceArg::Syscalls,
            interfaces: Vec::new(),
            hook: Hook::Socket,
            direction: DirectionArg::Auto,
            snaplen: WIRE_SNAPLEN.default,
            filter: Vec::new(),
        }
    }
}

/// `--source`: where `hdrtap http` reads HTTP from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SourceArg {
    Syscalls,
    Packets,
    Both,
}

impl SourceArg {
    pub fn syscalls(self) -> bool {
        self != SourceArg::Packets
    }

    pub fn packets(self) -> bool {
        self != SourceArg::Syscalls
    }
}

/// Packet hooks HTTP can be read from (XDP sees one direction only).
fn wire_hook_parser() -> impl clap::builder::TypedValueParser<Value = Hook> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new([Hook::Socket.name(), Hook::Tc.name()])
        .try_map(|s: String| Hook::from_name(&s).ok_or("not a hook"))
}

/// Which processes and connections `hdrtap http` and `hdrtap top` capture
/// (filtered in the kernel; `[http]` keys).
#[derive(Debug, Clone, Default, Args)]
pub struct HttpScope {
    /// Only processes with this pid (repeatable, or a comma list). Filtered in the kernel.
    #[arg(short, long = "pid", value_name = "PID", value_parser = PID.parser(), value_delimiter = ',')]
    pub pids: Vec<u32>,

    /// Only processes with this name, as in /proc/PID/comm, at most 15 bytes (repeatable, or a
    /// comma list: --comm nginx,curl).
    #[arg(long = "comm", value_name = "NAME", value_parser = parse_comm, value_delimiter = ',')]
    pub comms: Vec<String>,

    /// Only connections with this local or remote TCP port (repeatable, or a comma list).
    /// Filtered in the kernel.
    #[arg(long = "port", value_name = "PORT", value_parser = PORT.parser(), value_delimiter = ',')]
    pub ports: Vec<u16>,
}

/// The HTTP-level filters (`hdrtap http`, `hdrtap show`, `hdrtap top`; `[http]` keys): what is written.
#[derive(Debug, Clone, Default, Args)]
pub struct HttpFilterArgs {
    /// Only messages of this method (repeatable, or a comma list). Responses by their request's.
    #[arg(long = "method", value_name = "METHOD", value_parser = parse_method, value_delimiter = ',')]
    pub methods: Vec<String>,

    /// Only messages whose path (the target without its query) matches this glob: '/api/*'.
    #[arg(long, value_name = "GLOB", value_parser = parse_glob)]
    pub path: Option<String>,

    /// Only messages to this host (Host or :authority, without the port; a glob: '*.example.com').
    #[arg(long, value_name = "GLOB", value_parser = parse_glob)]
    pub host: Option<String>,

    /// Only responses with this status (repeatable, or a comma list): 404, 5xx.
    #[arg(long, value_name = "STATUS", value_parser = StatusSpec::parse, value_delimiter = ',')]
    pub status: Vec<StatusSpec>,

    /// Only messages with this header (NAME), or with this exact value (NAME=VALUE). Values are
    /// matched after redaction.
    #[arg(long, value_name = "NAME[=VALUE]", value_parser = parse_header_filter)]
    pub header: Option<String>,

    /// Only responses that took at least this long: 250ms, 1.5s, 800us.
    #[arg(long, value_name = "DURATION", value_parser = parse_latency)]
    pub min_latency: Option<u64>,

    /// Only what the traced process did as a client or as a server: each message once when
    /// both ends are on the machine.
    #[arg(long, value_enum)]
    pub side: Option<SideArg>,

    /// Only messages of processes in this container: an id or its prefix, as `docker ps`
    /// shows it (repeatable, or a comma list). Read from the process's cgroup.
    #[arg(long = "container", value_name = "ID", value_delimiter = ',', value_parser = parse_container)]
    pub containers: Vec<String>,

    /// Only messages of processes in this systemd unit: nginx.service (or nginx),
    /// session-3.scope (repeatable, or a comma list). Read from the process's cgroup.
    #[arg(long = "unit", value_name = "NAME", value_delimiter = ',')]
    pub units: Vec<String>,
}

/// `--container`: hex digits, as container ids are.
pub fn parse_container(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{s:?} is not a container id (1 to 64 hex digits)"));
    }
    Ok(s.to_ascii_lowercase())
}

/// How readable records are drawn (`hdrtap http`, `hdrtap show`).
#[derive(Debug, Clone, Default, Args)]
pub struct ViewArgs {
    /// Colour readable output: auto (on a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorArg::Auto)]
    pub color: ColorArg,
}

/// `--color`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorArg {
    #[default]
    Auto,
    Always,
    Never,
}

const SHOW_EXAMPLES: &str = "\
EXAMPLES:
  hdrtap http --json -o http.ndjson -d 60      # save a minute of traffic ...
  hdrtap show http.ndjson                      # ... and read it back, one line per message
  hdrtap show -v http.ndjson                   # every header, one per line
  hdrtap show --status 5xx --side server http.ndjson   # the same filters as hdrtap http
  hdrtap show --json --path '/api/*' http.ndjson > api.ndjson   # filter into a new file
  hdrtap http -r http.ndjson -c 10             # tcpdump's -r habit: the same as show

Alerts are shown with their records (dropped with them by a filter); stats records are
read for the summary on stderr; packet records are counted, not shown.";

/// Arguments of `hdrtap show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The NDJSON file (`hdrtap http --json -o FILE`, a daemon file sink); `-` for stdin.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    #[command(flatten)]
    pub filter: HttpFilterArgs,

    #[command(flatten)]
    pub view: ViewArgs,

    /// Write the records kept as NDJSON (as read) instead of readable lines.
    #[arg(long)]
    pub json: bool,

    /// Stop after N records (HTTP messages; alerts do not count).
    #[arg(short = 'c', long, value_name = "N", value_parser = COUNT.parser())]
    pub count: Option<u64>,
}

const TOP_EXAMPLES: &str = "\
EXAMPLES:
  hdrtap top                           # every endpoint on this machine, both sides
  hdrtap top --side server --port 8080 # what the server on port 8080 answers
  hdrtap top --comm nginx --path '/api/*'   # nginx's API endpoints only
  hdrtap top --status 5xx              # only failing responses

KEYS: q, Esc or Ctrl-C quit; c count, r rate, e errors, m p50, p p99, n route sort
(Tab: the next key); / filter (a case-insensitive substring of METHOD ROUTE; Enter
applies, Esc clears).

COLUMNS: each row is one side (server: the traced process answered; client: it
asked), a method and a route (the path without its query, identifiers folded to *:
/users/42 and /users/7 are /users/*). COUNT: final responses (not 1xx but 101);
RATE/S: over the last 5 seconds; 4XX% and 5XX%: shares of COUNT (the errors sort
is by their sum); P50, P95, P99 (within 1 %) and MAX: latency from the request's
first byte to the response's first, as the traced process saw them. At most 1000
endpoints are kept; responses to later ones are counted in an (other) row per
side. The header counts events the kernel lost, parse errors and records the view
dropped; messages hdrtap would print meanwhile are shown on stderr after the
screen is restored. A narrow terminal leaves out MAX, then P95, then P50.";

/// Arguments of `hdrtap top`: which HTTP messages to count (the flags of
/// `hdrtap http` that choose them).
#[derive(Debug, Args)]
pub struct TopArgs {
    #[command(flatten)]
    pub scope: HttpScope,

    #[command(flatten)]
    pub filter: HttpFilterArgs,

    /// Do not capture HTTPS in cleartext (no OpenSSL uprobes): TLS connections are then skipped.
    #[arg(long)]
    pub no_tls: bool,

    /// Stop after SECS seconds (the terminal is restored, exit status 0).
    #[arg(short, long, value_name = "SECS", value_parser = DURATION.parser())]
    pub duration: Option<u64>,
}

const PACKETS_EXAMPLES: &str = "\
EXAMPLES:
  hdrtap packets                               # every packet on every up interface (tc)
  hdrtap packets -i eth0 tcp port 443          # a tcpdump-style filter, run in the kernel
  hdrtap packets -i any -c 5 -n icmp           # tcpdump habits: any interface, 5 packets
  hdrtap packets -i lo --json -o p.ndjson      # NDJSON to a file (mode 0600)
  hdrtap packets --hook xdp -i veth0 udp       # XDP (ingress only; native mode if the driver can)
  hdrtap packets --hook socket -i eth0 arp     # socket filter on an AF_PACKET socket
  hdrtap packets -i eth0 --direction in 'tcp[tcpflags] & tcp-syn != 0'
  hdrtap packets -i eth0 --sample 100 --snaplen 128   # 1 packet in 100, 128 bytes of each

FILTER primitives: [src|dst] host ADDR, [src|dst] net CIDR, [src|dst] port N,
[src|dst] portrange A-B, tcp, udp, icmp, icmp6, arp, ip, ip6, [ip|ip6] proto N,
vlan [ID], tcp[tcpflags] & FLAGS (!=|==) VALUE (tcp-fin tcp-syn tcp-rst tcp-push
tcp-ack tcp-urg tcp-ece tcp-cwr), icmp[icmptype] == VALUE; combined with and/&&,
or/||, not/! and parentheses. Quote expressions holding & ! ( ) [ ] for the shell.
On lo each packet is logged once, as received (--direction both: also as sent).";

/// Capture packet headers.
#[derive(Debug, Args)]
pub struct PacketsArgs {
    /// Where to capture: tc (ingress+egress, TCX or clsact), xdp (ingress only), socket (AF_PACKET socket filter).
    #[arg(long, default_value = "tc", value_parser = hook_parser())]
    pub hook: Hook,

    /// Capture on this interface (repeatable, or a comma list). Default, or `any`: every
    /// interface that is up.
    #[arg(short, long = "interface", value_name = "IFACE", value_delimiter = ',')]
    pub interfaces: Vec<String>,

    /// Which direction to capture. auto: both, except on loopback interfaces, where every
    /// packet is both sent and received and only the received copy is taken (each packet
    /// once, as tcpdump shows lo); both: on lo every packet twice, once out and once in.
    #[arg(long, value_enum, default_value_t = DirectionArg::Auto)]
    pub direction: DirectionArg,

    /// Bytes of each packet the kernel copies (headers are decoded from these); -s as in tcpdump.
    #[arg(short = 's', long, value_name = "BYTES", default_value_t = SNAPLEN.default,
          value_parser = SNAPLEN.parser())]
    pub snaplen: u32,

    /// Keep one packet in N that pass the filter, chosen at random in the kernel.
    #[arg(long, value_name = "N", default_value_t = SAMPLE.default, value_parser = SAMPLE.parser())]
    pub sample: u32,

    #[command(flatten)]
    pub common: CaptureCommon,

    /// Write the packets to FILE as pcapng (Wireshark, tshark, tcpdump -r), `-` for stdout,
    /// instead of records. Each packet's comment names its process (pid, tid, comm) and socket
    /// cookie when the kernel knew them. A new file gets mode 0600; a symbolic link is refused.
    #[arg(short = 'w', long = "write", value_name = "FILE", conflicts_with_all = ["json", "output"],
          group = "print_beside")]
    pub write: Option<PathBuf>,

    /// With -w FILE: once the file holds more than MB million bytes, go on in a new one, as
    /// tcpdump -C: FILE, FILE1, FILE2, ... (with -W: FILE0 ... FILE{N-1}, zero-padded).
    #[arg(short = 'C', value_name = "MB", requires = "write", value_parser = ROTATE_MB.parser())]
    pub rotate_mb: Option<u64>,

    /// With -C: keep at most N files, writing over the oldest (a ring of files, as tcpdump -W).
    #[arg(short = 'W', value_name = "N", requires = "rotate_mb", value_parser = ROTATE_FILES.parser())]
    pub rotate_files: Option<u32>,

    /// Do not attribute packets to processes (skips the three socket tracing programs).
    #[arg(long)]
    pub no_process: bool,

    /// How tc programs attach: tcx (bpf_link, kernel >= 6.6), clsact (netlink qdisc), or auto.
    #[arg(long, value_enum, default_value_t = TcAttachArg::Auto)]
    pub tc_attach: TcAttachArg,

    /// Once attached, give up every capability no longer needed (kept: CAP_NET_ADMIN when
    /// clsact filters must be removed at exit; otherwise none). See docs/PRIVILEGES.md.
    #[arg(long)]
    pub drop_caps: bool,

    /// Accepted for tcpdump's habit (-n, -nn): hdrtap never resolves names or ports.
    #[arg(short = 'n', action = clap::ArgAction::Count)]
    pub numeric: u8,

    /// tcpdump-style filter expression, evaluated in the kernel (see below). Options may come
    /// before or after it; put `--` before an expression that starts with `-`.
    #[arg(value_name = "FILTER")]
    pub filter: Vec<String>,
}

/// The options every capture command shares (`hdrtap http`, `hdrtap
/// packets`), also filled from `hdrtap run`'s configuration file.
#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("print_beside").args(["output"]).multiple(true)))]
pub struct CaptureCommon {
    /// Write NDJSON (one object per record, see docs/SCHEMA.md) instead of readable lines.
    #[arg(long)]
    pub json: bool,

    /// Write records to PATH instead of stdout (`-` for stdout). A new file gets mode 0600;
    /// an existing one is truncated and set to 0600; a symbolic link is refused.
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,

    /// With --json -o FILE (or packets' -w FILE): also print readable lines on stdout while
    /// the file gets NDJSON (or pcapng).
    #[arg(long, requires = "print_beside")]
    pub print: bool,

    /// Stop after N records (HTTP messages or packets; alerts and stats do not count),
    /// flushing output and printing the summary.
    #[arg(short = 'c', long, value_name = "N", value_parser = COUNT.parser())]
    pub count: Option<u64>,

    /// Stop after SECS seconds, flushing output and printing the summary.
    #[arg(short, long, value_name = "SECS", value_parser = DURATION.parser())]
    pub duration: Option<u64>,

    /// Create this file once every program is attached (for scripts and tests).
    #[arg(long, value_name = "PATH")]
    pub ready_file: Option<PathBuf>,

    /// Seconds between {"kind":"stats"} records in --json output (default 10). With readable
    /// output (or --print), given explicitly: the summary so far on stderr every SECS seconds (status mix,
    /// latency percentiles, top endpoints, alerts, losses).
    #[arg(long, value_name = "SECS", value_parser = STATS_INTERVAL.parser())]
    pub stats_interval: Option<u64>,

    /// Ring-buffer size in MiB (power of two). Larger rides out longer bursts; hdrtap is
    /// woken when it is three quarters full, else every 50 ms.
    #[arg(long, value_name = "MIB", default_value_t = RING_MIB.default,
          value_parser = RING_MIB.parser())]
    pub ring_mib: u32,

    /// Do not print the start-up line on stderr.
    #[arg(short, long)]
    pub quiet: bool,
}

/// A numeric option's bounds and default: its flag's parser and its
/// configuration key's check both come from here, so the two accept the
/// same values and say the same thing about the others.
#[derive(Debug, Clone, Copy)]
pub struct Bounds<T> {
    pub min: T,
    pub max: T,
    pub default: T,
    /// Powers of two only.
    pub pow2: bool,
}

impl<T> Bounds<T>
where
    T: Copy + PartialOrd + fmt::Display + FromStr + Into<u64> + Send + Sync + 'static,
{
    const fn new(min: T, max: T, default: T) -> Self {
        Bounds {
            min,
            max,
            default,
            pow2: false,
        }
    }

    /// `v` if within bounds, else why not.
    pub fn check(&self, v: T) -> Result<T, String> {
        if v < self.min || v > self.max {
            return Err(format!("{v} is not in {}..={}", self.min, self.max));
        }
        if self.pow2 && !v.into().is_power_of_two() {
            return Err(format!(
                "{v} is not a power of two ({}..={})",
                self.min, self.max
            ));
        }
        Ok(v)
    }

    /// The flag's value parser.
    pub fn parser(self) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static {
        move |s: &str| {
            let v = s
                .trim()
                .parse::<T>()
                .map_err(|_| format!("{s:?} is not a whole number"))?;
            self.check(v)
        }
    }
}

pub const PID: Bounds<u32> = Bounds::new(1, u32::MAX, 1);
pub const PORT: Bounds<u16> = Bounds::new(1, u16::MAX, 1);
pub const DURATION: Bounds<u64> = Bounds::new(1, 31_536_000, 1);
pub const COUNT: Bounds<u64> = Bounds::new(1, u64::MAX, 1);
/// `hdrtap packets -C`: millions of bytes per capture file.
pub const ROTATE_MB: Bounds<u64> = Bounds::new(1, 1_000_000, 100);
/// `hdrtap packets -W`: capture files in the ring.
pub const ROTATE_FILES: Bounds<u32> = Bounds::new(1, 100_000, 10);
pub const STATS_INTERVAL: Bounds<u64> = Bounds::new(1, 86_400, 10);
pub const MAX_HEADER_BYTES: Bounds<u32> = Bounds::new(256, 262_144, 16 * 1024);
pub const CALL_CAPTURE: Bounds<u32> = Bounds::new(
    1,
    hdrtap_abi::HDRTAP_CALL_CAPTURE_MAX,
    hdrtap_abi::HDRTAP_DEFAULT_CALL_CAPTURE,
);
pub const RING_MIB: Bounds<u32> = Bounds {
    pow2: true,
    ..Bounds::new(1, 1024, 16)
};
pub const SNAPLEN: Bounds<u32> = Bounds::new(
    14,
    hdrtap_abi::HDRTAP_PKT_SNAPLEN_MAX,
    hdrtap_abi::HDRTAP_PKT_SNAPLEN_DEFAULT,
);
/// `hdrtap http --source packets -s`: whole segments by default.
pub const WIRE_SNAPLEN: Bounds<u32> = Bounds::new(
    128,
    hdrtap_abi::HDRTAP_PKT_L7_SNAPLEN_MAX,
    hdrtap_abi::HDRTAP_PKT_L7_SNAPLEN_DEFAULT,
);
pub const SAMPLE: Bounds<u32> = Bounds::new(1, 1_000_000, 1);

/// `--hook`'s values: [`Hook`]'s names.
fn hook_parser() -> impl clap::builder::TypedValueParser<Value = Hook> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(Hook::ALL.map(Hook::name))
        .try_map(|s: String| Hook::from_name(&s).ok_or("not a hook"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DirectionArg {
    /// Both, but only received packets on loopback interfaces.
    Auto,
    In,
    Out,
    Both,
}

/// `--side`: which end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SideArg {
    Client,
    Server,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TcAttachArg {
    Auto,
    Tcx,
    Clsact,
}

const RUN_EXAMPLES: &str = "\
EXAMPLES:
  hdrtap run --print-example-config > /etc/hdrtap/hdrtap.toml
  hdrtap run --check-config /etc/hdrtap/hdrtap.toml   # validate only, attach nothing
  hdrtap run --config /etc/hdrtap/hdrtap.toml         # run until SIGTERM

SIGTERM or SIGINT stops the captures, then every sink is drained, flushed and closed
(files fsynced); exit status 0. SIGHUP makes every file sink reopen its path (for
logrotate). A slow or dead sink never blocks capture: its queue is bounded and what
does not fit is dropped and counted. See docs/DAEMON.md.";

/// Arguments of `hdrtap run`.
#[derive(Debug, Args)]
#[command(group(
    clap::ArgGroup::new("mode").args(["config", "check_config", "print_example_config"])
))]
pub struct RunArgs {
    /// Run the captures and sinks this TOML file describes, until SIGTERM.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Check FILE and exit (0 if valid; otherwise one line naming the key and line). Like
    /// nginx -t, opens what run opens first: file sink paths (created, never truncated),
    /// Prometheus listen addresses, packet interfaces. Attaches nothing.
    #[arg(long, value_name = "FILE")]
    pub check_config: Option<PathBuf>,

    /// Print an example configuration with every key, commented, and exit.
    #[arg(long)]
    pub print_example_config: bool,
}

/// Arguments of `hdrtap doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Instead of the checks: list the processes with TCP sockets and whether
    /// hdrtap can show their HTTPS in cleartext (by which library), or why not.
    #[arg(long)]
    pub tls: bool,

    /// Print the checks and the verdict on each capture as one JSON object (with --tls: the
    /// processes, as one JSON array).
    #[arg(long)]
    pub json: bool,
}

pub(crate) fn parse_comm(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 15 {
        return Err(format!(
            "{s:?} is {} bytes; a process name (comm) is 1 to 15 bytes",
            s.len()
        ));
    }
    Ok(s.to_string())
}

/// An HTTP method (a token), upper-cased.
pub(crate) fn parse_method(s: &str) -> Result<String, String> {
    parse_header_name(s)
        .map(|m| m.to_ascii_uppercase())
        .map_err(|_| format!("{s:?} is not an HTTP method"))
}

/// A glob, kept as written (checked here).
pub(crate) fn parse_glob(s: &str) -> Result<String, String> {
    hdrtap_core::filter_http::parse_glob(s).map(|_| s.to_string())
}

/// `NAME` or `NAME=VALUE`, the name a header name.
pub(crate) fn parse_header_filter(s: &str) -> Result<String, String> {
    parse_header_name(s.split_once('=').map_or(s, |(n, _)| n))?;
    Ok(s.to_string())
}

pub(crate) fn parse_header_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!("{s:?} is not an HTTP header name"))
    }
}

/// A query parameter name: anything printable without `&`, `=`, `#`,
/// `;` or whitespace.
pub(crate) fn parse_param_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && !b"&=#;?".contains(&b));
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!("{s:?} is not a query parameter name"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_the_contract_flags() {
        let cli = Cli::try_parse_from([
            "hdrtap",
            "http",
            "--json",
            "--output",
            "/tmp/x",
            "--pid",
            "12",
            "--pid",
            "13",
            "--comm",
            "nginx",
            "--port",
            "8080",
            "--no-redact",
            "--redact",
            "X-A",
            "--redact-param",
            "ticket",
            "--no-redact-param",
            "state",
            "--duration",
            "5",
            "--ready-file",
            "/tmp/r",
        ])
        .unwrap();
        let Command::Http(a) = cli.command else {
            panic!()
        };
        assert!(a.common.json && a.no_redact);
        assert_eq!(a.scope.pids, vec![12, 13]);
        assert_eq!(a.scope.comms, vec!["nginx"]);
        assert_eq!(a.scope.ports, vec![8080]);
        assert_eq!(a.redact, vec!["X-A"]);
        assert_eq!(a.redact_params, vec!["ticket"]);
        assert_eq!(a.no_redact_params, vec!["state"]);
        assert_eq!(a.common.duration, Some(5));
    }

    #[test]
    fn packets_takes_a_trailing_filter() {
        let cli = Cli::try_parse_from([
            "hdrtap",
            "packets",
            "-i",
            "lo",
            "-i",
            "eth0",
            "--hook",
            "xdp",
            "--snaplen",
            "128",
            "--sample",
            "10",
            "--direction",
            "in",
            "tcp",
            "port",
            "80",
            "and",
            "not",
            "src",
            "host",
            "10.0.0.1",
        ])
        .unwrap();
        let Command::Packets(a) = cli.command else {
            panic!()
        };
        assert_eq!(a.interfaces, vec!["lo", "eth0"]);
        assert_eq!(a.hook, Hook::Xdp);
        assert_eq!(
            (a.snaplen, a.sample, a.direction),
            (128, 10, DirectionArg::In)
        );
        assert_eq!(a.filter.join(" "), "tcp port 80 and not src host 10.0.0.1");
        let Command::Packets(a) = Cli::try_parse_from(["hdrtap", "packets"]).unwrap().command
        else {
            panic!()
        };
        assert_eq!(a.direction, DirectionArg::Auto);
        for bad in [
            vec!["hdrtap", "packets", "--snaplen", "100000"],
            vec!["hdrtap", "packets", "--sample", "0"],
            vec!["hdrtap", "packets", "--hook", "kprobe"],
            vec!["hdrtap", "packets", "--direction", "sideways"],
        ] {
            assert!(Cli::try_parse_from(&bad).is_err(), "accepted {bad:?}");
        }
    }

    /// tcpdump habits: `-c N`, comma lists, `-n`/`-nn`, options after the
    /// filter, `-o -`; `-c` is the count, not `--comm`.
    #[test]
    fn tcpdump_habits_parse() {
        let Command::Http(a) = Cli::try_parse_from([
            "hdrtap",
            "http",
            "-c",
            "10",
            "--port",
            "80,443",
            "--comm",
            "nginx,curl",
            "-p",
            "1,2",
            "-o",
            "-",
        ])
        .unwrap()
        .command
        else {
            panic!()
        };
        assert_eq!(a.common.count, Some(10));
        assert_eq!(a.scope.ports, [80, 443]);
        assert_eq!(a.scope.comms, ["nginx", "curl"]);
        assert_eq!(a.scope.pids, [1, 2]);
        assert_eq!(a.common.output.as_deref(), Some(std::path::Path::new("-")));
        let Command::Packets(a) = Cli::try_parse_from([
            "hdrtap", "packets", "-i", "lo,eth0", "tcp", "port", "80", "-nn", "-c", "5",
        ])
        .unwrap()
        .command
        else {
            panic!()
        };
        assert_eq!(a.interfaces, ["lo", "eth0"]);
        assert_eq!(a.filter.join(" "), "tcp port 80");
        assert_eq!((a.common.count, a.numeric), (Some(5), 2));
        let Command::Packets(a) = Cli::try_parse_from(["hdrtap", "packets", "-s", "96"])
            .unwrap()
            .command
        else {
            panic!()
        };
        assert_eq!(a.snaplen, 96);
        let Command::Packets(a) = Cli::try_parse_from(["hdrtap", "packets", "--", "-x"])
            .unwrap()
            .command
        else {
            panic!()
        };
        assert_eq!(a.filter, ["-x"]);
        for bad in [
            vec!["hdrtap", "packets", "-c", "5", "--bogus", "tcp"],
            vec!["hdrtap", "packets", "-s", "8"],
            vec!["hdrtap", "packets", "-w", "x.pcapng", "--json"],
            vec!["hdrtap", "packets", "-w", "x.pcapng", "-o", "y"],
            vec!["hdrtap", "http", "-c", "0"],
        ] {
            assert!(Cli::try_parse_from(&bad).is_err(), "accepted {bad:?}");
        }
    }

    /// `hdrtap top` takes the filters of `hdrtap http`, not its output flags.
    #[test]
    fn top_takes_the_http_filters() {
        let Command::Top(a) = Cli::try_parse_from([
            "hdrtap", "top", "--port", "80,443", "--side", "server", "--status", "5xx", "-d", "5",
            "--no-tls", "--comm", "nginx",
        ])
        .unwrap()
        .command
        else {
            panic!()
        };
        assert_eq!(a.scope.ports, [80, 443]);
        assert_eq!(a.filter.side, Some(SideArg::Server));
        assert_eq!(a.filter.status, [StatusSpec::Class(5)]);
        assert_eq!(a.scope.comms, ["nginx"]);
        assert_eq!((a.duration, a.no_tls), (Some(5), true));
        for bad in [
            vec!["hdrtap", "top", "--json"],
            vec!["hdrtap", "top", "-o", "x"],
            vec!["hdrtap", "top", "-c", "10"],
            vec!["hdrtap", "top", "--port", "0"],
            vec!["hdrtap", "top", "-d", "0"],
        ] {
            assert!(Cli::try_parse_from(&bad).is_err(), "accepted {bad:?}");
        }
    }

    /// The numbers `hdrtap top --help` gives are the table's.
    #[test]
    fn top_help_says_the_tables_bounds() {
        use hdrtap_core::live::{MAX_ENDPOINTS, WINDOW_SECS};
        assert!(TOP_EXAMPLES.contains(&format!("At most {MAX_ENDPOINTS}\nendpoints are kept")));
        assert!(TOP_EXAMPLES.contains(&format!("over the last {WINDOW_SECS} seconds")));
    }

    #[test]
    fn rejects_bad_values() {
        for bad in [
            vec!["hdrtap", "http", "--port", "notaport"],
            vec!["hdrtap", "http", "--port", "0"],
            vec!["hdrtap", "http", "--port", "70000"],
            vec!["hdrtap", "http", "--pid", "-1"],
            vec!["hdrtap", "http", "--comm", "a-very-long-process-name"],
            vec!["hdrtap", "http", "--redact", "bad header"],
            vec!["hdrtap", "http", "--redact-param", "a=b"],
            vec!["hdrtap", "http", "--no-redact-param", ""],
            vec!["hdrtap", "http", "--ring-mib", "3"],
            vec!["hdrtap", "http", "--duration", "0"],
            vec!["hdrtap", "http", "--bogus"],
        ] {
            assert!(Cli::try_parse_from(&bad).is_err(), "accepted {bad:?}");
        }
    }
}
