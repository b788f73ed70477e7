//! One CRI call is one trace: a PullImage yields spans from crimson-cri, crimson-image and
//! crimson-storage sharing one trace id, exported over OTLP/gRPC to a receiver of the test's.

use std::collections::{HashMap, HashSet};

use crimson_integration::{
    eventually,
    image_builder::{Pusher, TestImage},
    otlp::OtlpReceiver,
    registry::TestRegistry,
    require_root,
    stack::{Stack, StackOptions},
};

#[tokio::test(flavor = "multi_thread")]
async fn a_pull_is_one_trace_across_three_daemons() {
    require_root!();
    let receiver = OtlpReceiver::start().await;
    let registry = TestRegistry::start();
    Pusher::new(&registry.address, None)
        .push("traced", "1", &TestImage::busybox())
        .await;
    let stack = Stack::start(StackOptions {
        otlp_endpoint: Some(receiver.endpoint.clone()),
        ..StackOptions::default().insecure_registry(&registry.address)
    })
    .await;

    stack
        .pull(&format!("{}/traced:1", registry.address))
        .await
        .unwrap();

    let wanted: HashSet<&str> = ["crimson-cri", "crimson-image", "crimson-storage"].into();
    let trace = eventually(30, "spans of one pull from three daemons", || async {
        let mut services_by_trace: HashMap<String, HashSet<String>> = HashMap::new();
        for span in receiver.spans().iter().filter(|s| {
            s.name.contains("PullImage")
                || s.name.contains("PutLayer")
                || s.name.contains("ClaimLayers")
        }) {
            services_by_trace
                .entry(span.trace_id.clone())
                .or_default()
                .insert(span.service.clone());
        }
        services_by_trace
            .into_iter()
            .find(|(_, services)| wanted.iter().all(|w| services.contains(*w)))
    })
    .await;
    let names: Vec<String> = receiver
        .spans()
        .into_iter()
        .filter(|s| s.trace_id == trace.0)
        .map(|s| format!("{}:{}", s.service, s.name))
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n == "crimson-cri:/runtime.v1.ImageService/PullImage"),
        "{names:?}"
    );
    assert!(
        names
            .iter()
            .any(|n| n == "crimson-storage:/crimson.storage.v1.Storage/PutLayer"),
        "{names:?}"
    );
}
