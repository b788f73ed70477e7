//! What crimson-sandbox keeps in its database.

use std::path::PathBuf;

use crimson_api::sandbox::v1::{ContainerSpec, PodSpec};
use serde::{Deserialize, Serialize};

/// Tree of [`PodRecord`]s by pod id.
pub const PODS_TREE: &str = "pods";
/// Tree of [`ContainerRecord`]s by container id.
pub const CONTAINERS_TREE: &str = "containers";
/// Database schema version this build writes.
pub const SCHEMA_VERSION: u32 = 1;

/// Where a pod is in its life. `Creating` survives only a crash: reconcile removes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PodPhase {
    Creating,
    Ready,
    NotReady,
}

/// One pod sandbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PodRecord {
    pub id: String,
    pub spec: PodSpec,
    pub phase: PodPhase,
    pub created_at_nanos: i64,
    /// Pinned network namespace (none with host networking).
    pub netns_path: Option<String>,
    pub ips: Vec<String>,
    /// The pod's own user namespace, pinned (none: the host's); its other namespaces are
    /// owned by it.
    #[serde(default)]
    pub user_ns: Option<PathBuf>,
    /// Pinned UTS and IPC namespaces (none where the pod uses the host's).
    pub uts_ns: Option<PathBuf>,
    pub ipc_ns: Option<PathBuf>,
    /// What containers mount at /dev/shm.
    pub shm_path: PathBuf,
    /// Whether `shm_path` is a tmpfs of this pod's (to unmount).
    pub shm_mounted: bool,
    /// The pod's cgroup (cgroupfs path) and the hierarchies where this daemon created it.
    pub cgroup_path: String,
    pub created_cgroups: Vec<PathBuf>,
    /// The infra container holding the pod's PID namespace, when it is shared at pod level.
    pub infra_container_id: Option<String>,
    pub runtime_handler: String,
}

impl PodRecord {
    /// The name kubelet gives this pod: namespace, name, uid and attempt.
    pub fn key(spec: &PodSpec) -> String {
        format!(
            "{}/{}/{}/{}",
            spec.namespace, spec.name, spec.uid, spec.attempt
        )
    }
}

/// Where a container is. Exited is learnt from conmon's exit file. `Removing`: RemoveContainer
/// answered and nobody sees the container any more; its record stays until its runtime state,
/// root filesystem and bundle are gone (see `container::remove`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContainerPhase {
    Creating,
    Created,
    Running,
    Exited,
    Removing,
}

/// One container (or a pod's infra container).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    pub pod_id: String,
    pub spec: ContainerSpec,
    pub phase: ContainerPhase,
    /// The pod's infra process, not a kubelet container.
    pub infra: bool,
    pub created_at_nanos: i64,
    pub started_at_nanos: i64,
    pub finished_at_nanos: i64,
    pub exit_code: i32,
    pub reason: String,
    pub message: String,
    pub image_id: String,
    pub image_ref: String,
    pub log_path: String,
    /// The pod's runtime handler (which OCI runtime drives this container).
    pub runtime_handler: String,
    pub pid: u32,
    pub conmon_pid: u32,
    pub cgroup_path: String,
    pub stop_signal: String,
    pub uid: i64,
    pub gid: i64,
    pub groups: Vec<i64>,
}

impl ContainerRecord {
    /// The name kubelet gives this container inside its pod: name and attempt.
    pub fn key(pod_id: &str, spec: &ContainerSpec) -> String {
        format!("{pod_id}/{}/{}", spec.name, spec.attempt)
    }
}
