//! Keeping storage's layer owners in line with the image records: an image removed while
//! storage was down, or a pull interrupted by a crash, leaves layers held by an image id this
//! daemon no longer knows. Reconciliation releases them.

use std::{sync::Arc, time::Duration};

use crate::{Result, image_remove::release_layers, state::State};

/// Image owners are image ids; other owners (root filesystems) belong to other daemons.
const IMAGE_OWNER_PREFIX: &str = "sha256:";

/// Releases every image owner storage knows that is neither recorded nor being pulled.
pub async fn reconcile_owners(state: &State) -> Result<usize> {
    let owners = state.storage.list_owners().await?;
    let mut released = 0;
    for owner in owners {
        if owner.starts_with(IMAGE_OWNER_PREFIX)
            && state.records.get(&owner)?.is_none()
            && !state.is_pulling(&owner)
        {
            tracing::info!(%owner, "releasing layers of an image that is not recorded");
            release_layers(state, &owner).await?;
            released += 1;
            crimson_metrics::reconciled("image_owners", "released", 1);
        }
    }
    Ok(released)
}

/// Runs [`reconcile_owners`] now and then every `period`, logging failures (storage may be
/// down for a while).
pub fn spawn_periodic(state: Arc<State>, period: Duration) {
    tokio::spawn(async move {
        loop {
            if let Err(e) = reconcile_owners(&state).await {
                tracing::debug!(error = %e, "owner reconciliation postponed");
            }
            tokio::time::sleep(period).await;
        }
    });
}
