//! Log lines to the journal, in journald's native protocol.
//!
//! tracing-journald (which this replaces) wrote INFO at priority 5 (notice) and put only
//! the event's own text in `MESSAGE`: a line read with plain `journalctl` said "openvpn
//! started" without saying whose. Here `MESSAGE` names the session and the user, from the
//! spans around the event ("session 3 of alice (uid 1000, client pid 77): openvpn started
//! (`openvpn_pid=123`)"), and every field is also a journal field of its own for `journalctl
//! FIELD=value` and `-o json`: span fields as `<SPAN>_<FIELD>` (`SESSION_ID`, `SESSION_USER`,
//! `SESSION_UID`, `SESSION_CLIENT_PID`), event fields under their own name in capitals
//! (`OPENVPN_PID`, `UNIT`, …). Priorities are syslog's: ERROR 3, WARN 4, INFO 6, DEBUG and
//! TRACE 7.

use std::fmt::Write as _;
use std::io::{self, IoSlice, Write as _};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// journald's socket for native messages.
const SOCKET: &str = "/run/systemd/journal/socket";

/// The syslog priority of a level.
pub fn priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// The tracing layer that sends each event to the journal.
#[derive(Debug)]
pub struct JournaldLayer {
    socket: UnixDatagram,
    identifier: String,
}

impl JournaldLayer {
    /// A layer sending as `identifier` (`SYSLOG_IDENTIFIER`); fails when there is no journal.
    pub fn new(identifier: &str) -> io::Result<Self> {
        let socket = UnixDatagram::unbound()?;
        // Fails early where there is no journald (then the caller logs to stderr).
        socket.connect(SOCKET)?;
        Ok(Self {
            socket,
            identifier: identifier.to_owned(),
        })
    }

    fn send(&self, payload: &[u8]) -> io::Result<()> {
        match self.socket.send(payload) {
            Ok(_) => Ok(()),
            // Too big for a datagram: journald takes a sealed memfd instead.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EMSGSIZE | libc::ENOBUFS)) => {
                self.send_memfd(payload)
            }
            Err(e) => Err(e),
        }
    }

    fn send_memfd(&self, payload: &[u8]) -> io::Result<()> {
        use nix::sys::memfd::{memfd_create, MFdFlags};
        let fd = memfd_create(
            c"openvpnserv-journal",
            MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
        )?;
        let mut file = std::fs::File::from(fd);
        file.write_all(payload)?;
        nix::fcntl::fcntl(
            &file,
            nix::fcntl::FcntlArg::F_ADD_SEALS(nix::fcntl::SealFlag::all()),
        )?;
        let fds = [file.as_raw_fd()];
        let addr = UnixAddr::new(SOCKET)?;
        sendmsg(
            self.socket.as_raw_fd(),
            &[] as &[IoSlice<'_>],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            Some(&addr),
        )?;
        Ok(())
    }
}

/// A field name as journald takes it: capitals, digits and `_`, not starting with `_` or a
/// digit.
fn field_name(raw: &str) -> String {
    let mut name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    if name.starts_with(|c: char| c == '_' || c.is_ascii_digit()) {
        name.insert(0, 'F');
    }
    name
}

/// Names journald or this layer set themselves; an event field of that name is prefixed.
const RESERVED: &[&str] = &[
    "MESSAGE",
    "PRIORITY",
    "SYSLOG_IDENTIFIER",
    "CODE_FILE",
    "CODE_LINE",
    "TARGET",
];

/// Appends `NAME=value` (or the length-prefixed form for values with a newline).
fn put(buf: &mut Vec<u8>, name: &str, value: &str) {
    if value.contains('\n') {
        buf.extend_from_slice(name.as_bytes());
        buf.push(b'\n');
        buf.extend_from_slice(&(value.len() as u64).to_le_bytes());
        buf.extend_from_slice(value.as_bytes());
    } else {
        buf.extend_from_slice(name.as_bytes());
        buf.push(b'=');
        buf.extend_from_slice(value.as_bytes());
    }
    buf.push(b'\n');
}

/// Fields as (name, text), in order.
#[derive(Debug, Default)]
struct Fields(Vec<(&'static str, String)>);

impl Fields {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name(), value.to_owned()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name(), format!("{value:?}")));
    }
}

