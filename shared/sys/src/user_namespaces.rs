//! What a pod in its own user namespace (KEP-127, `hostUsers: false`) is made of: a user
//! namespace with chosen ID mappings, namespaces owned by it (so the pod's root has its
//! capabilities over them), all pinned on files, and idmapped mounts through it.
//!
//! A multi-threaded process can neither create nor enter a user namespace, so each of these
//! forks a short-lived child that does it while the parent writes the mappings or pins what
//! the child made. The child makes only async-signal-safe system calls (no allocation).

use std::{
    ffi::CString,
    fs::File,
    io,
    os::fd::{AsFd, AsRawFd, OwnedFd},
    os::unix::ffi::OsStrExt,
    path::Path,
};

use nix::{
    mount::{MntFlags, MsFlags, mount, umount2},
    sched::{CloneFlags, setns, unshare},
    sys::wait::waitpid,
    unistd::{ForkResult, Pid, fork, pipe, read, sethostname, write},
};

/// One range of IDs: `length` IDs from `container_id` inside are `host_id`… outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdMapping {
    /// First ID inside the namespace.
    pub container_id: u32,
    /// First ID outside.
    pub host_id: u32,
    /// How many.
    pub length: u32,
}

/// `/proc/<pid>/{uid,gid}_map` lines for `mappings`.
fn map_lines(mappings: &[IdMapping]) -> String {
    mappings
        .iter()
        .map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.length))
        .collect()
}

/// A new user namespace with these mappings; the descriptor keeps it alive.
pub fn new_user_namespace(uids: &[IdMapping], gids: &[IdMapping]) -> io::Result<OwnedFd> {
    in_child(
        || unshare(CloneFlags::CLONE_NEWUSER),
        |child| {
            std::fs::write(format!("/proc/{child}/uid_map"), map_lines(uids))?;
            std::fs::write(format!("/proc/{child}/gid_map"), map_lines(gids))?;
            Ok(File::open(format!("/proc/{child}/ns/user"))?.into())
        },
    )
}

/// Bind-mounts the namespace `namespace` refers to on `at` (created as a file), so it lives
/// without any process or descriptor.
pub fn pin(namespace: &impl AsRawFd, at: &Path) -> io::Result<()> {
    bind_on_file(
        Path::new(&format!("/proc/self/fd/{}", namespace.as_raw_fd())),
        at,
    )
}

/// Creates the namespaces of `pins` (each a `CLONE_NEW*` flag and the file to pin it on) owned
/// by the user namespace pinned at `owner`, with `hostname` in a new UTS namespace.
pub fn pin_owned_by(owner: &Path, pins: &[(CloneFlags, &Path)], hostname: &str) -> io::Result<()> {
    let owner = File::open(owner)?;
    let flags = pins
        .iter()
        .fold(CloneFlags::empty(), |all, (flag, _)| all | *flag);
    let set_hostname = flags.contains(CloneFlags::CLONE_NEWUTS) && !hostname.is_empty();
    let hostname = CString::new(hostname).map_err(io::Error::other)?;
    in_child(
        || {
            setns(owner.as_fd(), CloneFlags::CLONE_NEWUSER)?;
            unshare(flags)?;
            if set_hostname {
                sethostname(std::ffi::OsStr::from_bytes(hostname.as_bytes()))?;
            }
            Ok(())
        },
        |child| {
            for (flag, path) in pins {
                let kind = namespace_file(*flag)?;
                bind_on_file(Path::new(&format!("/proc/{child}/ns/{kind}")), path)?;
            }
            Ok(())
        },
    )
}

/// The `/proc/<pid>/ns/` file of a `CLONE_NEW*` flag.
fn namespace_file(flag: CloneFlags) -> io::Result<&'static str> {
    Ok(match flag {
        CloneFlags::CLONE_NEWNET => "net",
        CloneFlags::CLONE_NEWUTS => "uts",
        CloneFlags::CLONE_NEWIPC => "ipc",
        other => return Err(io::Error::other(format!("no namespace file for {other:?}"))),
    })
}

