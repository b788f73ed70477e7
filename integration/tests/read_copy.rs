//! The front door's copy of the daemons' answers (`services/cri/src/read_cache.rs`) through the
//! real stack: a read never answers older than a write to something it read, and a write
//! leaves the answers that read nothing it wrote, so they are given even while the daemon that
//! gave them is stopped.

use crimson_config::Daemon;
use crimson_integration::{
    image_builder::{Pusher, TestImage},
    pods::PodEnv,
    registry::TestRegistry,
    require_root,
    stack::{Stack, StackOptions, spec},
};
use k8s_cri::v1::{ContainerStatusRequest, ListImagesRequest, RemoveImageRequest};

/// The ids ListImages answers through the front door.
async fn listed_ids(stack: &Stack) -> Vec<String> {
    let listed = stack
        .images()
        .list_images(ListImagesRequest::default())
        .await;
    let images = listed.expect("ListImages").into_inner().images;
    images.into_iter().map(|image| image.id).collect()
}

/// An image that differs from every other by its environment.
fn image(tag: &str) -> TestImage {
    let mut image = TestImage::busybox();
    image.config["Env"] = serde_json::json!([format!("IMAGE={tag}")]);
    image
}

#[tokio::test(flavor = "multi_thread")]
async fn image_answers_follow_the_writes_they_read_and_only_those() {
    require_root!();
    let (first, second) = (TestRegistry::start(), TestRegistry::start());
    let conf = format!(
        "unqualified-search-registries = [\"{}\", \"{}\"]\n",
        first.address, second.address
    );
    let options = StackOptions {
        registries_conf: conf,
        ..Default::default()
    }
    .insecure_registry(&second.address);
    let first_address = first.address.clone();
    let env = PodEnv::start_with_registry(std::sync::Arc::new(first), false, options).await;
    let stack = &env.stack;
    let (on_first, on_second) = (
        Pusher::new(&first_address, None),
        Pusher::new(&second.address, None),
    );
    let x = on_second
        .push("short", "1", &image("x"))
        .await
        .config_digest;
    stack.pull("short:1").await.unwrap();
    assert_eq!(stack.image_status("short:1").await.unwrap().id, x);

    // A pull of another image writes nothing "short:1" read: its answer stays, and is given
    // while crimson-image is stopped. The pull answered with the image list it left, which
    // is given too.
    let u = on_first
        .push("unrelated", "1", &image("u"))
        .await
        .config_digest;
    stack.pull("unrelated:1").await.unwrap();
    let frozen = stack.freeze(Daemon::Image).await;
    let kept = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        stack.image_status("short:1"),
    )
    .await;
    let listed = tokio::time::timeout(std::time::Duration::from_secs(30), listed_ids(stack)).await;
    stack.thaw(frozen);
    assert_eq!(
        kept.expect("answered from the copy while crimson-image is stopped")
            .unwrap()
            .id,
        x
    );
    let listed = listed.expect("the list the pull answered with, while crimson-image is stopped");
    assert!(listed.contains(&u) && listed.contains(&x), "{listed:?}");

    // So does a removal.
    stack
        .images()
        .remove_image(RemoveImageRequest {
            image: Some(spec("unrelated:1")),
        })
        .await
        .unwrap();
    let frozen = stack.freeze(Daemon::Image).await;
    let listed = tokio::time::timeout(std::time::Duration::from_secs(30), listed_ids(stack)).await;
    stack.thaw(frozen);
    let listed =
        listed.expect("the list the removal answered with, while crimson-image is stopped");
    assert!(!listed.contains(&u) && listed.contains(&x), "{listed:?}");

    // The first search registry now has "short:1": the name the answer looked up and did
    // not find is written, so the short name resolves there at once.
    let z = on_first.push("short", "1", &image("z")).await.config_digest;
    stack
        .pull(&format!("{first_address}/short:1"))
        .await
        .unwrap();
    assert_eq!(stack.image_status("short:1").await.unwrap().id, z);

    // A tag that moves to another image leaves the first one's record too.
    let w = on_first.push("short", "1", &image("w")).await.config_digest;
    stack.pull("short:1").await.unwrap();
    assert_eq!(stack.image_status("short:1").await.unwrap().id, w);
    let left = stack.image_status(&z).await.unwrap();
    let moved = format!("{first_address}/short:1");
    assert!(!left.repo_tags.contains(&moved), "{:?}", left.repo_tags);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_container_status_stays_through_another_pods_life_and_follows_its_own() {
    require_root!();
    let env = PodEnv::start(false).await;
    let stack = &env.stack;
    let (pod, container) = env.start_sleeper(stack.runtime(), "watched").await.unwrap();
    let status = |id: String| {
        let mut runtime = stack.runtime();
        async move {
            runtime
                .container_status(ContainerStatusRequest {
                    container_id: id,
                    verbose: false,
                })
                .await
                .map(|r| r.into_inner().status.unwrap())
        }
    };
    let running = status(container.clone()).await.unwrap();

    let (other_pod, other) = env.start_sleeper(stack.runtime(), "other").await.unwrap();
    crimson_integration::pods::tear_down(stack.runtime(), other_pod, other)
        .await
        .unwrap();
    let frozen = stack.freeze(Daemon::Sandbox).await;
    let kept = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        status(container.clone()),
    )
    .await;
    stack.thaw(frozen);
    let kept = kept
        .expect("answered from the copy while crimson-sandbox is stopped")
        .unwrap();
    assert_eq!(kept, running);

    crimson_integration::pods::tear_down(stack.runtime(), pod, container.clone())
        .await
        .unwrap();
    let gone = status(container).await.unwrap_err();
    assert_eq!(gone.code(), tonic::Code::NotFound, "{gone:?}");
}
