//! Resolving a path inside a container root filesystem on the host without escaping it:
//! symlinks are followed as if the root were `/` (absolute targets and `..` stay inside).

use std::path::{Component, Path, PathBuf};

/// Most symlinks followed while resolving one path.
const MAX_LINKS: usize = 40;

/// `path` (as seen inside the container) resolved to a host path below `root`.
pub fn resolve_in_root(root: &Path, path: &Path) -> std::io::Result<PathBuf> {
    let mut resolved = PathBuf::new();
    let mut pending: Vec<std::ffi::OsString> = components(path);
    pending.reverse();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&part);
        match std::fs::symlink_metadata(root.join(&candidate)) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(std::io::Error::other("too many levels of symbolic links"));
                }
                let target = std::fs::read_link(root.join(&candidate))?;
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                let mut target_parts = components(&target);
                target_parts.reverse();
                pending.extend(target_parts);
            }
            _ => resolved = candidate,
        }
    }
    Ok(root.join(resolved))
}

fn components(path: &Path) -> Vec<std::ffi::OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("etc")).unwrap();
        std::fs::write(root.path().join("etc/real"), "x").unwrap();
        std::os::unix::fs::symlink("/etc/real", root.path().join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink("../../../../../etc/shadow", root.path().join("etc/evil"))
            .unwrap();

        assert_eq!(
            resolve_in_root(root.path(), Path::new("/etc/passwd")).unwrap(),
            root.path().join("etc/real")
        );
        assert_eq!(
            resolve_in_root(root.path(), Path::new("/etc/evil")).unwrap(),
            root.path().join("etc/shadow")
        );
        assert_eq!(
            resolve_in_root(root.path(), Path::new("/../../x")).unwrap(),
            root.path().join("x")
        );
    }
}
