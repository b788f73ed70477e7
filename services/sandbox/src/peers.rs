//! Calls to the neighbour daemons this one relies on.

use crimson_api::{
    image::v1::{GetImageRequest, Image, PullImageRequest, images_client::ImagesClient},
    network::v1::{PodNetwork, SetUpPodRequest, TearDownPodRequest, network_client::NetworkClient},
    storage::v1::{
        CreateRootfsRequest, IdMapping as StorageIdMapping, RemoveRootfsRequest,
        RootfsUsageRequest, WritableLayerUsage, storage_client::StorageClient,
    },
};
use crimson_sys::user_namespaces::IdMapping;
use tonic::Code;

use crate::{Result, SandboxError, pod::user_namespace::PodMappings, state::State};

fn peer_error(daemon: &'static str) -> impl FnOnce(tonic::Status) -> SandboxError {
    move |status| SandboxError::Peer { daemon, status }
}

/// The image `reference` names, `None` when crimson-image does not have it.
pub async fn get_image(state: &State, reference: &str) -> Result<Option<Image>> {
    let request = GetImageRequest {
        reference: reference.to_string(),
    };
    match state
        .image
        .call(|channel| {
            let request = request.clone();
            async move { ImagesClient::new(channel).get_image(request).await }
        })
        .await
    {
        Ok(image) => Ok(Some(image)),
        Err(status) if status.code() == Code::NotFound => Ok(None),
        Err(status) => Err(peer_error("crimson-image")(status)),
    }
}

/// Pulls `reference` (with the node's credentials).
pub async fn pull_image(state: &State, reference: &str) -> Result<()> {
    let request = PullImageRequest {
        reference: reference.to_string(),
        credentials: None,
    };
    state
        .image
        .call(|channel| {
            let request = request.clone();
            async move { ImagesClient::new(channel).pull_image(request).await }
        })
        .await
        .map(drop)
        .map_err(peer_error("crimson-image"))
}

/// Creates and mounts the container's root filesystem (seen through the pod's ID `mappings`
/// when it has a user namespace of its own); answers its path.
pub async fn create_rootfs(
    state: &State,
    id: &str,
    top_chain_id: &str,
    mappings: Option<PodMappings>,
) -> Result<String> {
    let mapping = |m: IdMapping| StorageIdMapping {
        container_id: m.container_id,
        host_id: m.host_id,
        length: m.length,
    };
    let request = CreateRootfsRequest {
        id: id.to_string(),
        top_chain_id: top_chain_id.to_string(),
        uid_mapping: mappings.map(|m| mapping(m.uid)),
        gid_mapping: mappings.map(|m| mapping(m.gid)),
    };
    state
        .storage
        .call(|channel| {
            let request = request.clone();
            async move { StorageClient::new(channel).create_rootfs(request).await }
        })
        .await
        .map(|rootfs| rootfs.mount_path)
        .map_err(peer_error("crimson-storage"))
}

/// Unmounts and deletes the container's root filesystem (idempotent).
pub async fn remove_rootfs(state: &State, id: &str) -> Result<()> {
    let request = RemoveRootfsRequest { id: id.to_string() };
    state
        .storage
        .call(|channel| {
            let request = request.clone();
            async move { StorageClient::new(channel).remove_rootfs(request).await }
        })
        .await
        .map(drop)
        .map_err(peer_error("crimson-storage"))
}

/// Space used by the writable layers of containers `ids` (those crimson-storage holds).
pub async fn rootfs_usage(state: &State, ids: Vec<String>) -> Result<Vec<WritableLayerUsage>> {
    let request = RootfsUsageRequest { ids };
    state
        .storage
        .call(|channel| {
            let request = request.clone();
            async move { StorageClient::new(channel).rootfs_usage(request).await }
        })
        .await
        .map(|response| response.usages)
        .map_err(peer_error("crimson-storage"))
}

/// Creates the pod's network namespace and attaches it.
pub async fn set_up_network(state: &State, request: SetUpPodRequest) -> Result<PodNetwork> {
    state
        .network
        .call(|channel| {
            let request = request.clone();
            async move { NetworkClient::new(channel).set_up_pod(request).await }
        })
        .await
        .map_err(peer_error("crimson-network"))
}

/// Detaches the pod and removes its network namespace (idempotent).
pub async fn tear_down_network(state: &State, pod_id: &str) -> Result<()> {
    let request = TearDownPodRequest {
        pod_id: pod_id.to_string(),
    };
    state
        .network
        .call(|channel| {
            let request = request.clone();
            async move { NetworkClient::new(channel).tear_down_pod(request).await }
        })
        .await
        .map(drop)
        .map_err(peer_error("crimson-network"))
}
