//! The mounts root filesystems are made of, behind [`Mounts`]: the kernel's in the daemon, a
//! recording fake in unit tests.

use std::path::{Path, PathBuf};

use crate::{Result, driver, id_mapped, records::IdMappings};

/// Mounting and unmounting root filesystems.
pub trait Mounts: Send + Sync {
    /// Mounts an overlay of `lower` (top first) with `upper` and `work` on `merged`; with
    /// `id_mappings`, the layers are seen through idmapped mounts kept under `rootfs_dir`.
    fn mount_overlay(
        &self,
        rootfs_dir: &Path,
        id_mappings: Option<&IdMappings>,
        lower: &[PathBuf],
        upper: &Path,
        work: &Path,
        merged: &Path,
    ) -> Result<()>;
    /// Unmounts `merged` if it is a mount point (lazily, so a busy mount never blocks
    /// removal).
    fn unmount(&self, merged: &Path) -> Result<()>;
    /// Whether something is mounted at `path`.
    fn is_mounted(&self, path: &Path) -> bool;
}

/// The kernel's mounts.
#[derive(Debug, Default)]
pub struct KernelMounts;

impl Mounts for KernelMounts {
    fn mount_overlay(
        &self,
        rootfs_dir: &Path,
        id_mappings: Option<&IdMappings>,
        lower: &[PathBuf],
        upper: &Path,
        work: &Path,
        merged: &Path,
    ) -> Result<()> {
        match id_mappings {
            None => driver::mount_overlay(lower, upper, work, merged),
            Some(mappings) => {
                id_mapped::mount_overlay(rootfs_dir, mappings, lower, upper, work, merged)
            }
        }
    }

    fn unmount(&self, merged: &Path) -> Result<()> {
        driver::unmount(merged)
    }

    fn is_mounted(&self, path: &Path) -> bool {
        crimson_sys::mounts::is_mounted(path)
    }
}
