//! scripts/install.sh, into a staging directory (DESTDIR) with the binary
//! built for this test: every file in place with its mode, the man pages
//! are roff for `man`, bash completes the subcommands and flags, and a
//! configuration already there is kept. Root-free.
#![forbid(unsafe_code)]
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use hdrtap_tests::{run_with_timeout, workspace_root};

const BIN: &str = env!("CARGO_BIN_EXE_hdrtap");

fn install(dest: Option<&Path>) -> Output {
    let mut cmd = Command::new(workspace_root().join("scripts/install.sh"));
    cmd.args(["--bin", BIN]).env("PREFIX", "/usr/local");
    match dest {
        Some(d) => cmd.env("DESTDIR", d),
        None => cmd.env_remove("DESTDIR"),
    };
    run_with_timeout(&mut cmd, Duration::from_secs(120))
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

/// What bash's completion for `hdrtap` offers after `words`.
fn complete(script: &Path, words: &[&str]) -> String {
    let line = words.join(" ");
    let cur = words.last().unwrap();
    let prev = words[words.len() - 2];
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {}; COMP_WORDS=({line}); COMP_CWORD={}; _hdrtap hdrtap {cur} {prev}; echo \"${{COMPREPLY[@]}}\"",
            script.display(),
            words.len() - 1
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn install_puts_everything_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = install(Some(d));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let usr = d.join("usr/local");
    let bin = usr.join("bin/hdrtap");
    assert_eq!(mode(&bin), 0o755);
    let v = Command::new(&bin).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("hdrtap "));
    for page in [
        "hdrtap",
        "hdrtap-http",
        "hdrtap-packets",
        "hdrtap-top",
        "hdrtap-run",
        "hdrtap-doctor",
    ] {
        let p = usr.join(format!("share/man/man1/{page}.1"));
        let text = fs::read_to_string(&p).unwrap();
        assert!(text.contains(&format!(".TH {page} 1")), "{page}: not roff");
        let man = Command::new("man")
            .arg("-l")
            .arg(&p)
            .env("MANPAGER", "cat")
            .output();
        let man = man.expect("man (man-db)");
        assert!(
            String::from_utf8_lossy(&man.stdout).contains("SYNOPSIS"),
            "man -l {page}: {}",
            String::from_utf8_lossy(&man.stderr)
        );
    }
    let bash = usr.join("share/bash-completion/completions/hdrtap");
    assert!(complete(&bash, &["hdrtap", "ht"]).contains("http"));
    assert!(complete(&bash, &["hdrtap", "packets", "--ho"]).contains("--hook"));
    assert!(
        fs::read_to_string(usr.join("share/zsh/site-functions/_hdrtap"))
            .unwrap()
            .contains("#compdef hdrtap")
    );
    assert!(
        fs::read_to_string(usr.join("share/fish/vendor_completions.d/hdrtap.fish"))
            .unwrap()
            .contains("complete -c hdrtap")
    );
    let unit = fs::read_to_string(d.join("etc/systemd/system/hdrtap.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/hdrtap run --config /etc/hdrtap/hdrtap.toml"));
    assert!(d.join("etc/logrotate.d/hdrtap").is_file());
    let config = d.join("etc/hdrtap/hdrtap.toml");
    assert_eq!(mode(&config), 0o640);

    // Again, over a configuration the user changed: it is kept.
    fs::write(&config, "# mine\n").unwrap();
    let out = install(Some(d));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fs::read_to_string(&config).unwrap(), "# mine\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("kept"));
}

/// Without root and without DESTDIR: one clear error, nothing written.
#[test]
fn install_without_root_or_destdir_says_so() {
    let root = fs::metadata("/proc/self").unwrap().uid() == 0;
    let out = if root {
        // As uid nobody in a user namespace.
        let mut cmd = Command::new("unshare");
        cmd.args(["--user"])
            .arg(workspace_root().join("scripts/install.sh"))
            .args(["--bin", BIN])
            .env_remove("DESTDIR");
        run_with_timeout(&mut cmd, Duration::from_secs(60))
    } else {
        install(None)
    };
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs root (or set DESTDIR)"), "{err}");
}
