//! Container lifecycle events for GetContainerEvents.

use crimson_api::sandbox::v1::{ContainerEvent, EventKind};

use crate::{records::ContainerRecord, runtime::exit::now_nanos, state::State};

/// Publishes an event about a kubelet container (infra processes are not reported).
pub fn emit(state: &State, record: &ContainerRecord, kind: EventKind) {
    if record.infra {
        return;
    }
    // No subscriber is fine: events are for whoever watches now.
    let _ = state.events.send(ContainerEvent {
        container_id: record.id.clone(),
        kind: kind as i32,
        created_at_nanos: now_nanos(),
        pod_id: record.pod_id.clone(),
    });
}
