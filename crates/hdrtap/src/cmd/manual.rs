//! `hdrtap completions SHELL` and the hidden `hdrtap man DIR`: the shell
//! completions (clap_complete) and man pages (clap_mangen) of this very
//! command line, so they can never drift from `--help`.
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, ManArgs};

pub fn completions(args: &CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "hdrtap", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}

/// hdrtap.1, and hdrtap-SUB.1 for each visible subcommand.
pub fn man_pages(args: &ManArgs) -> anyhow::Result<ExitCode> {
    let cmd = Cli::command();
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    write_page(&args.dir, "hdrtap", cmd.clone())?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("hdrtap-{}", sub.get_name());
        write_page(&args.dir, &name, sub.clone().name(name.clone()))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn write_page(dir: &Path, name: &str, cmd: clap::Command) -> anyhow::Result<()> {
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut page)
        .with_context(|| format!("cannot render the man page {name}"))?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, page).with_context(|| format!("cannot write {}", path.display()))
}
