//! The sans-IO session core: what a session may change and how it is undone.
//!
//! Platform code performs the changes; this crate decides and keeps the books, so that the
//! rules are tested without an operating system.
#![forbid(unsafe_code)]

pub mod limits;
pub mod linux_config;
pub mod linux_dns;
pub mod linux_hook;
pub mod linux_iproute;
pub mod linux_journal;
pub mod linux_policy;
pub mod windows_fake;
pub mod windows_net;
pub mod windows_nrpt;
pub mod windows_sddl;
pub mod windows_searchlist;
pub mod windows_session;
pub mod windows_undo;
pub mod windows_wfp;
