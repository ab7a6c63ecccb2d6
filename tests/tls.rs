//! HTTPS in cleartext: OpenSSL uprobes against a real nginx serving HTTPS
//! (Debian's nginx, libssl.so.3) and real clients — curl, Python's ssl and
//! http.client, and a program linked statically against OpenSSL. Every
//! request and response must appear exactly once per side, with exactly the
//! headers the client reports, the right tuples, `tls: true` and the hooked
//! library; nothing may come from the ciphertext. Root only.
#![forbid(unsafe_code)]
use std::{
    fs, thread,
    time::{Duration, Instant},
};

use hdrtap_tests::*;

const LIBSSL: &str = "libssl.so.3";

/// curl over HTTPS, one address family: four requests on one keep-alive
/// connection (200, 404, a 64 KiB file nginx sends through SSL_write, a
/// chunked page), both sides.
fn curl_https(v6: bool) {
    let _guard = setup();
    let nginx = Nginx::start_tls();
    // -vv: the log names the functions each library was hooked at.
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string(), "-vv"]);
    let id = unique_id(if v6 { "tlscurl6" } else { "tlscurl4" });
    let url = |p: &str| if v6 { nginx.url_v6(p) } else { nginx.url_v4(p) };
    assert!(url("/").starts_with("https://"));
    let reqs = [
        CurlRequest::get(url("/?q=1"), &id, 1)
            .header("X-Custom", "secret path, over TLS")
            .header("Authorization", "Bearer tls-token-123"),
        CurlRequest::get(url("/status/404"), &id, 2).header("X-Custom", "second"),
        CurlRequest::get(url("/big"), &id, 3),
        CurlRequest::get(url("/chunked"), &id, 4).header("x-lower-case", "MiXeD Value"),
    ];
    let run = curl(&reqs);
    let ports: Vec<u16> = run.exchanges.iter().map(|e| e.local.port).collect();
    assert!(
        ports.windows(2).all(|w| w[0] == w[1]),
        "curl did not keep the connection alive: local ports {ports:?}"
    );
    assert_eq!(
        run.exchanges[0].local.ip,
        if v6 { "::1" } else { "127.0.0.1" }
    );
    let cap = hd.stop_when_http_count(run.expected_records(2));
    let exp = Expect::new(&nginx).tls(LIBSSL);
    check_port_filter(&cap, nginx.port);
    check_both_sides(&cap, &run, &exp);
    check_access_log(&nginx, &cap, &run, &exp);
    check_no_ciphertext_records(&cap, nginx.port);
    assert_eq!(
        cap.http().count(),
        run.expected_records(2),
        "extra records:\n{}",
        cap.dump_all()
    );
    assert!(
        final_stats(&cap)["tls_conns"].as_u64() >= Some(2),
        "both ends' connections should be TLS: {}",
        final_stats(&cap)
    );
    // Debian's libssl3 is hooked at OpenSSL's internal read and write
    // (their first instruction is emulated, the public functions' is
    // single-stepped), not at SSL_read/SSL_write: every record above came
    // through them.
    let hooked = cap
        .stderr
        .lines()
        .find(|l| l.contains("TLS: hooked libssl.so.3"))
        .unwrap_or_else(|| panic!("no hooked line for libssl.so.3:\n{}", cap.stderr));
    assert!(
        hooked.ends_with(
            ": ssl_write_internal, ssl_read_internal, SSL_set_fd, SSL_do_handshake, SSL_free"
        ),
        "{hooked}"
    );
}

#[test]
fn curl_https_ipv4_both_sides() {
    curl_https(false);
}

#[test]
fn curl_https_ipv6_both_sides() {
    curl_https(true);
}

/// Long bodies over HTTPS: the plaintext stream's bodies are skipped in
/// the SSL_read/SSL_write uprobes like a socket's (see
/// `check_long_bodies_not_copied`).
#[test]
fn long_bodies_over_tls_are_not_copied() {
    let _guard = setup();
    let nginx = Nginx::start_tls();
    check_long_bodies_not_copied(&nginx, &Expect::new(&nginx).tls(LIBSSL));
}

/// The same at memory speed, with a HEAD in between: responses framed in
/// the uprobes' copy (see `check_long_bodies_framed_in_kernel`).
#[test]
fn long_bodies_over_tls_are_framed_in_the_kernel() {
    let _guard = setup();
    let nginx = Nginx::start_tls();
    check_long_bodies_framed_in_kernel(&nginx, &Expect::new(&nginx).tls(LIBSSL));
}

