//! Where a config file may live (spec §3.4, design §1): one rule per platform.
//!
//! * [`windows`]: upstream's lexical rule, hardened (compiled everywhere, so it is tested on
//!   Linux too).
//! * `linux` (Unix only): the canonical, swap-proof rule; it resolves paths through the
//!   file system, which only a Unix build can do.

#[cfg(unix)]
pub mod linux;
pub mod windows;
