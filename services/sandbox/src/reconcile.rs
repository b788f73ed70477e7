//! Start-up reconciliation: creations a crash interrupted are undone; containers that ended
//! while this daemon was down are recorded as exited.

use crate::{
    Result,
    container::{create::discard, refresh::refresh},
    pod::remove::remove_record,
    records::{ContainerPhase, ContainerRecord, PodPhase},
    state::State,
};

/// Attempts at removing an interrupted creation, and the pause between them.
const DISCARD_ATTEMPTS: u32 = 5;
const DISCARD_PAUSE: std::time::Duration = std::time::Duration::from_millis(200);

/// Removes a container whose creation a kill interrupted. The killed process's calls to its
/// peers may still be finishing (crimson-storage completes a CreateRootfs its caller left), so
/// a failed removal is tried again a few times; one that still fails leaves the record (its
/// kubelet name answers ALREADY_EXISTS until a later start removes it).
async fn discard_interrupted(state: &State, record: &ContainerRecord) {
    for attempt in 1..=DISCARD_ATTEMPTS {
        match discard(state, record).await {
            Ok(()) => return,
            Err(e) if attempt == DISCARD_ATTEMPTS => {
                tracing::warn!(container = %record.id, error = %e, "could not remove it");
            }
            Err(e) => {
                tracing::info!(container = %record.id, error = %e, attempt, "removal failed; trying again");
                tokio::time::sleep(DISCARD_PAUSE).await;
            }
        }
    }
}

/// Brings the records in line with the machine.
pub async fn reconcile(state: &State) -> Result<()> {
    let expired = state.parked.prune_expired()?;
    if expired > 0 {
        tracing::info!(expired, "dropped parked creation results nobody claimed");
    }
    crimson_metrics::reconciled("parked_results", "expired", expired as u64);
    let (mut rolled_back, mut exited) = (0, 0);
    for record in state.containers.values()? {
        if record.phase == ContainerPhase::Creating {
            tracing::info!(container = %record.id, "removing a container whose creation was interrupted");
            rolled_back += 1;
            discard_interrupted(state, &record).await;
        } else {
            let was = record.phase;
            if was != refresh(state, record).await?.phase {
                exited += 1;
            }
        }
    }
    crimson_metrics::reconciled("containers", "rolled_back", rolled_back);
    crimson_metrics::reconciled("containers", "exited_while_down", exited);
    let mut rolled_back = 0;
    for record in state.pods.values()? {
        if record.phase == PodPhase::Creating {
            tracing::info!(pod = %record.id, "removing a pod whose creation was interrupted");
            rolled_back += 1;
            if let Err(e) = remove_record(state, &record).await {
                tracing::warn!(pod = %record.id, error = %e, "could not remove it");
            }
        }
    }
    crimson_metrics::reconciled("pods", "rolled_back", rolled_back);
    Ok(())
}
