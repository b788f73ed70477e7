//! `runtime.v1.RuntimeService`: each RPC is one call into a small module; the RPCs whose
//! capability is not built yet answer UNIMPLEMENTED naming the RPC. The RPCs cri-api v0.36
//! added (or whose request k8s-cri cannot read in full) are in [`added_rpcs`].

mod added_rpcs;
mod containers;
mod cri_metrics;
mod events;
mod exec_sync;
mod pods;
mod runtime_config;
mod stats;
mod status;
mod streams;
mod translate;
mod version;

use k8s_cri::v1::{
    AttachRequest, AttachResponse, CheckpointContainerRequest, CheckpointContainerResponse,
    ContainerStatsRequest, ContainerStatsResponse, ContainerStatusRequest, ContainerStatusResponse,
    CreateContainerRequest, CreateContainerResponse, ExecRequest, ExecResponse, ExecSyncRequest,
    ExecSyncResponse, GetEventsRequest, ListContainerStatsRequest, ListContainerStatsResponse,
    ListContainersRequest, ListContainersResponse, ListMetricDescriptorsRequest,
    ListMetricDescriptorsResponse, ListPodSandboxMetricsRequest, ListPodSandboxMetricsResponse,
    ListPodSandboxRequest, ListPodSandboxResponse, ListPodSandboxStatsRequest,
    ListPodSandboxStatsResponse, PodSandboxStatsRequest, PodSandboxStatsResponse,
    PodSandboxStatusRequest, PodSandboxStatusResponse, PortForwardRequest, PortForwardResponse,
    RemoveContainerRequest, RemoveContainerResponse, RemovePodSandboxRequest,
    RemovePodSandboxResponse, ReopenContainerLogRequest, ReopenContainerLogResponse,
    RunPodSandboxRequest, RunPodSandboxResponse, RuntimeConfigRequest, RuntimeConfigResponse,
    StartContainerRequest, StartContainerResponse, StatusRequest, StatusResponse,
    StopContainerRequest, StopContainerResponse, StopPodSandboxRequest, StopPodSandboxResponse,
    UpdateContainerResourcesRequest, UpdateContainerResourcesResponse, UpdateRuntimeConfigRequest,
    UpdateRuntimeConfigResponse, VersionRequest, VersionResponse,
    runtime_service_server::RuntimeService,
};
use tonic::{Request, Response, Status};

use crate::{FrontDoor, error::not_implemented};

type RpcResult<T> = Result<Response<T>, Status>;

fn reply<T>(result: Result<T, Status>) -> RpcResult<T> {
    result.map(Response::new)
}

#[tonic::async_trait]
impl RuntimeService for FrontDoor {
    type GetContainerEventsStream = events::EventStream;

    async fn version(&self, _: Request<VersionRequest>) -> RpcResult<VersionResponse> {
        Ok(Response::new(version::version()))
    }

    async fn status(&self, request: Request<StatusRequest>) -> RpcResult<StatusResponse> {
        Ok(Response::new(
            status::status(&self.backends, request.get_ref().verbose).await,
        ))
    }

    async fn runtime_config(
        &self,
        _: Request<RuntimeConfigRequest>,
    ) -> RpcResult<RuntimeConfigResponse> {
        Ok(Response::new(runtime_config::runtime_config()))
    }

    async fn update_runtime_config(
        &self,
        request: Request<UpdateRuntimeConfigRequest>,
    ) -> RpcResult<UpdateRuntimeConfigResponse> {
        // kubelet reports the node's pod CIDR; the CNI configuration owns addressing, as in CRI-O.
        let cidr = request
            .into_inner()
            .runtime_config
            .and_then(|c| c.network_config)
            .map(|n| n.pod_cidr);
        tracing::info!(pod_cidr = ?cidr, "runtime config update (addressing stays with the CNI configuration)");
        Ok(Response::new(UpdateRuntimeConfigResponse {}))
    }

    async fn run_pod_sandbox(
        &self,
        request: Request<RunPodSandboxRequest>,
    ) -> RpcResult<RunPodSandboxResponse> {
        reply(pods::run(&self.backends, request.into_inner()).await)
    }

    async fn stop_pod_sandbox(
        &self,
        request: Request<StopPodSandboxRequest>,
    ) -> RpcResult<StopPodSandboxResponse> {
        reply(pods::stop(&self.backends, request.into_inner().pod_sandbox_id).await)
    }

    async fn remove_pod_sandbox(
        &self,
        request: Request<RemovePodSandboxRequest>,
    ) -> RpcResult<RemovePodSandboxResponse> {
        reply(pods::remove(&self.backends, request.into_inner().pod_sandbox_id).await)
    }

    async fn pod_sandbox_status(
        &self,
        request: Request<PodSandboxStatusRequest>,
    ) -> RpcResult<PodSandboxStatusResponse> {
        reply(pods::status(&self.backends, request.into_inner()).await)
    }

