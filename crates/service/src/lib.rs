//! The `OpenVPN` interactive service.
//!
//! Platform-neutral pieces sit at the top ([`cli`]); everything that talks to the operating
//! system lives in [`linux`] or [`windows`], behind small traits so that the logic can be
//! tested with fakes. The wire formats, the policy and the settings model are in their own
//! sans-IO crates (`openvpnserv-proto`, `openvpnserv-policy`, `openvpnserv-settings`).

pub mod cli;
#[cfg(target_os = "linux")]
pub mod linux;
#[cfg(windows)]
pub mod windows;
