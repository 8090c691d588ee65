//! The control protocol (Linux): how `iservice list`, `status`, `stop` and `log` ask the
//! service about running connections. It is ours, not upstream's; the Windows pipe protocol
//! is not touched by it.
//!
//! The service listens on `/run/openvpn<id>/control` (a `SOCK_SEQPACKET` socket, mode 0666
//! like the service socket). A client sends one [`Request`] as one JSON object in one
//! message and gets one [`Response`] in one message; it may send further requests on the same
//! connection. The service decides who the caller is from the kernel (`SO_PEERCRED`), never
//! from the request: an ordinary user sees and stops only their own connections, root and
//! members of the admin group (`ovpn_admin_group`) see and stop all.
//!
//! A connection is listed from the moment openvpn is started (the service's PID reply); when
//! openvpn exits with an error, the service marks it [`State::Exited`] and has read what
//! openvpn wrote (for at most half a second after its exit) before it sends the session's
//! late error reply, so a client that gets that reply can ask for the log right away and
//! find openvpn's last lines in it. A session's openvpn is found by its `pid`.
//!
//! The JSON form of every type here is part of the documented interface (docs/ISERVICE.md).

use serde::{Deserialize, Serialize};

/// Largest request the service reads; a longer one is refused with [`ErrorCode::BadRequest`].
pub const MAX_REQUEST: usize = 4096;
/// Largest response the service sends (the receive buffer a client needs).
pub const MAX_RESPONSE: usize = 256 * 1024;
/// Most log lines one [`Request::Log`] returns.
pub const MAX_LOG_LINES: u32 = 1000;

/// What a client asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// The connections the caller may see (own; all for admins), including those that ended
    /// recently (state `exited`).
    List,
    /// One connection.
    Status {
        /// Its name (see [`Connection::name`]).
        name: String,
    },
    /// Disconnect one connection: openvpn gets SIGTERM and goes through its down sequence.
    Stop {
        /// Its name.
        name: String,
    },
    /// Disconnect every connection the caller may stop.
    StopAll,
    /// openvpn's output (stdout and stderr) for one connection, from line number `from` on.
    Log {
        /// Its name.
        name: String,
        /// The first line wanted: 0 for the oldest line still kept, or a previous
        /// response's `next`.
        #[serde(default)]
        from: u64,
        /// At most this many lines (capped at [`MAX_LOG_LINES`]); default: that cap.
        #[serde(default)]
        max_lines: Option<u32>,
    },
}

/// Where a connection is in its life, as the service sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// openvpn runs; its tun is not up yet (connecting, authenticating, …).
    Starting,
    /// The tun is up with its addresses and routes.
    Connected,
    /// The tun went down and openvpn is connecting again.
    Reconnecting,
    /// Asked to stop (or the service stops); openvpn runs its down sequence.
    Exiting,
    /// openvpn has exited; see `exit_code`. Kept for a while so that its log can be read.
    Exited,
}

/// One connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    /// Short and stable while it runs: the config's file name without `.conf`/`.ovpn`, with
    /// `-2`, `-3`, … when that name is already taken by another running connection.
    pub name: String,
    /// The owner's login name.
    pub user: String,
    /// The owner's uid.
    pub uid: u32,
    /// The config file, as the service resolved it.
    pub config: String,
    /// openvpn's process id.
    pub pid: u32,
    /// See [`State`].
    pub state: State,
    /// When openvpn was started, seconds since the Unix epoch.
    pub since: u64,
    /// When `state` last changed, seconds since the Unix epoch.
    pub state_since: u64,
    /// The tun device, once created.
    pub tun: Option<String>,
    /// The VPN addresses on the tun, `address/prefix`.
    pub addresses: Vec<String>,
    /// Bytes that came in through the tunnel: the tun's receive counter (what openvpn
    /// wrote into the tun), read when asked; for an exited connection the last value read
    /// before its tun was removed.
    pub bytes_in: u64,
    /// Bytes that went out through the tunnel: the tun's transmit counter (like `bytes_in`).
    pub bytes_out: u64,
    /// openvpn's exit code, once it has exited.
    pub exit_code: Option<i32>,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// No connection by that name (among those the caller may see).
    NotFound,
    /// The connection exists but belongs to another user, and the caller is not an admin.
    Forbidden,
    /// The request could not be read (not JSON, unknown op, too long).
    BadRequest,
    /// The service cannot answer now (stopping, or the caller's identity could not be read).
    Unavailable,
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case", deny_unknown_fields)]
pub enum Response {
    /// For [`Request::List`].
    Connections {
        /// Ordered by start time.
        connections: Vec<Connection>,
    },
    /// For [`Request::Status`].
    Connection {
        /// The connection.
        connection: Connection,
    },
    /// For [`Request::Stop`] and [`Request::StopAll`]: the connections that were asked to
    /// stop (their openvpn got SIGTERM). Stopping one that has already exited is not an error;
    /// it is simply not listed.
    Stopping {
        /// Their names.
        names: Vec<String>,
    },
    /// For [`Request::Log`].
    Log {
        /// The lines, oldest first, without line ends (invalid UTF-8 replaced).
        lines: Vec<String>,
        /// Line number of the first line returned (older lines were dropped when it is more
        /// than the requested `from`).
        first: u64,
        /// Where to continue: the `from` of the next request.
        next: u64,
        /// openvpn has exited: no line will follow.
        ended: bool,
    },
    /// The request was refused.
    Error {
        /// Why, for programs.
        code: ErrorCode,
        /// Why, for people: what went wrong and what to do.
        message: String,
    },
}

