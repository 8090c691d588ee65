//! The readiness loops both real transports share: one `try_write` or `try_read` is one
//! whole message on a seqpacket socket and on a message-mode pipe, as long as the buffer
//! holds the largest message.

use std::future::Future;
use std::io;
use std::time::{Duration, Instant};

use super::ConnectError;

/// Writes `message` as one message once the connection is writable.
pub(super) async fn send_message<R, F, W>(
    message: &[u8],
    mut writable: R,
    mut try_write: W,
) -> io::Result<()>
where
    R: FnMut() -> F,
    F: Future<Output = io::Result<()>>,
    W: FnMut(&[u8]) -> io::Result<usize>,
{
    loop {
        writable().await?;
        match try_write(message) {
            Ok(n) if n == message.len() => return Ok(()),
            Ok(_) => return Err(io::Error::other("the message was cut short")),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

/// Reads one message of at most `max` bytes once the connection is readable; `None` at the
/// end of the connection. The service never sends an empty message, so 0 bytes is the end.
pub(super) async fn recv_message<R, F, T>(
    max: usize,
    mut readable: R,
    mut try_read: T,
) -> io::Result<Option<Vec<u8>>>
where
    R: FnMut() -> F,
    F: Future<Output = io::Result<()>>,
    T: FnMut(&mut [u8]) -> io::Result<usize>,
{
    let mut buf = vec![0u8; max + 1];
    loop {
        readable().await?;
        match try_read(&mut buf) {
            Ok(0) => return Ok(None),
            Ok(n) if n > max => return Err(oversized()),
            Ok(n) => {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                ) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(e),
        }
    }
}

/// The error for a message longer than allowed ([`super::MAX_MESSAGE`] for the service socket).
pub(super) fn oversized() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "the service sent an oversized message",
    )
}

/// Calls `attempt` until it connects (`Ok(Some)`) or fails; `Ok(None)` means "all slots
/// busy", which is retried until `timeout` and then reported as [`ConnectError::Busy`].
pub(super) async fn retry_while_busy<T>(
    endpoint: &str,
    timeout: Duration,
    mut attempt: impl FnMut() -> Result<Option<T>, ConnectError>,
) -> Result<T, ConnectError> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(connected) = attempt()? {
            return Ok(connected);
        }
        if Instant::now() >= deadline {
            return Err(ConnectError::Busy {
                endpoint: endpoint.to_owned(),
                waited: timeout,
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
