//! RunPod: a ready pod sandbox. Each step records what it made, so a failure (or a crash,
//! through reconcile) undoes exactly that.

use std::sync::Arc;

use crimson_api::{
    network::v1::{PortMapping as NetworkPortMapping, SetUpPodRequest},
    sandbox::v1::{NamespaceMode, PodSpec},
};

use super::{cgroup, files, infra, remove, user_namespace};
use crate::{
    Result, SandboxError,
    creation::{self, Existing},
    host::host,
    host_ops::NamespacePins,
    records::{PodPhase, PodRecord},
    runtime::exit::now_nanos,
    state::{State, new_id},
};

/// Creates the pod `spec` describes, once per kubelet name (namespace, name, uid, attempt).
pub async fn run_pod(state: Arc<State>, spec: PodSpec) -> Result<String> {
    validate(&spec)?;
    let runtime = state.runtime(&spec.runtime_handler)?;
    if user_namespace::mappings(&spec)?.is_some() && !runtime.features.user_namespaces {
        return Err(SandboxError::InvalidArgument(format!(
            "runtime handler {:?} does not support user namespaces on this node",
            spec.runtime_handler
        )));
    }
    let key = PodRecord::key(&spec);
    let existing_key = key.clone();
    creation::once(
        state,
        key,
        move |state| {
            let found = state
                .pods
                .values()?
                .into_iter()
                .find(|p| PodRecord::key(&p.spec) == existing_key);
            Ok(match found {
                None => Existing::Nothing,
                Some(pod) if pod.phase == PodPhase::Ready => Existing::Usable(pod.id),
                Some(_) => Existing::Spent,
            })
        },
        move |state| async move { create(&state, spec).await },
    )
    .await
}

fn validate(spec: &PodSpec) -> Result<()> {
    for (field, value) in [
        ("metadata.name", &spec.name),
        ("metadata.namespace", &spec.namespace),
        ("metadata.uid", &spec.uid),
    ] {
        if value.is_empty() {
            return Err(SandboxError::InvalidArgument(format!(
                "{field} must be set"
            )));
        }
    }
    // The pod's cgroup is made under every hierarchy's root: it must not lead out of it.
    let parent = &spec.cgroup_parent;
    if parent.split('/').any(|part| part == ".." || part == ".")
        || parent.chars().any(char::is_control)
    {
        return Err(SandboxError::InvalidArgument(format!(
            "cgroup_parent {parent:?} must be a plain cgroup path"
        )));
    }
    if !spec.log_directory.is_empty() && !spec.log_directory.starts_with('/') {
        return Err(SandboxError::InvalidArgument(
            "log_directory must be an absolute path".into(),
        ));
    }
    Ok(())
}

async fn create(state: &State, spec: PodSpec) -> Result<String> {
    let id = new_id()?;
    let pod_dir = state.layout.pod_dir(&id);
    host("creating the pod directory", move || {
        std::fs::create_dir_all(&pod_dir).map_err(SandboxError::io("creating", &pod_dir))
    })
    .await?;
    let mut record = PodRecord {
        id: id.clone(),
        phase: PodPhase::Creating,
        created_at_nanos: now_nanos(),
        netns_path: None,
        ips: Vec::new(),
        user_ns: None,
        uts_ns: None,
        ipc_ns: None,
        shm_path: std::path::PathBuf::from("/dev/shm"),
        shm_mounted: false,
        cgroup_path: cgroup::pod_cgroup(&spec.cgroup_parent, &id),
        created_cgroups: Vec::new(),
        infra_container_id: None,
        runtime_handler: spec.runtime_handler.clone(),
        spec,
    };
    state.save_pod(&record).await?;
    match set_up(state, &mut record).await {
        Ok(()) => {
            record.phase = PodPhase::Ready;
            state.save_pod(&record).await?;
            tracing::info!(pod = %id, name = %record.spec.name, namespace = %record.spec.namespace, ips = ?record.ips, "pod ready");
            Ok(id)
        }
        Err(error) => {
            tracing::warn!(pod = %id, %error, "pod creation failed; undoing it");
            if let Err(undo) = remove::remove_record(state, &record).await {
                tracing::warn!(pod = %id, error = %undo, "undoing a failed pod");
            }
            Err(error)
        }
    }
}

