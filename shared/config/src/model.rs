use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::Daemon;

/// The whole configuration; each daemon reads the sections it needs.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Root of persistent state: `<state_root>/<daemon>/` per daemon.
    pub state_root: PathBuf,
    /// Sockets, pid files and other runtime files.
    pub run_root: PathBuf,
    /// Logging.
    pub log: LogConfig,
    /// Trace export.
    pub telemetry: TelemetryConfig,
    /// Socket paths that differ from `<run_root>/<daemon>.sock`.
    pub sockets: SocketConfig,
    /// crimson-cri.
    pub cri: CriConfig,
    /// crimson-image.
    pub image: ImageConfig,
    /// crimson-storage.
    pub storage: StorageConfig,
    /// crimson-network.
    pub network: NetworkConfig,
    /// crimson-sandbox.
    pub sandbox: SandboxConfig,
    /// The node's Prometheus endpoint.
    pub metrics: MetricsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            state_root: PathBuf::from("/var/lib/crimson"),
            run_root: PathBuf::from("/run/crimson"),
            log: LogConfig::default(),
            telemetry: TelemetryConfig::default(),
            sockets: SocketConfig::default(),
            cri: CriConfig::default(),
            image: ImageConfig::default(),
            storage: StorageConfig::default(),
            network: NetworkConfig::default(),
            sandbox: SandboxConfig::default(),
            metrics: MetricsConfig::default(),
        }
    }
}

impl Config {
    /// The socket `daemon` listens on.
    pub fn socket(&self, daemon: Daemon) -> PathBuf {
        self.sockets
            .get(daemon)
            .cloned()
            .unwrap_or_else(|| self.run_root.join(daemon.socket_file_name()))
    }

    /// Where the holder of the front door's socket hands it over (see `crimson_rpc::hold`).
    pub fn cri_socket_holder(&self) -> PathBuf {
        socket_holder(&self.socket(Daemon::Cri))
    }

    /// This configuration as a `crimson.toml` that loads back to it.
    pub fn to_toml(&self) -> crate::Result<String> {
        Ok(toml::to_string(self)?)
    }

    /// Like [`Config::to_toml`], with only the settings that differ from the defaults (so
    /// the rest keep following them).
    pub fn to_toml_without_defaults(&self) -> crate::Result<String> {
        let mut table = toml::Table::try_from(self)?;
        let defaults = toml::Table::try_from(Config::default())?;
        drop_defaults(&mut table, &defaults);
        Ok(toml::to_string(&table)?)
    }

    /// The directory holding `daemon`'s database and files.
    pub fn state_dir(&self, daemon: Daemon) -> PathBuf {
        self.state_root.join(daemon.short_name())
    }
}

/// Removes from `table` the values equal to those in `defaults`, and the tables left empty.
fn drop_defaults(table: &mut toml::Table, defaults: &toml::Table) {
    table.retain(|key, value| match (value, defaults.get(key)) {
        (toml::Value::Table(inner), Some(toml::Value::Table(default))) => {
            drop_defaults(inner, default);
            !inner.is_empty()
        }
        (value, Some(default)) => value != default,
        (_, None) => true,
    });
}

/// Where the holder of the listening socket `socket` hands it over: its path plus `.holder`.
pub fn socket_holder(socket: &std::path::Path) -> PathBuf {
    let mut path = socket.as_os_str().to_owned();
    path.push(".holder");
    PathBuf::from(path)
}

/// Log line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines with key=value fields.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Filter in `RUST_LOG` syntax.
    pub level: String,
    /// Line format.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// `[telemetry]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// OTLP/gRPC endpoint for spans; export is off when unset.
    pub otlp_endpoint: Option<String>,
    /// Fraction of new root traces sampled (a parent's decision is always kept).
    pub sampling_ratio: Option<f64>,
}

/// `[metrics]`: Prometheus metrics of the five daemons, served by the front door.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Where `GET /metrics` is served: `host:port`, or a unix socket path (`/…` or
    /// `unix:/…`). Off when unset.
    pub address: Option<String>,
}

/// `[sockets]`: per-daemon socket paths.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SocketConfig {
    /// Front door (`crimson.sock`).
    pub cri: Option<PathBuf>,
    /// crimson-image.
    pub image: Option<PathBuf>,
    /// crimson-sandbox.
    pub sandbox: Option<PathBuf>,
    /// crimson-network.
    pub network: Option<PathBuf>,
    /// crimson-storage.
    pub storage: Option<PathBuf>,
}

impl SocketConfig {
    /// The configured socket of `daemon`, if any.
    pub fn get(&self, daemon: Daemon) -> Option<&PathBuf> {
        match daemon {
            Daemon::Cri => self.cri.as_ref(),
            Daemon::Image => self.image.as_ref(),
            Daemon::Sandbox => self.sandbox.as_ref(),
            Daemon::Network => self.network.as_ref(),
            Daemon::Storage => self.storage.as_ref(),
        }
    }

