//! Real-time notifications (`>KIND:body`), parsed into types.
//!
//! Formats from openvpn's management notes: `>STATE:` has up to nine comma-separated fields
//! (time, state, description, tun IPv4, remote address, remote port, local address, local
//! port, tun IPv6); `>LOG:` is time, flags (`I`, `F`, `N`, `W`, `D`) and text, where the text
//! may hold commas; `>HOLD:` may end in `:<seconds>`; `>PASSWORD:` asks for credentials or
//! reports their failure.

use std::fmt;

use zeroize::Zeroizing;

/// A real-time notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// `>STATE:` — a state transition.
    State(StateInfo),
    /// `>LOG:` — a log line.
    Log(LogLine),
    /// `>HOLD:` — openvpn waits for `hold release`; the hint is the wait it would make alone.
    Hold {
        /// The text (`Waiting for hold release`).
        text: String,
        /// Seconds openvpn would have waited without a management client.
        wait_hint: Option<u32>,
    },
    /// `>PASSWORD:` — a credential request, a failure report, or an auth token.
    Password(PasswordRequest),
    /// `>BYTECOUNT:in,out` — traffic counters (client mode).
    ByteCount {
        /// Bytes received from the server.
        bytes_in: u64,
        /// Bytes sent to the server.
        bytes_out: u64,
    },
    /// `>INFO:` — informational text, such as the greeting.
    Info(String),
    /// `>FATAL:` — the error openvpn logs just before exiting.
    Fatal(String),
    /// `>INFOMSG:` — authentication-related text from the server (`CR_TEXT`, `OPEN_URL`).
    InfoMsg(String),
    /// `>NEED-OK:Need '<name>' confirmation MSG:<text>` or
    /// `>NEED-STR:Need '<name>' string MSG:<text>` — openvpn blocks until the user confirms
    /// (`needok`) or types a string (`needstr`), e.g. to insert a token.
    Need(NeedRequest),
    /// Every other kind, and a malformed `NEED-OK`/`NEED-STR`: kept as kind and body.
    Other {
        /// The word between `>` and `:`.
        kind: String,
        /// Everything after the first `:`.
        body: String,
    },
}

impl Notification {
    /// Parses the text after the leading `>`. Never fails: unknown or malformed
    /// notifications become [`Notification::Other`].
    pub fn parse(line: &str) -> Self {
        let Some((kind, body)) = line.split_once(':') else {
            return Self::Other {
                kind: line.to_owned(),
                body: String::new(),
            };
        };
        let parsed = match kind {
            "STATE" => StateInfo::parse(body).map(Self::State),
            "LOG" => LogLine::parse(body).map(Self::Log),
            "HOLD" => Some(parse_hold(body)),
            "PASSWORD" => Some(Self::Password(PasswordRequest::parse(body))),
            "BYTECOUNT" => parse_bytecount(body),
            "INFO" => Some(Self::Info(body.to_owned())),
            "FATAL" => Some(Self::Fatal(body.to_owned())),
            "INFOMSG" => Some(Self::InfoMsg(body.to_owned())),
            "NEED-OK" => NeedRequest::parse(body, false).map(Self::Need),
            "NEED-STR" => NeedRequest::parse(body, true).map(Self::Need),
            _ => None,
        };
        parsed.unwrap_or_else(|| Self::Other {
            kind: kind.to_owned(),
            body: body.to_owned(),
        })
    }
}

fn parse_hold(body: &str) -> Notification {
    match body.rsplit_once(':') {
        Some((text, hint)) if hint.parse::<u32>().is_ok() => Notification::Hold {
            text: text.to_owned(),
            wait_hint: hint.parse().ok(),
        },
        _ => Notification::Hold {
            text: body.to_owned(),
            wait_hint: None,
        },
    }
}

/// openvpn waits for the user: a confirmation (`>NEED-OK:`) or a line of text (`>NEED-STR:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeedRequest {
    /// The name to answer with (`token-insertion-request`, `pkcs11-id-request`, ...).
    pub name: String,
    /// The text to show the user (after `MSG:`; empty when there is none).
    pub message: String,
    /// `true` for `NEED-STR` (a string is wanted), `false` for `NEED-OK` (ok or cancel).
    pub input: bool,
}

impl NeedRequest {
    /// Parses `Need '<name>' <word> MSG:<text>`; `None` when the shape does not match. The
    /// word is not checked: the management notes show `confirmation` and `input`, while
    /// openvpn 2.6.14 sends `string` for `NEED-STR` (seen here with `--pkcs11-id-management`).
    pub fn parse(body: &str, input: bool) -> Option<Self> {
        let rest = body.strip_prefix("Need '")?;
        let (name, rest) = rest.split_once('\'')?;
        let rest = rest.strip_prefix(' ')?;
        let (word, message) = match rest.split_once(' ') {
            Some((word, after)) => (word, after.strip_prefix("MSG:")?),
            None => (rest, ""),
        };
        if name.is_empty() || word.is_empty() || word.contains(':') {
            return None;
        }
        Some(Self {
            name: name.to_owned(),
            message: message.to_owned(),
            input,
        })
    }
}

