//! PullImage against the fake registries and storage.

use std::time::Duration;

use super::fakes::{TestImage, TestImages};
use crate::{
    ImageError, image_lookup::find_image, image_pull::pull_image, image_remove::remove_image,
};

const NAME: &str = "registry.test/library/busybox:1";

#[tokio::test]
async fn a_pull_streams_each_missing_layer_onto_its_parent_then_records_the_image() {
    let images = TestImages::new();
    let image = TestImage::new(&["base layer", "top layer"]);
    images.registries.push(NAME, &image);
    let pulled = pull_image(&images.state, NAME, None).await.unwrap();
    let id = image.id();
    assert_eq!(pulled.record.id, id);
    assert_eq!(pulled.record.chain_ids, image.chain_ids);
    assert_eq!(pulled.record.repo_tags, [NAME]);
    assert!(pulled.record.repo_digests[0].starts_with("registry.test/library/busybox@sha256:"));
    assert_eq!(
        images.log.calls(""),
        [
            format!("open {NAME}"),
            format!("config {id}"),
            format!("claim 2 for {id}"),
            format!("layer {}", crate::registry::sha256(b"base layer")),
            format!("put {} for {id}", image.chain_ids[0]),
            format!("layer {}", crate::registry::sha256(b"top layer")),
            format!("put {} for {id}", image.chain_ids[1]),
            format!("claim 2 for {id}"),
        ]
    );
    assert_eq!(images.store.held_by(&id).len(), 2);
    let found = find_image(&images.state, NAME).unwrap().unwrap();
    assert_eq!(found.id, id);
    assert!(find_image(&images.state, &id).unwrap().is_some(), "by id");
}

#[tokio::test]
async fn layers_storage_has_are_claimed_not_downloaded() {
    let images = TestImages::new();
    let first = TestImage::new(&["shared base", "first top"]);
    let second = TestImage::new(&["shared base", "second top"]);
    images.registries.push(NAME, &first);
    images.registries.push("registry.test/other:1", &second);
    pull_image(&images.state, NAME, None).await.unwrap();
    images.log.clear();
    pull_image(&images.state, "registry.test/other:1", None)
        .await
        .unwrap();
    assert_eq!(
        images.log.calls("put").len(),
        1,
        "only the second top layer"
    );
    assert_eq!(images.store.held_by(&second.id()).len(), 2);
    // Pulling the same image again downloads nothing.
    images.log.clear();
    pull_image(&images.state, NAME, None).await.unwrap();
    assert!(images.log.calls("layer").is_empty());
}

#[tokio::test]
async fn concurrent_pulls_download_a_shared_layer_once() {
    let images = TestImages::new();
    images.store.slow_puts(Duration::from_millis(50));
    let first = TestImage::new(&["shared base", "first top"]);
    let second = TestImage::new(&["shared base", "second top"]);
    images.registries.push(NAME, &first);
    images.registries.push("registry.test/other:1", &second);
    let (a, b) = tokio::join!(
        pull_image(&images.state, NAME, None),
        pull_image(&images.state, "registry.test/other:1", None),
    );
    a.unwrap();
    b.unwrap();
    let base = &first.chain_ids[0];
    assert_eq!(images.log.calls(&format!("put {base}")).len(), 1);
    assert!(images.store.held_by(&first.id()).contains(base));
    assert!(images.store.held_by(&second.id()).contains(base));
}

#[tokio::test]
async fn an_index_resolves_to_the_manifest_of_this_node() {
    let images = TestImages::new();
    let ours = TestImage::new(&["our layer"]);
    let theirs = TestImage::new(&["their layer"]);
    let (os, architecture, _) = crate::manifest::node_platform();
    let node = format!("{os}/{architecture}");
    images
        .registries
        .push_index(NAME, &[("linux/s390x-elsewhere", &theirs), (&node, &ours)]);
    let pulled = pull_image(&images.state, NAME, None).await.unwrap();
    assert_eq!(pulled.record.id, ours.id());
    assert!(images.log.calls("manifest").len() == 1);
    assert!(images.log.calls("put").len() == 1);
}

#[tokio::test]
async fn a_mirror_that_fails_falls_through_to_the_registry() {
    let images = TestImages::new();
    let image = TestImage::new(&["layer"]);
    images.registries.push("mirrored.test/app:1", &image);
    images.registries.cut_off("mirror.test");
    let pulled = pull_image(&images.state, "mirrored.test/app:1", None)
        .await
        .unwrap();
    assert_eq!(pulled.record.id, image.id());
    assert_eq!(
        images.log.calls("open"),
        ["open mirror.test/app:1", "open mirrored.test/app:1"]
    );
}

#[tokio::test]
async fn a_pull_no_source_can_serve_says_what_each_one_answered() {
    let images = TestImages::new();
    images.registries.cut_off("mirror.test");
    let error = pull_image(&images.state, "mirrored.test/absent:1", None)
        .await
        .expect_err("nobody has it");
    let ImageError::PullFailed { failures, .. } = &error else {
        panic!("{error}");
    };
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(failures[0].1.to_string().starts_with("unreachable"));
    assert!(failures[1].1.to_string().starts_with("not found"));
    assert!(images.log.calls("claim").is_empty());
}

#[tokio::test]
async fn a_config_that_disagrees_with_its_manifest_stores_nothing() {
    let images = TestImages::new();
    let mut image = TestImage::new(&["one layer"]);
    let two = TestImage::new(&["one layer", "another"]);
    image.config = two.config.clone();
    let config = crate::registry::sha256(&image.config);
    let mut manifest: serde_json::Value = serde_json::from_slice(&image.manifest).unwrap();
    manifest["config"]["digest"] = config.into();
    image.manifest = manifest.to_string().into_bytes();
    images.registries.push(NAME, &image);
    let error = pull_image(&images.state, NAME, None)
        .await
        .expect_err("two diff ids, one layer");
    assert!(matches!(error, ImageError::Manifest { .. }), "{error}");
    assert!(images.log.calls("claim").is_empty());
    assert!(images.state.records.all().unwrap().is_empty());
}

#[tokio::test]
async fn a_removed_image_loses_its_names_and_its_layers() {
    let images = TestImages::new();
    let image = TestImage::new(&["layer"]);
    images.registries.push(NAME, &image);
    pull_image(&images.state, NAME, None).await.unwrap();
    remove_image(&images.state, NAME).await.unwrap();
    assert!(find_image(&images.state, NAME).unwrap().is_none());
    assert!(images.store.held_by(&image.id()).is_empty());
    assert_eq!(
        images.log.calls("release"),
        [format!("release {}", image.id())]
    );
    remove_image(&images.state, NAME).await.unwrap();
}