/// Python's ssl module (SSL_write_ex / SSL_read_ex): one keep-alive
/// connection with eight requests, and one whose requests go out one byte
/// per SSL_write (the plaintext stream is reassembled across calls).
#[test]
fn python_ssl_keepalive_and_one_byte_writes() {
    let _guard = setup();
    let nginx = Nginx::start_tls();
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string()]);
    let keep = raw_client(
        &RawOpts::new("127.0.0.1", nginx.port, "normal", 8, &unique_id("tlspy"))
            .paths("/,/status/404,/big,/chunked,/setcookie")
            .header("X-Custom: python ssl keep-alive")
            .header("Cookie: session=tls-cookie")
            .opt("--tls", ""),
    );
    let bytes = raw_client(
        &RawOpts::new("::1", nginx.port, "bytewise", 3, &unique_id("tlsbytes"))
            .paths("/,/status/404")
            .header("X-Custom: one byte per SSL_write")
            .opt("--tls", ""),
    );
    let want = keep.expected_records(2) + bytes.expected_records(2);
    let cap = hd.stop_when_http_count(want);
    let exp = Expect::new(&nginx).tls(LIBSSL);
    for run in [&keep, &bytes] {
        check_both_sides(&cap, run, &exp);
        check_access_log(&nginx, &cap, run, &exp);
    }
    check_no_ciphertext_records(&cap, nginx.port);
    assert_eq!(
        cap.http().count(),
        want,
        "extra records:\n{}",
        cap.dump_all()
    );
}

/// Python's http.client over HTTPS, keep-alive, IPv6.
#[test]
fn python_http_client_keepalive() {
    let _guard = setup();
    let nginx = Nginx::start_tls();
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string()]);
    let run = https_client(
        "::1",
        nginx.port,
        5,
        &unique_id("tlshttpclient"),
        "/,/status/404,/chunked",
        &["X-Custom: http.client", "X-Api-Key: k-123"],
    );
    assert_eq!(run.exchanges.len(), 5);
    let cap = hd.stop_when_http_count(run.expected_records(2));
    let exp = Expect::new(&nginx).tls(LIBSSL);
    check_both_sides(&cap, &run, &exp);
    check_access_log(&nginx, &cap, &run, &exp);
    check_no_ciphertext_records(&cap, nginx.port);
    assert_eq!(cap.http().count(), run.expected_records(2));
}

/// The client side seen from the static program (its own symbols hooked),
/// the server side from nginx (libssl.so.3).
fn check_static_run(cap: &Capture, nginx: &Nginx, run: &ClientRun) {
    let exp = Expect::new(nginx);
    check_side(cap, run, Role::Client, &exp.clone().tls("tlsstatic"));
    check_side(cap, run, Role::Server, &exp.clone().tls(LIBSSL));
    check_access_log(nginx, cap, run, &exp);
    check_no_ciphertext_records(cap, nginx.port);
}

/// A program linked statically against OpenSSL (libssl.a), exec'd AFTER
/// hdrtap is ready: hdrtap sees the exec, finds SSL_write in the program's
/// symbol table and hooks it within a second.
#[test]
fn static_openssl_program_started_after_hdrtap() {
    let _guard = setup();
    let bin = static_client_bin();
    let nginx = Nginx::start_tls();
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string()]);
    let id = unique_id("tlsstaticafter");
    let mut client = static_client(
        &bin,
        "127.0.0.1",
        nginx.port,
        4,
        &id,
        StaticWait::BeforeConnect,
    );
    client.wait_event("waiting");
    // The issue's promise: hooked within a second of the exec.
    thread::sleep(Duration::from_secs(1));
    client.go();
    let run = client.finish();
    assert_eq!(run.comm, "tlsstatic");
    let cap = hd.stop_when_http_count(run.expected_records(2));
    check_static_run(&cap, &nginx, &run);
}

