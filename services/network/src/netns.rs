//! Pinned network namespaces: a new namespace bind-mounted on a file, so it lives without any
//! process in it (as `ip netns add` does).

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use crimson_sys::mounts::is_mounted;
use nix::{
    mount::{MntFlags, umount2},
    sched::CloneFlags,
};

use crate::{NetworkError, Result};

fn netns_error(path: &Path, message: impl std::fmt::Display) -> NetworkError {
    NetworkError::Netns {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// How long pinning or removing a namespace may take.
const NETNS_TIMEOUT: Duration = Duration::from_secs(30);

/// Creates a network namespace pinned at `path` (its directory is created), off the async
/// workers; owned by the user namespace pinned at `owner` when there is one (a pod in a user
/// namespace of its own). A namespace already pinned there is kept.
pub async fn create(path: PathBuf, owner: Option<PathBuf>) -> Result<()> {
    crimson_sys::blocking("pinning a network namespace", NETNS_TIMEOUT, move || {
        create_now(&path, owner.as_deref())
    })
    .await
}

/// Unmounts and deletes the namespace pinned at `path`, off the async workers; nothing there
/// is fine.
pub async fn remove(path: PathBuf) -> Result<()> {
    crimson_sys::blocking("removing a network namespace", NETNS_TIMEOUT, move || {
        remove_now(&path)
    })
    .await
}

fn create_now(path: &Path, owner: Option<&Path>) -> Result<()> {
    if is_mounted(path) {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| netns_error(path, e))?;
    }
    if let Some(owner) = owner {
        return crimson_sys::user_namespaces::pin_owned_by(
            owner,
            &[(CloneFlags::CLONE_NEWNET, path)],
            "",
        )
        .map_err(|e| {
            let _ = std::fs::remove_file(path);
            netns_error(path, e)
        });
    }
    crimson_sys::namespaces::pin_new(&[(CloneFlags::CLONE_NEWNET, path)], "")
        .map_err(|message| netns_error(path, message))
}

fn remove_now(path: &Path) -> Result<()> {
    if is_mounted(path) {
        umount2(path, MntFlags::MNT_DETACH).map_err(|e| netns_error(path, e))?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(netns_error(path, e)),
    }
}
