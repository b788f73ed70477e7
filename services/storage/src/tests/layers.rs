//! PutLayer against real directories.

use crimson_api::storage::v1::{PutLayerChunk, PutLayerHeader, put_layer_chunk::Part};
use crimson_config::StorageDriver;

use super::fakes::{TAR, TestLayer, TestStorage};
use crate::{
    StorageError, digest::chain_id, layer_claim::claim_layers, layer_put::put_layer,
    owner_release::release_owner,
};

const IMAGE: &str = "sha256:image";

#[tokio::test]
async fn a_layer_is_unpacked_once_into_its_own_directory() {
    let storage = TestStorage::new(StorageDriver::Overlay);
    let base = TestLayer::of(&[("etc/os-release", "test")]);
    let layer = storage.put(IMAGE, "", &base).await.unwrap();
    assert_eq!(layer.chain_id, base.digest());
    let diff = storage.state.layout.layer_diff(&layer.chain_id);
    assert_eq!(
        std::fs::read_to_string(diff.join("etc/os-release")).unwrap(),
        "test"
    );
    let record = storage.state.layers.get(&layer.chain_id).unwrap().unwrap();
    assert_eq!(record.owners, [IMAGE.to_string()].into());
    assert!(record.size_bytes >= 4);
    let staging = std::fs::read_dir(storage.state.layout.staging()).unwrap();
    assert_eq!(staging.count(), 0, "nothing left in staging");
}

#[tokio::test]
async fn a_child_layer_goes_on_its_parent_with_the_drivers_content() {
    for (driver, sees_parent) in [(StorageDriver::Overlay, false), (StorageDriver::Vfs, true)] {
        let storage = TestStorage::new(driver);
        let base = TestLayer::of(&[("base", "1")]);
        let top = TestLayer::of(&[("top", "2")]);
        let base_id = storage.put(IMAGE, "", &base).await.unwrap().chain_id;
        let top_id = storage.put(IMAGE, &base_id, &top).await.unwrap().chain_id;
        assert_eq!(top_id, chain_id(&base_id, &top.digest()));
        let diff = storage.state.layout.layer_diff(&top_id);
        assert!(diff.join("top").exists());
        assert_eq!(diff.join("base").exists(), sees_parent, "{driver:?}");
    }
}

#[tokio::test]
async fn a_stored_layer_gets_one_more_owner_without_unpacking() {
    let storage = TestStorage::new(StorageDriver::Overlay);
    let base = TestLayer::of(&[("a", "1")]);
    storage.put(IMAGE, "", &base).await.unwrap();
    let header = PutLayerHeader {
        owner: "sha256:other".into(),
        parent_chain_id: String::new(),
        diff_id: base.digest(),
        blob_digest: base.digest(),
        media_type: TAR.into(),
    };
    let only_the_header = futures::stream::iter(vec![Ok(PutLayerChunk {
        part: Some(Part::Header(header)),
    })]);
    put_layer(&storage.state, only_the_header).await.unwrap();
    let record = storage.state.layers.get(&base.digest()).unwrap().unwrap();
    assert_eq!(record.owners.len(), 2);
}

#[tokio::test]
async fn a_blob_that_is_not_what_its_header_says_is_refused_and_leaves_nothing() {
    let storage = TestStorage::new(StorageDriver::Overlay);
    let claimed = TestLayer::of(&[("a", "what the header says")]);
    let sent = TestLayer::of(&[("a", "what arrives")]);
    let header = PutLayerHeader {
        owner: IMAGE.into(),
        parent_chain_id: String::new(),
        diff_id: claimed.digest(),
        blob_digest: claimed.digest(),
        media_type: TAR.into(),
    };
    let error = put_layer(&storage.state, sent.chunks(header))
        .await
        .expect_err("the digests differ");
    assert!(matches!(error, StorageError::Unpack { .. }), "{error}");
    assert!(
        storage
            .state
            .layers
            .get(&claimed.digest())
            .unwrap()
            .is_none()
    );
    assert!(!storage.state.layout.layer(&claimed.digest()).exists());
    let staging = std::fs::read_dir(storage.state.layout.staging()).unwrap();
    assert_eq!(staging.count(), 0);
}

#[tokio::test]
async fn puts_without_a_header_or_parent_are_refused() {
    let storage = TestStorage::new(StorageDriver::Overlay);
    let no_header = futures::stream::iter(vec![Ok(PutLayerChunk {
        part: Some(Part::Data(b"tar".to_vec().into())),
    })]);
    let error = put_layer(&storage.state, no_header)
        .await
        .expect_err("no header");
    assert!(matches!(error, StorageError::InvalidArgument(_)), "{error}");
    let orphan = TestLayer::of(&[("a", "1")]);
    let parent = format!("sha256:{}", "a".repeat(64));
    let error = storage
        .put(IMAGE, &parent, &orphan)
        .await
        .expect_err("no such parent");
    assert!(matches!(error, StorageError::ParentMissing(_)), "{error}");
}

#[tokio::test]
async fn claims_answer_what_is_missing_and_release_deletes_what_nobody_holds() {
    let storage = TestStorage::new(StorageDriver::Overlay);
    let base = TestLayer::of(&[("a", "1")]);
    let held = storage.put(IMAGE, "", &base).await.unwrap().chain_id;
    let absent = format!("sha256:{}", "b".repeat(64));
    let missing = claim_layers(
        &storage.state,
        "sha256:second",
        &[held.clone(), absent.clone()],
    )
    .await
    .unwrap();
    assert_eq!(missing, [absent]);
    assert!(
        release_owner(&storage.state, IMAGE)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(storage.state.layout.layer(&held).exists(), "still held");
    assert_eq!(
        release_owner(&storage.state, "sha256:second")
            .await
            .unwrap(),
        std::slice::from_ref(&held)
    );
    assert!(!storage.state.layout.layer(&held).exists());
    assert!(storage.state.layers.get(&held).unwrap().is_none());
}
