//! Property tests of the internal API: any ids, owners and chain ids in any order are
//! answered with a result or a clear status, never a panic, and nothing is made outside the
//! store's directory.

use crimson_api::storage::v1::{
    ClaimLayersRequest, CreateRootfsRequest, GetLayerRequest, ReleaseOwnerRequest,
    RemoveRootfsRequest, storage_server::Storage,
};
use crimson_config::StorageDriver;
use proptest::prelude::*;
use tonic::{Code, Request};

use super::fakes::{TestLayer, TestStorage};
use crate::service::StorageService;

#[derive(Debug, Clone)]
enum Call {
    CreateRootfs(String, String),
    RemoveRootfs(String),
    Claim(String, Vec<String>),
    Release(String),
    GetLayer(String),
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "c[12]",
        ".{0,12}",
        Just("../escape".to_string()),
        "sha256:[0-9a-f]{0,64}",
    ]
}

fn call(layer: String) -> impl Strategy<Value = Call> {
    let chain = prop_oneof![Just(layer), text(), Just(String::new())];
    prop_oneof![
        (text(), chain.clone()).prop_map(|(id, top)| Call::CreateRootfs(id, top)),
        text().prop_map(Call::RemoveRootfs),
        (text(), proptest::collection::vec(chain.clone(), 0..3))
            .prop_map(|(owner, ids)| Call::Claim(owner, ids)),
        text().prop_map(Call::Release),
        chain.prop_map(Call::GetLayer),
    ]
}

async fn run(storage: TestStorage, calls: Vec<Call>) -> Result<(), TestCaseError> {
    let service = StorageService::over(storage.state.clone());
    for call in calls {
        let answer = match call.clone() {
            Call::CreateRootfs(id, top_chain_id) => service
                .create_rootfs(Request::new(CreateRootfsRequest {
                    id,
                    top_chain_id,
                    ..Default::default()
                }))
                .await
                .map(drop),
            Call::RemoveRootfs(id) => service
                .remove_rootfs(Request::new(RemoveRootfsRequest { id }))
                .await
                .map(drop),
            Call::Claim(owner, chain_ids) => service
                .claim_layers(Request::new(ClaimLayersRequest { owner, chain_ids }))
                .await
                .map(drop),
            Call::Release(owner) => service
                .release_owner(Request::new(ReleaseOwnerRequest { owner }))
                .await
                .map(drop),
            Call::GetLayer(chain_id) => service
                .get_layer(Request::new(GetLayerRequest { chain_id }))
                .await
                .map(drop),
        };
        if let Err(status) = answer {
            prop_assert!(
                matches!(status.code(), Code::InvalidArgument | Code::NotFound),
                "{call:?} answered {status:?}"
            );
        }
    }
    let root = storage.state.layout.rootfs_root();
    for call in storage.mounts.log() {
        let merged = call.rsplit(' ').next().unwrap_or_default();
        prop_assert!(merged.starts_with(&*root.to_string_lossy()) && !merged.contains(".."));
    }
    Ok(())
}

/// The layer every case stores first; its chain id is its digest (a base layer).
fn stored_layer() -> TestLayer {
    TestLayer::of(&[("file", "content")])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn any_call_sequence_gets_results_or_clear_statuses(
        calls in proptest::collection::vec(call(stored_layer().digest()), 1..10)
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let storage = TestStorage::new(StorageDriver::Overlay);
            storage
                .put("sha256:image", "", &stored_layer())
                .await
                .expect("a layer");
            run(storage, calls).await
        })?;
    }
}
