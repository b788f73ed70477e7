//! The `runtime.v1.RuntimeService` RPCs served through `crimson_api::cri` because k8s-cri
//! lacks them or cannot read their request in full: the list streams of KEP-5825 (`Stream*`,
//! kubelet's CRIListStreaming gate), each sending what its `List*` twin answers in parts
//! ([`in_parts`]); `UpdatePodSandboxResources`; and `CreateContainer`, whose mounts carry
//! `image_sub_path`.

use crimson_api::cri::{
    CreateContainerRequest, CreateContainerResponse, StreamContainerStatsRequest,
    StreamContainerStatsResponse, StreamContainersRequest, StreamContainersResponse,
    StreamPodSandboxMetricsRequest, StreamPodSandboxMetricsResponse, StreamPodSandboxStatsRequest,
    StreamPodSandboxStatsResponse, StreamPodSandboxesRequest, StreamPodSandboxesResponse,
    UpdatePodSandboxResourcesRequest, UpdatePodSandboxResourcesResponse,
    runtime_service_server::RuntimeService,
};
use k8s_cri::v1 as cri;
use tonic::{Request, Response};

use super::{RpcResult, containers, cri_metrics, pods, reply, stats};
use crate::{
    FrontDoor,
    list_parts::{ListStream, in_parts},
};

#[tonic::async_trait]
impl RuntimeService for FrontDoor {
    type StreamPodSandboxesStream = ListStream<StreamPodSandboxesResponse>;
    type StreamContainersStream = ListStream<StreamContainersResponse>;
    type StreamContainerStatsStream = ListStream<StreamContainerStatsResponse>;
    type StreamPodSandboxStatsStream = ListStream<StreamPodSandboxStatsResponse>;
    type StreamPodSandboxMetricsStream = ListStream<StreamPodSandboxMetricsResponse>;

    async fn create_container(
        &self,
        request: Request<CreateContainerRequest>,
    ) -> RpcResult<CreateContainerResponse> {
        let CreateContainerRequest {
            request,
            image_sub_paths,
        } = request.into_inner();
        reply(containers::create(&self.backends, request, &image_sub_paths).await)
    }

    async fn stream_pod_sandboxes(
        &self,
        request: Request<StreamPodSandboxesRequest>,
    ) -> RpcResult<Self::StreamPodSandboxesStream> {
        let filter = request.into_inner().filter;
        let listed = pods::list(&self.backends, cri::ListPodSandboxRequest { filter }).await?;
        Ok(Response::new(in_parts(listed.items, |pod_sandboxes| {
            StreamPodSandboxesResponse { pod_sandboxes }
        })))
    }

    async fn stream_containers(
        &self,
        request: Request<StreamContainersRequest>,
    ) -> RpcResult<Self::StreamContainersStream> {
        let filter = request.into_inner().filter;
        let listed =
            containers::list(&self.backends, cri::ListContainersRequest { filter }).await?;
        Ok(Response::new(in_parts(listed.containers, |containers| {
            StreamContainersResponse { containers }
        })))
    }

    async fn stream_container_stats(
        &self,
        request: Request<StreamContainerStatsRequest>,
    ) -> RpcResult<Self::StreamContainerStatsStream> {
        let filter = request.into_inner().filter;
        let listed =
            stats::list_containers(&self.backends, cri::ListContainerStatsRequest { filter })
                .await?;
        Ok(Response::new(in_parts(listed.stats, |container_stats| {
            StreamContainerStatsResponse { container_stats }
        })))
    }

    async fn stream_pod_sandbox_stats(
        &self,
        request: Request<StreamPodSandboxStatsRequest>,
    ) -> RpcResult<Self::StreamPodSandboxStatsStream> {
        let filter = request.into_inner().filter;
        let listed =
            stats::list_pods(&self.backends, cri::ListPodSandboxStatsRequest { filter }).await?;
        Ok(Response::new(in_parts(listed.stats, |pod_sandbox_stats| {
            StreamPodSandboxStatsResponse { pod_sandbox_stats }
        })))
    }

    async fn stream_pod_sandbox_metrics(
        &self,
        _: Request<StreamPodSandboxMetricsRequest>,
    ) -> RpcResult<Self::StreamPodSandboxMetricsStream> {
        let pods = stats::list_pods(&self.backends, Default::default()).await?;
        Ok(Response::new(in_parts(
            cri_metrics::pod_metrics(pods.stats),
            |pod_sandbox_metrics| StreamPodSandboxMetricsResponse {
                pod_sandbox_metrics,
            },
        )))
    }

    async fn update_pod_sandbox_resources(
        &self,
        request: Request<UpdatePodSandboxResourcesRequest>,
    ) -> RpcResult<UpdatePodSandboxResourcesResponse> {
        reply(pods::update_resources(&self.backends, request.into_inner()).await)
    }
}
