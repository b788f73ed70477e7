//! CreateContainer: root filesystem from crimson-storage, OCI config from the request, the
//! image and the pod, then conmon runs the OCI runtime's `create`.

use std::{path::PathBuf, sync::Arc};

use crimson_api::sandbox::v1::{ContainerSpec, EventKind, NamespaceMode};

use super::{idmapped_volumes, image_volumes};
use crate::{
    Result, SandboxError,
    creation::{self, Existing},
    events,
    host::host,
    layout::remove_dir,
    oci::{self, PidNamespace, mounts::PodFiles, process::ImageDefaults, user},
    peers,
    pod::{files::PodFilePaths, user_namespace},
    records::{ContainerPhase, ContainerRecord, PodPhase, PodRecord},
    runtime::{conmon, exit::now_nanos},
    state::{State, new_id},
};

/// Creates a container in pod `pod_id`, once per kubelet name (pod, name, attempt).
pub async fn create_container(
    state: Arc<State>,
    pod_id: String,
    spec: ContainerSpec,
) -> Result<String> {
    if spec.name.is_empty() {
        return Err(SandboxError::InvalidArgument(
            "metadata.name must be set".into(),
        ));
    }
    if spec.image.is_empty() {
        return Err(SandboxError::InvalidArgument("image must be set".into()));
    }
    let key = ContainerRecord::key(&pod_id, &spec);
    let existing_key = key.clone();
    creation::once(
        state,
        key,
        move |state| {
            let found = state.containers.values()?.into_iter().find(|c| {
                !c.infra
                    && c.phase != ContainerPhase::Removing
                    && ContainerRecord::key(&c.pod_id, &c.spec) == existing_key
            });
            Ok(match found {
                None => Existing::Nothing,
                Some(c) if matches!(c.phase, ContainerPhase::Created | ContainerPhase::Running) => {
                    Existing::Usable(c.id)
                }
                Some(_) => Existing::Spent,
            })
        },
        move |state| async move {
            let _pod_lock = state.pod_locks.lock(&pod_id).await;
            let pod = state.pod(&pod_id)?;
            if pod.phase != PodPhase::Ready {
                return Err(SandboxError::FailedPrecondition(format!(
                    "pod sandbox {pod_id} is not ready"
                )));
            }
            create_record(&state, &pod, spec, false)
                .await
                .map(|record| record.id)
        },
    )
    .await
}

/// Creates a container record and the container itself; undoes everything on failure.
pub async fn create_record(
    state: &State,
    pod: &PodRecord,
    spec: ContainerSpec,
    infra: bool,
) -> Result<ContainerRecord> {
    state.migration_primer.keep_warm();
    let image = state
        .neighbours
        .get_image(&spec.image)
        .await?
        .ok_or_else(|| {
            SandboxError::FailedPrecondition(format!(
                "image {:?} is not present; pull it first",
                spec.image
            ))
        })?;
    let defaults = ImageDefaults::from_config_json(&image.config_json);
    let id = new_id()?;
    let bundle = state.layout.bundle(&id);
    let log_path = if infra || pod.spec.log_directory.is_empty() || spec.log_path.is_empty() {
        bundle.join("output.log")
    } else {
        PathBuf::from(&pod.spec.log_directory).join(&spec.log_path)
    };
    let mut record = ContainerRecord {
        id: id.clone(),
        pod_id: pod.id.clone(),
        phase: ContainerPhase::Creating,
        infra,
        created_at_nanos: now_nanos(),
        started_at_nanos: 0,
        finished_at_nanos: 0,
        exit_code: 0,
        reason: String::new(),
        message: String::new(),
        image_id: image.id.clone(),
        image_ref: image
            .repo_digests
            .first()
            .cloned()
            .unwrap_or_else(|| image.id.clone()),
        log_path: log_path.display().to_string(),
        runtime_handler: pod.runtime_handler.clone(),
        pid: 0,
        conmon_pid: 0,
        cgroup_path: format!("{}/crimson-{id}", pod.cgroup_path),
        stop_signal: defaults.stop_signal.clone(),
        uid: 0,
        gid: 0,
        groups: Vec::new(),
        spec,
    };
    state.save_container(&record).await?;
    let top_chain_id = image.chain_ids.last().cloned().unwrap_or_default();
    match launch(state, pod, &mut record, &defaults, &top_chain_id).await {
        Ok(()) => {
            record.phase = ContainerPhase::Created;
            state.save_container(&record).await?;
            events::emit(state, &record, EventKind::ContainerCreated);
            tracing::info!(container = %id, name = %record.spec.name, pod = %pod.id, "container created");
            Ok(record)
        }
        Err(error) => {
            tracing::warn!(container = %id, %error, "container creation failed; undoing it");
            if let Err(undo) = discard(state, &record).await {
                tracing::warn!(container = %id, error = %undo, "undoing a failed container");
            }
            Err(error)
        }
    }
}

