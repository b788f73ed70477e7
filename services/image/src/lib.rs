//! crimson-image as a library: references, registries.conf, credentials, the registry client,
//! image records and the gRPC service.
//!
//! A pull resolves the name (short names through the search registries), tries each source
//! (mirrors, then the primary location, as registries.conf says), picks the node's platform
//! from an index, verifies manifest and config digests, and streams only the layers storage
//! lacks into crimson-storage, which verifies and unpacks them. The image is recorded last, so
//! an interrupted pull leaves nothing half-registered.

#![warn(missing_docs)]

mod auth;
pub mod cli;
mod error;
mod image_lookup;
mod image_pull;
mod image_remove;
mod layer_import;
mod layer_store;
mod manifest;
mod reconcile;
mod records;
pub mod reference;
mod registries_conf;
mod registry;
mod registry_clients;
mod service;
mod state;
#[cfg(test)]
mod tests;

pub use error::{ImageError, Result};
pub use service::ImageService;
