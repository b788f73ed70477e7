//! RemovePod: stop it, remove its containers, namespaces, cgroup, files and record.

use super::stop;
use crate::{Result, container, host::host, layout::remove_dir, records::PodRecord, state::State};

/// Removes pod `id`; an unknown pod succeeds.
pub async fn remove_pod(state: &State, id: &str) -> Result<()> {
    let _pod = state.pod_locks.lock(id).await;
    match state.pods.get(id)? {
        Some(record) => remove_record(state, &record).await,
        None => Ok(()),
    }
}

/// Undoes everything `record` says the pod holds. Used for removal, failed creations and
/// reconciliation.
pub async fn remove_record(state: &State, record: &PodRecord) -> Result<()> {
    let mut record = record.clone();
    stop::stop_record(state, &mut record).await?;
    for container in state.containers_of(&record.id)? {
        container::remove::remove_now(state, &container.id).await?;
    }
    let pod_dir = state.layout.pod_dir(&record.id);
    let (held, host_ops) = (record.clone(), state.host_ops.clone());
    host(
        "removing the pod's namespaces, cgroup and files",
        move || {
            for ns in [&held.uts_ns, &held.ipc_ns, &held.user_ns]
                .into_iter()
                .flatten()
            {
                host_ops.unmount_and_remove(ns)?;
            }
            host_ops.remove_cgroups(&held.created_cgroups);
            remove_dir(&pod_dir).map_err(crate::SandboxError::io("removing", &pod_dir))
        },
    )
    .await?;
    state.pods.remove(&record.id)?;
    state.parked.forget(&record.id)?;
    state.store.flush().await?;
    tracing::info!(pod = %record.id, "pod removed");
    Ok(())
}
