//! Owners, modes, extended attributes and times of unpacked entries.

use std::{
    io::Read,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use nix::sys::{
    stat::{UtimensatFlags, utimensat},
    time::TimeSpec,
};

use super::UnpackError;

/// Prefix of extended attributes carried in PAX headers.
const PAX_XATTR_PREFIX: &str = "SCHILY.xattr.";
/// Overlay's own attributes: a layer must not forge them (they steer overlayfs lookups).
const OVERLAY_XATTR_PREFIX: &str = "trusted.overlay.";

/// Directory times, set last: creating children changes a directory's mtime.
#[derive(Default)]
pub struct DeferredTimes(Vec<(PathBuf, i64)>);

impl DeferredTimes {
    /// Sets the recorded times, deepest directories first.
    pub fn apply(mut self) -> Result<(), UnpackError> {
        self.0.sort_by(|a, b| b.0.cmp(&a.0));
        for (path, mtime) in self.0 {
            set_mtime(&path, mtime)?;
        }
        Ok(())
    }
}

/// Applies the entry's owner, mode, xattrs and mtime to the object at `path`.
pub fn apply_metadata<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    path: &Path,
    dir_times: &mut DeferredTimes,
) -> Result<(), UnpackError> {
    let header = entry.header();
    let uid = header.uid().map_err(UnpackError::Archive)? as u32;
    let gid = header.gid().map_err(UnpackError::Archive)? as u32;
    let mode = header.mode().map_err(UnpackError::Archive)? & 0o7777;
    let mtime = header.mtime().map_err(UnpackError::Archive)? as i64;
    let is_symlink = header.entry_type().is_symlink();
    let is_dir = header.entry_type().is_dir();

    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .map_err(UnpackError::io("chown", path))?;
    if !is_symlink {
        // After chown: chown clears set-id bits.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(UnpackError::io("chmod", path))?;
    }
    for (name, value) in pax_xattrs(entry)? {
        if name.starts_with(OVERLAY_XATTR_PREFIX) {
            tracing::warn!(path = %path.display(), %name, "ignoring overlay xattr from layer");
            continue;
        }
        if let Err(e) = xattr::set(path, &name, &value) {
            if e.raw_os_error() == Some(libc::EOPNOTSUPP)
                || (is_symlink && e.raw_os_error() == Some(libc::EPERM))
            {
                tracing::warn!(path = %path.display(), %name, error = %e, "xattr not supported here, skipped");
                continue;
            }
            return Err(UnpackError::io("setting xattr", path)(e));
        }
    }
    if is_dir {
        dir_times.0.push((path.to_path_buf(), mtime));
    } else {
        set_mtime(path, mtime)?;
    }
    Ok(())
}

fn pax_xattrs<R: Read>(
    entry: &mut tar::Entry<'_, R>,
) -> Result<Vec<(String, Vec<u8>)>, UnpackError> {
    let Some(extensions) = entry.pax_extensions().map_err(UnpackError::Archive)? else {
        return Ok(Vec::new());
    };
    let mut xattrs = Vec::new();
    for extension in extensions {
        let extension = extension.map_err(UnpackError::Archive)?;
        if let Ok(key) = extension.key()
            && let Some(name) = key.strip_prefix(PAX_XATTR_PREFIX)
        {
            xattrs.push((name.to_string(), extension.value_bytes().to_vec()));
        }
    }
    Ok(xattrs)
}

fn set_mtime(path: &Path, mtime: i64) -> Result<(), UnpackError> {
    let time = TimeSpec::new(mtime, 0);
    utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &time,
        &time,
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|errno| UnpackError::io("setting times", path)(errno.into()))
}
