//! The Windows session core (spec §5.6–§5.7, §1.3–§1.4), sans-IO.
//!
//! * [`session`]: the channel handlers and their undo, over the [`net::WinNet`] trait.
//! * [`net`]: the trait the service's IP Helper, registry and WFP code implements.
//! * [`undo`]: the undo lists; [`nrpt`], [`searchlist`], [`wfp`], [`sddl`]: what the handlers
//!   write, as data.
//! * `fake` (feature `fake`): a recording [`net::WinNet`] for the test kits.

#[cfg(feature = "fake")]
pub mod fake;
pub mod net;
pub mod nrpt;
pub mod sddl;
pub mod searchlist;
pub mod session;
pub mod undo;
pub mod wfp;
