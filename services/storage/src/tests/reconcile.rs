//! Start-up reconciliation of layers and root filesystems with the disk.

use crimson_config::StorageDriver;

use super::fakes::{TestLayer, TestStorage};
use crate::{reconcile::reconcile, rootfs::create_rootfs};

#[tokio::test]
async fn after_a_reboot_recorded_root_filesystems_are_mounted_again() {
    let storage = TestStorage::new(StorageDriver::Overlay);
    let layer = storage
        .put("sha256:image", "", &TestLayer::of(&[("a", "1")]))
        .await
        .unwrap()
        .chain_id;
    create_rootfs(&storage.state, "c1", &layer, None)
        .await
        .unwrap();
    storage.mounts.reboot();
    let storage = storage.restart();
    storage.mounts.clear_log();
    reconcile(&storage.state).await.unwrap();
    let merged = storage.state.layout.rootfs("c1").join("merged");
    assert_eq!(
        storage.mounts.log(),
        [format!(
            "mount {} on {}",
            storage.state.layout.layer_diff(&layer).display(),
            merged.display()
        )]
    );
}

#[tokio::test]
async fn leftovers_without_records_and_records_without_directories_are_dropped() {
    let storage = TestStorage::new(StorageDriver::Overlay);
    let kept = storage
        .put("sha256:image", "", &TestLayer::of(&[("kept", "1")]))
        .await
        .unwrap()
        .chain_id;
    let lost = storage
        .put("sha256:image", "", &TestLayer::of(&[("lost", "1")]))
        .await
        .unwrap()
        .chain_id;
    let layout = storage.state.layout.clone();
    std::fs::remove_dir_all(layout.layer(&lost)).unwrap();
    let stray_layer = layout.layer(&format!("sha256:{}", "d".repeat(64)));
    let stray_rootfs = layout.rootfs("never-recorded");
    let stray_import = layout.staging().join("import-1-1");
    for dir in [&stray_layer, &stray_rootfs, &stray_import] {
        std::fs::create_dir_all(dir.join("diff")).unwrap();
    }
    let storage = storage.restart();
    reconcile(&storage.state).await.unwrap();
    assert!(storage.state.layers.get(&kept).unwrap().is_some());
    assert!(storage.state.layers.get(&lost).unwrap().is_none());
    for dir in [&stray_layer, &stray_rootfs, &stray_import] {
        assert!(!dir.exists(), "{} is left", dir.display());
    }
    assert!(layout.layer_diff(&kept).is_dir());
}
