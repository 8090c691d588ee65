//! How `iservice connect` shows its progress: a live terminal display, or JSON lines; and
//! how it asks for credentials without echo.

mod json;
mod prompt;
mod terminal;

pub use json::JsonSink;
pub use prompt::{can_prompt, parse_confirmation, TerminalPrompter, TerminalRestore};
pub use terminal::TerminalSink;

/// `1.2 KiB`, `3.4 MiB`: traffic counters for people.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    #[allow(clippy::cast_precision_loss)] // display only
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
