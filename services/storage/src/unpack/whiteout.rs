//! OCI whiteouts: `.wh.<name>` deletes `<name>` from lower layers, `.wh..wh..opq` hides all of
//! a directory's lower content.

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
};

use nix::sys::stat::{Mode, SFlag, makedev, mknod};

use super::{UnpackError, WhiteoutMode, safe_path::remove_existing};

const PREFIX: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";
const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// A whiteout entry, by the relative path it acts on.
#[derive(Debug, PartialEq, Eq)]
pub enum Whiteout {
    /// Delete this path.
    Remove(PathBuf),
    /// Hide the lower content of this directory.
    Opaque(PathBuf),
    /// Other `.wh..wh.` metadata (aufs hard-link dirs): ignored.
    Ignored,
    /// A whiteout naming no usable entry (`.wh.`, `.wh..`, `.wh...`).
    Invalid,
}

impl Whiteout {
    /// Recognises whiteout entries by their file name.
    pub fn parse(rel: &Path) -> Option<Whiteout> {
        let name = rel.file_name()?.to_str()?;
        let parent = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        if name == OPAQUE {
            Some(Whiteout::Opaque(parent))
        } else if name.starts_with(".wh..wh.") {
            Some(Whiteout::Ignored)
        } else {
            let target = name.strip_prefix(PREFIX)?;
            if matches!(target, "" | "." | "..") {
                return Some(Whiteout::Invalid);
            }
            Some(Whiteout::Remove(parent.join(target)))
        }
    }
}

/// Applies `whiteout` inside `dest`. `created` holds the paths this layer itself wrote, which an
/// opaque marker must keep.
pub fn apply(
    dest: &Path,
    whiteout: &Whiteout,
    mode: WhiteoutMode,
    created: &HashSet<PathBuf>,
) -> Result<(), UnpackError> {
    match (whiteout, mode) {
        (Whiteout::Ignored, _) => Ok(()),
        (Whiteout::Invalid, _) => Err(UnpackError::UnsafePath {
            path: dest.to_path_buf(),
            reason: "whiteout names no entry",
        }),
        (Whiteout::Remove(rel), WhiteoutMode::Overlay) => {
            let path = dest.join(rel);
            remove_existing(&path)?;
            mknod(&path, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
                .map_err(|errno| UnpackError::io("creating whiteout", &path)(errno.into()))
        }
        (Whiteout::Remove(rel), WhiteoutMode::Delete) => remove_existing(&dest.join(rel)),
        (Whiteout::Opaque(rel), WhiteoutMode::Overlay) => {
            let dir = dest.join(rel);
            if !dir.is_dir() {
                std::fs::create_dir(&dir).map_err(UnpackError::io("creating", &dir))?;
            }
            xattr::set(&dir, OVERLAY_OPAQUE_XATTR, b"y")
                .map_err(UnpackError::io("marking opaque", &dir))
        }
        (Whiteout::Opaque(rel), WhiteoutMode::Delete) => {
            let dir = dest.join(rel);
            let Ok(children) = std::fs::read_dir(&dir) else {
                return Ok(());
            };
            for child in children {
                let child = child.map_err(UnpackError::io("listing", &dir))?;
                if !created.contains(&rel.join(child.file_name())) {
                    remove_existing(&child.path())?;
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_whiteouts() {
        assert_eq!(
            Whiteout::parse(Path::new("etc/.wh.passwd")),
            Some(Whiteout::Remove(PathBuf::from("etc/passwd")))
        );
        assert_eq!(
            Whiteout::parse(Path::new("var/.wh..wh..opq")),
            Some(Whiteout::Opaque(PathBuf::from("var")))
        );
        assert_eq!(
            Whiteout::parse(Path::new(".wh..wh.plnk")),
            Some(Whiteout::Ignored)
        );
        assert_eq!(Whiteout::parse(Path::new("etc/passwd")), None);
        assert_eq!(
            Whiteout::parse(Path::new("etc/.wh...")),
            Some(Whiteout::Invalid)
        );
    }
}