fn parse_bytecount(body: &str) -> Option<Notification> {
    let (a, b) = body.split_once(',')?;
    Some(Notification::ByteCount {
        bytes_in: a.trim().parse().ok()?,
        bytes_out: b.trim().parse().ok()?,
    })
}

/// openvpn's states, as named in the management notes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateName {
    /// Initial state.
    Connecting,
    /// Waiting for the server's first response.
    Wait,
    /// Authenticating with the server.
    Auth,
    /// Downloading options from the server.
    GetConfig,
    /// Assigning addresses to the tun interface.
    AssignIp,
    /// Adding routes.
    AddRoutes,
    /// Initialization sequence completed.
    Connected,
    /// A restart happened.
    Reconnecting,
    /// A graceful exit is in progress.
    Exiting,
    /// Resolving the server's name.
    Resolve,
    /// Connecting to a TCP server.
    TcpConnect,
    /// Authentication pending (e.g. web authentication).
    AuthPending,
    /// A state this client does not know.
    Other(String),
}

impl StateName {
    /// Parses openvpn's spelling.
    pub fn parse(name: &str) -> Self {
        match name {
            "CONNECTING" => Self::Connecting,
            "WAIT" => Self::Wait,
            "AUTH" => Self::Auth,
            "GET_CONFIG" => Self::GetConfig,
            "ASSIGN_IP" => Self::AssignIp,
            "ADD_ROUTES" => Self::AddRoutes,
            "CONNECTED" => Self::Connected,
            "RECONNECTING" => Self::Reconnecting,
            "EXITING" => Self::Exiting,
            "RESOLVE" => Self::Resolve,
            "TCP_CONNECT" => Self::TcpConnect,
            "AUTH_PENDING" => Self::AuthPending,
            other => Self::Other(other.to_owned()),
        }
    }

    /// openvpn's spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Connecting => "CONNECTING",
            Self::Wait => "WAIT",
            Self::Auth => "AUTH",
            Self::GetConfig => "GET_CONFIG",
            Self::AssignIp => "ASSIGN_IP",
            Self::AddRoutes => "ADD_ROUTES",
            Self::Connected => "CONNECTED",
            Self::Reconnecting => "RECONNECTING",
            Self::Exiting => "EXITING",
            Self::Resolve => "RESOLVE",
            Self::TcpConnect => "TCP_CONNECT",
            Self::AuthPending => "AUTH_PENDING",
            Self::Other(name) => name,
        }
    }

    /// A few words for people.
    pub fn describe(&self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Wait => "waiting for the server",
            Self::Auth => "authenticating",
            Self::GetConfig => "getting the configuration",
            Self::AssignIp => "assigning addresses",
            Self::AddRoutes => "adding routes",
            Self::Connected => "connected",
            Self::Reconnecting => "reconnecting",
            Self::Exiting => "exiting",
            Self::Resolve => "resolving the server name",
            Self::TcpConnect => "connecting over TCP",
            Self::AuthPending => "authentication pending",
            Self::Other(_) => "state",
        }
    }
}

impl fmt::Display for StateName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `>STATE:` notification or a line of `state` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateInfo {
    /// openvpn's Unix time of the transition.
    pub time: u64,
    /// The state.
    pub name: StateName,
    /// Reason or detail (mostly on RECONNECTING and EXITING).
    pub description: String,
    /// The tun interface's IPv4 address (`ASSIGN_IP`, `CONNECTED`).
    pub local_ipv4: Option<String>,
    /// The server's address (CONNECTED).
    pub remote_address: Option<String>,
    /// The server's port (CONNECTED).
    pub remote_port: Option<u16>,
    /// The local underlay address (CONNECTED).
    pub local_address: Option<String>,
    /// The local underlay port (CONNECTED).
    pub local_port: Option<u16>,
    /// The tun interface's IPv6 address (`ASSIGN_IP`, `CONNECTED`).
    pub local_ipv6: Option<String>,
}

impl StateInfo {
    /// Parses the comma-separated fields; `None` without a time and a state name.
    pub fn parse(body: &str) -> Option<Self> {
        let mut fields = body.split(',');
        let time = fields.next()?.trim().parse().ok()?;
        let name = fields.next().filter(|n| !n.is_empty())?;
        let mut next = || {
            fields
                .next()
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .map(str::to_owned)
        };
        let description = next().unwrap_or_default();
        let local_ipv4 = next();
        let remote_address = next();
        let remote_port = next().and_then(|p| p.parse().ok());
        let local_address = next();
        let local_port = next().and_then(|p| p.parse().ok());
        let local_ipv6 = next();
        Some(Self {
            time,
            name: StateName::parse(name),
            description,
            local_ipv4,
            remote_address,
            remote_port,
            local_address,
            local_port,
            local_ipv6,
        })
    }
}

/// A `>LOG:` notification or a line of `log` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// openvpn's Unix time.
    pub time: u64,
    /// The flag letters (`I`, `F`, `N`, `W`, `D`), possibly empty.
    pub flags: String,
    /// The message (may contain commas).
    pub message: String,
}

