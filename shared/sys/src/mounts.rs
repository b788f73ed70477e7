//! The mount table of this mount namespace (`/proc/self/mountinfo`), parsed in one place.

use std::path::{Path, PathBuf};

/// One line of mountinfo: where something is mounted, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The mount point, unescaped.
    pub mount_point: PathBuf,
    /// The filesystem type (`overlay`, `cgroup2`, `nsfs`, …).
    pub fstype: String,
}

/// The mounts of this mount namespace; none when mountinfo cannot be read.
pub fn mounts() -> Vec<Mount> {
    std::fs::read_to_string("/proc/self/mountinfo").map_or_else(|_| Vec::new(), |t| parse(&t))
}

/// True when `path` is a mount point of this mount namespace.
pub fn is_mounted(path: &Path) -> bool {
    mounts().iter().any(|mount| mount.mount_point == path)
}

/// The mounts listed in mountinfo text (proc(5)): field 5 is the mount point, the first field
/// after the ` - ` separator the filesystem type; malformed lines are left out.
pub fn parse(mountinfo: &str) -> Vec<Mount> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (mount, filesystem) = line.split_once(" - ")?;
            Some(Mount {
                mount_point: PathBuf::from(unescape(mount.split(' ').nth(4)?)),
                fstype: unescape(filesystem.split(' ').next()?),
            })
        })
        .collect()
}

/// mountinfo writes space, tab, newline and backslash as `\ooo` (octal).
fn unescape(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_and_types_are_read_and_unescaped() {
        let text = "\
36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw,errors=continue
37 35 0:31 / /sys/fs/cgroup/unified rw shared:9 - cgroup2 cgroup2 rw
38 35 0:4 net:[4026532] /run/netns/pod rw - nsfs nsfs rw
malformed line
";
        let mounts = parse(text);
        assert_eq!(
            mounts,
            [
                ("/mnt/with space", "ext3"),
                ("/sys/fs/cgroup/unified", "cgroup2"),
                ("/run/netns/pod", "nsfs"),
            ]
            .map(|(mount_point, fstype)| Mount {
                mount_point: mount_point.into(),
                fstype: fstype.into(),
            })
        );
    }

    #[test]
    fn the_root_is_mounted_and_a_temporary_directory_is_not() {
        assert!(is_mounted(Path::new("/")));
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_mounted(dir.path()));
    }
}