/// A control message that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Longer than the protocol allows.
    #[error("the control message has {len} bytes, more than the {max} allowed")]
    TooLong {
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// Not a valid JSON request or response.
    #[error("the control message is not valid: {0}")]
    Invalid(#[from] serde_json::Error),
}

impl Request {
    /// The bytes of one request message.
    pub fn encode(&self) -> Vec<u8> {
        // Serialising these types cannot fail: no maps with non-string keys, no floats.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads one request message.
    pub fn decode(bytes: &[u8]) -> Result<Self, ControlError> {
        if bytes.len() > MAX_REQUEST {
            return Err(ControlError::TooLong {
                len: bytes.len(),
                max: MAX_REQUEST,
            });
        }
        Ok(serde_json::from_slice(bytes)?)
    }
}

impl Response {
    /// The bytes of one response message.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads one response message.
    pub fn decode(bytes: &[u8]) -> Result<Self, ControlError> {
        if bytes.len() > MAX_RESPONSE {
            return Err(ControlError::TooLong {
                len: bytes.len(),
                max: MAX_RESPONSE,
            });
        }
        Ok(serde_json::from_slice(bytes)?)
    }

    /// A refusal.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Error {
            code,
            message: message.into(),
        }
    }
}

/// The connection name for a config path: its file name without a `.conf` or `.ovpn`
/// extension, then `-2`, `-3`, … until `taken` says no.
pub fn connection_name(config: &str, taken: impl Fn(&str) -> bool) -> String {
    let file = config.rsplit('/').next().unwrap_or(config);
    let file = file.rsplit('\\').next().unwrap_or(file);
    let stem = [".conf", ".ovpn"]
        .iter()
        .find_map(|ext| file.strip_suffix(ext))
        .filter(|s| !s.is_empty())
        .unwrap_or(file);
    // Names are typed on command lines: keep them short and free of control characters.
    let base: String = stem
        .chars()
        .map(|c| if c.is_control() { '_' } else { c })
        .take(64)
        .collect();
    let base = if base.is_empty() {
        "vpn".to_owned()
    } else {
        base
    };
    if !taken(&base) {
        return base;
    }
    (2u32..=u32::MAX)
        .map(|n| format!("{base}-{n}"))
        .find(|name| !taken(name))
        .unwrap_or(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_have_the_documented_json_form() {
        assert_eq!(Request::List.encode(), br#"{"op":"list"}"#);
        assert_eq!(Request::StopAll.encode(), br#"{"op":"stop_all"}"#);
        assert_eq!(
            Request::decode(br#"{"op":"log","name":"work"}"#).unwrap(),
            Request::Log {
                name: "work".into(),
                from: 0,
                max_lines: None
            }
        );
        assert_eq!(
            Request::decode(br#"{"op":"stop","name":"work"}"#).unwrap(),
            Request::Stop {
                name: "work".into()
            }
        );
    }

    #[test]
    fn unknown_ops_fields_and_long_requests_are_refused() {
        assert!(Request::decode(br#"{"op":"kill","name":"x"}"#).is_err());
        // A caller cannot name anyone: identity comes from the kernel, and such fields are refused.
        assert!(Request::decode(br#"{"op":"stop","name":"x","uid":0}"#).is_err());
        assert!(Request::decode(b"\xff").is_err());
        let long = format!(r#"{{"op":"status","name":"{}"}}"#, "a".repeat(MAX_REQUEST));
        assert!(matches!(
            Request::decode(long.as_bytes()),
            Err(ControlError::TooLong { .. })
        ));
    }

    #[test]
    fn responses_round_trip() {
        let c = Connection {
            name: "work".into(),
            user: "alice".into(),
            uid: 1000,
            config: "/etc/openvpn/client/work.conf".into(),
            pid: 42,
            state: State::Connected,
            since: 1,
            state_since: 2,
            tun: Some("tun0".into()),
            addresses: vec!["10.8.0.2/24".into()],
            bytes_in: 3,
            bytes_out: 4,
            exit_code: None,
        };
        for r in [
            Response::Connections {
                connections: vec![c.clone()],
            },
            Response::Connection { connection: c },
            Response::Stopping {
                names: vec!["work".into()],
            },
            Response::Log {
                lines: vec!["a".into()],
                first: 0,
                next: 1,
                ended: true,
            },
            Response::error(ErrorCode::Forbidden, "no"),
        ] {
            assert_eq!(Response::decode(&r.encode()).unwrap(), r);
        }
        let e = String::from_utf8(Response::error(ErrorCode::NotFound, "x").encode()).unwrap();
        assert_eq!(e, r#"{"result":"error","code":"not_found","message":"x"}"#);
    }

    #[test]
    fn names_are_the_config_stem_with_a_suffix_when_taken() {
        let none = |_: &str| false;
        assert_eq!(
            connection_name("/etc/openvpn/client/work.conf", none),
            "work"
        );
        assert_eq!(connection_name("home.ovpn", none), "home");
        assert_eq!(connection_name("C:\\cfg\\office.ovpn", none), "office");
        assert_eq!(connection_name("/x/plain", none), "plain");
        assert_eq!(connection_name("/x/.conf", none), ".conf");
        let taken = |n: &str| n == "work" || n == "work-2";
        assert_eq!(connection_name("/a/work.conf", taken), "work-3");
        assert_eq!(connection_name("/a/bad\nname.conf", none), "bad_name");
    }
}
