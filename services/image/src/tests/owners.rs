//! Owner reconciliation: layers held for images this daemon no longer records are released.

use super::fakes::{TestImage, TestImages};
use crate::{image_pull::pull_image, reconcile::reconcile_owners};

#[tokio::test]
async fn owners_of_unrecorded_images_are_released_and_the_rest_kept() {
    let images = TestImages::new();
    let image = TestImage::new(&["layer"]);
    images.registries.push("registry.test/kept:1", &image);
    pull_image(&images.state, "registry.test/kept:1", None)
        .await
        .unwrap();
    let orphan = format!("sha256:{}", "0".repeat(64));
    images.store.hold(&orphan, "sha256:some-layer");
    images
        .store
        .hold("rootfs-of-a-container", "sha256:some-layer");
    assert_eq!(reconcile_owners(&images.state).await.unwrap(), 1);
    assert_eq!(images.log.calls("release"), [format!("release {orphan}")]);
    assert!(!images.store.held_by(&image.id()).is_empty());
    assert!(!images.store.held_by("rootfs-of-a-container").is_empty());
}

#[tokio::test]
async fn an_image_being_pulled_keeps_its_layers() {
    let images = TestImages::new();
    let pulling = format!("sha256:{}", "1".repeat(64));
    images.store.hold(&pulling, "sha256:half-pulled");
    let _in_flight = images.state.pull_in_flight(&pulling);
    assert_eq!(reconcile_owners(&images.state).await.unwrap(), 0);
    assert!(images.log.calls("release").is_empty());
}
