//! ListMetricDescriptors and ListPodSandboxMetrics (what kubelet reads with
//! PodAndContainerStatsFromCRI): cAdvisor-named container metrics, from the same cgroup and
//! writable-layer readings as the stats RPCs. Crimson reads CPU, memory and the writable
//! layer; network and process counts are not read yet, so nothing describes them either (each
//! descriptor has its metric for every container).

use k8s_cri::v1 as cri;

/// Label keys of every container metric, in the order of their values.
const LABEL_KEYS: [&str; 4] = ["container", "pod", "namespace", "id"];

/// One metric of a container: how it is described and where its reading is.
struct ContainerMetric {
    name: &'static str,
    help: &'static str,
    kind: cri::MetricType,
    reading: fn(&cri::ContainerStats) -> Option<u64>,
}

fn cpu_seconds(stats: &cri::ContainerStats) -> Option<u64> {
    Some(stats.cpu.as_ref()?.usage_core_nano_seconds.as_ref()?.value / 1_000_000_000)
}

fn memory_usage(stats: &cri::ContainerStats) -> Option<u64> {
    Some(stats.memory.as_ref()?.usage_bytes.as_ref()?.value)
}

fn memory_working_set(stats: &cri::ContainerStats) -> Option<u64> {
    Some(stats.memory.as_ref()?.working_set_bytes.as_ref()?.value)
}

fn writable_layer_bytes(stats: &cri::ContainerStats) -> Option<u64> {
    Some(stats.writable_layer.as_ref()?.used_bytes.as_ref()?.value)
}

const CONTAINER_METRICS: [ContainerMetric; 4] = [
    ContainerMetric {
        name: "container_cpu_usage_seconds_total",
        help: "Cumulative CPU time consumed in seconds.",
        kind: cri::MetricType::Counter,
        reading: cpu_seconds,
    },
    ContainerMetric {
        name: "container_memory_usage_bytes",
        help: "Current memory usage in bytes, including all memory regardless of when it was accessed.",
        kind: cri::MetricType::Gauge,
        reading: memory_usage,
    },
    ContainerMetric {
        name: "container_memory_working_set_bytes",
        help: "Current working set in bytes.",
        kind: cri::MetricType::Gauge,
        reading: memory_working_set,
    },
    ContainerMetric {
        name: "container_fs_usage_bytes",
        help: "Number of bytes that are consumed by the container on this filesystem.",
        kind: cri::MetricType::Gauge,
        reading: writable_layer_bytes,
    },
];

/// Every metric ListPodSandboxMetrics answers.
pub fn descriptors() -> cri::ListMetricDescriptorsResponse {
    cri::ListMetricDescriptorsResponse {
        descriptors: CONTAINER_METRICS
            .iter()
            .map(|metric| cri::MetricDescriptor {
                name: metric.name.into(),
                help: metric.help.into(),
                label_keys: LABEL_KEYS.map(String::from).to_vec(),
            })
            .collect(),
    }
}

/// The metrics of each pod's containers, from its stats.
pub fn pod_metrics(pods: Vec<cri::PodSandboxStats>) -> Vec<cri::PodSandboxMetrics> {
    pods.into_iter()
        .filter_map(|pod| {
            let attributes = pod.attributes?;
            let metadata = attributes.metadata.unwrap_or_default();
            let container_metrics = pod
                .linux?
                .containers
                .iter()
                .map(|stats| container_metrics(stats, &metadata))
                .collect();
            Some(cri::PodSandboxMetrics {
                pod_sandbox_id: attributes.id,
                metrics: Vec::new(),
                container_metrics,
            })
        })
        .collect()
}

fn container_metrics(
    stats: &cri::ContainerStats,
    pod: &cri::PodSandboxMetadata,
) -> cri::ContainerMetrics {
    let attributes = stats.attributes.clone().unwrap_or_default();
    let name = attributes.metadata.map(|m| m.name).unwrap_or_default();
    let label_values = vec![
        name,
        pod.name.clone(),
        pod.namespace.clone(),
        attributes.id.clone(),
    ];
    let timestamp = stats.cpu.as_ref().map_or(0, |cpu| cpu.timestamp);
    cri::ContainerMetrics {
        container_id: attributes.id,
        metrics: CONTAINER_METRICS
            .iter()
            .filter_map(|metric| {
                Some(cri::Metric {
                    name: metric.name.into(),
                    timestamp,
                    metric_type: metric.kind as i32,
                    label_values: label_values.clone(),
                    value: Some(cri::UInt64Value {
                        value: (metric.reading)(stats)?,
                    }),
                })
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(id: &str, name: &str) -> cri::ContainerStats {
        cri::ContainerStats {
            attributes: Some(cri::ContainerAttributes {
                id: id.into(),
                metadata: Some(cri::ContainerMetadata {
                    name: name.into(),
                    attempt: 0,
                }),
                ..Default::default()
            }),
            cpu: Some(cri::CpuUsage {
                timestamp: 7,
                usage_core_nano_seconds: Some(cri::UInt64Value {
                    value: 3_500_000_000,
                }),
                usage_nano_cores: None,
            }),
            memory: Some(cri::MemoryUsage {
                working_set_bytes: Some(cri::UInt64Value { value: 100 }),
                usage_bytes: Some(cri::UInt64Value { value: 200 }),
                ..Default::default()
            }),
            writable_layer: Some(cri::FilesystemUsage {
                used_bytes: Some(cri::UInt64Value { value: 4096 }),
                ..Default::default()
            }),
            swap: None,
        }
    }

    #[test]
    fn every_described_metric_comes_for_every_container_with_its_labels() {
        let pod = cri::PodSandboxStats {
            attributes: Some(cri::PodSandboxAttributes {
                id: "pod-1".into(),
                metadata: Some(cri::PodSandboxMetadata {
                    name: "web".into(),
                    namespace: "default".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            linux: Some(cri::LinuxPodSandboxStats {
                containers: vec![stats("c1", "app"), stats("c2", "sidecar")],
                ..Default::default()
            }),
            windows: None,
        };
        let described: Vec<String> = descriptors()
            .descriptors
            .into_iter()
            .map(|d| d.name)
            .collect();
        let answered = pod_metrics(vec![pod]);
        assert_eq!(answered[0].pod_sandbox_id, "pod-1");
        for container in &answered[0].container_metrics {
            let names: Vec<&str> = container.metrics.iter().map(|m| m.name.as_str()).collect();
            assert_eq!(names, described);
            for metric in &container.metrics {
                assert_eq!(metric.label_values.len(), LABEL_KEYS.len());
                assert_eq!(metric.label_values[3], container.container_id);
            }
        }
        let app = &answered[0].container_metrics[0];
        let value = |name: &str| {
            app.metrics
                .iter()
                .find(|m| m.name == name)
                .unwrap()
                .value
                .as_ref()
                .unwrap()
                .value
        };
        assert_eq!(app.metrics[0].label_values, ["app", "web", "default", "c1"]);
        assert_eq!(value("container_cpu_usage_seconds_total"), 3);
        assert_eq!(value("container_memory_working_set_bytes"), 100);
        assert_eq!(value("container_fs_usage_bytes"), 4096);
    }
}
