//! This daemon's child processes. It is a subreaper, so besides the processes it spawns
//! (runc, conmon's first process, `runc exec`), which `tokio::process` waits for, it inherits
//! conmon monitors and detached exec processes when their parents exit. [`Children::reap`]
//! collects every exited child that tokio does not own, whatever container it belonged to, and
//! keeps the exit status a little while for [`Children::wait_adopted`].
//!
//! Spawning registers the pid under a read lock that reaping takes for writing, so a child is
//! never reaped between its fork and its registration (which would steal tokio's status).

use std::{
    collections::{HashMap, HashSet},
    future::Future,
    sync::{LazyLock, Mutex, RwLock},
    time::{Duration, Instant},
};

use nix::{
    sys::wait::{WaitPidFlag, WaitStatus, waitpid},
    unistd::Pid,
};
use tokio::{
    process::{Child, Command},
    sync::oneshot,
};

/// How long the exit status of an adopted child is kept for a late [`Children::wait_adopted`].
const KEEP_EXITS: Duration = Duration::from_secs(60);

/// The process's children (one set per process, as the kernel keeps them).
pub fn children() -> &'static Children {
    static CHILDREN: LazyLock<Children> = LazyLock::new(Children::default);
    &CHILDREN
}

/// Which children tokio waits for, and the recent exits of the others.
#[derive(Debug, Default)]
pub struct Children {
    spawning: RwLock<()>,
    book: Mutex<Book>,
}

#[derive(Debug, Default)]
struct Book {
    owned: HashSet<u32>,
    exits: HashMap<u32, (i32, Instant)>,
    waiters: HashMap<u32, Vec<oneshot::Sender<i32>>>,
}

/// Keeps a spawned child's pid out of the reaper's hands until dropped; hold it as long as
/// its [`Child`] is waited for.
#[derive(Debug)]
#[must_use = "the child may be reaped by the reaper once this is dropped"]
pub struct Owned {
    pid: Option<u32>,
    children: &'static Children,
}

impl Drop for Owned {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            self.children.book().owned.remove(&pid);
        }
    }
}

impl Children {
    /// Spawns `command`; its status stays tokio's while the returned [`Owned`] lives.
    pub fn spawn(&'static self, command: &mut Command) -> std::io::Result<(Child, Owned)> {
        let _spawning = self.spawning.read().unwrap_or_else(|e| e.into_inner());
        let child = command.spawn()?;
        let pid = child.id();
        if let Some(pid) = pid {
            self.book().owned.insert(pid);
        }
        Ok((
            child,
            Owned {
                pid,
                children: self,
            },
        ))
    }

    /// The exit code (128 + signal for a signal death) of `pid`, a process this daemon
    /// inherited; resolves when the reaper collects it (at once if it already has).
    pub fn wait_adopted(&self, pid: u32) -> impl Future<Output = i32> + use<> {
        let (tx, rx) = oneshot::channel();
        {
            let mut book = self.book();
            match book.exits.remove(&pid) {
                Some((code, _)) => {
                    let _ = tx.send(code);
                }
                None => book.waiters.entry(pid).or_default().push(tx),
            }
        }
        async move { rx.await.unwrap_or(-1) }
    }

    /// Reaps every exited child that tokio does not own; answers their pids. Blocking: call it
    /// from a blocking thread.
    pub fn reap(&self) -> Vec<u32> {
        // Found before the lock, so spawning waits only for the reaping: a child that
        // exited before its spawner registered it is registered (and left to tokio) by the
        // time the lock is ours.
        let zombies = zombie_children(std::process::id());
        let _no_spawning = self.spawning.write().unwrap_or_else(|e| e.into_inner());
        self.reap_from(zombies, |pid| {
            match waitpid(Pid::from_raw(pid as i32), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(_, code)) => Some(code),
                Ok(WaitStatus::Signaled(_, signal, _)) => Some(128 + signal as i32),
                _ => None,
            }
        })
    }

    /// [`Self::reap`] over `zombies`, reaping each with `wait` (the seam for unit tests).
    fn reap_from(&self, zombies: Vec<u32>, mut wait: impl FnMut(u32) -> Option<i32>) -> Vec<u32> {
        let candidates: Vec<u32> = {
            let book = self.book();
            zombies
                .into_iter()
                .filter(|pid| !book.owned.contains(pid))
                .collect()
        };
        let mut reaped = Vec::new();
        for pid in candidates {
            let Some(code) = wait(pid) else { continue };
            reaped.push(pid);
            let mut book = self.book();
            match book.waiters.remove(&pid) {
                Some(waiters) => {
                    for waiter in waiters {
                        let _ = waiter.send(code);
                    }
                }
                None => {
                    book.exits.insert(pid, (code, Instant::now()));
                }
            }
        }
        self.book()
            .exits
            .retain(|_, (_, at)| at.elapsed() < KEEP_EXITS);
        reaped
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Pids of the zombie children of `parent`: its threads' lists of children, each child's state
/// from `/proc/<pid>/stat`. Without those lists (a kernel built without them) every process's
/// stat is read, which costs a read per process on the node at every reap.
fn zombie_children(parent: u32) -> Vec<u32> {
    children_of_threads(parent)
        .unwrap_or_else(every_pid)
        .into_iter()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| parse_stat(&stat))
                .is_some_and(|(state, ppid)| state == 'Z' && ppid == parent)
        })
        .collect()
}

