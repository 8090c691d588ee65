//! The Linux transport: an `AF_UNIX` `SOCK_SEQPACKET` socket, one datagram per message
//! (design §1).

use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

use socket2::{Domain, SockAddr, Socket, Type};
use tokio::net::UnixStream;

use super::framing::{recv_message, retry_while_busy, send_message};
use super::{ConnectError, Transport, MAX_MESSAGE};

/// A connected seqpacket socket.
///
/// Tokio has no seqpacket type, so the connected descriptor is driven through
/// [`UnixStream`], whose `try_read`/`try_write` are plain `read`/`write` calls: on a
/// seqpacket socket each is exactly one datagram as long as the buffer holds a whole
/// message, which [`MAX_MESSAGE`] guarantees. This keeps the module free of `unsafe`.
#[derive(Debug)]
pub struct SeqpacketTransport {
    socket: UnixStream,
    max: usize,
}

impl SeqpacketTransport {
    /// Connects to the service socket at `path`, waiting up to `timeout` while its backlog
    /// is full. Needs a Tokio runtime with I/O enabled.
    pub async fn connect(path: &Path, timeout: Duration) -> Result<Self, ConnectError> {
        Self::connect_with_limit(path, timeout, MAX_MESSAGE).await
    }

    /// The same for a socket whose messages may be up to `max` bytes (the control socket's
    /// responses are larger than the service socket's replies).
    pub async fn connect_with_limit(
        path: &Path,
        timeout: Duration,
        max: usize,
    ) -> Result<Self, ConnectError> {
        let endpoint = path.display().to_string();
        let io_error = |source| ConnectError::Io {
            endpoint: endpoint.clone(),
            source,
        };
        let addr = SockAddr::unix(path).map_err(io_error)?;
        retry_while_busy(&endpoint, timeout, || {
            let socket =
                Socket::new(Domain::UNIX, Type::SEQPACKET.cloexec(), None).map_err(io_error)?;
            socket.set_nonblocking(true).map_err(io_error)?;
            match socket.connect(&addr) {
                Ok(()) => {
                    let std = std::os::unix::net::UnixStream::from(OwnedFd::from(socket));
                    let socket = UnixStream::from_std(std).map_err(io_error)?;
                    Ok(Some(Self { socket, max }))
                }
                // A full backlog: the service is alive but has not accepted yet.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
                Err(e) => Err(classify(&endpoint, e)),
            }
        })
        .await
    }
}

/// Maps the OS error of `connect` to what it means for the user.
fn classify(endpoint: &str, e: io::Error) -> ConnectError {
    let detail = e.to_string();
    let endpoint = endpoint.to_owned();
    match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
            ConnectError::NotRunning { endpoint, detail }
        }
        io::ErrorKind::PermissionDenied => ConnectError::AccessDenied { endpoint, detail },
        _ => ConnectError::Io {
            endpoint,
            source: e,
        },
    }
}

impl Transport for SeqpacketTransport {
    async fn send(&mut self, message: &[u8]) -> io::Result<()> {
        let socket = &self.socket;
        send_message(message, || socket.writable(), |m| socket.try_write(m)).await
    }

    async fn recv(&mut self) -> io::Result<Option<Vec<u8>>> {
        let socket = &self.socket;
        recv_message(self.max, || socket.readable(), |buf| socket.try_read(buf)).await
    }
}
