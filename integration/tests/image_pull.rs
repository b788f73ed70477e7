//! Pulling through the front door from a loopback registry: by tag, by digest, without a tag,
//! from an index, Docker and OCI manifests, plain and gzip layers; what ImageStatus and
//! ListImages report; removal frees storage.

use crimson_integration::{
    image_builder::{Format, LayerBuilder, Pusher, TestImage},
    registry::TestRegistry,
    require_root,
    stack::{Stack, StackOptions, spec},
};
use k8s_cri::v1::{
    ImageFilter, ImageFsInfoRequest, ImageStatusRequest, ListImagesRequest, RemoveImageRequest,
};

async fn setup() -> (TestRegistry, Stack, Pusher) {
    let registry = TestRegistry::start();
    let stack = Stack::start(StackOptions::default().insecure_registry(&registry.address)).await;
    let pusher = Pusher::new(&registry.address, None);
    (registry, stack, pusher)
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_by_tag_reports_tags_digests_size_and_user() {
    require_root!();
    let (registry, stack, pusher) = setup().await;
    let mut image = TestImage::busybox();
    image.config["User"] = "1002:1003".into();
    let pushed = pusher.push("tools/box", "v1", &image).await;
    let name = format!("{}/tools/box:v1", registry.address);

    let image_ref = stack.pull(&name).await.expect("pull");

    assert_eq!(
        image_ref, pushed.config_digest,
        "PullImage answers the image id"
    );
    let status = stack.image_status(&name).await.expect("image is known");
    assert_eq!(status.id, pushed.config_digest);
    assert_eq!(status.repo_tags, vec![name.clone()]);
    assert_eq!(
        status.repo_digests,
        vec![format!("{}/tools/box@{}", registry.address, pushed.digest)]
    );
    assert_eq!(status.size, pushed.size);
    assert_eq!(status.uid.map(|u| u.value), Some(1002));
    assert_eq!(status.username, "");
    for other_name in [
        status.id.clone(),
        status.repo_digests[0].clone(),
        status.id[7..19].to_string(),
    ] {
        assert_eq!(
            stack.image_status(&other_name).await.as_ref(),
            Some(&status),
            "status by {other_name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_by_digest_records_no_tag_and_without_tag_means_latest() {
    require_root!();
    let (registry, stack, pusher) = setup().await;
    let mut image = TestImage::busybox();
    image.config["User"] = "www-data".into();
    let pushed = pusher.push("app", "latest", &image).await;
    let by_digest = format!("{}/app@{}", registry.address, pushed.digest);

    stack.pull(&by_digest).await.expect("pull by digest");
    let status = stack
        .image_status(&by_digest)
        .await
        .expect("known by digest");
    assert!(status.repo_tags.is_empty());
    assert_eq!(status.repo_digests, vec![by_digest.clone()]);
    assert_eq!((status.uid, status.username.as_str()), (None, "www-data"));

    let untagged = format!("{}/app", registry.address);
    stack.pull(&untagged).await.expect("pull without tag");
    let status = stack
        .image_status(&untagged)
        .await
        .expect("known without tag");
    assert_eq!(status.repo_tags, vec![format!("{untagged}:latest")]);
}

#[tokio::test(flavor = "multi_thread")]
async fn multi_platform_index_pulls_the_node_platform_in_both_formats() {
    require_root!();
    let (registry, stack, pusher) = setup().await;
    for (repository, format) in [("multi-oci", Format::Oci), ("multi-docker", Format::Docker)] {
        let mut native = TestImage {
            format,
            ..TestImage::busybox()
        };
        native.config["Env"] = serde_json::json!([format!("FLAVOUR={repository}")]);
        let mut foreign = TestImage::with_layers(vec![
            LayerBuilder::new().file("foreign", b"s390x", 0o644).build(),
        ]);
        foreign.architecture = "s390x".into();
        foreign.format = format;
        let pushed = pusher.push_index(repository, "1", &[foreign, native]).await;
        let name = format!("{}/{repository}:1", registry.address);

        let image_ref = stack.pull(&name).await.expect("pull from index");

        assert_eq!(
            image_ref, pushed.config_digest,
            "{repository}: the node's platform was chosen"
        );
        let status = stack.image_status(&name).await.unwrap();
        assert_eq!(
            status.repo_digests,
            vec![format!(
                "{}/{repository}@{}",
                registry.address, pushed.digest
            )]
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn list_filter_remove_and_storage_is_freed() {
    require_root!();
    let (registry, stack, pusher) = setup().await;
    let base = LayerBuilder::new().busybox_base().build();
    let shared_base = TestImage::with_layers(vec![base.clone()]);
    let mut layered = TestImage::with_layers(vec![
        base,
        LayerBuilder::new()
            .file("data/extra", b"x", 0o644)
            .build()
            .uncompressed(),
    ]);
    layered.format = Format::Docker;
    pusher.push("one", "1", &shared_base).await;
    pusher.push("two", "1", &layered).await;
    let one = format!("{}/one:1", registry.address);
    let two = format!("{}/two:1", registry.address);
    let mut images = stack.images();
    let used = |images: &mut k8s_cri::v1::image_service_client::ImageServiceClient<_>| {
        let mut images = images.clone();
        async move {
            images
                .image_fs_info(ImageFsInfoRequest {})
                .await
                .unwrap()
                .into_inner()
                .image_filesystems[0]
                .used_bytes
                .unwrap()
                .value
        }
    };
    assert_eq!(used(&mut images).await, 0);

    stack.pull(&one).await.unwrap();
    let after_one = used(&mut images).await;
    stack.pull(&two).await.unwrap();
    assert_eq!(
        stack.stored_layer_dirs(),
        2,
        "the shared base layer is stored once"
    );
    assert!(used(&mut images).await > after_one);

    let all = images
        .list_images(ListImagesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .images;
    assert_eq!(all.len(), 2);
    let filtered = images
        .list_images(ListImagesRequest {
            filter: Some(ImageFilter {
                image: Some(spec(&two)),
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .images;
    assert_eq!(filtered.len(), 1);
    assert_eq!(filtered[0].repo_tags, vec![two.clone()]);

    images
        .remove_image(RemoveImageRequest {
            image: Some(spec(&two)),
        })
        .await
        .unwrap();
    assert!(stack.image_status(&two).await.is_none());
    assert_eq!(
        stack.stored_layer_dirs(),
        1,
        "the layer only `two` used is gone, the shared one stays"
    );
    assert_eq!(used(&mut images).await, after_one);

    let id = stack.image_status(&one).await.unwrap().id;
    images
        .remove_image(RemoveImageRequest {
            image: Some(spec(&id)),
        })
        .await
        .unwrap();
    images
        .remove_image(RemoveImageRequest {
            image: Some(spec(&id)),
        })
        .await
        .expect("removal is idempotent");
    assert_eq!(stack.stored_layer_dirs(), 0);
    assert_eq!(used(&mut images).await, 0);
    let verbose = images
        .image_status(ImageStatusRequest {
            image: Some(spec(&one)),
            verbose: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(verbose.image.is_none() && verbose.info.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn verbose_status_carries_the_image_config() {
    require_root!();
    let (registry, stack, pusher) = setup().await;
    let mut image = TestImage::busybox();
    image.config["Entrypoint"] = serde_json::json!(["/bin/echo", "hi"]);
    pusher.push("verbose", "1", &image).await;
    let name = format!("{}/verbose:1", registry.address);
    stack.pull(&name).await.unwrap();

    let response = stack
        .images()
        .image_status(ImageStatusRequest {
            image: Some(spec(&name)),
            verbose: true,
        })
        .await
        .unwrap()
        .into_inner();

    let info: serde_json::Value = serde_json::from_str(&response.info["info"]).unwrap();
    assert_eq!(info["imageSpec"]["config"]["Entrypoint"][0], "/bin/echo");
    assert_eq!(info["chainIDs"].as_array().unwrap().len(), 1);
}
