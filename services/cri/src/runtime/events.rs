//! GetContainerEvents: crimson-sandbox's event stream as CRI events, each with the pod's
//! status and its containers' statuses (what kubelet's evented PLEG reads).

use std::pin::Pin;

use crimson_api::sandbox::v1::{ContainerEvent, ListContainersRequest, PodRef, WatchEventsRequest};
use futures::{Stream, StreamExt};
use k8s_cri::v1 as cri;
use tonic::Status;

use super::translate::{container, pod};
use crate::Backends;

/// The CRI event stream.
pub type EventStream =
    Pin<Box<dyn Stream<Item = Result<cri::ContainerEventResponse, Status>> + Send>>;

/// Subscribes to crimson-sandbox's events.
pub async fn watch(backends: std::sync::Arc<Backends>) -> Result<EventStream, Status> {
    let events = backends
        .sandbox_read(|mut client| async move { client.watch_events(WatchEventsRequest {}).await })
        .await?;
    let stream = events.then(move |event| {
        let backends = backends.clone();
        async move {
            let event = event?;
            Ok(to_cri(&backends, event).await)
        }
    });
    Ok(Box::pin(stream))
}

async fn to_cri(backends: &Backends, event: ContainerEvent) -> cri::ContainerEventResponse {
    let pod_ref = PodRef {
        pod_id: event.pod_id.clone(),
    };
    let pod_status = backends
        .sandbox_read(|mut client| {
            let pod_ref = pod_ref.clone();
            async move { client.get_pod(pod_ref).await }
        })
        .await
        .ok()
        .and_then(|p| pod::to_status(&p, false).status);
    let filter = ListContainersRequest {
        pod_id: event.pod_id.clone(),
        ..Default::default()
    };
    let statuses = backends
        .sandbox_read(|mut client| {
            let filter = filter.clone();
            async move { client.list_containers(filter).await }
        })
        .await
        .map(|l| {
            l.containers
                .iter()
                .filter_map(|c| container::to_status(c, false).status)
                .collect()
        })
        .unwrap_or_default();
    cri::ContainerEventResponse {
        container_id: event.container_id,
        container_event_type: event.kind,
        created_at: event.created_at_nanos,
        pod_sandbox_status: pod_status,
        containers_statuses: statuses,
    }
}
