//! The client of the Linux service's control socket (`/run/openvpn<id>/control`, protocol
//! in `openvpnserv_proto::control`): list, status, stop and the log of connections. One
//! request, one response, over any [`Transport`]; the service decides from the kernel who
//! asks and what they may see.

#[cfg(target_os = "linux")]
mod registry;

#[cfg(target_os = "linux")]
pub use registry::ControlRegistry;

use std::path::PathBuf;
use std::time::Duration;

pub use openvpnserv_proto::control::{Connection, ErrorCode, Request, Response, State};
use openvpnserv_proto::control::{ControlError as WireError, MAX_LOG_LINES};

use crate::service::{ConnectError, Transport};

/// Where an instance's control socket is: next to its service socket.
pub fn control_path(instance: &openvpnserv_settings::Instance) -> PathBuf {
    let service = PathBuf::from(instance.socket_path());
    service.with_file_name("control")
}

/// A request through the control socket failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Nothing answers on the control socket.
    #[error("the OpenVPN interactive service does not answer on its control socket {endpoint} ({detail}): it is not running, or it is older than this iservice; start it (`systemctl start openvpnserv.socket`) or pick its instance with -instance interactive NAME")]
    NotRunning {
        /// The socket.
        endpoint: String,
        /// What the OS said.
        detail: String,
    },
    /// Connecting failed otherwise (busy, access denied, I/O).
    #[error(transparent)]
    Connect(ConnectError),
    /// The connection broke.
    #[error("lost the connection to the service's control socket: {0}; try again")]
    Io(#[from] std::io::Error),
    /// The service closed the connection without answering.
    #[error("the service closed its control socket without answering (it may be stopping); try again, or ask an administrator to look at its log")]
    Closed,
    /// The service did not answer in time.
    #[error("the service did not answer on its control socket within {} s: it is running but slow or stuck; try again, or ask an administrator to look at its log", .0.as_secs())]
    Timeout(Duration),
    /// The answer is not in the protocol's form.
    #[error("the service sent an answer this iservice does not understand ({0}); are the service and iservice the same version?")]
    BadResponse(#[from] WireError),
    /// The answer does not fit the request.
    #[error("the service answered a {asked} request with {got}; are the service and iservice the same version?")]
    Unexpected {
        /// What was asked.
        asked: &'static str,
        /// What came back.
        got: &'static str,
    },
    /// The service refused the request (not found, another user's, …).
    #[error("{message}")]
    Refused {
        /// Why, for programs.
        code: ErrorCode,
        /// Why, for people (the service's text).
        message: String,
    },
}

impl ControlError {
    /// From a failed connect to the control socket.
    pub fn from_connect(e: ConnectError) -> Self {
        match e {
            ConnectError::NotRunning { endpoint, detail } => Self::NotRunning { endpoint, detail },
            other => Self::Connect(other),
        }
    }

    /// The service's refusal code, if it refused.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// A slice of a connection's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogChunk {
    /// The lines, oldest first.
    pub lines: Vec<String>,
    /// The number of the first line.
    pub first: u64,
    /// Where to continue.
    pub next: u64,
    /// openvpn has exited: nothing follows.
    pub ended: bool,
}

/// One connection to the control socket.
#[derive(Debug)]
pub struct ControlClient<T> {
    transport: T,
    timeout: Duration,
}

fn kind(response: &Response) -> &'static str {
    match response {
        Response::Connections { .. } => "a list",
        Response::Connection { .. } => "a connection",
        Response::Stopping { .. } => "a stop confirmation",
        Response::Log { .. } => "log lines",
        Response::Error { .. } => "an error",
    }
}

impl<T: Transport> ControlClient<T> {
    /// A client over a connected transport; each answer must come within `timeout`.
    pub fn new(transport: T, timeout: Duration) -> Self {
        Self { transport, timeout }
    }

