//! What kubelet relies on: idempotent stop and remove, the same creation request answered with
//! the same pod or container (ALREADY_EXISTS once it is spent), retries after a deadline get
//! the first attempt's pod, exits seen after a sandbox restart,
//! and stop grace periods.

use std::{sync::Arc, time::Duration};

use crimson_config::Daemon;
use crimson_integration::{pods::PodEnv, require_root, stack::StackOptions};
use k8s_cri::v1::{
    ContainerState, ListPodSandboxRequest, PodSandboxConfig, PodSandboxFilter,
    RemoveContainerRequest, RemovePodSandboxRequest, RunPodSandboxRequest, StartContainerRequest,
    StopContainerRequest, StopPodSandboxRequest,
};
use tonic::Code;

#[tokio::test(flavor = "multi_thread")]
async fn stop_and_remove_of_unknown_ids_succeed() {
    require_root!();
    let env = PodEnv::start(false).await;
    let mut runtime = env.stack.runtime();
    let unknown = "0123456789abcdef".repeat(4);
    runtime
        .stop_container(StopContainerRequest {
            container_id: unknown.clone(),
            timeout: 0,
        })
        .await
        .unwrap();
    runtime
        .remove_container(RemoveContainerRequest {
            container_id: unknown.clone(),
        })
        .await
        .unwrap();
    runtime
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: unknown.clone(),
        })
        .await
        .unwrap();
    runtime
        .remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: unknown,
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicate_names_are_refused_and_deadline_retries_get_the_same_pod() {
    require_root!();
    // A network whose ADD takes a second, so the hurried first attempt is still being worked
    // on when its caller gives up.
    let plugins = tempfile::tempdir().unwrap();
    let env = env_with_plugin(&plugins, "slow", SLOW_ADD, None).await;
    let pod = env.pod_config("dup");
    let mut runtime = env.stack.runtime();

    let first = runtime.run_pod_sandbox(hurried(&pod)).await;
    let timed_out = first.unwrap_err();
    // The server answers DEADLINE_EXCEEDED; tonic's client may give up first with its own
    // CANCELLED.
    assert!(
        matches!(timed_out.code(), Code::DeadlineExceeded | Code::Cancelled),
        "the first attempt runs out of time: {timed_out:?}"
    );

    let retried = env.run_pod(&pod).await;
    let listed = runtime
        .list_pod_sandbox(ListPodSandboxRequest {
            filter: Some(PodSandboxFilter::default()),
        })
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(listed.len(), 1, "one pod, not two: {listed:?}");
    assert_eq!(
        listed[0].id, retried,
        "the retry got the first attempt's pod"
    );

    // Asked again (its answer may have been lost with a daemon that was killed), the same
    // request answers the same ready pod.
    let again = runtime
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(pod.clone()),
            runtime_handler: String::new(),
        })
        .await
        .expect("the same RunPodSandbox again")
        .into_inner()
        .pod_sandbox_id;
    assert_eq!(again, retried);

    let config = env.container_config("same", &["sleep", "300"]);
    let container_id = env
        .create_container(&retried, &pod, config.clone())
        .await
        .unwrap();
    // A repeated start (the retry of one whose answer was lost) succeeds.
    for _ in 0..2 {
        runtime
            .start_container(StartContainerRequest {
                container_id: container_id.clone(),
            })
            .await
            .expect("StartContainer");
    }
    let twice = env
        .create_container(&retried, &pod, config.clone())
        .await
        .expect("the same CreateContainer again");
    assert_eq!(
        twice, container_id,
        "the same request answers the same container"
    );

    // Once spent (the pod stopped, the container exited), the name is taken.
    runtime
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: retried.clone(),
        })
        .await
        .unwrap();
    let spent = env
        .create_container(&retried, &pod, config)
        .await
        .unwrap_err();
    assert_eq!(spent.code(), Code::AlreadyExists, "{spent:?}");
    let stopped = runtime
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(pod.clone()),
            runtime_handler: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(stopped.code(), Code::AlreadyExists, "{stopped:?}");

    env.remove_pod_and_check(retried).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_result_kept_for_a_retry_survives_a_sandbox_restart() {
    require_root!();
    let plugins = tempfile::tempdir().unwrap();
    let env = env_with_plugin(&plugins, "slow", SLOW_ADD, None).await;
    let pod = env.pod_config("kept");
    let mut runtime = env.stack.runtime();
    runtime
        .run_pod_sandbox(hurried(&pod))
        .await
        .expect_err("the first attempt runs out of time");
    crimson_integration::eventually(30, "the abandoned pod to be kept for its retry", || async {
        env.stack
            .log(Daemon::Sandbox)
            .contains("result kept for its retry")
            .then_some(())
    })
    .await;

    env.stack.restart(Daemon::Sandbox).await;
    let retried = env.run_pod(&pod).await;
    assert_eq!(
        pod_ids(&env).await,
        [retried.as_str()],
        "the retry got the kept pod"
    );
    env.remove_pod_and_check(retried).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_start_survives_a_sandbox_kill_in_the_middle() {
    require_root!();
    let plugins = tempfile::tempdir().unwrap();
    let env = env_with_plugin(&plugins, "slow", SLOW_ADD, None).await;
    let pod = env.pod_config("interrupted");
    let request = RunPodSandboxRequest {
        config: Some(pod.clone()),
        runtime_handler: String::new(),
    };
    let mut runtime = env.stack.runtime();
    let call = tokio::spawn(async move { runtime.run_pod_sandbox(request).await });
    // The pod's network namespace is pinned just before the (slow) CNI ADD.
    let netns_dir = env.stack.run_dir().join("netns");
    crimson_integration::eventually(30, "the pod's network to be set up", || async {
        std::fs::read_dir(&netns_dir)
            .is_ok_and(|mut entries| entries.next().is_some())
            .then_some(())
    })
    .await;
    env.stack.kill(Daemon::Sandbox);
    env.stack.start_daemon(Daemon::Sandbox).await;

    let pod_id = call
        .await
        .unwrap()
        .expect("the front door retries the call the kill broke")
        .into_inner()
        .pod_sandbox_id;
    assert_eq!(
        pod_ids(&env).await,
        [pod_id.as_str()],
        "the half-made pod was undone"
    );
    env.remove_pod_and_check(pod_id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exit_while_the_sandbox_daemon_is_down_is_reported_after_its_restart() {
    require_root!();
    let env = PodEnv::start(false).await;
    let pod = env.pod_config("exit-while-down");
    let pod_id = env.run_pod(&pod).await;
    let id = env
        .run_container(
            &pod_id,
            &pod,
            env.container_config("brief", &["sh", "-c", "sleep 2; exit 7"]),
        )
        .await;

    env.stack.kill(Daemon::Sandbox);
    tokio::time::sleep(Duration::from_secs(3)).await;
    env.stack.start_daemon(Daemon::Sandbox).await;

    let status = env.wait_for(&id, ContainerState::ContainerExited).await;
    assert_eq!(status.exit_code, 7);
    env.remove_pod_and_check(pod_id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_sends_the_stop_signal_then_kills() {
    require_root!();
    let env = PodEnv::start(false).await;
    let pod = env.pod_config("stopping");
    let pod_id = env.run_pod(&pod).await;
    let mut runtime = env.stack.runtime();

    let graceful = [
        "sh",
        "-c",
        "trap 'echo got TERM; exit 0' TERM; while true; do sleep 0.1; done",
    ];
    let id = env
        .run_container(&pod_id, &pod, env.container_config("graceful", &graceful))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    runtime
        .stop_container(StopContainerRequest {
            container_id: id.clone(),
            timeout: 30,
        })
        .await
        .unwrap();
    let status = env.wait_for(&id, ContainerState::ContainerExited).await;
    assert_eq!(
        (status.exit_code, status.reason.as_str()),
        (0, "Completed"),
        "the trap ran"
    );

    let stubborn = ["sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"];
    let id = env
        .run_container(&pod_id, &pod, env.container_config("stubborn", &stubborn))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    runtime
        .stop_container(StopContainerRequest {
            container_id: id.clone(),
            timeout: 1,
        })
        .await
        .unwrap();
    let status = env.status(&id).await;
    assert_eq!(
        status.state,
        ContainerState::ContainerExited as i32,
        "StopContainer returns once the process is gone"
    );
    assert_eq!(status.exit_code, 137, "killed by SIGKILL");
    runtime
        .stop_container(StopContainerRequest {
            container_id: id,
            timeout: 1,
        })
        .await
        .expect("stopping twice is fine");

    env.remove_pod_and_check(pod_id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hung_cni_plugin_fails_the_pod_in_time_and_the_retry_proceeds() {
    require_root!();
    // A plugin that never answers ADD (and detaches fine).
    let plugins = tempfile::tempdir().unwrap();
    let env = env_with_plugin(
        &plugins,
        "hang",
        "[ \"$CNI_COMMAND\" = ADD ] && exec sleep 3600\nexit 0",
        Some(2),
    )
    .await;
    let hung_network = env.stack.cni_conf_dir().join("00-hang.conflist");
    let pod = env.pod_config("stalled");
    let request = RunPodSandboxRequest {
        config: Some(pod.clone()),
        runtime_handler: String::new(),
    };
    let mut runtime = env.stack.runtime();
    // kubelet retries the same request: each attempt fails on its own, none waits forever.
    for attempt in 0..2 {
        let answer = tokio::time::timeout(
            Duration::from_secs(60),
            runtime.run_pod_sandbox(request.clone()),
        )
        .await
        .expect("RunPodSandbox answers once the plugin's time is up");
        let error = answer.expect_err("the pod cannot be attached");
        assert_eq!(
            error.code(),
            Code::DeadlineExceeded,
            "attempt {attempt}: {error:?}"
        );
        assert!(error.message().contains("CNI plugin"), "{error:?}");
    }
    let pods = pod_ids(&env).await;
    assert!(pods.is_empty(), "the failed pod was undone: {pods:?}");
    crimson_integration::pods::assert_nothing_left(&env);

    // Once the network is healthy again, the same request makes the pod.
    std::fs::remove_file(&hung_network).unwrap();
    let pod_id = runtime
        .run_pod_sandbox(request)
        .await
        .expect("the retry proceeds")
        .into_inner()
        .pod_sandbox_id;
    env.remove_pod_and_check(pod_id).await;
}

/// RunPodSandbox of `pod` with a deadline too short for any pod start.
fn hurried(pod: &PodSandboxConfig) -> tonic::Request<RunPodSandboxRequest> {
    let mut request = tonic::Request::new(RunPodSandboxRequest {
        config: Some(pod.clone()),
        runtime_handler: String::new(),
    });
    request.set_timeout(Duration::from_millis(50));
    request
}

/// Ids of the pods the front door lists.
async fn pod_ids(env: &PodEnv) -> Vec<String> {
    env.pods().await.into_iter().map(|pod| pod.id).collect()
}

/// A CNI plugin whose ADD takes a second (and attaches nothing); DEL succeeds.
const SLOW_ADD: &str =
    "[ \"$CNI_COMMAND\" = ADD ] && sleep 1 && echo '{\"cniVersion\": \"1.0.0\"}'\nexit 0";

/// A pod env whose first CNI network is a single plugin `name` running the shell `script`
/// (installed in `dir`, searched before Debian's plugins), with more `[network]` TOML.
async fn env_with_plugin(
    dir: &tempfile::TempDir,
    name: &str,
    script: &str,
    plugin_timeout_secs: Option<u64>,
) -> PodEnv {
    let plugin = dir.path().join(name);
    std::fs::write(&plugin, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&plugin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let env = PodEnv::start_with(
        false,
        StackOptions {
            configure: Some(Arc::new(move |config| {
                if let Some(seconds) = plugin_timeout_secs {
                    config.network.plugin_timeout_secs = seconds;
                }
            })),
            cni_bin_dir: Some(dir.path().to_path_buf()),
            ..Default::default()
        },
    )
    .await;
    std::fs::write(
        env.stack.cni_conf_dir().join(format!("00-{name}.conflist")),
        format!(
            r#"{{"cniVersion": "1.0.0", "name": "{name}", "plugins": [{{"type": "{name}"}}]}}"#
        ),
    )
    .unwrap();
    env
}
