//! Pinned network namespaces: a new namespace bind-mounted on a file, so it lives without any
//! process in it (as `ip netns add` does). Behind [`NetworkNamespaces`]: the real syscalls in
//! the daemon, a recording fake in unit tests.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use crimson_sys::mounts::is_mounted;
use futures::future::BoxFuture;
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

/// The pods' network namespaces on this host.
pub trait NetworkNamespaces: Send + Sync {
    /// Creates a network namespace pinned at `path` (its directory is created); owned by the
    /// user namespace pinned at `owner` when there is one (a pod in a user namespace of its
    /// own). A namespace already pinned there is kept.
    fn create(&self, path: PathBuf, owner: Option<PathBuf>) -> BoxFuture<'static, Result<()>>;
    /// Unmounts and deletes the namespace pinned at `path`; nothing there is fine.
    fn remove(&self, path: PathBuf) -> BoxFuture<'static, Result<()>>;
    /// Whether a namespace is pinned at `path`.
    fn is_pinned(&self, path: &Path) -> bool;
}

/// Namespaces made by unshare and bind mounts, off the async workers.
#[derive(Debug, Default)]
pub struct PinnedNamespaces;

impl NetworkNamespaces for PinnedNamespaces {
    fn create(&self, path: PathBuf, owner: Option<PathBuf>) -> BoxFuture<'static, Result<()>> {
        Box::pin(crimson_sys::blocking(
            "pinning a network namespace",
            NETNS_TIMEOUT,
            move || create_now(&path, owner.as_deref()),
        ))
    }

    fn remove(&self, path: PathBuf) -> BoxFuture<'static, Result<()>> {
        Box::pin(crimson_sys::blocking(
            "removing a network namespace",
            NETNS_TIMEOUT,
            move || remove_now(&path),
        ))
    }

    fn is_pinned(&self, path: &Path) -> bool {
        is_mounted(path)
    }
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
