//! ListMetricDescriptors and ListPodSandboxMetrics (what kubelet reads with
//! PodAndContainerStatsFromCRI): cAdvisor-named metrics, from the same cgroup, network and
//! writable-layer readings as the stats RPCs. Each container has CPU, memory and writable
//! layer metrics; each pod (as cAdvisor names a pod cgroup: `container=""`, `id` the pod's)
//! its process count and, per interface of its network namespace, network counters.

use k8s_cri::v1 as cri;

/// Label keys of every container and pod metric, in the order of their values.
const LABEL_KEYS: [&str; 4] = ["container", "pod", "namespace", "id"];

/// The label key network metrics add after [`LABEL_KEYS`].
const INTERFACE_KEY: &str = "interface";

/// One counter of a pod network interface.
struct InterfaceMetric {
    name: &'static str,
    help: &'static str,
    reading: fn(&cri::NetworkInterfaceUsage) -> Option<u64>,
}

const INTERFACE_METRICS: [InterfaceMetric; 4] = [
    InterfaceMetric {
        name: "container_network_receive_bytes_total",
        help: "Cumulative count of bytes received",
        reading: |i| Some(i.rx_bytes.as_ref()?.value),
    },
    InterfaceMetric {
        name: "container_network_receive_errors_total",
        help: "Cumulative count of errors encountered while receiving",
        reading: |i| Some(i.rx_errors.as_ref()?.value),
    },
    InterfaceMetric {
        name: "container_network_transmit_bytes_total",
        help: "Cumulative count of bytes transmitted",
        reading: |i| Some(i.tx_bytes.as_ref()?.value),
    },
    InterfaceMetric {
        name: "container_network_transmit_errors_total",
        help: "Cumulative count of errors encountered while transmitting",
        reading: |i| Some(i.tx_errors.as_ref()?.value),
    },
];

/// The pod-level process count.
const PROCESSES: (&str, &str) = (
    "container_processes",
    "Number of processes running inside the container.",
);

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

fn descriptor(name: &str, help: &str, extra_key: Option<&str>) -> cri::MetricDescriptor {
    cri::MetricDescriptor {
        name: name.into(),
        help: help.into(),
        label_keys: LABEL_KEYS
            .into_iter()
            .chain(extra_key)
            .map(String::from)
            .collect(),
    }
}

/// Every metric ListPodSandboxMetrics answers.
pub fn descriptors() -> cri::ListMetricDescriptorsResponse {
    let container = CONTAINER_METRICS
        .iter()
        .map(|metric| descriptor(metric.name, metric.help, None));
    let network = INTERFACE_METRICS
        .iter()
        .map(|metric| descriptor(metric.name, metric.help, Some(INTERFACE_KEY)));
    cri::ListMetricDescriptorsResponse {
        descriptors: container
            .chain(network)
            .chain([descriptor(PROCESSES.0, PROCESSES.1, None)])
            .collect(),
    }
}

/// The metrics of each pod's containers, from its stats.
pub fn pod_metrics(pods: Vec<cri::PodSandboxStats>) -> Vec<cri::PodSandboxMetrics> {
    pods.into_iter()
        .filter_map(|pod| {
            let attributes = pod.attributes?;
            let metadata = attributes.metadata.unwrap_or_default();
            let linux = pod.linux?;
            let container_metrics = linux
                .containers
                .iter()
                .map(|stats| container_metrics(stats, &metadata))
                .collect();
            Some(cri::PodSandboxMetrics {
                metrics: pod_level_metrics(&linux, &metadata, &attributes.id),
                pod_sandbox_id: attributes.id,
                container_metrics,
            })
        })
        .collect()
}