    /// Sets the socket of `daemon`.
    pub fn set(&mut self, daemon: Daemon, path: PathBuf) {
        let slot = match daemon {
            Daemon::Cri => &mut self.cri,
            Daemon::Image => &mut self.image,
            Daemon::Sandbox => &mut self.sandbox,
            Daemon::Network => &mut self.network,
            Daemon::Storage => &mut self.storage,
        };
        *slot = Some(path);
    }
}

/// `[cri]`: the front door and its streaming server.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CriConfig {
    /// How long a call waits for a backend daemon that is down before answering UNAVAILABLE.
    pub backend_wait_ms: u64,
    /// Address the streaming server (exec, attach, port-forward URLs) listens on.
    pub stream_address: String,
    /// Its port; 0 picks a free one.
    pub stream_port: u16,
    /// PEM certificate and key: serve the streams over TLS.
    pub stream_tls_cert: Option<PathBuf>,
    /// PEM private key for `stream_tls_cert`.
    pub stream_tls_key: Option<PathBuf>,
    /// Seconds a streaming URL stays valid (it is single-use).
    pub stream_token_ttl_secs: u64,
}

impl Default for CriConfig {
    fn default() -> Self {
        Self {
            backend_wait_ms: 3000,
            stream_address: "127.0.0.1".into(),
            stream_port: 0,
            stream_tls_cert: None,
            stream_tls_key: None,
            stream_token_ttl_secs: 60,
        }
    }
}

/// `[image]`: pulls and registries.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImageConfig {
    /// containers-registries.conf v2 file (rewrites, mirrors, insecure, blocked).
    pub registries_conf: PathBuf,
    /// Docker `config.json`-format credentials used when a request brings none.
    pub global_auth_file: Option<PathBuf>,
    /// Seconds to wait for a registry connection.
    pub connect_timeout_secs: u64,
    /// Seconds a registry transfer may stall (no bytes arriving) before the pull fails.
    pub read_timeout_secs: u64,
}

impl Default for ImageConfig {
    fn default() -> Self {
        Self {
            registries_conf: PathBuf::from("/etc/containers/registries.conf"),
            global_auth_file: None,
            connect_timeout_secs: 30,
            read_timeout_secs: 60,
        }
    }
}

/// Storage driver for layers and root filesystems.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageDriver {
    /// Each layer unpacked once; root filesystems are overlay mounts of the chain.
    #[default]
    Overlay,
    /// Each layer is a full copy of its parent plus its changes; root filesystems are copies.
    Vfs,
}

/// `[storage]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Layer driver.
    pub driver: StorageDriver,
}

/// `[network]`: CNI.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// Directory of CNI network configurations (`*.conflist`, `*.conf`, `*.json`).
    pub cni_conf_dir: PathBuf,
    /// Directories searched for CNI plugin binaries.
    pub cni_bin_dirs: Vec<PathBuf>,
    /// Where pod network namespaces are pinned (`ip netns` looks in /run/netns).
    pub netns_dir: PathBuf,
    /// Seconds one CNI plugin invocation may take.
    pub plugin_timeout_secs: u64,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            cni_conf_dir: PathBuf::from("/etc/cni/net.d"),
            cni_bin_dirs: vec![PathBuf::from("/opt/cni/bin"), PathBuf::from("/usr/lib/cni")],
            netns_dir: PathBuf::from("/run/netns"),
            plugin_timeout_secs: 60,
        }
    }
}

/// `[sandbox]`: OCI runtime, monitor and pod defaults.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxConfig {
    /// OCI runtime binary of the default runtime handler.
    pub runtime_path: PathBuf,
    /// State directory of the OCI runtime (`runc --root`); default `<run_root>/runc`.
    pub runtime_root: Option<PathBuf>,
    /// More runtime handlers by name (CRI `runtime_handler`), each an OCI runtime binary.
    pub runtimes: std::collections::BTreeMap<String, RuntimeHandler>,
    /// conmon binary.
    pub conmon_path: PathBuf,
    /// Image of the pod-level init process of pods that share their PID namespace.
    pub pause_image: String,
    /// Command of that process; empty: the image's entrypoint and command.
    pub pause_command: Vec<String>,
    /// Size of each pod's /dev/shm, in bytes.
    pub shm_size_bytes: u64,
    /// containers-mounts.conf: `host:container` bind mounts added to every container.
    pub mounts_conf: PathBuf,
    /// Largest container log file in bytes before conmon truncates it; negative: no limit.
    pub log_size_max: i64,
}

/// One `[sandbox.runtimes.<name>]` entry.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeHandler {
    /// The OCI runtime binary (a drop-in replacement for runc).
    pub runtime_path: PathBuf,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            runtime_path: PathBuf::from("runc"),
            runtime_root: None,
            runtimes: Default::default(),
            conmon_path: PathBuf::from("conmon"),
            pause_image: "registry.k8s.io/pause:3.10".into(),
            pause_command: Vec::new(),
            shm_size_bytes: 64 * 1024 * 1024,
            mounts_conf: PathBuf::from("/etc/containers/mounts.conf"),
            log_size_max: -1,
        }
    }
}
