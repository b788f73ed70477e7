//! What crimson-sandbox's operations share.

use std::{collections::BTreeMap, path::PathBuf, sync::Arc, time::Duration};

use crimson_api::sandbox::v1::ContainerEvent;
use crimson_config::{Config, Daemon};
use crimson_rpc::{KeyedLocks, ObjectCount, Peer};
use crimson_store::{Store, Tree};
use oci_spec::runtime::Capabilities;
use tokio::sync::broadcast;

use crate::{
    Result, SandboxError,
    host_ops::HostOps,
    layout::Layout,
    oci::{
        apparmor::HostAppArmor, capabilities::held_by_runtime, mounts::read_mounts_conf,
        resources::oom_score_floor,
    },
    parked::Parked,
    peers::{GrpcNeighbours, Neighbours},
    records::{
        CONTAINERS_TREE, ContainerPhase, ContainerRecord, PODS_TREE, PodPhase, PodRecord,
        SCHEMA_VERSION,
    },
    runtime::{
        conmon::Monitor,
        features::RuntimeFeatures,
        migration_primer::MigrationPrimer,
        oci_runtime::{OciRuntime, RuntimeRunner},
    },
    seams::Seams,
};

/// Settings from `[sandbox]`: read at start and again on SIGHUP.
pub struct Settings {
    pub conmon: PathBuf,
    /// Runtime handlers by name; "" is the default.
    pub runtimes: BTreeMap<String, OciRuntime>,
    pub pause_image: String,
    pub pause_command: Vec<String>,
    pub shm_size_bytes: u64,
    pub global_mounts: Vec<(PathBuf, PathBuf)>,
    pub log_size_max: i64,
    pub held_capabilities: Capabilities,
    pub apparmor: HostAppArmor,
    pub oom_floor: i32,
}

/// What the settings are made from besides `[sandbox]`, fixed for the process's life: the
/// OCI runtimes' state roots (a container's runtime state stays where it was created) and
/// whether idmapped layers work on this host.
struct FixedSettings {
    runner: Arc<dyn RuntimeRunner>,
    runtime_root: PathBuf,
    run_root: PathBuf,
    idmapped_layers: bool,
}

impl Settings {
    /// The settings of `config`'s `[sandbox]`, with the state roots of `fixed`.
    fn read(sandbox: &crimson_config::SandboxConfig, fixed: &FixedSettings) -> Self {
        // conmon wants absolute paths; unresolvable ones stay as configured (Status says so).
        let resolve = |path: &PathBuf| crate::find_executable(path).unwrap_or_else(|| path.clone());
        let runtime = |path: PathBuf, root: PathBuf| OciRuntime {
            features: RuntimeFeatures::probe(fixed.runner.as_ref(), &path, fixed.idmapped_layers),
            path,
            root,
            runner: fixed.runner.clone(),
        };
        let mut runtimes = BTreeMap::new();
        let default = runtime(resolve(&sandbox.runtime_path), fixed.runtime_root.clone());
        runtimes.insert(String::new(), default.clone());
        runtimes.insert("runc".to_string(), default);
        for (name, handler) in &sandbox.runtimes {
            runtimes.insert(
                name.clone(),
                runtime(resolve(&handler.runtime_path), fixed.run_root.join(name)),
            );
        }
        Settings {
            conmon: resolve(&sandbox.conmon_path),
            runtimes,
            pause_image: sandbox.pause_image.clone(),
            pause_command: sandbox.pause_command.clone(),
            shm_size_bytes: sandbox.shm_size_bytes,
            global_mounts: read_mounts_conf(&sandbox.mounts_conf),
            log_size_max: sandbox.log_size_max,
            held_capabilities: held_by_runtime(),
            apparmor: HostAppArmor::detect(),
            oom_floor: oom_score_floor(),
        }
    }
}

/// Shared state of the daemon.
pub struct State {
    settings: std::sync::RwLock<Arc<Settings>>,
    fixed: FixedSettings,
    pub layout: Layout,
    pub store: Store,
    pub pods: Tree<PodRecord>,
    pub containers: Tree<ContainerRecord>,
    /// crimson-image, crimson-storage and crimson-network.
    pub neighbours: Arc<dyn Neighbours>,
    /// One operation at a time per pod id, per container id, per kubelet name.
    pub pod_locks: KeyedLocks,
    pub container_locks: KeyedLocks,
    pub name_locks: KeyedLocks,
    /// Recording a container's exit happens once (see `container::refresh`).
    pub exit_locks: KeyedLocks,
    /// Containers whose removal is being finished in the background (`container::remove`).
    pub removals: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Pods and containers whose creation finished after its caller went away, by kubelet
    /// name: the caller's retry gets them, even after a restart.
    pub parked: Parked,
    pub events: broadcast::Sender<ContainerEvent>,
    /// Creates containers under their monitor (conmon).
    pub monitor: Arc<dyn Monitor>,
    /// Namespaces, mounts and cgroups of pods.
    pub host_ops: Arc<dyn HostOps>,
    /// Gets the kernel's wait for the runtime's cgroup join going before conmon starts.
    pub migration_primer: MigrationPrimer,
}

impl State {
    /// Pods and (non-infra) containers by phase, for status and metrics; zero counts
    /// included, so a gauge drops back when its last object leaves a phase.
    pub fn object_counts(&self) -> Vec<ObjectCount> {
        let pods = self.pods.values().unwrap_or_default();
        let containers = self.containers.values().unwrap_or_default();
        let pod_phases = [
            (PodPhase::Creating, "creating"),
            (PodPhase::Ready, "ready"),
            (PodPhase::NotReady, "notready"),
        ];
        let container_phases = [
            (ContainerPhase::Creating, "creating"),
            (ContainerPhase::Created, "created"),
            (ContainerPhase::Running, "running"),
            (ContainerPhase::Exited, "exited"),
        ];
        let pods = pod_phases.into_iter().map(|(phase, name)| {
            let count = pods.iter().filter(|pod| pod.phase == phase).count();
            ObjectCount::in_state("pods", name, count as u64)
        });
        let containers = container_phases.into_iter().map(|(phase, name)| {
            let count = containers
                .iter()
                .filter(|container| !container.infra && container.phase == phase)
                .count();
            ObjectCount::in_state("containers", name, count as u64)
        });
        pods.chain(containers).collect()
    }

