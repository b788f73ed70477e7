//! The pod cgroup (cgroupfs driver): created in every mounted hierarchy where it is missing,
//! and removed again with the pod, but only the directories this daemon created.

use std::path::PathBuf;

/// Mount points of the cgroup hierarchies (v1 controllers and the unified one).
fn hierarchies() -> Vec<PathBuf> {
    crimson_sys::mounts::mounts()
        .into_iter()
        .filter(|mount| matches!(mount.fstype.as_str(), "cgroup" | "cgroup2"))
        .map(|mount| mount.mount_point)
        .collect()
}

/// The directories of `cgroup` (a cgroupfs path like `/kubepods/pod123`) missing in each
/// hierarchy, parents first: what [`create`] makes, recorded before it runs.
pub fn missing(cgroup: &str) -> Vec<PathBuf> {
    let relative = cgroup.trim_start_matches('/');
    let mut missing = Vec::new();
    for root in hierarchies() {
        let mut dir = root.clone();
        for part in relative.split('/').filter(|p| !p.is_empty()) {
            dir.push(part);
            if !dir.exists() {
                missing.push(dir.clone());
            }
        }
    }
    missing
}

/// Creates `dirs` (from [`missing`]), parents first; one that cannot be made is skipped.
pub fn create(dirs: &[PathBuf]) {
    for dir in dirs {
        if let Err(e) = std::fs::create_dir(dir)
            && e.kind() != std::io::ErrorKind::AlreadyExists
        {
            tracing::debug!(dir = %dir.display(), error = %e, "cgroup not created");
        }
    }
}

/// Removes the directories [`create`] made, deepest first; ones still in use stay.
pub fn remove(created: &[PathBuf]) {
    for dir in created.iter().rev() {
        if let Err(e) = std::fs::remove_dir(dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %dir.display(), error = %e, "could not remove pod cgroup");
        }
    }
}

/// The pod's cgroup: kubelet's cgroup parent, or `/crimson/<pod id>` without one.
pub fn pod_cgroup(cgroup_parent: &str, pod_id: &str) -> String {
    if cgroup_parent.is_empty() {
        format!("/crimson/{pod_id}")
    } else {
        format!("/{}", cgroup_parent.trim_matches('/'))
    }
}
