//! Where crimson-sandbox keeps its files.
//!
//! Records live in the database under the state root; everything that only makes sense while
//! the machine is up (bundles, conmon's files, pinned namespaces, /dev/shm mounts) lives under
//! the run root.

use std::path::{Path, PathBuf};

/// Directory layout of the daemon.
#[derive(Debug, Clone)]
pub struct Layout {
    state: PathBuf,
    run: PathBuf,
}

impl Layout {
    /// Layout with the database under `state` and runtime files under `run`.
    pub fn new(state: impl Into<PathBuf>, run: impl Into<PathBuf>) -> Self {
        Self {
            state: state.into(),
            run: run.into(),
        }
    }

    /// The database directory.
    pub fn db(&self) -> PathBuf {
        self.state.join("db")
    }

    /// A pod's runtime directory: resolv.conf, hosts, hostname, namespaces, shm.
    pub fn pod_dir(&self, pod_id: &str) -> PathBuf {
        self.run.join("pods").join(pod_id)
    }

    /// A container's bundle (config.json, conmon's pid files, ctl fifo, attach socket, exit
    /// and oom markers).
    pub fn bundle(&self, container_id: &str) -> PathBuf {
        self.run.join("containers").join(container_id)
    }

    /// Where a user-namespaced container's volumes are mounted again through its pod's ID
    /// mappings (idmapped mounts); never inside the bundle, which is removed recursively.
    pub fn idmapped_volumes(&self, container_id: &str) -> PathBuf {
        self.run.join("idmapped").join(container_id)
    }

    /// Where conmon writes `<container id>` files holding exit codes.
    pub fn exits(&self) -> PathBuf {
        self.run.join("exits")
    }

    /// The exit file of a container.
    pub fn exit_file(&self, container_id: &str) -> PathBuf {
        self.exits().join(container_id)
    }

    /// Parent of conmon's attach socket links.
    pub fn attach_sockets(&self) -> PathBuf {
        self.run.join("attach")
    }

    /// Console sockets the OCI runtime hands a terminal's master side over (short paths:
    /// unix socket paths are limited to 108 bytes).
    pub fn console_sockets(&self) -> PathBuf {
        self.run.join("console")
    }

    /// Creates the top-level directories.
    pub fn create(&self) -> std::io::Result<()> {
        for dir in [
            self.state.clone(),
            self.run.join("pods"),
            self.run.join("containers"),
            self.exits(),
            self.attach_sockets(),
            self.console_sockets(),
        ] {
            std::fs::create_dir_all(dir)?;
        }
        Ok(())
    }
}

/// Removes `dir` and its content; a missing directory is fine.
pub fn remove_dir(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
