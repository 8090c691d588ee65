//! Helper programs the handlers run (`netsh`, `ipconfig`, `tapctl`; spec §5.6 "run helper"):
//! as the service, inheriting no handle, bounded in time. Each command line and its outcome
//! is logged, as upstream logs them.

use std::time::Duration;

use openvpnserv_core::windows::net::Code;
use openvpnserv_proto::codes::WAIT_TIMEOUT;
use tracing::{error, info};

use crate::windows::sys::kernel::{self, spawn_detached};

/// Runs `cmdline` with image `exe`: its exit code, the error of starting it, or
/// `WAIT_TIMEOUT` when it had to be killed after `timeout`.
pub(super) fn run(exe: &str, cmdline: &str, timeout: Duration) -> Code {
    let process = match spawn_detached(exe, cmdline) {
        Ok(p) => p,
        Err(e) => {
            error!("could not run \"{exe} {cmdline}\": {e}");
            return e.code;
        }
    };
    if let Ok(true) = process.wait(timeout) {
        let code = process.exit_code().unwrap_or(0);
        if code == 0 {
            info!("ran \"{exe} {cmdline}\": completed");
        } else {
            error!("ran \"{exe} {cmdline}\": exit status {code}");
        }
        code
    } else {
        process.terminate(1);
        error!(
            "ran \"{exe} {cmdline}\": killed after {} s",
            timeout.as_secs()
        );
        WAIT_TIMEOUT
    }
}

/// The system directory (`GetSystemDirectoryW`, else `C:\Windows\system32`).
pub(super) fn system_dir() -> String {
    kernel::system_dir()
}