    /// Sends one request and reads its response; a refusal is an error.
    pub async fn request(&mut self, request: &Request) -> Result<Response, ControlError> {
        self.transport.send(&request.encode()).await?;
        let answer = tokio::time::timeout(self.timeout, self.transport.recv())
            .await
            .map_err(|_| ControlError::Timeout(self.timeout))??;
        let bytes = answer.ok_or(ControlError::Closed)?;
        match Response::decode(&bytes)? {
            Response::Error { code, message } => Err(ControlError::Refused { code, message }),
            other => Ok(other),
        }
    }

    /// The connections the caller may see.
    pub async fn list(&mut self) -> Result<Vec<Connection>, ControlError> {
        match self.request(&Request::List).await? {
            Response::Connections { connections } => Ok(connections),
            other => Err(ControlError::Unexpected {
                asked: "list",
                got: kind(&other),
            }),
        }
    }

    /// One connection.
    pub async fn status(&mut self, name: &str) -> Result<Connection, ControlError> {
        let request = Request::Status {
            name: name.to_owned(),
        };
        match self.request(&request).await? {
            Response::Connection { connection } => Ok(connection),
            other => Err(ControlError::Unexpected {
                asked: "status",
                got: kind(&other),
            }),
        }
    }

    /// Stops one connection (`Some(name)`) or all the caller may stop; the names asked to
    /// stop.
    pub async fn stop(&mut self, name: Option<&str>) -> Result<Vec<String>, ControlError> {
        let request = name.map_or(Request::StopAll, |name| Request::Stop {
            name: name.to_owned(),
        });
        match self.request(&request).await? {
            Response::Stopping { names } => Ok(names),
            other => Err(ControlError::Unexpected {
                asked: "stop",
                got: kind(&other),
            }),
        }
    }

    /// Log lines from line `from` on.
    pub async fn log(
        &mut self,
        name: &str,
        from: u64,
        max_lines: Option<u32>,
    ) -> Result<LogChunk, ControlError> {
        let request = Request::Log {
            name: name.to_owned(),
            from,
            max_lines,
        };
        match self.request(&request).await? {
            Response::Log {
                lines,
                first,
                next,
                ended,
            } => Ok(LogChunk {
                lines,
                first,
                next,
                ended,
            }),
            other => Err(ControlError::Unexpected {
                asked: "log",
                got: kind(&other),
            }),
        }
    }

    /// The last `count` lines of the log (reads it page by page: the protocol counts from
    /// the oldest line kept), and whether openvpn has exited.
    pub async fn log_tail(
        &mut self,
        name: &str,
        count: u32,
    ) -> Result<(Vec<String>, bool), ControlError> {
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        let mut tail = std::collections::VecDeque::with_capacity(count);
        let mut from = 0;
        // The service keeps a bounded log, so this ends; the bound on rounds guards against
        // a service that keeps writing faster than we read.
        for _ in 0..1000 {
            let chunk = self.log(name, from, Some(MAX_LOG_LINES)).await?;
            for line in chunk.lines.iter().cloned() {
                if tail.len() == count {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
            if chunk.lines.is_empty() || chunk.next <= from {
                return Ok((tail.into(), chunk.ended));
            }
            from = chunk.next;
        }
        Ok((tail.into(), false))
    }

    /// The connection whose openvpn has process id `pid`, among those the caller may see.
    pub async fn find_by_pid(&mut self, pid: u32) -> Result<Option<Connection>, ControlError> {
        Ok(self.list().await?.into_iter().find(|c| c.pid == pid))
    }
}

/// Connects to the control socket at `path` (Linux).
#[cfg(target_os = "linux")]
pub async fn connect(
    path: &std::path::Path,
    timeout: Duration,
) -> Result<ControlClient<crate::service::linux::SeqpacketTransport>, ControlError> {
    let transport = crate::service::linux::SeqpacketTransport::connect_with_limit(
        path,
        timeout,
        openvpnserv_proto::control::MAX_RESPONSE,
    )
    .await
    .map_err(ControlError::from_connect)?;
    Ok(ControlClient::new(transport, timeout))
}
