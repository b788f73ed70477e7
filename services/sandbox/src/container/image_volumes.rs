//! Image volumes (KEP-4639): a pulled image mounted read-only into a container. Each one gets
//! a root filesystem of its own from crimson-storage (`<container>-image-<mount index>`), which
//! holds the image's layers for as long as the container exists, whatever becomes of the image
//! record; the container gets a read-only bind of it, or of its `image_sub_path`.

use std::path::{Path, PathBuf};

use crimson_api::sandbox::v1::{ContainerSpec, Mount};

use crate::{
    Result, SandboxError, oci::secure_path::resolve_in_root, peers,
    pod::user_namespace::PodMappings, records::ContainerRecord, state::State,
};

/// An image volume's root filesystem: (index of its mount, where it is mounted).
pub type Mounted = (usize, PathBuf);

/// The storage id of the root filesystem behind mount `index` of container `container_id`.
fn rootfs_id(container_id: &str, index: usize) -> String {
    format!("{container_id}-image-{index}")
}

/// The image volumes among `spec`'s mounts, with their indexes.
fn image_mounts(spec: &ContainerSpec) -> impl Iterator<Item = (usize, &Mount)> {
    spec.mounts
        .iter()
        .enumerate()
        .filter(|(_, mount)| !mount.image.is_empty())
}

/// Makes the root filesystem of every image volume of `record` (the images must be pulled),
/// seen through the pod's ID `mappings` when it has a user namespace of its own.
pub async fn mount_all(
    state: &State,
    record: &ContainerRecord,
    mappings: Option<PodMappings>,
) -> Result<Vec<Mounted>> {
    let mut mounted = Vec::new();
    for (index, mount) in image_mounts(&record.spec) {
        let image = state
            .neighbours
            .get_image(&mount.image)
            .await?
            .ok_or_else(|| {
                SandboxError::FailedPrecondition(format!(
                    "image volume at {}: image {:?} is not present; pull it first",
                    mount.container_path, mount.image
                ))
            })?;
        let top_chain_id = image.chain_ids.last().cloned().unwrap_or_default();
        let rootfs = state
            .neighbours
            .create_rootfs(peers::rootfs_request(
                &rootfs_id(&record.id, index),
                &top_chain_id,
                mappings,
            ))
            .await?;
        mounted.push((index, PathBuf::from(rootfs)));
    }
    Ok(mounted)
}

/// Points each image volume mount of `spec` at its root filesystem (or the `image_sub_path`
/// in it, which must exist there), read-only. Reads the filesystem.
pub fn bind_sources(spec: &mut ContainerSpec, mounted: &[Mounted]) -> Result<()> {
    for (index, rootfs) in mounted {
        let mount = &mut spec.mounts[*index];
        let source = resolve_in_root(rootfs, Path::new(&mount.image_sub_path))
            .ok()
            .filter(|source| source.exists())
            .ok_or_else(|| {
                SandboxError::InvalidArgument(format!(
                    "image volume at {}: image_sub_path {:?} is not in image {:?}",
                    mount.container_path, mount.image_sub_path, mount.image
                ))
            })?;
        mount.host_path = source.display().to_string();
        mount.readonly = true;
    }
    Ok(())
}

/// Removes the root filesystems of `record`'s image volumes (idempotent).
pub async fn remove_all(state: &State, record: &ContainerRecord) -> Result<()> {
    for (index, _) in image_mounts(&record.spec) {
        state
            .neighbours
            .remove_rootfs(&rootfs_id(&record.id, index))
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_with(mounts: Vec<Mount>) -> ContainerSpec {
        ContainerSpec {
            mounts,
            ..Default::default()
        }
    }

    #[test]
    fn image_volumes_bind_their_sub_path_read_only_and_stay_inside_the_image() {
        let image = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(image.path().join("data/deep")).unwrap();
        std::os::unix::fs::symlink("/data", image.path().join("link")).unwrap();
        let volume = |sub_path: &str| Mount {
            container_path: "/volume".into(),
            image: "example/data:1".into(),
            image_sub_path: sub_path.into(),
            ..Default::default()
        };
        let host = Mount {
            container_path: "/host".into(),
            host_path: "/tmp".into(),
            ..Default::default()
        };
        let mut spec = spec_with(vec![
            host.clone(),
            volume("data/deep"),
            volume(""),
            volume("link"),
        ]);
        let mounted: Vec<Mounted> = (1..4).map(|i| (i, image.path().to_path_buf())).collect();
        assert_eq!(
            image_mounts(&spec).map(|(i, _)| i).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        bind_sources(&mut spec, &mounted).unwrap();
        assert_eq!(spec.mounts[0], host);
        let root = image.path();
        let source = |mount: &Mount| PathBuf::from(&mount.host_path);
        assert_eq!(source(&spec.mounts[1]), root.join("data/deep"));
        assert_eq!(source(&spec.mounts[2]), root);
        // An absolute symlink resolves inside the image, not on the host.
        assert_eq!(source(&spec.mounts[3]), root.join("data"));
        assert!(spec.mounts[1..].iter().all(|m| m.readonly));

        // `..` cannot climb out of the image: it stops at the image's root.
        let mut spec = spec_with(vec![volume("../../data")]);
        bind_sources(&mut spec, &[(0, root.to_path_buf())]).unwrap();
        assert_eq!(source(&spec.mounts[0]), root.join("data"));
        // A sub path the image lacks is refused.
        let mut spec = spec_with(vec![volume("nope")]);
        let refused = bind_sources(&mut spec, &[(0, root.to_path_buf())]);
        assert!(
            matches!(refused, Err(SandboxError::InvalidArgument(_))),
            "{refused:?}"
        );
    }

    #[test]
    fn each_image_volume_has_its_own_rootfs() {
        assert_eq!(rootfs_id("c1", 0), "c1-image-0");
        assert_ne!(rootfs_id("c1", 0), rootfs_id("c1", 1));
    }
}
