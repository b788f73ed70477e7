//! What differs between the overlay and vfs drivers.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use crimson_config::StorageDriver;
use crimson_sys::mounts::is_mounted;
use nix::mount::{MntFlags, MsFlags, mount, umount2};

use crate::{
    Result, StorageError, layout::Layout, mounts::Mounts, records::IdMappings, unpack::WhiteoutMode,
};

/// How `driver` applies whiteouts.
pub fn whiteout_mode(driver: StorageDriver) -> WhiteoutMode {
    match driver {
        StorageDriver::Overlay => WhiteoutMode::Overlay,
        StorageDriver::Vfs => WhiteoutMode::Delete,
    }
}

/// Prepares the directory a layer is unpacked into: empty for overlay, a copy of the parent's
/// content for vfs.
pub fn prepare_layer_dir(
    driver: StorageDriver,
    parent_diff: Option<&Path>,
    diff: &Path,
) -> Result<()> {
    match (driver, parent_diff) {
        (StorageDriver::Vfs, Some(parent)) => copy_tree(parent, diff),
        _ => std::fs::create_dir_all(diff).map_err(StorageError::io("creating", diff)),
    }
}

/// Makes the root filesystem of container `id` from the chain (top first) and answers where
/// it is: an overlay mount with a private upper dir, or (vfs) a full copy of the top layer.
/// With `id_mappings` (overlay only) the layers are seen through idmapped mounts and the
/// upper dir belongs to the container's root.
pub fn make_rootfs(
    driver: StorageDriver,
    mounts: &dyn Mounts,
    layout: &Layout,
    id: &str,
    chain_top_first: &[String],
    id_mappings: Option<&IdMappings>,
) -> Result<PathBuf> {
    let dir = layout.rootfs(id);
    let merged = dir.join("merged");
    match driver {
        StorageDriver::Overlay => {
            let upper = dir.join("upper");
            let work = dir.join("work");
            let empty = dir.join("empty");
            for d in [&upper, &work, &merged, &empty] {
                std::fs::create_dir_all(d).map_err(StorageError::io("creating", d))?;
            }
            if mounts.is_mounted(&merged) {
                return Ok(merged);
            }
            let mut lower: Vec<PathBuf> = chain_top_first
                .iter()
                .map(|chain_id| layout.layer_diff(chain_id))
                .collect();
            if lower.is_empty() {
                lower.push(empty);
            }
            mounts.mount_overlay(&dir, id_mappings, &lower, &upper, &work, &merged)?;
        }
        StorageDriver::Vfs => {
            if !merged.exists() {
                let staging = dir.join("merged.partial");
                let _ = std::fs::remove_dir_all(&staging);
                match chain_top_first.first() {
                    Some(top) => copy_tree(&layout.layer_diff(top), &staging)?,
                    None => std::fs::create_dir_all(&staging)
                        .map_err(StorageError::io("creating", &staging))?,
                }
                std::fs::rename(&staging, &merged)
                    .map_err(StorageError::io("renaming", &staging))?;
            }
        }
    }
    Ok(merged)
}

/// Mounts an overlay of `lower` (top first) with `upper` and `work` on `merged`.
pub(crate) fn mount_overlay(
    lower: &[PathBuf],
    upper: &Path,
    work: &Path,
    merged: &Path,
) -> Result<()> {
    let lower: Vec<String> = lower.iter().map(|l| l.display().to_string()).collect();
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        upper.display(),
        work.display()
    );
    mount(
        Some("overlay"),
        merged,
        Some("overlay"),
        MsFlags::empty(),
        Some(options.as_str()),
    )
    .map_err(|source| StorageError::Mount {
        action: "mounting overlay on",
        path: merged.to_path_buf(),
        source,
    })
}

/// Unmounts `merged` if it is a mount point (lazily, so a busy mount never blocks removal).
pub fn unmount(merged: &Path) -> Result<()> {
    if !is_mounted(merged) {
        return Ok(());
    }
    umount2(merged, MntFlags::MNT_DETACH).map_err(|source| StorageError::Mount {
        action: "unmounting",
        path: merged.to_path_buf(),
        source,
    })
}

/// Copies a tree preserving owners, modes, times, xattrs, hard links and special files.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(StorageError::io("creating", parent))?;
    }
    let output = Command::new("cp")
        .arg("-a")
        .arg("--reflink=auto")
        .arg(from)
        .arg(to)
        .output()
        .map_err(StorageError::io("running cp -a for", from))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(StorageError::io("copying", from)(std::io::Error::other(
            format!(
                "cp -a exited with {}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        )))
    }
}
