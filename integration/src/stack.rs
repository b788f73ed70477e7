//! The five daemons as child processes with a private root: state, sockets, config,
//! registries.conf, auth file and CNI config dir all live in one temporary directory.

use std::{
    collections::HashMap,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

use crimson_api::storage::v1::storage_client::StorageClient;
use crimson_config::{Config, DAEMON_EXECUTABLE, Daemon, StorageDriver};
use k8s_cri::v1::{
    Image, ImageSpec, ImageStatusRequest, PullImageRequest,
    image_service_client::ImageServiceClient, runtime_service_client::RuntimeServiceClient,
};
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use tonic::transport::Channel;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// Changes a test makes to the stack's configuration after the harness set its own paths.
pub type Configure = std::sync::Arc<dyn Fn(&mut Config) + Send + Sync>;

/// How a test wants its stack.
#[derive(Clone)]
pub struct StackOptions {
    /// Content of the registries.conf the stack uses.
    pub registries_conf: String,
    /// Content of the global auth file (Docker config.json format), if any.
    pub auth_file: Option<String>,
    /// The layer driver.
    pub storage_driver: StorageDriver,
    /// OTLP endpoint for span export.
    pub otlp_endpoint: Option<String>,
    /// How long the front door waits for a daemon that is down.
    pub backend_wait_ms: u64,
    /// Image of the pods' infra process (pods sharing their PID namespace).
    pub pause_image: Option<String>,
    /// Seconds a streaming URL stays valid.
    pub stream_token_ttl_secs: u64,
    /// Anything else the test sets in `crimson.toml`.
    pub configure: Option<Configure>,
    /// A CNI plugin directory searched before Debian's.
    pub cni_bin_dir: Option<PathBuf>,
    /// Name of the run root inside the stack's directory (`run`).
    pub run_dir_name: String,
    /// `[metrics] address`: where the front door serves the node's metrics.
    pub metrics_address: Option<String>,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            registries_conf: String::new(),
            auth_file: None,
            storage_driver: StorageDriver::Overlay,
            otlp_endpoint: None,
            backend_wait_ms: 3000,
            pause_image: None,
            stream_token_ttl_secs: 60,
            configure: None,
            cni_bin_dir: None,
            run_dir_name: "run".into(),
            metrics_address: None,
        }
    }
}

impl StackOptions {
    /// registries.conf marking `registry` (host:port) insecure, so plain HTTP is used.
    pub fn insecure_registry(mut self, registry: &str) -> Self {
        self.registries_conf.push_str(&format!(
            "\n[[registry]]\nlocation = \"{registry}\"\ninsecure = true\n"
        ));
        self
    }
}

/// A running stack; stopped and cleaned up when dropped. As `crimsonctl up` does, a holder
/// process keeps the front door's socket open across crimson-cri's restarts.
pub struct Stack {
    root: tempfile::TempDir,
    run_dir: PathBuf,
    holder: Mutex<Option<Child>>,
    children: Mutex<HashMap<Daemon, Child>>,
    networks: Mutex<Vec<BridgeNetwork>>,
}

/// A private CNI bridge network written into a stack's conf dir.
#[derive(Clone, Debug)]
pub struct BridgeNetwork {
    /// Network name.
    pub name: String,
    /// Bridge interface on the host.
    pub bridge: String,
    /// IPv4 subnet (`10.x.y.0/24`).
    pub subnet: String,
    /// IPv6 subnet, for a dual-stack network.
    pub subnet6: Option<String>,
    /// host-local's allocation directory.
    pub ipam_dir: PathBuf,
}

static NETWORK_COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

/// Where the binaries (`crimson`, `crimsonctl`) are: beside the running binary (a tool in
/// `target/<profile>/`) or one level up (a test in `target/<profile>/deps/`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let here = exe.parent().expect("binary directory").to_path_buf();
    let dir = if here.join(DAEMON_EXECUTABLE).is_file() {
        here
    } else {
        here.parent().expect("target dir").to_path_buf()
    };
    assert!(
        dir.join(DAEMON_EXECUTABLE).is_file(),
        "daemon binaries not found in {}: run `cargo build --workspace` first (`just test` does)",
        dir.display()
    );
    dir
}

