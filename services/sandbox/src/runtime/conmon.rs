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
use tokio::process::{Child, Command};

use crate::{
    Result, SandboxError,
    runtime::{
        children::{Owned, children},
        oci_runtime::OciRuntime,
    },
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
    /// Starts the monitor of the container `request` describes, held back before it does
    /// anything, so it loads while the bundle is made (its log and bundle directories are made
    /// first). [`HeldMonitor::create`] lets it create the container; dropping the handle
    /// instead kills it.
    fn start<'m>(&'m self, request: ConmonCreate<'_>) -> Result<Box<dyn HeldMonitor<'m> + 'm>>;
}

/// A monitor started by [`Monitor::start`] that waits for its bundle.
pub trait HeldMonitor<'a>: Send {
    /// Lets the monitor run the OCI runtime's `create` on the bundle, now complete, and waits
    /// for its report.
    fn create(self: Box<Self>) -> BoxFuture<'a, Result<Created>>;
}

/// conmon itself, as a child process of this daemon.
#[derive(Debug, Default)]
pub struct Conmon;

impl Monitor for Conmon {
    fn start<'m>(&'m self, request: ConmonCreate<'_>) -> Result<Box<dyn HeldMonitor<'m> + 'm>> {
        Ok(Box::new(start(request)?))
    }
}

/// A conmon process blocked on its start pipe. Dropped before [`HeldMonitor::create`], it is
/// killed (`kill_on_drop`) before its start pipe closes, as fields drop in order: an end of
/// file on that pipe would let it go on.
struct HeldConmon {
    child: Child,
    start: UnixStream,
    sync: UnixStream,
    _owned: Owned,
    conmon_pidfile: PathBuf,
}

impl<'a> HeldMonitor<'a> for HeldConmon {
    fn create(self: Box<Self>) -> BoxFuture<'a, Result<Created>> {
        Box::pin(release(*self))
    }
}

/// A failure of the creation, saying what went wrong.
fn fail(message: String) -> SandboxError {
    SandboxError::runtime("creating the container", message)
}

/// Runs conmon, held back on its start pipe.
fn start(request: ConmonCreate<'_>) -> Result<HeldConmon> {
    let (sync_parent, sync_child) = UnixStream::pair().map_err(|e| fail(e.to_string()))?;
    let (start_parent, start_child) = UnixStream::pair().map_err(|e| fail(e.to_string()))?;
    let log_dir = request.log_path.parent().unwrap_or(request.bundle);
    for dir in [log_dir, request.bundle] {
        std::fs::create_dir_all(dir).map_err(SandboxError::io("creating", dir))?;
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
        .stderr(Stdio::piped())
        .kill_on_drop(true);
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
    let (child, owned) = children()
        .spawn(&mut command)
        .map_err(|e| fail(format!("running {}: {e}", request.conmon.display())))?;
    drop(sync_child);
    drop(start_child);
    Ok(HeldConmon {
        child,
        _owned: owned,
        start: start_parent,
        sync: sync_parent,
        conmon_pidfile,
    })
}

/// Lets a held conmon go on and waits for its report.
async fn release(mut held: HeldConmon) -> Result<Created> {
    held.start
        .write_all(&[0])
        .map_err(|e| fail(format!("releasing conmon: {e}")))?;
    let parent = tokio::time::timeout(CREATE_TIMEOUT, held.child.wait_with_output())
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
    let sync = held.sync;
    let report = tokio::task::spawn_blocking(move || {
        sync.set_read_timeout(Some(CREATE_TIMEOUT)).ok();
        let mut line = String::new();
        BufReader::new(sync).read_line(&mut line).map(|_| line)
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
        conmon_pid: read_pid(&held.conmon_pidfile).unwrap_or(0),
    })
}

/// A pid file's number.
pub fn read_pid(path: &PathBuf) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use std::{os::unix::fs::PermissionsExt, sync::Arc, time::Duration};

    use super::*;
    use crate::runtime::oci_runtime::RuntimeBinary;

    /// A stand-in for conmon: waits for the start byte on fd 4, notes that it went on, and
    /// reports pid 4242 on fd 3, as conmon does once the runtime created the container.
    const STAND_IN: &str =
        "#!/bin/sh\nhead -c1 <&4 >/dev/null\ntouch went-on\necho '{\"pid\": 4242}' >&3\n";

    struct Scene {
        dir: tempfile::TempDir,
        runtime: OciRuntime,
    }

    impl Scene {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let conmon = dir.path().join("conmon");
            std::fs::write(&conmon, STAND_IN).unwrap();
            std::fs::set_permissions(&conmon, std::fs::Permissions::from_mode(0o755)).unwrap();
            let runtime = OciRuntime {
                path: "/bin/true".into(),
                root: dir.path().join("runtime-root"),
                features: Default::default(),
                runner: Arc::new(RuntimeBinary),
            };
            Self { dir, runtime }
        }

        fn bundle(&self) -> PathBuf {
            self.dir.path().join("bundle")
        }

        fn start(&self) -> HeldConmon {
            let (conmon, bundle) = (self.dir.path().join("conmon"), self.bundle());
            let log_path = self.dir.path().join("logs/app.log");
            start(ConmonCreate {
                conmon: &conmon,
                runtime: &self.runtime,
                container_id: "c1",
                name: "app",
                bundle: &bundle,
                log_path: &log_path,
                exit_dir: self.dir.path(),
                attach_dir: self.dir.path(),
                stdin: false,
                stdin_once: false,
                tty: false,
                log_size_max: -1,
            })
            .expect("conmon starts")
        }
    }

    #[tokio::test]
    async fn a_released_monitor_creates_and_reports_the_pid() {
        let scene = Scene::new();
        let held = scene.start();
        assert!(
            scene.dir.path().join("logs").is_dir(),
            "the log directory is made"
        );
        let created = release(held).await.expect("conmon reports");
        assert_eq!(created.pid, 4242);
        assert!(scene.bundle().join("went-on").exists());
    }

    #[tokio::test]
    async fn a_monitor_dropped_unreleased_is_killed_before_it_goes_on() {
        let scene = Scene::new();
        let held = scene.start();
        let pid = held.child.id().expect("a running conmon");
        drop(held);
        let stat = format!("/proc/{pid}/stat");
        for _ in 0..500 {
            let state = std::fs::read_to_string(&stat).unwrap_or_default();
            if state.is_empty() || state.contains(") Z ") {
                assert!(!scene.bundle().join("went-on").exists(), "it went on");
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the held conmon is still running");
    }
}
