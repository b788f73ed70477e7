//! What storage makes of layers: an overlay mount (or vfs copy) of the chain is the image's
//! filesystem with whiteouts applied and metadata kept; hostile layers fail the pull; shared
//! layers are downloaded once by concurrent pulls.

use std::os::unix::fs::MetadataExt;

use crimson_api::storage::v1::{CreateRootfsRequest, RemoveRootfsRequest};
use crimson_config::StorageDriver;
use crimson_integration::{
    image_builder::{LayerBuilder, Pusher, TestImage},
    registry::TestRegistry,
    require_root,
    stack::{Stack, StackOptions, mounts_under},
};
use tonic::Code;

fn layered_image() -> TestImage {
    let base = LayerBuilder::new().busybox_base().build();
    let middle = LayerBuilder::new()
        .dir("data")
        .file("data/gone", b"deleted above", 0o644)
        .file_with_xattr("data/labelled", b"x", ("user.crimson", b"kept"))
        .owned_file("data/kept", b"kept", 0o4750, 1000, 33)
        .hardlink("data/kept-link", "data/kept")
        .symlink("data/to-kept", "kept")
        .dir("cache")
        .file("cache/old", b"hidden by the opaque dir above", 0o644)
        .dir("dev")
        .char_device("dev/null-copy", 1, 3)
        .build();
    let top = LayerBuilder::new()
        .dir("data")
        .whiteout("data/gone")
        .dir("cache")
        .opaque("cache")
        .file("cache/new", b"new", 0o600)
        .build()
        .uncompressed();
    TestImage::with_layers(vec![base, middle, top])
}

