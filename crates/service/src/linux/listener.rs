//! The client socket: `/run/openvpn<id>/service`, `AF_UNIX` `SOCK_SEQPACKET`.
//!
//! Either inherited from systemd (socket activation, `LISTEN_FDS`) or bound here. The
//! directory is root-owned `0755`, the socket `0666` (every local user may connect; who they
//! are is decided per connection). We never remove a path that is not a socket, and we
//! refuse to start when a live service already answers on it.

use std::io::ErrorKind;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use nix::fcntl::{fcntl, FcntlArg};
use nix::sys::socket::{getsockname, getsockopt, sockopt, SockType, UnixAddr};
use tokio_seqpacket::UnixSeqpacketListener;

/// Why the service cannot listen.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// Another service answers on the socket.
    #[error(
        "another openvpnserv is already listening on {0}; stop it first (or use another -instance)"
    )]
    InUse(String),
    /// The path exists and is not a socket.
    #[error("{0} exists and is not a socket; not removing it — move it away and start again")]
    NotASocket(String),
    /// The run directory is unsafe.
    #[error(
        "{path} must be a directory owned by root and not writable by group or others ({why})"
    )]
    UnsafeDir {
        /// The directory.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// A socket handed over by systemd is not what we need.
    #[error("the socket passed by systemd (LISTEN_FDS) is unusable: {0}")]
    Activation(String),
    /// Any other OS error.
    #[error("{what}: {source}")]
    Os {
        /// What was attempted.
        what: String,
        /// The error.
        source: std::io::Error,
    },
}

fn os(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ListenError {
    let what = what.into();
    move |source| ListenError::Os { what, source }
}

/// Pending connections the kernel queues for us. Small on purpose: under a connection flood
/// the queue is always full of the attacker's connections, and a legitimate client waits
/// behind all of them; a short queue keeps that wait short (a client that finds it full
/// waits in `connect` until there is room).
const LISTEN_BACKLOG: i32 = 64;

/// The first fd systemd passes (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: RawFd = 3;

/// How many threads this process runs (`/proc/self/task`).
pub fn thread_count() -> std::io::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/task")?.count())
}

/// Takes the socket systemd passed, if this process was socket-activated (`LISTEN_PID` is
/// our pid; `LISTEN_FDS` must then be exactly 1), and removes the variables so that children
/// never see them. Changing the environment is only sound while no other thread runs (another
/// thread may read it at any time, and glibc's `getenv` is not synchronised with `setenv`), so
/// this must be the first thing the service does, and it refuses to run otherwise.
pub fn take_systemd_socket() -> Result<Option<OwnedFd>, ListenError> {
    let threads = thread_count().map_err(os("count this process's threads"))?;
    if threads != 1 {
        return Err(ListenError::Activation(format!(
            "the socket must be taken before any thread starts, but {threads} threads run"
        )));
    }
    let fds: Vec<RawFd> = sd_notify::listen_fds()
        .map_err(|e| ListenError::Activation(e.to_string()))?
        .collect();
    let fd = match fds.as_slice() {
        [] => return Ok(None),
        [fd] => *fd,
        _ => {
            return Err(ListenError::Activation(format!(
                "expected exactly one socket, got LISTEN_FDS={}",
                fds.len()
            )))
        }
    };
    if fd != LISTEN_FDS_START {
        return Err(ListenError::Activation(format!("unexpected fd {fd}")));
    }
    // SAFETY: systemd hands fd 3 to us (listen_fds checked LISTEN_PID); nothing else in this
    // process owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let bad = |e: nix::Error| ListenError::Activation(e.to_string());
    if getsockopt(&fd, sockopt::SockType).map_err(bad)? != SockType::SeqPacket
        || !getsockopt(&fd, sockopt::AcceptConn).map_err(bad)?
    {
        return Err(ListenError::Activation(
            "not a listening SOCK_SEQPACKET socket (use ListenSequentialPacket=)".into(),
        ));
    }
    let addr = getsockname::<UnixAddr>(std::os::fd::AsRawFd::as_raw_fd(&fd)).map_err(bad)?;
    if let Some(path) = addr.path() {
        // systemd-socket-activate creates it 0755; clients need 0666.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
            .map_err(os(format!("chmod {}", path.display())))?;
    } else if addr.as_abstract().is_none() {
        return Err(ListenError::Activation("not a unix socket".into()));
    }
    // listen_fds made it close-on-exec: openvpn never gets it.
    fcntl(&fd, FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK)).map_err(bad)?;
    Ok(Some(fd))
}

/// The listener on a socket from [`take_systemd_socket`] (inside the runtime).
pub fn from_systemd(fd: OwnedFd) -> Result<UnixSeqpacketListener, ListenError> {
    UnixSeqpacketListener::try_from(fd).map_err(os("register the socket"))
}

/// Creates the run directory (root, 0755) or checks an existing one.
fn ensure_run_dir(dir: &Path) -> Result<(), ListenError> {
    let shown = dir.display().to_string();
    match std::fs::DirBuilder::new().mode(0o755).create(dir) {
        Ok(()) => {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
                .map_err(os(format!("chmod {shown}")))?;
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => return Err(os(format!("create {shown}"))(e)),
    }
    let meta = std::fs::symlink_metadata(dir).map_err(os(format!("stat {shown}")))?;
    let why = if !meta.is_dir() {
        Some("it is not a directory".to_owned())
    } else if meta.uid() != 0 {
        Some(format!("it is owned by uid {}", meta.uid()))
    } else if meta.mode() & 0o022 != 0 {
        Some(format!("its mode is {:o}", meta.mode() & 0o7777))
    } else {
        None
    };
    match why {
        Some(why) => Err(ListenError::UnsafeDir { path: shown, why }),
        None => Ok(()),
    }
}

/// Binds the socket at `path`, replacing only a stale socket.
pub async fn bind(path: &Path) -> Result<UnixSeqpacketListener, ListenError> {
    let shown = path.display().to_string();
    if let Some(dir) = path.parent() {
        ensure_run_dir(dir)?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            match tokio_seqpacket::UnixSeqpacket::connect(path).await {
                Ok(_) => return Err(ListenError::InUse(shown)),
                Err(e)
                    if e.kind() == ErrorKind::ConnectionRefused
                        || e.kind() == ErrorKind::NotFound =>
                {
                    tracing::info!("removing the stale socket {shown}");
                    std::fs::remove_file(path).map_err(os(format!("remove {shown}")))?;
                }
                Err(e) => return Err(os(format!("probe {shown}"))(e)),
            }
        }
        Ok(_) => return Err(ListenError::NotASocket(shown)),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(os(format!("stat {shown}"))(e)),
    }
    let listener = UnixSeqpacketListener::bind_with_backlog(path, LISTEN_BACKLOG)
        .map_err(os(format!("bind {shown}")))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
        .map_err(os(format!("chmod {shown}")))?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The environment was changed (LISTEN_* removed) after the netlink threads had
    /// started, under a comment claiming no other thread existed: undefined behaviour. Now
    /// the socket is taken first, and refused with more than one thread running (as here: the
    /// test harness runs this test on a thread of its own).
    #[test]
    fn the_systemd_socket_is_taken_only_while_one_thread_runs() {
        let helper =
            std::thread::spawn(|| std::thread::sleep(std::time::Duration::from_millis(200)));
        assert!(thread_count().unwrap() > 1);
        match take_systemd_socket() {
            Err(ListenError::Activation(why)) => {
                assert!(why.contains("before any thread starts"), "{why}");
            }
            other => panic!("taken with several threads running: {other:?}"),
        }
        helper.join().unwrap();
    }
}
