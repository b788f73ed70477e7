//! Start-up reconciliation: creations a crash interrupted are undone; containers that ended
//! while this daemon was down are recorded as exited.

use crate::{
    Result,
    container::{create::discard, refresh::refresh},
    pod::remove::remove_record,
    records::{ContainerPhase, PodPhase},
    state::State,
};

/// Brings the records in line with the machine.
pub async fn reconcile(state: &State) -> Result<()> {
    let expired = state.parked.prune_expired()?;
    if expired > 0 {
        tracing::info!(expired, "dropped parked creation results nobody claimed");
    }
    for record in state.containers.values()? {
        if record.phase == ContainerPhase::Creating {
            tracing::info!(container = %record.id, "removing a container whose creation was interrupted");
            if let Err(e) = discard(state, &record).await {
                tracing::warn!(container = %record.id, error = %e, "could not remove it");
            }
        } else {
            refresh(state, record).await?;
        }
    }
    for record in state.pods.values()? {
        if record.phase == PodPhase::Creating {
            tracing::info!(pod = %record.id, "removing a pod whose creation was interrupted");
            if let Err(e) = remove_record(state, &record).await {
                tracing::warn!(pod = %record.id, error = %e, "could not remove it");
            }
        }
    }
    Ok(())
}
