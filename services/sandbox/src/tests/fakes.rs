//! A recording fake of everything crimson-sandbox's logic does to the world, and a daemon
//! state built on it, for unit tests that run without root.
//!
//! [`FakeNode`] plays the OCI runtime, conmon, the host (namespaces, mounts, cgroups) and the
//! neighbour daemons at once, so one log shows the order of every side effect. Its containers
//! behave as runc's and conmon's do as far as the daemon can tell: `start` runs a created one,
//! a signal ends a running one (unless it ignores that signal) and conmon's exit file appears.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard},
};

use crimson_api::{
    image::v1::Image,
    network::v1::{PodNetwork, SetUpPodRequest},
    sandbox::v1::{ContainerSpec, NamespaceMode, PodSpec},
    storage::v1::{CreateRootfsRequest, WritableLayerUsage},
};
use crimson_config::{Config, StorageDriver};
use futures::future::BoxFuture;
use tokio::sync::Semaphore;

use crate::{
    Result, SandboxError,
    host_ops::{HostOps, NamespacePins},
    peers::Neighbours,
    runtime::{
        conmon::{ConmonCreate, Created, HeldMonitor, Monitor},
        oci_runtime::{Opened, RuntimeCommand, RuntimeRunner},
    },
    seams::Seams,
    state::State,
};

/// The image every test pod and container uses unless told otherwise.
pub const IMAGE: &str = "registry.test/busybox:1";

/// The first pid the fake gives a container: above any kernel's `pid_max`, so no real
/// process is ever mistaken for one.
const FIRST_PID: u32 = 5_000_000;

/// The fake runtime, monitor, host and neighbours, and what was done to them.
#[derive(Debug, Default)]
pub struct FakeNode {
    world: Mutex<World>,
    /// When set, container creations wait for a permit of it.
    creations: Mutex<Option<Arc<Semaphore>>>,
}

#[derive(Debug, Default)]
struct World {
    log: Vec<String>,
    containers: BTreeMap<String, FakeContainer>,
    images: BTreeMap<String, Image>,
    ignored_signals: BTreeSet<String>,
    failing: BTreeMap<&'static str, String>,
    failing_after: BTreeMap<&'static str, String>,
    rootfs_dir: PathBuf,
    pids: u32,
    /// Priming migrations (kept out of `log`: they run in the background, in no fixed order).
    migrations_in_place: usize,
}

#[derive(Debug)]
struct FakeContainer {
    status: &'static str,
    pid: u32,
    exit_file: PathBuf,
}

impl FakeNode {
    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many priming migrations of the daemon into its own cgroup have run.
    pub fn migrations_in_place(&self) -> usize {
        self.world().migrations_in_place
    }

    /// Every side effect so far, in order ("create <id>", "kill <id> 15", "mount_shm <path>").
    pub fn log(&self) -> Vec<String> {
        self.world().log.clone()
    }

    /// The side effects so far that start with `prefix`.
    pub fn calls(&self, prefix: &str) -> Vec<String> {
        self.log()
            .into_iter()
            .filter(|call| call.starts_with(prefix))
            .collect()
    }

    /// Forgets the log.
    pub fn clear_log(&self) {
        self.world().log.clear();
    }

    /// Makes the side effect `operation` ("create", "start", "set_up_network", "mount_shm",
    /// "create_rootfs", "delete") fail with `message` from now on.
    pub fn fail(&self, operation: &'static str, message: &str) {
        self.world().failing.insert(operation, message.to_string());
    }

    /// Makes the runtime command `operation` ("start", "kill") take effect, then fail with
    /// `message`, from now on.
    pub fn fail_after(&self, operation: &'static str, message: &str) {
        self.world()
            .failing_after
            .insert(operation, message.to_string());
    }

    /// Makes `operation` succeed again.
    pub fn heal(&self, operation: &'static str) {
        let mut world = self.world();
        world.failing.remove(operation);
        world.failing_after.remove(operation);
    }

    /// Makes every container ignore `signal` (as the runtime names it: "15", "KILL").
    pub fn ignore_signal(&self, signal: &str) {
        self.world().ignored_signals.insert(signal.to_string());
    }

    /// Holds every container creation from now on until the returned semaphore gives it a
    /// permit.
    pub fn hold_creations(&self) -> Arc<Semaphore> {
        let gate = Arc::new(Semaphore::new(0));
        *self.creations.lock().unwrap_or_else(|e| e.into_inner()) = Some(gate.clone());
        gate
    }

    /// Lets crimson-image have `image` under `reference`.
    pub fn add_image(&self, reference: &str, image: Image) {
        self.world().images.insert(reference.to_string(), image);
    }

