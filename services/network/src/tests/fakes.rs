//! A recording fake of crimson-network's side effects, and a daemon state built on it.
//!
//! [`FakeNetwork`] plays the CNI plugins and the namespace pins: a plugin's ADD answers the
//! previous result with, for `bridge`, an address added; every plugin run and pin lands in
//! one log, with the configuration each plugin was given.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard},
};

use crimson_api::network::v1::{PortMapping, SetUpPodRequest};
use crimson_config::Config;
use futures::future::BoxFuture;
use serde_json::{Value, json};

use crate::{
    NetworkError, Result,
    cni_exec::{Attachment, CniCommand, CniPlugins},
    netns::NetworkNamespaces,
    state::{Seams, State},
};

/// The network of the test configuration: a bridge with an address, then port mappings.
pub const CONFLIST: &str = r#"{"cniVersion": "1.0.0", "name": "testnet", "plugins": [
    {"type": "bridge", "bridge": "cni-test0"},
    {"type": "portmap", "capabilities": {"portMappings": true}}]}"#;

/// The address the fake bridge plugin gives every pod.
pub const POD_ADDRESS: &str = "10.88.0.5/16";

/// The fake plugins and namespaces, and what was done with them.
#[derive(Debug, Default)]
pub struct FakeNetwork {
    world: Mutex<World>,
}

#[derive(Debug, Default)]
struct World {
    log: Vec<String>,
    configs: Vec<Value>,
    failing: BTreeMap<String, String>,
    forgotten: Vec<String>,
}

impl FakeNetwork {
    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every side effect so far, in order ("ADD bridge <netns>", "pin <path>").
    pub fn log(&self) -> Vec<String> {
        self.world().log.clone()
    }

    /// The configuration every plugin run was given, in order.
    pub fn configs(&self) -> Vec<Value> {
        self.world().configs.clone()
    }

    /// Forgets the log.
    pub fn clear_log(&self) {
        let mut world = self.world();
        world.log.clear();
        world.configs.clear();
    }

    /// Makes the plugin run `call` ("ADD bridge", "DEL portmap") fail with `message`.
    pub fn fail(&self, call: &str, message: &str) {
        self.world()
            .failing
            .insert(call.to_string(), message.to_string());
    }

    /// The pods whose plugin locks were let go.
    pub fn forgotten(&self) -> Vec<String> {
        self.world().forgotten.clone()
    }
}

impl CniPlugins for FakeNetwork {
    fn invoke<'a>(
        &'a self,
        command: CniCommand,
        plugin_type: &'a str,
        config: &'a Value,
        attachment: &'a Attachment,
    ) -> BoxFuture<'a, Result<Value>> {
        Box::pin(async move {
            let call = format!("{} {plugin_type}", command.as_str());
            let mut world = self.world();
            world.log.push(format!("{call} {}", attachment.netns));
            world.configs.push(config.clone());
            if let Some(message) = world.failing.get(&call) {
                return Err(NetworkError::Plugin {
                    command: command.as_str(),
                    plugin: plugin_type.to_string(),
                    message: message.clone(),
                });
            }
            let mut result = config
                .get("prevResult")
                .cloned()
                .unwrap_or_else(|| json!({"cniVersion": config["cniVersion"]}));
            if command == CniCommand::Add && plugin_type == "bridge" {
                result["ips"] = json!([{"address": POD_ADDRESS, "gateway": "10.88.0.1"}]);
            }
            Ok(result)
        })
    }

    fn forget(&self, pod_id: &str) {
        self.world().forgotten.push(pod_id.to_string());
    }
}

impl NetworkNamespaces for FakeNetwork {
    fn create(&self, path: PathBuf, owner: Option<PathBuf>) -> BoxFuture<'static, Result<()>> {
        let owner = owner.map(|o| format!(" owned by {}", o.display()));
        self.world().log.push(format!(
            "pin {}{}",
            path.display(),
            owner.unwrap_or_default()
        ));
        Box::pin(async move {
            let made = path.parent().map(std::fs::create_dir_all).transpose();
            made.and_then(|_| std::fs::write(&path, ""))
                .map_err(|e| NetworkError::Netns {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })
        })
    }

    fn remove(&self, path: PathBuf) -> BoxFuture<'static, Result<()>> {
        self.world().log.push(format!("unpin {}", path.display()));
        let _ = std::fs::remove_file(path);
        Box::pin(async { Ok(()) })
    }

    fn is_pinned(&self, path: &Path) -> bool {
        path.exists()
    }
}

/// A daemon state on a [`FakeNetwork`], with [`CONFLIST`] in a directory of its own.
pub struct TestNetwork {
    /// The daemon's state, as its operations take it.
    pub state: Arc<State>,
    /// What the operations did.
    pub fake: Arc<FakeNetwork>,
    dir: tempfile::TempDir,
}

impl TestNetwork {
    /// A fresh daemon state with no pod attached.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (conf, bin) = (dir.path().join("net.d"), dir.path().join("bin"));
        for made in [&conf, &bin] {
            std::fs::create_dir_all(made).expect("a directory");
        }
        std::fs::write(conf.join("10-test.conflist"), CONFLIST).expect("the conflist");
        for plugin in ["bridge", "portmap", "loopback"] {
            std::fs::write(bin.join(plugin), "").expect("a plugin file");
        }
        let fake = Arc::new(FakeNetwork::default());
        let state = Arc::new(Self::open(dir.path(), &fake));
        Self { state, fake, dir }
    }

    /// The same database and fake, opened again: a restart of the daemon.
    pub fn restart(self) -> Self {
        let Self { state, fake, dir } = self;
        drop(state);
        let state = Arc::new(Self::open(dir.path(), &fake));
        Self { state, fake, dir }
    }

    fn open(dir: &Path, fake: &Arc<FakeNetwork>) -> State {
        let mut config = Config {
            state_root: dir.join("state"),
            run_root: dir.join("run"),
            ..Config::default()
        };
        config.network.cni_conf_dir = dir.join("net.d");
        config.network.cni_bin_dirs = vec![dir.join("bin")];
        config.network.netns_dir = dir.join("netns");
        let seams = Seams {
            plugins: fake.clone(),
            namespaces: fake.clone(),
        };
        State::open(&config, seams).expect("the state opens")
    }

    /// Where pod `pod_id`'s namespace is pinned.
    pub fn netns(&self, pod_id: &str) -> String {
        self.state.netns_dir.join(pod_id).display().to_string()
    }
}

/// What crimson-sandbox asks for pod `pod_id`, with one port mapped to the host and one not.
pub fn set_up_request(pod_id: &str) -> SetUpPodRequest {
    SetUpPodRequest {
        pod_id: pod_id.to_string(),
        pod_name: "web".into(),
        pod_namespace: "default".into(),
        pod_uid: "uid-web".into(),
        port_mappings: vec![
            PortMapping {
                protocol: "tcp".into(),
                container_port: 80,
                host_port: 8080,
                host_ip: String::new(),
            },
            PortMapping {
                protocol: "tcp".into(),
                container_port: 9090,
                host_port: 0,
                host_ip: String::new(),
            },
        ],
        userns_path: String::new(),
    }
}
