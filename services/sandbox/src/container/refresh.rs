//! Learning that a container ended: conmon's exit file, read whenever a container is looked at
//! and by the reaper loop.

use crimson_api::sandbox::v1::EventKind;

use crate::{
    Result, events,
    records::{ContainerPhase, ContainerRecord},
    runtime::exit::{read_exit, reason},
    state::State,
};

/// `record`, updated (and saved) if its process ended since it was last seen running. Callers
/// race (a status poll, the reaper loop): the exit is recorded, and its event sent, once.
pub async fn refresh(state: &State, record: ContainerRecord) -> Result<ContainerRecord> {
    if !is_live(&record) {
        return Ok(record);
    }
    let Some(exit) = read_exit(
        &state.layout.exit_file(&record.id),
        &state.layout.bundle(&record.id),
    ) else {
        return Ok(record);
    };
    let _once = state.exit_locks.lock(&record.id).await;
    let mut record = match state.containers.get(&record.id)? {
        Some(stored) if is_live(&stored) => stored,
        Some(stored) => return Ok(stored),
        None => return Ok(record),
    };
    record.phase = ContainerPhase::Exited;
    record.exit_code = exit.code;
    record.reason = reason(&exit).to_string();
    if record.started_at_nanos == 0 {
        record.started_at_nanos = exit.finished_at_nanos;
    }
    // The exit file's mtime comes from the kernel's coarse clock, which may lag the start
    // time taken a moment before by up to a tick.
    record.finished_at_nanos = exit.finished_at_nanos.max(record.started_at_nanos);
    state.save_container(&record).await?;
    events::emit(state, &record, EventKind::ContainerStopped);
    if let Some(metrics) = crimson_metrics::get() {
        let pod = state
            .pods
            .get(&record.pod_id)?
            .map(|p| format!("{}/{}", p.spec.namespace, p.spec.name));
        metrics.record_container_exit(
            &pod.unwrap_or_else(|| record.pod_id.clone()),
            &record.spec.name,
            exit.code,
            record.reason == "OOMKilled",
        );
    }
    tracing::info!(container = %record.id, exit_code = exit.code, reason = %record.reason, "container exited");
    Ok(record)
}

fn is_live(record: &ContainerRecord) -> bool {
    matches!(
        record.phase,
        ContainerPhase::Created | ContainerPhase::Running
    )
}

/// The container `id`, refreshed.
pub async fn current(state: &State, id: &str) -> Result<ContainerRecord> {
    let record = state.container(id)?;
    refresh(state, record).await
}
