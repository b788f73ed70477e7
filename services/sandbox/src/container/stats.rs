//! Resource usage from the cgroups (v1 controllers, or the unified hierarchy) and the writable
//! layer's size from crimson-storage.

use std::path::Path;

use crimson_api::sandbox::v1::{ContainerStats, PodStats};

use crate::{Result, peers, records::ContainerRecord, runtime::exit::now_nanos, state::State};

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
    let mut containers = Vec::new();
    for record in state.containers_of(pod_id)?.iter().filter(|c| !c.infra) {
        containers.push(container_stats(state, record).await?);
    }
    Ok(PodStats {
        pod_id: pod_id.to_string(),
        timestamp_nanos: now_nanos(),
        cpu_usage_nanos: usage.cpu_nanos,
        memory_working_set_bytes: usage.memory_working_set,
        memory_usage_bytes: usage.memory_usage,
        containers,
    })
}
