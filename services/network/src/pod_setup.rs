//! SetUpPod: pin a network namespace for the pod and attach it with CNI ADD.

use crimson_api::network::v1::{PodNetwork, SetUpPodRequest};
use serde_json::{Value, json};

use crate::{
    NetworkError, Result,
    cni_config::find_network,
    cni_exec::{Attachment, CniCommand},
    cni_result::pod_ips,
    pod_teardown::detach,
    records::{AttachmentState, PodAttachment, validate_pod_id},
    state::State,
};

/// Creates the namespace and runs ADD; a pod already attached gets its attachment back.
pub async fn set_up_pod(state: &State, request: SetUpPodRequest) -> Result<PodNetwork> {
    validate_pod_id(&request.pod_id)?;
    let _pod = state.pod_locks.lock(&request.pod_id).await;
    if let Some(existing) = state.pods.get(&request.pod_id)?
        && existing.state == AttachmentState::Attached
    {
        return Ok(to_proto(&existing));
    }
    let network =
        find_network(&state.cni_conf_dir, &state.cni_bin_dirs).map_err(NetworkError::NotReady)?;
    let netns_path = state.netns_dir.join(&request.pod_id);
    let mut attachment = PodAttachment {
        pod_id: request.pod_id.clone(),
        pod_name: request.pod_name,
        pod_namespace: request.pod_namespace,
        pod_uid: request.pod_uid,
        netns_path: netns_path.display().to_string(),
        userns_path: request.userns_path,
        network_name: network.name.clone(),
        conflist: network.conflist.clone(),
        // kubelet lists every declared container port; only those with a hostPort are
        // mappings (portmap refuses host port 0), as CRI-O and containerd filter them.
        port_mappings: request
            .port_mappings
            .iter()
            .filter(|p| p.host_port > 0)
            .map(|p| {
                json!({
                    "hostPort": p.host_port,
                    "containerPort": p.container_port,
                    "protocol": if p.protocol.is_empty() { "tcp" } else { p.protocol.as_str() },
                    "hostIP": p.host_ip,
                })
            })
            .collect(),
        result: None,
        state: AttachmentState::Adding,
    };
    // Recorded before anything is created, so a crash half-way is undone on restart.
    state.pods.put(&attachment.pod_id, &attachment)?;
    state.store.flush().await?;

    match attach(state, &attachment).await {
        Ok(result) => {
            attachment.result = Some(result);
            attachment.state = AttachmentState::Attached;
            state.pods.put(&attachment.pod_id, &attachment)?;
            state.store.flush().await?;
            let network = to_proto(&attachment);
            tracing::info!(pod = %network.pod_id, network = %network.network_name, ips = ?network.ips, "pod attached");
            Ok(network)
        }
        Err(error) => {
            if let Err(undo) = detach(state, &attachment).await {
                tracing::warn!(pod = %attachment.pod_id, error = %undo, "undoing a failed attachment");
            }
            Err(error)
        }
    }
}

async fn attach(state: &State, attachment: &PodAttachment) -> Result<Value> {
    let owner = (!attachment.userns_path.is_empty()).then(|| attachment.userns_path.clone().into());
    state
        .namespaces
        .create(attachment.netns_path.clone().into(), owner)
        .await?;
    bring_up_loopback(state, attachment).await;
    state
        .cni
        .run_list(
            CniCommand::Add,
            &attachment.conflist,
            &attachment.cni_attachment(),
            None,
        )
        .await
}

/// Sets `lo` up with the loopback plugin unless the network's own list does it.
async fn bring_up_loopback(state: &State, attachment: &PodAttachment) {
    let has_loopback = attachment.conflist["plugins"]
        .as_array()
        .is_some_and(|plugins| plugins.iter().any(|p| p["type"] == "loopback"));
    if has_loopback {
        return;
    }
    let loopback = json!({"cniVersion": "0.3.1", "name": "crimson-loopback", "plugins": [{"type": "loopback"}]});
    let target = Attachment {
        port_mappings: Vec::new(),
        ..attachment.cni_attachment()
    };
    if let Err(error) = state
        .cni
        .run_list(CniCommand::Add, &loopback, &target, None)
        .await
    {
        tracing::warn!(pod = %attachment.pod_id, %error, "could not set up the loopback interface");
    }
}

/// The API view of an attachment.
pub fn to_proto(attachment: &PodAttachment) -> PodNetwork {
    PodNetwork {
        pod_id: attachment.pod_id.clone(),
        netns_path: attachment.netns_path.clone(),
        ips: attachment.result.as_ref().map(pod_ips).unwrap_or_default(),
        network_name: attachment.network_name.clone(),
        cni_result_json: attachment
            .result
            .as_ref()
            .map(Value::to_string)
            .unwrap_or_default(),
        port_mappings_json: Value::from(attachment.port_mappings.clone()).to_string(),
        attached: attachment.state == AttachmentState::Attached,
    }
}
