//! Path checks that keep every write inside the layer directory.

use std::{
    io::ErrorKind,
    path::{Component, Path, PathBuf},
};

use super::UnpackError;

/// `path` as a clean relative path (no `.`, no trailing slash), or an error when it is absolute
/// or has a `..` component. The empty result is the layer root itself.
pub fn clean_relative(path: &Path) -> Result<PathBuf, UnpackError> {
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(UnpackError::UnsafePath {
                    path: path.to_path_buf(),
                    reason: "`..` is not allowed",
                });
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(UnpackError::UnsafePath {
                    path: path.to_path_buf(),
                    reason: "absolute paths are not allowed",
                });
            }
        }
    }
    Ok(clean)
}

/// Makes sure every ancestor of `rel` inside `root` is a real directory (creating missing
/// ones when `create` is set). A symlink or a non-directory on the way is an error.
pub fn ensure_real_parents(root: &Path, rel: &Path, create: bool) -> Result<(), UnpackError> {
    let Some(parent) = rel.parent() else {
        return Ok(());
    };
    let mut current = root.to_path_buf();
    let mut walked = PathBuf::new();
    for part in parent.components() {
        current.push(part);
        walked.push(part);
        match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(UnpackError::SymlinkTraversal {
                    path: rel.to_path_buf(),
                    symlink: walked,
                });
            }
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(UnpackError::NotADirectory {
                    path: rel.to_path_buf(),
                    parent: walked,
                });
            }
            Err(e) if e.kind() == ErrorKind::NotFound && create => {
                std::fs::create_dir(&current).map_err(UnpackError::io("creating", &current))?;
            }
            Err(e) => return Err(UnpackError::io("inspecting", &current)(e)),
        }
    }
    Ok(())
}

/// Removes whatever is at `path` (a directory with its content), if anything.
pub fn remove_existing(path: &Path) -> Result<(), UnpackError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => {
            std::fs::remove_dir_all(path).map_err(UnpackError::io("removing", path))
        }
        Ok(_) => std::fs::remove_file(path).map_err(UnpackError::io("removing", path)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(UnpackError::io("inspecting", path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_dot_prefixes_and_refuses_escapes() {
        assert_eq!(
            clean_relative(Path::new("./a/./b/")).unwrap(),
            PathBuf::from("a/b")
        );
        assert_eq!(clean_relative(Path::new("./")).unwrap(), PathBuf::new());
        assert!(clean_relative(Path::new("a/../../etc")).is_err());
        assert!(clean_relative(Path::new("/etc/passwd")).is_err());
    }

    #[test]
    fn refuses_paths_through_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc", dir.path().join("link")).unwrap();
        let err = ensure_real_parents(dir.path(), Path::new("link/passwd"), true).unwrap_err();
        assert!(matches!(err, UnpackError::SymlinkTraversal { .. }), "{err}");
    }
}