/// The pod's process count and its interfaces' counters.
fn pod_level_metrics(
    linux: &cri::LinuxPodSandboxStats,
    pod: &cri::PodSandboxMetadata,
    pod_id: &str,
) -> Vec<cri::Metric> {
    let labels = vec![
        String::new(),
        pod.name.clone(),
        pod.namespace.clone(),
        pod_id.to_string(),
    ];
    let metric = |name: &str, kind: cri::MetricType, timestamp, labels, value| cri::Metric {
        name: name.into(),
        timestamp,
        metric_type: kind as i32,
        label_values: labels,
        value: Some(cri::UInt64Value { value }),
    };
    let mut metrics = Vec::new();
    if let Some(process) = &linux.process
        && let Some(count) = &process.process_count
    {
        metrics.push(metric(
            PROCESSES.0,
            cri::MetricType::Gauge,
            process.timestamp,
            labels.clone(),
            count.value,
        ));
    }
    if let Some(network) = &linux.network {
        for interface in &network.interfaces {
            let mut labels = labels.clone();
            labels.push(interface.name.clone());
            for counter in &INTERFACE_METRICS {
                if let Some(value) = (counter.reading)(interface) {
                    metrics.push(metric(
                        counter.name,
                        cri::MetricType::Counter,
                        network.timestamp,
                        labels.clone(),
                        value,
                    ));
                }
            }
        }
    }
    metrics
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

    /// Pod `pod-1`, `default/web`, with `linux` stats.
    fn web_pod(linux: cri::LinuxPodSandboxStats) -> cri::PodSandboxStats {
        cri::PodSandboxStats {
            attributes: Some(cri::PodSandboxAttributes {
                id: "pod-1".into(),
                metadata: Some(cri::PodSandboxMetadata {
                    name: "web".into(),
                    namespace: "default".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            linux: Some(linux),
            windows: None,
        }
    }

    #[test]
    fn every_described_metric_comes_for_every_container_with_its_labels() {
        let pod = web_pod(cri::LinuxPodSandboxStats {
            containers: vec![stats("c1", "app"), stats("c2", "sidecar")],
            ..Default::default()
        });
        let described: Vec<String> = descriptors()
            .descriptors
            .into_iter()
            .map(|d| d.name)
            .take(CONTAINER_METRICS.len())
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

    #[test]
    fn pods_have_their_process_count_and_a_counter_set_per_interface() {
        let pod = web_pod(cri::LinuxPodSandboxStats {
            process: Some(cri::ProcessUsage {
                timestamp: 7,
                process_count: Some(cri::UInt64Value { value: 3 }),
            }),
            network: Some(cri::NetworkUsage {
                timestamp: 7,
                default_interface: None,
                interfaces: ["eth0", "net1"]
                    .map(|name| cri::NetworkInterfaceUsage {
                        name: name.into(),
                        rx_bytes: Some(cri::UInt64Value { value: 10 }),
                        rx_errors: Some(cri::UInt64Value { value: 0 }),
                        tx_bytes: Some(cri::UInt64Value { value: 20 }),
                        tx_errors: Some(cri::UInt64Value { value: 1 }),
                    })
                    .to_vec(),
            }),
            ..Default::default()
        });
        let descriptors = descriptors().descriptors;
        let metrics = &pod_metrics(vec![pod])[0].metrics;
        assert_eq!(metrics.len(), 1 + 2 * INTERFACE_METRICS.len());
        for metric in metrics {
            let described = descriptors.iter().find(|d| d.name == metric.name).unwrap();
            assert_eq!(metric.label_values.len(), described.label_keys.len());
            assert_eq!(metric.label_values[..4], ["", "web", "default", "pod-1"]);
        }
        let sent = metrics
            .iter()
            .find(|m| {
                m.name == "container_network_transmit_bytes_total" && m.label_values[4] == "net1"
            })
            .unwrap();
        assert_eq!(sent.value.as_ref().unwrap().value, 20);
        let processes = metrics.iter().find(|m| m.name == PROCESSES.0).unwrap();
        assert_eq!(processes.value.as_ref().unwrap().value, 3);
    }
}
