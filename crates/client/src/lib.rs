//! Client of the `OpenVPN` interactive service: the GUI's side of the protocol, as a library
//! and as the `iservice` command.
//!
//! * [`service`]: connect to the service (Linux socket, Windows pipe with the server-PID
//!   check), send the startup message, get the PID or a typed error, hear late errors.
//! * [`mgmt`]: openvpn's management interface protocol, sans-IO.
//! * [`connect`]: what `iservice connect` does, as a sans-IO session plus a small driver.
//! * [`control`]: the Linux service's control socket (list, status, stop, log).
//! * [`commands`]: the other commands (`start`, `list`, `status`, `stop`, `restart`, `log`).
//!
//! The wire formats come from `openvpnserv-proto`. Only [`service::windows`] holds `unsafe`
//! code (one documented call); everything else forbids it.
#![deny(unsafe_code)]

pub mod cli;
pub mod commands;
pub mod connect;
pub mod control;
pub mod mgmt;
pub mod service;
pub mod ui;

pub use openvpnserv_proto::{Reply, StartupMessage};
