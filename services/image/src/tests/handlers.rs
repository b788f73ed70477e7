//! Property tests of the internal API: any reference, pulled, looked up or removed in any
//! order, is answered with a result or a clear status, never a panic.

use crimson_api::image::v1::{
    GetImageRequest, ListImagesRequest, PullImageRequest, RemoveImageRequest, images_server::Images,
};
use proptest::prelude::*;
use tonic::{Code, Request};

use super::fakes::{TestImage, TestImages};
use crate::service::ImageService;

/// The name the fake registry serves.
const SERVED: &str = "registry.test/app:1";

#[derive(Debug, Clone)]
enum Call {
    Pull(String),
    Get(String),
    List(String),
    Remove(String),
}

fn reference() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(SERVED.to_string()),
        Just("registry.test/absent:1".to_string()),
        Just("mirrored.test/app@sha256:0".to_string()),
        "[a-z]{1,6}(:[a-z0-9]{1,4})?",
        "sha256:[0-9a-f]{0,64}",
        ".{0,24}",
    ]
}

fn call() -> impl Strategy<Value = Call> {
    prop_oneof![
        reference().prop_map(Call::Pull),
        reference().prop_map(Call::Get),
        reference().prop_map(Call::List),
        reference().prop_map(Call::Remove),
    ]
}

async fn run(calls: Vec<Call>) -> Result<(), TestCaseError> {
    let images = TestImages::new();
    images.registries.push(SERVED, &TestImage::new(&["layer"]));
    images.registries.cut_off("mirror.test");
    let service = ImageService::over(images.state.clone());
    for call in calls {
        let answer = match call.clone() {
            Call::Pull(reference) => service
                .pull_image(Request::new(PullImageRequest {
                    reference,
                    credentials: None,
                }))
                .await
                .map(drop),
            Call::Get(reference) => service
                .get_image(Request::new(GetImageRequest { reference }))
                .await
                .map(drop),
            Call::List(reference) => service
                .list_images(Request::new(ListImagesRequest { reference }))
                .await
                .map(drop),
            Call::Remove(reference) => service
                .remove_image(Request::new(RemoveImageRequest { reference }))
                .await
                .map(drop),
        };
        if let Err(status) = answer {
            prop_assert!(
                matches!(
                    status.code(),
                    Code::InvalidArgument | Code::NotFound | Code::Unavailable
                ),
                "{call:?} answered {status:?}"
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_call_sequence_gets_results_or_clear_statuses(calls in proptest::collection::vec(call(), 1..10)) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(run(calls))?;
    }
}