    /// The runtime's status of container `id` ("created", "running", "stopped"), `None` when
    /// the runtime does not know it.
    pub fn status(&self, id: &str) -> Option<&'static str> {
        self.world().containers.get(id).map(|c| c.status)
    }

    /// Ends container `id`'s process with `code`, as if it exited on its own.
    pub fn exit(&self, id: &str, code: i32) {
        if let Some(container) = self.world().containers.get_mut(id) {
            end(container, code);
        }
    }

    fn record(&self, call: String) -> Result<()> {
        let mut world = self.world();
        let operation = call.split(' ').next().unwrap_or_default().to_string();
        world.log.push(call);
        match world.failing.get(operation.as_str()) {
            Some(message) => Err(SandboxError::runtime("faked failure", message.clone())),
            None => Ok(()),
        }
    }

    fn runtime(&self, args: &[&str], stdin: Option<&[u8]>) -> Result<Vec<u8>> {
        self.record(args.join(" "))?;
        let output = self.runtime_effect(args, stdin)?;
        match args
            .first()
            .and_then(|op| self.world().failing_after.get(op).cloned())
        {
            Some(message) => Err(SandboxError::runtime("faked failure", message)),
            None => Ok(output),
        }
    }

    fn runtime_effect(&self, args: &[&str], stdin: Option<&[u8]>) -> Result<Vec<u8>> {
        let gone = || SandboxError::runtime("running the runtime", "container does not exist");
        let mut world = self.world();
        let ignored = world.ignored_signals.clone();
        match args {
            ["start", id] => {
                let container = world.containers.get_mut(*id).ok_or_else(gone)?;
                if container.status != "created" {
                    return Err(SandboxError::runtime(
                        "starting the container",
                        "cannot start a container that is not created",
                    ));
                }
                container.status = "running";
                Ok(Vec::new())
            }
            ["kill", id, signal] => {
                let container = world.containers.get_mut(*id).ok_or_else(gone)?;
                if container.status == "stopped" {
                    return Err(SandboxError::runtime("signalling", "container not running"));
                }
                if !ignored.contains(*signal) {
                    end(container, 128 + signal_number(signal));
                }
                Ok(Vec::new())
            }
            ["delete", "--force", id] => {
                world.containers.remove(*id).ok_or_else(gone)?;
                Ok(Vec::new())
            }
            ["state", id] => {
                let container = world.containers.get(*id).ok_or_else(gone)?;
                Ok(
                    serde_json::json!({"status": container.status, "pid": container.pid})
                        .to_string()
                        .into_bytes(),
                )
            }
            ["update", "--resources", "-", id] => {
                world.containers.get(*id).ok_or_else(gone)?;
                let resources = String::from_utf8_lossy(stdin.unwrap_or_default()).to_string();
                world.log.push(format!("resources {resources}"));
                Ok(Vec::new())
            }
            other => Err(SandboxError::runtime(
                "running the runtime",
                format!("the fake runtime does not know {other:?}"),
            )),
        }
    }
}

/// The process ended with `code`: conmon writes the exit file.
fn end(container: &mut FakeContainer, code: i32) {
    container.status = "stopped";
    let _ = std::fs::write(&container.exit_file, code.to_string());
}

fn signal_number(signal: &str) -> i32 {
    match signal {
        "KILL" => 9,
        number => number.parse().unwrap_or(15),
    }
}

impl RuntimeRunner for FakeNode {
    fn run<'a>(&'a self, command: RuntimeCommand<'a>) -> BoxFuture<'a, Result<Vec<u8>>> {
        Box::pin(async move { self.runtime(command.args, command.stdin) })
    }

    fn features(&self, _runtime: &Path) -> serde_json::Value {
        serde_json::json!({
            "mountOptions": ["rro"],
            "linux": {"namespaces": ["user"]},
            "annotations": {"org.opencontainers.runc.version": "1.1.5"},
        })
    }

    /// runc's fifo is there while the container is created: releasing it is its `start`.
    fn release<'a>(
        &'a self,
        fifo: &'a Path,
        _init_pid: u32,
        opened: Opened,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let id = fifo
                .parent()
                .and_then(Path::file_name)
                .and_then(|id| id.to_str())
                .unwrap_or_default();
            let created = self
                .world()
                .containers
                .get(id)
                .is_some_and(|container| container.status == "created");
            if created {
                let _ = opened.send(());
                self.runtime(&["start", id], None)?;
            }
            Ok(created)
        })
    }
}

