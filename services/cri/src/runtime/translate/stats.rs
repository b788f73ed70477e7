//! Container and pod usage as CRI stats.

use crimson_api::sandbox::v1 as sandbox;
use k8s_cri::v1 as cri;

fn value(v: u64) -> Option<cri::UInt64Value> {
    Some(cri::UInt64Value { value: v })
}

fn cpu(timestamp: i64, usage_nanos: u64) -> Option<cri::CpuUsage> {
    Some(cri::CpuUsage {
        timestamp,
        usage_core_nano_seconds: value(usage_nanos),
        usage_nano_cores: None,
    })
}

fn memory(timestamp: i64, working_set: u64, usage: u64) -> Option<cri::MemoryUsage> {
    Some(cri::MemoryUsage {
        timestamp,
        working_set_bytes: value(working_set),
        usage_bytes: value(usage),
        ..Default::default()
    })
}

/// The pod network's counters; the default interface is `eth0` when there is one.
fn network(timestamp: i64, interfaces: &[sandbox::InterfaceStats]) -> Option<cri::NetworkUsage> {
    let usage = |stats: &sandbox::InterfaceStats| cri::NetworkInterfaceUsage {
        name: stats.name.clone(),
        rx_bytes: value(stats.rx_bytes),
        rx_errors: value(stats.rx_errors),
        tx_bytes: value(stats.tx_bytes),
        tx_errors: value(stats.tx_errors),
    };
    let default = interfaces
        .iter()
        .find(|i| i.name == "eth0")
        .or(interfaces.first())?;
    Some(cri::NetworkUsage {
        timestamp,
        default_interface: Some(usage(default)),
        interfaces: interfaces.iter().map(usage).collect(),
    })
}

/// CRI stats of one container; `container` supplies its metadata.
pub fn container_stats(
    stats: &sandbox::ContainerStats,
    container: &sandbox::Container,
) -> cri::ContainerStats {
    let spec = super::set_or_default(&container.spec);
    cri::ContainerStats {
        attributes: Some(cri::ContainerAttributes {
            id: container.id.clone(),
            metadata: Some(cri::ContainerMetadata {
                name: spec.name.clone(),
                attempt: spec.attempt,
            }),
            labels: spec.labels.clone(),
            annotations: spec.annotations.clone(),
        }),
        cpu: cpu(stats.timestamp_nanos, stats.cpu_usage_nanos),
        memory: memory(
            stats.timestamp_nanos,
            stats.memory_working_set_bytes,
            stats.memory_usage_bytes,
        ),
        writable_layer: Some(cri::FilesystemUsage {
            timestamp: stats.timestamp_nanos,
            fs_id: Some(cri::FilesystemIdentifier {
                mountpoint: stats.writable_layer_mountpoint.clone(),
            }),
            used_bytes: value(stats.writable_layer_bytes),
            inodes_used: value(stats.writable_layer_inodes),
        }),
        swap: None,
    }
}

/// CRI stats of a pod.
pub fn pod_stats(
    stats: &sandbox::PodStats,
    pod: &sandbox::Pod,
    containers: &[sandbox::Container],
) -> cri::PodSandboxStats {
    let spec = super::set_or_default(&pod.spec);
    cri::PodSandboxStats {
        attributes: Some(cri::PodSandboxAttributes {
            id: pod.id.clone(),
            metadata: Some(cri::PodSandboxMetadata {
                name: spec.name.clone(),
                uid: spec.uid.clone(),
                namespace: spec.namespace.clone(),
                attempt: spec.attempt,
            }),
            labels: spec.labels.clone(),
            annotations: spec.annotations.clone(),
        }),
        linux: Some(cri::LinuxPodSandboxStats {
            cpu: cpu(stats.timestamp_nanos, stats.cpu_usage_nanos),
            memory: memory(
                stats.timestamp_nanos,
                stats.memory_working_set_bytes,
                stats.memory_usage_bytes,
            ),
            network: network(stats.timestamp_nanos, &stats.interfaces),
            process: Some(cri::ProcessUsage {
                timestamp: stats.timestamp_nanos,
                process_count: value(stats.process_count),
            }),
            containers: stats
                .containers
                .iter()
                .filter_map(|s| {
                    containers
                        .iter()
                        .find(|c| c.id == s.container_id)
                        .map(|c| container_stats(s, c))
                })
                .collect(),
        }),
        windows: None,
    }
}
