//! The gRPC face of crimson-storage: decodes requests, calls one operation each, maps errors.

use std::{
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use crimson_api::storage::v1::{
    ClaimLayersRequest, ClaimLayersResponse, CreateRootfsRequest, FsInfoRequest, FsInfoResponse,
    GetLayerRequest, Layer, ListOwnersRequest, ListOwnersResponse, ListRootfsRequest,
    ListRootfsResponse, PutLayerChunk, ReleaseOwnerRequest, ReleaseOwnerResponse,
    RemoveRootfsRequest, RemoveRootfsResponse, Rootfs, RootfsInfo, RootfsUsageRequest,
    RootfsUsageResponse,
    storage_server::{Storage, StorageServer},
};
use crimson_config::{Config, Daemon};
use crimson_rpc::ObjectCount;
use crimson_sys::user_namespaces::IdMapping;
use tonic::{Request, Response, Status, Streaming, service::Routes};

use crate::{
    Result, StorageError, layer_claim, layer_put, layout::Layout, owner_release, reconcile,
    records::IdMappings, rootfs, state::State,
};

/// crimson-storage's service; cheap to clone.
#[derive(Clone)]
pub struct StorageService {
    state: Arc<State>,
}

impl StorageService {
    /// Opens the state under the configured state dir and reconciles it with the disk.
    pub async fn open(config: &Config) -> Result<Self> {
        let layout = Layout::new(config.state_dir(Daemon::Storage));
        let state = State::open(
            layout,
            config.storage.driver,
            Arc::new(crate::mounts::KernelMounts),
        )?;
        reconcile::reconcile(&state).await?;
        Ok(Self {
            state: Arc::new(state),
        })
    }

    /// The service over `state` as it is (no reconcile), for unit tests.
    #[cfg(test)]
    pub(crate) fn over(state: Arc<State>) -> Self {
        Self { state }
    }

    /// The daemon's writes (their count and what the recent ones touched), which the front
    /// door follows.
    pub fn changes(&self) -> crimson_store::Changes {
        self.state.store.changes().clone()
    }

    /// What its database holds, for `crimsonctl status`.
    pub fn state_counts(&self) -> crimson_rpc::StateCounts {
        let state = self.state.clone();
        Arc::new(move || {
            let layers = state.layers.values().unwrap_or_default();
            let layer_bytes = layers.iter().map(|layer| layer.size_bytes).sum();
            vec![
                ObjectCount::of("layers", layers.len() as u64).with_bytes(layer_bytes),
                ObjectCount::of("rootfs", state.rootfs.len() as u64),
            ]
        })
    }

    /// The service as tonic routes.
    pub fn into_routes(self) -> Routes {
        Routes::new(StorageServer::new(self).max_decoding_message_size(16 * 1024 * 1024))
    }
}

type RpcResult<T> = std::result::Result<Response<T>, Status>;

fn respond<T>(result: Result<T>) -> RpcResult<T> {
    result.map(Response::new).map_err(|e: StorageError| {
        tracing::warn!(error = %e, "request failed");
        Status::from(e)
    })
}

#[tonic::async_trait]
impl Storage for StorageService {
    async fn claim_layers(
        &self,
        request: Request<ClaimLayersRequest>,
    ) -> RpcResult<ClaimLayersResponse> {
        let request = request.into_inner();
        respond(
            layer_claim::claim_layers(&self.state, &request.owner, &request.chain_ids)
                .await
                .map(|missing_chain_ids| ClaimLayersResponse { missing_chain_ids }),
        )
    }

    async fn put_layer(&self, request: Request<Streaming<PutLayerChunk>>) -> RpcResult<Layer> {
        let unpacking = layer_put::put_layer(&self.state, request.into_inner());
        respond(crimson_metrics::timed("layer_unpack", unpacking).await)
    }

    async fn get_layer(&self, request: Request<GetLayerRequest>) -> RpcResult<Layer> {
        let chain_id = request.into_inner().chain_id;
        respond(
            self.state
                .layers
                .get(&chain_id)
                .map_err(StorageError::from)
                .and_then(|record| record.ok_or(StorageError::LayerNotFound(chain_id)))
                .map(|record| record.to_proto()),
        )
    }

    async fn release_owner(
        &self,
        request: Request<ReleaseOwnerRequest>,
    ) -> RpcResult<ReleaseOwnerResponse> {
        let owner = request.into_inner().owner;
        respond(
            owner_release::release_owner(&self.state, &owner)
                .await
                .map(|removed_chain_ids| ReleaseOwnerResponse { removed_chain_ids }),
        )
    }

    async fn list_owners(&self, _: Request<ListOwnersRequest>) -> RpcResult<ListOwnersResponse> {
        respond(
            self.state
                .layers
                .values()
                .map_err(StorageError::from)
                .map(|layers| {
                    let mut owners: Vec<String> =
                        layers.into_iter().flat_map(|l| l.owners).collect();
                    owners.sort();
                    owners.dedup();
                    ListOwnersResponse { owners }
                }),
        )
    }

    async fn fs_info(&self, _: Request<FsInfoRequest>) -> RpcResult<FsInfoResponse> {
        respond(
            self.state
                .layers
                .values()
                .map_err(StorageError::from)
                .map(|layers| FsInfoResponse {
                    mountpoint: self.state.layout.layers().display().to_string(),
                    used_bytes: layers.iter().map(|l| l.size_bytes).sum(),
                    inodes_used: layers.iter().map(|l| l.inodes).sum(),
                    timestamp_nanos: SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_nanos() as i64),
                }),
        )
    }

    async fn create_rootfs(&self, request: Request<CreateRootfsRequest>) -> RpcResult<Rootfs> {
        let request = request.into_inner();
        respond(
            rootfs::create_rootfs(
                &self.state,
                &request.id,
                &request.top_chain_id,
                id_mappings(&request),
            )
            .await
            .map(|record| Rootfs {
                id: record.id,
                mount_path: record.mount_path.display().to_string(),
            }),
        )
    }

    async fn remove_rootfs(
        &self,
        request: Request<RemoveRootfsRequest>,
    ) -> RpcResult<RemoveRootfsResponse> {
        let id = request.into_inner().id;
        respond(
            rootfs::remove_rootfs(&self.state, &id)
                .await
                .map(|()| RemoveRootfsResponse {}),
        )
    }

    async fn list_rootfs(&self, _: Request<ListRootfsRequest>) -> RpcResult<ListRootfsResponse> {
        respond(
            self.state
                .rootfs
                .values()
                .map_err(StorageError::from)
                .map(|records| ListRootfsResponse {
                    rootfs: records
                        .into_iter()
                        .map(|record| RootfsInfo {
                            id: record.id,
                            mount_path: record.mount_path.display().to_string(),
                            layers_top_first: record.chain_top_first,
                            id_mapped: record.id_mappings.is_some(),
                        })
                        .collect(),
                }),
        )
    }

    async fn rootfs_usage(
        &self,
        request: Request<RootfsUsageRequest>,
    ) -> RpcResult<RootfsUsageResponse> {
        let ids = request.into_inner().ids;
        respond(
            crate::usage::rootfs_usage(&self.state, ids)
                .await
                .map(|usages| RootfsUsageResponse { usages }),
        )
    }
}

/// The ID mappings of a CreateRootfs request: both or none.
fn id_mappings(request: &CreateRootfsRequest) -> Option<IdMappings> {
    let mapping = |m: &crimson_api::storage::v1::IdMapping| IdMapping {
        container_id: m.container_id,
        host_id: m.host_id,
        length: m.length,
    };
    Some(IdMappings {
        uid: mapping(request.uid_mapping.as_ref()?),
        gid: mapping(request.gid_mapping.as_ref()?),
    })
}
