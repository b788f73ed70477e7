//! A private containerd (Debian's package, its CRI plugin) for side-by-side measurements: its
//! own root, state, socket, runc root, CNI conf dir and bridge, pulling from a loopback
//! registry over plain HTTP. Stopped, with its shims, mounts and bridge, when dropped.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use k8s_cri::v1::{
    VersionRequest, image_service_client::ImageServiceClient,
    runtime_service_client::RuntimeServiceClient,
};
use tonic::transport::Channel;

use crate::stack::{mounts_under, unmount_under};

/// A running private containerd.
pub struct Containerd {
    child: Child,
    dir: tempfile::TempDir,
    bridge: String,
}

impl Containerd {
    /// Starts containerd pulling `registry` (`127.0.0.1:<port>`) over HTTP, with
    /// `pause_image` as its sandbox image and a bridge network of its own, and waits until its
    /// CRI answers.
    pub async fn start(registry: &str, pause_image: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ctd-")
            .tempdir()
            .expect("containerd dir");
        let path = |name: &str| dir.path().join(name);
        let hosts = path("certs.d").join(registry);
        std::fs::create_dir_all(&hosts).unwrap();
        std::fs::write(
            hosts.join("hosts.toml"),
            format!(
                "server = \"http://{registry}\"\n[host.\"http://{registry}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
            ),
        )
        .unwrap();
        let tag = format!("{:05x}", std::process::id() & 0xfffff);
        let bridge = format!("ctd{tag}");
        std::fs::create_dir_all(path("cni")).unwrap();
        let conflist = serde_json::json!({
            "cniVersion": "1.0.0",
            "name": format!("containerd-bench-{tag}"),
            "plugins": [
                {
                    "type": "bridge", "bridge": bridge, "isGateway": true, "ipMasq": true, "hairpinMode": true,
                    "ipam": {"type": "host-local", "dataDir": path("ipam"),
                             "ranges": [[{"subnet": format!("10.{}.250.0/24", 150 + std::process::id() % 100)}]],
                             "routes": [{"dst": "0.0.0.0/0"}]}
                },
                {"type": "portmap", "capabilities": {"portMappings": true}},
                {"type": "loopback"}
            ]
        });
        std::fs::write(
            path("cni").join("10-bench.conflist"),
            serde_json::to_vec_pretty(&conflist).unwrap(),
        )
        .unwrap();
        // restrict_oom_score_adj: this machine refuses a score below the daemon's own (as
        // crimson-sandbox's oom floor handles); without it every sandbox fails to start.
        let config = format!(
            "version = 2\nroot = {root:?}\nstate = {state:?}\n[grpc]\n  address = {socket:?}\n\
             [plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = {pause_image:?}\n  restrict_oom_score_adj = true\n\
             [plugins.\"io.containerd.grpc.v1.cri\".cni]\n  bin_dir = \"/usr/lib/cni\"\n  conf_dir = {cni:?}\n\
             [plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = {certs:?}\n\
             [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n  runtime_type = \"io.containerd.runc.v2\"\n\
             [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\n  Root = {runc:?}\n",
            root = path("root"),
            state = path("state"),
            socket = path("containerd.sock"),
            cni = path("cni"),
            certs = path("certs.d"),
            runc = path("runc"),
        );
        std::fs::write(path("config.toml"), config).unwrap();
        let log = std::fs::File::create(path("containerd.log")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(path("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting containerd (Debian package `containerd`)");
        let containerd = Self { child, dir, bridge };
        let deadline = Instant::now() + Duration::from_secs(30);
        while containerd
            .runtime()
            .version(VersionRequest::default())
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "containerd did not answer:\n{}",
                std::fs::read_to_string(containerd.dir.path().join("containerd.log"))
                    .unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        containerd
    }

    /// Its CRI socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("containerd.sock")
    }

    /// A RuntimeService client.
    pub fn runtime(&self) -> RuntimeServiceClient<Channel> {
        RuntimeServiceClient::new(crimson_rpc::connect_unix(self.socket()))
    }

    /// An ImageService client.
    pub fn images(&self) -> ImageServiceClient<Channel> {
        ImageServiceClient::new(crimson_rpc::connect_unix(self.socket()))
    }

    /// Its directory (root, state, socket, configuration): every process of it names it.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Its shims outlive it; they are started with its socket's address.
        let _ = Command::new("pkill")
            .arg("-f")
            .arg(format!("containerd-shim.*{}", self.socket().display()))
            .status();
        std::thread::sleep(Duration::from_millis(100));
        unmount_under(self.root());
        if !mounts_under(self.root()).is_empty() {
            eprintln!("containerd left mounts under {}", self.root().display());
        }
        let _ = Command::new("ip")
            .args(["link", "delete", &self.bridge])
            .stderr(Stdio::null())
            .status();
    }
}
