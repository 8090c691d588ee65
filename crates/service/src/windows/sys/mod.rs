//! The one layer of the Windows service that calls the operating system directly. Everything
//! above it is plain Rust over these wrappers (`windows/mod.rs` denies raw code in every other
//! module); every raw call here carries a `// SAFETY:` note.
//!
//! * [`error`]: [`Win32Error`], a failed call's code and the label a reply names.
//! * [`wide`]: UTF-16 strings for the wide APIs.
//! * [`kernel`]: handles, events and waits; processes; named and anonymous pipes; message
//!   texts, the system directory, file versions, and the event log source.
//! * [`security`]: tokens and impersonation, SIDs and accounts, local groups, security
//!   descriptors from SDDL, and starting a process with a client's token.
//! * [`registry`]: `HKEY_LOCAL_MACHINE` on the `windows-registry` crate.
//! * [`network`]: IP Helper, the Windows Filtering Platform, and the DNS client service.

pub mod error;
pub mod kernel;
pub mod network;
pub mod registry;
pub mod security;
pub mod wide;

pub use error::Win32Error;