async fn check_rootfs(driver: StorageDriver) {
    let registry = TestRegistry::start();
    Pusher::new(&registry.address, None)
        .push("layered", "1", &layered_image())
        .await;
    let stack = Stack::start(StackOptions {
        storage_driver: driver,
        ..StackOptions::default().insecure_registry(&registry.address)
    })
    .await;
    let name = format!("{}/layered:1", registry.address);
    stack.pull(&name).await.unwrap();
    let top = stack.top_chain_id(&name).await;

    let rootfs = stack
        .storage()
        .create_rootfs(CreateRootfsRequest {
            id: "c1".into(),
            top_chain_id: top.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let root = std::path::PathBuf::from(&rootfs.mount_path);

    assert!(
        root.join("bin/busybox").is_file(),
        "{driver:?}: base layer visible"
    );
    assert!(
        !root.join("data/gone").exists(),
        "{driver:?}: whiteout applied"
    );
    assert!(
        !root.join("cache/old").exists(),
        "{driver:?}: opaque dir hides the lower content"
    );
    assert_eq!(std::fs::read(root.join("cache/new")).unwrap(), b"new");
    let kept = std::fs::metadata(root.join("data/kept")).unwrap();
    assert_eq!(
        (kept.uid(), kept.gid(), kept.mode() & 0o7777),
        (1000, 33, 0o4750),
        "{driver:?}: owner and setuid mode"
    );
    assert_eq!(kept.nlink(), 2, "{driver:?}: hard link kept");
    assert_eq!(
        xattr_of(&root.join("data/labelled"), "user.crimson"),
        Some(b"kept".to_vec()),
        "{driver:?}: xattr kept"
    );
    assert_eq!(
        std::fs::read_link(root.join("data/to-kept"))
            .unwrap()
            .to_str(),
        Some("kept")
    );
    let device = std::fs::metadata(root.join("dev/null-copy")).unwrap();
    assert_eq!(
        (device.mode() & libc_s_ifmt(), device.rdev()),
        (0o020000, nix::sys::stat::makedev(1, 3))
    );
    std::fs::write(root.join("data/written"), b"container data").expect("the rootfs is writable");
    if driver == StorageDriver::Overlay {
        assert!(
            mounts_under(stack.root())
                .iter()
                .any(|m| m == &rootfs.mount_path),
            "an overlay mount"
        );
    }

    let again = stack
        .storage()
        .create_rootfs(CreateRootfsRequest {
            id: "c1".into(),
            top_chain_id: top,
            ..Default::default()
        })
        .await
        .expect("CreateRootfs is idempotent")
        .into_inner();
    assert_eq!(again.mount_path, rootfs.mount_path);

    stack
        .storage()
        .remove_rootfs(RemoveRootfsRequest { id: "c1".into() })
        .await
        .unwrap();
    stack
        .storage()
        .remove_rootfs(RemoveRootfsRequest { id: "c1".into() })
        .await
        .expect("removal is idempotent");
    assert!(mounts_under(stack.root()).is_empty());
    assert!(!root.exists());
}

fn xattr_of(path: &std::path::Path, name: &str) -> Option<Vec<u8>> {
    xattr::get(path, name).ok().flatten()
}

fn libc_s_ifmt() -> u32 {
    0o170000
}

#[tokio::test(flavor = "multi_thread")]
async fn overlay_of_the_chain_is_the_image_filesystem() {
    require_root!();
    check_rootfs(StorageDriver::Overlay).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn vfs_copies_give_the_same_filesystem() {
    require_root!();
    check_rootfs(StorageDriver::Vfs).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_layers_fail_the_pull_and_write_nothing_outside() {
    require_root!();
    let registry = TestRegistry::start();
    let pusher = Pusher::new(&registry.address, None);
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("owned");
    let hostile: Vec<(&str, TestImage)> = vec![
        (
            "dotdot",
            TestImage::with_layers(vec![
                LayerBuilder::new()
                    .raw_entry("../../../../escaped", tar::EntryType::Regular, None, b"x")
                    .build(),
            ]),
        ),
        (
            "absolute",
            TestImage::with_layers(vec![
                LayerBuilder::new()
                    .raw_entry(
                        target.to_str().unwrap(),
                        tar::EntryType::Regular,
                        None,
                        b"x",
                    )
                    .build(),
            ]),
        ),
        (
            "symlink",
            TestImage::with_layers(vec![
                LayerBuilder::new()
                    .raw_entry(
                        "evil",
                        tar::EntryType::Symlink,
                        Some(outside.path().to_str().unwrap()),
                        b"",
                    )
                    .raw_entry("evil/owned", tar::EntryType::Regular, None, b"x")
                    .build(),
            ]),
        ),
        (
            "hardlink",
            TestImage::with_layers(vec![
                LayerBuilder::new()
                    .raw_entry(
                        "passwd",
                        tar::EntryType::Link,
                        Some("../../../../../etc/passwd"),
                        b"",
                    )
                    .build(),
            ]),
        ),
    ];
    let stack = Stack::start(StackOptions::default().insecure_registry(&registry.address)).await;
    for (repository, image) in &hostile {
        pusher.push(repository, "1", image).await;
        let err = stack
            .pull(&format!("{}/{repository}:1", registry.address))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{repository}: {err:?}");
        assert!(
            err.message().contains("layer"),
            "{repository}: {}",
            err.message()
        );
    }
    assert!(!target.exists(), "nothing was written outside the layer");
    assert_eq!(stack.stored_layer_dirs(), 0, "no layer was kept");
    let staging = stack
        .state_dir(crimson_config::Daemon::Storage)
        .join("staging");
    assert_eq!(
        std::fs::read_dir(staging).unwrap().count(),
        0,
        "no half-unpacked layer left"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_pulls_download_each_blob_once() {
    require_root!();
    let registry = TestRegistry::start();
    let image = TestImage::with_layers(vec![
        LayerBuilder::new().busybox_base().build(),
        LayerBuilder::new()
            .file("payload", &vec![7u8; 4 << 20], 0o644)
            .build(),
    ]);
    let pushed = Pusher::new(&registry.address, None)
        .push("shared", "1", &image)
        .await;
    let stack = Stack::start(StackOptions::default().insecure_registry(&registry.address)).await;
    let name = format!("{}/shared:1", registry.address);

    let (a, b, c) = tokio::join!(stack.pull(&name), stack.pull(&name), stack.pull(&name));

    assert_eq!(a.unwrap(), pushed.config_digest);
    assert_eq!(b.unwrap(), pushed.config_digest);
    assert_eq!(c.unwrap(), pushed.config_digest);
    for digest in &pushed.layer_digests {
        assert_eq!(
            registry.blob_downloads("shared", digest),
            1,
            "layer {digest} downloaded once"
        );
    }
    assert_eq!(stack.stored_layer_dirs(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blob_that_does_not_match_its_digest_fails_the_pull() {
    require_root!();
    let registry = TestRegistry::start();
    let pushed = Pusher::new(&registry.address, None)
        .push("corrupt", "1", &TestImage::busybox())
        .await;
    let blob = registry.blob_path(&pushed.layer_digests[0]);
    let mut bytes = std::fs::read(&blob).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&blob, bytes).unwrap();
    let stack = Stack::start(StackOptions::default().insecure_registry(&registry.address)).await;

    let err = stack
        .pull(&format!("{}/corrupt:1", registry.address))
        .await
        .unwrap_err();

    assert_eq!(err.code(), Code::DataLoss, "{err:?}");
    assert!(
        err.message().contains("digest") || err.message().contains("mismatch"),
        "{}",
        err.message()
    );
    assert_eq!(stack.stored_layer_dirs(), 0);
}
