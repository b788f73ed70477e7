//! RootfsUsage: bytes and inodes of writable layers, walked off the async workers and kept for
//! a moment, since kubelet asks for every container's stats every few seconds.

use std::{
    collections::HashMap,
    path::Path,
    sync::Mutex,
    time::{Duration, Instant},
};

use crimson_api::storage::v1::WritableLayerUsage;
use crimson_config::StorageDriver;

use crate::{Result, rootfs::FS_TIMEOUT, state::State};

/// How long a measure is reused.
const FRESH_FOR: Duration = Duration::from_secs(2);

/// The latest measure of each writable layer.
#[derive(Default)]
pub struct UsageCache(Mutex<HashMap<String, (Instant, WritableLayerUsage)>>);

impl UsageCache {
    /// The measures still fresh at `now`, by id; stale ones are forgotten.
    fn fresh(&self, now: Instant) -> HashMap<String, WritableLayerUsage> {
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        kept.retain(|_, (measured, _)| now.duration_since(*measured) < FRESH_FOR);
        kept.iter()
            .map(|(id, (_, usage))| (id.clone(), usage.clone()))
            .collect()
    }

    fn keep(&self, measured: Instant, usages: &[WritableLayerUsage]) {
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for usage in usages {
            kept.insert(usage.id.clone(), (measured, usage.clone()));
        }
    }
}

/// The usage of each root filesystem of `ids` that is held, in the order asked.
pub async fn rootfs_usage(state: &State, ids: Vec<String>) -> Result<Vec<WritableLayerUsage>> {
    let now = Instant::now();
    let fresh = state.usage.fresh(now);
    let mut to_measure = Vec::new();
    for id in &ids {
        crate::rootfs::validate_id(id)?;
        if fresh.contains_key(id) {
            continue;
        }
        if let Some(record) = state.rootfs.get(id)? {
            let writable = match state.driver {
                StorageDriver::Overlay => state.layout.rootfs(id).join("upper"),
                StorageDriver::Vfs => record.mount_path.clone(),
            };
            to_measure.push((id.clone(), writable));
        }
    }
    let measured = if to_measure.is_empty() {
        Vec::new()
    } else {
        crimson_sys::blocking("measuring writable layers", FS_TIMEOUT, move || {
            Ok::<_, crate::StorageError>(
                to_measure
                    .into_iter()
                    .map(|(id, writable)| {
                        let (used_bytes, inodes_used) = disk_usage(&writable);
                        WritableLayerUsage {
                            id,
                            writable_path: writable.display().to_string(),
                            used_bytes,
                            inodes_used,
                        }
                    })
                    .collect::<Vec<_>>(),
            )
        })
        .await?
    };
    state.usage.keep(now, &measured);
    let mut by_id = fresh;
    by_id.extend(measured.into_iter().map(|usage| (usage.id.clone(), usage)));
    Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
}

/// Apparent size and inode count of a tree (not following symlinks, not crossing mounts).
fn disk_usage(root: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let Ok(root_meta) = std::fs::symlink_metadata(root) else {
        return (0, 0);
    };
    let mut stack = vec![root.to_path_buf()];
    let (mut bytes, mut inodes) = (0, 0);
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            inodes += 1;
            bytes += meta.blocks() * 512;
            if meta.is_dir() && meta.dev() == root_meta.dev() {
                stack.push(entry.path());
            }
        }
    }
    (bytes, inodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(id: &str, used_bytes: u64) -> WritableLayerUsage {
        WritableLayerUsage {
            id: id.into(),
            used_bytes,
            ..Default::default()
        }
    }

    #[test]
    fn a_measure_is_reused_while_fresh_then_forgotten() {
        let cache = UsageCache::default();
        let then = Instant::now();
        cache.keep(then, &[usage("a", 1)]);
        assert_eq!(cache.fresh(then + FRESH_FOR / 2)["a"].used_bytes, 1);
        assert!(cache.fresh(then + FRESH_FOR).is_empty());
        assert!(
            cache.0.lock().unwrap().is_empty(),
            "stale measures are dropped"
        );
    }

    #[test]
    fn files_and_directories_count_as_inodes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d/f"), vec![1u8; 10_000]).unwrap();
        let (bytes, inodes) = disk_usage(dir.path());
        assert_eq!(inodes, 2);
        assert!(bytes >= 10_000, "{bytes}");
        assert_eq!(disk_usage(&dir.path().join("missing")), (0, 0));
    }
}