/// Mounts `source` again at `target` (an existing directory or file), with the ownership
/// seen through it shifted by the user namespace `userns`'s mappings (an idmapped mount).
pub fn idmapped_bind(source: &Path, target: &Path, userns: &impl AsRawFd) -> io::Result<()> {
    let source = CString::new(source.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let target = CString::new(target.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC;
    // SAFETY: plain system calls on NUL-terminated paths and a live descriptor.
    let tree =
        unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, source.as_ptr(), flags) };
    if tree < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: open_tree returned a new descriptor this function owns from here.
    let tree: OwnedFd = unsafe { std::os::fd::FromRawFd::from_raw_fd(tree as i32) };
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    let empty = c"";
    // SAFETY: as above; `attr` outlives the call and its size is passed.
    let set = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if set < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    let moved = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if moved < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether an overlay on idmapped layers can be mounted under `dir` (the kernel and the
/// filesystem allow it): what a user-namespaced container's root filesystem is.
pub fn idmapped_layers_work(dir: &Path) -> bool {
    let probe_dir = dir.join(format!(".idmap-probe-{}", std::process::id()));
    let [layer, mapped, upper, work, merged] =
        ["layer", "mapped", "upper", "work", "merged"].map(|d| probe_dir.join(d));
    let probe = || -> io::Result<()> {
        for d in [&layer, &mapped, &upper, &work, &merged] {
            std::fs::create_dir_all(d)?;
        }
        let mapping = [IdMapping {
            container_id: 0,
            host_id: 65_536,
            length: 65_536,
        }];
        let userns = new_user_namespace(&mapping, &mapping)?;
        idmapped_bind(&layer, &mapped, &userns)?;
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            mapped.display(),
            upper.display(),
            work.display()
        );
        mount(
            Some("overlay"),
            &merged,
            Some("overlay"),
            MsFlags::empty(),
            Some(options.as_str()),
        )?;
        Ok(())
    };
    let works = probe().is_ok();
    for d in [&merged, &mapped] {
        let _ = umount2(d.as_path(), MntFlags::MNT_DETACH);
    }
    // Only empty directories: nothing mounted is ever walked into.
    for d in [
        &merged,
        &mapped,
        &layer,
        &upper,
        &work.join("work"),
        &work,
        &probe_dir,
    ] {
        let _ = std::fs::remove_dir(d);
    }
    works
}

fn bind_on_file(source: &Path, at: &Path) -> io::Result<()> {
    File::create(at)?;
    mount(
        Some(source),
        at,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| {
        io::Error::other(format!(
            "pinning {} on {}: {e}",
            source.display(),
            at.display()
        ))
    })
}

/// Runs `child_work` in a forked child, then `parent_work` with the child's pid while the
/// child waits; the child exits after. `child_work` must not allocate.
fn in_child<T>(
    child_work: impl FnOnce() -> nix::Result<()>,
    parent_work: impl FnOnce(Pid) -> io::Result<T>,
) -> io::Result<T> {
    let (ready_read, ready_write) = pipe()?;
    let (go_read, go_write) = pipe()?;
    // SAFETY: the child only makes system calls (no allocation, no locks) and then _exit()s.
    match unsafe { fork() }? {
        ForkResult::Child => {
            drop(ready_read);
            drop(go_write);
            let errno = match child_work() {
                Ok(()) => 0,
                Err(errno) => errno as i32,
            };
            let _ = write(&ready_write, &errno.to_ne_bytes());
            let mut byte = [0u8];
            let _ = read(&go_read, &mut byte);
            // SAFETY: leaves the child without running the parent's exit handlers.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => {
            drop(ready_write);
            drop(go_read);
            let mut errno = [0u8; 4];
            let result = match read(&ready_read, &mut errno) {
                Ok(4) if i32::from_ne_bytes(errno) == 0 => parent_work(child),
                Ok(4) => Err(io::Error::from_raw_os_error(i32::from_ne_bytes(errno))),
                Ok(_) => Err(io::Error::other("the namespace child died")),
                Err(e) => Err(e.into()),
            };
            drop(go_write);
            let _ = waitpid(child, None);
            result
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    #[test]
    fn a_user_namespace_gets_its_mappings_and_owns_what_is_made_in_it() {
        if !is_root() {
            return;
        }
        let mapping = [IdMapping {
            container_id: 0,
            host_id: 100_000,
            length: 65_536,
        }];
        let userns = new_user_namespace(&mapping, &mapping).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (user, uts) = (dir.path().join("user"), dir.path().join("uts"));
        pin(&userns, &user).unwrap();
        drop(userns);
        pin_owned_by(&user, &[(CloneFlags::CLONE_NEWUTS, &uts)], "in-userns").unwrap();
        // The pinned UTS namespace is owned by the pinned user namespace (NS_GET_USERNS).
        let uts_file = File::open(&uts).unwrap();
        // SAFETY: NS_GET_USERNS on a namespace descriptor answers a new descriptor.
        let owner = unsafe { libc::ioctl(uts_file.as_raw_fd(), 0xb701) };
        assert!(owner >= 0, "{}", io::Error::last_os_error());
        let owner_link = std::fs::read_link(format!("/proc/self/fd/{owner}")).unwrap();
        // SAFETY: closing the descriptor the ioctl made.
        unsafe { libc::close(owner) };
        use std::os::unix::fs::MetadataExt;
        let pinned_user = std::fs::metadata(&user).unwrap().ino();
        assert_eq!(owner_link, Path::new(&format!("user:[{pinned_user}]")));
        for pinned in [&uts, &user] {
            umount2(pinned.as_path(), MntFlags::MNT_DETACH).unwrap();
        }
    }

    #[test]
    fn an_idmapped_mount_shows_host_root_as_the_mapped_root() {
        if !is_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let (source, target) = (dir.path().join("source"), dir.path().join("target"));
        std::fs::create_dir_all(&source).unwrap();
        std::fs::create_dir_all(&target).unwrap();
        std::fs::write(source.join("file"), "x").unwrap();
        let mapping = [IdMapping {
            container_id: 0,
            host_id: 100_000,
            length: 65_536,
        }];
        let userns = new_user_namespace(&mapping, &mapping).unwrap();
        idmapped_bind(&source, &target, &userns).unwrap();
        use std::os::unix::fs::MetadataExt;
        // Host uid 0 is container uid 0, which is host uid 100000 once shifted.
        assert_eq!(
            std::fs::metadata(target.join("file")).unwrap().uid(),
            100_000
        );
        assert_eq!(std::fs::metadata(source.join("file")).unwrap().uid(), 0);
        umount2(&target, MntFlags::MNT_DETACH).unwrap();
    }

    #[test]
    fn overlays_on_idmapped_layers_work_here() {
        if !is_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        assert!(idmapped_layers_work(dir.path()));
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "the probe cleans up"
        );
    }
}
