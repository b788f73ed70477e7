//! ExecSync → crimson-sandbox.

use crimson_api::sandbox::v1::ExecSyncRequest as InternalExecSync;
use k8s_cri::v1 as cri;
use tonic::Status;

use crate::{Backends, error::missing};

/// Runs a command in a container and answers its output and exit code.
pub async fn exec_sync(
    backends: &Backends,
    request: cri::ExecSyncRequest,
) -> Result<cri::ExecSyncResponse, Status> {
    if request.container_id.is_empty() {
        return Err(missing("container_id"));
    }
    if request.cmd.is_empty() {
        return Err(missing("cmd"));
    }
    let internal = InternalExecSync {
        container_id: request.container_id,
        cmd: request.cmd,
        timeout_seconds: request.timeout,
    };
    let response = backends
        .sandbox_read(|mut client| {
            let internal = internal.clone();
            async move { client.exec_sync(internal).await }
        })
        .await?;
    Ok(cri::ExecSyncResponse {
        stdout: response.stdout,
        stderr: response.stderr,
        exit_code: response.exit_code,
    })
}
