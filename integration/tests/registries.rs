//! registries.conf as CRI-O users write it: prefix rewrites, mirrors, blocked registries,
//! unqualified-search registries and Docker Hub short names.

use crimson_integration::{
    image_builder::{Pusher, TestImage},
    registry::TestRegistry,
    require_root,
    stack::{Stack, StackOptions},
};
use tonic::Code;

#[tokio::test(flavor = "multi_thread")]
async fn a_prefix_rewrite_pulls_from_the_location_but_records_the_requested_name() {
    require_root!();
    let registry = TestRegistry::start();
    let pushed = Pusher::new(&registry.address, None)
        .push("mirrored/e2e/busybox", "1.29", &TestImage::busybox())
        .await;
    let conf = format!(
        "[[registry]]\nprefix = \"registry.k8s.io/e2e-test-images\"\nlocation = \"{}/mirrored/e2e\"\ninsecure = true\n",
        registry.address
    );
    let stack = Stack::start(StackOptions {
        registries_conf: conf,
        ..Default::default()
    })
    .await;
    let name = "registry.k8s.io/e2e-test-images/busybox:1.29";

    assert_eq!(stack.pull(name).await.unwrap(), pushed.config_digest);

    let status = stack.image_status(name).await.unwrap();
    assert_eq!(status.repo_tags, vec![name.to_string()]);
    assert_eq!(
        status.repo_digests,
        vec![format!(
            "registry.k8s.io/e2e-test-images/busybox@{}",
            pushed.digest
        )]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mirrors_are_tried_in_order_before_the_primary() {
    require_root!();
    let primary = TestRegistry::start();
    let empty_mirror = TestRegistry::start();
    let mirror = TestRegistry::start();
    let only_on_mirror = Pusher::new(&mirror.address, None)
        .push("app", "1", &TestImage::busybox())
        .await;
    let mut on_primary_image = TestImage::busybox();
    on_primary_image.config["Env"] = serde_json::json!(["WHERE=primary"]);
    let on_primary = Pusher::new(&primary.address, None)
        .push("app", "2", &on_primary_image)
        .await;
    let conf = format!(
        "[[registry]]\nlocation = \"{}\"\ninsecure = true\nmirror = [{{ location = \"{}\", insecure = true }}, {{ location = \"{}\", insecure = true }}]\n",
        primary.address, empty_mirror.address, mirror.address
    );
    let stack = Stack::start(StackOptions {
        registries_conf: conf,
        ..Default::default()
    })
    .await;

    let from_mirror = stack
        .pull(&format!("{}/app:1", primary.address))
        .await
        .expect("served by the second mirror");
    let from_primary = stack
        .pull(&format!("{}/app:2", primary.address))
        .await
        .expect("falls back to the primary");

    assert_eq!(from_mirror, only_on_mirror.config_digest);
    assert_eq!(from_primary, on_primary.config_digest);
    assert!(
        empty_mirror.log().contains("/v2/app/manifests/1"),
        "the first mirror was asked first"
    );
    assert!(
        !primary.log().contains("/v2/app/manifests/1"),
        "the primary was not needed for app:1"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blocked_registry_is_refused_without_contacting_it() {
    require_root!();
    let registry = TestRegistry::start();
    Pusher::new(&registry.address, None)
        .push("app", "1", &TestImage::busybox())
        .await;
    let conf = format!(
        "[[registry]]\nlocation = \"{}\"\ninsecure = true\nblocked = true\n",
        registry.address
    );
    let stack = Stack::start(StackOptions {
        registries_conf: conf,
        ..Default::default()
    })
    .await;
    let before = registry.log().lines().count();

    let err = stack
        .pull(&format!("{}/app:1", registry.address))
        .await
        .unwrap_err();

    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(err.message().contains("blocked"), "{}", err.message());
    assert_eq!(
        registry.log().lines().count(),
        before,
        "no request reached the blocked registry"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn short_names_use_the_search_registries_and_docker_hub_normalisation() {
    require_root!();
    let search = TestRegistry::start();
    let hub = TestRegistry::start();
    let pushed = Pusher::new(&search.address, None)
        .push("box", "1", &TestImage::busybox())
        .await;
    let mut hub_image = TestImage::busybox();
    hub_image.config["Env"] = serde_json::json!(["FROM=hub"]);
    let from_hub = Pusher::new(&hub.address, None)
        .push("library/busybox", "latest", &hub_image)
        .await;
    let conf = format!(
        "unqualified-search-registries = [\"{search}\"]\n[[registry]]\nlocation = \"{search}\"\ninsecure = true\n\
         [[registry]]\nprefix = \"docker.io\"\nlocation = \"{hub}\"\ninsecure = true\n",
        search = search.address,
        hub = hub.address
    );
    let stack = Stack::start(StackOptions {
        registries_conf: conf,
        ..Default::default()
    })
    .await;

    assert_eq!(stack.pull("box:1").await.unwrap(), pushed.config_digest);
    assert_eq!(
        stack.image_status("box:1").await.unwrap().repo_tags,
        vec![format!("{}/box:1", search.address)]
    );

    assert_eq!(
        stack.pull("docker.io/busybox").await.unwrap(),
        from_hub.config_digest
    );
    let status = stack
        .image_status("docker.io/library/busybox:latest")
        .await
        .unwrap();
    assert_eq!(
        status.repo_tags,
        vec!["docker.io/library/busybox:latest".to_string()]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_references_and_missing_images_get_clear_statuses() {
    require_root!();
    let registry = TestRegistry::start();
    let stack = Stack::start(StackOptions::default().insecure_registry(&registry.address)).await;

    for bad in ["", "Upper/Case:1", "a//b", "x:@"] {
        let err = stack.pull(bad).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{bad:?}: {err:?}");
    }
    let err = stack
        .pull(&format!("{}/nothing:here", registry.address))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert!(stack.image_status("no/such:image").await.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plain_http_registry_needs_to_be_marked_insecure() {
    require_root!();
    let registry = TestRegistry::start();
    Pusher::new(&registry.address, None)
        .push("app", "1", &TestImage::busybox())
        .await;
    let stack = Stack::start(StackOptions::default()).await;

    let err = stack
        .pull(&format!("{}/app:1", registry.address))
        .await
        .unwrap_err();

    assert_eq!(
        err.code(),
        Code::Unavailable,
        "HTTPS to a plain HTTP registry fails: {err:?}"
    );
    assert!(
        stack
            .image_status(&format!("{}/app:1", registry.address))
            .await
            .is_none()
    );
}
