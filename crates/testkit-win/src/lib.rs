//! Test kit for the Windows service, used by its tests under Wine.
//!
//! * [`scenario`]: every channel message a fake openvpn sends, with the ack it expects.
//! * `client`: a minimal client of the service pipe (Windows only).
//! * `compliance`: upstream's service and ours side by side (the compliance stage).
//! * `harness`: the service in-process with a recording network layer, and test registry
//!   instances (Windows only).
//!
//! The `fake-openvpn-win` binary is a stand-in for openvpn.exe: it takes `--msg-channel <handle>`,
//! sends the messages of a scenario, checks every acknowledgement and records what it saw.

pub mod scenario;

#[cfg(windows)]
pub mod client;
#[cfg(windows)]
pub mod compliance;
#[cfg(windows)]
pub mod harness;
