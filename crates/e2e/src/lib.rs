//! Harness for the Linux end-to-end tests.
//!
//! Every test here needs root (it creates users, network namespaces, tun devices and runs
//! the service), so each is marked `#[ignore]` with that reason and the `e2e` stage of
//! `scripts/test-all.sh` runs them with `--ignored`, one at a time. Everything a test creates
//! is removed when its guard drops, also when the test fails.
#![cfg(target_os = "linux")]

pub mod bench;
pub mod faults;
pub mod fixture;
pub mod guest;
pub mod hangfs;
pub mod netns;
pub mod openvpn;
pub mod resolved;
pub mod service;
pub mod users;
pub mod vpn;
