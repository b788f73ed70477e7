//! What crimson-network's operations share.

use std::{path::PathBuf, time::Duration};

use crimson_config::{Config, Daemon};
use crimson_store::{Store, Tree};

use crate::{
    Result,
    cni_exec::CniRuntime,
    records::{PODS_TREE, PodAttachment, SCHEMA_VERSION},
};

/// Shared state of the daemon.
pub struct State {
    pub store: Store,
    pub pods: Tree<PodAttachment>,
    pub cni: CniRuntime,
    pub cni_conf_dir: PathBuf,
    pub cni_bin_dirs: Vec<PathBuf>,
    pub netns_dir: PathBuf,
    /// Serialises work on one pod at a time (kubelet retries may overlap).
    pub pod_locks: crimson_rpc::KeyedLocks,
}

impl State {
    /// Opens the database under the configured state dir.
    pub fn open(config: &Config) -> Result<Self> {
        let store = Store::open(
            &config.state_dir(Daemon::Network).join("db"),
            SCHEMA_VERSION,
            &[],
        )?;
        Ok(Self {
            pods: store.tree(PODS_TREE)?,
            store,
            cni: CniRuntime::new(
                config.network.cni_bin_dirs.clone(),
                Duration::from_secs(config.network.plugin_timeout_secs),
                config.run_root.join("network").join("plugin-locks"),
            ),
            cni_conf_dir: config.network.cni_conf_dir.clone(),
            cni_bin_dirs: config.network.cni_bin_dirs.clone(),
            netns_dir: config.network.netns_dir.clone(),
            pod_locks: crimson_rpc::KeyedLocks::default(),
        })
    }
}