impl Monitor for FakeNode {
    fn start<'m>(&'m self, request: ConmonCreate<'_>) -> Result<Box<dyn HeldMonitor<'m> + 'm>> {
        self.record(format!("monitor {}", request.container_id))?;
        Ok(Box::new(FakeHeldMonitor {
            node: self,
            id: request.container_id.to_string(),
            exit_dir: request.exit_dir.to_path_buf(),
            released: false,
        }))
    }
}

/// A monitor of the fake node waiting for its bundle; "kill monitor <id>" if dropped unreleased.
struct FakeHeldMonitor<'a> {
    node: &'a FakeNode,
    id: String,
    exit_dir: PathBuf,
    released: bool,
}

impl Drop for FakeHeldMonitor<'_> {
    fn drop(&mut self) {
        if !self.released {
            let _ = self.node.record(format!("kill monitor {}", self.id));
        }
    }
}

impl<'a> HeldMonitor<'a> for FakeHeldMonitor<'a> {
    fn create(mut self: Box<Self>) -> BoxFuture<'a, Result<Created>> {
        self.released = true;
        Box::pin(async move {
            let node = self.node;
            node.record(format!("create {}", self.id))?;
            let gate = node
                .creations
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            if let Some(gate) = gate {
                gate.acquire()
                    .await
                    .map_err(|e| SandboxError::runtime("creating", e))?
                    .forget();
            }
            let mut world = node.world();
            world.pids += 2;
            let pid = FIRST_PID + world.pids;
            world.containers.insert(
                self.id.clone(),
                FakeContainer {
                    status: "created",
                    pid,
                    exit_file: self.exit_dir.join(&self.id),
                },
            );
            Ok(Created {
                pid,
                conmon_pid: pid + 1,
            })
        })
    }
}

impl HostOps for FakeNode {
    fn pin_namespaces(&self, pins: NamespacePins<'_>) -> Result<()> {
        let user = pins.user.map(|(_, path)| path);
        for path in [user, pins.uts, pins.ipc].into_iter().flatten() {
            self.record(format!("pin {}", path.display()))?;
            std::fs::write(path, "").map_err(SandboxError::io("pinning", path))?;
        }
        Ok(())
    }

    fn mount_shm(&self, path: &Path, _size: u64) -> Result<()> {
        self.record(format!("mount_shm {}", path.display()))?;
        std::fs::create_dir_all(path).map_err(SandboxError::io("creating", path))
    }

    fn unmount_and_remove(&self, path: &Path) -> Result<()> {
        self.record(format!("unmount {}", path.display()))?;
        let _ = std::fs::remove_file(path).or_else(|_| std::fs::remove_dir(path));
        Ok(())
    }

    fn missing_cgroups(&self, cgroup: &str) -> Vec<PathBuf> {
        vec![PathBuf::from(format!("/fake-cgroup{cgroup}"))]
    }

    fn create_cgroups(&self, dirs: &[PathBuf]) {
        let _ = self.record(format!("create_cgroups {dirs:?}"));
    }

    fn remove_cgroups(&self, dirs: &[PathBuf]) {
        let _ = self.record(format!("remove_cgroups {dirs:?}"));
    }

    fn migrate_self_in_place(&self) {
        self.world().migrations_in_place += 1;
    }
}

impl Neighbours for FakeNode {
    fn get_image<'a>(&'a self, reference: &'a str) -> BoxFuture<'a, Result<Option<Image>>> {
        Box::pin(async move {
            self.record(format!("get_image {reference}"))?;
            Ok(self.world().images.get(reference).cloned())
        })
    }

    fn pull_image<'a>(&'a self, reference: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.record(format!("pull_image {reference}"))?;
            self.add_image(reference, image(reference));
            Ok(())
        })
    }

    fn create_rootfs(&self, request: CreateRootfsRequest) -> BoxFuture<'_, Result<String>> {
        Box::pin(async move {
            self.record(format!("create_rootfs {}", request.id))?;
            let path = self.world().rootfs_dir.join(&request.id);
            std::fs::create_dir_all(&path).map_err(SandboxError::io("creating", &path))?;
            Ok(path.display().to_string())
        })
    }

    fn remove_rootfs<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.record(format!("remove_rootfs {id}"))?;
            let _ = std::fs::remove_dir_all(self.world().rootfs_dir.join(id));
            Ok(())
        })
    }

    fn rootfs_usage(&self, ids: Vec<String>) -> BoxFuture<'_, Result<Vec<WritableLayerUsage>>> {
        Box::pin(async move {
            self.record(format!("rootfs_usage {}", ids.join(" ")))?;
            Ok(Vec::new())
        })
    }

    fn set_up_network(&self, request: SetUpPodRequest) -> BoxFuture<'_, Result<PodNetwork>> {
        Box::pin(async move {
            self.record(format!("set_up_network {}", request.pod_id))?;
            Ok(PodNetwork {
                netns_path: format!("/run/fake/netns/{}", request.pod_id),
                ips: vec!["10.88.0.2".into()],
                pod_id: request.pod_id,
                ..Default::default()
            })
        })
    }

    fn tear_down_network<'a>(&'a self, pod_id: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { self.record(format!("tear_down_network {pod_id}")) })
    }
}

