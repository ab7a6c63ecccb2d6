use super::*;
use crate::cli::{Cli, Command};
use clap::{CommandFactory, Parser};

fn check(text: &str) -> Result<Plan, String> {
    parse(Path::new("t.toml"), text).map_err(|e| e.to_string())
}

fn err(text: &str) -> String {
    match check(text) {
        Ok(p) => panic!("accepted:\n{text}\n{p:?}"),
        Err(e) => e,
    }
}

const MIN: &str = "[http]\n[[sinks]]\ntype = \"stdout\"\n";

#[test]
fn the_example_is_valid_and_complete() {
    let plan = check(EXAMPLE).unwrap();
    let (http, rules) = plan.http.as_ref().unwrap();
    assert!(!http.no_tls && !http.no_redact && !http.no_rules);
    assert_eq!(http.max_header_bytes, 16384);
    assert!(rules.is_some());
    assert!(plan.packets.is_none(), "disabled in the example");
    let types: Vec<&str> = plan.sinks.iter().map(|s| s.kind.type_name()).collect();
    assert_eq!(types, ["file", "prometheus", "otlp"]);
    match &plan.sinks[2].kind {
        SinkKind::Otlp(o) => {
            assert_eq!(o.protocol, Protocol::Grpc);
            assert_eq!(o.endpoint, "http://127.0.0.1:4317");
        }
        other => panic!("{other:?}"),
    }
    // With packets on, the example's packet settings parse too.
    let on = EXAMPLE.replacen("[packets]\nenabled = false", "[packets]\nenabled = true", 1);
    let plan = check(&on).unwrap();
    let p = plan.packets.unwrap();
    assert_eq!(p.filter.join(" "), "tcp port 80");
    assert_eq!(p.snaplen, 256);
}

#[test]
fn every_cli_option_has_a_config_key() {
    // Flags that are daemon-wide or replaced by sinks, and where they went.
    let elsewhere = [
        ("json", "[[sinks]] format"),
        ("count", "(none: the daemon runs until it is stopped)"),
        ("print", "[[sinks]] type = \"stdout\", format = \"human\""),
        ("numeric", "(none: tcpdump's -n, a no-op)"),
        ("output", "[[sinks]] type = \"file\""),
        ("quiet", "quiet"),
        ("duration", "duration"),
        ("ready_file", "ready_file"),
        ("stats_interval", "stats_interval"),
        ("no_redact", "[redaction] enabled"),
        ("redact", "[redaction] headers"),
        ("redact_params", "[redaction] params"),
        ("no_redact_params", "[redaction] no_params"),
        ("no_rules", "[rules] enabled"),
        ("no_tls", "[http] tls"),
        ("no_process", "[packets] process"),
        ("pids", "[http] pids"),
        ("comms", "[http] comms"),
        ("ports", "[http] ports"),
        ("interfaces", "[packets] interfaces"),
        ("help", ""),
        ("version", ""),
        ("verbose", "(global: -v)"),
        ("color", "(none: sinks write no colour codes)"),
        ("read", "(none: hdrtap show FILE reads a file back)"),
        (
            "write",
            "(none yet: pcapng is hdrtap packets -w; the daemon has no pcapng sink)",
        ),
        ("rotate_mb", "(none yet: -w's rotation)"),
        ("rotate_files", "(none yet: -w's rotation)"),
        (
            "with_packets",
            "(none: the daemon does not join records to packets; hdrtap http --with-packets does)",
        ),
        ("packets_wait", "(none: with --with-packets)"),
        (
            "source",
            "(none yet: the daemon reads HTTP from syscalls; hdrtap http --source packets reads packets)",
        ),
    ];
    for sub in ["http", "packets"] {
        let cmd = Cli::command();
        let sc = cmd.find_subcommand(sub).unwrap();
        for arg in sc.get_arguments() {
            let id = arg.get_id().as_str();
            if elsewhere.iter().any(|(f, _)| *f == id) {
                continue;
            }
            // Shown with its default, or commented out with an example.
            assert!(
                EXAMPLE.contains(&format!("\n{id} = "))
                    || EXAMPLE.contains(&format!("\n# {id} = ")),
                "`hdrtap {sub}` option {id} has no key in packaging/hdrtap.example.toml"
            );
        }
    }
}