impl Stack {
    /// Starts all five daemons and waits until each is healthy.
    pub async fn start(options: StackOptions) -> Self {
        let root = tempfile::Builder::new()
            .prefix("cr-")
            .tempdir()
            .expect("stack root");
        let path = |name: &str| root.path().join(name);
        std::fs::create_dir_all(path("cni")).unwrap();
        std::fs::write(path("registries.conf"), &options.registries_conf).unwrap();
        let mut config = Config {
            state_root: path("state"),
            run_root: path(&options.run_dir_name),
            ..Default::default()
        };
        config.log.level = "info,crimson_image=debug,crimson_storage=debug".into();
        config.cri.backend_wait_ms = options.backend_wait_ms;
        config.cri.stream_token_ttl_secs = options.stream_token_ttl_secs;
        config.image.registries_conf = path("registries.conf");
        if let Some(auth) = &options.auth_file {
            std::fs::write(path("auth.json"), auth).unwrap();
            config.image.global_auth_file = Some(path("auth.json"));
        }
        config.storage.driver = options.storage_driver;
        config.network.cni_conf_dir = path("cni");
        config.network.cni_bin_dirs = options
            .cni_bin_dir
            .iter()
            .cloned()
            .chain([PathBuf::from("/usr/lib/cni")])
            .collect();
        config.network.netns_dir = path(&options.run_dir_name).join("netns");
        if let Some(image) = &options.pause_image {
            config.sandbox.pause_image = image.clone();
        }
        config.telemetry.otlp_endpoint = options.otlp_endpoint.clone();
        config.metrics.address = options.metrics_address.clone();
        if let Some(configure) = &options.configure {
            configure(&mut config);
        }
        let config = config
            .to_toml_without_defaults()
            .expect("writing crimson.toml");
        std::fs::write(path("crimson.toml"), config).unwrap();
        std::fs::create_dir_all(path("logs")).unwrap();
        let stack = Self {
            run_dir: root.path().join(&options.run_dir_name),
            root,
            holder: Mutex::new(None),
            children: Mutex::new(HashMap::new()),
            networks: Mutex::new(Vec::new()),
        };
        stack.start_holder().await;
        for daemon in Daemon::ALL {
            stack.start_daemon(daemon).await;
        }
        stack
    }

