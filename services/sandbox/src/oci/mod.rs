//! Building the OCI runtime configuration of a container from the CRI request, the image
//! config and the pod, with the oci-spec crate.

pub mod apparmor;
pub mod capabilities;
pub mod mounts;
pub mod process;
pub mod resources;
pub mod seccomp;
pub mod secure_path;
pub mod user;

#[cfg(test)]
mod golden;

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use crimson_api::sandbox::v1::{ContainerSpec, PodSpec, seccomp_profile::Kind as SeccompKind};
use oci_spec::runtime::{
    Capabilities, LinuxBuilder, LinuxDeviceBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType,
    LinuxIdMapping, LinuxIdMappingBuilder, LinuxNamespaceBuilder, LinuxNamespaceType,
    ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

use crate::{Result, SandboxError, pod::user_namespace::PodMappings};

/// Where the container's PID namespace comes from.
#[derive(Debug, Clone)]
pub enum PidNamespace {
    /// Its own.
    New,
    /// The host's.
    Host,
    /// An existing one (the pod's infra process, or a target container).
    Join(String),
}

/// Everything the configuration is built from.
pub struct SpecInput<'a> {
    /// The pod.
    pub pod: &'a PodSpec,
    /// The container as kubelet asked for it.
    pub container: &'a ContainerSpec,
    /// What the image config says.
    pub image: &'a process::ImageDefaults,
    /// The mounted root filesystem.
    pub rootfs: &'a Path,
    /// The process's user and groups, resolved in the image.
    pub identity: &'a user::Identity,
    /// The pod's shared files.
    pub pod_files: mounts::PodFiles<'a>,
    /// The pod's network namespace; none: the host's.
    pub netns: Option<&'a str>,
    /// The pod's pinned UTS namespace; none: the host's.
    pub uts_ns: Option<&'a Path>,
    /// The pod's pinned IPC namespace; none: the host's.
    pub ipc_ns: Option<&'a Path>,
    /// Where the PID namespace comes from.
    pub pid: PidNamespace,
    /// The pod's own user namespace (pinned) and its mappings, if it has one.
    pub user_ns: Option<(&'a Path, PodMappings)>,
    /// The container's cgroup (cgroupfs path).
    pub cgroup_path: &'a str,
    /// The capabilities this daemon holds (what a privileged container gets).
    pub held_capabilities: &'a Capabilities,
    /// Whether the host has AppArmor, and its loaded profiles.
    pub apparmor: &'a apparmor::HostAppArmor,
    /// containers-mounts.conf: host path, container path.
    pub global_mounts: &'a [(PathBuf, PathBuf)],
    /// The lowest oom_score_adj a container may ask for (this daemon's own).
    pub oom_floor: i32,
    /// What the container's runtime handler supports.
    pub runtime_features: crate::runtime::features::RuntimeFeatures,
}

/// One OCI ID mapping.
fn id_mapping(mapping: crimson_sys::user_namespaces::IdMapping) -> Result<LinuxIdMapping> {
    LinuxIdMappingBuilder::default()
        .container_id(mapping.container_id)
        .host_id(mapping.host_id)
        .size(mapping.length)
        .build()
        .map_err(invalid)
}

/// Paths hidden from unprivileged containers unless the request says otherwise.
const DEFAULT_MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
/// Paths read-only for unprivileged containers unless the request says otherwise.
const DEFAULT_READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

fn invalid(e: impl std::fmt::Display) -> SandboxError {
    SandboxError::InvalidArgument(e.to_string())
}

/// The container's `config.json`.
pub fn build(input: &SpecInput<'_>) -> Result<Spec> {
    let security = input.container.security.clone().unwrap_or_default();
    let privileged = security.privileged;
    let capabilities = capabilities::container_capabilities(
        privileged,
        &security.add_capabilities,
        &security.drop_capabilities,
        input.held_capabilities,
        input.identity.uid,
    )?;
    let resources = input.container.resources.clone().unwrap_or_default();
    let mut process = ProcessBuilder::default()
        .terminal(input.container.tty)
        .user(
            UserBuilder::default()
                .uid(input.identity.uid)
                .gid(input.identity.gid)
                .additional_gids(input.identity.additional_gids.clone())
                .build()
                .map_err(invalid)?,
        )
        .args(process::argv(input.container, input.image)?)
        .env(process::env(
            input.container,
            input.image,
            &input.pod.hostname,
        ))
        .cwd(process::working_dir(input.container, input.image))
        .capabilities(capabilities.clone())
        .no_new_privileges(security.no_new_privs)
        .build()
        .map_err(invalid)?;
    process.set_apparmor_profile(apparmor::profile_for(
        security.apparmor.as_ref(),
        privileged,
        input.apparmor,
    )?);
    if resources.oom_score_adj != 0 {
        let adj = i32::try_from(resources.oom_score_adj).map_err(invalid)?;
        process.set_oom_score_adj(Some(resources::clamp_oom_score_adj(adj, input.oom_floor)));
    }

    let plan = mounts::plan(
        &input.pod_files,
        &input.container.mounts,
        input.global_mounts,
        privileged,
        security.readonly_rootfs,
        input.runtime_features,
    )?;

    let mut namespaces = vec![namespace(LinuxNamespaceType::Mount, None)?];
    if let Some((user_ns, _)) = input.user_ns {
        // The pod's other namespaces are owned by it: runc joins it first.
        namespaces.push(namespace(
            LinuxNamespaceType::User,
            Some(&user_ns.display().to_string()),
        )?);
    }
    if let Some(netns) = input.netns {
        namespaces.push(namespace(LinuxNamespaceType::Network, Some(netns))?);
    }
    if let Some(ipc) = input.ipc_ns {
        namespaces.push(namespace(
            LinuxNamespaceType::Ipc,
            Some(&ipc.display().to_string()),
        )?);
    }
    if let Some(uts) = input.uts_ns {
        namespaces.push(namespace(
            LinuxNamespaceType::Uts,
            Some(&uts.display().to_string()),
        )?);
    }
    match &input.pid {
        PidNamespace::New => namespaces.push(namespace(LinuxNamespaceType::Pid, None)?),
        PidNamespace::Join(path) => {
            namespaces.push(namespace(LinuxNamespaceType::Pid, Some(path))?)
        }
        PidNamespace::Host => {}
    }

    let mut linux_resources = resources::linux_resources(&resources);
    let mut device_rules = vec![
        LinuxDeviceCgroupBuilder::default()
            .allow(privileged)
            .access("rwm")
            .build()
            .map_err(invalid)?,
    ];
    let mut devices = Vec::new();
    for device in &input.container.devices {
        let (linux_device, rule) = host_device(device)?;
        devices.push(linux_device);
        device_rules.push(rule);
    }
    linux_resources.set_devices(Some(device_rules));

    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .cgroups_path(PathBuf::from(input.cgroup_path))
        .resources(linux_resources)
        .devices(devices)
        .build()
        .map_err(invalid)?;
    if let Some((_, mappings)) = input.user_ns {
        linux.set_uid_mappings(Some(vec![id_mapping(mappings.uid)?]));
        linux.set_gid_mappings(Some(vec![id_mapping(mappings.gid)?]));
    }
    if privileged {
        // oci-spec's defaults mask /proc and /sys paths; a privileged container sees them all,
        // as with containerd and CRI-O.
        linux.set_masked_paths(None);
        linux.set_readonly_paths(None);
    } else {
        let masked = security.masked_paths.as_ref().map_or_else(
            || DEFAULT_MASKED_PATHS.iter().map(|p| p.to_string()).collect(),
            |l| l.paths.clone(),
        );
        let readonly = security.readonly_paths.as_ref().map_or_else(
            || {
                DEFAULT_READONLY_PATHS
                    .iter()
                    .map(|p| p.to_string())
                    .collect()
            },
            |l| l.paths.clone(),
        );
        linux.set_masked_paths(Some(masked));
        linux.set_readonly_paths(Some(readonly));
        let seccomp = security.seccomp.clone().unwrap_or_default();
        match SeccompKind::try_from(seccomp.kind).unwrap_or(SeccompKind::Unconfined) {
            SeccompKind::Unconfined => {}
            SeccompKind::RuntimeDefault => {
                // Non-root containers may gain their bounding set through setuid binaries.
                let relevant = capabilities.bounding().clone().unwrap_or_default();
                linux.set_seccomp(Some(seccomp::runtime_default(&relevant)));
            }
            SeccompKind::Localhost => {
                linux.set_seccomp(Some(seccomp::localhost(Path::new(
                    &seccomp.localhost_path,
                ))?));
            }
        }
    }
    if !input.pod.sysctls.is_empty() {
        linux.set_sysctl(Some(
            input
                .pod
                .sysctls
                .clone()
                .into_iter()
                .collect::<HashMap<_, _>>(),
        ));
    }
    if let Some(propagation) = plan.rootfs_propagation {
        linux.set_rootfs_propagation(Some(propagation));
    }

    let mut spec = SpecBuilder::default()
        .version("1.0.2-dev")
        .root(
            RootBuilder::default()
                .path(input.rootfs)
                .readonly(security.readonly_rootfs)
                .build()
                .map_err(invalid)?,
        )
        .process(process)
        .mounts(plan.mounts)
        .linux(linux)
        .build()
        .map_err(invalid)?;
    spec.set_hostname(
        input
            .uts_ns
            .map(|_| input.pod.hostname.clone())
            .filter(|h| !h.is_empty()),
    );
    Ok(spec)
}

fn namespace(
    typ: LinuxNamespaceType,
    path: Option<&str>,
) -> Result<oci_spec::runtime::LinuxNamespace> {
    let mut builder = LinuxNamespaceBuilder::default().typ(typ);
    if let Some(path) = path {
        builder = builder.path(PathBuf::from(path));
    }
    builder.build().map_err(invalid)
}

/// A host device made available in the container, with its cgroup rule.
fn host_device(
    device: &crimson_api::sandbox::v1::Device,
) -> Result<(
    oci_spec::runtime::LinuxDevice,
    oci_spec::runtime::LinuxDeviceCgroup,
)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let meta = std::fs::metadata(&device.host_path)
        .map_err(SandboxError::io("inspecting device", &device.host_path))?;
    let typ = if meta.file_type().is_char_device() {
        LinuxDeviceType::C
    } else if meta.file_type().is_block_device() {
        LinuxDeviceType::B
    } else {
        return Err(SandboxError::InvalidArgument(format!(
            "{} is not a device",
            device.host_path
        )));
    };
    let (major, minor) = (
        nix::sys::stat::major(meta.rdev()) as i64,
        nix::sys::stat::minor(meta.rdev()) as i64,
    );
    let access = if device.permissions.is_empty() {
        "rwm".to_string()
    } else {
        device.permissions.clone()
    };
    let linux_device = LinuxDeviceBuilder::default()
        .path(PathBuf::from(&device.container_path))
        .typ(typ)
        .major(major)
        .minor(minor)
        .file_mode(meta.mode() & 0o777)
        .uid(0u32)
        .gid(0u32)
        .build()
        .map_err(invalid)?;
    let rule = LinuxDeviceCgroupBuilder::default()
        .allow(true)
        .typ(typ)
        .major(major)
        .minor(minor)
        .access(access)
        .build()
        .map_err(invalid)?;
    Ok((linux_device, rule))
}
