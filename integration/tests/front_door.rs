//! The CRI front door: Version, Status from the daemons' health, UNIMPLEMENTED for what is not
//! built yet, UNAVAILABLE naming a daemon that is down, and recovery when it is back.

use std::time::Duration;

use crimson_config::Daemon;
use crimson_integration::{
    require_root,
    stack::{Stack, StackOptions, uncached_image_status},
};
use k8s_cri::v1::{
    CheckpointContainerRequest, ListImagesRequest, RuntimeConfigRequest, StatusRequest,
    VersionRequest,
};
use tonic::Code;

async fn conditions(stack: &Stack) -> Vec<(String, bool, String, String)> {
    stack
        .runtime()
        .status(StatusRequest { verbose: false })
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap()
        .conditions
        .into_iter()
        .map(|c| (c.r#type, c.status, c.reason, c.message))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn version_status_and_runtime_config() {
    require_root!();
    let stack = Stack::start(StackOptions::default()).await;

    let version = stack
        .runtime()
        .version(VersionRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            version.runtime_name.as_str(),
            version.runtime_api_version.as_str()
        ),
        ("crimson", "v1")
    );
    let config = stack
        .runtime()
        .runtime_config(RuntimeConfigRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        config.linux.unwrap().cgroup_driver,
        k8s_cri::v1::CgroupDriver::Cgroupfs as i32
    );

    let status = conditions(&stack).await;
    assert_eq!(
        (status[0].0.as_str(), status[0].1),
        ("RuntimeReady", true),
        "{status:?}"
    );
    assert_eq!(
        (status[1].0.as_str(), status[1].1),
        ("NetworkReady", false),
        "no CNI config yet: {status:?}"
    );
    assert_eq!(status[1].2, "NetworkPluginNotReady");

    std::fs::write(
        stack.cni_conf_dir().join("10-test.conflist"),
        r#"{"cniVersion":"1.0.0","name":"test","plugins":[{"type":"bridge","bridge":"crimsontest0"},{"type":"loopback"}]}"#,
    )
    .unwrap();
    assert!(
        conditions(&stack).await[1].1,
        "a conflist added while running makes the network ready"
    );

    stack.kill(Daemon::Network);
    let status = conditions(&stack).await;
    assert!(
        status[0].1,
        "the runtime stays ready without crimson-network"
    );
    assert!(
        !status[1].1 && status[1].3.contains("crimson-network"),
        "{status:?}"
    );
    stack.start_daemon(Daemon::Network).await;
    assert!(conditions(&stack).await[1].1);

    stack.kill(Daemon::Sandbox);
    let status = conditions(&stack).await;
    assert!(
        !status[0].1 && status[0].3.contains("crimson-sandbox"),
        "{status:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rpcs_not_built_yet_answer_unimplemented_naming_the_rpc() {
    require_root!();
    let stack = Stack::start(StackOptions::default()).await;
    let err = stack
        .runtime()
        .checkpoint_container(CheckpointContainerRequest {
            container_id: "x".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented, "{err:?}");
    assert!(
        err.message().contains("CheckpointContainer"),
        "{}",
        err.message()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_daemon_that_is_down_gives_unavailable_naming_it_then_recovers() {
    require_root!();
    let stack = Stack::start(StackOptions {
        backend_wait_ms: 500,
        ..Default::default()
    })
    .await;
    let mut images = stack.images();
    images
        .list_images(ListImagesRequest::default())
        .await
        .expect("works while crimson-image is up");

    stack.kill(Daemon::Image);
    let answer = tokio::time::timeout(
        Duration::from_secs(20),
        images.image_status(uncached_image_status()),
    )
    .await
    .expect("the front door answers instead of hanging");
    let err = answer.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.message().contains("crimson-image"), "{}", err.message());

    stack.start_daemon(Daemon::Image).await;
    images
        .list_images(ListImagesRequest::default())
        .await
        .expect("recovers without restarting the front door");

    stack.restart(Daemon::Cri).await;
    stack
        .images()
        .list_images(ListImagesRequest::default())
        .await
        .expect("a restarted front door serves again");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hung_daemon_gives_unavailable_instead_of_a_hang() {
    require_root!();
    let stack = Stack::start(StackOptions {
        backend_wait_ms: 500,
        ..Default::default()
    })
    .await;
    let mut images = stack.images();
    images
        .list_images(ListImagesRequest::default())
        .await
        .unwrap();

    let frozen = stack.freeze(Daemon::Image).await;
    let answer = tokio::time::timeout(
        Duration::from_secs(60),
        images.image_status(uncached_image_status()),
    )
    .await;
    stack.thaw(frozen);

    let err = answer
        .expect("the front door gives up on a stopped daemon")
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(err.message().contains("crimson-image"), "{}", err.message());
    images
        .list_images(ListImagesRequest::default())
        .await
        .expect("works again once the daemon runs");
}

#[tokio::test(flavor = "multi_thread")]
async fn sockets_are_group_accessible_only() {
    require_root!();
    use std::os::unix::fs::PermissionsExt;
    let stack = Stack::start(StackOptions::default()).await;
    for daemon in Daemon::ALL {
        let mode = std::fs::metadata(stack.socket(daemon))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o660, "{daemon}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn daemons_stop_cleanly_on_sigterm() {
    require_root!();
    let stack = Stack::start(StackOptions::default()).await;
    for daemon in Daemon::ALL {
        let status = stack.terminate(daemon).expect("daemon was running");
        assert!(status.success(), "{daemon} exited with {status}");
        // The front door's socket belongs to its holder and outlives it.
        assert_eq!(
            stack.socket(daemon).exists(),
            daemon == Daemon::Cri,
            "{daemon} removed its socket unless it is held"
        );
    }
}
