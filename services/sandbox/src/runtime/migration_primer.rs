//! Keeping the kernel's cgroup-migration lock warm while the OCI runtime joins cgroups.
//!
//! Every write to a `cgroup.procs` file (runc's join of a new container or exec process to its
//! cgroups) takes the kernel's global `cgroup_threadgroup_rwsem` for writing, and a writer that
//! finds it idle first waits out a whole RCU grace period: 8–16 ms on a two-core VM, about half
//! of `runc create`. The lock stays warm while writers keep coming and for a grace period or
//! two after the last one: a writer then waits for the rest of a grace period under way, or
//! not at all. So while a creation or an exec is on its way to runc's join, one blocking
//! thread of this daemon moves itself (by its thread id, through `cgroup.threads`, or `tasks`
//! in a v1 hierarchy) into the cgroup it is already in every few milliseconds: the kernel
//! takes that lock for the move of a thread named by its id, and moves nothing else (the
//! daemon's other threads are not walked, as a write of its pid to `cgroup.procs` would). The
//! first move waits out the grace period while conmon and runc start, and runc finds the lock
//! warm.

use std::{
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use crate::host_ops::HostOps;

/// How often the lock is taken while it is kept warm: well inside a grace period.
const REWRITE_EVERY: Duration = Duration::from_millis(4);

/// How long one call keeps the lock warm: past runc's join, even on a busy node.
pub const WARM_FOR: Duration = Duration::from_millis(150);

/// One blocking thread moving itself into the daemon's cgroup until the latest deadline any
/// caller asked for.
#[derive(Clone)]
pub struct MigrationPrimer {
    host: Arc<dyn HostOps>,
    /// When the primer was made; deadlines count from it.
    epoch: Instant,
    /// Nanoseconds after `epoch` until which the lock is kept warm.
    deadline: Arc<AtomicU64>,
    running: Arc<AtomicBool>,
}

impl MigrationPrimer {
    /// A primer migrating through `host`.
    pub fn new(host: Arc<dyn HostOps>) -> Self {
        Self {
            host,
            epoch: Instant::now(),
            deadline: Arc::default(),
            running: Arc::default(),
        }
    }

    /// Keeps the lock warm for [`WARM_FOR`] from now (starting the rewriting thread if none
    /// runs); returns at once.
    pub fn keep_warm(&self) {
        let until = self.nanos_since_epoch() + WARM_FOR.as_nanos() as u64;
        self.deadline.fetch_max(until, Ordering::AcqRel);
        if self.running.swap(true, Ordering::AcqRel) {
            return;
        }
        let primer = self.clone();
        tokio::task::spawn_blocking(move || primer.rewrite_until_deadline());
    }

    fn rewrite_until_deadline(&self) {
        loop {
            self.host.migrate_self_in_place();
            if self.nanos_since_epoch() < self.deadline.load(Ordering::Acquire) {
                std::thread::sleep(REWRITE_EVERY);
                continue;
            }
            self.running.store(false, Ordering::Release);
            // A caller that moved the deadline after the check saw this thread running.
            let extended = self.nanos_since_epoch() < self.deadline.load(Ordering::Acquire);
            if !extended || self.running.swap(true, Ordering::AcqRel) {
                return;
            }
        }
    }

    fn nanos_since_epoch(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }
}

/// One of this process's cgroups, by its files.
#[derive(Clone, Debug, PartialEq)]
struct OwnCgroup {
    /// The processes in it (`cgroup.procs`): to check that this process is one.
    procs: PathBuf,
    /// Where one thread is moved by its id (`cgroup.threads`, or `tasks` in v1).
    threads: PathBuf,
}

impl OwnCgroup {
    fn in_dir(dir: PathBuf, threads_file: &str) -> Self {
        Self {
            procs: dir.join("cgroup.procs"),
            threads: dir.join(threads_file),
        }
    }
}

/// How long a reading of this process's membership is taken as current: the moves of one
/// warm spell read it once.
const MEMBERSHIP_READ_EVERY: Duration = Duration::from_secs(1);

/// This process's cgroup membership as last read, when, and the cgroup it maps to (`None`: no
/// priming, until the membership changes).
struct Known {
    membership: String,
    read_at: Instant,
    cgroup: Option<OwnCgroup>,
}

static KNOWN: Mutex<Option<Known>> = Mutex::new(None);

/// This process's own cgroup now: found from /proc/self/cgroup, and checked to list this
/// process whenever that membership changes; `None` (no priming) where none does.
fn own_cgroup() -> Option<OwnCgroup> {
    let mut known = KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(known) = known.as_ref()
        && known.read_at.elapsed() < MEMBERSHIP_READ_EVERY
    {
        return known.cgroup.clone();
    }
    let membership = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    if let Some(known) = known.as_mut()
        && known.membership == membership
    {
        known.read_at = Instant::now();
        return known.cgroup.clone();
    }
    let pid = std::process::id().to_string();
    let found = candidates(&membership, &crimson_sys::mounts::mounts())
        .into_iter()
        .find(|cgroup| {
            std::fs::read_to_string(&cgroup.procs)
                .is_ok_and(|listed| listed.lines().any(|line| line == pid))
        });
    if found.is_none() {
        tracing::debug!("own cgroup not found; the runtime's cgroup join is not primed");
    }
    *known = Some(Known {
        membership,
        read_at: Instant::now(),
        cgroup: found.clone(),
    });
    found
}

/// Where this process's cgroup may be, most likely first: in the unified hierarchy (line
/// `0::<path>` of /proc/self/cgroup), then in each v1 hierarchy mounted under its
/// controllers' names (`4:cpu,cpuacct:<path>` at `…/cpu,cpuacct`).
fn candidates(membership: &str, mounts: &[crimson_sys::mounts::Mount]) -> Vec<OwnCgroup> {
    let (mut unified, mut v1) = (Vec::new(), Vec::new());
    for line in membership.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let dir = |mount: &crimson_sys::mounts::Mount| {
            mount.mount_point.join(path.trim_start_matches('/'))
        };
        for mount in mounts {
            match mount.fstype.as_str() {
                "cgroup2" if id == "0" && controllers.is_empty() => {
                    unified.push(OwnCgroup::in_dir(dir(mount), "cgroup.threads"))
                }
                "cgroup"
                    if mount
                        .mount_point
                        .file_name()
                        .is_some_and(|name| name == controllers) =>
                {
                    v1.push(OwnCgroup::in_dir(dir(mount), "tasks"))
                }
                _ => {}
            }
        }
    }
    unified.extend(v1);
    unified
}

