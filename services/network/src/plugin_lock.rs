//! One lock file per pod, held by every CNI plugin process working on it. The plugin inherits
//! the locked file, so the lock lives as long as the plugin does — also when this daemon is
//! killed in the middle. The next crimson-network waits for that orphaned plugin to finish its
//! ADD or DEL before it runs one of its own on the pod (its start-up undo, kubelet's retry):
//! plugins never race on one pod, and none is killed half-way (a bridge DEL killed after
//! removing the veth, before the masquerade rules, would leave those behind for good).

use std::{
    fs::File,
    os::fd::{AsRawFd, RawFd},
    path::PathBuf,
    time::{Duration, Instant},
};

use crate::{NetworkError, Result};

/// How often a lock held by another process is tried again.
const RETRY: Duration = Duration::from_millis(20);

/// The lock files of every pod, in one directory.
#[derive(Debug, Clone)]
pub struct PluginLocks {
    dir: PathBuf,
    wait: Duration,
}

/// A pod's lock, held; pass [`PodLock::inheritable_fd`] on to the plugin process. Dropping it
/// only closes this process's descriptor (no unlock): a plugin still holding the file keeps the
/// lock until it exits.
pub struct PodLock(File);

impl PodLock {
    /// The locked file's descriptor, for the plugin process to keep open.
    pub fn inheritable_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl PluginLocks {
    /// Locks under `dir`; a lock held longer than `wait` fails the operation.
    pub fn new(dir: PathBuf, wait: Duration) -> Self {
        Self { dir, wait }
    }

    /// Waits until no plugin process (of this daemon or an earlier one) works on `pod_id`,
    /// then holds its lock.
    pub async fn lock(&self, pod_id: &str) -> Result<PodLock> {
        let io = |e: std::io::Error| NetworkError::Netns {
            path: self.dir.display().to_string(),
            message: format!("plugin lock: {e}"),
        };
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        let path = self.dir.join(pod_id);
        let deadline = Instant::now() + self.wait;
        loop {
            let file = File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(io)?;
            // SAFETY: flock on a descriptor this function owns.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return Ok(PodLock(file));
            }
            let error = std::io::Error::last_os_error();
            if error.kind() != std::io::ErrorKind::WouldBlock {
                return Err(io(error));
            }
            if Instant::now() >= deadline {
                return Err(NetworkError::TimedOut {
                    action: "waiting for a CNI plugin of an earlier crimson-network",
                    after: self.wait,
                });
            }
            tokio::time::sleep(RETRY).await;
        }
    }

    /// Drops the lock file of a pod that is gone (its last DEL done, under its lock).
    pub fn forget(&self, pod_id: &str) {
        let _ = std::fs::remove_file(self.dir.join(pod_id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lock_held_by_a_surviving_child_process_is_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let locks = PluginLocks::new(dir.path().into(), Duration::from_secs(10));
        let held = locks.lock("pod").await.unwrap();
        // A child that keeps the locked file after this "daemon" let go of it.
        let fd = held.inheritable_fd();
        let mut child = std::process::Command::new("sleep");
        child.arg("0.3");
        // SAFETY: fcntl is async-signal-safe.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut child, move || {
                if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = child.spawn().unwrap();
        drop(held);
        let began = Instant::now();
        let _again = locks.lock("pod").await.unwrap();
        assert!(
            child.try_wait().unwrap().is_some(),
            "the lock came back only once the child exited (after {:?})",
            began.elapsed()
        );
        child.wait().unwrap();

        let short = PluginLocks::new(dir.path().into(), Duration::from_millis(50));
        let err = short.lock("pod").await.err().expect("held by `_again`");
        assert!(matches!(err, NetworkError::TimedOut { .. }), "{err}");
    }
}
