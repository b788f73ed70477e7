//! GetContainer and ListContainers.

use crimson_api::sandbox::v1::{Container, ContainerState, ListContainersRequest};

use super::refresh::refresh;
use crate::{
    Result,
    pod::list::labels_match,
    records::{ContainerPhase, ContainerRecord},
    state::State,
};

/// The API view of a container.
pub fn to_proto(record: &ContainerRecord) -> Container {
    let state = match record.phase {
        ContainerPhase::Created => ContainerState::Created,
        ContainerPhase::Running => ContainerState::Running,
        ContainerPhase::Exited => ContainerState::Exited,
        ContainerPhase::Creating | ContainerPhase::Removing => ContainerState::Unknown,
    };
    Container {
        id: record.id.clone(),
        pod_id: record.pod_id.clone(),
        spec: Some(record.spec.clone()),
        state: state as i32,
        created_at_nanos: record.created_at_nanos,
        started_at_nanos: record.started_at_nanos,
        finished_at_nanos: record.finished_at_nanos,
        exit_code: record.exit_code,
        reason: record.reason.clone(),
        message: record.message.clone(),
        image_id: record.image_id.clone(),
        image_ref: record.image_ref.clone(),
        log_path: record.log_path.clone(),
        pid: record.pid,
        cgroup_path: record.cgroup_path.clone(),
        bundle_path: String::new(),
        uid: record.uid,
        gid: record.gid,
        groups: record.groups.clone(),
        conmon_pid: record.conmon_pid,
        runtime_handler: record.runtime_handler.clone(),
    }
}

/// Kubelet's containers (not infra processes, unless asked) matching the filters, refreshed.
pub async fn list_containers(
    state: &State,
    filter: &ListContainersRequest,
) -> Result<Vec<Container>> {
    let mut out = Vec::new();
    for record in state.containers.values()? {
        let internal = record.infra
            || matches!(
                record.phase,
                ContainerPhase::Creating | ContainerPhase::Removing
            );
        if (internal && !filter.include_internal)
            || !(filter.id.is_empty() || record.id.starts_with(&filter.id))
            || !(filter.pod_id.is_empty() || record.pod_id.starts_with(&filter.pod_id))
            || !labels_match(&record.spec.labels, &filter.label_selector)
        {
            continue;
        }
        let container = to_proto(&refresh(state, record).await?);
        if filter.state.is_none_or(|s| s == container.state) {
            out.push(container);
        }
    }
    Ok(out)
}
