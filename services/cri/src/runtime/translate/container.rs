//! Container configuration and status.

use std::collections::HashMap;

use crimson_api::sandbox::v1 as sandbox;
use k8s_cri::v1 as cri;
use tonic::Status;

use super::{
    enum_in_range,
    security_profiles::{apparmor, seccomp},
};
use crate::error::missing;

/// CRI resources as crimson-sandbox's.
pub fn to_resources(r: cri::LinuxContainerResources) -> sandbox::Resources {
    sandbox::Resources {
        cpu_period: r.cpu_period,
        cpu_quota: r.cpu_quota,
        cpu_shares: r.cpu_shares,
        memory_limit_in_bytes: r.memory_limit_in_bytes,
        oom_score_adj: r.oom_score_adj,
        cpuset_cpus: r.cpuset_cpus,
        cpuset_mems: r.cpuset_mems,
        hugepage_limits: r
            .hugepage_limits
            .into_iter()
            .map(|h| (h.page_size, h.limit))
            .collect(),
        memory_swap_limit_in_bytes: r.memory_swap_limit_in_bytes,
        unified: r.unified,
    }
}

fn from_resources(r: &sandbox::Resources) -> cri::LinuxContainerResources {
    cri::LinuxContainerResources {
        cpu_period: r.cpu_period,
        cpu_quota: r.cpu_quota,
        cpu_shares: r.cpu_shares,
        memory_limit_in_bytes: r.memory_limit_in_bytes,
        oom_score_adj: r.oom_score_adj,
        cpuset_cpus: r.cpuset_cpus.clone(),
        cpuset_mems: r.cpuset_mems.clone(),
        hugepage_limits: r
            .hugepage_limits
            .iter()
            .map(|(page_size, limit)| cri::HugepageLimit {
                page_size: page_size.clone(),
                limit: *limit,
            })
            .collect(),
        unified: r.unified.clone(),
        memory_swap_limit_in_bytes: r.memory_swap_limit_in_bytes,
    }
}

/// A CRI container configuration as crimson-sandbox's `ContainerSpec`; `image_sub_paths` are
/// its mounts' `image_sub_path`, in order (missing ones empty).
pub fn to_container_spec(
    config: cri::ContainerConfig,
    image_sub_paths: &[String],
) -> Result<sandbox::ContainerSpec, Status> {
    let metadata = config.metadata.ok_or_else(|| missing("config.metadata"))?;
    if metadata.name.is_empty() {
        return Err(missing("config.metadata.name"));
    }
    let image = config
        .image
        .map(|i| i.image)
        .filter(|i| !i.is_empty())
        .ok_or_else(|| missing("config.image.image"))?;
    let linux = config.linux.unwrap_or_default();
    let security = linux.security_context.unwrap_or_default();
    let namespaces = security.namespace_options.unwrap_or_default();
    let capabilities = security.capabilities.unwrap_or_default();
    let mounts = config
        .mounts
        .into_iter()
        .enumerate()
        .map(|(index, m)| {
            let image = m.image.map(|spec| spec.image).unwrap_or_default();
            let image_sub_path = image_sub_paths.get(index).cloned().unwrap_or_default();
            if image.is_empty() && !image_sub_path.is_empty() {
                return Err(Status::invalid_argument(format!(
                    "mount at {}: image_sub_path needs an image",
                    m.container_path
                )));
            }
            Ok(sandbox::Mount {
                container_path: m.container_path,
                host_path: m.host_path,
                readonly: m.readonly,
                propagation: enum_in_range("mounts.propagation", m.propagation, 2)?,
                selinux_relabel: m.selinux_relabel,
                recursive_read_only: m.recursive_read_only,
                image,
                image_sub_path,
            })
        })
        .collect::<Result<Vec<_>, Status>>()?;
    let paths = |paths: Vec<String>| (!paths.is_empty()).then_some(sandbox::PathList { paths });
    Ok(sandbox::ContainerSpec {
        name: metadata.name,
        attempt: metadata.attempt,
        image,
        command: config.command,
        args: config.args,
        working_dir: config.working_dir,
        envs: config
            .envs
            .into_iter()
            .map(|kv| sandbox::KeyValue {
                key: kv.key,
                value: kv.value,
            })
            .collect(),
        mounts,
        devices: config
            .devices
            .into_iter()
            .map(|d| sandbox::Device {
                container_path: d.container_path,
                host_path: d.host_path,
                permissions: d.permissions,
            })
            .collect(),
        labels: config.labels,
        annotations: config.annotations,
        log_path: config.log_path,
        stdin: config.stdin,
        stdin_once: config.stdin_once,
        tty: config.tty,
        resources: Some(to_resources(linux.resources.unwrap_or_default())),
        security: Some(sandbox::Security {
            privileged: security.privileged,
            readonly_rootfs: security.readonly_rootfs,
            no_new_privs: security.no_new_privs,
            run_as_user: security.run_as_user.map(|v| v.value),
            run_as_username: security.run_as_username,
            run_as_group: security.run_as_group.map(|v| v.value),
            supplemental_groups: security.supplemental_groups,
            strict_supplemental_groups: enum_in_range(
                "supplemental_groups_policy",
                security.supplemental_groups_policy,
                1,
            )? == cri::SupplementalGroupsPolicy::Strict as i32,
            add_capabilities: capabilities.add_capabilities,
            drop_capabilities: capabilities.drop_capabilities,
            // Older kubelets still send the profile as a path.
            #[allow(deprecated)]
            seccomp: Some(seccomp(security.seccomp, &security.seccomp_profile_path)?),
            #[allow(deprecated)]
            apparmor: Some(apparmor(security.apparmor, &security.apparmor_profile)?),
            masked_paths: paths(security.masked_paths),
            readonly_paths: paths(security.readonly_paths),
            pid: enum_in_range("namespace_options.pid", namespaces.pid, 3)?,
            target_container_id: namespaces.target_id,
        }),
    })
}

