//! crimson-network as a library.
//!
//! Today it answers whether a usable CNI configuration is present (read fresh on every status
//! call, so a conflist dropped in later is picked up without a restart). Pod network
//! namespaces and CNI ADD/DEL/CHECK come with the pod lifecycle.

mod cni_config;
mod error;
mod service;

pub use cni_config::{CniNetwork, find_network};
pub use error::{NetworkError, Result};
pub use service::NetworkService;
