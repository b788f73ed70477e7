//! CreateRootfs and RemoveRootfs on fake mounts (overlay) and real copies (vfs).

use crimson_config::StorageDriver;
use crimson_sys::user_namespaces::IdMapping;

use super::fakes::{TestLayer, TestStorage};
use crate::{
    StorageError,
    records::{IdMappings, RootfsRecord},
    rootfs::{create_rootfs, remove_rootfs},
};

const IMAGE: &str = "sha256:image";

async fn two_layers(storage: &TestStorage) -> (String, String) {
    let base = storage
        .put(IMAGE, "", &TestLayer::of(&[("bin/sh", "shell")]))
        .await
        .unwrap()
        .chain_id;
    let top = storage
        .put(IMAGE, &base, &TestLayer::of(&[("app", "binary")]))
        .await
        .unwrap()
        .chain_id;
    (base, top)
}

#[tokio::test]
async fn an_overlay_rootfs_mounts_the_chain_top_first_and_holds_its_layers() {
    let storage = TestStorage::new(StorageDriver::Overlay);
    let (base, top) = two_layers(&storage).await;
    let record = create_rootfs(&storage.state, "c1", &top, None)
        .await
        .unwrap();
    assert_eq!(record.chain_top_first, [top.clone(), base.clone()]);
    let merged = storage.state.layout.rootfs("c1").join("merged");
    assert_eq!(record.mount_path, merged);
    assert_eq!(
        storage.mounts.log(),
        [format!(
            "mount {}:{} on {}",
            storage.state.layout.layer_diff(&top).display(),
            storage.state.layout.layer_diff(&base).display(),
            merged.display()
        )]
    );
    for layer in [&base, &top] {
        let owners = storage.state.layers.get(layer).unwrap().unwrap().owners;
        assert!(owners.contains(&RootfsRecord::owner("c1")), "{owners:?}");
    }
    // Asking again answers the same root filesystem without a second mount.
    create_rootfs(&storage.state, "c1", &top, None)
        .await
        .unwrap();
    assert_eq!(storage.mounts.log().len(), 1);
    let error = create_rootfs(&storage.state, "c1", &base, None)
        .await
        .expect_err("the same id on another layer");
    assert!(matches!(error, StorageError::InvalidArgument(_)), "{error}");
}

#[tokio::test]
async fn a_removed_rootfs_is_unmounted_deleted_and_lets_go_of_its_layers() {
    let storage = TestStorage::new(StorageDriver::Overlay);
    let (base, top) = two_layers(&storage).await;
    create_rootfs(&storage.state, "c1", &top, None)
        .await
        .unwrap();
    remove_rootfs(&storage.state, "c1").await.unwrap();
    let merged = storage.state.layout.rootfs("c1").join("merged");
    assert_eq!(
        storage.mounts.log()[1],
        format!("unmount {}", merged.display())
    );
    assert!(!storage.state.layout.rootfs("c1").exists());
    assert!(storage.state.rootfs.get("c1").unwrap().is_none());
    for layer in [&base, &top] {
        let owners = storage.state.layers.get(layer).unwrap().unwrap().owners;
        assert_eq!(owners, [IMAGE.to_string()].into());
    }
    remove_rootfs(&storage.state, "c1").await.unwrap();
}

#[tokio::test]
async fn a_vfs_rootfs_is_a_copy_of_the_top_layer() {
    let storage = TestStorage::new(StorageDriver::Vfs);
    let (_, top) = two_layers(&storage).await;
    let record = create_rootfs(&storage.state, "c1", &top, None)
        .await
        .unwrap();
    for (file, content) in [("bin/sh", "shell"), ("app", "binary")] {
        assert_eq!(
            std::fs::read_to_string(record.mount_path.join(file)).unwrap(),
            content
        );
    }
    assert!(storage.mounts.log().is_empty());
    std::fs::write(record.mount_path.join("app"), "changed").unwrap();
    let layer = storage.state.layout.layer_diff(&top).join("app");
    assert_eq!(
        std::fs::read_to_string(layer).unwrap(),
        "binary",
        "the layer is untouched"
    );
}

#[tokio::test]
async fn rootfs_requests_are_checked_before_anything_is_made() {
    let storage = TestStorage::new(StorageDriver::Vfs);
    let unknown = format!("sha256:{}", "c".repeat(64));
    let error = create_rootfs(&storage.state, "c1", &unknown, None)
        .await
        .expect_err("no such layer");
    assert!(matches!(error, StorageError::LayerNotFound(_)), "{error}");
    for id in ["", "../c1", "a/b"] {
        let error = create_rootfs(&storage.state, id, "", None)
            .await
            .expect_err("not a file name");
        assert!(matches!(error, StorageError::InvalidArgument(_)), "{error}");
    }
    let mappings = IdMappings {
        uid: IdMapping {
            container_id: 0,
            host_id: 100_000,
            length: 65_536,
        },
        gid: IdMapping {
            container_id: 0,
            host_id: 100_000,
            length: 65_536,
        },
    };
    let error = create_rootfs(&storage.state, "c1", "", Some(mappings))
        .await
        .expect_err("vfs cannot map IDs");
    assert!(matches!(error, StorageError::InvalidArgument(_)), "{error}");
    assert!(storage.state.rootfs.values().unwrap().is_empty());
}
