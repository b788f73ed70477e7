//! kill -9 of crimson-image and crimson-storage: records survive, an interrupted pull leaves
//! nothing half-registered, and the next pull succeeds.

use std::time::Duration;

use crimson_api::storage::v1::ListOwnersRequest;
use crimson_config::Daemon;
use crimson_integration::{
    eventually,
    image_builder::{LayerBuilder, Pusher, TestImage},
    registry::TestRegistry,
    require_root,
    stack::{Stack, StackOptions},
};
use k8s_cri::v1::ImageFsInfoRequest;

/// Incompressible bytes, so that a layer takes a while to unpack.
fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn big_image() -> TestImage {
    TestImage::with_layers(vec![
        LayerBuilder::new().busybox_base().build(),
        LayerBuilder::new()
            .file("big-1", &noise(48 << 20), 0o644)
            .build(),
        LayerBuilder::new()
            .file("big-2", &noise(8 << 20), 0o644)
            .build(),
    ])
}

fn import_in_progress(stack: &Stack) -> bool {
    std::fs::read_dir(stack.state_dir(Daemon::Storage).join("staging"))
        .map(|mut entries| {
            entries.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("import-")))
        })
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread")]
async fn image_and_layer_records_survive_kill_9() {
    require_root!();
    let registry = TestRegistry::start();
    let pushed = Pusher::new(&registry.address, None)
        .push("keep", "1", &TestImage::busybox())
        .await;
    let stack = Stack::start(StackOptions::default().insecure_registry(&registry.address)).await;
    let name = format!("{}/keep:1", registry.address);
    stack.pull(&name).await.unwrap();
    let before = stack.image_status(&name).await.unwrap();
    let fs_info = |stack: &Stack| {
        let mut images = stack.images();
        async move {
            images
                .image_fs_info(ImageFsInfoRequest {})
                .await
                .unwrap()
                .into_inner()
                .image_filesystems[0]
                .used_bytes
        }
    };
    let usage = fs_info(&stack).await;

    stack.restart(Daemon::Image).await;
    stack.restart(Daemon::Storage).await;

    assert_eq!(stack.image_status(&name).await.as_ref(), Some(&before));
    assert_eq!(fs_info(&stack).await, usage);
    assert_eq!(stack.stored_layer_dirs(), 1);
    assert_eq!(
        stack.pull(&name).await.unwrap(),
        pushed.config_digest,
        "a second pull finds everything in place"
    );
    assert_eq!(
        registry.blob_downloads("keep", &pushed.layer_digests[0]),
        1,
        "nothing was downloaded again"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pull_interrupted_by_killing_storage_leaves_nothing_and_the_next_pull_succeeds() {
    require_root!();
    let registry = TestRegistry::start();
    let pushed = Pusher::new(&registry.address, None)
        .push("big", "1", &big_image())
        .await;
    let stack = Stack::start(StackOptions::default().insecure_registry(&registry.address)).await;
    let name = format!("{}/big:1", registry.address);

    let pull = stack.pull(&name);
    let kill_during_import = async {
        eventually(60, "a layer import to start", || async {
            import_in_progress(&stack).then_some(())
        })
        .await;
        stack.kill(Daemon::Storage);
    };
    let (result, ()) = tokio::join!(pull, kill_during_import);

    assert!(result.is_err(), "the pull cannot succeed without storage");
    assert!(
        stack.image_status(&name).await.is_none(),
        "no half-registered image"
    );
    stack.start_daemon(Daemon::Storage).await;
    assert!(
        !import_in_progress(&stack),
        "storage cleaned up the half-unpacked layer on start"
    );

    assert_eq!(stack.pull(&name).await.unwrap(), pushed.config_digest);
    assert_eq!(stack.stored_layer_dirs(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pull_interrupted_by_killing_image_is_cleaned_up_and_retried() {
    require_root!();
    let registry = TestRegistry::start();
    let pushed = Pusher::new(&registry.address, None)
        .push("big", "1", &big_image())
        .await;
    let stack = Stack::start(StackOptions::default().insecure_registry(&registry.address)).await;
    let name = format!("{}/big:1", registry.address);

    let pull = stack.pull(&name);
    let kill_during_import = async {
        eventually(60, "a layer import to start", || async {
            import_in_progress(&stack).then_some(())
        })
        .await;
        stack.kill(Daemon::Image);
    };
    let (result, ()) = tokio::join!(pull, kill_during_import);
    assert!(result.is_err());
    eventually(30, "storage to drop the broken upload", || async {
        (!import_in_progress(&stack)).then_some(())
    })
    .await;

    stack.start_daemon(Daemon::Image).await;
    assert!(
        stack.image_status(&name).await.is_none(),
        "no half-registered image"
    );
    assert_eq!(stack.pull(&name).await.unwrap(), pushed.config_digest);
    let owners = stack
        .storage()
        .list_owners(ListOwnersRequest {})
        .await
        .unwrap()
        .into_inner()
        .owners;
    assert_eq!(owners, vec![pushed.config_digest.clone()]);

    // An image removed while storage is down has its layers released once storage is back.
    stack.kill(Daemon::Storage);
    let mut images = stack.images();
    let removal = images.remove_image(k8s_cri::v1::RemoveImageRequest {
        image: Some(crimson_integration::stack::spec(&name)),
    });
    let _ = tokio::time::timeout(Duration::from_secs(30), removal).await;
    stack.start_daemon(Daemon::Storage).await;
    stack.restart(Daemon::Image).await;
    eventually(30, "the orphaned layers to be released", || async {
        (stack.stored_layer_dirs() == 0).then_some(())
    })
    .await;
}
