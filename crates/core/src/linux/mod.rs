//! The Linux session core (design §2–§5), sans-IO.
//!
//! * [`policy`]: what a session's channel request may change (design §3).
//! * [`journal`]: the undo journal: records, replay, undo plan (design §5).
//! * [`hook`]: openvpn's script environment → channel requests (design §2).
//! * [`iproute`]: `--iproute` `ip` argv → channel requests, and requests as `ip` words.
//! * [`dns`]: DNS state, checks and rendering, backend choice (design §4).
//! * [`config`]: what the hook must know of the config's own scripts, and the options the
//!   service cannot honour.
//! * [`openvpn`]: what an openvpn build is, from its `--version`.

pub mod config;
pub mod dns;
mod error;
pub mod hook;
pub mod iproute;
pub mod journal;
pub mod openvpn;
pub mod policy;

pub use error::TranslateError;
