//! Helpers for pod and container tests: a registry with a busybox image and a pause image, a
//! stack whose infra image is that pause image, a private bridge network, CRI configs, waiting
//! for states, reading CRI logs and checking that nothing was left behind.

use std::{collections::HashMap, path::PathBuf, process::Command, time::Duration};

use k8s_cri::v1::{
    ContainerConfig, ContainerMetadata, ContainerState, ContainerStatusRequest,
    CreateContainerRequest, ImageSpec, KeyValue, LinuxPodSandboxConfig,
    LinuxSandboxSecurityContext, NamespaceMode, NamespaceOption, PodSandboxConfig,
    PodSandboxMetadata, RemoveContainerRequest, RemovePodSandboxRequest, RunPodSandboxRequest,
    StartContainerRequest, StopContainerRequest, StopPodSandboxRequest,
    runtime_service_client::RuntimeServiceClient,
};

use crate::{
    eventually,
    image_builder::{Pusher, TestImage},
    registry::TestRegistry,
    stack::{BridgeNetwork, Stack, StackOptions, mounts_under},
};

/// A CRI runtime client on the front door.
pub type RuntimeClient = RuntimeServiceClient<tonic::transport::Channel>;

/// A stack ready to run pods: registry, images, network.
pub struct PodEnv {
    pub registry: std::sync::Arc<TestRegistry>,
    pub stack: Stack,
    pub network: BridgeNetwork,
    /// `<registry>/busybox:test`, pulled.
    pub busybox: String,
    pub logs: tempfile::TempDir,
}

