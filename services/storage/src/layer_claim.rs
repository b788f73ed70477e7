//! ClaimLayers: an owner takes hold of the layers that are already stored.

use crate::{Result, StorageError, digest::is_sha256_digest, state::State};

/// Adds `owner` to every stored layer of `chain_ids` and answers the ones not stored.
pub async fn claim_layers(state: &State, owner: &str, chain_ids: &[String]) -> Result<Vec<String>> {
    validate_owner(owner)?;
    for chain_id in chain_ids {
        validate_digest("chain id", chain_id)?;
    }
    let _records = state.records_lock.lock().await;
    let mut missing = Vec::new();
    for chain_id in chain_ids {
        match state.layers.get(chain_id)? {
            Some(mut record) => {
                if record.owners.insert(owner.to_string()) {
                    state.layers.put(chain_id, &record)?;
                }
            }
            None => missing.push(chain_id.clone()),
        }
    }
    state.store.flush().await?;
    Ok(missing)
}

/// Owners are names chosen by the owning daemon; they must be non-empty single-line strings.
pub fn validate_owner(owner: &str) -> Result<()> {
    if owner.is_empty() || owner.len() > 512 || owner.chars().any(char::is_control) {
        return Err(StorageError::InvalidArgument(format!(
            "invalid owner {owner:?}"
        )));
    }
    Ok(())
}

/// Digests must be `sha256:<64 hex>`; they name directories.
pub fn validate_digest(what: &str, digest: &str) -> Result<()> {
    if !is_sha256_digest(digest) {
        return Err(StorageError::InvalidArgument(format!(
            "{what} {digest:?} is not a sha256 digest"
        )));
    }
    Ok(())
}
