//! Wire formats of the `OpenVPN` interactive service, with no I/O.
//!
//! * [`startup`]: the message a client (OpenVPN-GUI, `iservice`) sends first (spec §2).
//! * [`reply`]: what the service answers: the PID reply and error replies (spec §4.5, §6.1).
//! * [`channel`]: the openvpn-msg requests and acknowledgements exchanged with openvpn over
//!   the per-session channel (spec §5), for both architectures and both numberings.
//! * [`codes`]: the error codes those formats carry.
//! * [`control`]: our control protocol on Linux (list, status, stop, log of connections).
//!
//! Every decoder here is total: any byte string yields a value or a typed error, never a panic
//! and never a read past its input.
#![forbid(unsafe_code)]

pub mod channel;
pub mod codes;
pub mod control;
pub mod reply;
pub mod startup;
mod utf16;

pub use reply::{Reply, ReplyParseError};
pub use startup::{StartupError, StartupMessage};
