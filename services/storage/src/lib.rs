//! crimson-storage as a library: the layer store, the unpacker and the gRPC service.
//!
//! Layers live in `<state>/layers/<chain-id hex>/diff`, named by their OCI chain id, unpacked
//! once and shared by every image (and container) that holds them. Each layer record lists its
//! owners; a layer with no owner left is deleted. Root filesystems live in
//! `<state>/rootfs/<container id>/`.

#![warn(missing_docs)]

pub mod cli;
mod digest;
mod driver;
mod error;
mod id_mapped;
mod layer_claim;
mod layer_put;
mod layout;
mod mounts;
mod owner_release;
mod reconcile;
mod records;
mod rootfs;
mod service;
mod state;
#[cfg(test)]
mod tests;
pub mod unpack;
mod usage;

pub use error::{Result, StorageError};
pub use service::StorageService;