impl LogLine {
    /// Parses `time,flags,message`.
    pub fn parse(body: &str) -> Option<Self> {
        let mut parts = body.splitn(3, ',');
        let time = parts.next()?.trim().parse().ok()?;
        let flags = parts.next()?.to_owned();
        let message = parts.next().unwrap_or_default().to_owned();
        Some(Self {
            time,
            flags,
            message,
        })
    }

    /// `fatal`, `error`, `warning`, `debug` or `info`, from the most serious flag.
    pub fn level(&self) -> &'static str {
        let has = |c| self.flags.contains(c);
        if has('F') {
            "fatal"
        } else if has('N') {
            "error"
        } else if has('W') {
            "warning"
        } else if has('D') {
            "debug"
        } else {
            "info"
        }
    }
}

/// A static challenge (`SC:<echo>,<text>`) that comes with a credential request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticChallenge {
    /// Whether the response may be shown while typed.
    pub echo: bool,
    /// The question for the user.
    pub text: String,
}

/// What a `>PASSWORD:` notification says.
#[derive(Clone, PartialEq, Eq)]
pub enum PasswordRequest {
    /// `Need '<kind>' username/password` (optionally with a static challenge).
    NeedUsernamePassword {
        /// The credential's kind (`Auth`, `HTTP Proxy`, …); it goes back in the answer.
        kind: String,
        /// The static challenge, if the config has one.
        challenge: Option<StaticChallenge>,
    },
    /// `Need '<kind>' password` (e.g. `Private Key`).
    NeedPassword {
        /// The credential's kind.
        kind: String,
    },
    /// `Verification Failed: '<kind>'`, possibly with a dynamic challenge (`['CRV1:…']`).
    VerificationFailed {
        /// The credential's kind, or the server's reason text.
        kind: String,
        /// The `CRV1:…` text of a dynamic challenge.
        dynamic_challenge: Option<String>,
    },
    /// `Auth-Token:<token>`: a session token pushed by the server (a secret).
    AuthToken(Zeroizing<String>),
    /// Any other `>PASSWORD:` text.
    Other(String),
}

impl fmt::Debug for PasswordRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NeedUsernamePassword { kind, challenge } => f
                .debug_struct("NeedUsernamePassword")
                .field("kind", kind)
                .field("challenge", challenge)
                .finish(),
            Self::NeedPassword { kind } => {
                f.debug_struct("NeedPassword").field("kind", kind).finish()
            }
            Self::VerificationFailed {
                kind,
                dynamic_challenge,
            } => f
                .debug_struct("VerificationFailed")
                .field("kind", kind)
                .field("dynamic_challenge", dynamic_challenge)
                .finish(),
            Self::AuthToken(_) => f.write_str("AuthToken(<hidden>)"),
            Self::Other(text) => f.debug_tuple("Other").field(text).finish(),
        }
    }
}

impl PasswordRequest {
    /// Parses the body of a `>PASSWORD:` notification.
    pub fn parse(body: &str) -> Self {
        if let Some(token) = body.strip_prefix("Auth-Token:") {
            return Self::AuthToken(Zeroizing::new(token.to_owned()));
        }
        if let Some(rest) = body.strip_prefix("Verification Failed: ") {
            return parse_failure(rest);
        }
        if let Some(rest) = body.strip_prefix("Need '") {
            if let Some((kind, what)) = rest.split_once('\'') {
                let what = what.trim_start();
                if let Some(after) = what.strip_prefix("username/password") {
                    let challenge = after.trim_start().strip_prefix("SC:").map(|sc| {
                        let (flag, text) = sc.split_once(',').unwrap_or((sc, ""));
                        StaticChallenge {
                            echo: flag.trim() == "1",
                            text: text.to_owned(),
                        }
                    });
                    return Self::NeedUsernamePassword {
                        kind: kind.to_owned(),
                        challenge,
                    };
                }
                if what.starts_with("password") {
                    return Self::NeedPassword {
                        kind: kind.to_owned(),
                    };
                }
            }
        }
        Self::Other(body.to_owned())
    }
}

/// `'<kind>'`, `'<kind>' ['CRV1:…']` or `['CRV1:…']`.
fn parse_failure(rest: &str) -> PasswordRequest {
    let rest = rest.trim();
    let (kind, tail) = match rest.strip_prefix('\'').and_then(|r| r.split_once('\'')) {
        Some((kind, tail)) => (kind.to_owned(), tail.trim()),
        None => ("Auth".to_owned(), rest),
    };
    let dynamic_challenge = tail
        .strip_prefix("['")
        .and_then(|t| t.strip_suffix("']"))
        .filter(|c| c.starts_with("CRV1:"))
        .map(str::to_owned);
    let kind = if kind.is_empty() && tail.is_empty() {
        rest.to_owned()
    } else {
        kind
    };
    PasswordRequest::VerificationFailed {
        kind,
        dynamic_challenge,
    }
}