#[test]
fn a_small_config_uses_the_cli_defaults() {
    let plan = check(MIN).unwrap();
    let (a, rules) = plan.http.unwrap();
    let cli = match Cli::try_parse_from(["hdrtap", "http"]).unwrap().command {
        Command::Http(c) => c,
        _ => unreachable!(),
    };
    assert_eq!(
        (
            a.common.ring_mib,
            a.call_capture,
            a.max_header_bytes,
            a.common.stats_interval.unwrap_or(0)
        ),
        (
            cli.common.ring_mib,
            cli.call_capture,
            cli.max_header_bytes,
            cli.common
                .stats_interval
                .unwrap_or(cli::STATS_INTERVAL.default)
        )
    );
    assert_eq!(rules, Some(RulesConfig::default()));
    assert_eq!(plan.sinks[0].name, "stdout");
    assert_eq!(plan.sinks[0].kinds, KindSet::ALL);
}

#[test]
fn errors_name_the_key_and_the_line() {
    for (text, want) in [
        ("bogus = 1\n", vec!["line 1", "unknown field `bogus`"]),
        ("[http]\nports = [80, 0]\n[[sinks]]\ntype = \"stdout\"\n", vec!["line 2", "key http.ports[1]", "0 is not in 1..=65535"]),
        ("[http]\nports = [70000]\n[[sinks]]\ntype = \"stdout\"\n", vec!["line 2", "key http.ports[0]"]),
        ("[http]\n\nring_mib = 3\n[[sinks]]\ntype = \"stdout\"\n", vec!["line 3", "key http.ring_mib", "power of two"]),
        ("[http]\ncomms = [\"a-very-long-process-name\"]\n[[sinks]]\ntype = \"stdout\"\n", vec!["line 2", "key http.comms[0]"]),
        ("[http]\nmax_header_bytes = \"big\"\n", vec!["line 2", "key http.max_header_bytes", "invalid type"]),
        ("[http]\n[packets]\nfilter = \"tcp and prot 80\"\n[[sinks]]\ntype = \"stdout\"\n", vec!["line 3", "key packets.filter", "prot"]),
        ("[http]\n[packets]\nhook = \"kprobe\"\n[[sinks]]\ntype = \"stdout\"\n", vec!["line 3", "key packets.hook", "kprobe"]),
        ("[http]\n[rules]\ndisable = [\"nope\"]\n[[sinks]]\ntype = \"stdout\"\n", vec!["line 3", "key rules.disable[0]", "unknown rule"]),
        ("[http]\n[redaction]\nheaders = [\"bad header\"]\n[[sinks]]\ntype = \"stdout\"\n", vec!["line 3", "key redaction.headers[0]"]),
        ("[http]\n[redaction]\nparams = [\"a&b\"]\n[[sinks]]\ntype = \"stdout\"\n", vec!["line 3", "key redaction.params[0]"]),
        ("stats_interval = 0\n[http]\n[[sinks]]\ntype = \"stdout\"\n", vec!["line 1", "key stats_interval"]),
        ("[http]\n[[sinks]]\ntype = \"file\"\n", vec!["line 2", "key sinks[0]", "needs `path`"]),
        ("[http]\n[[sinks]]\ntype = \"file\"\npath = \"/x\"\nlisten = \"1.2.3.4:1\"\n", vec!["line 5", "key sinks[0].listen", "not a setting of a file sink"]),
        ("[http]\n[[sinks]]\ntype = \"files\"\n", vec!["line 3", "key sinks[0].type", "unknown variant"]),
        ("[http]\n[[sinks]]\ntype = \"stdout\"\n\n[[sinks]]\ntype = \"otlp\"\nendpoint = \"https://c:4318\"\n", vec!["line 7", "key sinks[1].endpoint", "https is not supported"]),
        ("[http]\n[[sinks]]\ntype = \"prometheus\"\nlisten = \"localhost\"\n", vec!["line 4", "key sinks[0].listen"]),
        ("[http]\n[[sinks]]\ntype = \"file\"\npath = \"/x\"\nmax_size = \"10 parsecs\"\n", vec!["line 5", "key sinks[0].max_size", "unknown unit"]),
        ("[http]\n[[sinks]]\ntype = \"stdout\"\nkinds = [\"htp\"]\n", vec!["line 4", "key sinks[0].kinds", "unknown record kind"]),
        ("[http]\n[[sinks]]\ntype = \"stdout\"\nname = \"a\"\n[[sinks]]\ntype = \"stdout\"\nname = \"a\"\n", vec!["line 7", "key sinks[1].name", "two sinks"]),
        ("[http]\n[[sinks]]\ntype = \"stdout\"\ntypo_key = 1\n", vec!["line 4", "unknown field `typo_key`"]),
        ("[http]\n", vec!["no sink"]),
        ("[[sinks]]\ntype = \"stdout\"\n", vec!["no capture"]),
        ("[http\n", vec!["line 1"]),
    ] {
        let e = err(text);
        assert!(!e.contains('\n'), "one line: {e}");
        assert!(e.starts_with("config t.toml"), "{e}");
        for w in want {
            assert!(e.contains(w), "{text:?}: {e:?} lacks {w:?}");
        }
    }
}

