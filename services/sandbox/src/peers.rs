//! The neighbour daemons this one relies on, behind [`Neighbours`]: their gRPC clients in the
//! daemon, a recording fake in unit tests.

use crimson_api::{
    image::v1::{GetImageRequest, Image, PullImageRequest, images_client::ImagesClient},
    network::v1::{PodNetwork, SetUpPodRequest, TearDownPodRequest, network_client::NetworkClient},
    storage::v1::{
        CreateRootfsRequest, IdMapping as StorageIdMapping, RemoveRootfsRequest,
        RootfsUsageRequest, WritableLayerUsage, storage_client::StorageClient,
    },
};
use crimson_rpc::Peer;
use crimson_sys::user_namespaces::IdMapping;
use futures::future::BoxFuture;
use tonic::Code;

use crate::{Result, SandboxError, pod::user_namespace::PodMappings};

/// What this daemon asks of crimson-image, crimson-storage and crimson-network.
pub trait Neighbours: Send + Sync {
    /// The image `reference` names, `None` when crimson-image does not have it.
    fn get_image<'a>(&'a self, reference: &'a str) -> BoxFuture<'a, Result<Option<Image>>>;
    /// Pulls `reference` (with the node's credentials).
    fn pull_image<'a>(&'a self, reference: &'a str) -> BoxFuture<'a, Result<()>>;
    /// Creates and mounts a container's root filesystem; answers its path.
    fn create_rootfs(&self, request: CreateRootfsRequest) -> BoxFuture<'_, Result<String>>;
    /// Unmounts and deletes a container's root filesystem (idempotent).
    fn remove_rootfs<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<()>>;
    /// Space used by the writable layers of containers `ids` (those crimson-storage holds).
    fn rootfs_usage(&self, ids: Vec<String>) -> BoxFuture<'_, Result<Vec<WritableLayerUsage>>>;
    /// Creates the pod's network namespace and attaches it.
    fn set_up_network(&self, request: SetUpPodRequest) -> BoxFuture<'_, Result<PodNetwork>>;
    /// Detaches the pod and removes its network namespace (idempotent).
    fn tear_down_network<'a>(&'a self, pod_id: &'a str) -> BoxFuture<'a, Result<()>>;
}

/// The neighbour daemons, over their sockets.
pub struct GrpcNeighbours {
    /// crimson-image.
    pub image: Peer,
    /// crimson-storage.
    pub storage: Peer,
    /// crimson-network.
    pub network: Peer,
}

fn peer_error(daemon: &'static str) -> impl FnOnce(tonic::Status) -> SandboxError {
    move |status| SandboxError::Peer { daemon, status }
}

impl Neighbours for GrpcNeighbours {
    fn get_image<'a>(&'a self, reference: &'a str) -> BoxFuture<'a, Result<Option<Image>>> {
        let request = GetImageRequest {
            reference: reference.to_string(),
        };
        Box::pin(async move {
            let answer = self
                .image
                .call(|channel| {
                    let request = request.clone();
                    async move { ImagesClient::new(channel).get_image(request).await }
                })
                .await;
            match answer {
                Ok(image) => Ok(Some(image)),
                Err(status) if status.code() == Code::NotFound => Ok(None),
                Err(status) => Err(peer_error("crimson-image")(status)),
            }
        })
    }

    fn pull_image<'a>(&'a self, reference: &'a str) -> BoxFuture<'a, Result<()>> {
        let request = PullImageRequest {
            reference: reference.to_string(),
            credentials: None,
        };
        Box::pin(async move {
            self.image
                .call(|channel| {
                    let request = request.clone();
                    async move { ImagesClient::new(channel).pull_image(request).await }
                })
                .await
                .map(drop)
                .map_err(peer_error("crimson-image"))
        })
    }

    fn create_rootfs(&self, request: CreateRootfsRequest) -> BoxFuture<'_, Result<String>> {
        Box::pin(async move {
            self.storage
                .call(|channel| {
                    let request = request.clone();
                    async move { StorageClient::new(channel).create_rootfs(request).await }
                })
                .await
                .map(|rootfs| rootfs.mount_path)
                .map_err(peer_error("crimson-storage"))
        })
    }

    fn remove_rootfs<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<()>> {
        let request = RemoveRootfsRequest { id: id.to_string() };
        Box::pin(async move {
            self.storage
                .call(|channel| {
                    let request = request.clone();
                    async move { StorageClient::new(channel).remove_rootfs(request).await }
                })
                .await
                .map(drop)
                .map_err(peer_error("crimson-storage"))
        })
    }

    fn rootfs_usage(&self, ids: Vec<String>) -> BoxFuture<'_, Result<Vec<WritableLayerUsage>>> {
        let request = RootfsUsageRequest { ids };
        Box::pin(async move {
            self.storage
                .call(|channel| {
                    let request = request.clone();
                    async move { StorageClient::new(channel).rootfs_usage(request).await }
                })
                .await
                .map(|response| response.usages)
                .map_err(peer_error("crimson-storage"))
        })
    }

    fn set_up_network(&self, request: SetUpPodRequest) -> BoxFuture<'_, Result<PodNetwork>> {
        Box::pin(async move {
            self.network
                .call(|channel| {
                    let request = request.clone();
                    async move { NetworkClient::new(channel).set_up_pod(request).await }
                })
                .await
                .map_err(peer_error("crimson-network"))
        })
    }

    fn tear_down_network<'a>(&'a self, pod_id: &'a str) -> BoxFuture<'a, Result<()>> {
        let request = TearDownPodRequest {
            pod_id: pod_id.to_string(),
        };
        Box::pin(async move {
            self.network
                .call(|channel| {
                    let request = request.clone();
                    async move { NetworkClient::new(channel).tear_down_pod(request).await }
                })
                .await
                .map(drop)
                .map_err(peer_error("crimson-network"))
        })
    }
}

/// The request for container `id`'s root filesystem on the image layer `top_chain_id`, seen
/// through the pod's ID `mappings` when it has a user namespace of its own.
pub fn rootfs_request(
    id: &str,
    top_chain_id: &str,
    mappings: Option<PodMappings>,
) -> CreateRootfsRequest {
    let mapping = |m: IdMapping| StorageIdMapping {
        container_id: m.container_id,
        host_id: m.host_id,
        length: m.length,
    };
    CreateRootfsRequest {
        id: id.to_string(),
        top_chain_id: top_chain_id.to_string(),
        uid_mapping: mappings.map(|m| mapping(m.uid)),
        gid_mapping: mappings.map(|m| mapping(m.gid)),
    }
}
