//! The root filesystem of a container in a user namespace of its own: an overlay whose lower
//! layers are idmapped mounts through the container's mappings (which map its ID 0) (overlayfs itself cannot be
//! idmapped, its layers can), and whose upper dir belongs to the container's root, so what
//! the image's root owns the container's root owns, and nothing on disk is chowned.

use std::path::{Path, PathBuf};

use crimson_sys::user_namespaces::{idmapped_bind, new_user_namespace};
use nix::{
    mount::{MntFlags, umount2},
    unistd::{Gid, Uid, chown},
};

use crate::{Result, StorageError, driver, records::IdMappings};

/// Mounts the overlay of `lower` (top first) on `merged` with each layer seen through
/// `mappings`; `dir` is the rootfs's directory, where the idmapped layers are mounted for as
/// long as the overlay takes to mount (it keeps private clones of its layers).
pub fn mount_overlay(
    dir: &Path,
    mappings: &IdMappings,
    lower: &[PathBuf],
    upper: &Path,
    work: &Path,
    merged: &Path,
) -> Result<()> {
    let userns = new_user_namespace(&[mappings.uid], &[mappings.gid])
        .map_err(|e| StorageError::io("creating a user namespace for", dir)(e))?;
    let layers_dir = dir.join("idmapped");
    let mut mapped = Vec::with_capacity(lower.len());
    let result = (|| {
        for (index, layer) in lower.iter().enumerate() {
            let at = layers_dir.join(index.to_string());
            std::fs::create_dir_all(&at).map_err(StorageError::io("creating", &at))?;
            idmapped_bind(layer, &at, &userns)
                .map_err(StorageError::io("making an idmapped mount of", layer))?;
            mapped.push(at);
        }
        let (uid, gid) = (
            Uid::from_raw(mappings.uid.host_id),
            Gid::from_raw(mappings.gid.host_id),
        );
        for owned in [upper, work] {
            chown(owned, Some(uid), Some(gid)).map_err(|e| {
                StorageError::io("handing to the container's root", owned)(e.into())
            })?;
        }
        driver::mount_overlay(&mapped, upper, work, merged)
    })();
    // Only empty directories are removed: a layer still mounted here is never walked into.
    for at in &mapped {
        let _ = umount2(at, MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(at);
    }
    let _ = std::fs::remove_dir(&layers_dir);
    result
}
