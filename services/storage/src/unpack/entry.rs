//! The unpack loop: one tar entry at a time.

use std::{
    collections::HashSet,
    fs::OpenOptions,
    io::Read,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use nix::sys::stat::{Mode, SFlag, makedev, mknod};
use tar::EntryType;

use super::{
    UnpackError, WhiteoutMode,
    metadata::{DeferredTimes, apply_metadata},
    safe_path::{clean_relative, ensure_real_parents, remove_existing},
    whiteout::{self, Whiteout},
};

/// Totals of one unpack.
#[derive(Debug, Default)]
pub struct Stats {
    pub size_bytes: u64,
    pub inodes: u64,
}

/// Unpacks every entry of the tar read from `tar` into `dest`.
pub fn unpack_entries(
    tar: impl Read,
    dest: &Path,
    mode: WhiteoutMode,
) -> Result<Stats, UnpackError> {
    let mut archive = tar::Archive::new(tar);
    let mut stats = Stats::default();
    let mut created = HashSet::new();
    let mut dir_times = DeferredTimes::default();
    for entry in archive.entries().map_err(UnpackError::read)? {
        let mut entry = entry.map_err(UnpackError::read)?;
        let raw_path = entry.path().map_err(UnpackError::read)?.into_owned();
        let rel = clean_relative(&raw_path)?;
        if rel.as_os_str().is_empty() {
            // The layer root itself ("./"): nothing to create.
            continue;
        }
        if let Some(whiteout) = Whiteout::parse(&rel) {
            ensure_real_parents(dest, &rel, true)?;
            whiteout::apply(dest, &whiteout, mode, &created)?;
            continue;
        }
        ensure_real_parents(dest, &rel, true)?;
        let path = dest.join(&rel);
        let entry_type = entry.header().entry_type();
        match entry_type {
            EntryType::Directory => {
                if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                    remove_existing(&path)?;
                    std::fs::create_dir(&path).map_err(UnpackError::io("creating", &path))?;
                }
            }
            EntryType::Regular | EntryType::Continuous => {
                remove_existing(&path)?;
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .mode(0o600)
                    .open(&path)
                    .map_err(UnpackError::io("creating", &path))?;
                stats.size_bytes +=
                    std::io::copy(&mut entry, &mut file).map_err(UnpackError::read)?;
            }
            EntryType::Symlink => {
                let target = link_name(&entry, &raw_path)?;
                remove_existing(&path)?;
                std::os::unix::fs::symlink(&target, &path)
                    .map_err(UnpackError::io("creating", &path))?;
            }
            EntryType::Link => {
                let target = link_name(&entry, &raw_path)?;
                let target_rel = hard_link_target(dest, &rel, &target)?;
                remove_existing(&path)?;
                std::fs::hard_link(dest.join(target_rel), &path)
                    .map_err(UnpackError::io("linking", &path))?;
                created.insert(rel);
                // A hard link shares its target's inode and metadata.
                continue;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                remove_existing(&path)?;
                make_special(&entry, entry_type, &path)?;
            }
            other => {
                tracing::debug!(path = %raw_path.display(), ?other, "skipping tar entry type");
                continue;
            }
        }
        stats.inodes += 1;
        apply_metadata(&mut entry, &path, &mut dir_times)?;
        created.insert(rel);
    }
    dir_times.apply()?;
    Ok(stats)
}

fn link_name<R: Read>(entry: &tar::Entry<'_, R>, path: &Path) -> Result<PathBuf, UnpackError> {
    entry
        .link_name()
        .map_err(UnpackError::read)?
        .map(|name| name.into_owned())
        .ok_or_else(|| UnpackError::UnsafePath {
            path: path.to_path_buf(),
            reason: "link entry without a target",
        })
}

/// Checks a hard link target: inside the layer, not through a symlink, an existing non-directory.
fn hard_link_target(dest: &Path, rel: &Path, target: &Path) -> Result<PathBuf, UnpackError> {
    let refuse = |reason| UnpackError::HardLink {
        path: rel.to_path_buf(),
        target: target.to_path_buf(),
        reason,
    };
    let target_rel = clean_relative(target).map_err(|_| refuse("target leaves the layer"))?;
    ensure_real_parents(dest, &target_rel, false)
        .map_err(|_| refuse("target goes through a symlink"))?;
    match std::fs::symlink_metadata(dest.join(&target_rel)) {
        Ok(meta) if meta.is_dir() => Err(refuse("target is a directory")),
        Ok(_) => Ok(target_rel),
        Err(_) => Err(refuse("target is not in this layer")),
    }
}

fn make_special<R: Read>(
    entry: &tar::Entry<'_, R>,
    entry_type: EntryType,
    path: &Path,
) -> Result<(), UnpackError> {
    let header = entry.header();
    let kind = match entry_type {
        EntryType::Char => SFlag::S_IFCHR,
        EntryType::Block => SFlag::S_IFBLK,
        _ => SFlag::S_IFIFO,
    };
    let major = header.device_major().ok().flatten().unwrap_or(0);
    let minor = header.device_minor().ok().flatten().unwrap_or(0);
    mknod(
        path,
        kind,
        Mode::from_bits_truncate(0o600),
        makedev(major.into(), minor.into()),
    )
    .map_err(|errno| UnpackError::io("creating device", path)(errno.into()))
}
