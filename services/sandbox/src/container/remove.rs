//! RemoveContainer: kill it if it runs, then remove runtime state, root filesystem, bundle and
//! record. The log file stays (kubelet owns logs).
//!
//! The call answers once the container is durably marked `Removing` (from then on nobody sees
//! it, and its kubelet name is free); the runtime state, root filesystem and bundle go in the
//! background. A removal that fails there, or that a restart interrupted, is taken up again by
//! the reaper's sweep; removing the pod finishes its containers' removals before it goes on.

use std::sync::Arc;

use crimson_api::sandbox::v1::EventKind;

use super::{create::discard, stop::stop_container};
use crate::{Result, events, records::ContainerPhase, state::State};

/// Removes container `id`; an unknown container succeeds.
pub async fn remove_container(state: &Arc<State>, id: &str) -> Result<()> {
    if state.containers.get(id)?.is_none() {
        return Ok(());
    }
    stop_container(state, id, 0).await?;
    {
        let _container = state.container_locks.lock(id).await;
        let Some(mut record) = state.containers.get(id)? else {
            return Ok(());
        };
        if record.phase != ContainerPhase::Removing {
            record.phase = ContainerPhase::Removing;
            state.parked.forget(id)?;
            state.save_container(&record).await?;
            events::emit(state, &record, EventKind::ContainerDeleted);
        }
    }
    finish_in_background(state, id);
    Ok(())
}

/// Removes container `id` and everything it holds before answering (for pod removal, whose
/// cgroup and namespaces go only once its containers are gone).
pub async fn remove_now(state: &State, id: &str) -> Result<()> {
    stop_container(state, id, 0).await?;
    let _container = state.container_locks.lock(id).await;
    let Some(record) = state.containers.get(id)? else {
        return Ok(());
    };
    state.parked.forget(id)?;
    discard(state, &record).await?;
    if record.phase != ContainerPhase::Removing {
        events::emit(state, &record, EventKind::ContainerDeleted);
    }
    tracing::info!(container = %id, "container removed");
    Ok(())
}

/// Finishes the removal of container `id` in a task of its own, unless one already does.
pub fn finish_in_background(state: &Arc<State>, id: &str) {
    let mut removals = state.removals.lock().unwrap_or_else(|e| e.into_inner());
    if !removals.insert(id.to_string()) {
        return;
    }
    let (state, id) = (state.clone(), id.to_string());
    tokio::spawn(async move {
        if let Err(e) = finish(&state, &id).await {
            tracing::warn!(container = %id, error = %e, "removal failed; the reaper tries again");
        }
        state
            .removals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    });
}

/// Removes what a `Removing` container still holds, then its record.
async fn finish(state: &State, id: &str) -> Result<()> {
    let _container = state.container_locks.lock(id).await;
    match state.containers.get(id)? {
        Some(record) if record.phase == ContainerPhase::Removing => {
            discard(state, &record).await?;
            tracing::info!(container = %id, "container removed");
            Ok(())
        }
        _ => Ok(()),
    }
}
