//! crimson-network as a library: the CNI runtime, pinned network namespaces and the service.
//!
//! A pod's attachment is recorded (with the exact configuration used) before CNI ADD runs, so
//! a crash half-way is undone with DEL on restart, and a later DEL uses the configuration the
//! ADD used even if the conf dir changed since. The conf dir is read fresh for every new pod
//! and every status call: a conflist dropped in later is picked up without a restart.

#![warn(missing_docs)]

pub mod cli;
mod cni_config;
mod cni_exec;
mod cni_result;
mod error;
mod netns;
mod plugin_lock;
mod pod_setup;
mod pod_teardown;
mod port_forward;
mod reconcile;
mod records;
mod service;
mod state;
#[cfg(test)]
mod tests;

pub use cni_config::{CniNetwork, find_network};
pub use error::{NetworkError, Result};
pub use service::NetworkService;
