//! StartContainer: the OCI runtime's `start` on a created container.

use crimson_api::sandbox::v1::EventKind;

use super::refresh::current;
use crate::{
    Result, SandboxError, events, records::ContainerPhase, runtime::exit::now_nanos, state::State,
};

/// Starts container `id`, which must be created. Starting a running container succeeds: it is
/// the retry of a start whose answer was lost (the front door repeats a call whose connection
/// broke), as is a start the runtime already did before this daemon could record it.
pub async fn start_container(state: &State, id: &str) -> Result<()> {
    let _container = state.container_locks.lock(id).await;
    let mut record = current(state, id).await?;
    match record.phase {
        ContainerPhase::Created => {}
        ContainerPhase::Running => return Ok(()),
        phase => {
            return Err(SandboxError::FailedPrecondition(format!(
                "container {id} is {phase:?}, not created"
            )));
        }
    }
    // Taken before the process is released, so a quick exit never ends before it started.
    let started_at = now_nanos();
    let runtime = state.runtime_of(&record)?;
    if let Err(error) = runtime.start(id, record.pid).await {
        let running = runtime
            .state(id)
            .await
            .ok()
            .flatten()
            .is_some_and(|s| s.status == "running");
        if !running {
            return Err(error);
        }
    }
    record.phase = ContainerPhase::Running;
    record.started_at_nanos = started_at;
    state.save_container(&record).await?;
    events::emit(state, &record, EventKind::ContainerStarted);
    tracing::info!(container = %id, name = %record.spec.name, "container started");
    Ok(())
}
