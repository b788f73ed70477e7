//! What crimson-network keeps in its database: one attachment per pod.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{NetworkError, Result};

/// Tree of [`PodAttachment`]s, keyed by pod id.
pub const PODS_TREE: &str = "pods";
/// Database schema version this build writes.
pub const SCHEMA_VERSION: u32 = 1;

/// How far an attachment got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttachmentState {
    /// CNI ADD is (or was, before a crash) running: undo it on restart.
    Adding,
    /// CNI ADD succeeded.
    Attached,
}

/// A pod's network attachment. The configuration used for ADD is kept so that DEL uses the
/// same one, even after the conf dir changed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PodAttachment {
    pub pod_id: String,
    pub pod_name: String,
    pub pod_namespace: String,
    pub pod_uid: String,
    pub netns_path: String,
    /// The pod's own user namespace (pinned), which owns the network namespace; empty: the
    /// host's.
    #[serde(default)]
    pub userns_path: String,
    pub network_name: String,
    pub conflist: Value,
    pub port_mappings: Vec<Value>,
    pub result: Option<Value>,
    pub state: AttachmentState,
}

impl PodAttachment {
    /// The CNI view of this attachment.
    pub fn cni_attachment(&self) -> crate::cni_exec::Attachment {
        crate::cni_exec::Attachment {
            container_id: self.pod_id.clone(),
            netns: self.netns_path.clone(),
            pod_name: self.pod_name.clone(),
            pod_namespace: self.pod_namespace.clone(),
            pod_uid: self.pod_uid.clone(),
            port_mappings: self.port_mappings.clone(),
        }
    }
}

/// Pod ids name files: letters, digits, `-`, `_`, `.`; no leading dot.
pub fn validate_pod_id(id: &str) -> Result<()> {
    if crimson_sys::is_safe_file_name(id) {
        Ok(())
    } else {
        Err(NetworkError::InvalidArgument(format!(
            "invalid pod id {id:?}"
        )))
    }
}
