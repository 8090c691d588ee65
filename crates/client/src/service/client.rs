//! The startup exchange and the session that follows it.

use std::time::Duration;

use openvpnserv_proto::startup::MAX_UNITS;
use openvpnserv_proto::{Reply, StartupMessage};
use zeroize::Zeroizing;

use super::{StartError, Transport};

/// How long the client waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// For a free connection slot (the socket backlog or `ERROR_PIPE_BUSY`).
    pub connect: Duration,
    /// For the first reply after the startup message. The service itself answers within
    /// about 2 s even when it refuses, so a longer silence means a stuck service.
    pub reply: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            reply: Duration::from_secs(15),
        }
    }
}

/// Something the service said after the PID reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceEvent {
    /// A late error, typically `0x20000000`, `OpenVPN exited with error: exit code = N`.
    Error {
        /// The code.
        code: u32,
        /// Line 2.
        function: String,
        /// Line 3.
        text: String,
    },
    /// A message that is not a reply (kept for the log; the session goes on).
    Garbage(String),
    /// The service ended the session: openvpn has exited (or the service stopped).
    Closed,
}

impl ServiceEvent {
    /// The exit code of openvpn, for the `0x20000000` late error.
    pub fn openvpn_exit_code(&self) -> Option<u32> {
        match self {
            Self::Error { code, function, .. }
                if *code == openvpnserv_proto::codes::ERROR_OPENVPN_STARTUP =>
            {
                function.rsplit("exit code = ").next()?.trim().parse().ok()
            }
            _ => None,
        }
    }
}

/// A started openvpn, with the connection kept open to hear late errors (as the GUI does).
#[derive(Debug)]
pub struct Session<T> {
    transport: T,
    pid: u32,
    closed: bool,
}

/// Sends the startup message and waits for the reply.
pub async fn start<T: Transport>(
    mut transport: T,
    message: &StartupMessage,
    timeouts: Timeouts,
) -> Result<Session<T>, StartError> {
    check(message)?;
    let bytes = Zeroizing::new(message.encode());
    transport.send(&bytes).await?;
    drop(bytes);
    let reply = match tokio::time::timeout(timeouts.reply, transport.recv()).await {
        Err(_) => {
            return Err(StartError::Timeout {
                waited: timeouts.reply,
            })
        }
        Ok(received) => received?.ok_or(StartError::Closed)?,
    };
    match Reply::decode(&reply)? {
        Reply::Pid(pid) => Ok(Session {
            transport,
            pid,
            closed: false,
        }),
        Reply::Error {
            code,
            function,
            text,
        } => Err(StartError::Refused {
            code,
            function,
            text,
        }),
    }
}

/// Refuses what the service would cut short or reject, before sending it.
fn check(message: &StartupMessage) -> Result<(), StartError> {
    let parts = [&message.working_dir, &message.options, &*message.stdin];
    if parts.iter().any(|p| p.contains('\0')) {
        return Err(StartError::InvalidRequest(
            "the working directory, options or stdin text contain a NUL character",
        ));
    }
    let units: usize = parts.iter().map(|p| p.encode_utf16().count() + 1).sum();
    if units > MAX_UNITS {
        return Err(StartError::InvalidRequest(
            "the request is longer than the 4096 UTF-16 units the service accepts",
        ));
    }
    Ok(())
}

impl<T: Transport> Session<T> {
    /// openvpn's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Waits for the next late message. After [`ServiceEvent::Closed`] it returns `Closed`
    /// again at once.
    pub async fn next_event(&mut self) -> ServiceEvent {
        if self.closed {
            return ServiceEvent::Closed;
        }
        let Ok(Some(bytes)) = self.transport.recv().await else {
            self.closed = true;
            return ServiceEvent::Closed;
        };
        match Reply::decode(&bytes) {
            Ok(Reply::Error {
                code,
                function,
                text,
            }) => ServiceEvent::Error {
                code,
                function,
                text,
            },
            Ok(Reply::Pid(pid)) => ServiceEvent::Garbage(format!("a second PID reply ({pid})")),
            Err(e) => ServiceEvent::Garbage(e.to_string()),
        }
    }
}
