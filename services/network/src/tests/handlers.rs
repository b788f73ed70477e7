//! Property tests of the internal API: any pod id, ports and sequence of set-ups and
//! teardowns is answered with a result or a clear status, never a panic.

use crimson_api::network::v1::{
    GetPodRequest, PortMapping, SetUpPodRequest, TearDownPodRequest, network_server::Network,
};
use proptest::prelude::*;
use tonic::{Code, Request};

use super::fakes::TestNetwork;
use crate::service::NetworkService;

#[derive(Debug, Clone)]
enum Call {
    SetUp(String, Vec<PortMapping>),
    TearDown(String),
    Get(String),
}

fn pod_id() -> impl Strategy<Value = String> {
    prop_oneof!["pod[12]", ".{0,10}", Just("..".to_string()), "[a-z/]{1,6}"]
}

fn port() -> impl Strategy<Value = PortMapping> {
    ("[a-zA-Z]{0,5}", any::<i32>(), any::<i32>(), ".{0,8}").prop_map(
        |(protocol, container_port, host_port, host_ip)| PortMapping {
            protocol,
            container_port,
            host_port,
            host_ip,
        },
    )
}

fn call() -> impl Strategy<Value = Call> {
    prop_oneof![
        (pod_id(), proptest::collection::vec(port(), 0..3)).prop_map(|(p, m)| Call::SetUp(p, m)),
        pod_id().prop_map(Call::TearDown),
        pod_id().prop_map(Call::Get),
    ]
}

async fn run(calls: Vec<Call>) -> Result<(), TestCaseError> {
    let network = TestNetwork::new();
    let service = NetworkService::over(network.state.clone());
    for call in calls {
        let answer = match call.clone() {
            Call::SetUp(pod_id, port_mappings) => service
                .set_up_pod(Request::new(SetUpPodRequest {
                    pod_id,
                    port_mappings,
                    ..Default::default()
                }))
                .await
                .map(drop),
            Call::TearDown(pod_id) => service
                .tear_down_pod(Request::new(TearDownPodRequest { pod_id }))
                .await
                .map(drop),
            Call::Get(pod_id) => service
                .get_pod(Request::new(GetPodRequest { pod_id }))
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
    // No namespace is pinned or removed outside the namespace directory.
    let netns_dir = network.state.netns_dir.display().to_string();
    for call in network.fake.log() {
        if let Some(path) = call
            .strip_prefix("pin ")
            .or_else(|| call.strip_prefix("unpin "))
        {
            prop_assert!(
                path.starts_with(&netns_dir) && !path.contains(".."),
                "{call}"
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
