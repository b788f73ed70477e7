//! Where crimson-storage keeps things on disk.

use std::path::{Path, PathBuf};

/// Directory layout under the daemon's state dir.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// Layout rooted at `root` (`<state root>/storage`).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The database directory.
    pub fn db(&self) -> PathBuf {
        self.root.join("db")
    }

    /// Parent of all layer directories.
    pub fn layers(&self) -> PathBuf {
        self.root.join("layers")
    }

    /// The directory of one layer; `chain_id` must be a validated digest.
    pub fn layer(&self, chain_id: &str) -> PathBuf {
        self.layers().join(hex_part(chain_id))
    }

    /// The unpacked content of one layer.
    pub fn layer_diff(&self, chain_id: &str) -> PathBuf {
        self.layer(chain_id).join("diff")
    }

    /// Scratch space for layers being unpacked and directories being deleted.
    pub fn staging(&self) -> PathBuf {
        self.root.join("staging")
    }

    /// Parent of all container root filesystems.
    pub fn rootfs_root(&self) -> PathBuf {
        self.root.join("rootfs")
    }

    /// The directory of one container's root filesystem.
    pub fn rootfs(&self, id: &str) -> PathBuf {
        self.rootfs_root().join(id)
    }

    /// Creates the top-level directories.
    pub fn create(&self) -> std::io::Result<()> {
        for dir in [self.layers(), self.staging(), self.rootfs_root()] {
            std::fs::create_dir_all(dir)?;
        }
        Ok(())
    }
}

/// `sha256:abc` → `abc`.
fn hex_part(digest: &str) -> &str {
    digest.split_once(':').map_or(digest, |(_, hex)| hex)
}

/// Moves `dir` into staging (atomically, so a crash never leaves it half deleted in place), then
/// deletes it.
pub fn remove_dir_via_staging(dir: &Path, staging: &Path) -> std::io::Result<()> {
    if std::fs::symlink_metadata(dir).is_err() {
        return Ok(());
    }
    let trash = staging.join(format!(
        "trash-{}-{}",
        std::process::id(),
        TRASH_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::rename(dir, &trash)?;
    std::fs::remove_dir_all(&trash)
}

static TRASH_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
