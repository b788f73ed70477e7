//! StopPod: stop every container and the infra process, detach the network, drop /dev/shm.

use crate::{
    Result, container,
    host::host,
    records::{PodPhase, PodRecord},
    state::State,
};

/// Stops pod `id`; an unknown pod succeeds (kubelet retries after restarts and timeouts).
pub async fn stop_pod(state: &State, id: &str) -> Result<()> {
    let _pod = state.pod_locks.lock(id).await;
    let Some(mut record) = state.pods.get(id)? else {
        return Ok(());
    };
    stop_record(state, &mut record).await?;
    record.phase = PodPhase::NotReady;
    state.save_pod(&record).await
}

/// Stops what a pod runs and releases its network and /dev/shm; safe to repeat. The network
/// is detached while the containers stop: CNI DEL needs only the pinned namespace, not the
/// processes in it, and the two are the slowest parts of the call.
pub async fn stop_record(state: &State, record: &mut PodRecord) -> Result<()> {
    let detach = async {
        match record.netns_path {
            Some(_) => state.neighbours.tear_down_network(&record.id).await,
            None => Ok(()),
        }
    };
    let (stopped, detached) = tokio::join!(stop_containers(state, &record.id), detach);
    stopped?;
    detached?;
    if record.shm_mounted {
        let (shm, host_ops) = (record.shm_path.clone(), state.host_ops.clone());
        host("unmounting /dev/shm", move || {
            host_ops.unmount_and_remove(&shm)
        })
        .await?;
        record.shm_mounted = false;
    }
    Ok(())
}

/// Stops the pod's containers: kubelet's first, the infra process (PID 1 of a shared
/// namespace) last.
async fn stop_containers(state: &State, pod_id: &str) -> Result<()> {
    let mut containers = state.containers_of(pod_id)?;
    containers.sort_by_key(|c| c.infra);
    for container in containers {
        container::stop::stop_container(state, &container.id, 0).await?;
    }
    Ok(())
}
