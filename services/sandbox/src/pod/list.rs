//! GetPod and ListPods: records in the API's shape, with CRI's filters.

use std::collections::HashMap;

use crimson_api::sandbox::v1::{ListPodsRequest, Pod, PodState};

use crate::{
    Result,
    records::{PodPhase, PodRecord},
    state::State,
};

/// The API view of a pod.
pub fn to_proto(state: &State, record: &PodRecord) -> Pod {
    let infra_pid = record
        .infra_container_id
        .as_ref()
        .and_then(|id| state.containers.get(id).ok().flatten())
        .map_or(0, |c| c.pid);
    Pod {
        id: record.id.clone(),
        spec: Some(record.spec.clone()),
        state: if record.phase == PodPhase::Ready {
            PodState::PodReady
        } else {
            PodState::PodNotReady
        } as i32,
        created_at_nanos: record.created_at_nanos,
        ips: record.ips.clone(),
        netns_path: record.netns_path.clone().unwrap_or_default(),
        infra_pid,
        cgroup_path: record.cgroup_path.clone(),
        infra_container_id: record.infra_container_id.clone().unwrap_or_default(),
        runtime_handler: record.runtime_handler.clone(),
    }
}

/// True when every selector label is on the object.
pub fn labels_match(labels: &HashMap<String, String>, selector: &HashMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Pods matching the filters (an id filter also matches a unique prefix).
pub fn list_pods(state: &State, filter: &ListPodsRequest) -> Result<Vec<Pod>> {
    let pods: Vec<PodRecord> = state
        .pods
        .values()?
        .into_iter()
        .filter(|p| filter.include_unfinished || p.phase != PodPhase::Creating)
        .filter(|p| filter.id.is_empty() || p.id.starts_with(&filter.id))
        .filter(|p| labels_match(&p.spec.labels, &filter.label_selector))
        .collect();
    Ok(pods
        .iter()
        .map(|p| to_proto(state, p))
        .filter(|p| filter.state.is_none_or(|s| s == p.state))
        .collect())
}
