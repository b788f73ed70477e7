//! The daemon's shared state: database trees, disk layout, driver and locks.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use crimson_config::StorageDriver;
use crimson_store::{Store, Tree};

use crate::{
    Result,
    layout::Layout,
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
    imports: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl State {
    /// Opens the database and creates the directories under `layout`.
    pub fn open(layout: Layout, driver: StorageDriver) -> Result<Self> {
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
            imports: Mutex::new(HashMap::new()),
        })
    }

    /// The import lock of `chain_id`.
    pub fn import_lock(&self, chain_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut imports = self.imports.lock().unwrap_or_else(|e| e.into_inner());
        imports.retain(|_, lock| Arc::strong_count(lock) > 1);
        imports.entry(chain_id.to_string()).or_default().clone()
    }
}