/// An image as crimson-image answers it: one layer, a config with `Cmd`.
pub fn image(reference: &str) -> Image {
    Image {
        id: format!("sha256:{:064x}", reference.len()),
        repo_tags: vec![reference.to_string()],
        config_json: image_config(r#"{"Cmd":["sh"],"StopSignal":"SIGTERM"}"#),
        chain_ids: vec![format!("sha256:{:064x}", 1)],
        ..Default::default()
    }
}

/// An OCI image configuration whose `config` is the JSON object `config`.
pub fn image_config(config: &str) -> Vec<u8> {
    format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}},"config":{config}}}"#
    )
    .into_bytes()
}

/// A daemon state on a [`FakeNode`], in a directory of its own.
pub struct TestSandbox {
    /// The daemon's state, as its operations take it.
    pub state: Arc<State>,
    /// What the operations did.
    pub node: Arc<FakeNode>,
    dir: tempfile::TempDir,
}

impl TestSandbox {
    /// A fresh daemon state (no pods, no containers) that knows [`IMAGE`].
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let node = Arc::new(FakeNode::default());
        node.world().rootfs_dir = dir.path().join("rootfs");
        node.add_image(IMAGE, image(IMAGE));
        let state = Arc::new(Self::open(dir.path(), &node));
        Self { state, node, dir }
    }

    /// The same database and fake node, opened again: a restart of the daemon. Nothing else
    /// may hold the state (the database has one opener at a time).
    pub fn restart(self) -> Self {
        let Self { state, node, dir } = self;
        drop(state);
        let state = Arc::new(Self::open(dir.path(), &node));
        Self { state, node, dir }
    }

    fn open(dir: &Path, node: &Arc<FakeNode>) -> State {
        let mut config = Config {
            state_root: dir.join("state"),
            run_root: dir.join("run"),
            ..Config::default()
        };
        // Overlay would have the state probe idmapped mounts on the real host.
        config.storage.driver = StorageDriver::Vfs;
        let seams = Seams {
            runtime: node.clone(),
            monitor: node.clone(),
            host: node.clone(),
            neighbours: Some(node.clone()),
        };
        State::open(&config, seams).expect("the state opens")
    }
}

/// A pod spec kubelet could send: `name` in namespace "default", its own namespaces (a PID
/// namespace per container, as without `shareProcessNamespace`).
pub fn pod_spec(name: &str) -> PodSpec {
    PodSpec {
        name: name.to_string(),
        namespace: "default".into(),
        uid: format!("uid-{name}"),
        hostname: name.to_string(),
        pid: NamespaceMode::Container as i32,
        ..Default::default()
    }
}

/// A container spec kubelet could send: `name` running [`IMAGE`].
pub fn container_spec(name: &str) -> ContainerSpec {
    ContainerSpec {
        name: name.to_string(),
        image: IMAGE.to_string(),
        command: vec!["sleep".into(), "1000".into()],
        ..Default::default()
    }
}

impl TestSandbox {
    /// Runs pod `spec`, which must succeed; its id.
    pub async fn run_pod(&self, spec: PodSpec) -> String {
        crate::pod::run::run_pod(self.state.clone(), spec)
            .await
            .expect("the pod runs")
    }

    /// Creates container `spec` in pod `pod_id`, which must succeed; its id.
    pub async fn create_container(&self, pod_id: &str, spec: ContainerSpec) -> String {
        crate::container::create::create_container(self.state.clone(), pod_id.into(), spec)
            .await
            .expect("the container is created")
    }

    /// A ready pod `name` with a running container `name`: their ids.
    pub async fn running(&self, name: &str) -> (String, String) {
        let pod = self.run_pod(pod_spec(name)).await;
        let container = self.create_container(&pod, container_spec(name)).await;
        crate::container::start::start_container(&self.state, &container)
            .await
            .expect("the container starts");
        (pod, container)
    }

    /// The stored record of container `id`.
    pub fn container(&self, id: &str) -> crate::records::ContainerRecord {
        self.state
            .containers
            .get(id)
            .expect("the database reads")
            .expect("the container is recorded")
    }
}