/// The static client keeps OpenSSL's symbol table, internal functions
/// included: what the byte patterns of `tls::discover` take for OpenSSL's
/// internal read and write (the callees of SSL_read_ex/SSL_write_ex, no
/// names needed) must be exactly `ssl_read_internal` and
/// `ssl_write_internal`. Debian's libssl.so.3 has no such names; this is
/// the check that the same code finds the right functions there.
#[test]
fn internal_read_write_found_are_openssls_own() {
    use hdrtap_bpf::tls::discover;
    let bin = static_client_bin();
    let facts = discover::elf_facts(&bin, false).unwrap();
    assert!(facts.hookable(), "{facts:?}");
    let io = facts
        .io
        .unwrap_or_else(|| panic!("no internal read/write found in {}", bin.display()));
    let named = |f: &str| {
        discover::function_file_offset(&bin, f)
            .unwrap()
            .unwrap_or_else(|| panic!("{f} is not in {}'s symbols", bin.display()))
    };
    assert_eq!(io.read, named("ssl_read_internal"), "{io:x?}");
    assert_eq!(io.write, named("ssl_write_internal"), "{io:x?}");
    // And not at the public functions.
    assert_ne!(io.read, named("SSL_read_ex"));
}

/// The same program already running (waiting) when hdrtap starts: found by
/// the start-up scan of /proc/*/maps.
#[test]
fn static_openssl_program_running_before_hdrtap() {
    let _guard = setup();
    let bin = static_client_bin();
    let nginx = Nginx::start_tls();
    let id = unique_id("tlsstaticbefore");
    let mut client = static_client(&bin, "::1", nginx.port, 3, &id, StaticWait::BeforeConnect);
    client.wait_event("waiting");
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string()]);
    client.go();
    let run = client.finish();
    let cap = hd.stop_when_http_count(run.expected_records(2));
    let libs = started_with_libraries(&cap.stderr);
    assert!(
        libs.iter().any(|l| l == "tlsstatic (static)"),
        "the start-up line should name the static program: {libs:?}\n{}",
        cap.stderr
    );
    check_static_run(&cap, &nginx, &run);
}

