//! The daemon's shared state: database trees, disk layout, driver and locks.

use std::sync::Arc;

use crimson_config::StorageDriver;
use crimson_store::{Store, Tree};

use crate::{
    Result,
    layout::Layout,
    mounts::Mounts,
    records::{LAYERS_TREE, LayerRecord, ROOTFS_TREE, RootfsRecord, SCHEMA_VERSION},
};

/// Everything the operations share.
pub struct State {
    pub layout: Layout,
    pub driver: StorageDriver,
    pub store: Store,
    pub layers: Tree<LayerRecord>,
    pub rootfs: Tree<RootfsRecord>,
    /// Serialises read-modify-write of records (owner sets, inserts, deletes).
    pub records_lock: tokio::sync::Mutex<()>,
    /// One lock per chain id being imported, so a layer is unpacked once.
    pub imports: crimson_rpc::KeyedLocks,
    /// Recent measures of writable layers.
    pub usage: crate::usage::UsageCache,
    /// Mounts root filesystems.
    pub mounts: Arc<dyn Mounts>,
}

impl State {
    /// Opens the database and creates the directories under `layout`; root filesystems are
    /// mounted through `mounts`.
    pub fn open(layout: Layout, driver: StorageDriver, mounts: Arc<dyn Mounts>) -> Result<Self> {
        layout
            .create()
            .map_err(crate::StorageError::io("creating", layout.layers()))?;
        let store = Store::open(&layout.db(), SCHEMA_VERSION, &[])?;
        Ok(Self {
            layers: store.tree(LAYERS_TREE)?,
            rootfs: store.tree(ROOTFS_TREE)?,
            store,
            layout,
            driver,
            records_lock: tokio::sync::Mutex::new(()),
            imports: crimson_rpc::KeyedLocks::default(),
            usage: Default::default(),
            mounts,
        })
    }
}
