//! Resource usage from the cgroups (v1 controllers, or the unified hierarchy) and the writable
//! layer's size from crimson-storage.

use std::{collections::HashMap, path::Path};

use crimson_api::{
    sandbox::v1::{
        Container, ContainerState, ContainerStats, ContainerWithStats, InterfaceStats,
        ListContainersRequest, ListPodsRequest, PodStats, PodWithStats,
    },
    storage::v1::WritableLayerUsage,
};

use super::list::list_containers;
use crate::{Result, host::host, pod::list::list_pods, runtime::exit::now_nanos, state::State};

/// CPU time and memory of one cgroup.
#[derive(Debug, Default, Clone, Copy)]
pub struct CgroupUsage {
    pub cpu_nanos: u64,
    pub memory_usage: u64,
    pub memory_working_set: u64,
}

fn read_u64(path: impl AsRef<Path>) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn stat_field(path: impl AsRef<Path>, key: &str) -> Option<u64> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|v| v.trim().parse().ok()))
}

/// The directory of cgroupfs path `path` in a hierarchy that lists its processes: the v1
/// `pids` controller's, or the unified one.
fn process_hierarchy(path: &str) -> std::path::PathBuf {
    let relative = path.trim_start_matches('/');
    let root = Path::new("/sys/fs/cgroup");
    ["pids", "unified"]
        .into_iter()
        .map(|controller| root.join(controller))
        .find(|dir| dir.is_dir())
        .unwrap_or_else(|| root.to_path_buf())
        .join(relative)
}

/// Processes in cgroup `dir` and the cgroups below it.
fn count_processes(dir: &Path) -> u64 {
    let own = std::fs::read_to_string(dir.join("cgroup.procs"))
        .map_or(0, |procs| procs.lines().count() as u64);
    let below: u64 = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
        .map(|entry| count_processes(&entry.path()))
        .sum();
    own + below
}

/// Interface counters from `/proc/<pid>/net/dev` text: every interface but loopback.
pub fn parse_net_dev(text: &str) -> Vec<InterfaceStats> {
    text.lines()
        .skip(2)
        .filter_map(|line| {
            let (name, counters) = line.split_once(':')?;
            let name = name.trim();
            let counters: Vec<u64> = counters
                .split_whitespace()
                .map(|field| field.parse().unwrap_or(0))
                .collect();
            (name != "lo" && counters.len() >= 11).then(|| InterfaceStats {
                name: name.to_string(),
                rx_bytes: counters[0],
                rx_errors: counters[2],
                tx_bytes: counters[8],
                tx_errors: counters[10],
            })
        })
        .collect()
}

/// The pod network's interface counters, read through the first of `pids` still running
/// (every process of the pod shares its network namespace).
fn pod_interfaces(pod_has_own_network: bool, pids: &[u32]) -> Vec<InterfaceStats> {
    if !pod_has_own_network {
        return Vec::new();
    }
    pids.iter()
        .filter(|pid| **pid > 0)
        .find_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/net/dev")).ok())
        .map(|text| parse_net_dev(&text))
        .unwrap_or_default()
}

/// Usage of cgroup `path` (cgroupfs path).
pub fn cgroup_usage(path: &str) -> CgroupUsage {
    let relative = path.trim_start_matches('/');
    let v1 = Path::new("/sys/fs/cgroup");
    if let Some(cpu) = read_u64(v1.join("cpuacct").join(relative).join("cpuacct.usage")) {
        let memory = v1.join("memory").join(relative);
        let usage = read_u64(memory.join("memory.usage_in_bytes")).unwrap_or(0);
        let inactive = stat_field(memory.join("memory.stat"), "total_inactive_file ").unwrap_or(0);
        return CgroupUsage {
            cpu_nanos: cpu,
            memory_usage: usage,
            memory_working_set: usage.saturating_sub(inactive),
        };
    }
    let unified = if v1.join("unified").exists() {
        v1.join("unified")
    } else {
        v1.to_path_buf()
    }
    .join(relative);
    let usage = read_u64(unified.join("memory.current")).unwrap_or(0);
    let inactive = stat_field(unified.join("memory.stat"), "inactive_file ").unwrap_or(0);
    CgroupUsage {
        cpu_nanos: stat_field(unified.join("cpu.stat"), "usage_usec ").unwrap_or(0) * 1000,
        memory_usage: usage,
        memory_working_set: usage.saturating_sub(inactive),
    }
}

/// What the cgroups and `/proc` say of one pod.
struct PodUsage {
    cgroup: CgroupUsage,
    interfaces: Vec<InterfaceStats>,
    process_count: u64,
    containers: Vec<CgroupUsage>,
}