/// A process started after hdrtap that loads a libssl.so.3 file no process
/// mapped before (a copy, through LD_LIBRARY_PATH): hdrtap sees the
/// executable mmap and hooks the new file. The client loads it at start-up
/// (`import ssl`), waits one second, then connects: every exchange must be
/// captured on both sides.
#[test]
fn new_libssl_file_in_a_new_process_is_hooked() {
    let _guard = setup();
    let nginx = Nginx::start_tls();
    let copy = libssl_copy();
    // -vv: hdrtap logs each file it hooks.
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string(), "-vv"]);
    let id = unique_id("tlscopy");
    let opts = RawOpts::new("127.0.0.1", nginx.port, "waitfirst", 4, &id)
        .paths("/,/status/404")
        .header("X-Custom: copied libssl")
        .opt("--tls", "");
    std::env::set_var("LD_LIBRARY_PATH", copy.path());
    let mut client = RawClient::spawn(&opts);
    std::env::remove_var("LD_LIBRARY_PATH");
    client.wait_event("waiting");
    let pid = client.pid();
    let maps = fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    let copied = format!("{}/libssl.so.3", copy.path().display());
    assert!(
        maps.contains(&copied),
        "python did not load the copied libssl {copied}:\n{maps}"
    );
    thread::sleep(Duration::from_secs(1));
    client.go();
    let run = client.finish();
    let cap = hd.stop_when_http_count(run.expected_records(2));
    let exp = Expect::new(&nginx).tls(LIBSSL);
    check_both_sides(&cap, &run, &exp);
    check_no_ciphertext_records(&cap, nginx.port);
    assert!(
        cap.stderr
            .lines()
            .any(|l| l.contains("TLS: hooked libssl.so.3 (") && l.contains(&copied)),
        "hdrtap should say it hooked the copy {copied}:\n{}",
        cap.stderr
            .lines()
            .filter(|l| l.contains("TLS"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// `--no-tls`: no uprobes, no TLS records, and the ciphertext is still not
/// mistaken for HTTP.
#[test]
fn no_tls_flag_turns_https_capture_off() {
    let _guard = setup();
    let nginx = Nginx::start_tls();
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string(), "--no-tls"]);
    let id = unique_id("notls");
    let run = curl(&[
        CurlRequest::get(nginx.url_v4("/"), &id, 1),
        CurlRequest::get(nginx.url_v4("/"), &id, 2),
    ]);
    assert_eq!(run.exchanges.len(), 2);
    // Give hdrtap the time it would need to report anything.
    thread::sleep(Duration::from_millis(1500));
    let cap = hd.stop();
    assert_eq!(
        cap.http().count(),
        0,
        "records with --no-tls:\n{}",
        cap.dump_all()
    );
    let st = final_stats(&cap);
    assert_eq!(st["tls_libraries"], 0, "{st}");
    assert_eq!(st["tls_conns"], 0, "{st}");
    assert_eq!(st["parse_errors"], 0, "{st}");
    assert!(
        st["conns_gated"].as_u64() >= Some(2),
        "the TLS connections should have been gated as not HTTP: {st}"
    );
    assert!(cap.stderr.contains("HTTPS: off"), "{}", cap.stderr);
}

/// `hdrtap doctor --tls` names, for each process with TCP sockets, whether
/// its HTTPS is covered and by what, or why not.
#[test]
fn doctor_tls_lists_coverage() {
    let _guard = setup();
    let nginx = Nginx::start_tls();
    let bin = static_client_bin();
    let stripped = bin.with_file_name("tlsstripped");
    let out = run_with_timeout(
        std::process::Command::new("strip")
            .arg("-o")
            .arg(&stripped)
            .arg(&bin),
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "strip: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut stat = static_client(
        &bin,
        "127.0.0.1",
        nginx.port,
        1,
        &unique_id("doc"),
        StaticWait::AfterHandshake,
    );
    stat.wait_event("waiting");
    let mut strp = static_client(
        &stripped,
        "127.0.0.1",
        nginx.port,
        1,
        &unique_id("doc"),
        StaticWait::AfterHandshake,
    );
    strp.wait_event("waiting");
    // A process with a TCP socket and no TLS library at all.
    let mut plain = std::process::Command::new("python3")
        .args([
            "-c",
            &format!(
                "import socket,sys,time; s=socket.create_connection(('127.0.0.1',{})); print('ok',flush=True); sys.stdin.readline()",
                nginx.port
            ),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(plain.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ok");
    }
    let started = Instant::now();
    let out = run_with_timeout(
        std::process::Command::new(hdrtap_bin()).args(["doctor", "--tls"]),
        Duration::from_secs(60),
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "doctor --tls failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line_of = |pid: u32| -> String {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(&pid.to_string()))
            .unwrap_or_else(|| panic!("no line for pid {pid} in:\n{text}"))
            .to_string()
    };
    let l = line_of(nginx.pid());
    assert!(
        l.contains("nginx") && l.contains(" covered ") && l.contains("by libssl.so.3"),
        "{l}\n{text}"
    );
    let l = line_of(stat.pid());
    assert!(
        l.contains(" covered ") && l.contains("static") && l.contains("tlsstatic"),
        "{l}\n{text}"
    );
    let l = line_of(strp.pid());
    assert!(
        l.contains(" unknown ") && l.contains("stripped"),
        "{l}\n{text}"
    );
    let l = line_of(plain.id());
    assert!(l.contains(" no TLS "), "{l}\n{text}");
    // --json: the same verdicts, one object per process.
    let out = run_with_timeout(
        std::process::Command::new(hdrtap_bin()).args(["doctor", "--tls", "--json"]),
        Duration::from_secs(60),
    );
    let list: Value = serde_json::from_slice(&out.stdout).expect("doctor --tls --json is JSON");
    let entry = |pid: u32| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|e| e["pid"] == pid)
            .unwrap_or_else(|| panic!("no entry for pid {pid}: {list}"))
            .clone()
    };
    assert_eq!(entry(nginx.pid())["https"], "covered", "{list}");
    assert_eq!(entry(strp.pid())["https"], "unknown", "{list}");
    assert_eq!(entry(plain.id())["https"], "no TLS", "{list}");
    assert!(entry(stat.pid())["detail"]
        .as_str()
        .unwrap()
        .contains("static"));
    // hdrtap http counts the processes it cannot cover (the stripped one
    // at least) in its stats and says so in its summary.
    // (The survey runs beside capture: given a few seconds.)
    let hd = Hdrtap::start(&["--port", "1"]);
    std::thread::sleep(Duration::from_secs(3));
    let cap = hd.stop();
    let st = final_stats(&cap);
    assert!(
        st["tls_uncovered_processes"].as_u64().unwrap_or(0) >= 1,
        "{st}"
    );
    assert!(
        cap.stderr
            .contains("processes whose HTTPS cannot be shown (hdrtap doctor --tls)"),
        "{}",
        cap.stderr
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "doctor --tls took {:?}",
        started.elapsed()
    );
    stat.go();
    strp.go();
    let _ = stat.finish();
    let _ = strp.finish();
    drop(plain.stdin.take());
    let _ = wait_timeout(&mut plain, Duration::from_secs(5));
    let _ = plain.kill();
}

/// A process in a mount namespace of its own whose libssl.so.3 is another
/// file than the host's at the same path (a copy bind-mounted over it, as in
/// a container): hdrtap must hook the file that process maps, found through
/// /proc/PID (map_files or root), not the host's file at that path.
#[test]
fn libssl_in_another_mount_namespace_is_hooked() {
    let _guard = setup();
    let nginx = Nginx::start_tls();
    let copy = libssl_copy();
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string(), "-vv"]);
    let id = unique_id("tlsmntns");
    let target = "/usr/lib/x86_64-linux-gnu/libssl.so.3";
    let script = format!(
        "mount --bind {}/libssl.so.3 {target} && exec python3 {} --host 127.0.0.1 --port {} --mode waitfirst \
         --count 3 --test-id {id} --paths /,/status/404 --header 'X-Custom: other mount namespace' --tls",
        copy.path().display(),
        clients_dir().join("rawhttp.py").display(),
        nginx.port,
    );
    let mut client = RawClient::spawn_program(
        "unshare",
        vec![
            "--mount".into(),
            "--propagation".into(),
            "private".into(),
            "sh".into(),
            "-c".into(),
            script,
        ],
    );
    client.wait_event("waiting");
    let pid = client.pid();
    // Its libssl.so.3 is the copy: same path, another (dev, inode) than the host's.
    let maps = fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    let line = maps
        .lines()
        .find(|l| l.ends_with(target))
        .unwrap_or_else(|| panic!("pid {pid} does not map {target}:\n{maps}"))
        .to_string();
    let host_ino = {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(target).unwrap().ino()
    };
    let ino: u64 = line.split_whitespace().nth(4).unwrap().parse().unwrap();
    assert_ne!(ino, host_ino, "the bind mount did not take: {line}");
    thread::sleep(Duration::from_secs(1));
    client.go();
    let run = client.finish();
    let cap = hd.stop_when_http_count(run.expected_records(2));
    let exp = Expect::new(&nginx).tls(LIBSSL);
    check_both_sides(&cap, &run, &exp);
    check_no_ciphertext_records(&cap, nginx.port);
    assert!(
        cap.stderr
            .lines()
            .any(|l| l.contains("TLS: hooked libssl.so.3 (") && l.contains(&format!("pid {pid},"))),
        "hdrtap should say it hooked pid {pid}'s own libssl.so.3:\n{}",
        cap.stderr
            .lines()
            .filter(|l| l.contains("TLS"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The GnuTLS records of one `gnutls-cli` request (X-Seq: seq, to
/// `path`) on one side ([`check_exchange`]), with the Authorization value
/// redacted, the Host as sent and a latency.
fn check_gnutls_exchange(cap: &Capture, path: &str, seq: u32, role: &str, lib_prefix: &str) {
    let (req, resp) = check_exchange(cap, path, seq, role, lib_prefix, false);
    let auth = header(&req, "authorization").unwrap_or_default();
    assert!(auth.starts_with("Bearer [REDACTED len="), "{req}");
    assert!(
        !cap.raw.contains("gnutls-secret-"),
        "a secret in the output"
    );
    assert_eq!(header(&req, "host").as_deref(), Some("localhost"), "{req}");
    assert!(resp["latency_ns"].as_u64().is_some_and(|l| l > 0), "{resp}");
}

/// GnuTLS at both ends (gnutls-cli to gnutls-serv, Debian's gnutls-bin):
/// each request and its response in cleartext on both sides, named
/// libgnutls, nothing from the ciphertext; `doctor --tls` calls the server
/// covered by libgnutls.
#[test]
fn gnutls_cli_to_gnutls_serv_both_sides() {
    let _guard = setup();
    let serv = GnutlsServ::start();
    let hd = Hdrtap::start(&["--port", &serv.port.to_string()]);
    assert!(
        started_with_libraries(&fs::read_to_string(hd.dir().join("stderr.txt")).unwrap())
            .iter()
            .any(|l| l.starts_with("libgnutls")),
        "libgnutls not hooked"
    );
    let id = unique_id("gnutls");
    let paths: Vec<String> = (1..=3).map(|s| format!("/{id}/{s}?q={s}")).collect();
    for (i, p) in paths.iter().enumerate() {
        gnutls_cli_get(serv.port, p, i as u32 + 1);
    }
    let doctor = run_clean(&hdrtap_bin(), &["doctor", "--tls"]);
    let cap = hd.stop_when_http_count(12);
    for (i, p) in paths.iter().enumerate() {
        for role in ["client", "server"] {
            check_gnutls_exchange(&cap, p, i as u32 + 1, role, "libgnutls");
        }
    }
    assert_eq!(cap.http().count(), 12, "{}", cap.dump_all());
    check_no_ciphertext_records(&cap, serv.port);
    let text = String::from_utf8_lossy(&doctor.stdout);
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&serv.pid().to_string()))
        .unwrap_or_else(|| panic!("no line for gnutls-serv in:\n{text}"));
    assert!(
        line.contains(" covered ") && line.contains("by libgnutls"),
        "{line}"
    );
}

/// GnuTLS client, OpenSSL server (gnutls-cli to nginx): each side names
/// its own library.
#[test]
fn gnutls_cli_to_nginx_names_each_library() {
    let _guard = setup();
    let nginx = Nginx::start_tls();
    // libgnutls mapped by a running process, so hooked when hdrtap starts:
    // a library file no process maps yet is hooked when one maps it, after
    // that process's first calls (README, Limits), and gnutls-cli's one
    // request can be over by then.
    let _holder = GnutlsServ::start();
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string()]);
    let id = unique_id("gnutlsngx");
    let paths: Vec<String> = (1..=2).map(|s| format!("/?{id}={s}")).collect();
    for (i, p) in paths.iter().enumerate() {
        gnutls_cli_get(nginx.port, p, i as u32 + 1);
    }
    let cap = hd.stop_when_http_count(8);
    for (i, p) in paths.iter().enumerate() {
        check_gnutls_exchange(&cap, p, i as u32 + 1, "client", "libgnutls");
        check_gnutls_exchange(&cap, p, i as u32 + 1, "server", LIBSSL);
    }
    check_no_ciphertext_records(&cap, nginx.port);
}