/// How a span reads in a message: the session span as "session 3 of alice (uid 1000,
/// client pid 77)", any other as "name field=value …".
fn describe_span(name: &str, fields: &Fields) -> String {
    if name == "session" {
        let mut s = format!("session {}", fields.get("id").unwrap_or("?"));
        if let Some(user) = fields.get("user") {
            let _ = write!(s, " of {user}");
        }
        let details: Vec<String> = [("uid", "uid"), ("client_pid", "client pid")]
            .iter()
            .filter_map(|(k, label)| fields.get(k).map(|v| format!("{label} {v}")))
            .collect();
        if !details.is_empty() {
            let _ = write!(s, " ({})", details.join(", "));
        }
        return s;
    }
    let mut s = name.to_owned();
    for (k, v) in &fields.0 {
        let _ = write!(s, " {k}={v}");
    }
    s
}

/// The message text of an event inside `spans` (outermost first).
fn message(spans: &[String], fields: &Fields) -> String {
    let mut text = spans.join(": ");
    if !text.is_empty() {
        text.push_str(": ");
    }
    text.push_str(fields.get("message").unwrap_or(""));
    let rest: Vec<String> = fields
        .0
        .iter()
        .filter(|(n, _)| *n != "message")
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    if !rest.is_empty() {
        let _ = write!(text, " ({})", rest.join(" "));
    }
    text
}

impl<S> tracing_subscriber::Layer<S> for JournaldLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        span.extensions_mut().insert(fields);
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: Context<'_, S>,
    ) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        if let Some(fields) = ext.get_mut::<Fields>() {
            let mut new = Fields::default();
            values.record(&mut new);
            for (name, value) in new.0 {
                match fields.0.iter_mut().find(|(n, _)| *n == name) {
                    Some(slot) => slot.1 = value,
                    None => fields.0.push((name, value)),
                }
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut buf = Vec::with_capacity(512);
        let mut spans = Vec::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                let ext = span.extensions();
                let Some(fields) = ext.get::<Fields>() else {
                    continue;
                };
                spans.push(describe_span(span.name(), fields));
                for (name, value) in fields.0.iter().filter(|(_, v)| !v.is_empty()) {
                    put(
                        &mut buf,
                        &format!("{}_{}", field_name(span.name()), field_name(name)),
                        value,
                    );
                }
            }
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        for (name, value) in fields.0.iter().filter(|(n, _)| *n != "message") {
            let mut key = field_name(name);
            if RESERVED.contains(&key.as_str()) {
                key.insert_str(0, "F_");
            }
            put(&mut buf, &key, value);
        }
        put(&mut buf, "MESSAGE", &message(&spans, &fields));
        put(&mut buf, "PRIORITY", &priority(*meta.level()).to_string());
        put(&mut buf, "SYSLOG_IDENTIFIER", &self.identifier);
        put(&mut buf, "TARGET", meta.target());
        if let Some(file) = meta.file() {
            put(&mut buf, "CODE_FILE", file);
        }
        if let Some(line) = meta.line() {
            put(&mut buf, "CODE_LINE", &line.to_string());
        }
        // Nothing sensible is left to do when the journal cannot take a line.
        let _ = self.send(&buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(list: &[(&'static str, &str)]) -> Fields {
        Fields(list.iter().map(|(n, v)| (*n, (*v).to_owned())).collect())
    }

    #[test]
    fn info_is_priority_6_not_notice() {
        assert_eq!(priority(Level::ERROR), 3);
        assert_eq!(priority(Level::WARN), 4);
        assert_eq!(priority(Level::INFO), 6);
        assert_eq!(priority(Level::DEBUG), 7);
    }

    #[test]
    fn the_text_names_the_session_and_the_user() {
        let span = describe_span(
            "session",
            &fields(&[
                ("id", "3"),
                ("uid", "1000"),
                ("client_pid", "77"),
                ("user", "alice"),
            ]),
        );
        assert_eq!(span, "session 3 of alice (uid 1000, client pid 77)");
        let text = message(
            &[span],
            &fields(&[("message", "openvpn started"), ("openvpn_pid", "123")]),
        );
        assert_eq!(
            text,
            "session 3 of alice (uid 1000, client pid 77): openvpn started (openvpn_pid=123)"
        );
        // Before the user is known (a client refused before its startup message).
        assert_eq!(
            describe_span("session", &fields(&[("id", "4"), ("uid", "0")])),
            "session 4 (uid 0)"
        );
    }

    #[test]
    fn field_names_and_values_follow_the_native_protocol() {
        assert_eq!(field_name("client_pid"), "CLIENT_PID");
        assert_eq!(field_name("_x"), "F_X");
        let mut buf = Vec::new();
        put(&mut buf, "A", "one line");
        put(&mut buf, "B", "two\nlines");
        let mut want = b"A=one line\nB\n".to_vec();
        want.extend_from_slice(&9u64.to_le_bytes());
        want.extend_from_slice(b"two\nlines\n");
        assert_eq!(buf, want);
    }
}
