//! Splitting the management byte stream into prompts, notifications and command replies.

use std::collections::VecDeque;

use super::notification::Notification;

/// Longest line accepted; longer lines are reported and skipped (a peer costs bounded memory).
pub const MAX_LINE: usize = 64 * 1024;

/// What openvpn writes when the interface has a password and the client must send it.
const PASSWORD_PROMPT: &[u8] = b"ENTER PASSWORD:";

/// The shape of the answer a command gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// One `SUCCESS: …` or `ERROR: …` line (`hold release`, `signal`, `password`, …).
    Status,
    /// Lines ending with `END` (`state`, `status`, `help`, `version`); an `ERROR:` line
    /// instead means the command failed.
    Lines,
    /// A `SUCCESS:` line and then lines ending with `END` (`state on all`, `log on all`).
    StatusThenLines,
}

/// The first line of a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyStatus {
    /// `SUCCESS: <text>`.
    Success(String),
    /// `ERROR: <text>`.
    Error(String),
    /// The command prints lines only.
    Listing,
}

/// A complete answer to one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Success, error, or a plain listing.
    pub status: ReplyStatus,
    /// The lines before `END` (empty for status-only replies).
    pub lines: Vec<String>,
}

impl Reply {
    /// Whether the command failed.
    pub fn is_error(&self) -> bool {
        matches!(self.status, ReplyStatus::Error(_))
    }
}

/// One thing the parser recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// openvpn asks for the management password (first prompt).
    PasswordPrompt,
    /// The management password was accepted.
    PasswordAccepted,
    /// The management password was refused (openvpn prompted again, or said `ERROR:`).
    PasswordRejected,
    /// A real-time notification.
    Notification(Notification),
    /// The answer to the oldest command still waiting.
    Reply(Reply),
    /// A line that is neither a notification nor expected by any command.
    Unexpected(String),
}

/// A problem in the stream; the parser carries on after it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A line longer than [`MAX_LINE`] was skipped.
    #[error("the management interface sent a line longer than {MAX_LINE} bytes; it was skipped")]
    LineTooLong,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    /// Nothing seen yet: a prompt may come.
    Start,
    /// We sent the password and wait for the verdict.
    Sent,
    /// Past the password phase.
    Done,
}

/// The sans-IO management stream parser.
#[derive(Debug)]
pub struct Parser {
    /// Bytes fed and not parsed yet.
    input: Vec<u8>,
    /// The line being collected.
    buf: Vec<u8>,
    skipping: bool,
    auth: Auth,
    pending: VecDeque<Expect>,
    /// The reply being collected for the front of `pending`.
    partial: Option<Reply>,
    out: VecDeque<Result<Output, ParseError>>,
}

impl Default for Parser {
    fn default() -> Self {
        Self::new()
    }
}

impl Parser {
    /// A parser for a fresh connection.
    pub fn new() -> Self {
        Self {
            input: Vec::new(),
            buf: Vec::new(),
            skipping: false,
            auth: Auth::Start,
            pending: VecDeque::new(),
            partial: None,
            out: VecDeque::new(),
        }
    }

    /// Records that a command was sent and what shape its answer has.
    pub fn expect(&mut self, expect: Expect) {
        self.pending.push_back(expect);
    }

    /// Records that the password line was sent after a [`Output::PasswordPrompt`].
    pub fn password_sent(&mut self) {
        self.auth = Auth::Sent;
    }

    /// Number of commands still waiting for their answer.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Feeds bytes read from the connection. They are parsed lazily by
    /// [`Parser::next_output`], one line at a time, so that a command sent in answer to one
    /// line is expected before the following lines are read.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.input.extend_from_slice(bytes);
    }

    /// The next recognised item, if any.
    pub fn next_output(&mut self) -> Option<Result<Output, ParseError>> {
        loop {
            if let Some(out) = self.out.pop_front() {
                return Some(out);
            }
            if self.input.is_empty() {
                return None;
            }
            self.step();
        }
    }

    /// Consumes one line, or all input when it holds no line end.
    fn step(&mut self) {
        let Some(nl) = self.input.iter().position(|&b| b == b'\n') else {
            let rest = std::mem::take(&mut self.input);
            if !self.skipping {
                if self.buf.len() + rest.len() > MAX_LINE {
                    self.buf.clear();
                    self.skipping = true;
                    self.out.push_back(Err(ParseError::LineTooLong));
                } else {
                    self.buf.extend_from_slice(&rest);
                }
            }
            self.prompt_without_line_end();
            return;
        };
        let head: Vec<u8> = self.input.drain(..=nl).collect();
        let head = &head[..nl];
        if self.skipping {
            self.skipping = false;
            self.buf.clear();
            return;
        }
        if self.buf.len() + head.len() > MAX_LINE {
            self.buf.clear();
            self.out.push_back(Err(ParseError::LineTooLong));
            return;
        }
        self.buf.extend_from_slice(head);
        let mut line = std::mem::take(&mut self.buf);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        self.line(&String::from_utf8_lossy(&line));
    }

    /// The prompt is the only text openvpn sends without a line end.
    fn prompt_without_line_end(&mut self) {
        if self.auth != Auth::Done && self.buf == PASSWORD_PROMPT {
            self.buf.clear();
            let out = if self.auth == Auth::Sent {
                Output::PasswordRejected
            } else {
                Output::PasswordPrompt
            };
            self.out.push_back(Ok(out));
        }
    }

    fn line(&mut self, line: &str) {
        if self.auth == Auth::Sent {
            self.auth = Auth::Done;
            if line.starts_with("SUCCESS:") {
                self.out.push_back(Ok(Output::PasswordAccepted));
                return;
            }
            if line.starts_with("ERROR:") {
                self.out.push_back(Ok(Output::PasswordRejected));
                return;
            }
        }
        self.auth = Auth::Done;
        if let Some(body) = line.strip_prefix('>') {
            self.out
                .push_back(Ok(Output::Notification(Notification::parse(body))));
            return;
        }
        let Some(&expect) = self.pending.front() else {
            self.out.push_back(Ok(Output::Unexpected(line.to_owned())));
            return;
        };
        if let Some(reply) = self.partial.as_mut() {
            if line == "END" {
                let reply = self.partial.take().expect("checked above");
                self.finish(reply);
            } else {
                reply.lines.push(line.to_owned());
            }
            return;
        }
        let status = if let Some(text) = line.strip_prefix("SUCCESS:") {
            Some(ReplyStatus::Success(text.trim_start().to_owned()))
        } else {
            line.strip_prefix("ERROR:")
                .map(|text| ReplyStatus::Error(text.trim_start().to_owned()))
        };
        match (expect, status) {
            (_, Some(status @ ReplyStatus::Error(_))) | (Expect::Status, Some(status)) => {
                self.finish(Reply {
                    status,
                    lines: Vec::new(),
                });
            }
            (Expect::StatusThenLines, Some(status)) => {
                self.partial = Some(Reply {
                    status,
                    lines: Vec::new(),
                });
            }
            (Expect::Lines, _) if line == "END" => self.finish(Reply {
                status: ReplyStatus::Listing,
                lines: Vec::new(),
            }),
            (Expect::Lines, _) => {
                self.partial = Some(Reply {
                    status: ReplyStatus::Listing,
                    lines: vec![line.to_owned()],
                });
            }
            (Expect::Status | Expect::StatusThenLines, None) => {
                self.out.push_back(Ok(Output::Unexpected(line.to_owned())));
            }
        }
    }

    fn finish(&mut self, reply: Reply) {
        self.pending.pop_front();
        self.out.push_back(Ok(Output::Reply(reply)));
    }
}
