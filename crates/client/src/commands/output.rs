//! What the management commands (`list`, `status`, `stop`, `log`) write with `--json`, and
//! their exit codes. Schema: `crates/client/schema/commands.schema.json`
//! ([`COMMANDS_SCHEMA`]); docs/ISERVICE.md has examples.

use std::io::Write;

use serde::Serialize;

use crate::connect::Outcome;
use crate::control::{Connection, ControlError, ErrorCode};

/// The JSON Schema (draft 2020-12) of every `--json` object of `list`, `status`, `stop` and
/// `log`.
pub const COMMANDS_SCHEMA: &str = include_str!("../../schema/commands.schema.json");

/// One `--json` object.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Output<'a> {
    /// `list`.
    List {
        /// The connections the caller may see.
        connections: &'a [Connection],
    },
    /// `status`.
    Status {
        /// The connection.
        connection: &'a Connection,
    },
    /// `stop`.
    Stop {
        /// The connections asked to stop.
        stopping: &'a [String],
        /// Those whose openvpn has exited since (all of them unless the wait ran out).
        exited: &'a [String],
    },
    /// `log`: one line of openvpn's output.
    LogLine {
        /// Its line number in the connection's log.
        number: u64,
        /// The text.
        text: &'a str,
    },
    /// `log`: the last object.
    LogEnd {
        /// The `from` of a later request (lines before it were shown).
        next: u64,
        /// openvpn has exited: no line will follow.
        ended: bool,
    },
    /// Any command that failed.
    Error {
        /// What went wrong.
        error: ErrorBody<'a>,
    },
}

/// The body of [`Output::Error`].
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    /// The exit code.
    pub code: u8,
    /// Its name (`local_error`, `service_unavailable`, `not_found`, `forbidden`).
    pub outcome: &'static str,
    /// What went wrong and what to do.
    pub message: &'a str,
}

/// The exit code of a failed request.
pub fn outcome_of(e: &ControlError) -> Outcome {
    match e {
        ControlError::Refused { code, .. } => match code {
            ErrorCode::NotFound => Outcome::NotFound,
            ErrorCode::Forbidden => Outcome::Forbidden,
            ErrorCode::Unavailable => Outcome::ServiceUnavailable,
            ErrorCode::BadRequest => Outcome::LocalError,
        },
        ControlError::NotRunning { .. }
        | ControlError::Connect(_)
        | ControlError::Io(_)
        | ControlError::Closed
        | ControlError::Timeout(_) => Outcome::ServiceUnavailable,
        ControlError::BadResponse(_) | ControlError::Unexpected { .. } => Outcome::LocalError,
    }
}

/// Writes one JSON object and a line end.
pub fn json(out: &mut dyn Write, value: &Output<'_>) {
    // Writing to stdout fails only when it is closed; nothing is left to tell then.
    let _ = serde_json::to_writer(&mut *out, value);
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

/// Reports a failure (as JSON on `out`, or as text on stderr) and returns its exit code.
pub fn failure(out: &mut dyn Write, as_json: bool, outcome: Outcome, message: &str) -> u8 {
    if as_json {
        json(
            out,
            &Output::Error {
                error: ErrorBody {
                    code: outcome.code(),
                    outcome: outcome.name(),
                    message,
                },
            },
        );
    } else {
        eprintln!("iservice: error: {message}");
    }
    outcome.code()
}
