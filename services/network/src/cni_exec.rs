//! Running CNI plugins as the CNI specification's runtime: one process per plugin, the
//! network configuration on stdin, `CNI_*` variables in the environment, the result (or an
//! error object) on stdout. A list runs in order for ADD and CHECK, in reverse for DEL, each
//! plugin seeing the previous result as `prevResult`. One plugin's run is behind
//! [`CniPlugins`]: a process in the daemon, a recording fake in unit tests.

use std::{path::PathBuf, process::Stdio, sync::Arc, time::Duration};

use futures::future::BoxFuture;
use serde_json::{Value, json};
use tokio::{io::AsyncWriteExt, process::Command};

use crate::{NetworkError, Result, cni_config::find_plugin, plugin_lock::PluginLocks};

/// Interface name inside the pod.
pub const POD_INTERFACE: &str = "eth0";

/// The CNI operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CniCommand {
    /// Attach.
    Add,
    /// Detach (idempotent by specification).
    Del,
    /// Verify an attachment.
    Check,
}

impl CniCommand {
    /// `CNI_COMMAND`'s value.
    pub fn as_str(self) -> &'static str {
        match self {
            CniCommand::Add => "ADD",
            CniCommand::Del => "DEL",
            CniCommand::Check => "CHECK",
        }
    }
}

/// Who is being attached, and the runtime data plugins may ask for by capability.
#[derive(Debug, Clone)]
pub struct Attachment {
    /// `CNI_CONTAINERID`: the pod id.
    pub container_id: String,
    /// `CNI_NETNS`: the pinned namespace (may be gone for DEL).
    pub netns: String,
    /// Pod name, namespace and uid, passed as `CNI_ARGS` the way kubelet-era runtimes do.
    pub pod_name: String,
    pub pod_namespace: String,
    pub pod_uid: String,
    /// `runtimeConfig.portMappings`, for plugins with the `portMappings` capability.
    pub port_mappings: Vec<Value>,
}

/// Runs one plugin of a list: the seam between the list logic and the plugin processes.
pub trait CniPlugins: Send + Sync {
    /// Runs plugin `plugin_type` for `command` with its network `config` on `attachment`;
    /// its result (ADD) or whatever it printed.
    fn invoke<'a>(
        &'a self,
        command: CniCommand,
        plugin_type: &'a str,
        config: &'a Value,
        attachment: &'a Attachment,
    ) -> BoxFuture<'a, Result<Value>>;

    /// Pod `pod_id` is detached: what its plugin runs kept for it (a lock file) can go.
    fn forget(&self, pod_id: &str);
}

/// Runs plugin lists.
#[derive(Clone)]
pub struct CniRuntime {
    plugins: Arc<dyn CniPlugins>,
}

impl CniRuntime {
    /// A runtime running each plugin through `plugins`.
    pub fn new(plugins: Arc<dyn CniPlugins>) -> Self {
        Self { plugins }
    }

    /// Pod `pod_id` is detached (see [`CniPlugins::forget`]).
    pub fn forget(&self, pod_id: &str) {
        self.plugins.forget(pod_id);
    }

    /// Runs `command` over the whole list; answers the final result (ADD) or `Null`. Timed in
    /// the metrics as `cni_add`, `cni_del` or `cni_check`.
    pub async fn run_list(
        &self,
        command: CniCommand,
        conflist: &Value,
        attachment: &Attachment,
        cached_result: Option<&Value>,
    ) -> Result<Value> {
        let operation = format!("cni_{}", command.as_str().to_ascii_lowercase());
        crimson_metrics::timed(
            &operation,
            self.run_list_untimed(command, conflist, attachment, cached_result),
        )
        .await
    }

    async fn run_list_untimed(
        &self,
        command: CniCommand,
        conflist: &Value,
        attachment: &Attachment,
        cached_result: Option<&Value>,
    ) -> Result<Value> {
        let version = conflist["cniVersion"]
            .as_str()
            .unwrap_or("0.3.1")
            .to_string();
        if command == CniCommand::Check && !supports_check(&version) {
            return Ok(Value::Null);
        }
        let mut plugins: Vec<Value> = conflist["plugins"].as_array().cloned().unwrap_or_default();
        if command == CniCommand::Del {
            plugins.reverse();
        }
        let mut previous = match command {
            CniCommand::Add => None,
            _ if supports_check(&version) => cached_result.cloned(),
            _ => None,
        };
        // DEL goes on past a failing plugin, so one failure does not leak what the others
        // hold (an IP lease, a veth); the first failure is still reported.
        let mut first_del_error = None;
        for plugin in plugins {
            let config = plugin_config(&plugin, conflist, &version, previous.as_ref(), attachment);
            let plugin_type = plugin["type"].as_str().unwrap_or_default();
            match self
                .plugins
                .invoke(command, plugin_type, &config, attachment)
                .await
            {
                Ok(output) if command == CniCommand::Add => previous = Some(output),
                Ok(_) => {}
                Err(error) if command == CniCommand::Del => {
                    first_del_error.get_or_insert(error);
                }
                Err(error) => return Err(error),
            }
        }
        if let Some(error) = first_del_error {
            return Err(error);
        }
        Ok(previous
            .filter(|_| command == CniCommand::Add)
            .unwrap_or(Value::Null))
    }
}

