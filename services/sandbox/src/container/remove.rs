//! RemoveContainer: kill it if it runs, then remove runtime state, root filesystem, bundle and
//! record. The log file stays (kubelet owns logs).

use crimson_api::sandbox::v1::EventKind;

use super::{create::discard, stop::stop_container};
use crate::{Result, events, state::State};

/// Removes container `id`; an unknown container succeeds.
pub async fn remove_container(state: &State, id: &str) -> Result<()> {
    if state.containers.get(id)?.is_none() {
        return Ok(());
    }
    stop_container(state, id, 0).await?;
    let _container = state.container_locks.lock(id).await;
    let Some(record) = state.containers.get(id)? else {
        return Ok(());
    };
    state.parked.forget(id)?;
    discard(state, &record).await?;
    events::emit(state, &record, EventKind::ContainerDeleted);
    tracing::info!(container = %id, "container removed");
    Ok(())
}