    /// Starts `crimsonctl hold-socket` and waits until it hands the front door's socket out.
    async fn start_holder(&self) {
        let log = std::fs::File::create(self.root.path().join("logs/holder.log")).unwrap();
        let child = Command::new(bin_dir().join("crimsonctl"))
            .arg("--config")
            .arg(self.root.path().join("crimson.toml"))
            .arg("hold-socket")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting the socket holder");
        *self.holder.lock().unwrap() = Some(child);
        let holder = self.socket_holder();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(&holder).is_err() {
            assert!(Instant::now() < deadline, "the socket holder did not start");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Where the holder hands the front door's socket out.
    pub fn socket_holder(&self) -> PathBuf {
        crimson_config::socket_holder(&self.socket(Daemon::Cri))
    }

    /// Runs `crimsonctl` on this stack's config with `args`.
    pub fn crimsonctl(&self, args: &[&str]) -> std::process::Output {
        Command::new(bin_dir().join("crimsonctl"))
            .arg("--config")
            .arg(self.root.path().join("crimson.toml"))
            .args(args)
            .output()
            .expect("running crimsonctl")
    }

    /// The stack's root directory.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Prefix of the cgroups of the pods run on this stack (test pods name their cgroup
    /// parent after it).
    pub fn cgroup_tag(&self) -> String {
        let root = self.root.path().file_name().unwrap_or_default();
        format!("crimson-it-{}", root.to_string_lossy())
    }

    /// The run root (sockets, runtime files).
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// The socket of `daemon`.
    pub fn socket(&self, daemon: Daemon) -> PathBuf {
        self.run_dir.join(daemon.socket_file_name())
    }

    /// The state directory of `daemon`.
    pub fn state_dir(&self, daemon: Daemon) -> PathBuf {
        self.root.path().join("state").join(daemon.short_name())
    }

    /// The CNI config dir the network daemon watches.
    pub fn cni_conf_dir(&self) -> PathBuf {
        self.root.path().join("cni")
    }

    /// Writes a bridge + host-local + portmap + loopback conflist with a bridge name and subnet
    /// of its own (so parallel tests never collide), optionally dual-stack.
    pub fn add_bridge_network(&self, dual_stack: bool) -> BridgeNetwork {
        let n = NETWORK_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let pid = std::process::id();
        // The whole pid (pid_max is at most 2^22): names unique among running test processes.
        let tag = format!("{:06x}{:02x}", pid & 0xff_ffff, n & 0xff);
        let subnet = format!("10.{}.{}.0/24", 150 + (pid % 100), n % 250);
        let subnet6 = dual_stack.then(|| format!("fd00:{:x}:{:x}::/64", pid & 0xffff, n));
        let ipam_dir = self.root.path().join("ipam");
        let mut ranges = vec![serde_json::json!([{ "subnet": subnet }])];
        if let Some(v6) = &subnet6 {
            ranges.push(serde_json::json!([{ "subnet": v6 }]));
        }
        let network = BridgeNetwork {
            name: format!("crimson-test-{tag}"),
            bridge: format!("crm{tag}"),
            subnet,
            subnet6,
            ipam_dir: ipam_dir.clone(),
        };
        let conflist = serde_json::json!({
            "cniVersion": "1.0.0",
            "name": network.name,
            "plugins": [
                {
                    "type": "bridge", "bridge": network.bridge, "isGateway": true, "ipMasq": true, "hairpinMode": true,
                    "ipam": {"type": "host-local", "dataDir": ipam_dir, "ranges": ranges, "routes": [{"dst": "0.0.0.0/0"}]}
                },
                {"type": "portmap", "capabilities": {"portMappings": true}},
                {"type": "loopback"}
            ]
        });
        std::fs::write(
            self.cni_conf_dir().join("10-test.conflist"),
            serde_json::to_vec_pretty(&conflist).unwrap(),
        )
        .unwrap();
        self.networks.lock().unwrap().push(network.clone());
        network
    }

    /// The log of `daemon`.
    pub fn log(&self, daemon: Daemon) -> String {
        std::fs::read_to_string(self.log_path(daemon)).unwrap_or_default()
    }

    fn log_path(&self, daemon: Daemon) -> PathBuf {
        self.root
            .path()
            .join("logs")
            .join(format!("{}.log", daemon.binary_name()))
    }

    /// Starts `daemon` and waits until it answers its health check.
    pub async fn start_daemon(&self, daemon: Daemon) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(daemon))
            .unwrap();
        let child = Command::new(bin_dir().join(DAEMON_EXECUTABLE))
            .arg0(daemon.binary_name())
            .arg("--config")
            .arg(self.root.path().join("crimson.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {daemon}: {e}"));
        self.children.lock().unwrap().insert(daemon, child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.is_serving(daemon).await {
                return;
            }
            if let Some(status) = self
                .children
                .lock()
                .unwrap()
                .get_mut(&daemon)
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "{daemon} exited with {status} during start-up:\n{}",
                    self.log(daemon)
                );
            }
            assert!(
                Instant::now() < deadline,
                "{daemon} not healthy after 30s:\n{}",
                self.log(daemon)
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn is_serving(&self, daemon: Daemon) -> bool {
        let channel = crimson_rpc::connect_unix(self.socket(daemon));
        let mut client = HealthClient::new(channel);
        let check = client.check(HealthCheckRequest {
            service: String::new(),
        });
        matches!(
            tokio::time::timeout(Duration::from_secs(1), check).await,
            Ok(Ok(response)) if response.get_ref().status == ServingStatus::Serving as i32
        )
    }

    /// Pid of `daemon`, while it runs.
    pub fn pid(&self, daemon: Daemon) -> Option<u32> {
        self.children.lock().unwrap().get(&daemon).map(Child::id)
    }

    /// SIGSTOP to `daemon`; waits until the kernel has stopped it (it keeps its sockets and
    /// streams open, but answers nothing) and answers its pid, for [`Stack::thaw`].
    pub async fn freeze(&self, daemon: Daemon) -> Pid {
        let pid = Pid::from_raw(self.pid(daemon).expect("the daemon runs") as i32);
        kill(pid, Signal::SIGSTOP).unwrap();
        let stat = format!("/proc/{pid}/stat");
        crate::eventually(10, "the daemon to be stopped", || async {
            let stat = std::fs::read_to_string(&stat).ok()?;
            let state = stat.rsplit(')').next()?.trim_start();
            state.starts_with('T').then_some(())
        })
        .await;
        pid
    }

    /// SIGCONT to a daemon [`Stack::freeze`] stopped.
    pub fn thaw(&self, pid: Pid) {
        kill(pid, Signal::SIGCONT).unwrap();
    }

    /// `kill -9` of `daemon`; waits until it is gone.
    pub fn kill(&self, daemon: Daemon) {
        if let Some(mut child) = self.children.lock().unwrap().remove(&daemon) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM to `daemon`; waits until it exits and answers its exit status.
    pub fn terminate(&self, daemon: Daemon) -> Option<std::process::ExitStatus> {
        let mut child = self.children.lock().unwrap().remove(&daemon)?;
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        child.wait().ok()
    }

    /// `kill -9` and start again.
    pub async fn restart(&self, daemon: Daemon) {
        self.kill(daemon);
        self.start_daemon(daemon).await;
    }

    /// A CRI runtime client on the front door.
    pub fn runtime(&self) -> RuntimeServiceClient<Channel> {
        RuntimeServiceClient::new(crimson_rpc::connect_unix(self.socket(Daemon::Cri)))
    }

    /// A CRI image client on the front door.
    pub fn images(&self) -> ImageServiceClient<Channel> {
        ImageServiceClient::new(crimson_rpc::connect_unix(self.socket(Daemon::Cri)))
            .max_decoding_message_size(64 * 1024 * 1024)
    }

    /// A client of crimson-storage's internal API.
    pub fn storage(&self) -> StorageClient<Channel> {
        StorageClient::new(crimson_rpc::connect_unix(self.socket(Daemon::Storage)))
    }

    /// PullImage through the front door; answers the image ref (id).
    pub async fn pull(&self, image: &str) -> Result<String, tonic::Status> {
        self.images()
            .pull_image(PullImageRequest {
                image: Some(spec(image)),
                ..Default::default()
            })
            .await
            .map(|r| r.into_inner().image_ref)
    }

    /// ImageStatus through the front door.
    pub async fn image_status(&self, image: &str) -> Option<Image> {
        self.images()
            .image_status(ImageStatusRequest {
                image: Some(spec(image)),
                verbose: false,
            })
            .await
            .expect("ImageStatus")
            .into_inner()
            .image
    }

    /// The chain id of the top layer of `image` (from ImageStatus's verbose info).
    pub async fn top_chain_id(&self, image: &str) -> String {
        let info = self
            .images()
            .image_status(ImageStatusRequest {
                image: Some(spec(image)),
                verbose: true,
            })
            .await
            .expect("ImageStatus")
            .into_inner()
            .info;
        let info: serde_json::Value =
            serde_json::from_str(&info["info"]).expect("verbose info is JSON");
        info["chainIDs"]
            .as_array()
            .and_then(|ids| ids.last())
            .and_then(|id| id.as_str())
            .expect("a layer")
            .to_string()
    }

    /// Number of layer directories crimson-storage holds on disk.
    pub fn stored_layer_dirs(&self) -> usize {
        std::fs::read_dir(self.state_dir(Daemon::Storage).join("layers"))
            .map(|entries| entries.count())
            .unwrap_or(0)
    }
}

/// An ImageSpec for `image`.
pub fn spec(image: &str) -> ImageSpec {
    ImageSpec {
        image: image.to_string(),
        ..Default::default()
    }
}

/// An ImageStatus that always crosses to crimson-image: of an image nobody asked about, whose
/// answer the front door has no copy of (it answers reads it has a copy of without the daemon).
pub fn uncached_image_status() -> ImageStatusRequest {
    ImageStatusRequest {
        image: Some(spec("never-asked-about:latest")),
        verbose: false,
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let children: Vec<(Daemon, Child)> = self.children.lock().unwrap().drain().collect();
        for (_, child) in &children {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        }
        for (_, mut child) in children {
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        // A plugin still running (its daemon killed in the middle) finishes first: it may
        // create a bridge or rules.
        crate::host_leftovers::wait_for_plugins(
            &self.run_dir.join("network").join("plugin-locks"),
            Duration::from_secs(15),
        );
        if let Some(mut holder) = self.holder.lock().unwrap().take() {
            let _ = holder.kill();
            let _ = holder.wait();
        }
        unmount_under(self.root.path());
        crate::host_leftovers::remove_cgroups_tagged(&self.cgroup_tag());
        let networks: Vec<BridgeNetwork> = self.networks.lock().unwrap().drain(..).collect();
        for network in &networks {
            let _ = Command::new("ip")
                .args(["link", "del", &network.bridge])
                .output();
        }
        // Pods left running keep their plugins' rules; the next network of that name must
        // not find them.
        crate::host_leftovers::remove_rules_of(
            &networks.iter().map(|n| n.name.clone()).collect::<Vec<_>>(),
        );
    }
}

/// Lazily unmounts every mount below `root`, deepest first.
pub fn unmount_under(root: &Path) {
    let prefix = root.display().to_string();
    let mut mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split(' ').nth(4).map(str::to_string))
        .filter(|mount_point| mount_point.starts_with(&prefix))
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for mount_point in mounts {
        let _ = nix::mount::umount2(mount_point.as_str(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Mount points below `root`.
pub fn mounts_under(root: &Path) -> Vec<String> {
    let prefix = root.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split(' ').nth(4).map(str::to_string))
        .filter(|mount_point| mount_point.starts_with(&prefix))
        .collect()
}