async fn launch(
    state: &State,
    pod: &PodRecord,
    record: &mut ContainerRecord,
    defaults: &ImageDefaults,
    top_chain_id: &str,
) -> Result<()> {
    let mappings = user_namespace::mappings(&pod.spec)?;
    let bundle = state.layout.bundle(&record.id);
    let runtime = state.runtime(&pod.runtime_handler)?;
    let settings = state.settings();
    // conmon loads while the root filesystem and the bundle are made; it waits for them.
    let monitor = state.monitor.start(conmon::ConmonCreate {
        conmon: &settings.conmon,
        runtime: &runtime,
        container_id: &record.id,
        name: &record.spec.name,
        bundle: &bundle,
        log_path: std::path::Path::new(&record.log_path),
        exit_dir: &state.layout.exits(),
        attach_dir: &state.layout.attach_sockets(),
        stdin: record.spec.stdin,
        stdin_once: record.spec.stdin_once,
        tty: record.spec.tty,
        log_size_max: settings.log_size_max,
    })?;
    let rootfs = PathBuf::from(
        state
            .neighbours
            .create_rootfs(peers::rootfs_request(&record.id, top_chain_id, mappings))
            .await?,
    );
    let image_volumes = image_volumes::mount_all(state, record, mappings).await?;
    let security = record.spec.security.clone().unwrap_or_default();
    let pid = pid_namespace(state, pod, &security)?;
    let runtime_features = runtime.features;
    let (spec_settings, pod_dir, pod_record, container, defaults) = (
        settings.clone(),
        state.layout.pod_dir(&pod.id),
        pod.clone(),
        record.spec.clone(),
        defaults.clone(),
    );
    let mut container = container;
    let idmapped = pod
        .user_ns
        .clone()
        .map(|userns| (userns, state.layout.idmapped_volumes(&record.id)));
    let (made, config) = (bundle.clone(), bundle.join("config.json"));
    let cgroup_path = record.cgroup_path.clone();
    // The image's passwd/group, mount sources, devices and profiles are read from disk; the
    // bundle is made here, in the same trip off the async workers.
    let identity = host("writing the OCI bundle", move || {
        if let Some((userns, dir)) = &idmapped {
            idmapped_volumes::map_all(&mut container, userns, dir)?;
        }
        image_volumes::bind_sources(&mut container, &image_volumes)?;
        let identity = user::resolve(&rootfs, &security, &defaults.user)?;
        let files = PodFilePaths::new(&pod_dir);
        let pod = &pod_record;
        let spec = oci::build(&oci::SpecInput {
            pod: &pod.spec,
            container: &container,
            image: &defaults,
            rootfs: &rootfs,
            identity: &identity,
            pod_files: PodFiles {
                shm: &pod.shm_path,
                resolv_conf: &files.resolv_conf,
                hosts: &files.hosts,
                hostname: pod.uts_ns.as_ref().map(|_| files.hostname.as_path()),
            },
            netns: pod.netns_path.as_deref().filter(|p| !p.is_empty()),
            uts_ns: pod.uts_ns.as_deref(),
            ipc_ns: pod.ipc_ns.as_deref(),
            pid,
            user_ns: pod.user_ns.as_deref().zip(mappings),
            cgroup_path: &cgroup_path,
            held_capabilities: &spec_settings.held_capabilities,
            apparmor: &spec_settings.apparmor,
            global_mounts: &spec_settings.global_mounts,
            oom_floor: spec_settings.oom_floor,
            runtime_features,
        })?;
        std::fs::create_dir_all(&made).map_err(SandboxError::io("creating", &made))?;
        spec.save(&config)
            .map_err(|e| SandboxError::runtime("writing config.json", e))?;
        Ok(identity)
    })
    .await?;
    record.uid = identity.uid.into();
    record.gid = identity.gid.into();
    record.groups = identity
        .additional_gids
        .iter()
        .map(|g| i64::from(*g))
        .collect();
    // runc joins its cgroups soon after conmon's release: the deadline counts from here.
    state.migration_primer.keep_warm();
    let created = crimson_metrics::timed("conmon_create", monitor.create()).await?;
    record.pid = created.pid;
    record.conmon_pid = created.conmon_pid;
    Ok(())
}

/// Which PID namespace the container gets.
fn pid_namespace(
    state: &State,
    pod: &PodRecord,
    security: &crimson_api::sandbox::v1::Security,
) -> Result<PidNamespace> {
    let join = |container_id: &str| -> Result<PidNamespace> {
        let target = state.container(container_id)?;
        Ok(PidNamespace::Join(format!("/proc/{}/ns/pid", target.pid)))
    };
    match NamespaceMode::try_from(security.pid).unwrap_or(NamespaceMode::Container) {
        NamespaceMode::Node => Ok(PidNamespace::Host),
        NamespaceMode::Container => Ok(PidNamespace::New),
        NamespaceMode::Target => join(&security.target_container_id),
        NamespaceMode::Pod => match &pod.infra_container_id {
            Some(infra) => join(infra),
            None => Ok(PidNamespace::New),
        },
    }
}

/// Removes whatever a (failed or removed) container left: runtime state, root filesystem,
/// bundle, exit file and record.
pub async fn discard(state: &State, record: &ContainerRecord) -> Result<()> {
    state.runtime_of(record)?.delete(&record.id).await?;
    state.neighbours.remove_rootfs(&record.id).await?;
    image_volumes::remove_all(state, record).await?;
    let bundle = state.layout.bundle(&record.id);
    let exit_file = state.layout.exit_file(&record.id);
    let attach_socket = state.layout.attach_sockets().join(&record.id);
    let idmapped = state.layout.idmapped_volumes(&record.id);
    host("removing the bundle", move || {
        idmapped_volumes::unmap_all(&idmapped).map_err(SandboxError::io("removing", &idmapped))?;
        remove_dir(&bundle).map_err(SandboxError::io("removing", &bundle))?;
        let _ = std::fs::remove_file(exit_file);
        let _ = std::fs::remove_file(attach_socket);
        Ok(())
    })
    .await?;
    state.containers.remove(&record.id)?;
    state.store.flush().await?;
    Ok(())
}
