//! A recording fake of crimson-storage's mounts, layers to put, and a daemon state on them.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard},
};

use crimson_api::storage::v1::{Layer, PutLayerChunk, PutLayerHeader, put_layer_chunk::Part};
use crimson_config::StorageDriver;
use sha2::{Digest, Sha256};

use crate::{
    Result, layer_put::put_layer, layout::Layout, mounts::Mounts, records::IdMappings, state::State,
};

/// An uncompressed OCI layer.
pub const TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// Mounts that only remember they were made.
#[derive(Debug, Default)]
pub struct FakeMounts {
    log: Mutex<Vec<String>>,
    mounted: Mutex<BTreeSet<PathBuf>>,
}

impl FakeMounts {
    fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
        mutex.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every mount and unmount so far, in order.
    pub fn log(&self) -> Vec<String> {
        Self::lock(&self.log).clone()
    }

    /// Forgets the log.
    pub fn clear_log(&self) {
        Self::lock(&self.log).clear();
    }

    /// Forgets every mount, as a reboot would.
    pub fn reboot(&self) {
        Self::lock(&self.mounted).clear();
    }
}

impl Mounts for FakeMounts {
    fn mount_overlay(
        &self,
        _rootfs_dir: &Path,
        id_mappings: Option<&IdMappings>,
        lower: &[PathBuf],
        _upper: &Path,
        _work: &Path,
        merged: &Path,
    ) -> Result<()> {
        let lower: Vec<String> = lower.iter().map(|dir| dir.display().to_string()).collect();
        let mapped = if id_mappings.is_some() {
            " idmapped"
        } else {
            ""
        };
        Self::lock(&self.log).push(format!(
            "mount {} on {}{mapped}",
            lower.join(":"),
            merged.display()
        ));
        Self::lock(&self.mounted).insert(merged.to_path_buf());
        Ok(())
    }

    fn unmount(&self, merged: &Path) -> Result<()> {
        if Self::lock(&self.mounted).remove(merged) {
            Self::lock(&self.log).push(format!("unmount {}", merged.display()));
        }
        Ok(())
    }

    fn is_mounted(&self, path: &Path) -> bool {
        Self::lock(&self.mounted).contains(path)
    }
}

/// A daemon state on [`FakeMounts`], in a directory of its own.
pub struct TestStorage {
    /// The daemon's state, as its operations take it.
    pub state: Arc<State>,
    /// The mounts it made.
    pub mounts: Arc<FakeMounts>,
    driver: StorageDriver,
    dir: tempfile::TempDir,
}

impl TestStorage {
    /// A fresh store with no layer, using `driver`.
    pub fn new(driver: StorageDriver) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mounts = Arc::new(FakeMounts::default());
        let state = Self::open(dir.path(), driver, &mounts);
        Self {
            state,
            mounts,
            driver,
            dir,
        }
    }

    /// The same database, directories and mounts, opened again: a restart.
    pub fn restart(self) -> Self {
        let Self {
            state,
            mounts,
            driver,
            dir,
        } = self;
        drop(state);
        let state = Self::open(dir.path(), driver, &mounts);
        Self {
            state,
            mounts,
            driver,
            dir,
        }
    }

    fn open(dir: &Path, driver: StorageDriver, mounts: &Arc<FakeMounts>) -> Arc<State> {
        let state = State::open(Layout::new(dir.join("storage")), driver, mounts.clone());
        Arc::new(state.expect("the state opens"))
    }

    /// Puts `layer` on `parent` for `owner`; the layer (or why it was refused).
    pub async fn put(&self, owner: &str, parent: &str, layer: &TestLayer) -> Result<Layer> {
        let header = PutLayerHeader {
            owner: owner.to_string(),
            parent_chain_id: parent.to_string(),
            diff_id: layer.digest(),
            blob_digest: layer.digest(),
            media_type: TAR.to_string(),
        };
        put_layer(&self.state, layer.chunks(header)).await
    }
}

/// A layer as an uncompressed tar of files.
pub struct TestLayer(pub Vec<u8>);

impl TestLayer {
    /// A layer of `files` (path, content), owned by the user running the test.
    pub fn of(files: &[(&str, &str)]) -> Self {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, content) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            // The test's own user: a user without root can unpack it.
            header.set_uid(nix::unistd::getuid().as_raw().into());
            header.set_gid(nix::unistd::getgid().as_raw().into());
            header.set_mtime(1_600_000_000);
            header.set_entry_type(tar::EntryType::Regular);
            builder
                .append_data(&mut header, path, content.as_bytes())
                .expect("a tar entry");
        }
        Self(builder.into_inner().expect("a tar"))
    }

    /// `sha256:<hex>` of the tar (its blob digest and diff id).
    pub fn digest(&self) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(&self.0)))
    }

    /// PutLayer's messages: `header`, then the tar in two chunks.
    pub fn chunks(
        &self,
        header: PutLayerHeader,
    ) -> futures::stream::Iter<std::vec::IntoIter<std::result::Result<PutLayerChunk, tonic::Status>>>
    {
        let (first, second) = self.0.split_at(self.0.len() / 2);
        let data = |bytes: &[u8]| {
            Ok(PutLayerChunk {
                part: Some(Part::Data(bytes.to_vec().into())),
            })
        };
        let header = Ok(PutLayerChunk {
            part: Some(Part::Header(header)),
        });
        futures::stream::iter(vec![header, data(first), data(second)])
    }
}
