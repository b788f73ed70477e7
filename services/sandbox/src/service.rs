//! The gRPC face of crimson-sandbox: one operation per RPC, errors mapped to statuses.

use std::{pin::Pin, sync::Arc};

use crimson_api::sandbox::v1::{
    Container, ContainerEvent, ContainerRef, CreateContainerRequest, CreateContainerResponse,
    Empty, ExecSyncRequest, ExecSyncResponse, GetStatusRequest, ListContainerStatsResponse,
    ListContainersRequest, ListContainersResponse, ListPodStatsResponse, ListPodsRequest,
    ListPodsResponse, Pod, PodRef, RunPodRequest, RunPodResponse, RuntimeHandler, RuntimeStatus,
    StopContainerRequest, StreamInput, UpdateContainerResourcesRequest, WatchEventsRequest,
    WrittenContainer, WrittenPod,
    sandbox_server::{Sandbox, SandboxServer},
};
use crimson_config::Config;
use futures::Stream;
use tokio_stream::{StreamExt, wrappers::BroadcastStream};
use tonic::{Request, Response, Status, Streaming, service::Routes};

use crate::{
    Result, SandboxError,
    binaries::find_executable,
    container::{self, refresh::current},
    pod, reaper, reconcile,
    seams::Seams,
    state::State,
};

/// crimson-sandbox's service; cheap to clone.
#[derive(Clone)]
pub struct SandboxService {
    state: Arc<State>,
}

impl SandboxService {
    /// Opens the database, reconciles it with the machine and starts the reaper.
    pub async fn open(config: &Config) -> Result<Self> {
        let state = Arc::new(State::open(config, Seams::real())?);
        reconcile::reconcile(&state).await?;
        reaper::spawn(state.clone());
        Ok(Self { state })
    }

    /// The service over `state` as it is (no reconcile, no reaper), for unit tests.
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
        Arc::new(move || state.object_counts())
    }

    /// What the daemon takes on SIGHUP: `[sandbox]` but the runtimes' state root, for the
    /// pods and containers created from then on (`pause_image`, the flag, stays over the file).
    pub fn reload(&self, pause_image_flag: Option<String>) -> crimson_rpc::Reload {
        let state = self.state.clone();
        crimson_rpc::Reload {
            applies: |key| key.starts_with("sandbox.") && key != "sandbox.runtime_root",
            apply: Box::new(move |mut config| {
                if let Some(image) = &pause_image_flag {
                    config.sandbox.pause_image = image.clone();
                }
                let state = state.clone();
                // Probing the runtimes' features runs them: off the async threads.
                Box::pin(async move {
                    tokio::task::spawn_blocking(move || state.reload_settings(&config.sandbox))
                        .await
                        .map_err(|e| e.to_string())
                })
            }),
        }
    }

    /// The service as tonic routes.
    pub fn into_routes(self) -> Routes {
        Routes::new(SandboxServer::new(self))
    }
}

type RpcResult<T> = std::result::Result<Response<T>, Status>;

fn respond<T>(result: Result<T>) -> RpcResult<T> {
    result.map(Response::new).map_err(|e: SandboxError| {
        tracing::warn!(error = %e, "request failed");
        Status::from(e)
    })
}

/// Pod `id` as GetPod answers it now, with the write count read before it (so a write that
/// lands while it is read makes the front door drop it).
fn written_pod(state: &State, id: &str) -> WrittenPod {
    let read_at = state.store.changes().count();
    let pod = state.pod(id).ok();
    WrittenPod {
        pod: pod.map(|record| pod::list::to_proto(state, &record)),
        read_at,
    }
}

/// Container `id` as GetContainer answers it now; see [`written_pod`].
async fn written_container(state: &State, id: &str) -> WrittenContainer {
    let read_at = state.store.changes().count();
    let container = current(state, id).await.ok();
    WrittenContainer {
        container: container.map(|record| container::list::to_proto(&record)),
        read_at,
    }
}

fn empty(result: Result<()>) -> RpcResult<Empty> {
    respond(result.map(|()| Empty {}))
}

#[tonic::async_trait]
impl Sandbox for SandboxService {
    type ExecStream = container::exec_stream::OutputStream;
    type AttachStream = container::exec_stream::OutputStream;
    type WatchEventsStream =
        Pin<Box<dyn Stream<Item = std::result::Result<ContainerEvent, Status>> + Send>>;

    async fn get_status(&self, _: Request<GetStatusRequest>) -> RpcResult<RuntimeStatus> {
        let settings = self.state.settings();
        let binaries = settings
            .runtimes
            .values()
            .map(|r| &r.path)
            .chain([&settings.conmon]);
        let missing: Vec<String> = binaries
            .filter(|binary| find_executable(binary).is_none())
            .map(|binary| binary.display().to_string())
            .collect();
        let handlers = settings
            .runtimes
            .iter()
            .map(|(name, runtime)| RuntimeHandler {
                name: name.clone(),
                recursive_read_only_mounts: runtime.features.recursive_read_only,
                user_namespaces: runtime.features.user_namespaces,
            })
            .collect();
        Ok(Response::new(if missing.is_empty() {
            RuntimeStatus {
                ready: true,
                handlers,
                ..Default::default()
            }
        } else {
            RuntimeStatus {
                ready: false,
                reason: "RuntimeBinaryMissing".into(),
                message: format!("not found or not executable: {}", missing.join(", ")),
                handlers,
            }
        }))
    }

