//! ContainerStats, ListContainerStats, PodSandboxStats, ListPodSandboxStats → crimson-sandbox.

use crimson_api::sandbox::v1::{ContainerRef, ListContainersRequest, ListPodsRequest, PodRef};
use k8s_cri::v1 as cri;
use tonic::Status;

use super::translate::stats;
use crate::{Backends, error::missing};

async fn containers(
    backends: &Backends,
    filter: ListContainersRequest,
) -> Result<Vec<crimson_api::sandbox::v1::Container>, Status> {
    Ok(backends
        .sandbox_read(|mut client| {
            let filter = filter.clone();
            async move { client.list_containers(filter).await }
        })
        .await?
        .containers)
}

async fn one_container_stats(
    backends: &Backends,
    container: &crimson_api::sandbox::v1::Container,
) -> Result<cri::ContainerStats, Status> {
    let reference = ContainerRef {
        container_id: container.id.clone(),
    };
    let usage = backends
        .sandbox_read(|mut client| {
            let reference = reference.clone();
            async move { client.get_container_stats(reference).await }
        })
        .await?;
    Ok(stats::container_stats(&usage, container))
}

/// ContainerStats.
pub async fn container(
    backends: &Backends,
    id: String,
) -> Result<cri::ContainerStatsResponse, Status> {
    if id.is_empty() {
        return Err(missing("container_id"));
    }
    let found = containers(
        backends,
        ListContainersRequest {
            id: id.clone(),
            ..Default::default()
        },
    )
    .await?
    .into_iter()
    .find(|c| c.id == id)
    .ok_or_else(|| Status::not_found(format!("container {id} not found")))?;
    Ok(cri::ContainerStatsResponse {
        stats: Some(one_container_stats(backends, &found).await?),
    })
}

/// ListContainerStats.
pub async fn list_containers(
    backends: &Backends,
    request: cri::ListContainerStatsRequest,
) -> Result<cri::ListContainerStatsResponse, Status> {
    let filter = request.filter.unwrap_or_default();
    let listed = containers(
        backends,
        ListContainersRequest {
            id: filter.id,
            pod_id: filter.pod_sandbox_id,
            state: None,
            label_selector: filter.label_selector,
            include_internal: false,
        },
    )
    .await?;
    let mut out = Vec::new();
    for container in &listed {
        match one_container_stats(backends, container).await {
            Ok(stats) => out.push(stats),
            // Removed in the meantime.
            Err(status) if status.code() == tonic::Code::NotFound => {}
            Err(status) => return Err(status),
        }
    }
    Ok(cri::ListContainerStatsResponse { stats: out })
}

async fn one_pod_stats(
    backends: &Backends,
    pod: &crimson_api::sandbox::v1::Pod,
) -> Result<cri::PodSandboxStats, Status> {
    let reference = PodRef {
        pod_id: pod.id.clone(),
    };
    let usage = backends
        .sandbox_read(|mut client| {
            let reference = reference.clone();
            async move { client.get_pod_stats(reference).await }
        })
        .await?;
    let members = containers(
        backends,
        ListContainersRequest {
            pod_id: pod.id.clone(),
            ..Default::default()
        },
    )
    .await?;
    Ok(stats::pod_stats(&usage, pod, &members))
}

async fn pods(
    backends: &Backends,
    filter: ListPodsRequest,
) -> Result<Vec<crimson_api::sandbox::v1::Pod>, Status> {
    Ok(backends
        .sandbox_read(|mut client| {
            let filter = filter.clone();
            async move { client.list_pods(filter).await }
        })
        .await?
        .pods)
}

/// PodSandboxStats.
pub async fn pod(backends: &Backends, id: String) -> Result<cri::PodSandboxStatsResponse, Status> {
    if id.is_empty() {
        return Err(missing("pod_sandbox_id"));
    }
    let found = pods(
        backends,
        ListPodsRequest {
            id: id.clone(),
            ..Default::default()
        },
    )
    .await?
    .into_iter()
    .find(|p| p.id == id)
    .ok_or_else(|| Status::not_found(format!("pod sandbox {id} not found")))?;
    Ok(cri::PodSandboxStatsResponse {
        stats: Some(one_pod_stats(backends, &found).await?),
    })
}

/// ListPodSandboxStats.
pub async fn list_pods(
    backends: &Backends,
    request: cri::ListPodSandboxStatsRequest,
) -> Result<cri::ListPodSandboxStatsResponse, Status> {
    let filter = request.filter.unwrap_or_default();
    let listed = pods(
        backends,
        ListPodsRequest {
            id: filter.id,
            state: None,
            label_selector: filter.label_selector,
            include_unfinished: false,
        },
    )
    .await?;
    let mut out = Vec::new();
    for pod in &listed {
        match one_pod_stats(backends, pod).await {
            Ok(stats) => out.push(stats),
            Err(status) if status.code() == tonic::Code::NotFound => {}
            Err(status) => return Err(status),
        }
    }
    Ok(cri::ListPodSandboxStatsResponse { stats: out })
}
