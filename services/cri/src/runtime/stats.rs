//! ContainerStats, ListContainerStats, PodSandboxStats, ListPodSandboxStats → crimson-sandbox,
//! one call each (the sandbox measures every listed item in one pass).

use crimson_api::sandbox::v1::{
    ListContainerStatsResponse, ListContainersRequest, ListPodStatsResponse, ListPodsRequest,
};
use k8s_cri::v1 as cri;
use tonic::Status;

use super::translate::stats;
use crate::{Backends, error::missing};

async fn container_stats(
    backends: &Backends,
    filter: ListContainersRequest,
) -> Result<Vec<cri::ContainerStats>, Status> {
    let listed: ListContainerStatsResponse = backends
        .sandbox_read(|mut client| {
            let filter = filter.clone();
            async move { client.list_container_stats(filter).await }
        })
        .await?;
    Ok(listed
        .containers
        .iter()
        .filter_map(|entry| {
            Some(stats::container_stats(
                entry.stats.as_ref()?,
                entry.container.as_ref()?,
            ))
        })
        .collect())
}

async fn pod_stats(
    backends: &Backends,
    filter: ListPodsRequest,
) -> Result<Vec<cri::PodSandboxStats>, Status> {
    let listed: ListPodStatsResponse = backends
        .sandbox_read(|mut client| {
            let filter = filter.clone();
            async move { client.list_pod_stats(filter).await }
        })
        .await?;
    Ok(listed
        .pods
        .iter()
        .filter_map(|entry| {
            Some(stats::pod_stats(
                entry.stats.as_ref()?,
                entry.pod.as_ref()?,
                &entry.containers,
            ))
        })
        .collect())
}

/// ContainerStats.
pub async fn container(
    backends: &Backends,
    id: String,
) -> Result<cri::ContainerStatsResponse, Status> {
    if id.is_empty() {
        return Err(missing("container_id"));
    }
    let filter = ListContainersRequest {
        id: id.clone(),
        ..Default::default()
    };
    let found = container_stats(backends, filter)
        .await?
        .into_iter()
        .find(|s| s.attributes.as_ref().is_some_and(|a| a.id == id))
        .ok_or_else(|| Status::not_found(format!("container {id} not found")))?;
    Ok(cri::ContainerStatsResponse { stats: Some(found) })
}

/// ListContainerStats.
pub async fn list_containers(
    backends: &Backends,
    request: cri::ListContainerStatsRequest,
) -> Result<cri::ListContainerStatsResponse, Status> {
    let filter = request.filter.unwrap_or_default();
    let filter = ListContainersRequest {
        id: filter.id,
        pod_id: filter.pod_sandbox_id,
        state: None,
        label_selector: filter.label_selector,
        include_internal: false,
    };
    Ok(cri::ListContainerStatsResponse {
        stats: container_stats(backends, filter).await?,
    })
}

/// PodSandboxStats.
pub async fn pod(backends: &Backends, id: String) -> Result<cri::PodSandboxStatsResponse, Status> {
    if id.is_empty() {
        return Err(missing("pod_sandbox_id"));
    }
    let filter = ListPodsRequest {
        id: id.clone(),
        ..Default::default()
    };
    let found = pod_stats(backends, filter)
        .await?
        .into_iter()
        .find(|s| s.attributes.as_ref().is_some_and(|a| a.id == id))
        .ok_or_else(|| Status::not_found(format!("pod sandbox {id} not found")))?;
    Ok(cri::PodSandboxStatsResponse { stats: Some(found) })
}

/// ListPodSandboxStats.
pub async fn list_pods(
    backends: &Backends,
    request: cri::ListPodSandboxStatsRequest,
) -> Result<cri::ListPodSandboxStatsResponse, Status> {
    let filter = request.filter.unwrap_or_default();
    let filter = ListPodsRequest {
        id: filter.id,
        state: None,
        label_selector: filter.label_selector,
        include_unfinished: false,
    };
    Ok(cri::ListPodSandboxStatsResponse {
        stats: pod_stats(backends, filter).await?,
    })
}
