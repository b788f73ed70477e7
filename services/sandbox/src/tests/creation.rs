//! Creation once per kubelet name: retries, concurrent duplicates and callers that go away.

use std::time::Duration;

use super::fakes::{TestSandbox, container_spec, pod_spec};
use crate::{SandboxError, container::create::create_container, pod::run::run_pod};

#[tokio::test]
async fn a_repeated_run_answers_the_same_pod() {
    let sandbox = TestSandbox::new();
    let first = sandbox.run_pod(pod_spec("web")).await;
    let again = sandbox.run_pod(pod_spec("web")).await;
    assert_eq!(first, again);
    assert_eq!(sandbox.node.calls("set_up_network").len(), 1);
    let mut next_attempt = pod_spec("web");
    next_attempt.attempt = 1;
    assert_ne!(sandbox.run_pod(next_attempt).await, first);
}

#[tokio::test]
async fn concurrent_identical_creates_make_one_container() {
    let sandbox = TestSandbox::new();
    let pod = sandbox.run_pod(pod_spec("web")).await;
    let creates =
        (0..4).map(|_| create_container(sandbox.state.clone(), pod.clone(), container_spec("app")));
    let ids: Vec<String> = futures::future::try_join_all(creates).await.unwrap();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert_eq!(
        sandbox.node.calls("create "),
        [format!("create {}", ids[0])]
    );
}

#[tokio::test]
async fn a_creation_whose_caller_went_away_is_kept_for_the_retry() {
    let sandbox = TestSandbox::new();
    let pod = sandbox.run_pod(pod_spec("web")).await;
    let gate = sandbox.node.hold_creations();
    let gone = tokio::time::timeout(
        Duration::from_millis(100),
        create_container(sandbox.state.clone(), pod.clone(), container_spec("app")),
    )
    .await;
    assert!(
        gone.is_err(),
        "the caller gave up while conmon was creating"
    );
    gate.add_permits(1);
    let retried = sandbox.create_container(&pod, container_spec("app")).await;
    assert_eq!(sandbox.node.calls("create "), [format!("create {retried}")]);
    assert_eq!(
        sandbox.container(&retried).phase,
        crate::records::ContainerPhase::Created
    );
}

#[tokio::test]
async fn a_name_whose_container_exited_is_taken() {
    let sandbox = TestSandbox::new();
    let (pod, id) = sandbox.running("web").await;
    sandbox.node.exit(&id, 0);
    crate::container::refresh::current(&sandbox.state, &id)
        .await
        .unwrap();
    let error = create_container(sandbox.state.clone(), pod, container_spec("web"))
        .await
        .expect_err("the name is spent");
    assert!(matches!(error, SandboxError::AlreadyExists(_)), "{error}");
}

#[tokio::test]
async fn a_name_whose_pod_stopped_is_taken() {
    let sandbox = TestSandbox::new();
    let pod = sandbox.run_pod(pod_spec("web")).await;
    crate::pod::stop::stop_pod(&sandbox.state, &pod)
        .await
        .unwrap();
    let error = run_pod(sandbox.state.clone(), pod_spec("web"))
        .await
        .expect_err("the name is spent");
    assert!(matches!(error, SandboxError::AlreadyExists(_)), "{error}");
}
