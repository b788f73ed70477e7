//! TearDownPod: CNI DEL with the configuration used for ADD, then drop the namespace.

use crate::{
    Result,
    cni_exec::CniCommand,
    records::{PodAttachment, validate_pod_id},
    state::State,
};

/// Detaches the pod; an unknown pod (never attached, or already torn down) succeeds.
pub async fn tear_down_pod(state: &State, pod_id: &str) -> Result<()> {
    validate_pod_id(pod_id)?;
    let _pod = state.pod_locks.lock(pod_id).await;
    match state.pods.get(pod_id)? {
        Some(attachment) => detach(state, &attachment).await,
        None => state.namespaces.remove(state.netns_dir.join(pod_id)).await,
    }
}

/// Runs DEL, removes the namespace and forgets the attachment.
pub async fn detach(state: &State, attachment: &PodAttachment) -> Result<()> {
    let mut cni = attachment.cni_attachment();
    if !state
        .namespaces
        .is_pinned(std::path::Path::new(&attachment.netns_path))
    {
        // The namespace is gone: a teardown killed after its unmount, or an ADD killed before
        // its pin. DEL without one still releases the address and the host-side rules, as the
        // CNI spec asks of plugins (and as CRI-O and containerd call it).
        cni.netns.clear();
    }
    state
        .cni
        .run_list(
            CniCommand::Del,
            &attachment.conflist,
            &cni,
            attachment.result.as_ref(),
        )
        .await?;
    state
        .namespaces
        .remove(attachment.netns_path.clone().into())
        .await?;
    state.pods.remove(&attachment.pod_id)?;
    state.store.flush().await?;
    state.cni.forget(&attachment.pod_id);
    tracing::info!(pod = %attachment.pod_id, "pod detached");
    Ok(())
}