static POD_COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl PodEnv {
    /// Starts everything; the busybox image is pulled already.
    pub async fn start(dual_stack: bool) -> Self {
        Self::start_with(dual_stack, StackOptions::default()).await
    }

    /// Starts everything with extra stack options.
    pub async fn start_with(dual_stack: bool, options: StackOptions) -> Self {
        Self::start_with_registry(TestRegistry::shared(), dual_stack, options).await
    }

    /// Starts everything around `registry`, which gets the test images.
    pub async fn start_with_registry(
        registry: std::sync::Arc<TestRegistry>,
        dual_stack: bool,
        options: StackOptions,
    ) -> Self {
        let pusher = Pusher::new(&registry.address, None);
        pusher.push("busybox", "test", &TestImage::busybox()).await;
        pusher.push("pause", "test", &TestImage::pause()).await;
        let stack = Stack::start(StackOptions {
            pause_image: Some(format!("{}/pause:test", registry.address)),
            ..options.insecure_registry(&registry.address)
        })
        .await;
        let network = stack.add_bridge_network(dual_stack);
        let busybox = format!("{}/busybox:test", registry.address);
        stack.pull(&busybox).await.expect("pulling busybox");
        Self {
            registry,
            stack,
            network,
            busybox,
            logs: tempfile::tempdir().unwrap(),
        }
    }

    /// A pod config with a unique name and uid, logging under the env's log dir.
    pub fn pod_config(&self, name: &str) -> PodSandboxConfig {
        let n = POD_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let uid = format!("uid-{name}-{}-{n}", std::process::id());
        PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: name.into(),
                uid: uid.clone(),
                namespace: "default".into(),
                attempt: 0,
            }),
            hostname: name.into(),
            log_directory: self.logs.path().join(&uid).display().to_string(),
            labels: HashMap::from([("app".into(), name.into())]),
            linux: Some(LinuxPodSandboxConfig {
                cgroup_parent: format!("/{}-{uid}", self.cgroup_tag()),
                security_context: Some(LinuxSandboxSecurityContext {
                    // As kubelet sends it for pods without shareProcessNamespace.
                    namespace_options: Some(NamespaceOption {
                        pid: NamespaceMode::Container as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Prefix of the cgroups of this env's pods.
    pub fn cgroup_tag(&self) -> String {
        self.stack.cgroup_tag()
    }

    /// RunPodSandbox.
    pub async fn run_pod(&self, config: &PodSandboxConfig) -> String {
        self.stack
            .runtime()
            .run_pod_sandbox(RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: String::new(),
            })
            .await
            .expect("RunPodSandbox")
            .into_inner()
            .pod_sandbox_id
    }

    /// Every pod the front door lists.
    pub async fn pods(&self) -> Vec<k8s_cri::v1::PodSandbox> {
        self.stack
            .runtime()
            .list_pod_sandbox(k8s_cri::v1::ListPodSandboxRequest::default())
            .await
            .expect("ListPodSandbox")
            .into_inner()
            .items
    }

    /// Every container the front door lists.
    pub async fn containers(&self) -> Vec<k8s_cri::v1::Container> {
        self.stack
            .runtime()
            .list_containers(k8s_cri::v1::ListContainersRequest::default())
            .await
            .expect("ListContainers")
            .into_inner()
            .containers
    }

    /// PodSandboxStatus (not verbose).
    pub async fn pod_status(&self, pod_id: &str) -> k8s_cri::v1::PodSandboxStatus {
        self.stack
            .runtime()
            .pod_sandbox_status(k8s_cri::v1::PodSandboxStatusRequest {
                pod_sandbox_id: pod_id.into(),
                verbose: false,
            })
            .await
            .expect("PodSandboxStatus")
            .into_inner()
            .status
            .expect("a pod status")
    }

    /// The pod's first IP.
    pub async fn pod_ip(&self, pod_id: &str) -> String {
        self.pod_status(pod_id).await.network.unwrap_or_default().ip
    }

    /// RemovePodSandbox, then the leak check.
    pub async fn remove_pod_and_check(&self, pod_id: String) {
        self.stack
            .runtime()
            .remove_pod_sandbox(k8s_cri::v1::RemovePodSandboxRequest {
                pod_sandbox_id: pod_id,
            })
            .await
            .expect("RemovePodSandbox");
        assert_nothing_left(self);
    }

    /// The verbose `info` of a container's status (pid, cgroupPath, …).
    pub async fn container_info(&self, id: &str) -> serde_json::Value {
        let info = self
            .stack
            .runtime()
            .container_status(ContainerStatusRequest {
                container_id: id.into(),
                verbose: true,
            })
            .await
            .expect("ContainerStatus")
            .into_inner()
            .info;
        serde_json::from_str(&info["info"]).expect("verbose info is JSON")
    }

    /// A busybox container config running `command`, logging to `<name>.log`.
    pub fn container_config(&self, name: &str, command: &[&str]) -> ContainerConfig {
        ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: name.into(),
                attempt: 0,
            }),
            image: Some(ImageSpec {
                image: self.busybox.clone(),
                ..Default::default()
            }),
            command: command.iter().map(|s| s.to_string()).collect(),
            envs: vec![KeyValue {
                key: "GREETING".into(),
                value: "hello".into(),
            }],
            log_path: format!("{name}.log"),
            labels: HashMap::from([("container".into(), name.into())]),
            ..Default::default()
        }
    }

    /// CreateContainer + StartContainer.
    pub async fn run_container(
        &self,
        pod_id: &str,
        pod: &PodSandboxConfig,
        config: ContainerConfig,
    ) -> String {
        let id = self
            .create_container(pod_id, pod, config)
            .await
            .expect("CreateContainer");
        self.stack
            .runtime()
            .start_container(StartContainerRequest {
                container_id: id.clone(),
            })
            .await
            .expect("StartContainer");
        id
    }

    /// CreateContainer.
    pub async fn create_container(
        &self,
        pod_id: &str,
        pod: &PodSandboxConfig,
        config: ContainerConfig,
    ) -> Result<String, tonic::Status> {
        self.stack
            .runtime()
            .create_container(CreateContainerRequest {
                pod_sandbox_id: pod_id.into(),
                config: Some(config),
                sandbox_config: Some(pod.clone()),
            })
            .await
            .map(|r| r.into_inner().container_id)
    }

    /// RunPodSandbox → CreateContainer → StartContainer of a busybox `sleep` in pod `name`,
    /// as one kubelet pod worker does it; answers (pod id, container id) or what failed.
    pub async fn start_sleeper(
        &self,
        mut client: RuntimeClient,
        name: &str,
    ) -> Result<(String, String), String> {
        let pod = self.pod_config(name);
        let pod_id = client
            .run_pod_sandbox(RunPodSandboxRequest {
                config: Some(pod.clone()),
                runtime_handler: String::new(),
            })
            .await
            .map_err(|s| format!("RunPodSandbox {name}: {s}"))?
            .into_inner()
            .pod_sandbox_id;
        let container_id = client
            .create_container(CreateContainerRequest {
                pod_sandbox_id: pod_id.clone(),
                config: Some(self.container_config("sleeper", &["sleep", "3600"])),
                sandbox_config: Some(pod),
            })
            .await
            .map_err(|s| format!("CreateContainer {name}: {s}"))?
            .into_inner()
            .container_id;
        client
            .start_container(StartContainerRequest {
                container_id: container_id.clone(),
            })
            .await
            .map_err(|s| format!("StartContainer {name}: {s}"))?;
        Ok((pod_id, container_id))
    }

    /// ContainerStatus.
    pub async fn status(&self, id: &str) -> k8s_cri::v1::ContainerStatus {
        self.stack
            .runtime()
            .container_status(ContainerStatusRequest {
                container_id: id.into(),
                verbose: false,
            })
            .await
            .expect("ContainerStatus")
            .into_inner()
            .status
            .expect("a status")
    }

    /// Waits (up to 60 s) until container `id` is in `state`.
    pub async fn wait_for(&self, id: &str, state: ContainerState) -> k8s_cri::v1::ContainerStatus {
        eventually(60, &format!("container {id} to be {state:?}"), || async {
            let status = self.status(id).await;
            (status.state == state as i32).then_some(status)
        })
        .await
    }

    /// Runs `command` in a new container of the pod until it exits; answers its stdout lines.
    pub async fn output_of(
        &self,
        pod_id: &str,
        pod: &PodSandboxConfig,
        name: &str,
        config: ContainerConfig,
    ) -> (i32, Vec<LogLine>) {
        let _ = name;
        let id = self.run_container(pod_id, pod, config).await;
        let status = self.wait_for(&id, ContainerState::ContainerExited).await;
        (status.exit_code, read_log(&PathBuf::from(&status.log_path)))
    }
}

/// One line of a CRI log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub stream: String,
    pub tag: String,
    pub text: String,
}

