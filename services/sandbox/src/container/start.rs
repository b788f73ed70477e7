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
    let created = record.clone();
    // Taken before the process is released, so a quick exit never ends before it started.
    record.phase = ContainerPhase::Running;
    record.started_at_nanos = now_nanos();
    let runtime = state.runtime_of(&record)?;
    // The record is written once runc's init can no longer wait (from then on the container
    // runs or exits, which the monitor reports), and flushed while init still execs.
    let (opened, released) = tokio::sync::oneshot::channel();
    let saved_early = async {
        match released.await {
            Ok(()) => Some(state.save_container(&record).await),
            Err(_) => None,
        }
    };
    let (started, saved) = tokio::join!(runtime.start(id, record.pid, opened), saved_early);
    if let Err(error) = started {
        let running = runtime
            .state(id)
            .await
            .ok()
            .flatten()
            .is_some_and(|s| s.status == "running");
        if !running {
            if saved.is_some() {
                state.save_container(&created).await?;
            }
            return Err(error);
        }
    }
    match saved {
        Some(saved) => saved?,
        None => state.save_container(&record).await?,
    }
    events::emit(state, &record, EventKind::ContainerStarted);
    tracing::info!(container = %id, name = %record.spec.name, "container started");
    Ok(())
}
