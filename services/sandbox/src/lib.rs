//! crimson-sandbox as a library: pods, containers, conmon and the OCI runtime.
//!
//! Every pod and container is recorded before anything is made for it and updated after each
//! step, so failures and crashes undo exactly what was made. Containers run under conmon,
//! which outlives this daemon; their exits are read from conmon's exit files whenever they
//! are looked at, so nothing is lost while this daemon is down.

#![warn(missing_docs)]

mod binaries;
pub mod cli;
mod container;
mod creation;
mod error;
mod events;
mod host;
mod host_ops;
mod layout;
pub mod oci;
mod parked;
mod peers;
mod pod;
pub mod reaper;
mod reconcile;
mod records;
pub mod runtime;
mod seams;
mod service;
mod state;
#[cfg(test)]
mod tests;

pub use binaries::find_executable;
pub use error::{Result, SandboxError};
pub use service::SandboxService;
