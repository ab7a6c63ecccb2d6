//! The `skips` map through HttpProbe, loaded into the real kernel (not
//! attached): userspace's requests never move an entry backwards. Needs
//! root; fails, never skips, without it.

use hdrtap_abi::{HDRTAP_DIR_EGRESS, HDRTAP_DIR_INGRESS};
use hdrtap_bpf::{HttpOptions, HttpProbe};

#[test]
fn skip_entries_only_grow() {
    assert_eq!(
        hdrtap_bpf::sys::euid(),
        0,
        "this test loads BPF programs: run it as root"
    );
    hdrtap_bpf::route_libbpf_logs();
    let probe =
        HttpProbe::load(&HttpOptions::default()).unwrap_or_else(|e| panic!("{e}\n{}", e.log()));
    let (conn, dir) = (0x5eed_0001, HDRTAP_DIR_INGRESS);
    assert_eq!(probe.skip_until(conn, dir).unwrap(), None);
    probe.skip_body(conn, dir, 8_000_000).unwrap();
    assert_eq!(probe.skip_until(conn, dir).unwrap(), Some(8_000_000));
    // A consumer that lags behind the kernel's framing of a later body
    // asks for an earlier body's end: the later one stays.
    probe.skip_body(conn, dir, 4_000_000).unwrap();
    assert_eq!(probe.skip_until(conn, dir).unwrap(), Some(8_000_000));
    probe.skip_body(conn, dir, 12_000_000).unwrap();
    assert_eq!(probe.skip_until(conn, dir).unwrap(), Some(12_000_000));
    // The other direction and other connections are their own entries.
    assert_eq!(probe.skip_until(conn, HDRTAP_DIR_EGRESS).unwrap(), None);
    probe.skip_body(conn + 1, dir, 100).unwrap();
    assert_eq!(probe.skip_until(conn + 1, dir).unwrap(), Some(100));
    assert_eq!(probe.skip_until(conn, dir).unwrap(), Some(12_000_000));
}
