//! Namespaces pinned on files (as `ip netns add` does), so they outlive every process in them.

use std::path::{Path, PathBuf};

use nix::{
    mount::{MsFlags, mount},
    sched::{CloneFlags, unshare},
};

/// The `/proc/thread-self/ns/` entry of each namespace kind that can be pinned.
const KINDS: [(CloneFlags, &str); 3] = [
    (CloneFlags::CLONE_NEWNET, "net"),
    (CloneFlags::CLONE_NEWUTS, "uts"),
    (CloneFlags::CLONE_NEWIPC, "ipc"),
];

/// Creates a new namespace of each kind in `pins` and bind-mounts it on its file (created
/// here; its directory must exist); a new UTS namespace gets `hostname` when it is not empty.
/// The work runs in a thread of its own that ends right after, so no thread of the caller's
/// pools is left in the new namespaces. On failure the files made are removed.
pub fn pin_new(pins: &[(CloneFlags, &Path)], hostname: &str) -> Result<(), String> {
    let mut flags = CloneFlags::empty();
    let mut targets: Vec<(&'static str, PathBuf)> = Vec::new();
    for (kind, path) in pins {
        let (_, name) = KINDS
            .iter()
            .find(|(flag, _)| flag == kind)
            .ok_or_else(|| format!("cannot pin namespace kind {kind:?}"))?;
        std::fs::File::create(path).map_err(|e| format!("creating {}: {e}", path.display()))?;
        flags |= *kind;
        targets.push((name, path.to_path_buf()));
    }
    if flags.is_empty() {
        return Ok(());
    }
    let hostname = hostname.to_string();
    let files: Vec<PathBuf> = targets.iter().map(|(_, path)| path.clone()).collect();
    let pinned = std::thread::spawn(move || -> Result<(), String> {
        unshare(flags).map_err(|e| format!("unshare: {e}"))?;
        if flags.contains(CloneFlags::CLONE_NEWUTS) && !hostname.is_empty() {
            nix::unistd::sethostname(&hostname).map_err(|e| format!("sethostname: {e}"))?;
        }
        for (name, target) in &targets {
            let source = format!("/proc/thread-self/ns/{name}");
            mount(
                Some(source.as_str()),
                target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| format!("pinning {source} on {}: {e}", target.display()))?;
        }
        Ok(())
    })
    .join()
    .unwrap_or_else(|_| Err("the pinning thread panicked".into()));
    if pinned.is_err() {
        for file in files {
            let _ = nix::mount::umount2(&file, nix::mount::MntFlags::MNT_DETACH);
            let _ = std::fs::remove_file(file);
        }
    }
    pinned
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_namespaces_with_a_file_can_be_pinned() {
        let dir = tempfile::tempdir().unwrap();
        let pid = dir.path().join("pid");
        let refused = pin_new(&[(CloneFlags::CLONE_NEWPID, &pid)], "");
        assert!(refused.unwrap_err().contains("cannot pin"));
        assert!(!pid.exists());
        assert_eq!(pin_new(&[], "host"), Ok(()));
    }
}
