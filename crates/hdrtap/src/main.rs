//! hdrtap: the command-line front. Thin: parse flags, wire the pipeline,
//! print errors as one line.
#![forbid(unsafe_code)]
mod cli;
mod cmd;
mod config;

use std::process::ExitCode;

use clap::Parser;

/// Records are allocated in the ring-buffer callback and freed in bulk after
/// each poll; glibc's malloc spent a fifth of hdrtap's CPU on that pattern
/// (perf, nginx+wrk on loopback), mimalloc a small fraction of it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // hdrtap re-executed as the helper that removes clsact filters if the
    // capturing hdrtap is killed (hdrtap_bpf::reaper).
    if let Some(code) = hdrtap_bpf::reaper::main_if_reaper() {
        return ExitCode::from(code);
    }
    // A bug must not spill a backtrace over the user's terminal: one line.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("hdrtap: internal error: {info} (please report this)");
    }));
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    // In http and show, the first -v is for the records (every header on
    // a line of its own, as curl -v); the logs take the next ones.
    let shows_headers = matches!(cli.command, cli::Command::Http(_) | cli::Command::Show(_));
    let log_level = if shows_headers {
        cli.verbose.saturating_sub(1)
    } else {
        cli.verbose
    };
    let more = if shows_headers { "-vv" } else { "-v" };
    init_logging(log_level);
    let result = match &cli.command {
        cli::Command::Http(args) => cmd::http::run(args, cli.verbose),
        cli::Command::Show(args) => cmd::show::run(args, cli.verbose),
        cli::Command::Top(args) => cmd::top::run(args),
        cli::Command::Packets(args) => cmd::packets::run(args),
        cli::Command::Doctor(args) => cmd::doctor::run(args),
        cli::Command::Run(args) => cmd::run::run(args),
        cli::Command::Completions(args) => cmd::manual::completions(args),
        cli::Command::Man(args) => cmd::manual::man_pages(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hdrtap: error: {}", one_line(&e));
            if log_level > 0 {
                for cause in e.chain().skip(1) {
                    eprintln!("  caused by: {cause}");
                }
                if let Some(b) = e.downcast_ref::<hdrtap_bpf::BpfError>() {
                    if !b.log().is_empty() {
                        eprintln!("libbpf/verifier log:\n{}", b.log());
                    }
                }
            } else if e
                .downcast_ref::<hdrtap_bpf::BpfError>()
                .is_some_and(|b| !b.log().is_empty())
            {
                eprintln!("hdrtap: run with {more} for the verifier log");
            }
            ExitCode::FAILURE
        }
    }
}

/// Help and version go to stdout as clap renders them; a bad flag becomes one
/// line on stderr and exit status 2.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    let rendered = e.render().to_string();
    // The error's first paragraph on one line ("... not provided: --output <PATH>").
    let para: Vec<&str> = rendered
        .lines()
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let first = if para.is_empty() {
        "invalid arguments".to_string()
    } else {
        para.join(" ")
    };
    let mut line = first.trim_start_matches("error: ").to_string();
    // clap's suggestions ("a similar argument exists: '--comm'", "to pass
    // '-x' as a value, use '-- -x'") stay, on the same line.
    for tip in rendered
        .lines()
        .filter_map(|l| l.trim().strip_prefix("tip: "))
    {
        line.push_str("; ");
        line.push_str(tip);
    }
    // The help that has the flag: the subcommand's.
    // The subcommands as clap knows them, so that a new one needs no list here.
    let subs: Vec<String> = <cli::Cli as clap::CommandFactory>::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    let sub = std::env::args().skip(1).find(|a| subs.contains(a));
    let help = match sub {
        Some(s) => format!("hdrtap {s} --help"),
        None => "hdrtap --help".to_string(),
    };
    eprintln!("hdrtap: error: {line} (see {help})");
    ExitCode::from(2)
}

/// The error and its causes on one line.
fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ").replace('\n', " ")
}

fn init_logging(verbose: u8) {
    let filter = match verbose {
        0 => "warn",
        1 => "info,hdrtap=debug,libbpf=debug",
        _ => "debug,libbpf=trace",
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HDRTAP_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal, never into a pipe or a file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
    hdrtap_bpf::route_libbpf_logs();
}
