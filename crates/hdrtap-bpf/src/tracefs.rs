//! Syscall tracepoints are attached by id, which libbpf reads from tracefs.
use std::ffi::CString;
use std::path::Path;

use crate::BpfError;

pub const TRACEFS: &str = "/sys/kernel/tracing";
pub const DEBUGFS_TRACING: &str = "/sys/kernel/debug/tracing";

/// Make sure tracefs is reachable, mounting it at /sys/kernel/tracing if it
/// is not. Returns the directory in use and whether hdrtap mounted it.
pub fn ensure_tracefs() -> Result<(&'static str, bool), BpfError> {
    for dir in [TRACEFS, DEBUGFS_TRACING] {
        if Path::new(dir).join("events").is_dir() {
            return Ok((dir, false));
        }
    }
    mount_tracefs().map_err(BpfError::Tracefs)?;
    if Path::new(TRACEFS).join("events").is_dir() {
        Ok((TRACEFS, true))
    } else {
        Err(BpfError::Tracefs("mounted, but events/ is missing".into()))
    }
}

fn mount_tracefs() -> Result<(), String> {
    let src = CString::new("nodev").expect("static string");
    let target = CString::new(TRACEFS).expect("static string");
    let fstype = CString::new("tracefs").expect("static string");
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the
    // call; data is NULL, which mount(2) accepts for tracefs.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        // Not root: the kernel may well have tracefs.
        return Err(format!(
            "permission denied: mounting tracefs at {TRACEFS} needs CAP_SYS_ADMIN (run as root)"
        ));
    }
    Err(e.to_string())
}
