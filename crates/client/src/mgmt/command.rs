//! Commands sent to the management interface, and their quoting.
//!
//! The interface splits commands like openvpn's config parser: whitespace separates
//! parameters, double quotes group them, and inside quotes `\\` and `\"` stand for a
//! backslash and a quote. A line end inside a value would start a new command, so such
//! values are refused rather than sent.

use zeroize::Zeroizing;

use super::parser::Expect;

/// Signals `signal` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Graceful exit.
    Term,
    /// Restart.
    Usr1,
    /// Hard restart.
    Hup,
    /// Print statistics to the log.
    Usr2,
}

impl Signal {
    fn name(self) -> &'static str {
        match self {
            Self::Term => "SIGTERM",
            Self::Usr1 => "SIGUSR1",
            Self::Hup => "SIGHUP",
            Self::Usr2 => "SIGUSR2",
        }
    }
}

/// A management command.
#[derive(Clone, PartialEq, Eq)]
pub enum Command<'a> {
    /// `hold release`: let openvpn start (or continue after a restart).
    HoldRelease,
    /// `hold off`: openvpn never holds again (at a restart it goes on without waiting for a
    /// management client; what `iservice start` sets before it leaves).
    HoldOff,
    /// `state on all`: the state history, then real-time state notifications.
    StateOnAll,
    /// `log on all`: the cached log, then real-time log notifications.
    LogOnAll,
    /// `bytecount <n>`: traffic counters every n seconds (0 turns them off).
    ByteCount(u32),
    /// `signal <SIG>`.
    Signal(Signal),
    /// `username "<kind>" <value>`.
    Username {
        /// The credential kind from the request.
        kind: &'a str,
        /// The user name.
        value: &'a str,
    },
    /// `password "<kind>" <value>`.
    Password {
        /// The credential kind from the request.
        kind: &'a str,
        /// The secret.
        value: &'a str,
    },
    /// `state`: the current state.
    State,
    /// `needok "<name>" ok|cancel`: the answer to a `>NEED-OK:` request.
    NeedOk {
        /// The name from the request.
        name: &'a str,
        /// Confirm (`ok`) or refuse (`cancel`).
        ok: bool,
    },
    /// `needstr "<name>" "<value>"`: the answer to a `>NEED-STR:` request.
    NeedStr {
        /// The name from the request.
        name: &'a str,
        /// What the user typed.
        value: &'a str,
    },
}

impl std::fmt::Debug for Command<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Password { kind, .. } => write!(f, "Password {{ kind: {kind:?}, .. }}"),
            Self::Username { kind, .. } => write!(f, "Username {{ kind: {kind:?}, .. }}"),
            Self::HoldRelease => f.write_str("HoldRelease"),
            Self::HoldOff => f.write_str("HoldOff"),
            Self::StateOnAll => f.write_str("StateOnAll"),
            Self::LogOnAll => f.write_str("LogOnAll"),
            Self::ByteCount(n) => write!(f, "ByteCount({n})"),
            Self::Signal(s) => write!(f, "Signal({})", s.name()),
            Self::State => f.write_str("State"),
            Self::NeedOk { name, ok } => write!(f, "NeedOk {{ name: {name:?}, ok: {ok} }}"),
            Self::NeedStr { name, .. } => write!(f, "NeedStr {{ name: {name:?}, .. }}"),
        }
    }
}

/// A value that cannot be sent safely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// Line ends or NUL would end the command early and inject another.
    #[error("the value contains a line break or NUL character, which the management interface cannot accept")]
    ControlCharacter,
}

impl Command<'_> {
    /// The bytes to send (with the line end) and the shape of the answer. The bytes are
    /// zeroized when dropped because they may hold a secret.
    pub fn encode(&self) -> Result<(Zeroizing<Vec<u8>>, Expect), CommandError> {
        let mut out = Zeroizing::new(Vec::with_capacity(64));
        let expect = match self {
            Self::HoldRelease => plain(&mut out, "hold release", Expect::Status),
            Self::HoldOff => plain(&mut out, "hold off", Expect::Status),
            Self::StateOnAll => plain(&mut out, "state on all", Expect::StatusThenLines),
            Self::LogOnAll => plain(&mut out, "log on all", Expect::StatusThenLines),
            Self::ByteCount(n) => plain(&mut out, &format!("bytecount {n}"), Expect::Status),
            Self::Signal(sig) => plain(&mut out, &format!("signal {}", sig.name()), Expect::Status),
            Self::State => plain(&mut out, "state", Expect::Lines),
            Self::Username { kind, value } => quoted_pair(&mut out, "username", kind, value)?,
            Self::Password { kind, value } => quoted_pair(&mut out, "password", kind, value)?,
            Self::NeedOk { name, ok } => {
                out.extend_from_slice(b"needok ");
                push_quoted(&mut out, name)?;
                out.extend_from_slice(if *ok { b" ok" } else { b" cancel" });
                Expect::Status
            }
            Self::NeedStr { name, value } => quoted_pair(&mut out, "needstr", name, value)?,
        };
        out.push(b'\n');
        Ok((out, expect))
    }
}

fn plain(out: &mut Vec<u8>, text: &str, expect: Expect) -> Expect {
    out.extend_from_slice(text.as_bytes());
    expect
}

fn quoted_pair(
    out: &mut Vec<u8>,
    verb: &str,
    kind: &str,
    value: &str,
) -> Result<Expect, CommandError> {
    out.extend_from_slice(verb.as_bytes());
    out.push(b' ');
    push_quoted(out, kind)?;
    out.push(b' ');
    push_quoted(out, value)?;
    Ok(Expect::Status)
}

/// The management password line, sent in answer to the `ENTER PASSWORD:` prompt. It is read
/// raw (no quoting), so it must not contain a line end.
pub fn password_line(password: &str) -> Result<Zeroizing<Vec<u8>>, CommandError> {
    check(password)?;
    let mut bytes = Zeroizing::new(Vec::with_capacity(password.len() + 1));
    bytes.extend_from_slice(password.as_bytes());
    bytes.push(b'\n');
    Ok(bytes)
}

fn check(value: &str) -> Result<(), CommandError> {
    if value.contains(['\n', '\r', '\0']) {
        return Err(CommandError::ControlCharacter);
    }
    Ok(())
}

/// Appends a value in double quotes, escaping `\` and `"`. `out` is the caller's
/// zeroizing buffer, so a secret is never copied into an ordinary `String`.
pub fn push_quoted(out: &mut Vec<u8>, value: &str) -> Result<(), CommandError> {
    check(value)?;
    out.reserve(value.len() + 2);
    out.push(b'"');
    for &b in value.as_bytes() {
        if matches!(b, b'\\' | b'"') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
    Ok(())
}
