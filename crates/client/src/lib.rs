//! Client of the `OpenVPN` interactive service (the GUI's side of the protocol).
//!
//! The wire formats come from `openvpnserv-proto`; this crate adds the transports (the
//! Windows pipe, the Linux socket) and the `iservice` command.
#![forbid(unsafe_code)]

pub use openvpnserv_proto::{Reply, StartupMessage};
