//! Status: RuntimeReady and NetworkReady from the daemons' own reports.

use std::collections::HashMap;

use crimson_api::{
    network::v1::{GetStatusRequest as NetworkStatusRequest, network_client::NetworkClient},
    sandbox::v1::{GetStatusRequest as SandboxStatusRequest, sandbox_client::SandboxClient},
};
use k8s_cri::v1::{
    RuntimeCondition, RuntimeFeatures, RuntimeHandler, RuntimeHandlerFeatures, RuntimeStatus,
    StatusResponse,
};

use crate::Backends;

const RUNTIME_READY: &str = "RuntimeReady";
const NETWORK_READY: &str = "NetworkReady";

/// RuntimeReady needs crimson-sandbox ready (OCI runtime and conmon usable) and crimson-image
/// and crimson-storage serving; NetworkReady needs crimson-network to report a usable CNI
/// network. A daemon that is down makes its condition false with a reason naming it.
pub async fn status(backends: &Backends, verbose: bool) -> StatusResponse {
    let sandbox = Backends::probe(&backends.sandbox, |channel| async move {
        SandboxClient::new(channel)
            .get_status(SandboxStatusRequest {})
            .await
    });
    let network = Backends::probe(&backends.network, |channel| async move {
        NetworkClient::new(channel)
            .get_status(NetworkStatusRequest {})
            .await
    });
    let image = Backends::healthy(&backends.image);
    let storage = Backends::healthy(&backends.storage);
    let (sandbox, network, image, storage) = tokio::join!(sandbox, network, image, storage);

    let runtime_handlers = sandbox
        .as_ref()
        .map(|sandbox| {
            sandbox
                .handlers
                .iter()
                .map(|handler| RuntimeHandler {
                    name: handler.name.clone(),
                    features: Some(RuntimeHandlerFeatures {
                        recursive_read_only_mounts: handler.recursive_read_only_mounts,
                        user_namespaces: handler.user_namespaces,
                    }),
                })
                .collect()
        })
        .unwrap_or_default();
    let runtime = match (sandbox, image, storage) {
        (Err(status), _, _) | (_, Err(status), _) | (_, _, Err(status)) => {
            condition(RUNTIME_READY, false, "DaemonUnavailable", status.message())
        }
        (Ok(sandbox), Ok(()), Ok(())) => condition(
            RUNTIME_READY,
            sandbox.ready,
            &sandbox.reason,
            &sandbox.message,
        ),
    };
    let network = match network {
        Err(status) => condition(
            NETWORK_READY,
            false,
            "NetworkDaemonUnavailable",
            status.message(),
        ),
        Ok(network) => condition(
            NETWORK_READY,
            network.ready,
            &network.reason,
            &network.message,
        ),
    };
    let mut info = HashMap::new();
    if verbose {
        let conditions: Vec<_> = [&runtime, &network]
            .iter()
            .map(|c| serde_json::json!({"type": c.r#type, "status": c.status, "reason": c.reason, "message": c.message}))
            .collect();
        info.insert(
            "conditions".to_string(),
            serde_json::Value::Array(conditions).to_string(),
        );
    }
    StatusResponse {
        status: Some(RuntimeStatus {
            conditions: vec![runtime, network],
        }),
        info,
        runtime_handlers,
        features: Some(RuntimeFeatures {
            // Merge and Strict are both honoured, and ContainerStatus reports the user.
            supplemental_groups_policy: true,
        }),
    }
}

fn condition(kind: &str, ready: bool, reason: &str, message: &str) -> RuntimeCondition {
    RuntimeCondition {
        r#type: kind.to_string(),
        status: ready,
        reason: if ready {
            String::new()
        } else {
            reason.to_string()
        },
        message: if ready {
            String::new()
        } else {
            message.to_string()
        },
    }
}
