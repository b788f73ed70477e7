//! What crimson-network's operations share.

use std::{path::PathBuf, sync::Arc, time::Duration};

use crimson_config::{Config, Daemon};
use crimson_store::{Store, Tree};

use crate::{
    Result,
    cni_exec::{CniPlugins, CniRuntime, PluginProcesses},
    netns::{NetworkNamespaces, PinnedNamespaces},
    records::{PODS_TREE, PodAttachment, SCHEMA_VERSION},
};

/// The daemon's side effects: the real ones, or recording fakes in unit tests.
pub struct Seams {
    /// Runs one CNI plugin.
    pub plugins: Arc<dyn CniPlugins>,
    /// Pins and removes network namespaces.
    pub namespaces: Arc<dyn NetworkNamespaces>,
}

impl Seams {
    /// Plugin processes from `config`'s directories and namespaces pinned on this host.
    pub fn real(config: &Config) -> Self {
        Self {
            plugins: Arc::new(PluginProcesses::new(
                config.network.cni_bin_dirs.clone(),
                Duration::from_secs(config.network.plugin_timeout_secs),
                config.run_root.join("network").join("plugin-locks"),
            )),
            namespaces: Arc::new(PinnedNamespaces),
        }
    }
}

/// Shared state of the daemon.
pub struct State {
    pub store: Store,
    pub pods: Tree<PodAttachment>,
    pub cni: CniRuntime,
    /// Pins and removes the pods' network namespaces.
    pub namespaces: Arc<dyn NetworkNamespaces>,
    pub cni_conf_dir: PathBuf,
    pub cni_bin_dirs: Vec<PathBuf>,
    pub netns_dir: PathBuf,
    /// Serialises work on one pod at a time (kubelet retries may overlap).
    pub pod_locks: crimson_rpc::KeyedLocks,
}

impl State {
    /// Opens the database under the configured state dir; side effects go through `seams`.
    pub fn open(config: &Config, seams: Seams) -> Result<Self> {
        let store = Store::open(
            &config.state_dir(Daemon::Network).join("db"),
            SCHEMA_VERSION,
            &[],
        )?;
        Ok(Self {
            pods: store.tree(PODS_TREE)?,
            store,
            cni: CniRuntime::new(seams.plugins),
            namespaces: seams.namespaces,
            cni_conf_dir: config.network.cni_conf_dir.clone(),
            cni_bin_dirs: config.network.cni_bin_dirs.clone(),
            netns_dir: config.network.netns_dir.clone(),
            pod_locks: crimson_rpc::KeyedLocks::default(),
        })
    }
}
