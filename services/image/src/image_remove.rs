//! RemoveImage: forget the image and all its names, then let storage drop its layers.

use crate::{Result, image_lookup::find_image, state::State};

/// Removes the image `reference` designates with every tag and digest name it has (as
/// containerd and CRI-O do for kubelet). Succeeds when there is no such image.
pub async fn remove_image(state: &State, reference: &str) -> Result<()> {
    let Some(record) = find_image(state, reference)? else {
        return Ok(());
    };
    state.records.remove(&record.id).await?;
    tracing::info!(id = %record.id, tags = ?record.repo_tags, "image removed");
    // If storage is down now, the periodic reconcile releases the layers later.
    release_layers(state, &record.id).await
}

/// Tells storage that `image_id` no longer holds layers.
pub async fn release_layers(state: &State, image_id: &str) -> Result<()> {
    state.storage.release_owner(image_id).await
}
