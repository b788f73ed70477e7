//! The volumes of a container in a user namespace of its own (KEP-127), mounted again through
//! the pod's ID mappings, so what the host's root owns in them the container's root owns (as
//! containerd and CRI-O do with idmapped mounts). The mounts live in a directory of their own
//! (`Layout::idmapped_volumes`), and are only ever unmounted and removed one by one, never
//! walked into.

use std::{
    fs::File,
    path::{Path, PathBuf},
};

use crimson_api::sandbox::v1::ContainerSpec;
use crimson_sys::user_namespaces::idmapped_bind;
use nix::mount::{MntFlags, umount2};

use crate::{Result, SandboxError, oci::mounts::host_source};

/// Points each host-path mount of `spec` (image volumes have mapped root filesystems already)
/// at an idmapped mount of it under `dir`, through the user namespace pinned at `userns`.
/// Reads and mounts on the host.
pub fn map_all(spec: &mut ContainerSpec, userns: &Path, dir: &Path) -> Result<()> {
    let mounts: Vec<usize> = (0..spec.mounts.len())
        .filter(|&i| spec.mounts[i].image.is_empty())
        .collect();
    if mounts.is_empty() {
        return Ok(());
    }
    let userns = File::open(userns).map_err(SandboxError::io("opening", userns))?;
    std::fs::create_dir_all(dir).map_err(SandboxError::io("creating", dir))?;
    for index in mounts {
        let mount = &mut spec.mounts[index];
        let source = host_source(&mount.host_path)?;
        let target = dir.join(index.to_string());
        if source.is_dir() {
            std::fs::create_dir_all(&target)
        } else {
            File::create(&target).map(drop)
        }
        .map_err(SandboxError::io("creating", &target))?;
        idmapped_bind(&source, &target, &userns).map_err(|e| {
            SandboxError::FailedPrecondition(format!(
                "mount at {}: {} cannot be mounted through the pod's ID mappings: {e}",
                mount.container_path,
                source.display()
            ))
        })?;
        mount.host_path = target.display().to_string();
    }
    Ok(())
}

/// Unmounts and removes what [`map_all`] made under `dir` (idempotent).
pub fn unmap_all(dir: &Path) -> std::io::Result<()> {
    let entries: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.flatten().map(|e| e.path()).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let _ = umount2(&entry, MntFlags::MNT_DETACH);
        // Never recursive: a mount still there is refused, not emptied.
        std::fs::remove_dir(&entry).or_else(|_| std::fs::remove_file(&entry))?;
    }
    std::fs::remove_dir(dir)
}