    async fn run_pod(&self, request: Request<RunPodRequest>) -> RpcResult<RunPodResponse> {
        let spec = request.into_inner().spec.unwrap_or_default();
        respond(
            pod::run::run_pod(self.state.clone(), spec)
                .await
                .map(|pod_id| RunPodResponse {
                    written: Some(written_pod(&self.state, &pod_id)),
                    pod_id,
                }),
        )
    }

    async fn stop_pod(&self, request: Request<PodRef>) -> RpcResult<WrittenPod> {
        let id = request.into_inner().pod_id;
        respond(
            pod::stop::stop_pod(&self.state, &id)
                .await
                .map(|()| written_pod(&self.state, &id)),
        )
    }

    async fn remove_pod(&self, request: Request<PodRef>) -> RpcResult<Empty> {
        empty(pod::remove::remove_pod(&self.state, &request.into_inner().pod_id).await)
    }

    async fn get_pod(&self, request: Request<PodRef>) -> RpcResult<Pod> {
        let id = request.into_inner().pod_id;
        respond(
            self.state
                .pod(&id)
                .map(|record| pod::list::to_proto(&self.state, &record)),
        )
    }

    async fn list_pods(&self, request: Request<ListPodsRequest>) -> RpcResult<ListPodsResponse> {
        respond(
            pod::list::list_pods(&self.state, &request.into_inner())
                .map(|pods| ListPodsResponse { pods }),
        )
    }

    async fn create_container(
        &self,
        request: Request<CreateContainerRequest>,
    ) -> RpcResult<CreateContainerResponse> {
        let request = request.into_inner();
        let created = container::create::create_container(
            self.state.clone(),
            request.pod_id,
            request.spec.unwrap_or_default(),
        )
        .await;
        respond(match created {
            Ok(container_id) => Ok(CreateContainerResponse {
                written: Some(written_container(&self.state, &container_id).await),
                container_id,
            }),
            Err(e) => Err(e),
        })
    }

    async fn start_container(&self, request: Request<ContainerRef>) -> RpcResult<WrittenContainer> {
        let id = request.into_inner().container_id;
        let started = container::start::start_container(&self.state, &id).await;
        respond(match started {
            Ok(()) => Ok(written_container(&self.state, &id).await),
            Err(e) => Err(e),
        })
    }

    async fn stop_container(
        &self,
        request: Request<StopContainerRequest>,
    ) -> RpcResult<WrittenContainer> {
        let request = request.into_inner();
        let id = request.container_id;
        let stopped =
            container::stop::stop_container(&self.state, &id, request.timeout_seconds).await;
        respond(match stopped {
            Ok(()) => Ok(written_container(&self.state, &id).await),
            Err(e) => Err(e),
        })
    }

    async fn remove_container(&self, request: Request<ContainerRef>) -> RpcResult<Empty> {
        empty(
            container::remove::remove_container(&self.state, &request.into_inner().container_id)
                .await,
        )
    }

    async fn get_container(&self, request: Request<ContainerRef>) -> RpcResult<Container> {
        let id = request.into_inner().container_id;
        respond(
            current(&self.state, &id)
                .await
                .map(|record| container::list::to_proto(&record)),
        )
    }

    async fn list_containers(
        &self,
        request: Request<ListContainersRequest>,
    ) -> RpcResult<ListContainersResponse> {
        respond(
            container::list::list_containers(&self.state, &request.into_inner())
                .await
                .map(|containers| ListContainersResponse { containers }),
        )
    }

    async fn update_container_resources(
        &self,
        request: Request<UpdateContainerResourcesRequest>,
    ) -> RpcResult<Empty> {
        let request = request.into_inner();
        empty(
            container::update::update_resources(
                &self.state,
                &request.container_id,
                request.resources.unwrap_or_default(),
            )
            .await,
        )
    }

    async fn reopen_container_log(&self, request: Request<ContainerRef>) -> RpcResult<Empty> {
        empty(container::update::reopen_log(&self.state, &request.into_inner().container_id).await)
    }

    async fn list_container_stats(
        &self,
        request: Request<ListContainersRequest>,
    ) -> RpcResult<ListContainerStatsResponse> {
        let filter = request.into_inner();
        respond(
            container::stats::list_container_stats(&self.state, &filter)
                .await
                .map(|containers| ListContainerStatsResponse { containers }),
        )
    }

    async fn list_pod_stats(
        &self,
        request: Request<ListPodsRequest>,
    ) -> RpcResult<ListPodStatsResponse> {
        let filter = request.into_inner();
        respond(
            container::stats::list_pod_stats(&self.state, &filter)
                .await
                .map(|pods| ListPodStatsResponse { pods }),
        )
    }

    async fn exec_sync(&self, request: Request<ExecSyncRequest>) -> RpcResult<ExecSyncResponse> {
        respond(container::exec_sync::exec_sync(&self.state, request.into_inner()).await)
    }

    async fn exec(&self, request: Request<Streaming<StreamInput>>) -> RpcResult<Self::ExecStream> {
        respond(container::exec_stream::exec(self.state.clone(), request.into_inner()).await)
    }

    async fn attach(
        &self,
        request: Request<Streaming<StreamInput>>,
    ) -> RpcResult<Self::AttachStream> {
        respond(container::attach::attach(self.state.clone(), request.into_inner()).await)
    }

    async fn watch_events(
        &self,
        _: Request<WatchEventsRequest>,
    ) -> RpcResult<Self::WatchEventsStream> {
        let stream = BroadcastStream::new(self.state.events.subscribe())
            .filter_map(|event| event.ok())
            .map(Ok);
        Ok(Response::new(Box::pin(stream)))
    }
}
