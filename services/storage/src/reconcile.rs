//! Start-up reconciliation of the database with the disk, after a crash or a kill.

use std::collections::HashSet;

use crate::{Result, driver, layout::remove_dir_via_staging, state::State};

/// Deletes half-done imports and directories without records, drops records whose directory
/// is gone, and mounts every recorded root filesystem again.
pub async fn reconcile(state: &State) -> Result<()> {
    let staging = state.layout.staging();
    for entry in std::fs::read_dir(&staging).into_iter().flatten().flatten() {
        let _ = std::fs::remove_dir_all(entry.path());
    }

    let _records = state.records_lock.lock().await;
    let mut known = HashSet::new();
    for (chain_id, _) in state.layers.entries()? {
        if state.layout.layer_diff(&chain_id).is_dir() {
            known.insert(state.layout.layer(&chain_id));
        } else {
            tracing::warn!(%chain_id, "layer directory missing, dropping its record");
            state.layers.remove(&chain_id)?;
            crimson_metrics::reconciled("layers", "record_dropped", 1);
        }
    }
    for entry in std::fs::read_dir(state.layout.layers())
        .into_iter()
        .flatten()
        .flatten()
    {
        if !known.contains(&entry.path()) {
            tracing::info!(dir = %entry.path().display(), "deleting layer directory without a record");
            let _ = remove_dir_via_staging(&entry.path(), &staging);
            crimson_metrics::reconciled("layers", "directory_deleted", 1);
        }
    }

    let mut rootfs_dirs = HashSet::new();
    for (id, record) in state.rootfs.entries()? {
        rootfs_dirs.insert(state.layout.rootfs(&id));
        if let Err(e) = driver::make_rootfs(
            state.driver,
            state.mounts.as_ref(),
            &state.layout,
            &id,
            &record.chain_top_first,
            record.id_mappings.as_ref(),
        ) {
            tracing::warn!(%id, error = %e, "could not restore rootfs");
            crimson_metrics::reconciled("rootfs", "restore_failed", 1);
        } else {
            crimson_metrics::reconciled("rootfs", "remounted", 1);
        }
    }
    for entry in std::fs::read_dir(state.layout.rootfs_root())
        .into_iter()
        .flatten()
        .flatten()
    {
        if !rootfs_dirs.contains(&entry.path()) {
            let _ = state.mounts.unmount(&entry.path().join("merged"));
            let _ = remove_dir_via_staging(&entry.path(), &staging);
            crimson_metrics::reconciled("rootfs", "directory_deleted", 1);
        }
    }
    state.store.flush().await?;
    Ok(())
}
