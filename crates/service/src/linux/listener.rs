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

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
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

/// Takes the socket systemd passed, if this process was socket-activated: `LISTEN_PID` must be
/// our pid and `LISTEN_FDS` exactly 1. The variables are removed so that children never see
/// them.
pub fn from_systemd() -> Result<Option<UnixSeqpacketListener>, ListenError> {
    let pid = std::env::var("LISTEN_PID").ok();
    let fds = std::env::var("LISTEN_FDS").ok();
    // SAFETY: called at start-up before any other thread exists.
    unsafe {
        std::env::remove_var("LISTEN_PID");
        std::env::remove_var("LISTEN_FDS");
        std::env::remove_var("LISTEN_FDNAMES");
    }
    let (Some(pid), Some(fds)) = (pid, fds) else {
        return Ok(None);
    };
    if pid.parse::<u32>().ok() != Some(std::process::id()) {
        return Ok(None);
    }
    if fds != "1" {
        return Err(ListenError::Activation(format!(
            "expected exactly one socket, got LISTEN_FDS={fds}"
        )));
    }
    // SAFETY: systemd hands fd 3 to us; nothing else in this process owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(LISTEN_FDS_START) };
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
    // Inherited without close-on-exec; openvpn must never get it.
    fcntl(&fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map_err(bad)?;
    fcntl(&fd, FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK)).map_err(bad)?;
    UnixSeqpacketListener::try_from(fd)
        .map(Some)
        .map_err(os("register the socket"))
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
