//! Exec, Attach and PortForward: check the request against the container or pod, then hand
//! out a single-use URL on the streaming server.

use crimson_api::sandbox::v1::{ContainerRef, ContainerState, NamespaceMode, PodRef, PodState};
use k8s_cri::v1 as cri;
use tonic::Status;

use crate::{
    Backends,
    error::missing,
    streaming::{PortForwardTarget, ProcessStreams, StreamRequest, StreamingServer},
};

fn process_streams(
    container_id: String,
    cmd: Vec<String>,
    tty: bool,
    stdin: bool,
    stdout: bool,
    stderr: bool,
) -> Result<ProcessStreams, Status> {
    if container_id.is_empty() {
        return Err(missing("container_id"));
    }
    if tty && stderr {
        return Err(Status::invalid_argument(
            "tty and stderr cannot both be true",
        ));
    }
    if !(stdin || stdout || stderr) {
        return Err(Status::invalid_argument(
            "one of stdin, stdout and stderr must be true",
        ));
    }
    Ok(ProcessStreams {
        container_id,
        cmd,
        tty,
        stdin,
        stdout,
        stderr,
    })
}

async fn require_running(backends: &Backends, container_id: &str) -> Result<(), Status> {
    let reference = ContainerRef {
        container_id: container_id.to_string(),
    };
    let container = backends
        .sandbox_read(|mut client| {
            let reference = reference.clone();
            async move { client.get_container(reference).await }
        })
        .await?;
    if container.state != ContainerState::Running as i32 {
        return Err(Status::failed_precondition(format!(
            "container {container_id} is not running"
        )));
    }
    Ok(())
}

/// Exec: checks the container runs and hands out a single-use streaming URL for the command.
pub async fn exec(
    backends: &Backends,
    streaming: &StreamingServer,
    request: cri::ExecRequest,
) -> Result<cri::ExecResponse, Status> {
    if request.cmd.is_empty() {
        return Err(missing("cmd"));
    }
    let streams = process_streams(
        request.container_id,
        request.cmd,
        request.tty,
        request.stdin,
        request.stdout,
        request.stderr,
    )?;
    require_running(backends, &streams.container_id).await?;
    Ok(cri::ExecResponse {
        url: streaming.url_for(StreamRequest::Exec(streams))?,
    })
}

/// Attach: checks the container runs and hands out a single-use URL to its main process stdio.
pub async fn attach(
    backends: &Backends,
    streaming: &StreamingServer,
    request: cri::AttachRequest,
) -> Result<cri::AttachResponse, Status> {
    let streams = process_streams(
        request.container_id,
        Vec::new(),
        request.tty,
        request.stdin,
        request.stdout,
        request.stderr,
    )?;
    require_running(backends, &streams.container_id).await?;
    Ok(cri::AttachResponse {
        url: streaming.url_for(StreamRequest::Attach(streams))?,
    })
}

/// PortForward: checks the pod and ports and hands out a single-use port-forward URL.
pub async fn port_forward(
    backends: &Backends,
    streaming: &StreamingServer,
    request: cri::PortForwardRequest,
) -> Result<cri::PortForwardResponse, Status> {
    if request.pod_sandbox_id.is_empty() {
        return Err(missing("pod_sandbox_id"));
    }
    let ports = request
        .port
        .iter()
        .map(|port| {
            u16::try_from(*port)
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| Status::invalid_argument(format!("invalid port {port}")))
        })
        .collect::<Result<Vec<u16>, Status>>()?;
    let reference = PodRef {
        pod_id: request.pod_sandbox_id.clone(),
    };
    let pod = backends
        .sandbox_read(|mut client| {
            let reference = reference.clone();
            async move { client.get_pod(reference).await }
        })
        .await?;
    if pod.state != PodState::PodReady as i32 {
        return Err(Status::failed_precondition(format!(
            "pod sandbox {} is not ready",
            pod.id
        )));
    }
    let host_network = pod
        .spec
        .is_some_and(|spec| spec.network == NamespaceMode::Node as i32);
    let target = PortForwardTarget {
        pod_id: pod.id,
        ports,
        host_network,
    };
    Ok(cri::PortForwardResponse {
        url: streaming.url_for(StreamRequest::PortForward(target))?,
    })
}