/// Parses a CRI log file: `<RFC3339Nano> <stream> <P|F> <text>`; panics on a malformed line.
pub fn read_log(path: &PathBuf) -> Vec<LogLine> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| {
            let mut fields = line.splitn(4, ' ');
            let (time, stream, tag) = (
                fields.next().unwrap(),
                fields.next().unwrap(),
                fields.next().unwrap(),
            );
            assert!(
                time.contains('T') && time.len() >= 20,
                "timestamp {time:?} in {line:?}"
            );
            assert!(matches!(stream, "stdout" | "stderr"), "stream in {line:?}");
            assert!(matches!(tag, "P" | "F"), "tag in {line:?}");
            LogLine {
                stream: stream.into(),
                tag: tag.into(),
                text: fields.next().unwrap_or("").into(),
            }
        })
        .collect()
}

/// StopContainer (no grace period) → RemoveContainer → StopPodSandbox → RemovePodSandbox.
pub async fn tear_down(
    mut client: RuntimeClient,
    pod_id: String,
    container_id: String,
) -> Result<(), String> {
    client
        .stop_container(StopContainerRequest {
            container_id: container_id.clone(),
            timeout: 0,
        })
        .await
        .map_err(|s| format!("StopContainer: {s}"))?;
    client
        .remove_container(RemoveContainerRequest { container_id })
        .await
        .map_err(|s| format!("RemoveContainer: {s}"))?;
    client
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: pod_id.clone(),
        })
        .await
        .map_err(|s| format!("StopPodSandbox: {s}"))?;
    client
        .remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: pod_id,
        })
        .await
        .map_err(|s| format!("RemovePodSandbox: {s}"))
        .map(drop)
}