/// Moves the calling thread, by its id, into the cgroup this process is in; blocks for the
/// grace period. Best effort: a failure (a read-only cgroup file system, say) is logged once
/// and turns the moves off until the membership changes.
pub fn migrate_self_in_place() {
    let Some(cgroup) = own_cgroup() else {
        return;
    };
    if let Err(e) = std::fs::write(&cgroup.threads, nix::unistd::gettid().to_string()) {
        tracing::info!(file = %cgroup.threads.display(), error = %e, "cannot keep the cgroup-migration lock warm; runc's cgroup joins will wait for it");
        if let Some(known) = KNOWN.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            known.cgroup = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use crimson_sys::mounts::Mount;

    use super::*;

    fn mount(point: &str, fstype: &str) -> Mount {
        Mount {
            mount_point: point.into(),
            fstype: fstype.into(),
        }
    }

    #[test]
    fn the_unified_hierarchy_comes_first_then_v1_hierarchies_by_controller_names() {
        let mounts = [
            mount("/", "ext4"),
            mount("/sys/fs/cgroup/cpu,cpuacct", "cgroup"),
            mount("/sys/fs/cgroup/pids", "cgroup"),
            mount("/sys/fs/cgroup/unified", "cgroup2"),
        ];
        let membership = "4:cpu,cpuacct:/system.slice/crimson.service\n\
                          2:pids:/\n\
                          1:name=systemd:/system.slice\n\
                          0::/system.slice/crimson.service\n";
        let files = |cgroup: &OwnCgroup| (cgroup.procs.clone(), cgroup.threads.clone());
        let found: Vec<_> = candidates(membership, &mounts).iter().map(files).collect();
        let expected = [
            ("unified/system.slice/crimson.service", "cgroup.threads"),
            ("cpu,cpuacct/system.slice/crimson.service", "tasks"),
            ("pids", "tasks"),
        ]
        .map(|(dir, threads)| {
            let dir = PathBuf::from("/sys/fs/cgroup").join(dir);
            (dir.join("cgroup.procs"), dir.join(threads))
        });
        assert_eq!(found, expected);
    }

    #[test]
    fn nothing_is_found_without_cgroup_mounts_or_membership() {
        assert!(candidates("0::/\n", &[mount("/", "ext4")]).is_empty());
        assert!(candidates("garbage", &[mount("/sys/fs/cgroup", "cgroup2")]).is_empty());
    }
}
