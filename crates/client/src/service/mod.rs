//! Talking to the interactive service: connect, send the startup message, read the PID or
//! the error, then keep listening for late errors (spec §1.5, §2, §4.5, §6).
//!
//! The logic is generic over a small [`Transport`] (one message in, one message out), so it
//! is tested with `testing::ScriptedTransport` (feature `testing`); the real transports are the Linux seqpacket
//! socket ([`linux`]) and the Windows message-mode pipe with the GUI's server-PID check
//! ([`windows`]).

mod client;
mod error;
#[cfg(any(target_os = "linux", windows))]
mod framing;
#[cfg(target_os = "linux")]
pub mod linux;
#[cfg(feature = "testing")]
pub mod testing;
#[cfg(windows)]
pub mod windows;

use std::future::Future;
use std::io;

pub use client::{start, ServiceEvent, Session, Timeouts};
pub use error::{describe, ConnectError, StartError};

/// Largest message the client reads; the service's replies are far smaller (at most 511
/// UTF-16 units), so anything longer is refused rather than buffered.
pub const MAX_MESSAGE: usize = 4096;

/// One connection to the service, carrying whole messages.
pub trait Transport: Send {
    /// Sends one message.
    fn send(&mut self, message: &[u8]) -> impl Future<Output = io::Result<()>> + Send;
    /// Receives one message; `Ok(None)` when the service closed the connection.
    fn recv(&mut self) -> impl Future<Output = io::Result<Option<Vec<u8>>>> + Send;
}

/// Where the service listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// Linux: a seqpacket socket path (`/run/openvpn<id>/service`).
    Socket(std::path::PathBuf),
    /// Windows: a pipe name (`\\.\pipe\openvpn<id>\service`) and who must own it.
    Pipe {
        /// The pipe path.
        path: String,
        /// Which process must be the pipe's server.
        server: ServerCheck,
    },
}

/// Which process the pipe's server must be (spec §1.5, CVE-2024-4877: another process may
/// have created an instance of the pipe name to steal a client's identity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerCheck {
    /// The process the service control manager reports for this running service.
    Service(String),
    /// This exact process id (tests, or a caller that found the PID itself).
    Pid(u32),
}

impl Endpoint {
    /// The default endpoint of an instance on this platform.
    pub fn for_instance(instance: &openvpnserv_settings::Instance) -> Self {
        if cfg!(windows) {
            Self::Pipe {
                path: instance.pipe_path(),
                server: ServerCheck::Service(instance.service_name()),
            }
        } else {
            Self::Socket(instance.socket_path().into())
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Socket(path) => write!(f, "{}", path.display()),
            Self::Pipe { path, .. } => f.write_str(path),
        }
    }
}

/// The transport of this platform.
#[cfg(target_os = "linux")]
pub type PlatformTransport = linux::SeqpacketTransport;
/// The transport of this platform.
#[cfg(windows)]
pub type PlatformTransport = windows::PipeTransport;

/// Connects to the service at `endpoint` on this platform.
#[cfg(any(target_os = "linux", windows))]
pub async fn connect(
    endpoint: &Endpoint,
    timeout: std::time::Duration,
) -> Result<PlatformTransport, ConnectError> {
    match endpoint {
        #[cfg(target_os = "linux")]
        Endpoint::Socket(path) => linux::SeqpacketTransport::connect(path, timeout).await,
        #[cfg(windows)]
        Endpoint::Pipe { path, server } => {
            windows::PipeTransport::connect(path, server, timeout).await
        }
        #[allow(unreachable_patterns)]
        other => Err(ConnectError::Io {
            endpoint: other.to_string(),
            source: std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "this kind of endpoint does not exist on this platform",
            ),
        }),
    }
}
