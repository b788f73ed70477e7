//! CreateContainer, StartContainer, StopContainer, UpdateContainerResources and
//! RemoveContainer against the fake node.

use crimson_api::sandbox::v1::Resources;

use super::fakes::{IMAGE, TestSandbox, container_spec, pod_spec};
use crate::{
    SandboxError,
    container::{
        create::create_container, remove::remove_container, start::start_container,
        stop::stop_container, update::update_resources,
    },
    records::ContainerPhase,
};

#[tokio::test]
async fn a_container_is_made_of_its_image_a_root_filesystem_and_a_monitored_create() {
    let sandbox = TestSandbox::new();
    let pod = sandbox.run_pod(pod_spec("web")).await;
    sandbox.node.clear_log();
    let id = sandbox.create_container(&pod, container_spec("app")).await;
    // The monitor starts first (it loads meanwhile) and creates once the bundle is made.
    assert_eq!(
        sandbox.node.log(),
        [
            format!("get_image {IMAGE}"),
            format!("monitor {id}"),
            format!("create_rootfs {id}"),
            format!("create {id}"),
        ]
    );
    let record = sandbox.container(&id);
    assert_eq!(record.phase, ContainerPhase::Created);
    assert_eq!(record.pod_id, pod);
    assert_eq!(sandbox.node.status(&id), Some("created"));
    assert!(record.pid > 0 && record.conmon_pid > 0);
    assert_eq!(record.stop_signal, "SIGTERM", "the image's StopSignal");
    let config = sandbox.state.layout.bundle(&id).join("config.json");
    let spec = oci_spec::runtime::Spec::load(config).expect("the bundle has an OCI config");
    let args = spec.process().as_ref().and_then(|p| p.args().clone());
    assert_eq!(args, Some(vec!["sleep".to_string(), "1000".to_string()]));
}

