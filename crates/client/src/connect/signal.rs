//! Stopping openvpn before its management interface is up, by process id. The service
//! starts openvpn as the calling user, so the user may signal it.

/// Sends SIGTERM to `pid`; `false` if that is not possible here.
#[cfg(unix)]
pub(super) fn terminate(pid: u32) -> bool {
    // Never this process itself (a confused or fake service could name it).
    if pid == std::process::id() {
        return false;
    }
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).is_ok()
}

/// Windows: the GUI's exit event is not used by this client, so there is nothing to send.
#[cfg(not(unix))]
pub(super) fn terminate(_pid: u32) -> bool {
    false
}
