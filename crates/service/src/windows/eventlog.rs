//! The Windows service logs through `tracing`; this layer writes its events to the event log
//! (spec §10 item 9): source `openvpnserv<id>`, event id 0xC0020001 (severity error,
//! facility runtime), two strings — `"<source> error"` (or `"<source>"` below ERROR) and the
//! message followed by the event's fields as `key=value`. Every event also goes to stderr as
//! `<first>: <second>`, which a test or a console sees and the SCM discards.
//!
//! Levels: ERROR is an error entry, WARN a warning, INFO and DEBUG information. The level
//! filter is `RUST_LOG`, else `info`.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use super::sys::kernel::{EventKind, EventSource};

/// Upstream's single message id.
pub const EVENT_ID: u32 = 0xC002_0001;

/// One event log entry: its type and its two strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Error, warning or information.
    pub kind: EventKind,
    /// `"<source> error"` for errors, else `"<source>"`.
    pub title: String,
    /// The message, then ` key=value` for each field.
    pub text: String,
}

/// The entry for an event of `level` with `message` and `fields` (in the order given),
/// reported by `source`.
pub fn entry(source: &str, level: Level, message: &str, fields: &[(String, String)]) -> Entry {
    let (kind, title) = match level {
        Level::ERROR => (EventKind::Error, format!("{source} error")),
        Level::WARN => (EventKind::Warning, source.to_owned()),
        _ => (EventKind::Information, source.to_owned()),
    };
    let mut text = message.to_owned();
    for (key, value) in fields {
        if !text.is_empty() {
            text.push(' ');
        }
        let _ = write!(text, "{key}={value}");
    }
    Entry { kind, title, text }
}

/// A field value as text: strings as they are, quoted (Rust-style) when empty or when they
/// hold a space, a quote or `=`, so that `key=value` pairs stay readable.
fn field_text(s: &str) -> String {
    if s.is_empty() || s.contains(|c: char| c.is_whitespace() || c == '"' || c == '=') {
        format!("{s:?}")
    } else {
        s.to_owned()
    }
}

/// Collects an event's message and fields.
#[derive(Default)]
struct Fields {
    message: String,
    fields: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            value.clone_into(&mut self.message);
        } else {
            self.fields
                .push((field.name().to_owned(), field_text(value)));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = text;
        } else {
            self.fields
                .push((field.name().to_owned(), field_text(&text)));
        }
    }
}

/// Where the layer's entries go.
pub trait Sink: Send + Sync + 'static {
    /// Writes one entry.
    fn write(&self, entry: &Entry);
}

/// The event log (and stderr).
#[derive(Debug)]
pub struct EventLogSink(Option<EventSource>);

impl EventLogSink {
    /// Registers `source`; entries still reach stderr when that fails.
    pub fn new(source: &str) -> Self {
        Self(EventSource::register(source))
    }

    /// Whether the source was registered (else entries only reach stderr).
    pub fn is_registered(&self) -> bool {
        self.0.is_some()
    }
}

impl Sink for EventLogSink {
    fn write(&self, entry: &Entry) {
        eprintln!("{}: {}", entry.title, entry.text);
        if let Some(source) = &self.0 {
            source.report(entry.kind, EVENT_ID, &[&entry.title, &entry.text]);
        }
    }
}

/// A `tracing` layer that turns events into event log entries of `source`.
pub struct EventLogLayer<S: Sink = EventLogSink> {
    source: String,
    sink: S,
}

impl EventLogLayer {
    /// The layer for the event source `source`.
    pub fn new(source: &str) -> Self {
        Self::with_sink(source, EventLogSink::new(source))
    }
}

impl<S: Sink> EventLogLayer<S> {
    /// The layer writing to `sink` (tests record entries).
    pub fn with_sink(source: &str, sink: S) -> Self {
        Self {
            source: source.to_owned(),
            sink,
        }
    }
}

impl<S: Sink, R: Subscriber> Layer<R> for EventLogLayer<S> {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, R>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        self.sink.write(&entry(
            &self.source,
            *event.metadata().level(),
            &fields.message,
            &fields.fields,
        ));
    }
}

/// Sends this process's `tracing` events to the event log as `source`, filtered by
/// `RUST_LOG` (default `info`). Only the first call in a process takes effect.
pub fn init(source: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(EventLogLayer::new(source))
        .try_init();
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn levels_map_to_event_types_and_titles() {
        let e = entry("openvpnserv$x", Level::ERROR, "boom", &[]);
        assert_eq!(
            (e.kind, e.title.as_str(), e.text.as_str()),
            (EventKind::Error, "openvpnserv$x error", "boom")
        );
        let w = entry("openvpnserv", Level::WARN, "hm", &[]);
        assert_eq!(
            (w.kind, w.title.as_str()),
            (EventKind::Warning, "openvpnserv")
        );
        for level in [Level::INFO, Level::DEBUG] {
            assert_eq!(
                entry("openvpnserv", level, "", &[]).kind,
                EventKind::Information
            );
        }
    }

    #[test]
    fn fields_follow_the_message_as_key_value() {
        let fields = [
            ("session".to_owned(), "3".to_owned()),
            ("user".to_owned(), "alice".to_owned()),
        ];
        assert_eq!(
            entry("s", Level::INFO, "openvpn started", &fields).text,
            "openvpn started session=3 user=alice"
        );
        assert_eq!(
            entry("s", Level::INFO, "", &fields).text,
            "session=3 user=alice"
        );
        assert_eq!(field_text("two words"), "\"two words\"");
        assert_eq!(field_text(""), "\"\"");
        assert_eq!(field_text(r"DOM\user"), r"DOM\user");
    }

    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<Entry>>>);

    impl Sink for Recorder {
        fn write(&self, entry: &Entry) {
            self.0.lock().unwrap().push(entry.clone());
        }
    }

    /// The layer under a real subscriber: formatted messages, `%` and `?` fields, strings.
    #[test]
    fn tracing_events_become_entries() {
        let recorder = Recorder::default();
        let subscriber = tracing_subscriber::registry()
            .with(EventLogLayer::with_sink("openvpnserv$t", recorder.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let user = "bob";
            tracing::error!(session = 7_u64, user = %user, "OpenVPN exited with error: exit code = {}", 3);
            tracing::warn!(kind = ?Some(1), dir = "C:\\My Files", "refused");
            tracing::info!("channel numbering V27");
        });
        let got = recorder.0.lock().unwrap().clone();
        assert_eq!(
            got,
            [
                Entry {
                    kind: EventKind::Error,
                    title: "openvpnserv$t error".into(),
                    text: "OpenVPN exited with error: exit code = 3 session=7 user=bob".into(),
                },
                Entry {
                    kind: EventKind::Warning,
                    title: "openvpnserv$t".into(),
                    text: r#"refused kind=Some(1) dir="C:\\My Files""#.into(),
                },
                Entry {
                    kind: EventKind::Information,
                    title: "openvpnserv$t".into(),
                    text: "channel numbering V27".into(),
                },
            ]
        );
    }
}
