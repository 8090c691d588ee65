//! `--json`: one JSON object per event and line (schema: `schema/events.schema.json`).

use std::io::Write;
use std::time::Duration;

use crate::connect::{Event, Record, Sink};

/// Writes events as JSON lines.
pub struct JsonSink<W: Write + Send> {
    out: W,
}

impl<W: Write + Send> JsonSink<W> {
    /// Writes to `out`, flushing after each line so that a reader sees events live.
    pub fn new(out: W) -> Self {
        Self { out }
    }
}

impl<W: Write + Send> Sink for JsonSink<W> {
    fn event(&mut self, elapsed: Duration, event: &Event) {
        let record = Record {
            elapsed_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            event,
        };
        // A closed stdout (e.g. `| head`) must not stop the VPN session; the exit code still
        // tells the result.
        if let Ok(line) = serde_json::to_string(&record) {
            let _ = writeln!(self.out, "{line}");
            let _ = self.out.flush();
        }
    }
}