/// The request for `path` exactly once on `role`'s side with its X-Seq,
/// and its response exactly once, paired to it (with X-Seen-Seq when the
/// server echoes it), status 200, all TLS from a library named `lib...`,
/// no flags. Returns the two records.
fn check_exchange(
    cap: &Capture,
    path: &str,
    seq: u32,
    role: &str,
    lib: &str,
    echo: bool,
) -> (Value, Value) {
    let of_kind = |kind: &str, target: &dyn Fn(&Value) -> bool| -> Vec<Value> {
        cap.http()
            .filter(|r| r["role"] == role && r["kind"] == kind && target(r))
            .cloned()
            .collect()
    };
    let reqs = of_kind("http_request", &|r| r["target"] == path);
    assert_eq!(
        reqs.len(),
        1,
        "{role} requests for {path}:\n{}",
        cap.dump_all()
    );
    let resps = of_kind("http_response", &|r| r["request"]["target"] == path);
    assert_eq!(
        resps.len(),
        1,
        "{role} responses for {path}:\n{}",
        cap.dump_all()
    );
    let (req, resp) = (reqs[0].clone(), resps[0].clone());
    assert_eq!(header(&req, "x-seq"), Some(seq.to_string()), "{req}");
    if echo {
        assert_eq!(header(&resp, "x-seen-seq"), Some(seq.to_string()), "{resp}");
    }
    assert_eq!(resp["status"], 200, "{resp}");
    for r in [&req, &resp] {
        assert_eq!(r["tls"], true, "{r}");
        let name = r["tls_library"].as_str().unwrap_or("");
        assert!(name.starts_with(lib), "tls_library {name:?}: {r}");
        assert!(r.get("flags").is_none(), "{r}");
    }
    (req, resp)
}

