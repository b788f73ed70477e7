//! What crimson-storage keeps in its database.

use std::{collections::BTreeSet, path::PathBuf};

use crimson_api::storage::v1::Layer;
use serde::{Deserialize, Serialize};

/// Tree of [`LayerRecord`]s, keyed by chain id.
pub const LAYERS_TREE: &str = "layers";
/// Tree of [`RootfsRecord`]s, keyed by container id.
pub const ROOTFS_TREE: &str = "rootfs";
/// Database schema version this build writes.
pub const SCHEMA_VERSION: u32 = 1;

/// One unpacked layer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerRecord {
    pub chain_id: String,
    pub parent_chain_id: String,
    pub diff_id: String,
    pub blob_digest: String,
    pub size_bytes: u64,
    pub inodes: u64,
    /// Who holds the layer: image ids, `rootfs:<container id>`.
    pub owners: BTreeSet<String>,
}

impl LayerRecord {
    /// The API view.
    pub fn to_proto(&self) -> Layer {
        Layer {
            chain_id: self.chain_id.clone(),
            parent_chain_id: self.parent_chain_id.clone(),
            diff_id: self.diff_id.clone(),
            size_bytes: self.size_bytes,
            inodes: self.inodes,
            owners: self.owners.iter().cloned().collect(),
        }
    }
}

/// One container root filesystem.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RootfsRecord {
    pub id: String,
    pub top_chain_id: String,
    /// Layer chain, top first (as overlay wants its lower dirs).
    pub chain_top_first: Vec<String>,
    pub mount_path: PathBuf,
    /// For a container in a user namespace of its own: the layers are seen through these.
    #[serde(default)]
    pub id_mappings: Option<IdMappings>,
}

/// The user and group ID mappings of a user-namespaced container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMappings {
    pub uid: crimson_sys::user_namespaces::IdMapping,
    pub gid: crimson_sys::user_namespaces::IdMapping,
}

impl RootfsRecord {
    /// The owner name a root filesystem holds its layers under.
    pub fn owner(id: &str) -> String {
        format!("rootfs:{id}")
    }
}