/// Waits (10 s at most) until crimson-sandbox has reaped every child of its that exited.
pub async fn assert_children_reaped(env: &PodEnv) {
    use crimson_config::Daemon;
    let sandbox = env
        .stack
        .pid(Daemon::Sandbox)
        .expect("crimson-sandbox runs");
    eventually(10, "crimson-sandbox to reap every child", || async {
        crate::processes::zombie_children(sandbox)
            .is_empty()
            .then_some(())
    })
    .await;
}

/// Texts of the `stream` lines.
pub fn lines_of(log: &[LogLine], stream: &str) -> Vec<String> {
    log.iter()
        .filter(|l| l.stream == stream)
        .map(|l| l.text.clone())
        .collect()
}

/// Fails the test if anything of the stack's pods is left on the machine: mounts, network
/// namespaces, veths, IP allocations, iptables rules, cgroups, conmon processes.
pub fn assert_nothing_left(env: &PodEnv) {
    let root = env.stack.root();
    let mounts: Vec<String> = mounts_under(root)
        .into_iter()
        .filter(|m| !m.contains("/storage/"))
        .collect();
    assert!(mounts.is_empty(), "mounts left: {mounts:?}");
    let storage_mounts = mounts_under(&root.join("state/storage"));
    assert!(
        storage_mounts.is_empty(),
        "rootfs mounts left: {storage_mounts:?}"
    );
    let netns: Vec<_> = std::fs::read_dir(env.stack.run_dir().join("netns"))
        .into_iter()
        .flatten()
        .flatten()
        .collect();
    assert!(netns.is_empty(), "network namespaces left: {netns:?}");
    let veths = Command::new("ip")
        .args(["-o", "link", "show", "master", &env.network.bridge])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&veths.stdout).trim().is_empty(),
        "veths left: {}",
        String::from_utf8_lossy(&veths.stdout)
    );
    let allocations: Vec<String> = walk(&env.network.ipam_dir)
        .into_iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().to_string()))
        .filter(|n| (n.contains('.') || n.contains(':')) && !n.starts_with("last_reserved_ip"))
        .collect();
    assert!(
        allocations.is_empty(),
        "IP allocations left: {allocations:?}"
    );
    for table in ["nat", "filter"] {
        let rules = Command::new("iptables")
            .args(["-t", table, "-S"])
            .output()
            .unwrap();
        let leaked: Vec<String> = String::from_utf8_lossy(&rules.stdout)
            .lines()
            .filter(|l| l.contains(&env.network.name))
            .map(str::to_string)
            .collect();
        assert!(
            leaked.is_empty(),
            "iptables rules left in {table}: {leaked:?}"
        );
    }
    let conmons = Command::new("pgrep")
        .args(["-f", &format!("conmon.*{}", root.display())])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&conmons.stdout).trim().is_empty(),
        "conmon processes left"
    );
    let cgroups: Vec<PathBuf> = crate::host_leftovers::cgroup_dirs()
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(&env.cgroup_tag()))
        .collect();
    assert!(cgroups.is_empty(), "cgroups left: {cgroups:?}");
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.path().is_dir() {
            out.extend(walk(&entry.path()));
        } else {
            out.push(entry.path());
        }
    }
    out
}

/// A pause between polls that tests may use while waiting for other processes.
pub const POLL: Duration = Duration::from_millis(100);

/// Body of `GET /` from `address` (`ip:port`, IPv6 in brackets), if it answers 200.
pub fn http_get(address: &str) -> Option<String> {
    use std::io::{Read, Write};
    let socket: std::net::SocketAddr = address.parse().ok()?;
    let mut stream = std::net::TcpStream::connect_timeout(&socket, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET / HTTP/1.0\r\nHost: test\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.").then_some(())?;
    head.split_whitespace()
        .nth(1)
        .filter(|code| *code == "200")?;
    Some(body.to_string())
}