/// [`check_exchange`] of `/{id}/{seq}`.
fn check_seq_exchange(cap: &Capture, id: &str, seq: u32, role: &str, lib: &str, echo: bool) {
    check_exchange(cap, &format!("/{id}/{seq}"), seq, role, lib, echo);
}

/// Node.js at both ends (its https module: OpenSSL on memory BIOs, no
/// socket I/O inside an SSL call): 40 requests, 8 at a time on keep-alive
/// sockets, each seen once per side; and curl to the node server. The
/// sockets are learnt from the thread's reads (tls_bio_fds), none is
/// unknown (tls_no_fd 0, checked with the ciphertext).
#[test]
fn node_client_and_server_keepalive_and_concurrent() {
    let _guard = setup();
    let srv = NodeServer::start();
    // curl's libssl.so.3 hooked when hdrtap starts (see
    // gnutls_cli_to_nginx_names_each_library): nginx maps it.
    let _holder = Nginx::start_tls();
    let hd = Hdrtap::start(&["--port", &srv.port.to_string()]);
    let id = unique_id("node");
    node_client(srv.port, &id, 40, 8, 700);
    let curl_id = unique_id("nodecurl");
    let reqs: Vec<CurlRequest> = (1..=3)
        .map(|s| {
            CurlRequest::get(
                format!("https://127.0.0.1:{}/{curl_id}/{s}", srv.port),
                &curl_id,
                s,
            )
            .arg("-k")
        })
        .collect();
    curl(&reqs);
    let cap = hd.stop_when_http_count(40 * 4 + 3 * 4);
    for seq in 1..=40 {
        check_seq_exchange(&cap, &id, seq, "client", "node", true);
        check_seq_exchange(&cap, &id, seq, "server", "node", true);
    }
    for seq in 1..=3 {
        check_seq_exchange(&cap, &curl_id, seq, "client", LIBSSL, true);
        check_seq_exchange(&cap, &curl_id, seq, "server", "node", true);
    }
    check_no_ciphertext_records(&cap, srv.port);
    let st = final_stats(&cap);
    assert!(st["tls_bio_fds"].as_u64().unwrap_or(0) > 0, "{st}");
}