async fn set_up(state: &State, record: &mut PodRecord) -> Result<()> {
    let pod_dir = state.layout.pod_dir(&record.id);
    let host_network = record.spec.network == NamespaceMode::Node as i32;
    let host_ipc = record.spec.ipc == NamespaceMode::Node as i32;
    let paths = files::PodFilePaths::new(&pod_dir);
    let (files_at, hostname, dns) = (
        paths.clone(),
        record.spec.hostname.clone(),
        record.spec.dns.clone(),
    );
    host("writing the pod's files", move || {
        files::write_hostname_and_resolv(&files_at, &hostname, dns.as_ref())
    })
    .await?;

    let mappings = user_namespace::mappings(&record.spec)?;
    let user = mappings.map(|_| pod_dir.join("user"));
    let uts = (!host_network).then(|| pod_dir.join("uts"));
    let ipc = (!host_ipc).then(|| pod_dir.join("ipc"));
    record.user_ns = user.clone();
    record.uts_ns = uts.clone();
    record.ipc_ns = ipc.clone();
    state.save_pod(record).await?;
    let (hostname, host_ops) = (record.spec.hostname.clone(), state.host_ops.clone());
    host("pinning namespaces", move || {
        host_ops.pin_namespaces(NamespacePins {
            user: mappings.as_ref().zip(user.as_deref()),
            uts: uts.as_deref(),
            ipc: ipc.as_deref(),
            hostname: &hostname,
        })
    })
    .await?;

    if !host_ipc {
        record.shm_path = pod_dir.join("shm");
        record.shm_mounted = true;
        state.save_pod(record).await?;
        let (shm, size) = (record.shm_path.clone(), state.settings().shm_size_bytes);
        let host_ops = state.host_ops.clone();
        host("mounting /dev/shm", move || host_ops.mount_shm(&shm, size)).await?;
    }

    if !host_network {
        record.netns_path = Some(String::new());
        state.save_pod(record).await?;
        let network = state
            .neighbours
            .set_up_network(SetUpPodRequest {
                pod_id: record.id.clone(),
                pod_name: record.spec.name.clone(),
                pod_namespace: record.spec.namespace.clone(),
                pod_uid: record.spec.uid.clone(),
                port_mappings: record
                    .spec
                    .port_mappings
                    .iter()
                    .map(|p| NetworkPortMapping {
                        protocol: p.protocol.clone(),
                        container_port: p.container_port,
                        host_port: p.host_port,
                        host_ip: p.host_ip.clone(),
                    })
                    .collect(),
                userns_path: record
                    .user_ns
                    .as_ref()
                    .map(|path| path.display().to_string())
                    .unwrap_or_default(),
            })
            .await?;
        record.netns_path = Some(network.netns_path);
        record.ips = network.ips;
    }
    let (hostname, ips, cgroup_path) = (
        record.spec.hostname.clone(),
        record.ips.clone(),
        record.cgroup_path.clone(),
    );
    // Recorded before they exist: a creation killed half-way has its cgroups removed at the
    // next start, and a retry (which finds them made) does not leave them behind.
    let host_ops = state.host_ops.clone();
    let planned = host("planning the pod cgroup", move || {
        Ok(host_ops.missing_cgroups(&cgroup_path))
    })
    .await?;
    record.created_cgroups = planned.clone();
    state.save_pod(record).await?;
    let host_ops = state.host_ops.clone();
    host("writing /etc/hosts and the pod cgroup", move || {
        files::write_hosts(&paths, &hostname, &ips, host_network)?;
        host_ops.create_cgroups(&planned);
        Ok(())
    })
    .await?;

    if record.spec.pid == NamespaceMode::Pod as i32 {
        let infra_id = infra::start(state, record).await?;
        record.infra_container_id = Some(infra_id);
    }
    Ok(())
}
