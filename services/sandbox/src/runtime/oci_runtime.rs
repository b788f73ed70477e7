//! The OCI runtime's command line: `<runtime> --root <dir> start|kill|delete|state|update`,
//! run through a [`RuntimeRunner`] (the binary itself, or a recording fake in unit tests);
//! a container runc created is started by the runner itself ([`exec_fifo`]).

use std::{fmt, path::Path, path::PathBuf, process::Stdio, sync::Arc, time::Duration};

use futures::future::BoxFuture;
use tokio::{io::AsyncWriteExt, process::Command};

use crate::{
    Result, SandboxError,
    runtime::{
        children::children,
        exec_fifo::{self, EXEC_FIFO, InitProcess},
        features::RuntimeFeatures,
    },
};

/// How long one runtime command (start, kill, delete, state, update) may take before it is
/// killed and its RPC fails.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// One command line of an OCI runtime.
#[derive(Debug, Clone, Copy)]
pub struct RuntimeCommand<'a> {
    /// What the command does, for its error ("starting the container").
    pub action: &'static str,
    /// The runtime binary.
    pub runtime: &'a Path,
    /// Its `--root`.
    pub root: &'a Path,
    /// The arguments after `--root <dir>`.
    pub args: &'a [&'a str],
    /// What is written to its standard input.
    pub stdin: Option<&'a [u8]>,
}

/// Told once a start can no longer be undone: runc's init has its fifo's reader.
pub type Opened = tokio::sync::oneshot::Sender<()>;

/// Runs an OCI runtime's command lines: the seam between the daemon's logic and the runtime
/// binary.
pub trait RuntimeRunner: Send + Sync + fmt::Debug {
    /// Runs `command`: its standard output, or [`SandboxError::Runtime`] with its standard
    /// error when it fails.
    fn run<'a>(&'a self, command: RuntimeCommand<'a>) -> BoxFuture<'a, Result<Vec<u8>>>;

    /// What `<runtime> features` prints (JSON), `Null` when it says nothing usable.
    fn features(&self, runtime: &Path) -> serde_json::Value;

    /// Starts the container runc created with its init process `init_pid` waiting on `fifo`
    /// ([`exec_fifo::release`]), sending on `opened` once init can no longer wait; `Ok(false)`
    /// when there is no such fifo.
    fn release<'a>(
        &'a self,
        fifo: &'a Path,
        init_pid: u32,
        opened: Opened,
    ) -> BoxFuture<'a, Result<bool>>;
}

/// The real runtime binary, as a child process of this daemon.
#[derive(Debug, Default)]
pub struct RuntimeBinary;

impl RuntimeRunner for RuntimeBinary {
    fn run<'a>(&'a self, command: RuntimeCommand<'a>) -> BoxFuture<'a, Result<Vec<u8>>> {
        Box::pin(run_binary(command))
    }

    fn features(&self, runtime: &Path) -> serde_json::Value {
        std::process::Command::new(runtime)
            .arg("features")
            .output()
            .ok()
            .filter(|output| output.status.success())
            .and_then(|output| serde_json::from_slice(&output.stdout).ok())
            .unwrap_or_default()
    }

    fn release<'a>(
        &'a self,
        fifo: &'a Path,
        init_pid: u32,
        opened: Opened,
    ) -> BoxFuture<'a, Result<bool>> {
        let fifo = fifo.to_path_buf();
        // Blocking work of its own: a caller that goes away does not interrupt it.
        let releasing = tokio::task::spawn_blocking(move || {
            let init = || InitProcess::of(init_pid);
            // Nobody may be waiting any more (the caller went away).
            let opened = move || {
                let _ = opened.send(());
            };
            exec_fifo::release(&fifo, init, opened, COMMAND_TIMEOUT)
        });
        Box::pin(async move {
            releasing
                .await
                .map_err(|e| SandboxError::runtime("starting the container", e))?
        })
    }
}

async fn run_binary(command: RuntimeCommand<'_>) -> Result<Vec<u8>> {
    let RuntimeCommand {
        action,
        runtime,
        root,
        args,
        stdin,
    } = command;
    let (mut child, owned) = children()
        .spawn(
            Command::new(runtime)
                .arg("--root")
                .arg(root)
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
            SandboxError::runtime(action, format!("running {}: {e}", runtime.display()))
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

/// One OCI runtime binary and its state directory.
#[derive(Debug, Clone)]
pub struct OciRuntime {
    /// The binary.
    pub path: PathBuf,
    /// Its `--root`.
    pub root: PathBuf,
    /// What it supports (probed at start-up).
    pub features: RuntimeFeatures,
    /// What runs its command lines.
    pub runner: Arc<dyn RuntimeRunner>,
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
        let command = RuntimeCommand {
            action,
            runtime: &self.path,
            root: &self.root,
            args,
            stdin,
        };
        crimson_metrics::timed(&operation, self.runner.run(command)).await
    }

    /// Starts a created container whose init process is `init_pid`: runc's is released
    /// here (no `runc start` process), any other runtime's by its `start`. `opened` hears once
    /// runc's init can no longer wait (its fifo opened), while it still execs; nothing when
    /// the runtime's `start` runs.
    pub async fn start(&self, id: &str, init_pid: u32, opened: Opened) -> Result<()> {
        if self.features.exec_fifo {
            let fifo = self.root.join(id).join(EXEC_FIFO);
            let release = self.runner.release(&fifo, init_pid, opened);
            if crimson_metrics::timed("oci_runtime_start", release).await? {
                return Ok(());
            }
        }
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