/// A Node.js client to nginx (OpenSSL with sockets): each side names its
/// own library.
#[test]
fn node_client_to_nginx() {
    let _guard = setup();
    let nginx = Nginx::start_tls();
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string()]);
    let id = format!("a/{}", unique_id("nodengx"));
    // The node binary is new to this hdrtap (only nginx runs): hooked
    // about 0.7 s after node starts (a 100 MB file to read); 2 s of margin.
    node_client(nginx.port, &id, 10, 2, 2000);
    let cap = hd.stop_when_http_count(40);
    for seq in 1..=10 {
        check_seq_exchange(&cap, &id, seq, "client", "node", false);
        check_seq_exchange(&cap, &id, seq, "server", LIBSSL, false);
    }
    check_no_ciphertext_records(&cap, nginx.port);
}

/// Python's asyncio runs OpenSSL on memory BIOs too (ssl.MemoryBIO, through
/// libssl.so.3's internal read/write): 5 requests on one connection to
/// nginx, each seen once per side.
#[test]
fn python_asyncio_memory_bio_client() {
    let _guard = setup();
    let nginx = Nginx::start_tls();
    let hd = Hdrtap::start(&["--port", &nginx.port.to_string()]);
    let id = format!("a/{}", unique_id("aio"));
    let script = format!(
        r#"
import asyncio, ssl
async def main():
    ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
    await asyncio.sleep(0.3)
    r, w = await asyncio.open_connection("127.0.0.1", {port}, ssl=ctx)
    for i in range(1, 6):
        w.write(f"GET /{id}/{{i}} HTTP/1.1\r\nHost: localhost\r\nX-Seq: {{i}}\r\n\r\n".encode())
        await w.drain()
        head = await r.readuntil(b"\r\n\r\n")
        n = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")]
        await r.readexactly(int(n[0].split(b":")[1]))
    print("done")
asyncio.run(main())
"#,
        port = nginx.port
    );
    let out = run_with_timeout(
        std::process::Command::new("python3").args(["-c", &script]),
        Duration::from_secs(60),
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("done"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cap = hd.stop_when_http_count(20);
    for seq in 1..=5 {
        check_seq_exchange(&cap, &id, seq, "client", LIBSSL, false);
        check_seq_exchange(&cap, &id, seq, "server", LIBSSL, false);
    }
    check_no_ciphertext_records(&cap, nginx.port);
    assert!(final_stats(&cap)["tls_bio_fds"].as_u64().unwrap_or(0) > 0);
}