    /// Opens the database and reads the settings; side effects go through `seams`.
    pub fn open(config: &Config, seams: Seams) -> Result<Self> {
        let layout = Layout::new(
            config.state_dir(Daemon::Sandbox),
            config.run_root.join("sandbox"),
        );
        layout.create().map_err(SandboxError::io(
            "creating",
            config.run_root.join("sandbox"),
        ))?;
        let store = Store::open(&layout.db(), SCHEMA_VERSION, &[])?;
        let fixed = FixedSettings {
            runner: seams.runtime,
            runtime_root: config
                .sandbox
                .runtime_root
                .clone()
                .unwrap_or_else(|| config.run_root.join("runc")),
            run_root: config.run_root.clone(),
            // Root filesystems of user-namespaced pods are overlays on idmapped layers.
            idmapped_layers: config.storage.driver == crimson_config::StorageDriver::Overlay
                && crimson_sys::user_namespaces::idmapped_layers_work(&config.state_root),
        };
        let wait = Duration::from_millis(config.cri.backend_wait_ms);
        Ok(Self {
            settings: std::sync::RwLock::new(Arc::new(Settings::read(&config.sandbox, &fixed))),
            fixed,
            pods: store.tree(PODS_TREE)?,
            containers: store.tree(CONTAINERS_TREE)?,
            parked: Parked::open(&store)?,
            store,
            layout,
            neighbours: seams.neighbours.unwrap_or_else(|| {
                Arc::new(GrpcNeighbours {
                    image: Peer::new(Daemon::Image, config.socket(Daemon::Image), wait),
                    storage: Peer::new(Daemon::Storage, config.socket(Daemon::Storage), wait),
                    network: Peer::new(Daemon::Network, config.socket(Daemon::Network), wait),
                })
            }),
            pod_locks: KeyedLocks::default(),
            container_locks: KeyedLocks::default(),
            name_locks: KeyedLocks::default(),
            exit_locks: KeyedLocks::default(),
            removals: Default::default(),
            events: broadcast::channel(1024).0,
            monitor: seams.monitor,
            migration_primer: MigrationPrimer::new(seams.host.clone()),
            host_ops: seams.host,
        })
    }

    /// The settings in force now.
    pub fn settings(&self) -> Arc<Settings> {
        self.settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Takes `[sandbox]` of `config` (read again on SIGHUP): runtime handlers, the pause
    /// image, conmon, mounts.conf, … apply to the pods and containers created from now on.
    pub fn reload_settings(&self, sandbox: &crimson_config::SandboxConfig) {
        let settings = Arc::new(Settings::read(sandbox, &self.fixed));
        *self.settings.write().unwrap_or_else(|e| e.into_inner()) = settings;
    }

    /// The OCI runtime of a runtime handler.
    pub fn runtime(&self, handler: &str) -> Result<OciRuntime> {
        self.settings()
            .runtimes
            .get(handler)
            .cloned()
            .ok_or_else(|| {
                SandboxError::InvalidArgument(format!("unknown runtime handler {handler:?}"))
            })
    }

    /// The OCI runtime driving `container` (the default one if its handler is gone from the
    /// configuration since).
    pub fn runtime_of(&self, container: &ContainerRecord) -> Result<OciRuntime> {
        let settings = self.settings();
        settings
            .runtimes
            .get(&container.runtime_handler)
            .or_else(|| settings.runtimes.get(""))
            .cloned()
            .ok_or_else(|| {
                SandboxError::FailedPrecondition(format!(
                    "no OCI runtime is configured for handler {:?}",
                    container.runtime_handler
                ))
            })
    }

    /// The pod `id`.
    pub fn pod(&self, id: &str) -> Result<PodRecord> {
        self.pods
            .get(id)?
            .ok_or_else(|| SandboxError::PodNotFound(id.to_string()))
    }

    /// The container `id` (one being removed is gone already).
    pub fn container(&self, id: &str) -> Result<ContainerRecord> {
        self.containers
            .get(id)?
            .filter(|c| c.phase != ContainerPhase::Removing)
            .ok_or_else(|| SandboxError::ContainerNotFound(id.to_string()))
    }

    /// Every container of pod `pod_id`, infra container and those being removed included.
    pub fn containers_of(&self, pod_id: &str) -> Result<Vec<ContainerRecord>> {
        Ok(self
            .containers
            .values()?
            .into_iter()
            .filter(|c| c.pod_id == pod_id)
            .collect())
    }

    /// Records a pod or container and writes it to disk.
    pub async fn save_pod(&self, record: &PodRecord) -> Result<()> {
        self.pods.put(&record.id, record)?;
        Ok(self.store.flush().await?)
    }

    /// Records a container and writes it to disk.
    pub async fn save_container(&self, record: &ContainerRecord) -> Result<()> {
        self.containers.put(&record.id, record)?;
        Ok(self.store.flush().await?)
    }
}

/// A new random 64-hex-digit id, like the other CRI runtimes use.
pub fn new_id() -> Result<String> {
    crimson_sys::random_bytes::<32>()
        .map(hex::encode)
        .map_err(SandboxError::io(
            "drawing random bytes for an id from",
            "getrandom(2)",
        ))
}
