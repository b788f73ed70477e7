//! A pod's UTS and IPC namespaces, pinned on files so they outlive any process (pods without a
//! shared PID namespace have no infra process), and its /dev/shm.

use std::path::Path;

use crimson_sys::mounts::is_mounted;
use nix::{
    mount::{MntFlags, MsFlags, mount, umount2},
    sched::CloneFlags,
};

use crate::{Result, SandboxError};

/// Creates new UTS (with `hostname`) and/or IPC namespaces and pins them at the given files.
pub fn pin(uts: Option<&Path>, ipc: Option<&Path>, hostname: &str) -> Result<()> {
    let pins: Vec<(CloneFlags, &Path)> = [
        (CloneFlags::CLONE_NEWUTS, uts),
        (CloneFlags::CLONE_NEWIPC, ipc),
    ]
    .into_iter()
    .filter_map(|(kind, path)| Some((kind, path?)))
    .collect();
    crimson_sys::namespaces::pin_new(&pins, hostname)
        .map_err(|message| SandboxError::runtime("pinning namespaces", message))
}

/// Mounts a tmpfs of `size` bytes for the pod's /dev/shm at `path`.
pub fn mount_shm(path: &Path, size: u64) -> Result<()> {
    std::fs::create_dir_all(path).map_err(SandboxError::io("creating", path))?;
    if is_mounted(path) {
        return Ok(());
    }
    let options = format!("mode=1777,size={size}");
    mount(
        Some("shm"),
        path,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(options.as_str()),
    )
    .map_err(|e| SandboxError::runtime("mounting /dev/shm", format!("{}: {e}", path.display())))
}

/// Unmounts (lazily) whatever is mounted at `path` and removes the file or directory.
pub fn unmount_and_remove(path: &Path) -> Result<()> {
    if is_mounted(path) {
        umount2(path, MntFlags::MNT_DETACH)
            .map_err(|e| SandboxError::runtime("unmounting", format!("{}: {e}", path.display())))?;
    }
    let removed = if path.is_dir() {
        std::fs::remove_dir(path)
    } else {
        std::fs::remove_file(path)
    };
    match removed {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(SandboxError::io("removing", path)(e))
        }
        _ => Ok(()),
    }
}
