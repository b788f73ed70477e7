//! `runtime.v1.RuntimeService`: one small function per implemented RPC; the rest answer
//! UNIMPLEMENTED naming the RPC until their capability lands.

mod runtime_config;
mod status;
mod version;

use std::pin::Pin;

use futures::Stream;
use k8s_cri::v1::{
    AttachRequest, AttachResponse, CheckpointContainerRequest, CheckpointContainerResponse,
    ContainerEventResponse, ContainerStatsRequest, ContainerStatsResponse, ContainerStatusRequest,
    ContainerStatusResponse, CreateContainerRequest, CreateContainerResponse, ExecRequest,
    ExecResponse, ExecSyncRequest, ExecSyncResponse, GetEventsRequest, ListContainerStatsRequest,
    ListContainerStatsResponse, ListContainersRequest, ListContainersResponse,
    ListMetricDescriptorsRequest, ListMetricDescriptorsResponse, ListPodSandboxMetricsRequest,
    ListPodSandboxMetricsResponse, ListPodSandboxRequest, ListPodSandboxResponse,
    ListPodSandboxStatsRequest, ListPodSandboxStatsResponse, PodSandboxStatsRequest,
    PodSandboxStatsResponse, PodSandboxStatusRequest, PodSandboxStatusResponse, PortForwardRequest,
    PortForwardResponse, RemoveContainerRequest, RemoveContainerResponse, RemovePodSandboxRequest,
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

#[tonic::async_trait]
impl RuntimeService for FrontDoor {
    type GetContainerEventsStream =
        Pin<Box<dyn Stream<Item = Result<ContainerEventResponse, Status>> + Send>>;

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

    async fn get_container_events(
        &self,
        _: Request<GetEventsRequest>,
    ) -> RpcResult<Self::GetContainerEventsStream> {
        Err(not_implemented("GetContainerEvents"))
    }

    async fn run_pod_sandbox(
        &self,
        _: Request<RunPodSandboxRequest>,
    ) -> RpcResult<RunPodSandboxResponse> {
        Err(not_implemented("RunPodSandbox"))
    }

    async fn stop_pod_sandbox(
        &self,
        _: Request<StopPodSandboxRequest>,
    ) -> RpcResult<StopPodSandboxResponse> {
        Err(not_implemented("StopPodSandbox"))
    }

    async fn remove_pod_sandbox(
        &self,
        _: Request<RemovePodSandboxRequest>,
    ) -> RpcResult<RemovePodSandboxResponse> {
        Err(not_implemented("RemovePodSandbox"))
    }

    async fn pod_sandbox_status(
        &self,
        _: Request<PodSandboxStatusRequest>,
    ) -> RpcResult<PodSandboxStatusResponse> {
        Err(not_implemented("PodSandboxStatus"))
    }

    async fn list_pod_sandbox(
        &self,
        _: Request<ListPodSandboxRequest>,
    ) -> RpcResult<ListPodSandboxResponse> {
        Err(not_implemented("ListPodSandbox"))
    }

    async fn create_container(
        &self,
        _: Request<CreateContainerRequest>,
    ) -> RpcResult<CreateContainerResponse> {
        Err(not_implemented("CreateContainer"))
    }

    async fn start_container(
        &self,
        _: Request<StartContainerRequest>,
    ) -> RpcResult<StartContainerResponse> {
        Err(not_implemented("StartContainer"))
    }

    async fn stop_container(
        &self,
        _: Request<StopContainerRequest>,
    ) -> RpcResult<StopContainerResponse> {
        Err(not_implemented("StopContainer"))
    }

    async fn remove_container(
        &self,
        _: Request<RemoveContainerRequest>,
    ) -> RpcResult<RemoveContainerResponse> {
        Err(not_implemented("RemoveContainer"))
    }

    async fn list_containers(
        &self,
        _: Request<ListContainersRequest>,
    ) -> RpcResult<ListContainersResponse> {
        Err(not_implemented("ListContainers"))
    }

    async fn container_status(
        &self,
        _: Request<ContainerStatusRequest>,
    ) -> RpcResult<ContainerStatusResponse> {
        Err(not_implemented("ContainerStatus"))
    }

    async fn update_container_resources(
        &self,
        _: Request<UpdateContainerResourcesRequest>,
    ) -> RpcResult<UpdateContainerResourcesResponse> {
        Err(not_implemented("UpdateContainerResources"))
    }

    async fn reopen_container_log(
        &self,
        _: Request<ReopenContainerLogRequest>,
    ) -> RpcResult<ReopenContainerLogResponse> {
        Err(not_implemented("ReopenContainerLog"))
    }

    async fn exec_sync(&self, _: Request<ExecSyncRequest>) -> RpcResult<ExecSyncResponse> {
        Err(not_implemented("ExecSync"))
    }

    async fn exec(&self, _: Request<ExecRequest>) -> RpcResult<ExecResponse> {
        Err(not_implemented("Exec"))
    }

    async fn attach(&self, _: Request<AttachRequest>) -> RpcResult<AttachResponse> {
        Err(not_implemented("Attach"))
    }

    async fn port_forward(&self, _: Request<PortForwardRequest>) -> RpcResult<PortForwardResponse> {
        Err(not_implemented("PortForward"))
    }

    async fn container_stats(
        &self,
        _: Request<ContainerStatsRequest>,
    ) -> RpcResult<ContainerStatsResponse> {
        Err(not_implemented("ContainerStats"))
    }

    async fn list_container_stats(
        &self,
        _: Request<ListContainerStatsRequest>,
    ) -> RpcResult<ListContainerStatsResponse> {
        Err(not_implemented("ListContainerStats"))
    }

    async fn pod_sandbox_stats(
        &self,
        _: Request<PodSandboxStatsRequest>,
    ) -> RpcResult<PodSandboxStatsResponse> {
        Err(not_implemented("PodSandboxStats"))
    }

    async fn list_pod_sandbox_stats(
        &self,
        _: Request<ListPodSandboxStatsRequest>,
    ) -> RpcResult<ListPodSandboxStatsResponse> {
        Err(not_implemented("ListPodSandboxStats"))
    }

    async fn update_runtime_config(
        &self,
        _: Request<UpdateRuntimeConfigRequest>,
    ) -> RpcResult<UpdateRuntimeConfigResponse> {
        Err(not_implemented("UpdateRuntimeConfig"))
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
        Err(not_implemented("ListMetricDescriptors"))
    }

    async fn list_pod_sandbox_metrics(
        &self,
        _: Request<ListPodSandboxMetricsRequest>,
    ) -> RpcResult<ListPodSandboxMetricsResponse> {
        Err(not_implemented("ListPodSandboxMetrics"))
    }
}
