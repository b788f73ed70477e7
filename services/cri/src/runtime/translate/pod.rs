//! Pod sandbox configuration and status.

use std::collections::HashMap;

use crimson_api::sandbox::v1 as sandbox;
use k8s_cri::v1 as cri;
use tonic::Status;

use super::enum_in_range;
use crate::error::missing;

const PROTOCOLS: [&str; 3] = ["tcp", "udp", "sctp"];

/// A CRI pod configuration as crimson-sandbox's `PodSpec`.
pub fn to_pod_spec(
    config: cri::PodSandboxConfig,
    runtime_handler: String,
) -> Result<sandbox::PodSpec, Status> {
    let metadata = config.metadata.ok_or_else(|| missing("config.metadata"))?;
    let linux = config.linux.unwrap_or_default();
    let security = linux.security_context.unwrap_or_default();
    let namespaces = security.namespace_options.unwrap_or_default();
    let port_mappings = config
        .port_mappings
        .into_iter()
        .map(|p| {
            let protocol = enum_in_range("port_mappings.protocol", p.protocol, 2)?;
            Ok(sandbox::PortMapping {
                protocol: PROTOCOLS[protocol as usize].to_string(),
                container_port: p.container_port,
                host_port: p.host_port,
                host_ip: p.host_ip,
            })
        })
        .collect::<Result<Vec<_>, Status>>()?;
    let (uid_mappings, gid_mappings) = user_namespace(namespaces.userns_options)?;
    Ok(sandbox::PodSpec {
        name: metadata.name,
        uid: metadata.uid,
        namespace: metadata.namespace,
        attempt: metadata.attempt,
        hostname: config.hostname,
        log_directory: config.log_directory,
        dns: config.dns_config.map(|d| sandbox::DnsConfig {
            servers: d.servers,
            searches: d.searches,
            options: d.options,
        }),
        port_mappings,
        labels: config.labels,
        annotations: config.annotations,
        cgroup_parent: linux.cgroup_parent,
        network: enum_in_range("namespace_options.network", namespaces.network, 3)?,
        pid: enum_in_range("namespace_options.pid", namespaces.pid, 3)?,
        ipc: enum_in_range("namespace_options.ipc", namespaces.ipc, 3)?,
        sysctls: linux.sysctls,
        privileged: security.privileged,
        runtime_handler,
        uid_mappings,
        gid_mappings,
    })
}

/// The uid and gid mappings of a pod's own user namespace (KEP-127); none for the host's
/// (no options, or NODE). Only POD and NODE modes exist for user namespaces.
fn user_namespace(
    options: Option<cri::UserNamespace>,
) -> Result<(Vec<sandbox::IdMapping>, Vec<sandbox::IdMapping>), Status> {
    let Some(options) = options else {
        return Ok((Vec::new(), Vec::new()));
    };
    let mode = enum_in_range("namespace_options.userns_options.mode", options.mode, 3)?;
    let has_mappings = !options.uids.is_empty() || !options.gids.is_empty();
    match cri::NamespaceMode::try_from(mode) {
        Ok(cri::NamespaceMode::Node) if has_mappings => Err(Status::invalid_argument(
            "user namespace mode NODE takes no uid or gid mappings",
        )),
        Ok(cri::NamespaceMode::Node) => Ok((Vec::new(), Vec::new())),
        Ok(cri::NamespaceMode::Pod) if options.uids.is_empty() || options.gids.is_empty() => Err(
            Status::invalid_argument("user namespace mode POD needs uid and gid mappings"),
        ),
        Ok(cri::NamespaceMode::Pod) => {
            let mappings = |mappings: Vec<cri::IdMapping>| {
                mappings
                    .into_iter()
                    .map(|m| sandbox::IdMapping {
                        container_id: m.container_id,
                        host_id: m.host_id,
                        length: m.length,
                    })
                    .collect()
            };
            Ok((mappings(options.uids), mappings(options.gids)))
        }
        _ => Err(Status::invalid_argument(format!(
            "user namespace mode {} is not supported: only POD and NODE are",
            cri::NamespaceMode::try_from(mode).map_or("?", |m| m.as_str_name())
        ))),
    }
}