#[test]
fn sizes_and_names() {
    assert_eq!(parse_size("100MiB"), Ok(100 << 20));
    assert_eq!(parse_size("10m"), Ok(10 << 20));
    assert_eq!(parse_size("4096"), Ok(4096));
    assert_eq!(parse_size("1G"), Ok(1 << 30));
    assert!(parse_size("x").is_err());
    let plan = check("[http]\n[[sinks]]\ntype = \"stdout\"\n[[sinks]]\ntype = \"stdout\"\nformat = \"human\"\n[[sinks]]\ntype = \"file\"\npath = \"/tmp/x\"\nmax_size = 8192\n").unwrap();
    let names: Vec<&str> = plan.sinks.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["stdout", "stdout-2", "file"]);
    match &plan.sinks[2].kind {
        SinkKind::File(o) => assert_eq!((o.max_bytes, o.max_files, o.compress), (8192, 5, false)),
        other => panic!("{other:?}"),
    }
    match &plan.sinks[1].kind {
        SinkKind::Stdout(f) => assert_eq!(*f, Format::Human),
        other => panic!("{other:?}"),
    }
}

#[test]
fn rules_and_redaction_reach_the_capture() {
    let plan = check(
        "[http]\ntls = false\n[redaction]\nenabled = false\nheaders = [\"X-Session\"]\nparams = [\"ticket\"]\nno_params = [\"code\"]\n[rules]\ndisable = [\"cleartext_credentials\"]\nmax_header_count = 50\n[[sinks]]\ntype = \"stdout\"\n",
    )
    .unwrap();
    let (a, rules) = plan.http.unwrap();
    assert!(a.no_tls && a.no_redact);
    assert_eq!(a.redact, ["X-Session"]);
    assert_eq!(a.redact_params, ["ticket"]);
    assert_eq!(a.no_redact_params, ["code"]);
    let rules = rules.unwrap();
    assert_eq!(rules.disabled, ["cleartext_credentials"]);
    assert_eq!(rules.max_header_count, 50);
    let off = check("[http]\n[rules]\nenabled = false\n[[sinks]]\ntype = \"stdout\"\n").unwrap();
    let (a, rules) = off.http.unwrap();
    assert!(a.no_rules && rules.is_none());
}

#[test]
fn http_filter_keys_reach_the_capture_and_name_their_errors() {
    let plan = check(
        "[http]\nmethods = [\"get\", \"POST\"]\npath = \"/api/*\"\nhost = \"*.example.com\"\nstatus = [\"5xx\", \"404\"]\nheader = \"X-Tenant=acme\"\nmin_latency = \"1.5s\"\nside = \"server\"\n[[sinks]]\ntype = \"stdout\"\n",
    )
    .unwrap();
    let (a, _) = plan.http.unwrap();
    use hdrtap_core::filter_http::StatusSpec;
    assert_eq!(a.filter.methods, ["GET", "POST"]);
    assert_eq!(a.filter.path.as_deref(), Some("/api/*"));
    assert_eq!(a.filter.host.as_deref(), Some("*.example.com"));
    assert_eq!(
        a.filter.status,
        [StatusSpec::Class(5), StatusSpec::Code(404)]
    );
    assert_eq!(a.filter.header.as_deref(), Some("X-Tenant=acme"));
    assert_eq!(a.filter.min_latency, Some(1_500_000_000));
    assert_eq!(a.filter.side, Some(crate::cli::SideArg::Server));
    for (text, want) in [
        (
            "[http]\nstatus = [\"6xx\"]\n",
            vec!["line 2", "key http.status[0]", "not a status"],
        ),
        (
            "[http]\nside = \"both\"\n",
            vec!["line 2", "key http.side", "client, server"],
        ),
        (
            "[http]\nmin_latency = \"soon\"\n",
            vec!["line 2", "key http.min_latency"],
        ),
        (
            "[http]\npath = \"/a/[\"\n",
            vec!["line 2", "key http.path", "glob"],
        ),
        (
            "[http]\nheader = \"bad name=1\"\n",
            vec!["line 2", "key http.header"],
        ),
    ] {
        let e = err(&format!("{text}[[sinks]]\ntype = \"stdout\"\n"));
        for w in want {
            assert!(e.contains(w), "{text:?}: {e:?} lacks {w:?}");
        }
    }
}
