//! A pod's UTS and IPC namespaces, pinned on files so they outlive any process (pods without a
//! shared PID namespace have no infra process), and its /dev/shm.

use std::path::{Path, PathBuf};

use nix::{
    mount::{MntFlags, MsFlags, mount, umount2},
    sched::{CloneFlags, unshare},
};

use crate::{Result, SandboxError};

/// Creates new UTS (with `hostname`) and/or IPC namespaces and pins them at the given files.
pub fn pin(uts: Option<&Path>, ipc: Option<&Path>, hostname: &str) -> Result<()> {
    let mut flags = CloneFlags::empty();
    for (target, flag) in [
        (uts, CloneFlags::CLONE_NEWUTS),
        (ipc, CloneFlags::CLONE_NEWIPC),
    ] {
        if let Some(path) = target {
            std::fs::File::create(path).map_err(SandboxError::io("creating", path))?;
            flags |= flag;
        }
    }
    if flags.is_empty() {
        return Ok(());
    }
    let (uts, ipc, hostname) = (
        uts.map(Path::to_path_buf),
        ipc.map(Path::to_path_buf),
        hostname.to_string(),
    );
    // A thread of its own: unshare affects only it, and it ends right after.
    std::thread::spawn(move || -> std::result::Result<(), String> {
        unshare(flags).map_err(|e| format!("unshare: {e}"))?;
        if let Some(path) = &uts {
            if !hostname.is_empty() {
                nix::unistd::sethostname(&hostname).map_err(|e| format!("sethostname: {e}"))?;
            }
            bind("/proc/thread-self/ns/uts", path)?;
        }
        if let Some(path) = &ipc {
            bind("/proc/thread-self/ns/ipc", path)?;
        }
        Ok(())
    })
    .join()
    .map_err(|_| SandboxError::runtime("pinning namespaces", "thread panicked"))?
    .map_err(|message| SandboxError::runtime("pinning namespaces", message))
}

fn bind(source: &str, target: &PathBuf) -> std::result::Result<(), String> {
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| format!("pinning {source} on {}: {e}", target.display()))
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

/// True when something is mounted at `path`.
pub fn is_mounted(path: &Path) -> bool {
    let wanted = path.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .any(|mount_point| mount_point == wanted)
}