fn metadata(spec: &sandbox::ContainerSpec) -> cri::ContainerMetadata {
    cri::ContainerMetadata {
        name: spec.name.clone(),
        attempt: spec.attempt,
    }
}

/// The CRI status of a container.
pub fn to_status(container: &sandbox::Container, verbose: bool) -> cri::ContainerStatusResponse {
    let spec = super::set_or_default(&container.spec);
    let mut info = HashMap::new();
    if verbose {
        let details = serde_json::json!({
            "pid": container.pid,
            "sandboxID": container.pod_id,
            "cgroupPath": container.cgroup_path,
            "imageID": container.image_id,
        });
        info.insert("info".to_string(), details.to_string());
    }
    cri::ContainerStatusResponse {
        status: Some(cri::ContainerStatus {
            id: container.id.clone(),
            metadata: Some(metadata(&spec)),
            state: container.state,
            created_at: container.created_at_nanos,
            started_at: container.started_at_nanos,
            finished_at: container.finished_at_nanos,
            exit_code: container.exit_code,
            image: Some(cri::ImageSpec {
                image: spec.image.clone(),
                ..Default::default()
            }),
            image_ref: container.image_ref.clone(),
            reason: container.reason.clone(),
            message: container.message.clone(),
            labels: spec.labels.clone(),
            annotations: spec.annotations.clone(),
            mounts: spec
                .mounts
                .iter()
                .map(|m| cri::Mount {
                    container_path: m.container_path.clone(),
                    host_path: m.host_path.clone(),
                    readonly: m.readonly,
                    selinux_relabel: m.selinux_relabel,
                    propagation: m.propagation,
                    ..Default::default()
                })
                .collect(),
            log_path: container.log_path.clone(),
            resources: spec.resources.as_ref().map(|r| cri::ContainerResources {
                linux: Some(from_resources(r)),
                windows: None,
            }),
            image_id: container.image_id.clone(),
            user: Some(cri::ContainerUser {
                linux: Some(cri::LinuxContainerUser {
                    uid: container.uid,
                    gid: container.gid,
                    supplemental_groups: container.groups.clone(),
                }),
            }),
        }),
        info,
    }
}

/// The CRI list entry of a container.
pub fn to_list_entry(container: &sandbox::Container) -> cri::Container {
    let spec = super::set_or_default(&container.spec);
    cri::Container {
        id: container.id.clone(),
        pod_sandbox_id: container.pod_id.clone(),
        metadata: Some(metadata(&spec)),
        image: Some(cri::ImageSpec {
            image: spec.image.clone(),
            ..Default::default()
        }),
        image_ref: container.image_ref.clone(),
        state: container.state,
        created_at: container.created_at_nanos,
        labels: spec.labels.clone(),
        annotations: spec.annotations.clone(),
        image_id: container.image_id.clone(),
    }
}

/// A CRI container filter as crimson-sandbox's.
pub fn to_list_request(filter: Option<cri::ContainerFilter>) -> sandbox::ListContainersRequest {
    let filter = filter.unwrap_or_default();
    sandbox::ListContainersRequest {
        id: filter.id,
        pod_id: filter.pod_sandbox_id,
        state: filter.state.map(|s| s.state),
        label_selector: filter.label_selector,
        include_internal: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_fields_are_invalid_arguments() {
        assert!(to_container_spec(cri::ContainerConfig::default(), &[]).is_err());
        let config = cri::ContainerConfig {
            metadata: Some(cri::ContainerMetadata {
                name: "c".into(),
                attempt: 0,
            }),
            ..Default::default()
        };
        assert_eq!(
            to_container_spec(config, &[]).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
    }

    #[test]
    fn image_volumes_carry_their_image_and_sub_path() {
        let mount = |image: &str| cri::Mount {
            container_path: "/data".into(),
            image: Some(cri::ImageSpec {
                image: image.into(),
                ..Default::default()
            }),
            readonly: true,
            ..Default::default()
        };
        let config = |mounts| cri::ContainerConfig {
            metadata: Some(cri::ContainerMetadata {
                name: "c".into(),
                attempt: 0,
            }),
            image: Some(cri::ImageSpec {
                image: "busybox".into(),
                ..Default::default()
            }),
            mounts,
            ..Default::default()
        };
        let spec = to_container_spec(config(vec![mount("data:1")]), &["dir".into()]).unwrap();
        assert_eq!(
            (
                spec.mounts[0].image.as_str(),
                spec.mounts[0].image_sub_path.as_str()
            ),
            ("data:1", "dir")
        );
        let refused = to_container_spec(config(vec![mount("")]), &["dir".into()]).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    }
}
