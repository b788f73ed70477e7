//! What crimson-image's operations share.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use crimson_config::{Config, Daemon};
use crimson_rpc::Peer;
use crimson_store::Store;

use crate::{
    Result,
    layer_import::LayerImports,
    layer_store::{LayerStore, StorageDaemon},
    records::{ImageRecords, SCHEMA_VERSION},
    registries_conf::CachedRegistriesConf,
    registry::{OciRegistries, Registries, RegistryTimeouts},
};

/// The daemon's side effects: the real ones, or recording fakes in unit tests.
pub struct Seams {
    /// crimson-storage.
    pub storage: Arc<dyn LayerStore>,
    /// The registries.
    pub registries: Arc<dyn Registries>,
}

impl Seams {
    /// crimson-storage on its configured socket, and registries through oci-client with
    /// `config`'s time limits.
    pub fn real(config: &Config) -> Self {
        Self {
            storage: Arc::new(StorageDaemon {
                peer: Peer::new(
                    Daemon::Storage,
                    config.socket(Daemon::Storage),
                    Duration::from_millis(config.cri.backend_wait_ms),
                ),
            }),
            registries: Arc::new(OciRegistries {
                timeouts: RegistryTimeouts {
                    connect: Duration::from_secs(config.image.connect_timeout_secs),
                    read: Duration::from_secs(config.image.read_timeout_secs),
                },
                clients: Default::default(),
            }),
        }
    }
}

/// Shared state of the daemon.
pub struct State {
    pub records: ImageRecords,
    /// crimson-storage, where layers go.
    pub storage: Arc<dyn LayerStore>,
    /// The registries images come from.
    pub pull_sources: Arc<dyn Registries>,
    pub imports: LayerImports,
    pub registries_conf: PathBuf,
    /// `registries_conf` as last read.
    pub registries: CachedRegistriesConf,
    pub global_auth_file: Option<PathBuf>,
    /// Image ids with a pull under way (their layers are claimed before they are recorded).
    pulls_in_flight: Mutex<HashMap<String, usize>>,
}

impl State {
    /// Opens the database under the configured state dir; side effects go through `seams`.
    pub fn open(config: &Config, seams: Seams) -> Result<Self> {
        let store = Store::open(
            &config.state_dir(Daemon::Image).join("db"),
            SCHEMA_VERSION,
            &[],
        )?;
        Ok(Self {
            records: ImageRecords::open(store)?,
            storage: seams.storage,
            pull_sources: seams.registries,
            imports: LayerImports::default(),
            registries_conf: config.image.registries_conf.clone(),
            registries: CachedRegistriesConf::default(),
            global_auth_file: config.image.global_auth_file.clone(),
            pulls_in_flight: Mutex::new(HashMap::new()),
        })
    }

    /// Marks a pull of `image_id` as under way until the guard drops.
    pub fn pull_in_flight(&self, image_id: &str) -> PullGuard<'_> {
        *self.in_flight().entry(image_id.to_string()).or_default() += 1;
        PullGuard {
            state: self,
            image_id: image_id.to_string(),
        }
    }

    /// True while a pull of `image_id` is under way.
    pub fn is_pulling(&self, image_id: &str) -> bool {
        self.in_flight().contains_key(image_id)
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.pulls_in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

/// Ends a pull's in-flight mark when dropped.
pub struct PullGuard<'a> {
    state: &'a State,
    image_id: String,
}

impl Drop for PullGuard<'_> {
    fn drop(&mut self) {
        let mut in_flight = self.state.in_flight();
        if let Some(count) = in_flight.get_mut(&self.image_id) {
            *count -= 1;
            if *count == 0 {
                in_flight.remove(&self.image_id);
            }
        }
    }
}
