//! CRI resources as OCI `LinuxResources`, for cgroup v1 (and hybrid) or v2 hosts.

use std::{path::Path, sync::OnceLock};

use crimson_api::sandbox::v1::Resources;
use oci_spec::runtime::{LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxResources};

/// The cgroup limits of `resources`; `None` fields are left to the parent cgroup.
pub fn linux_resources(resources: &Resources) -> LinuxResources {
    let mut cpu = LinuxCpu::default();
    if resources.cpu_shares > 0 {
        cpu.set_shares(Some(resources.cpu_shares as u64));
    }
    if resources.cpu_quota != 0 {
        cpu.set_quota(Some(resources.cpu_quota));
    }
    if resources.cpu_period > 0 {
        cpu.set_period(Some(resources.cpu_period as u64));
    }
    if !resources.cpuset_cpus.is_empty() {
        cpu.set_cpus(Some(resources.cpuset_cpus.clone()));
    }
    if !resources.cpuset_mems.is_empty() {
        cpu.set_mems(Some(resources.cpuset_mems.clone()));
    }
    let mut memory = LinuxMemory::default();
    if resources.memory_limit_in_bytes > 0 {
        memory.set_limit(Some(resources.memory_limit_in_bytes));
        // Swap accounting is optional: only limit memory+swap where the kernel accounts it.
        if swap_accounting() {
            let swap = if resources.memory_swap_limit_in_bytes > 0 {
                resources.memory_swap_limit_in_bytes
            } else {
                resources.memory_limit_in_bytes
            };
            memory.set_swap(Some(swap.max(resources.memory_limit_in_bytes)));
        }
    }
    let hugepages: Vec<LinuxHugepageLimit> = if hugetlb_available() {
        resources
            .hugepage_limits
            .iter()
            .map(|(size, limit)| {
                let mut entry = LinuxHugepageLimit::default();
                entry.set_page_size(size.clone());
                entry.set_limit(*limit as i64);
                entry
            })
            .collect()
    } else {
        if !resources.hugepage_limits.is_empty() {
            tracing::warn!("hugetlb cgroup controller not available; hugepage limits ignored");
        }
        Vec::new()
    };
    let mut linux = LinuxResources::default();
    linux.set_cpu(Some(cpu));
    linux.set_memory(Some(memory));
    if !hugepages.is_empty() {
        linux.set_hugepage_limits(Some(hugepages));
    }
    if !resources.unified.is_empty() {
        linux.set_unified(Some(resources.unified.clone().into_iter().collect()));
    }
    linux
}

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// v1: the memsw files of the memory hierarchy; v2: `memory.swap.max` in the root's children.
fn swap_accounting() -> bool {
    static ACCOUNTED: OnceLock<bool> = OnceLock::new();
    *ACCOUNTED.get_or_init(|| {
        let root = Path::new(CGROUP_ROOT);
        root.join("memory/memory.memsw.limit_in_bytes").exists()
            || std::fs::read_dir(root).is_ok_and(|children| {
                children
                    .flatten()
                    .any(|child| child.path().join("memory.swap.max").exists())
            })
    })
}

/// v1: a hugetlb hierarchy; v2: the controller listed at the root.
fn hugetlb_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let root = Path::new(CGROUP_ROOT);
        root.join("hugetlb").exists()
            || std::fs::read_to_string(root.join("cgroup.controllers"))
                .is_ok_and(|controllers| controllers.split_whitespace().any(|c| c == "hugetlb"))
    })
}

/// The lowest `oom_score_adj` this process may give its children: without
/// CAP_SYS_RESOURCE it cannot go below its own value (../shared/DESIGN.md §9).
pub fn oom_score_floor() -> i32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let effective = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    const CAP_SYS_RESOURCE: u64 = 1 << 24;
    if effective & CAP_SYS_RESOURCE != 0 {
        -1000
    } else {
        std::fs::read_to_string("/proc/self/oom_score_adj")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }
}

/// `requested` raised to `floor` when needed, warning once per process.
pub fn clamp_oom_score_adj(requested: i32, floor: i32) -> i32 {
    static WARNED: std::sync::Once = std::sync::Once::new();
    if requested >= floor {
        return requested;
    }
    WARNED.call_once(|| {
        tracing::warn!(
            requested,
            floor,
            "cannot lower oom_score_adj without CAP_SYS_RESOURCE; clamping (logged once)"
        );
    });
    floor
}
