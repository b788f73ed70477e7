//! Keeping the kernel's cgroup-migration lock warm while the OCI runtime joins cgroups.
//!
//! Every write to a `cgroup.procs` file (runc's join of a new container or exec process to its
//! cgroups) takes the kernel's global `cgroup_threadgroup_rwsem` for writing, and a writer that
//! finds it idle first waits out a whole RCU grace period: 8–16 ms on a two-core VM, about half
//! of `runc create`. The lock stays warm while writers keep coming and for a grace period or
//! two after the last one: a writer then waits for the rest of a grace period under way, or
//! not at all. So while a creation or an exec is on its way to runc's join, this daemon
//! rewrites its own pid into its own `cgroup.procs` (a migration to where it already is:
//! nothing moves) every few milliseconds on one blocking thread; the first write waits out the
//! grace period while conmon and runc start, and runc finds the lock warm.

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

/// One blocking thread rewriting the daemon's cgroup membership until the latest deadline any
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

/// This process's cgroup membership as last read, and the `cgroup.procs` it maps to (`None`:
/// no priming, until the membership changes).
static KNOWN: Mutex<Option<(String, Option<PathBuf>)>> = Mutex::new(None);

/// This process's own `cgroup.procs` now: found from /proc/self/cgroup, and checked to list
/// this process whenever that membership changes; `None` (no priming) where none does.
fn own_cgroup_procs() -> Option<PathBuf> {
    let membership = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let mut known = KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((seen, procs)) = known.as_ref()
        && *seen == membership
    {
        return procs.clone();
    }
    let pid = std::process::id().to_string();
    let found = candidates(&membership, &crimson_sys::mounts::mounts())
        .into_iter()
        .find(|procs| {
            std::fs::read_to_string(procs)
                .is_ok_and(|listed| listed.lines().any(|line| line == pid))
        });
    if found.is_none() {
        tracing::debug!("own cgroup.procs not found; the runtime's cgroup join is not primed");
    }
    *known = Some((membership, found.clone()));
    found
}

/// Where this process's `cgroup.procs` may be, most likely first: in the unified hierarchy
/// (line `0::<path>` of /proc/self/cgroup), then in each v1 hierarchy mounted under its
/// controllers' names (`4:cpu,cpuacct:<path>` at `…/cpu,cpuacct`).
fn candidates(membership: &str, mounts: &[crimson_sys::mounts::Mount]) -> Vec<PathBuf> {
    let (mut unified, mut v1) = (Vec::new(), Vec::new());
    for line in membership.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let procs = |mount: &crimson_sys::mounts::Mount| {
            mount
                .mount_point
                .join(path.trim_start_matches('/'))
                .join("cgroup.procs")
        };
        for mount in mounts {
            match mount.fstype.as_str() {
                "cgroup2" if id == "0" && controllers.is_empty() => unified.push(procs(mount)),
                "cgroup"
                    if mount
                        .mount_point
                        .file_name()
                        .is_some_and(|name| name == controllers) =>
                {
                    v1.push(procs(mount))
                }
                _ => {}
            }
        }
    }
    unified.extend(v1);
    unified
}

/// Rewrites this process's pid into its own `cgroup.procs`; blocks for the grace period.
/// Best effort: a failure (a read-only cgroup file system, say) is logged once and turns the
/// rewrites off until the membership changes.
pub fn migrate_self_in_place() {
    let Some(procs) = own_cgroup_procs() else {
        return;
    };
    if let Err(e) = std::fs::write(&procs, std::process::id().to_string()) {
        tracing::info!(file = %procs.display(), error = %e, "cannot keep the cgroup-migration lock warm; runc's cgroup joins will wait for it");
        if let Some((_, known)) = KNOWN.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            *known = None;
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
        assert_eq!(
            candidates(membership, &mounts),
            [
                "/sys/fs/cgroup/unified/system.slice/crimson.service/cgroup.procs",
                "/sys/fs/cgroup/cpu,cpuacct/system.slice/crimson.service/cgroup.procs",
                "/sys/fs/cgroup/pids/cgroup.procs",
            ]
            .map(PathBuf::from)
        );
    }

    #[test]
    fn nothing_is_found_without_cgroup_mounts_or_membership() {
        assert!(candidates("0::/\n", &[mount("/", "ext4")]).is_empty());
        assert!(candidates("garbage", &[mount("/sys/fs/cgroup", "cgroup2")]).is_empty());
    }
}