    async fn list_pod_sandbox(
        &self,
        request: Request<ListPodSandboxRequest>,
    ) -> RpcResult<ListPodSandboxResponse> {
        reply(pods::list(&self.backends, request.into_inner()).await)
    }

    async fn create_container(
        &self,
        request: Request<CreateContainerRequest>,
    ) -> RpcResult<CreateContainerResponse> {
        // Never routed here: CreateContainer goes to `added_rpcs`, which reads image_sub_path.
        reply(containers::create(&self.backends, request.into_inner(), &[]).await)
    }

    async fn start_container(
        &self,
        request: Request<StartContainerRequest>,
    ) -> RpcResult<StartContainerResponse> {
        reply(containers::start(&self.backends, request.into_inner().container_id).await)
    }

    async fn stop_container(
        &self,
        request: Request<StopContainerRequest>,
    ) -> RpcResult<StopContainerResponse> {
        reply(containers::stop(&self.backends, request.into_inner()).await)
    }

    async fn remove_container(
        &self,
        request: Request<RemoveContainerRequest>,
    ) -> RpcResult<RemoveContainerResponse> {
        reply(containers::remove(&self.backends, request.into_inner().container_id).await)
    }

    async fn list_containers(
        &self,
        request: Request<ListContainersRequest>,
    ) -> RpcResult<ListContainersResponse> {
        reply(containers::list(&self.backends, request.into_inner()).await)
    }

    async fn container_status(
        &self,
        request: Request<ContainerStatusRequest>,
    ) -> RpcResult<ContainerStatusResponse> {
        reply(containers::status(&self.backends, request.into_inner()).await)
    }

    async fn update_container_resources(
        &self,
        request: Request<UpdateContainerResourcesRequest>,
    ) -> RpcResult<UpdateContainerResourcesResponse> {
        reply(containers::update_resources(&self.backends, request.into_inner()).await)
    }

    async fn reopen_container_log(
        &self,
        request: Request<ReopenContainerLogRequest>,
    ) -> RpcResult<ReopenContainerLogResponse> {
        reply(containers::reopen_log(&self.backends, request.into_inner().container_id).await)
    }

    async fn container_stats(
        &self,
        request: Request<ContainerStatsRequest>,
    ) -> RpcResult<ContainerStatsResponse> {
        reply(stats::container(&self.backends, request.into_inner().container_id).await)
    }

    async fn list_container_stats(
        &self,
        request: Request<ListContainerStatsRequest>,
    ) -> RpcResult<ListContainerStatsResponse> {
        reply(stats::list_containers(&self.backends, request.into_inner()).await)
    }

    async fn pod_sandbox_stats(
        &self,
        request: Request<PodSandboxStatsRequest>,
    ) -> RpcResult<PodSandboxStatsResponse> {
        reply(stats::pod(&self.backends, request.into_inner().pod_sandbox_id).await)
    }

    async fn list_pod_sandbox_stats(
        &self,
        request: Request<ListPodSandboxStatsRequest>,
    ) -> RpcResult<ListPodSandboxStatsResponse> {
        reply(stats::list_pods(&self.backends, request.into_inner()).await)
    }

    async fn get_container_events(
        &self,
        _: Request<GetEventsRequest>,
    ) -> RpcResult<Self::GetContainerEventsStream> {
        reply(events::watch(self.backends.clone()).await)
    }

    async fn exec_sync(&self, request: Request<ExecSyncRequest>) -> RpcResult<ExecSyncResponse> {
        reply(exec_sync::exec_sync(&self.backends, request.into_inner()).await)
    }

    async fn exec(&self, request: Request<ExecRequest>) -> RpcResult<ExecResponse> {
        reply(streams::exec(&self.backends, &self.streaming, request.into_inner()).await)
    }

    async fn attach(&self, request: Request<AttachRequest>) -> RpcResult<AttachResponse> {
        reply(streams::attach(&self.backends, &self.streaming, request.into_inner()).await)
    }

    async fn port_forward(
        &self,
        request: Request<PortForwardRequest>,
    ) -> RpcResult<PortForwardResponse> {
        reply(streams::port_forward(&self.backends, &self.streaming, request.into_inner()).await)
    }

    async fn checkpoint_container(
        &self,
        _: Request<CheckpointContainerRequest>,
    ) -> RpcResult<CheckpointContainerResponse> {
        Err(not_implemented("CheckpointContainer"))
    }

    async fn list_metric_descriptors(
        &self,
        _: Request<ListMetricDescriptorsRequest>,
    ) -> RpcResult<ListMetricDescriptorsResponse> {
        Ok(Response::new(cri_metrics::descriptors()))
    }

    async fn list_pod_sandbox_metrics(
        &self,
        _: Request<ListPodSandboxMetricsRequest>,
    ) -> RpcResult<ListPodSandboxMetricsResponse> {
        let pods = stats::list_pods(&self.backends, Default::default()).await?;
        Ok(Response::new(ListPodSandboxMetricsResponse {
            pod_metrics: cri_metrics::pod_metrics(pods.stats),
        }))
    }
}
