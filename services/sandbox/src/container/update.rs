//! UpdateContainerResources and ReopenContainerLog.

use std::{
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::Path,
    time::{Duration, Instant},
};

use crimson_api::sandbox::v1::Resources;

use super::refresh::current;
use crate::{Result, SandboxError, oci::resources::linux_resources, state::State};

/// Applies new limits to a created or running container and records them.
pub async fn update_resources(state: &State, id: &str, resources: Resources) -> Result<()> {
    let _container = state.container_locks.lock(id).await;
    let mut record = current(state, id).await?;
    let json = serde_json::to_vec(&linux_resources(&resources))
        .map_err(|e| SandboxError::runtime("encoding resources", e))?;
    state.runtime_of(&record)?.update(id, &json).await?;
    record.spec.resources = Some(resources);
    state.save_container(&record).await
}

/// Asks conmon to reopen the log file (after kubelet rotated it) and waits until it exists.
pub async fn reopen_log(state: &State, id: &str) -> Result<()> {
    let record = current(state, id).await?;
    if record.phase != crate::records::ContainerPhase::Running {
        return Err(SandboxError::FailedPrecondition(format!(
            "container {id} is not running"
        )));
    }
    let ctl = state.layout.bundle(id).join("ctl");
    let mut fifo = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&ctl)
        .map_err(SandboxError::io("opening conmon's control fifo", &ctl))?;
    // conmon's control message: type 2 (reopen log), no window size.
    fifo.write_all(b"2 0 0\n")
        .map_err(SandboxError::io("writing", &ctl))?;
    let log = Path::new(&record.log_path);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !log.exists() {
        if Instant::now() > deadline {
            return Err(SandboxError::runtime(
                "reopening the log",
                "conmon did not recreate the log file",
            ));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}
