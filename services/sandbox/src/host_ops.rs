//! The host's namespaces, mounts and cgroups as the pod lifecycle changes them, behind
//! [`HostOps`]: the real syscalls in the daemon, a recording fake in unit tests.

use std::path::{Path, PathBuf};

use crate::{
    Result,
    pod::{
        cgroup, namespaces,
        user_namespace::{self, PodMappings},
    },
    runtime::migration_primer,
};

/// The namespaces a pod gets of its own, each pinned on a file.
#[derive(Debug, Clone, Copy)]
pub struct NamespacePins<'a> {
    /// A user namespace with these ID mappings, pinned at this file (it then owns the others).
    pub user: Option<(&'a PodMappings, &'a Path)>,
    /// A UTS namespace (with `hostname`).
    pub uts: Option<&'a Path>,
    /// An IPC namespace.
    pub ipc: Option<&'a Path>,
    /// The hostname of the UTS namespace.
    pub hostname: &'a str,
}

/// What the pod lifecycle changes on the host. Called on the blocking pool (see `host`).
pub trait HostOps: Send + Sync {
    /// Creates the namespaces `pins` names and pins them.
    fn pin_namespaces(&self, pins: NamespacePins<'_>) -> Result<()>;
    /// Mounts a tmpfs of `size` bytes for a pod's /dev/shm at `path` (idempotent).
    fn mount_shm(&self, path: &Path, size: u64) -> Result<()>;
    /// Unmounts whatever is mounted at `path` (a pinned namespace, /dev/shm) and removes it.
    fn unmount_and_remove(&self, path: &Path) -> Result<()>;
    /// The directories of cgroup `cgroup` missing in the mounted hierarchies, parents first.
    fn missing_cgroups(&self, cgroup: &str) -> Vec<PathBuf>;
    /// Creates cgroup directories (a failure is logged: the runtime creates them too).
    fn create_cgroups(&self, dirs: &[PathBuf]);
    /// Removes the cgroup directories this daemon created, children first.
    fn remove_cgroups(&self, dirs: &[PathBuf]);
    /// Moves the calling thread into the cgroup this process is in, which keeps the kernel's
    /// cgroup-migration lock warm for the OCI runtime's join about to come (see
    /// `migration_primer`).
    fn migrate_self_in_place(&self);
}

/// This machine, through its syscalls and cgroup file systems.
#[derive(Debug, Default)]
pub struct NodeHost;

impl HostOps for NodeHost {
    fn pin_namespaces(&self, pins: NamespacePins<'_>) -> Result<()> {
        match pins.user {
            Some((mappings, user)) => {
                user_namespace::pin(mappings, user, pins.uts, pins.ipc, pins.hostname)
            }
            None => namespaces::pin(pins.uts, pins.ipc, pins.hostname),
        }
    }

    fn mount_shm(&self, path: &Path, size: u64) -> Result<()> {
        namespaces::mount_shm(path, size)
    }

    fn unmount_and_remove(&self, path: &Path) -> Result<()> {
        namespaces::unmount_and_remove(path)
    }

    fn missing_cgroups(&self, cgroup: &str) -> Vec<PathBuf> {
        cgroup::missing(cgroup)
    }

    fn create_cgroups(&self, dirs: &[PathBuf]) {
        cgroup::create(dirs)
    }

    fn remove_cgroups(&self, dirs: &[PathBuf]) {
        cgroup::remove(dirs)
    }

    fn migrate_self_in_place(&self) {
        migration_primer::migrate_self_in_place()
    }
}
