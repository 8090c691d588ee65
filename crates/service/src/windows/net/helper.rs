//! Helper programs the handlers run (`netsh`, `ipconfig`, `tapctl`; spec §5.6 "run helper"):
//! as the service, inheriting no handle, bounded in time.

use std::time::Duration;

use openvpnserv_core::windows::net::Code;
use openvpnserv_proto::codes::WAIT_TIMEOUT;

use crate::windows::sys::kernel::{self, spawn_detached};

/// Runs `cmdline` with image `exe`: its exit code, the error of starting it, or
/// `WAIT_TIMEOUT` when it had to be killed after `timeout`.
pub(super) fn run(exe: &str, cmdline: &str, timeout: Duration) -> Code {
    let process = match spawn_detached(exe, cmdline) {
        Ok(p) => p,
        Err(e) => return e.code,
    };
    if let Ok(true) = process.wait(timeout) {
        process.exit_code().unwrap_or(0)
    } else {
        process.terminate(1);
        WAIT_TIMEOUT
    }
}

/// The system directory (`GetSystemDirectoryW`, else `C:\Windows\system32`).
pub(super) fn system_dir() -> String {
    kernel::system_dir()
}
