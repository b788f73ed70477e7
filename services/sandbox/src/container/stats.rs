//! Resource usage from the cgroups (v1 controllers, or the unified hierarchy) and the writable
//! layer's size from crimson-storage.

use std::path::Path;

use crimson_api::sandbox::v1::{ContainerStats, InterfaceStats, PodStats};

use crate::{
    Result, peers,
    records::{ContainerPhase, ContainerRecord},
    runtime::exit::now_nanos,
    state::State,
};

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

/// The pod network's interface counters, read through a running process of the pod (every
/// process in it shares the pod's network namespace).
fn pod_interfaces(
    pod_has_own_network: bool,
    containers: &[ContainerRecord],
) -> Vec<InterfaceStats> {
    if !pod_has_own_network {
        return Vec::new();
    }
    containers
        .iter()
        .filter(|c| c.phase == ContainerPhase::Running && c.pid > 0)
        .find_map(|c| std::fs::read_to_string(format!("/proc/{}/net/dev", c.pid)).ok())
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

/// Stats of one container.
pub async fn container_stats(state: &State, record: &ContainerRecord) -> Result<ContainerStats> {
    let usage = cgroup_usage(&record.cgroup_path);
    let layer = peers::rootfs_usage(state, &record.id).await.ok();
    Ok(ContainerStats {
        container_id: record.id.clone(),
        timestamp_nanos: now_nanos(),
        cpu_usage_nanos: usage.cpu_nanos,
        memory_working_set_bytes: usage.memory_working_set,
        memory_usage_bytes: usage.memory_usage,
        writable_layer_bytes: layer.as_ref().map_or(0, |l| l.used_bytes),
        writable_layer_inodes: layer.as_ref().map_or(0, |l| l.inodes_used),
        writable_layer_mountpoint: layer.map(|l| l.writable_path).unwrap_or_default(),
    })
}

/// Stats of a pod and its containers.
pub async fn pod_stats(state: &State, pod_id: &str) -> Result<PodStats> {
    let pod = state.pod(pod_id)?;
    let usage = cgroup_usage(&pod.cgroup_path);
    let records = state.containers_of(pod_id)?;
    let mut containers = Vec::new();
    for record in records
        .iter()
        .filter(|c| !c.infra && c.phase != ContainerPhase::Removing)
    {
        containers.push(container_stats(state, record).await?);
    }
    Ok(PodStats {
        pod_id: pod_id.to_string(),
        timestamp_nanos: now_nanos(),
        cpu_usage_nanos: usage.cpu_nanos,
        memory_working_set_bytes: usage.memory_working_set,
        memory_usage_bytes: usage.memory_usage,
        containers,
        interfaces: pod_interfaces(pod.netns_path.is_some(), &records),
        process_count: count_processes(&process_hierarchy(&pod.cgroup_path)),
    })
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
