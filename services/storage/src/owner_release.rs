//! ReleaseOwner: an owner lets go of its layers; layers nobody holds are deleted.

use crate::{Result, layer_claim::validate_owner, layout::remove_dir_via_staging, state::State};

/// Drops `owner` from every layer and deletes the layers left without owners. Idempotent.
pub async fn release_owner(state: &State, owner: &str) -> Result<Vec<String>> {
    validate_owner(owner)?;
    let _records = state.records_lock.lock().await;
    let mut orphans = Vec::new();
    for (chain_id, mut record) in state.layers.entries()? {
        if !record.owners.remove(owner) {
            continue;
        }
        if record.owners.is_empty() {
            state.layers.remove(&chain_id)?;
            orphans.push(chain_id);
        } else {
            state.layers.put(&chain_id, &record)?;
        }
    }
    state.store.flush().await?;
    for chain_id in &orphans {
        let dir = state.layout.layer(chain_id);
        if let Err(e) = remove_dir_via_staging(&dir, &state.layout.staging()) {
            // The record is gone; the next start's reconcile deletes the directory.
            tracing::warn!(%chain_id, error = %e, "could not delete layer directory");
        }
    }
    if !orphans.is_empty() {
        tracing::info!(%owner, removed = orphans.len(), "deleted layers without owners");
    }
    Ok(orphans)
}
