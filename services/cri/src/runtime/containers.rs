//! Container RPCs → crimson-sandbox.

use crimson_api::sandbox::v1::{
    Container, ContainerRef, CreateContainerRequest, StopContainerRequest,
    UpdateContainerResourcesRequest, WrittenContainer, sandbox_client::SandboxClient,
};
use crimson_rpc::{ChangeReport, PeerChannel};
use k8s_cri::v1 as cri;
use tonic::Status;

use super::translate::container;
use crate::{Backends, error::missing};

fn container_ref(id: String) -> Result<ContainerRef, Status> {
    if id.is_empty() {
        return Err(missing("container_id"));
    }
    Ok(ContainerRef { container_id: id })
}

/// The read behind ContainerStatus, cached under [`GET_CONTAINER`].
async fn get_container(
    mut client: SandboxClient<PeerChannel>,
    request: ContainerRef,
) -> Result<tonic::Response<Container>, Status> {
    client.get_container(request).await
}

/// The cache's name of [`get_container`].
const GET_CONTAINER: &str = "GetContainer";

/// Keeps the container a write to it left (`written`, with the report on the write's answer) as the
/// answer to the ContainerStatus kubelet sends next.
fn keep_status(
    backends: &Backends,
    container_id: &str,
    written: Option<WrittenContainer>,
    report: Option<ChangeReport>,
) {
    if let (
        Some(WrittenContainer {
            container: Some(container),
            read_at,
        }),
        Some(report),
    ) = (written, report)
    {
        let request = ContainerRef {
            container_id: container_id.to_string(),
        };
        backends
            .sandbox_cache
            .keep(GET_CONTAINER, &request, container, &report, read_at);
    }
}

/// CreateContainer; `image_sub_paths` are the mounts' (cri-api v0.36), in order.
pub async fn create(
    backends: &Backends,
    request: cri::CreateContainerRequest,
    image_sub_paths: &[String],
) -> Result<cri::CreateContainerResponse, Status> {
    if request.pod_sandbox_id.is_empty() {
        return Err(missing("pod_sandbox_id"));
    }
    let config = request.config.ok_or_else(|| missing("config"))?;
    let spec = container::to_container_spec(config, image_sub_paths)?;
    let request = CreateContainerRequest {
        pod_id: request.pod_sandbox_id,
        spec: Some(spec),
    };
    let (created, report) = backends
        .sandbox_cache
        .write_stamped(|mut client| {
            let request = request.clone();
            async move { client.create_container(request).await }
        })
        .await?;
    keep_status(backends, &created.container_id, created.written, report);
    Ok(cri::CreateContainerResponse {
        container_id: created.container_id,
    })
}

/// StartContainer.
pub async fn start(backends: &Backends, id: String) -> Result<cri::StartContainerResponse, Status> {
    let request = container_ref(id)?;
    let (written, report) = backends
        .sandbox_cache
        .write_stamped(|mut client| {
            let request = request.clone();
            async move { client.start_container(request).await }
        })
        .await?;
    keep_status(backends, &request.container_id, Some(written), report);
    Ok(cri::StartContainerResponse {})
}

/// StopContainer (idempotent).
pub async fn stop(
    backends: &Backends,
    request: cri::StopContainerRequest,
) -> Result<cri::StopContainerResponse, Status> {
    let request = StopContainerRequest {
        container_id: container_ref(request.container_id)?.container_id,
        timeout_seconds: request.timeout,
    };
    let (written, report) = backends
        .sandbox_cache
        .write_stamped(|mut client| {
            let request = request.clone();
            async move { client.stop_container(request).await }
        })
        .await?;
    keep_status(backends, &request.container_id, Some(written), report);
    Ok(cri::StopContainerResponse {})
}

/// RemoveContainer (idempotent).
pub async fn remove(
    backends: &Backends,
    id: String,
) -> Result<cri::RemoveContainerResponse, Status> {
    let request = container_ref(id)?;
    backends
        .sandbox(|mut client| {
            let request = request.clone();
            async move { client.remove_container(request).await }
        })
        .await?;
    Ok(cri::RemoveContainerResponse {})
}

/// ContainerStatus.
pub async fn status(
    backends: &Backends,
    request: cri::ContainerStatusRequest,
) -> Result<cri::ContainerStatusResponse, Status> {
    let reference = container_ref(request.container_id)?;
    let found = backends
        .sandbox_cache
        .read(GET_CONTAINER, reference, get_container)
        .await?;
    Ok(container::to_status(&found, request.verbose))
}

/// ListContainers.
pub async fn list(
    backends: &Backends,
    request: cri::ListContainersRequest,
) -> Result<cri::ListContainersResponse, Status> {
    let filter = container::to_list_request(request.filter);
    let listed = backends
        .sandbox_cache
        .read("ListContainers", filter, |mut client, filter| async move {
            client.list_containers(filter).await
        })
        .await?;
    let containers = &listed.containers;
    Ok(cri::ListContainersResponse {
        containers: containers.iter().map(container::to_list_entry).collect(),
    })
}

/// UpdateContainerResources.
pub async fn update_resources(
    backends: &Backends,
    request: cri::UpdateContainerResourcesRequest,
) -> Result<cri::UpdateContainerResourcesResponse, Status> {
    let request = UpdateContainerResourcesRequest {
        container_id: container_ref(request.container_id)?.container_id,
        resources: Some(container::to_resources(request.linux.unwrap_or_default())),
    };
    backends
        .sandbox(|mut client| {
            let request = request.clone();
            async move { client.update_container_resources(request).await }
        })
        .await?;
    Ok(cri::UpdateContainerResourcesResponse {})
}

/// ReopenContainerLog.
pub async fn reopen_log(
    backends: &Backends,
    id: String,
) -> Result<cri::ReopenContainerLogResponse, Status> {
    let request = container_ref(id)?;
    backends
        .sandbox(|mut client| {
            let request = request.clone();
            async move { client.reopen_container_log(request).await }
        })
        .await?;
    Ok(cri::ReopenContainerLogResponse {})
}
