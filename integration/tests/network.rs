//! crimson-network on its own: pinned namespaces, CNI ADD/DEL/CHECK with the real bridge,
//! host-local, portmap and loopback plugins, dual stack, idempotence and restarts.

use std::process::Command;

use crimson_api::network::v1::{
    CheckPodRequest, SetUpPodRequest, TearDownPodRequest, network_client::NetworkClient,
};
use crimson_config::Daemon;
use crimson_integration::{
    require_root,
    stack::{Stack, StackOptions, mounts_under},
};
use tonic::transport::Channel;

fn client(stack: &Stack) -> NetworkClient<Channel> {
    NetworkClient::new(crimson_rpc::connect_unix(stack.socket(Daemon::Network)))
}

fn request(pod_id: &str) -> SetUpPodRequest {
    SetUpPodRequest {
        pod_id: pod_id.into(),
        pod_name: "web".into(),
        pod_namespace: "default".into(),
        pod_uid: format!("uid-{pod_id}"),
        port_mappings: vec![],
        userns_path: String::new(),
    }
}

fn allocated_ips(dir: &std::path::Path) -> Vec<String> {
    walk(dir)
        .into_iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().to_string()))
        .filter(|name| name.contains('.') || name.contains(':'))
        .filter(|name| !name.starts_with("last_reserved_ip"))
        .collect()
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn veths_on(bridge: &str) -> usize {
    let output = Command::new("ip")
        .args(["-o", "link", "show", "master", bridge])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).lines().count()
}

#[tokio::test(flavor = "multi_thread")]
async fn attach_check_restart_and_detach_twice() {
    require_root!();
    let stack = Stack::start(StackOptions::default()).await;
    let network = stack.add_bridge_network(false);
    let mut client = client(&stack);

    let attached = client
        .set_up_pod(request("pod-a"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(attached.ips.len(), 1);
    let prefix = network.subnet.rsplit_once('.').unwrap().0;
    assert!(
        attached.ips[0].starts_with(prefix),
        "{:?} in {}",
        attached.ips,
        network.subnet
    );
    assert!(
        mounts_under(stack.root()).contains(&attached.netns_path),
        "the namespace is pinned"
    );
    assert_eq!(veths_on(&network.bridge), 1);
    let again = client
        .set_up_pod(request("pod-a"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        again, attached,
        "a retried SetUpPod returns the same attachment"
    );
    client
        .check_pod(CheckPodRequest {
            pod_id: "pod-a".into(),
        })
        .await
        .expect("CNI CHECK passes");

    stack.restart(Daemon::Network).await;
    let mut client = self::client(&stack);
    client
        .tear_down_pod(TearDownPodRequest {
            pod_id: "pod-a".into(),
        })
        .await
        .unwrap();
    client
        .tear_down_pod(TearDownPodRequest {
            pod_id: "pod-a".into(),
        })
        .await
        .expect("DEL is idempotent");

    assert!(mounts_under(stack.root()).is_empty(), "namespace unmounted");
    assert!(!std::path::Path::new(&attached.netns_path).exists());
    assert_eq!(veths_on(&network.bridge), 0, "veth removed");
    assert!(
        allocated_ips(&network.ipam_dir).is_empty(),
        "IP released: {:?}",
        allocated_ips(&network.ipam_dir)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_teardown_killed_after_its_unmount_finishes_when_called_again() {
    require_root!();
    let stack = Stack::start(StackOptions::default()).await;
    let network = stack.add_bridge_network(false);
    let attached = client(&stack)
        .set_up_pod(request("pod-k"))
        .await
        .unwrap()
        .into_inner();

    // Killed between the namespace's unmount and forgetting the attachment: the record says
    // attached, the pin is a plain file, and the namespace (with the pod's veth end) is gone.
    stack.kill(Daemon::Network);
    nix::mount::umount2(
        std::path::Path::new(&attached.netns_path),
        nix::mount::MntFlags::MNT_DETACH,
    )
    .unwrap();
    stack.start_daemon(Daemon::Network).await;
    client(&stack)
        .tear_down_pod(TearDownPodRequest {
            pod_id: "pod-k".into(),
        })
        .await
        .expect("DEL without the namespace succeeds");

    assert!(!std::path::Path::new(&attached.netns_path).exists());
    assert!(
        allocated_ips(&network.ipam_dir).is_empty(),
        "IP released: {:?}",
        allocated_ips(&network.ipam_dir)
    );
    assert_eq!(veths_on(&network.bridge), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn dual_stack_networks_give_an_ipv6_address_too() {
    require_root!();
    let stack = Stack::start(StackOptions::default()).await;
    stack.add_bridge_network(true);
    let mut client = client(&stack);

    let attached = client
        .set_up_pod(request("pod-6"))
        .await
        .unwrap()
        .into_inner();

    assert_eq!(attached.ips.len(), 2, "{:?}", attached.ips);
    assert!(
        !attached.ips[0].contains(':') && attached.ips[1].contains(':'),
        "IPv4 first: {:?}",
        attached.ips
    );
    client
        .tear_down_pod(TearDownPodRequest {
            pod_id: "pod-6".into(),
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_network_configuration_setup_fails_cleanly() {
    require_root!();
    let stack = Stack::start(StackOptions::default()).await;
    let err = client(&stack)
        .set_up_pod(request("pod-x"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    assert!(mounts_under(stack.root()).is_empty());
    let err = client(&stack)
        .set_up_pod(request("../escape"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
}
