//! Errors of the service client, worded so that a user can tell a service that is not
//! running from one that is slow, and knows what to do next.

use std::io;
use std::time::Duration;

use openvpnserv_proto::{codes, ReplyParseError};

/// Connecting to the service failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Nothing listens where the service should be.
    #[error("the OpenVPN interactive service is not running: nothing listens on {endpoint} ({detail}); start the service (Linux: `systemctl start openvpnserv`, Windows: `net start OpenVPNServiceInteractive`) or pick its instance with -instance interactive NAME")]
    NotRunning {
        /// Where we looked.
        endpoint: String,
        /// What the OS said.
        detail: String,
    },
    /// The service exists but is not installed / registered (Windows SCM).
    #[error("the service {service} is not installed ({detail}); install OpenVPN with its interactive service")]
    NotInstalled {
        /// The service name.
        service: String,
        /// What the OS said.
        detail: String,
    },
    /// The service is running but all its connection slots stayed busy.
    #[error("the OpenVPN interactive service at {endpoint} is running but busy: no free connection within {} s; try again, or ask an administrator to check it", waited.as_secs())]
    Busy {
        /// Where.
        endpoint: String,
        /// How long we waited.
        waited: Duration,
    },
    /// The OS refused access to the endpoint.
    #[error("access to the OpenVPN interactive service at {endpoint} was denied ({detail}); the socket or pipe should be open to all local users, so ask an administrator to check its permissions")]
    AccessDenied {
        /// Where.
        endpoint: String,
        /// What the OS said.
        detail: String,
    },
    /// The pipe is served by another process than the service (spec §1.5).
    #[error("refusing to use {endpoint}: it is served by process {actual}, not by the interactive service (process {expected}); another program may be impersonating the service")]
    WrongServer {
        /// Where.
        endpoint: String,
        /// The service's process id.
        expected: u32,
        /// The pipe server's process id.
        actual: u32,
    },
    /// Any other I/O error.
    #[error("could not connect to the OpenVPN interactive service at {endpoint}: {source}")]
    Io {
        /// Where.
        endpoint: String,
        /// The error.
        source: io::Error,
    },
}

/// Starting openvpn through a connected service failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The service answered with an error: it refused or failed to start openvpn.
    #[error("the service refused to start openvpn: {}", describe(*code, function, text))]
    Refused {
        /// The error code (spec §6.2).
        code: u32,
        /// Line 2: the failing function or the reason.
        function: String,
        /// Line 3: the system's text, if any.
        text: String,
    },
    /// The service accepted the connection but said nothing in time.
    #[error("the service accepted the connection but did not answer within {} s: it is running but slow or stuck; try again, or ask an administrator to look at its log", waited.as_secs())]
    Timeout {
        /// How long we waited.
        waited: Duration,
    },
    /// The service closed the connection without a reply.
    #[error("the service closed the connection without answering; ask an administrator to look at its log")]
    Closed,
    /// The reply was not in the service's format.
    #[error("the service sent a reply this client does not understand: {0}")]
    BadReply(#[from] ReplyParseError),
    /// The startup message cannot be encoded (a NUL inside, or too long).
    #[error("cannot send the request: {0}")]
    InvalidRequest(&'static str),
    /// An I/O error on the connection.
    #[error("lost the connection to the service: {0}")]
    Io(#[from] io::Error),
}

impl StartError {
    /// The reply code, for refusals.
    pub fn code(&self) -> Option<u32> {
        match self {
            Self::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// `0x20000001 (ERROR_STARTUP_DATA): <function>[: <text>]`.
pub fn describe(code: u32, function: &str, text: &str) -> String {
    let name = codes::name(code).map_or_else(String::new, |n| format!(" ({n})"));
    if text.is_empty() || text == "(null)" {
        format!("0x{code:08x}{name}: {function}")
    } else {
        format!("0x{code:08x}{name}: {function}: {text}")
    }
}
