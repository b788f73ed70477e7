//! CreateRootfs and RemoveRootfs: a container's writable root filesystem on an image's layers.

use std::time::Duration;

use crimson_config::StorageDriver;

use crate::{
    Result, StorageError, driver,
    layer_claim::validate_digest,
    layout::remove_dir_via_staging,
    owner_release::release_owner,
    records::{IdMappings, RootfsRecord},
    state::State,
};

/// How long mounting, copying (vfs), unmounting or measuring one root filesystem may take.
pub(crate) const FS_TIMEOUT: Duration = Duration::from_secs(300);

/// Mounts (or, vfs, copies) the root filesystem of `record` off the async workers.
async fn make(state: &State, record: &RootfsRecord) -> Result<()> {
    let (driver, layout, record) = (state.driver, state.layout.clone(), record.clone());
    let mounts = state.mounts.clone();
    crimson_sys::blocking("making the root filesystem", FS_TIMEOUT, move || {
        driver::make_rootfs(
            driver,
            mounts.as_ref(),
            &layout,
            &record.id,
            &record.chain_top_first,
            record.id_mappings.as_ref(),
        )
        .map(drop)
    })
    .await
}

/// Creates and mounts the root filesystem `id` on the chain ending at `top_chain_id` (empty:
/// no layers), seen through `id_mappings` for a container in a user namespace of its own.
/// Idempotent: an existing one is (re)mounted and returned.
pub async fn create_rootfs(
    state: &State,
    id: &str,
    top_chain_id: &str,
    id_mappings: Option<IdMappings>,
) -> Result<RootfsRecord> {
    validate_id(id)?;
    if !top_chain_id.is_empty() {
        validate_digest("top chain id", top_chain_id)?;
    }
    if let Some(mappings) = &id_mappings {
        validate_mappings(state.driver, mappings)?;
    }
    let _records = state.records_lock.lock().await;
    if let Some(record) = state.rootfs.get(id)? {
        if record.top_chain_id != top_chain_id || record.id_mappings != id_mappings {
            return Err(StorageError::InvalidArgument(format!(
                "rootfs {id} exists on layer {} with ID mappings {:?}, not {top_chain_id} with {id_mappings:?}",
                record.top_chain_id, record.id_mappings
            )));
        }
        make(state, &record).await?;
        return Ok(record);
    }
    let chain_top_first = chain_of(state, top_chain_id)?;
    let owner = RootfsRecord::owner(id);
    for chain_id in &chain_top_first {
        if let Some(mut layer) = state.layers.get(chain_id)? {
            layer.owners.insert(owner.clone());
            state.layers.put(chain_id, &layer)?;
        }
    }
    // Recorded before the mount; the record's flush runs beside it. A crash before the record
    // is on disk leaves a directory without one, which reconcile unmounts and deletes; one after
    // leaves a record that reconcile mounts again (or RemoveRootfs removes).
    let record = RootfsRecord {
        id: id.to_string(),
        top_chain_id: top_chain_id.to_string(),
        mount_path: state.layout.rootfs(id).join("merged"),
        chain_top_first,
        id_mappings,
    };
    state.rootfs.put(id, &record)?;
    let (flushed, made) = tokio::join!(state.store.flush(), make(state, &record));
    flushed?;
    made?;
    tracing::info!(%id, top = %top_chain_id, "rootfs created");
    Ok(record)
}

/// Unmounts and deletes the root filesystem `id` and releases its layers. Idempotent.
pub async fn remove_rootfs(state: &State, id: &str) -> Result<()> {
    validate_id(id)?;
    {
        let _records = state.records_lock.lock().await;
        let (dir, staging) = (state.layout.rootfs(id), state.layout.staging());
        let mounts = state.mounts.clone();
        crimson_sys::blocking("removing the root filesystem", FS_TIMEOUT, move || {
            mounts.unmount(&dir.join("merged"))?;
            remove_dir_via_staging(&dir, &staging).map_err(StorageError::io("removing", &dir))
        })
        .await?;
        state.rootfs.remove(id)?;
        state.store.flush().await?;
    }
    release_owner(state, &RootfsRecord::owner(id)).await?;
    Ok(())
}

/// The chain ending at `top_chain_id`, top first; every layer must be stored.
fn chain_of(state: &State, top_chain_id: &str) -> Result<Vec<String>> {
    let mut chain = Vec::new();
    let mut next = top_chain_id.to_string();
    while !next.is_empty() {
        let layer = state
            .layers
            .get(&next)?
            .ok_or_else(|| StorageError::LayerNotFound(next.clone()))?;
        chain.push(next);
        next = layer.parent_chain_id;
    }
    Ok(chain)
}

/// ID mappings must map the container's root (ID 0) and need the overlay driver (vfs copies
/// could only be chowned).
fn validate_mappings(driver: StorageDriver, mappings: &IdMappings) -> Result<()> {
    for (what, mapping) in [("uid", &mappings.uid), ("gid", &mappings.gid)] {
        if mapping.container_id != 0 || mapping.length == 0 {
            return Err(StorageError::InvalidArgument(format!(
                "the {what} mapping must map container ID 0: {mapping:?}"
            )));
        }
        if mapping.host_id.checked_add(mapping.length).is_none() {
            return Err(StorageError::InvalidArgument(format!(
                "the {what} mapping passes the last ID: {mapping:?}"
            )));
        }
    }
    if driver != StorageDriver::Overlay {
        return Err(StorageError::InvalidArgument(
            "root filesystems for user namespaces need the overlay driver".into(),
        ));
    }
    Ok(())
}

/// Root filesystem ids name directories: letters, digits, `-`, `_`, `.`; no leading dot.
pub(crate) fn validate_id(id: &str) -> Result<()> {
    if crimson_sys::is_safe_file_name(id) {
        Ok(())
    } else {
        Err(StorageError::InvalidArgument(format!(
            "invalid rootfs id {id:?}"
        )))
    }
}
