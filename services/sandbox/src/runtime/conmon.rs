//! Creating a container through conmon, as CRI-O does: conmon runs `<runtime> create`, then
//! stays as the container's monitor (log writer, exit-file writer, attach socket) and keeps it
//! alive whatever happens to this daemon.
//!
//! Protocol: fd 3 (`_OCI_SYNCPIPE`) carries conmon's report, `{"pid": N}` once the runtime
//! created the container or `{"pid": -1, "message": "..."}`; fd 4 (`_OCI_STARTPIPE`) holds conmon
//! back until one byte arrives.

use std::{
    io::{BufRead, BufReader, Write},
    os::{fd::AsRawFd, unix::net::UnixStream},
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use futures::future::BoxFuture;
use tokio::process::Command;

use crate::{
    Result, SandboxError,
    runtime::{children::children, oci_runtime::OciRuntime},
};

/// How long creating a container may take.
const CREATE_TIMEOUT: Duration = Duration::from_secs(240);

/// Everything conmon needs to create one container.
pub struct ConmonCreate<'a> {
    /// The conmon binary.
    pub conmon: &'a Path,
    /// The OCI runtime conmon runs.
    pub runtime: &'a OciRuntime,
    /// The container id (also conmon's `-u`).
    pub container_id: &'a str,
    /// The container's name, for conmon's logs.
    pub name: &'a str,
    /// The OCI bundle (config.json), also where conmon keeps its pid files.
    pub bundle: &'a Path,
    /// The container log, in the k8s-file format.
    pub log_path: &'a Path,
    /// Where conmon writes the exit status file, named by the container id.
    pub exit_dir: &'a Path,
    /// Where conmon makes the attach socket.
    pub attach_dir: &'a Path,
    /// Keep stdin open for attach.
    pub stdin: bool,
    /// Close stdin after the first attach ends.
    pub stdin_once: bool,
    /// Give the process a terminal.
    pub tty: bool,
    /// Largest log file in bytes before conmon truncates it; negative: no limit.
    pub log_size_max: i64,
}

/// What a successful create gives.
#[derive(Debug, Clone, Copy)]
pub struct Created {
    /// The container's init process.
    pub pid: u32,
    /// conmon's daemon process.
    pub conmon_pid: u32,
}

#[derive(serde::Deserialize)]
struct SyncMessage {
    pid: i64,
    #[serde(default)]
    message: String,
}

/// What creates a container and keeps watch over it: the seam between the daemon's logic and
/// conmon.
pub trait Monitor: Send + Sync {
    /// Creates the container `request` describes and starts its monitor.
    fn create<'a>(&'a self, request: ConmonCreate<'a>) -> BoxFuture<'a, Result<Created>>;
}

/// conmon itself, as a child process of this daemon.
#[derive(Debug, Default)]
pub struct Conmon;

impl Monitor for Conmon {
    fn create<'a>(&'a self, request: ConmonCreate<'a>) -> BoxFuture<'a, Result<Created>> {
        Box::pin(create(request))
    }
}

/// Runs conmon and waits for its report.
pub async fn create(request: ConmonCreate<'_>) -> Result<Created> {
    let fail = |message: String| SandboxError::runtime("creating the container", message);
    let (sync_parent, sync_child) = UnixStream::pair().map_err(|e| fail(e.to_string()))?;
    let (mut start_parent, start_child) = UnixStream::pair().map_err(|e| fail(e.to_string()))?;
    if let Some(dir) = request.log_path.parent() {
        std::fs::create_dir_all(dir).map_err(SandboxError::io("creating log directory", dir))?;
    }
    let conmon_pidfile = request.bundle.join("conmon-pidfile");
    let mut command = Command::new(request.conmon);
    command
        .current_dir(request.bundle)
        .args([
            "-c",
            request.container_id,
            "-u",
            request.container_id,
            "-n",
            request.name,
        ])
        .arg("-r")
        .arg(&request.runtime.path)
        .arg(format!(
            "--runtime-arg=--root={}",
            request.runtime.root.display()
        ))
        .arg("-b")
        .arg(request.bundle)
        .arg("-p")
        .arg(request.bundle.join("pidfile"))
        .arg("-P")
        .arg(&conmon_pidfile)
        .arg("-l")
        .arg(format!("k8s-file:{}", request.log_path.display()))
        .arg("--exit-dir")
        .arg(request.exit_dir)
        .arg("--persist-dir")
        .arg(request.bundle)
        .arg("--socket-dir-path")
        .arg(request.attach_dir)
        .args(["--log-level", "info"]);
    if request.log_size_max >= 0 {
        command
            .arg("--log-size-max")
            .arg(request.log_size_max.to_string());
    }
    if request.tty {
        command.arg("-t");
    } else if request.stdin {
        command.arg("-i");
        if !request.stdin_once {
            command.arg("--leave-stdin-open");
        }
    }
    let sync_fd = sync_child.as_raw_fd();
    let start_fd = start_child.as_raw_fd();
    command
        .env("_OCI_SYNCPIPE", "3")
        .env("_OCI_STARTPIPE", "4")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: only async-signal-safe calls (dup2) between fork and exec.
    unsafe {
        command.pre_exec(move || {
            for (from, to) in [(sync_fd, 3), (start_fd, 4)] {
                if libc::dup2(from, to) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let (child, _owned) = children()
        .spawn(&mut command)
        .map_err(|e| fail(format!("running {}: {e}", request.conmon.display())))?;
    drop(sync_child);
    drop(start_child);
    start_parent
        .write_all(&[0])
        .map_err(|e| fail(format!("releasing conmon: {e}")))?;
    let parent = tokio::time::timeout(CREATE_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| fail(format!("conmon did not finish within {CREATE_TIMEOUT:?}")))?
        .map_err(|e| fail(e.to_string()))?;
    if !parent.status.success() {
        return Err(fail(format!(
            "conmon exited with {}: {}",
            parent.status,
            String::from_utf8_lossy(&parent.stderr).trim()
        )));
    }
    let report = tokio::task::spawn_blocking(move || {
        sync_parent.set_read_timeout(Some(CREATE_TIMEOUT)).ok();
        let mut line = String::new();
        BufReader::new(sync_parent)
            .read_line(&mut line)
            .map(|_| line)
    })
    .await
    .map_err(|e| fail(e.to_string()))?
    .map_err(|e| fail(format!("reading conmon's report: {e}")))?;
    let message: SyncMessage = serde_json::from_str(report.trim()).map_err(|_| {
        fail(format!(
            "conmon reported no pid (runtime create failed?): {:?}",
            report.trim()
        ))
    })?;
    if message.pid <= 0 {
        return Err(fail(message.message.trim().to_string()));
    }
    Ok(Created {
        pid: message.pid as u32,
        conmon_pid: read_pid(&conmon_pidfile).unwrap_or(0),
    })
}

/// A pid file's number.
pub fn read_pid(path: &PathBuf) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}
