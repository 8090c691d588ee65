//! openvpn's management interface, client side, with no I/O.
//!
//! Facts from openvpn's `doc/management-notes.txt` and from openvpn 2.6.14 seen on this
//! machine (lines end in CRLF; the password prompt `ENTER PASSWORD:` has no line end and is
//! repeated after a wrong password; `state on all` answers a `SUCCESS:` line followed by the
//! history and `END`):
//!
//! * real-time notifications start with `>` and can arrive at any time, also between the
//!   lines of a multi-line command response ([`notification`]);
//! * a command is answered by one `SUCCESS:` or `ERROR:` line, or by lines ending in `END`
//!   ([`Parser`] is told which to expect when a command is sent, see [`command`]).
#![forbid(unsafe_code)]

pub mod command;
pub mod notification;
mod parser;

pub use command::{Command, CommandError, Signal};
pub use notification::{
    LogLine, NeedRequest, Notification, PasswordRequest, StateInfo, StateName, StaticChallenge,
};
pub use parser::{Expect, Output, ParseError, Parser, Reply, ReplyStatus, MAX_LINE};
