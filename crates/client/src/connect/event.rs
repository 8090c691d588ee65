//! What `iservice connect` reports: one event per step, shown on a terminal or written as
//! one JSON object per line (`--json`, schema in `crates/client/schema/events.schema.json`).

use serde::Serialize;

/// The JSON Schema (draft 2020-12) every `--json` line satisfies.
pub const EVENTS_SCHEMA: &str = include_str!("../../schema/events.schema.json");

use crate::mgmt::{LogLine, StateInfo};

/// One reported event. In JSON the variant name is the `event` field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Connected to the service.
    ServiceConnected {
        /// The socket or pipe.
        endpoint: String,
    },
    /// The service started openvpn.
    Started {
        /// openvpn's process id.
        pid: u32,
        /// `127.0.0.1:<port>` of its management interface.
        management: String,
    },
    /// The service refused or failed to start openvpn.
    Refused {
        /// The error code.
        code: u32,
        /// The code's name, where known.
        code_name: Option<&'static str>,
        /// Line 2 of the reply.
        function: String,
        /// Line 3 of the reply.
        text: String,
    },
    /// The management interface accepted our password.
    ManagementConnected,
    /// openvpn waits for `hold release` (which the client sends at once).
    Hold {
        /// Seconds openvpn would have waited alone.
        wait_hint: Option<u32>,
    },
    /// A state transition.
    State {
        /// openvpn's state name (CONNECTING, WAIT, AUTH, …).
        state: String,
        /// The reason or detail, possibly empty.
        description: String,
        /// Assigned tun IPv4 address.
        local_ipv4: Option<String>,
        /// Assigned tun IPv6 address.
        local_ipv6: Option<String>,
        /// The server's address.
        remote_address: Option<String>,
        /// The server's port.
        remote_port: Option<u16>,
        /// openvpn's Unix time of the transition.
        openvpn_time: u64,
    },
    /// A line of openvpn's log.
    Log {
        /// `fatal`, `error`, `warning`, `info` or `debug`.
        level: &'static str,
        /// The message.
        message: String,
    },
    /// openvpn asked for credentials.
    PasswordRequest {
        /// The credential kind (`Auth`, `Private Key`, …).
        kind: String,
        /// Whether a user name is asked for too.
        username: bool,
        /// A challenge text shown to the user, if any.
        challenge: Option<String>,
    },
    /// openvpn waits for the user to confirm something (`>NEED-OK:`, e.g. to insert a token)
    /// or to type a line (`>NEED-STR:`). The client asks on the terminal, or stops openvpn
    /// when it cannot.
    Question {
        /// The request's name (`token-insertion-request`, …).
        name: String,
        /// The text for the user.
        message: String,
        /// `true` when a line of text is wanted, `false` for a confirmation.
        input: bool,
    },
    /// Credentials were refused.
    AuthFailed {
        /// The credential kind or the server's reason.
        kind: String,
        /// Whether the client will ask again.
        retry: bool,
    },
    /// Traffic counters.
    Bytecount {
        /// Bytes received.
        bytes_in: u64,
        /// Bytes sent.
        bytes_out: u64,
    },
    /// An `>INFO:` or `>INFOMSG:` text.
    Info {
        /// The text.
        message: String,
    },
    /// openvpn's last words before exiting with an error.
    Fatal {
        /// The text.
        message: String,
    },
    /// Another notification, passed on as is.
    Notification {
        /// Its kind (the word after `>`).
        kind: String,
        /// Its text.
        body: String,
    },
    /// A late error from the service (typically openvpn's non-zero exit code).
    ServiceError {
        /// The error code.
        code: u32,
        /// The code's name, where known.
        code_name: Option<&'static str>,
        /// Line 2.
        function: String,
        /// Line 3.
        text: String,
    },
    /// The client asked openvpn to stop.
    Stopping {
        /// Why (`interrupt`, `auth_failed`, …).
        reason: String,
    },
    /// A problem on the client's side that does not end the session by itself.
    Warning {
        /// The text.
        message: String,
    },
    /// `iservice start`: the name the service gave the connection (for `status`, `stop`,
    /// `log`, `restart`).
    Connection {
        /// The connection's name.
        name: String,
        /// openvpn's process id.
        pid: u32,
    },
    /// `iservice restart`: the connection's previous openvpn has exited; the new one starts.
    Restarting {
        /// The connection's name.
        name: String,
        /// The config it is started with again.
        config: String,
    },
    /// The last event: how the command ends.
    Exit {
        /// The process exit code.
        code: u8,
        /// Its name (see [`super::Outcome`]).
        outcome: &'static str,
        /// A sentence for people.
        message: String,
        /// When openvpn failed: the last lines it wrote (at most
        /// [`super::LOG_TAIL_LINES`]), from the service's log of the connection (Linux) or
        /// the log file (Windows); absent when they could not be read.
        #[serde(skip_serializing_if = "Option::is_none")]
        openvpn_log: Option<Vec<String>>,
    },
}

impl Event {
    /// The event for a state notification.
    pub fn state(info: &StateInfo) -> Self {
        Self::State {
            state: info.name.as_str().to_owned(),
            description: info.description.clone(),
            local_ipv4: info.local_ipv4.clone(),
            local_ipv6: info.local_ipv6.clone(),
            remote_address: info.remote_address.clone(),
            remote_port: info.remote_port,
            openvpn_time: info.time,
        }
    }

    /// The event for a log line.
    pub fn log(line: &LogLine) -> Self {
        Self::Log {
            level: line.level(),
            message: line.message.clone(),
        }
    }
}

/// An event with the time since the command started, as written in JSON.
#[derive(Debug, Serialize)]
pub struct Record<'a> {
    /// Milliseconds since the command started.
    pub elapsed_ms: u64,
    /// The event (its fields are flattened into the record).
    #[serde(flatten)]
    pub event: &'a Event,
}