/// The children of every thread of `parent` (`/proc/<pid>/task/<tid>/children`; an adopted
/// orphan is listed under the thread that adopted it); `None` where the kernel keeps no such
/// lists.
fn children_of_threads(parent: u32) -> Option<Vec<u32>> {
    let tasks = format!("/proc/{parent}/task");
    std::fs::metadata(format!("{tasks}/{parent}/children")).ok()?;
    let mut pids = Vec::new();
    for task in std::fs::read_dir(&tasks).ok()?.flatten() {
        // A thread that ended since the directory was read has no children left to list.
        if let Ok(listed) = std::fs::read_to_string(task.path().join("children")) {
            pids.extend(
                listed
                    .split_whitespace()
                    .filter_map(|pid| pid.parse::<u32>().ok()),
            );
        }
    }
    Some(pids)
}

/// Every process's pid.
fn every_pid() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .collect()
}

/// The state letter and parent pid of a `/proc/<pid>/stat` line (the command name, in
/// parentheses, may itself hold spaces and parentheses).
fn parse_stat(stat: &str) -> Option<(char, u32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaked() -> &'static Children {
        Box::leak(Box::default())
    }

    #[test]
    fn an_exited_child_is_found_among_the_zombies_and_a_running_one_is_not() {
        let mut exited = std::process::Command::new("true").spawn().unwrap();
        let mut running = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let zombie = |pid: u32| zombie_children(std::process::id()).contains(&pid);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !zombie(exited.id()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(zombie(exited.id()), "the exited child is a zombie child");
        assert!(!zombie(running.id()));
        assert!(
            children_of_threads(std::process::id())
                .is_none_or(|listed| listed.contains(&running.id())),
            "a running child is listed under its thread"
        );
        running.kill().unwrap();
        running.wait().unwrap();
        exited.wait().unwrap();
    }

    #[test]
    fn stat_lines_with_odd_command_names_parse() {
        assert_eq!(parse_stat("42 (conmon) Z 7 42 42 0 -1"), Some(('Z', 7)));
        assert_eq!(parse_stat("9 (a) b (c)) S 1 9 9"), Some(('S', 1)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn owned_children_are_left_to_tokio_and_the_rest_are_reaped() {
        let children = leaked();
        children.book().owned.insert(10);
        let mut waited = Vec::new();
        let reaped = children.reap_from(vec![10, 11, 12], |pid| {
            waited.push(pid);
            (pid != 12).then_some(0)
        });
        assert_eq!(waited, [11, 12]);
        assert_eq!(reaped, [11]);
    }

    #[tokio::test]
    async fn adopted_exits_reach_waiters_before_or_after_the_reap() {
        let children = leaked();
        let early = children.wait_adopted(20);
        children.reap_from(vec![20, 21], |pid| Some(pid as i32));
        assert_eq!(early.await, 20);
        assert_eq!(children.wait_adopted(21).await, 21);
        // Each exit is handed out once.
        assert!(!children.book().exits.contains_key(&21));
    }

    #[tokio::test]
    async fn an_owned_pid_is_released_when_its_guard_drops() {
        let children = leaked();
        let (mut child, owned) = children
            .spawn(Command::new("true").kill_on_drop(true))
            .unwrap();
        let pid = child.id().unwrap();
        assert!(children.book().owned.contains(&pid));
        child.wait().await.unwrap();
        drop(owned);
        assert!(children.book().owned.is_empty());
    }
}
