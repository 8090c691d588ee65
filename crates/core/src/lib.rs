//! The sans-IO session core: what a session may change and how it is undone.
//!
//! Platform code performs the changes; this crate decides and keeps the books, so that the
//! rules are tested without an operating system. Both platforms' logic compiles and is tested
//! everywhere; only the service crate decides which one runs.
//!
//! * [`linux`]: the Linux channel policy, undo journal, hook and `--iproute` translation, DNS.
//! * [`windows`]: the Windows channel handlers, undo lists, NRPT, WFP plan, SDDL.
//! * [`limits`]: per-user and total session limits, shared by both.
#![forbid(unsafe_code)]

pub mod limits;
pub mod linux;
pub mod windows;