/// The stats of the containers `ListContainers` lists with `filter`, each beside it: one
/// pass over the cgroups (off the async workers) and one question to crimson-storage.
pub async fn list_container_stats(
    state: &State,
    filter: &ListContainersRequest,
) -> Result<Vec<ContainerWithStats>> {
    let containers = list_containers(state, filter).await?;
    let cgroups: Vec<String> = containers.iter().map(|c| c.cgroup_path.clone()).collect();
    let usages = host("reading container cgroups", move || {
        Ok(cgroups
            .iter()
            .map(|path| cgroup_usage(path))
            .collect::<Vec<_>>())
    })
    .await?;
    let mut layers = layer_usage(state, containers.iter()).await;
    let now = now_nanos();
    Ok(containers
        .into_iter()
        .zip(usages)
        .map(|(container, usage)| ContainerWithStats {
            stats: Some(container_stats(&container.id, now, usage, &mut layers)),
            container: Some(container),
        })
        .collect())
}

/// The stats of the pods `ListPods` lists with `filter`, each beside it and its containers.
pub async fn list_pod_stats(state: &State, filter: &ListPodsRequest) -> Result<Vec<PodWithStats>> {
    let pods = list_pods(state, filter)?;
    let mut members = Vec::with_capacity(pods.len());
    for pod in &pods {
        let of_pod = ListContainersRequest {
            pod_id: pod.id.clone(),
            ..Default::default()
        };
        members.push(list_containers(state, &of_pod).await?);
    }
    let work: Vec<_> = pods
        .iter()
        .zip(&members)
        .map(|(pod, containers)| {
            let running = containers
                .iter()
                .filter(|c| c.state == ContainerState::Running as i32)
                .map(|c| c.pid);
            let pids: Vec<u32> = std::iter::once(pod.infra_pid).chain(running).collect();
            let cgroups: Vec<String> = containers.iter().map(|c| c.cgroup_path.clone()).collect();
            (
                pod.cgroup_path.clone(),
                !pod.netns_path.is_empty(),
                pids,
                cgroups,
            )
        })
        .collect();
    let usages = host("reading pod cgroups", move || {
        Ok(work
            .into_iter()
            .map(|(cgroup, own_network, pids, cgroups)| PodUsage {
                cgroup: cgroup_usage(&cgroup),
                interfaces: pod_interfaces(own_network, &pids),
                process_count: count_processes(&process_hierarchy(&cgroup)),
                containers: cgroups.iter().map(|path| cgroup_usage(path)).collect(),
            })
            .collect::<Vec<_>>())
    })
    .await?;
    let mut layers = layer_usage(state, members.iter().flatten()).await;
    let now = now_nanos();
    Ok(pods
        .into_iter()
        .zip(members)
        .zip(usages)
        .map(|((pod, containers), usage)| {
            let stats = PodStats {
                pod_id: pod.id.clone(),
                timestamp_nanos: now,
                cpu_usage_nanos: usage.cgroup.cpu_nanos,
                memory_working_set_bytes: usage.cgroup.memory_working_set,
                memory_usage_bytes: usage.cgroup.memory_usage,
                containers: containers
                    .iter()
                    .zip(usage.containers)
                    .map(|(c, u)| container_stats(&c.id, now, u, &mut layers))
                    .collect(),
                interfaces: usage.interfaces,
                process_count: usage.process_count,
            };
            PodWithStats {
                pod: Some(pod),
                stats: Some(stats),
                containers,
            }
        })
        .collect())
}

/// The writable layers' usage of `records` by container id; none when crimson-storage does
/// not answer (the stats carry the rest).
async fn layer_usage(
    state: &State,
    containers: impl Iterator<Item = &Container>,
) -> HashMap<String, WritableLayerUsage> {
    let ids = containers.map(|c| c.id.clone()).collect();
    match state.neighbours.rootfs_usage(ids).await {
        Ok(usages) => usages.into_iter().map(|u| (u.id.clone(), u)).collect(),
        Err(error) => {
            tracing::warn!(%error, "writable layer usage unavailable");
            HashMap::new()
        }
    }
}

/// The stats of container `id`, measured at `now`.
fn container_stats(
    id: &str,
    now: i64,
    usage: CgroupUsage,
    layers: &mut HashMap<String, WritableLayerUsage>,
) -> ContainerStats {
    let layer = layers.remove(id).unwrap_or_default();
    ContainerStats {
        container_id: id.to_string(),
        timestamp_nanos: now,
        cpu_usage_nanos: usage.cpu_nanos,
        memory_working_set_bytes: usage.memory_working_set,
        memory_usage_bytes: usage.memory_usage,
        writable_layer_bytes: layer.used_bytes,
        writable_layer_inodes: layer.inodes_used,
        writable_layer_mountpoint: layer.writable_path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_dev_counters_are_read_per_interface_without_loopback() {
        let text = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0
  eth0:    4242      10    3    0    0     0          0         0     2121       8    1    0    0     0       0          0
";
        let interfaces = parse_net_dev(text);
        assert_eq!(interfaces.len(), 1);
        let eth0 = &interfaces[0];
        assert_eq!(eth0.name, "eth0");
        assert_eq!(
            (eth0.rx_bytes, eth0.rx_errors, eth0.tx_bytes, eth0.tx_errors),
            (4242, 3, 2121, 1)
        );
    }
}
