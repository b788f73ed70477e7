//! SetUpPod and TearDownPod against the fake plugins and namespaces.

use serde_json::json;

use super::fakes::{POD_ADDRESS, TestNetwork, set_up_request};
use crate::{
    NetworkError, pod_setup::set_up_pod, pod_teardown::tear_down_pod, records::AttachmentState,
};

#[tokio::test]
async fn a_pod_gets_a_pinned_namespace_loopback_and_the_list_in_order() {
    let network = TestNetwork::new();
    let attached = set_up_pod(&network.state, set_up_request("pod1"))
        .await
        .unwrap();
    let netns = network.netns("pod1");
    assert_eq!(
        network.fake.log(),
        [
            format!("pin {netns}"),
            format!("ADD loopback {netns}"),
            format!("ADD bridge {netns}"),
            format!("ADD portmap {netns}"),
        ]
    );
    assert_eq!(attached.netns_path, netns);
    assert_eq!(attached.ips, [POD_ADDRESS.split('/').next().unwrap()]);
    assert_eq!(attached.network_name, "testnet");
    assert!(attached.attached);
    let configs = network.fake.configs();
    let portmap = &configs[2];
    assert_eq!(portmap["name"], "testnet");
    assert_eq!(portmap["prevResult"]["ips"][0]["address"], POD_ADDRESS);
    assert_eq!(
        portmap["runtimeConfig"]["portMappings"],
        json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": ""}]),
        "only ports with a host port are mappings"
    );
    let record = network.state.pods.get("pod1").unwrap().unwrap();
    assert_eq!(record.state, AttachmentState::Attached);
}

#[tokio::test]
async fn a_repeated_set_up_answers_the_attachment_without_plugins() {
    let network = TestNetwork::new();
    let first = set_up_pod(&network.state, set_up_request("pod1"))
        .await
        .unwrap();
    network.fake.clear_log();
    let again = set_up_pod(&network.state, set_up_request("pod1"))
        .await
        .unwrap();
    assert_eq!(first, again);
    assert!(network.fake.log().is_empty());
}

#[tokio::test]
async fn a_failed_add_is_undone_with_del_in_reverse() {
    let network = TestNetwork::new();
    network.fake.fail("ADD portmap", "iptables: no chain");
    let error = set_up_pod(&network.state, set_up_request("pod1"))
        .await
        .expect_err("portmap fails");
    assert!(error.to_string().contains("no chain"), "{error}");
    let netns = network.netns("pod1");
    assert_eq!(
        network.fake.log()[4..],
        [
            format!("DEL portmap {netns}"),
            format!("DEL bridge {netns}"),
            format!("unpin {netns}"),
        ]
    );
    assert!(network.state.pods.get("pod1").unwrap().is_none());
    assert_eq!(network.fake.forgotten(), ["pod1"]);
}

#[tokio::test]
async fn a_teardown_runs_del_with_the_cached_result_then_unpins() {
    let network = TestNetwork::new();
    set_up_pod(&network.state, set_up_request("pod1"))
        .await
        .unwrap();
    network.fake.clear_log();
    tear_down_pod(&network.state, "pod1").await.unwrap();
    let netns = network.netns("pod1");
    assert_eq!(
        network.fake.log(),
        [
            format!("DEL portmap {netns}"),
            format!("DEL bridge {netns}"),
            format!("unpin {netns}"),
        ]
    );
    let bridge = &network.fake.configs()[1];
    assert_eq!(bridge["prevResult"]["ips"][0]["address"], POD_ADDRESS);
    assert!(network.state.pods.get("pod1").unwrap().is_none());
    // Tearing down again (or a pod never attached) only makes sure no namespace is left.
    network.fake.clear_log();
    tear_down_pod(&network.state, "pod1").await.unwrap();
    assert_eq!(network.fake.log(), [format!("unpin {netns}")]);
}

#[tokio::test]
async fn a_pod_whose_namespace_is_gone_is_deleted_without_one() {
    let network = TestNetwork::new();
    set_up_pod(&network.state, set_up_request("pod1"))
        .await
        .unwrap();
    std::fs::remove_file(network.netns("pod1")).unwrap();
    network.fake.clear_log();
    tear_down_pod(&network.state, "pod1").await.unwrap();
    assert_eq!(network.fake.log()[..2], ["DEL portmap ", "DEL bridge "]);
}

#[tokio::test]
async fn a_failing_del_goes_on_and_keeps_the_record_for_a_retry() {
    let network = TestNetwork::new();
    set_up_pod(&network.state, set_up_request("pod1"))
        .await
        .unwrap();
    network.fake.clear_log();
    network.fake.fail("DEL portmap", "iptables locked");
    let error = tear_down_pod(&network.state, "pod1")
        .await
        .expect_err("portmap fails");
    assert!(error.to_string().contains("iptables locked"), "{error}");
    let netns = network.netns("pod1");
    assert_eq!(
        network.fake.log(),
        [
            format!("DEL portmap {netns}"),
            format!("DEL bridge {netns}")
        ]
    );
    assert!(network.state.pods.get("pod1").unwrap().is_some());
}

#[tokio::test]
async fn pod_ids_that_are_not_file_names_are_refused() {
    let network = TestNetwork::new();
    for id in ["", "../escape", "a/b"] {
        let error = set_up_pod(&network.state, set_up_request(id))
            .await
            .expect_err("not a file name");
        assert!(matches!(error, NetworkError::InvalidArgument(_)), "{error}");
        let error = tear_down_pod(&network.state, id)
            .await
            .expect_err("not a file name");
        assert!(matches!(error, NetworkError::InvalidArgument(_)), "{error}");
    }
    assert!(network.fake.log().is_empty());
}

#[tokio::test]
async fn without_a_network_configuration_the_network_is_not_ready() {
    let network = TestNetwork::new();
    let conf = network.state.cni_conf_dir.join("10-test.conflist");
    std::fs::remove_file(conf).unwrap();
    let error = set_up_pod(&network.state, set_up_request("pod1"))
        .await
        .expect_err("no network");
    assert!(matches!(error, NetworkError::NotReady(_)), "{error}");
    assert!(network.fake.log().is_empty());
}
