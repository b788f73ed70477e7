//! The OCI runtime's command line: `<runtime> --root <dir> start|kill|delete|state|update`.

use std::{path::PathBuf, process::Stdio, time::Duration};

use tokio::{io::AsyncWriteExt, process::Command};

use crate::{
    Result, SandboxError,
    runtime::{children::children, features::RuntimeFeatures},
};

/// How long one runtime command (start, kill, delete, state, update) may take before it is
/// killed and its RPC fails.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// One OCI runtime binary and its state directory.
#[derive(Debug, Clone)]
pub struct OciRuntime {
    /// The binary.
    pub path: PathBuf,
    /// Its `--root`.
    pub root: PathBuf,
    /// What it supports (probed at start-up).
    pub features: RuntimeFeatures,
}

/// What `state` reports.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct RuntimeState {
    /// created, running, stopped, paused.
    pub status: String,
    /// Container init pid.
    pub pid: i64,
}

/// Errors meaning the container is already gone or not running.
const GONE: &[&str] = &[
    "does not exist",
    "not running",
    "no such process",
    "container not found",
    "invalid process",
];

impl OciRuntime {
    /// Runs the runtime with `args`, timed in the metrics as `oci_runtime_<subcommand>`.
    async fn run(
        &self,
        action: &'static str,
        args: &[&str],
        stdin: Option<&[u8]>,
    ) -> Result<Vec<u8>> {
        let operation = format!("oci_runtime_{}", args.first().copied().unwrap_or("run"));
        crimson_metrics::timed(&operation, self.run_untimed(action, args, stdin)).await
    }

    async fn run_untimed(
        &self,
        action: &'static str,
        args: &[&str],
        stdin: Option<&[u8]>,
    ) -> Result<Vec<u8>> {
        let (mut child, owned) = children()
            .spawn(
                Command::new(&self.path)
                    .arg("--root")
                    .arg(&self.root)
                    .args(args)
                    .stdin(if stdin.is_some() {
                        Stdio::piped()
                    } else {
                        Stdio::null()
                    })
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .kill_on_drop(true),
            )
            .map_err(|e| {
                SandboxError::runtime(action, format!("running {}: {e}", self.path.display()))
            })?;
        let input = stdin.map(<[u8]>::to_vec);
        // Its own task: a caller that goes away (its connection broke) never interrupts the
        // runtime half-way — a `runc start` killed after releasing the process but before
        // removing its exec fifo leaves a container no later start can start.
        let command = tokio::spawn(async move {
            let _owned = owned;
            let finished = async {
                if let (Some(input), Some(mut pipe)) = (input, child.stdin.take()) {
                    pipe.write_all(&input).await?;
                }
                child.wait_with_output().await
            };
            tokio::time::timeout(COMMAND_TIMEOUT, finished).await
        });
        let output = command
            .await
            .map_err(|e| SandboxError::runtime(action, e))?
            .map_err(|_| SandboxError::TimedOut {
                action,
                after: COMMAND_TIMEOUT,
            })?
            .map_err(|e| SandboxError::runtime(action, e))?;
        if output.status.success() {
            Ok(output.stdout)
        } else {
            Err(SandboxError::runtime(
                action,
                String::from_utf8_lossy(&output.stderr).trim().to_string(),
            ))
        }
    }

    /// Starts a created container.
    pub async fn start(&self, id: &str) -> Result<()> {
        self.run("starting the container", &["start", id], None)
            .await
            .map(drop)
    }

    /// Sends `signal` (a number or name) to the container's init process; `Ok(false)` when
    /// the container was not running.
    pub async fn kill(&self, id: &str, signal: &str) -> Result<bool> {
        match self
            .run("signalling the container", &["kill", id, signal], None)
            .await
        {
            Ok(_) => Ok(true),
            Err(SandboxError::Runtime { message, .. }) if is_gone(&message) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes the container's runtime state (killing it first); a missing container is fine.
    pub async fn delete(&self, id: &str) -> Result<()> {
        match self
            .run("deleting the container", &["delete", "--force", id], None)
            .await
        {
            Err(SandboxError::Runtime { message, .. }) if is_gone(&message) => Ok(()),
            other => other.map(drop),
        }
    }

    /// The container's state, `None` when the runtime does not know it.
    pub async fn state(&self, id: &str) -> Result<Option<RuntimeState>> {
        match self
            .run("reading the container state", &["state", id], None)
            .await
        {
            Ok(stdout) => serde_json::from_slice(&stdout)
                .map(Some)
                .map_err(|e| SandboxError::runtime("reading the container state", e)),
            Err(SandboxError::Runtime { message, .. }) if is_gone(&message) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Applies new resource limits (OCI `LinuxResources` JSON).
    pub async fn update(&self, id: &str, resources: &[u8]) -> Result<()> {
        self.run(
            "updating resources",
            &["update", "--resources", "-", id],
            Some(resources),
        )
        .await
        .map(drop)
    }
}

fn is_gone(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    GONE.iter().any(|gone| message.contains(gone))
}