/// The user namespace a pod has, as CRI says it.
fn userns_status(spec: &sandbox::PodSpec) -> cri::UserNamespace {
    if spec.uid_mappings.is_empty() {
        return cri::UserNamespace {
            mode: cri::NamespaceMode::Node as i32,
            ..Default::default()
        };
    }
    let mappings = |mappings: &[sandbox::IdMapping]| {
        mappings
            .iter()
            .map(|m| cri::IdMapping {
                host_id: m.host_id,
                container_id: m.container_id,
                length: m.length,
            })
            .collect()
    };
    cri::UserNamespace {
        mode: cri::NamespaceMode::Pod as i32,
        uids: mappings(&spec.uid_mappings),
        gids: mappings(&spec.gid_mappings),
    }
}

fn metadata(spec: &sandbox::PodSpec) -> cri::PodSandboxMetadata {
    cri::PodSandboxMetadata {
        name: spec.name.clone(),
        uid: spec.uid.clone(),
        namespace: spec.namespace.clone(),
        attempt: spec.attempt,
    }
}

/// The CRI status of a pod, with its verbose info when asked.
pub fn to_status(pod: &sandbox::Pod, verbose: bool) -> cri::PodSandboxStatusResponse {
    let spec = super::set_or_default(&pod.spec);
    let network = pod.ips.first().map(|ip| cri::PodSandboxNetworkStatus {
        ip: ip.clone(),
        additional_ips: pod
            .ips
            .iter()
            .skip(1)
            .map(|ip| cri::PodIp { ip: ip.clone() })
            .collect(),
    });
    let mut info = HashMap::new();
    if verbose {
        let details = serde_json::json!({
            "pid": pod.infra_pid,
            "netnsPath": pod.netns_path,
            "cgroupPath": pod.cgroup_path,
            "runtimeHandler": &spec.runtime_handler,
            "hostname": &spec.hostname,
        });
        info.insert("info".to_string(), details.to_string());
    }
    cri::PodSandboxStatusResponse {
        status: Some(cri::PodSandboxStatus {
            id: pod.id.clone(),
            metadata: Some(metadata(&spec)),
            state: pod.state,
            created_at: pod.created_at_nanos,
            network: Some(network.unwrap_or_default()),
            linux: Some(cri::LinuxPodSandboxStatus {
                namespaces: Some(cri::Namespace {
                    options: Some(cri::NamespaceOption {
                        network: spec.network,
                        pid: spec.pid,
                        ipc: spec.ipc,
                        userns_options: Some(userns_status(&spec)),
                        ..Default::default()
                    }),
                }),
            }),
            labels: spec.labels.clone(),
            annotations: spec.annotations.clone(),
            runtime_handler: spec.runtime_handler.clone(),
        }),
        info,
        containers_statuses: Vec::new(),
        timestamp: 0,
    }
}

/// The CRI list entry of a pod.
pub fn to_list_entry(pod: &sandbox::Pod) -> cri::PodSandbox {
    let spec = super::set_or_default(&pod.spec);
    cri::PodSandbox {
        id: pod.id.clone(),
        metadata: Some(metadata(&spec)),
        state: pod.state,
        created_at: pod.created_at_nanos,
        labels: spec.labels.clone(),
        annotations: spec.annotations.clone(),
        runtime_handler: spec.runtime_handler.clone(),
    }
}

/// A CRI pod filter as crimson-sandbox's.
pub fn to_list_request(filter: Option<cri::PodSandboxFilter>) -> sandbox::ListPodsRequest {
    let filter = filter.unwrap_or_default();
    sandbox::ListPodsRequest {
        id: filter.id,
        state: filter.state.map(|s| s.state),
        label_selector: filter.label_selector,
        include_unfinished: false,
    }
}
