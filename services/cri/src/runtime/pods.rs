//! Pod sandbox RPCs → crimson-sandbox.

use crimson_api::sandbox::v1::{
    Pod, PodRef, RunPodRequest, WrittenPod, sandbox_client::SandboxClient,
};
use crimson_rpc::{ChangeReport, PeerChannel};
use k8s_cri::v1 as cri;
use tonic::Status;

use super::translate::pod;
use crate::{Backends, error::missing};

/// RunPodSandbox.
pub async fn run(
    backends: &Backends,
    request: cri::RunPodSandboxRequest,
) -> Result<cri::RunPodSandboxResponse, Status> {
    let config = request.config.ok_or_else(|| missing("config"))?;
    let spec = pod::to_pod_spec(config, request.runtime_handler)?;
    let request = RunPodRequest { spec: Some(spec) };
    let (response, report) = backends
        .sandbox_cache
        .write_stamped(|mut client| {
            let request = request.clone();
            async move { client.run_pod(request).await }
        })
        .await?;
    keep_status(backends, &response.pod_id, response.written, report);
    Ok(cri::RunPodSandboxResponse {
        pod_sandbox_id: response.pod_id,
    })
}

/// The read behind PodSandboxStatus, cached under [`GET_POD`].
async fn get_pod(
    mut client: SandboxClient<PeerChannel>,
    request: PodRef,
) -> Result<tonic::Response<Pod>, Status> {
    client.get_pod(request).await
}

/// The cache's name of [`get_pod`].
const GET_POD: &str = "GetPod";

/// Keeps the pod a write to it left (`written`, with the report on the write's answer) as the answer to
/// the PodSandboxStatus kubelet sends next.
fn keep_status(
    backends: &Backends,
    pod_id: &str,
    written: Option<WrittenPod>,
    report: Option<ChangeReport>,
) {
    if let (
        Some(WrittenPod {
            pod: Some(pod),
            read_at,
        }),
        Some(report),
    ) = (written, report)
    {
        let request = PodRef {
            pod_id: pod_id.to_string(),
        };
        backends
            .sandbox_cache
            .keep(GET_POD, &request, pod, &report, read_at);
    }
}

fn pod_ref(id: String) -> Result<PodRef, Status> {
    if id.is_empty() {
        return Err(missing("pod_sandbox_id"));
    }
    Ok(PodRef { pod_id: id })
}

/// StopPodSandbox (idempotent).
pub async fn stop(backends: &Backends, id: String) -> Result<cri::StopPodSandboxResponse, Status> {
    let request = pod_ref(id)?;
    let (written, report) = backends
        .sandbox_cache
        .write_stamped(|mut client| {
            let request = request.clone();
            async move { client.stop_pod(request).await }
        })
        .await?;
    keep_status(backends, &request.pod_id, Some(written), report);
    Ok(cri::StopPodSandboxResponse {})
}

/// RemovePodSandbox (idempotent).
pub async fn remove(
    backends: &Backends,
    id: String,
) -> Result<cri::RemovePodSandboxResponse, Status> {
    let request = pod_ref(id)?;
    backends
        .sandbox(|mut client| {
            let request = request.clone();
            async move { client.remove_pod(request).await }
        })
        .await?;
    Ok(cri::RemovePodSandboxResponse {})
}

/// PodSandboxStatus.
pub async fn status(
    backends: &Backends,
    request: cri::PodSandboxStatusRequest,
) -> Result<cri::PodSandboxStatusResponse, Status> {
    let pod_request = pod_ref(request.pod_sandbox_id)?;
    let found = backends
        .sandbox_cache
        .read(GET_POD, pod_request, get_pod)
        .await?;
    Ok(pod::to_status(&found, request.verbose))
}

/// UpdatePodSandboxResources: kubelet has already given the pod's cgroup its new pod-level
/// resources; the runtime has nothing more to apply (no NRI plugins), so it checks the pod
/// exists and records the change in its log, as CRI-O does without NRI.
pub async fn update_resources(
    backends: &Backends,
    request: crimson_api::cri::UpdatePodSandboxResourcesRequest,
) -> Result<crimson_api::cri::UpdatePodSandboxResourcesResponse, Status> {
    let pod_request = pod_ref(request.pod_sandbox_id)?;
    let pod_id = pod_request.pod_id.clone();
    backends
        .sandbox(|mut client| {
            let request = pod_request.clone();
            async move { client.get_pod(request).await }
        })
        .await?;
    let limits = |resources: &Option<cri::LinuxContainerResources>| {
        resources
            .as_ref()
            .map(|r| (r.cpu_quota, r.cpu_period, r.memory_limit_in_bytes))
    };
    tracing::info!(
        pod = %pod_id,
        resources = ?limits(&request.resources),
        overhead = ?limits(&request.overhead),
        "pod-level resources updated by kubelet (cpu quota, cpu period, memory limit)"
    );
    Ok(crimson_api::cri::UpdatePodSandboxResourcesResponse {})
}

/// ListPodSandbox.
pub async fn list(
    backends: &Backends,
    request: cri::ListPodSandboxRequest,
) -> Result<cri::ListPodSandboxResponse, Status> {
    let filter = pod::to_list_request(request.filter);
    let listed = backends
        .sandbox_cache
        .read("ListPods", filter, |mut client, filter| async move {
            client.list_pods(filter).await
        })
        .await?;
    let pods = &listed.pods;
    Ok(cri::ListPodSandboxResponse {
        items: pods.iter().map(pod::to_list_entry).collect(),
    })
}
