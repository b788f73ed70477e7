//! Start-up reconciliation of every half-done state a crash can leave.

use super::fakes::{TestSandbox, container_spec, pod_spec};
use crate::{
    reconcile::reconcile,
    records::{ContainerPhase, PodPhase},
};

/// A sandbox whose one container is recorded as still being created, as a kill half-way
/// through CreateContainer leaves it; and that container's id.
async fn interrupted_creation() -> (TestSandbox, String) {
    let sandbox = TestSandbox::new();
    let pod = sandbox.run_pod(pod_spec("web")).await;
    let id = sandbox.create_container(&pod, container_spec("app")).await;
    let mut record = sandbox.container(&id);
    record.phase = ContainerPhase::Creating;
    sandbox.state.save_container(&record).await.unwrap();
    (sandbox, id)
}

#[tokio::test]
async fn an_interrupted_container_creation_is_removed() {
    let (sandbox, id) = interrupted_creation().await;
    let sandbox = sandbox.restart();
    sandbox.node.clear_log();
    reconcile(&sandbox.state).await.unwrap();
    assert_eq!(
        sandbox.node.log(),
        [
            format!("delete --force {id}"),
            format!("remove_rootfs {id}")
        ]
    );
    assert!(sandbox.state.containers.get(&id).unwrap().is_none());
    assert!(!sandbox.state.layout.bundle(&id).exists());
}

#[tokio::test]
async fn an_interrupted_creation_that_cannot_be_removed_yet_is_tried_again() {
    let (sandbox, id) = interrupted_creation().await;
    sandbox
        .node
        .fail("remove_rootfs", "crimson-storage is restarting");
    let healer = {
        let node = sandbox.node.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            node.heal("remove_rootfs");
        })
    };
    reconcile(&sandbox.state).await.unwrap();
    healer.await.unwrap();
    assert!(sandbox.node.calls("remove_rootfs").len() > 1);
    assert!(sandbox.state.containers.get(&id).unwrap().is_none());
}

#[tokio::test]
async fn a_container_that_ended_while_the_daemon_was_down_is_recorded_exited() {
    let sandbox = TestSandbox::new();
    let (_pod, id) = sandbox.running("web").await;
    sandbox.node.exit(&id, 7);
    let sandbox = sandbox.restart();
    reconcile(&sandbox.state).await.unwrap();
    let record = sandbox.container(&id);
    assert_eq!(record.phase, ContainerPhase::Exited);
    assert_eq!(record.exit_code, 7);
    assert!(record.finished_at_nanos >= record.started_at_nanos);
}

#[tokio::test]
async fn running_containers_and_ready_pods_are_left_alone() {
    let sandbox = TestSandbox::new();
    let (pod, id) = sandbox.running("web").await;
    let sandbox = sandbox.restart();
    sandbox.node.clear_log();
    reconcile(&sandbox.state).await.unwrap();
    assert!(sandbox.node.log().is_empty(), "{:?}", sandbox.node.log());
    assert_eq!(sandbox.container(&id).phase, ContainerPhase::Running);
    assert_eq!(sandbox.state.pod(&pod).unwrap().phase, PodPhase::Ready);
}

#[tokio::test]
async fn an_interrupted_pod_creation_is_undone() {
    let sandbox = TestSandbox::new();
    let id = sandbox.run_pod(pod_spec("web")).await;
    let mut record = sandbox.state.pod(&id).unwrap();
    record.phase = PodPhase::Creating;
    sandbox.state.save_pod(&record).await.unwrap();
    let sandbox = sandbox.restart();
    sandbox.node.clear_log();
    reconcile(&sandbox.state).await.unwrap();
    let log = sandbox.node.log();
    for call in [
        format!("tear_down_network {id}"),
        format!("remove_cgroups {:?}", record.created_cgroups),
    ] {
        assert!(log.contains(&call), "{call} missing from {log:?}");
    }
    assert!(sandbox.state.pods.get(&id).unwrap().is_none());
}

#[tokio::test]
async fn a_result_parked_for_a_retry_survives_a_restart() {
    let sandbox = TestSandbox::new();
    let pod = sandbox.run_pod(pod_spec("web")).await;
    let key = crate::records::ContainerRecord::key(&pod, &container_spec("app"));
    sandbox.state.parked.park(&key, "parked-id").await.unwrap();
    let sandbox = sandbox.restart();
    reconcile(&sandbox.state).await.unwrap();
    assert_eq!(
        sandbox.create_container(&pod, container_spec("app")).await,
        "parked-id"
    );
    assert!(sandbox.node.calls("create ").is_empty());
}
