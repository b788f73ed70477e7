//! The gRPC face of crimson-network.

use std::sync::Arc;

use crimson_api::network::v1::{
    CheckPodRequest, CheckPodResponse, GetPodRequest, GetStatusRequest, ListPodsRequest,
    ListPodsResponse, NetworkStatus, PodNetwork, SetUpPodRequest, TearDownPodRequest,
    TearDownPodResponse,
    network_server::{Network, NetworkServer},
};
use crimson_config::Config;
use crimson_rpc::ObjectCount;
use tonic::{Request, Response, Status, service::Routes};

use crate::{
    NetworkError, Result,
    cni_config::find_network,
    cni_exec::CniCommand,
    pod_setup::{self, to_proto},
    pod_teardown, reconcile,
    state::{Seams, State},
};

/// crimson-network's service; cheap to clone.
#[derive(Clone)]
pub struct NetworkService {
    state: Arc<State>,
}

impl NetworkService {
    /// Opens the database and undoes attachments a crash interrupted.
    pub async fn open(config: &Config) -> Result<Self> {
        let state = State::open(config, Seams::real(config))?;
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
        Arc::new(move || vec![ObjectCount::of("attachments", state.pods.len() as u64)])
    }

    /// The service as tonic routes.
    pub fn into_routes(self) -> Routes {
        Routes::new(NetworkServer::new(self))
    }
}

type RpcResult<T> = std::result::Result<Response<T>, Status>;

fn respond<T>(result: Result<T>) -> RpcResult<T> {
    result.map(Response::new).map_err(|e: NetworkError| {
        tracing::warn!(error = %e, "request failed");
        Status::from(e)
    })
}

#[tonic::async_trait]
impl Network for NetworkService {
    type PortForwardStream = crate::port_forward::ForwardStream;

    async fn port_forward(
        &self,
        request: Request<tonic::Streaming<crimson_api::network::v1::PortForwardInput>>,
    ) -> RpcResult<Self::PortForwardStream> {
        respond(crate::port_forward::port_forward(&self.state, request.into_inner()).await)
    }

    async fn get_status(&self, _: Request<GetStatusRequest>) -> RpcResult<NetworkStatus> {
        let status = match find_network(&self.state.cni_conf_dir, &self.state.cni_bin_dirs) {
            Ok(network) => NetworkStatus {
                ready: true,
                network_name: network.name,
                ..Default::default()
            },
            Err(message) => NetworkStatus {
                ready: false,
                reason: "NetworkPluginNotReady".into(),
                message: format!("Network plugin returns error: {message}"),
                ..Default::default()
            },
        };
        Ok(Response::new(status))
    }

    async fn set_up_pod(&self, request: Request<SetUpPodRequest>) -> RpcResult<PodNetwork> {
        let state = self.state.clone();
        respond(
            crimson_rpc::to_completion(async move {
                pod_setup::set_up_pod(&state, request.into_inner()).await
            })
            .await,
        )
    }

    async fn tear_down_pod(
        &self,
        request: Request<TearDownPodRequest>,
    ) -> RpcResult<TearDownPodResponse> {
        let (state, pod_id) = (self.state.clone(), request.into_inner().pod_id);
        respond(
            crimson_rpc::to_completion(async move {
                pod_teardown::tear_down_pod(&state, &pod_id).await
            })
            .await
            .map(|()| TearDownPodResponse {}),
        )
    }

    async fn check_pod(&self, request: Request<CheckPodRequest>) -> RpcResult<CheckPodResponse> {
        let pod_id = request.into_inner().pod_id;
        let result = async {
            let attachment = self
                .state
                .pods
                .get(&pod_id)?
                .ok_or_else(|| NetworkError::NotFound(pod_id.clone()))?;
            self.state
                .cni
                .run_list(
                    CniCommand::Check,
                    &attachment.conflist,
                    &attachment.cni_attachment(),
                    attachment.result.as_ref(),
                )
                .await?;
            Ok(CheckPodResponse {})
        }
        .await;
        respond(result)
    }

    async fn list_pods(&self, _: Request<ListPodsRequest>) -> RpcResult<ListPodsResponse> {
        respond(
            self.state
                .pods
                .values()
                .map_err(NetworkError::from)
                .map(|attachments| ListPodsResponse {
                    pods: attachments.iter().map(to_proto).collect(),
                }),
        )
    }

    async fn get_pod(&self, request: Request<GetPodRequest>) -> RpcResult<PodNetwork> {
        let pod_id = request.into_inner().pod_id;
        respond(
            self.state
                .pods
                .get(&pod_id)
                .map_err(NetworkError::from)
                .and_then(|found| found.ok_or_else(|| NetworkError::NotFound(pod_id)))
                .map(|attachment| to_proto(&attachment)),
        )
    }
}
