//! StartContainer: the OCI runtime's `start` on a created container.

use crimson_api::sandbox::v1::EventKind;

use super::refresh::current;
use crate::{
    Result, SandboxError, events, records::ContainerPhase, runtime::exit::now_nanos, state::State,
};

/// Starts container `id`, which must be created and not yet started.
pub async fn start_container(state: &State, id: &str) -> Result<()> {
    let _container = state.container_locks.lock(id).await;
    let mut record = current(state, id).await?;
    if record.phase != ContainerPhase::Created {
        return Err(SandboxError::FailedPrecondition(format!(
            "container {id} is {:?}, not created",
            record.phase
        )));
    }
    // Taken before the process is released, so a quick exit never ends before it started.
    let started_at = now_nanos();
    state.runtime_of(&record).start(id).await?;
    record.phase = ContainerPhase::Running;
    record.started_at_nanos = started_at;
    state.save_container(&record).await?;
    events::emit(state, &record, EventKind::ContainerStarted);
    tracing::info!(container = %id, name = %record.spec.name, "container started");
    Ok(())
}