/// The plugins as processes, from the configured directories.
#[derive(Debug)]
pub struct PluginProcesses {
    bin_dirs: Vec<PathBuf>,
    timeout: Duration,
    /// Per-pod locks every plugin process holds while it runs.
    locks: PluginLocks,
}

impl PluginProcesses {
    /// Plugins looked up in `bin_dirs`, each given `timeout`, with their per-pod lock files in
    /// `lock_dir`.
    pub fn new(bin_dirs: Vec<PathBuf>, timeout: Duration, lock_dir: PathBuf) -> Self {
        Self {
            bin_dirs,
            timeout,
            // A plugin of an earlier instance has at most its own time limit left.
            locks: PluginLocks::new(lock_dir, timeout + Duration::from_secs(5)),
        }
    }

    async fn invoke(
        &self,
        command: CniCommand,
        plugin_type: &str,
        config: &Value,
        attachment: &Attachment,
    ) -> Result<Value> {
        let fail = |message: String| NetworkError::Plugin {
            command: command.as_str(),
            plugin: plugin_type.to_string(),
            message,
        };
        let binary = find_plugin(&self.bin_dirs, plugin_type)
            .ok_or_else(|| fail(format!("not found in {:?}", self.bin_dirs)))?;
        let cni_path = std::env::join_paths(&self.bin_dirs).map_err(|e| fail(e.to_string()))?;
        let cni_args = format!(
            "IgnoreUnknown=1;K8S_POD_NAMESPACE={};K8S_POD_NAME={};K8S_POD_INFRA_CONTAINER_ID={};K8S_POD_UID={}",
            attachment.pod_namespace,
            attachment.pod_name,
            attachment.container_id,
            attachment.pod_uid
        );
        let mut process = Command::new(&binary);
        process
            .env("CNI_COMMAND", command.as_str())
            .env("CNI_CONTAINERID", &attachment.container_id)
            .env("CNI_NETNS", &attachment.netns)
            .env("CNI_IFNAME", POD_INTERFACE)
            .env("CNI_ARGS", cni_args)
            .env("CNI_PATH", cni_path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Killed when its time limit passes; no caller going away drops it half-way (SetUpPod
            // and TearDownPod run to completion).
            .kill_on_drop(true);
        // The plugin keeps the pod's lock while it runs, even past this daemon's death.
        let lock = self.locks.lock(&attachment.container_id).await?;
        let lock_fd = lock.inheritable_fd();
        // SAFETY: fcntl is async-signal-safe and touches no memory of the parent.
        unsafe {
            process.pre_exec(move || {
                if libc::fcntl(lock_fd, libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = process
            .spawn()
            .map_err(|e| fail(format!("starting {}: {e}", binary.display())))?;
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| fail("its standard input is not a pipe".into()))?;
        let input = serde_json::to_vec(config).map_err(|e| fail(e.to_string()))?;
        let writer = async move {
            let _ = stdin.write_all(&input).await;
        };
        let (_, output) = tokio::time::timeout(self.timeout, async {
            tokio::join!(writer, child.wait_with_output())
        })
        .await
        .map_err(|_| {
            tracing::warn!(plugin = %plugin_type, command = command.as_str(), timeout = ?self.timeout, "CNI plugin gave no answer; killed");
            NetworkError::TimedOut {
                action: "running a CNI plugin",
                after: self.timeout,
            }
        })?;
        let output = output.map_err(|e| fail(e.to_string()))?;
        let stdout: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
        if !output.status.success() {
            let message = stdout["msg"]
                .as_str()
                .map(|msg| match stdout["details"].as_str() {
                    Some(details) if !details.is_empty() => format!("{msg}: {details}"),
                    _ => msg.to_string(),
                })
                .unwrap_or_else(|| String::from_utf8_lossy(&output.stderr).trim().to_string());
            return Err(fail(format!("{} ({})", message, output.status)));
        }
        Ok(stdout)
    }
}

impl CniPlugins for PluginProcesses {
    fn invoke<'a>(
        &'a self,
        command: CniCommand,
        plugin_type: &'a str,
        config: &'a Value,
        attachment: &'a Attachment,
    ) -> BoxFuture<'a, Result<Value>> {
        Box::pin(PluginProcesses::invoke(
            self,
            command,
            plugin_type,
            config,
            attachment,
        ))
    }

    fn forget(&self, pod_id: &str) {
        self.locks.forget(pod_id);
    }
}

/// CHECK and cached results for DEL exist from spec 0.4.0 on.
fn supports_check(version: &str) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    major >= 1 || minor >= 4
}

/// The configuration one plugin of a list receives.
fn plugin_config(
    plugin: &Value,
    conflist: &Value,
    version: &str,
    previous: Option<&Value>,
    attachment: &Attachment,
) -> Value {
    let mut config = plugin.clone();
    config["name"] = conflist["name"].clone();
    config["cniVersion"] = json!(version);
    if let Some(previous) = previous {
        config["prevResult"] = previous.clone();
    }
    let wants_port_mappings = plugin["capabilities"]["portMappings"]
        .as_bool()
        .unwrap_or(false);
    if wants_port_mappings && !attachment.port_mappings.is_empty() {
        config["runtimeConfig"] = json!({"portMappings": attachment.port_mappings});
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attachment() -> Attachment {
        Attachment {
            container_id: "pod1".into(),
            netns: "/run/netns/pod1".into(),
            pod_name: "web".into(),
            pod_namespace: "default".into(),
            pod_uid: "uid-1".into(),
            port_mappings: vec![
                json!({"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": ""}),
            ],
        }
    }

    #[test]
    fn plugin_config_carries_name_version_previous_result_and_capabilities() {
        let conflist = json!({"cniVersion": "1.0.0", "name": "pods", "plugins": []});
        let portmap = json!({"type": "portmap", "capabilities": {"portMappings": true}});
        let previous = json!({"ips": []});
        let config = plugin_config(&portmap, &conflist, "1.0.0", Some(&previous), &attachment());
        assert_eq!(config["name"], "pods");
        assert_eq!(config["prevResult"], previous);
        assert_eq!(config["runtimeConfig"]["portMappings"][0]["hostPort"], 8080);
        let bridge = plugin_config(
            &json!({"type": "bridge"}),
            &conflist,
            "1.0.0",
            None,
            &attachment(),
        );
        assert!(bridge.get("runtimeConfig").is_none() && bridge.get("prevResult").is_none());
    }

    /// A plugin that records its command in `log`, then fails when `fails`.
    fn fake_plugin(dir: &std::path::Path, name: &str, log: &std::path::Path, fails: bool) {
        use std::os::unix::fs::PermissionsExt;
        let exit = if fails {
            r#"echo '{"code":11,"msg":"broken"}'; exit 1"#
        } else {
            "echo '{}'"
        };
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\necho \"{name} $CNI_COMMAND\" >> {}\n{exit}\n",
                log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[tokio::test]
    async fn del_goes_on_past_a_failing_plugin_and_reports_the_failure() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("calls");
        fake_plugin(dir.path(), "holds-an-ip", &log, false);
        fake_plugin(dir.path(), "breaks", &log, true);
        let conflist = json!({"cniVersion": "1.0.0", "name": "pods",
            "plugins": [{"type": "holds-an-ip"}, {"type": "breaks"}]});
        let runtime = CniRuntime::new(Arc::new(PluginProcesses::new(
            vec![dir.path().into()],
            Duration::from_secs(10),
            dir.path().join("locks"),
        )));
        let error = runtime
            .run_list(CniCommand::Del, &conflist, &attachment(), None)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("broken"), "{error}");
        let calls = std::fs::read_to_string(&log).unwrap();
        assert_eq!(calls, "breaks DEL\nholds-an-ip DEL\n");

        std::fs::remove_file(&log).unwrap();
        let conflist = json!({"cniVersion": "1.0.0", "name": "pods",
            "plugins": [{"type": "breaks"}, {"type": "holds-an-ip"}]});
        runtime
            .run_list(CniCommand::Add, &conflist, &attachment(), None)
            .await
            .unwrap_err();
        let calls = std::fs::read_to_string(&log).unwrap();
        assert_eq!(calls, "breaks ADD\n", "ADD stops at the first failure");
    }

    #[test]
    fn check_exists_from_spec_0_4_0() {
        assert!(!supports_check("0.3.1"));
        assert!(supports_check("0.4.0"));
        assert!(supports_check("1.0.0"));
    }
}