#[tokio::test]
async fn a_creation_primes_the_runtimes_cgroup_join_in_the_background() {
    let sandbox = TestSandbox::new();
    let pod = sandbox.run_pod(pod_spec("web")).await;
    let before = sandbox.node.migrations_in_place();
    sandbox.create_container(&pod, container_spec("app")).await;
    // The priming migration runs on the blocking pool; it may finish after the creation.
    for _ in 0..5000 {
        if sandbox.node.migrations_in_place() > before {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    panic!("no priming migration after a creation");
}

#[tokio::test]
async fn the_lock_is_kept_warm_by_repeated_rewrites_that_stop_after_the_deadline() {
    let sandbox = TestSandbox::new();
    let rewrites = || sandbox.node.migrations_in_place();
    sandbox.state.migration_primer.keep_warm();
    for _ in 0..5000 {
        if rewrites() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    assert!(
        rewrites() >= 3,
        "rewrites repeat while the lock is kept warm"
    );
    let after_deadline = crate::runtime::migration_primer::WARM_FOR * 2;
    tokio::time::sleep(after_deadline).await;
    let settled = rewrites();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(rewrites(), settled, "no rewrite after the deadline");
}

#[tokio::test]
async fn a_container_of_a_missing_image_is_refused_before_anything_is_made() {
    let sandbox = TestSandbox::new();
    let pod = sandbox.run_pod(pod_spec("web")).await;
    sandbox.node.clear_log();
    let mut spec = container_spec("app");
    spec.image = "registry.test/absent:1".into();
    let error = create_container(sandbox.state.clone(), pod, spec)
        .await
        .expect_err("no such image");
    assert!(
        matches!(error, SandboxError::FailedPrecondition(_)),
        "{error}"
    );
    assert_eq!(sandbox.node.log(), ["get_image registry.test/absent:1"]);
    assert!(sandbox.state.containers.values().unwrap().is_empty());
}

#[tokio::test]
async fn a_failed_create_removes_what_it_made_and_frees_the_name() {
    let sandbox = TestSandbox::new();
    let pod = sandbox.run_pod(pod_spec("web")).await;
    sandbox.node.clear_log();
    sandbox
        .node
        .fail("create", "runc create failed: no space left");
    let error = create_container(sandbox.state.clone(), pod.clone(), container_spec("app"))
        .await
        .expect_err("the monitor fails");
    assert!(error.to_string().contains("no space left"), "{error}");
    let log = sandbox.node.log();
    let id = log[1].strip_prefix("monitor ").expect("a monitor started");
    assert_eq!(
        &log[2..],
        [
            format!("create_rootfs {id}"),
            format!("create {id}"),
            format!("delete --force {id}"),
            format!("remove_rootfs {id}"),
        ]
    );
    assert!(sandbox.state.containers.values().unwrap().is_empty());
    assert!(!sandbox.state.layout.bundle(id).exists());

    sandbox.node.heal("create");
    let again = sandbox.create_container(&pod, container_spec("app")).await;
    assert_ne!(again, id);
}

#[tokio::test]
async fn a_monitor_whose_bundle_cannot_be_made_is_killed_before_it_creates() {
    let sandbox = TestSandbox::new();
    let pod = sandbox.run_pod(pod_spec("web")).await;
    sandbox.node.clear_log();
    sandbox
        .node
        .fail("create_rootfs", "no space left on device");
    create_container(sandbox.state.clone(), pod, container_spec("app"))
        .await
        .expect_err("no root filesystem");
    let log = sandbox.node.log();
    let id = log[1].strip_prefix("monitor ").expect("a monitor started");
    assert_eq!(
        &log[2..],
        [
            format!("create_rootfs {id}"),
            format!("kill monitor {id}"),
            format!("delete --force {id}"),
            format!("remove_rootfs {id}"),
        ]
    );
    assert!(sandbox.state.containers.values().unwrap().is_empty());
}

#[tokio::test]
async fn containers_are_created_only_in_ready_pods() {
    let sandbox = TestSandbox::new();
    let pod = sandbox.run_pod(pod_spec("web")).await;
    crate::pod::stop::stop_pod(&sandbox.state, &pod)
        .await
        .unwrap();
    let error = create_container(sandbox.state.clone(), pod, container_spec("app"))
        .await
        .expect_err("the pod is stopped");
    assert!(
        matches!(error, SandboxError::FailedPrecondition(_)),
        "{error}"
    );
    let error = create_container(sandbox.state.clone(), "nope".into(), container_spec("app"))
        .await
        .expect_err("no such pod");
    assert!(matches!(error, SandboxError::PodNotFound(_)), "{error}");
}

#[tokio::test]
async fn a_start_runs_a_created_container_once() {
    let sandbox = TestSandbox::new();
    let pod = sandbox.run_pod(pod_spec("web")).await;
    let id = sandbox.create_container(&pod, container_spec("app")).await;
    start_container(&sandbox.state, &id).await.unwrap();
    let record = sandbox.container(&id);
    assert_eq!(record.phase, ContainerPhase::Running);
    assert!(record.started_at_nanos > 0);
    assert_eq!(sandbox.node.status(&id), Some("running"));
    // A repeated start (its answer was lost) succeeds without the runtime.
    start_container(&sandbox.state, &id).await.unwrap();
    assert_eq!(sandbox.node.calls("start"), [format!("start {id}")]);
}

#[tokio::test]
async fn a_failed_start_leaves_the_container_created() {
    let sandbox = TestSandbox::new();
    let pod = sandbox.run_pod(pod_spec("web")).await;
    let id = sandbox.create_container(&pod, container_spec("app")).await;
    sandbox.node.fail("start", "exec: no such file");
    let error = start_container(&sandbox.state, &id)
        .await
        .expect_err("the runtime fails");
    assert!(error.to_string().contains("no such file"), "{error}");
    assert_eq!(sandbox.container(&id).phase, ContainerPhase::Created);
}

#[tokio::test]
async fn a_start_the_runtime_did_before_its_error_counts_as_done() {
    let sandbox = TestSandbox::new();
    let pod = sandbox.run_pod(pod_spec("web")).await;
    let id = sandbox.create_container(&pod, container_spec("app")).await;
    // A `runc start` killed after it released the process.
    sandbox.node.fail_after("start", "signal: killed");
    start_container(&sandbox.state, &id).await.unwrap();
    assert_eq!(sandbox.container(&id).phase, ContainerPhase::Running);
}

#[tokio::test]
async fn an_exited_container_cannot_start_again() {
    let sandbox = TestSandbox::new();
    let (_pod, id) = sandbox.running("web").await;
    sandbox.node.exit(&id, 3);
    let error = start_container(&sandbox.state, &id)
        .await
        .expect_err("it exited");
    assert!(
        matches!(error, SandboxError::FailedPrecondition(_)),
        "{error}"
    );
    let record = sandbox.container(&id);
    assert_eq!(record.phase, ContainerPhase::Exited);
    assert_eq!((record.exit_code, record.reason.as_str()), (3, "Error"));
}

#[tokio::test]
async fn a_stop_sends_the_stop_signal_and_records_the_exit() {
    let sandbox = TestSandbox::new();
    let (_pod, id) = sandbox.running("web").await;
    stop_container(&sandbox.state, &id, 30).await.unwrap();
    assert_eq!(sandbox.node.calls("kill"), [format!("kill {id} 15")]);
    let record = sandbox.container(&id);
    assert_eq!(record.phase, ContainerPhase::Exited);
    assert_eq!(record.exit_code, 128 + 15);
    // Stopping it again, or an unknown container, succeeds and does nothing.
    stop_container(&sandbox.state, &id, 30).await.unwrap();
    stop_container(&sandbox.state, "unknown", 30).await.unwrap();
    assert_eq!(sandbox.node.calls("kill").len(), 1);
}

#[tokio::test]
async fn a_container_that_ignores_its_stop_signal_is_killed_after_the_grace_period() {
    let sandbox = TestSandbox::new();
    let (_pod, id) = sandbox.running("web").await;
    sandbox.node.ignore_signal("15");
    stop_container(&sandbox.state, &id, 1).await.unwrap();
    assert_eq!(
        sandbox.node.calls("kill"),
        [format!("kill {id} 15"), format!("kill {id} KILL")]
    );
    assert_eq!(sandbox.container(&id).exit_code, 128 + 9);
}

#[tokio::test]
async fn no_grace_period_means_sigkill_at_once_and_any_timeout_is_taken() {
    let sandbox = TestSandbox::new();
    let (_pod, first) = sandbox.running("first").await;
    stop_container(&sandbox.state, &first, 0).await.unwrap();
    assert_eq!(sandbox.node.calls("kill"), [format!("kill {first} KILL")]);

    let (_pod, second) = sandbox.running("second").await;
    stop_container(&sandbox.state, &second, i64::MAX)
        .await
        .unwrap();
    assert_eq!(sandbox.container(&second).phase, ContainerPhase::Exited);
}

#[tokio::test]
async fn the_image_stop_signal_is_sent_by_number() {
    let sandbox = TestSandbox::new();
    let pod = sandbox.run_pod(pod_spec("web")).await;
    let mut image = super::fakes::image(IMAGE);
    image.config_json = super::fakes::image_config(r#"{"StopSignal":"SIGQUIT"}"#);
    sandbox.node.add_image(IMAGE, image);
    let id = sandbox.create_container(&pod, container_spec("app")).await;
    start_container(&sandbox.state, &id).await.unwrap();
    stop_container(&sandbox.state, &id, 10).await.unwrap();
    assert_eq!(sandbox.node.calls("kill"), [format!("kill {id} 3")]);
}

#[tokio::test]
async fn resources_go_to_the_runtime_as_oci_json() {
    let sandbox = TestSandbox::new();
    let (_pod, id) = sandbox.running("web").await;
    let resources = Resources {
        cpu_shares: 512,
        memory_limit_in_bytes: 64 << 20,
        ..Default::default()
    };
    update_resources(&sandbox.state, &id, resources)
        .await
        .unwrap();
    let applied = sandbox.node.calls("resources ");
    let json: serde_json::Value =
        serde_json::from_str(applied[0].trim_start_matches("resources ")).unwrap();
    assert_eq!(json["cpu"]["shares"], 512);
    assert_eq!(json["memory"]["limit"], 64 << 20);
}

#[tokio::test]
async fn a_removed_container_is_gone_at_once_and_its_leftovers_soon_after() {
    let sandbox = TestSandbox::new();
    let (_pod, id) = sandbox.running("web").await;
    remove_container(&sandbox.state, &id).await.unwrap();
    assert!(matches!(
        sandbox.state.container(&id),
        Err(SandboxError::ContainerNotFound(_))
    ));
    for _ in 0..200 {
        if sandbox.state.containers.get(&id).unwrap().is_none() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(sandbox.state.containers.get(&id).unwrap().is_none());
    assert_eq!(sandbox.node.status(&id), None, "runtime state deleted");
    assert!(sandbox.node.log().contains(&format!("remove_rootfs {id}")));
    assert!(!sandbox.state.layout.bundle(&id).exists());
    // Removing it again succeeds.
    remove_container(&sandbox.state, &id).await.unwrap();
}
