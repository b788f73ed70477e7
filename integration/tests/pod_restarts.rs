//! Every daemon is killed (-9) and restarted in turn in the middle of the kubelet sequence: the
//! sequence still completes, the container keeps running throughout, and nothing is left.

use std::io::Read;

use crimson_api::storage::v1::ListRootfsRequest;
use crimson_config::Daemon;
use crimson_integration::{
    eventually,
    pods::{PodEnv, assert_nothing_left, http_get, tear_down},
    require_root,
};
use k8s_cri::v1::{
    ContainerState, ContainerStatusRequest, ListContainersRequest, PodSandboxState,
    RemoveContainerRequest, StartContainerRequest, StopContainerRequest, StopPodSandboxRequest,
};

const SERVE: &[&str] = &[
    "sh",
    "-c",
    "mkdir -p /www && echo alive > /www/index.html && exec httpd -f -p 80 -h /www",
];

#[tokio::test(flavor = "multi_thread")]
async fn the_sequence_survives_killing_each_daemon() {
    require_root!();
    let env = PodEnv::start(false).await;
    let pod = env.pod_config("survivor");
    let pod_id = env.run_pod(&pod).await;
    env.stack.restart(Daemon::Cri).await;

    let config = env.container_config("server", SERVE);
    let container_id = env.create_container(&pod_id, &pod, config).await.unwrap();
    env.stack.restart(Daemon::Storage).await;
    env.stack
        .runtime()
        .start_container(k8s_cri::v1::StartContainerRequest {
            container_id: container_id.clone(),
        })
        .await
        .unwrap();
    let running = env
        .wait_for(&container_id, ContainerState::ContainerRunning)
        .await;
    let pid = env
        .stack
        .runtime()
        .container_status(ContainerStatusRequest {
            container_id: container_id.clone(),
            verbose: true,
        })
        .await
        .unwrap()
        .into_inner()
        .info["info"]
        .clone();
    let pid = serde_json::from_str::<serde_json::Value>(&pid).unwrap()["pid"]
        .as_u64()
        .unwrap();
    let ip = env.pod_status(&pod_id).await.network.unwrap().ip;
    eventually(30, "the server to answer", || async {
        http_get(&format!("{ip}:80"))
    })
    .await;

    for daemon in [
        Daemon::Sandbox,
        Daemon::Network,
        Daemon::Image,
        Daemon::Storage,
        Daemon::Cri,
    ] {
        env.stack.restart(daemon).await;
        assert!(
            std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "the container survived restarting {daemon}"
        );
        let status = env.status(&container_id).await;
        assert_eq!(
            status.state,
            ContainerState::ContainerRunning as i32,
            "after restarting {daemon}"
        );
        assert_eq!(status.started_at, running.started_at);
        assert_eq!(
            http_get(&format!("{ip}:80")).as_deref().map(str::trim),
            Some("alive"),
            "after restarting {daemon}"
        );
    }
    let pod_status = env.pod_status(&pod_id).await;
    assert_eq!(pod_status.state, PodSandboxState::SandboxReady as i32);
    assert!(env.stack.image_status(&env.busybox).await.is_some());

    let mut runtime = env.stack.runtime();
    runtime
        .stop_container(StopContainerRequest {
            container_id: container_id.clone(),
            timeout: 5,
        })
        .await
        .unwrap();
    env.stack.restart(Daemon::Sandbox).await;
    let mut runtime2 = env.stack.runtime();
    runtime2
        .remove_container(RemoveContainerRequest { container_id })
        .await
        .unwrap();
    env.stack.restart(Daemon::Network).await;
    runtime
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: pod_id.clone(),
        })
        .await
        .unwrap();
    env.remove_pod_and_check(pod_id).await;
}

/// RemoveContainer answers once the container is durably marked removed; what it holds goes
/// afterwards. Here crimson-storage is down, so the root filesystem cannot go yet, and
/// crimson-sandbox is killed before it could: the restarted daemon finishes the removal once
/// crimson-storage is back.
#[tokio::test(flavor = "multi_thread")]
async fn a_removal_left_unfinished_by_a_kill_is_finished_after_the_restart() {
    require_root!();
    let env = PodEnv::start(false).await;
    let pod = env.pod_config("removed-while-down");
    let pod_id = env.run_pod(&pod).await;
    let config = env.container_config("app", &["sleep", "3600"]);
    let container_id = env.run_container(&pod_id, &pod, config).await;
    let mut runtime = env.stack.runtime();
    runtime
        .stop_container(StopContainerRequest {
            container_id: container_id.clone(),
            timeout: 0,
        })
        .await
        .unwrap();
    env.stack.kill(Daemon::Storage);
    runtime
        .remove_container(RemoveContainerRequest {
            container_id: container_id.clone(),
        })
        .await
        .unwrap();
    assert_gone(&mut runtime, &container_id).await;
    let listed = runtime
        .list_containers(ListContainersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .containers;
    assert!(listed.iter().all(|c| c.id != container_id), "{listed:?}");

    env.stack.restart(Daemon::Sandbox).await;
    env.stack.start_daemon(Daemon::Storage).await;
    eventually(
        30,
        "the container's root filesystem to be removed",
        || async {
            let rootfs = env
                .stack
                .storage()
                .list_rootfs(ListRootfsRequest {})
                .await
                .ok()?
                .into_inner()
                .rootfs;
            rootfs.iter().all(|r| r.id != container_id).then_some(())
        },
    )
    .await;
    assert_gone(&mut runtime, &container_id).await;
    env.remove_pod_and_check(pod_id).await;
}

/// A start interrupted after it let the container's process go (a `runc start`, or
/// crimson-sandbox releasing runc's exec fifo itself, killed between reading the fifo and
/// removing it) leaves a running container that runc still calls created and a fifo nobody
/// will write again: the next StartContainer finishes the start instead of waiting on it.
#[tokio::test(flavor = "multi_thread")]
async fn a_start_interrupted_after_releasing_the_process_is_finished() {
    require_root!();
    let env = PodEnv::start(false).await;
    let pod = env.pod_config("released-early");
    let pod_id = env.run_pod(&pod).await;
    let config = env.container_config("app", &["sleep", "3600"]);
    let container_id = env.create_container(&pod_id, &pod, config).await.unwrap();
    let fifo = env
        .stack
        .run_dir()
        .join("runc")
        .join(&container_id)
        .join("exec.fifo");
    // What the interrupted start did: read the fifo (runc's init writes its byte and execs,
    // which closes its end), and no more.
    let mut released = Vec::new();
    std::fs::File::open(&fifo)
        .and_then(|mut reader| reader.read_to_end(&mut released))
        .expect("reading runc's exec fifo");
    assert_eq!(released, b"0");

    let mut runtime = env.stack.runtime();
    runtime
        .start_container(StartContainerRequest {
            container_id: container_id.clone(),
        })
        .await
        .expect("the start is finished");
    env.wait_for(&container_id, ContainerState::ContainerRunning)
        .await;
    assert!(!fifo.exists(), "runc takes the container for running");
    tear_down(runtime, pod_id, container_id).await.unwrap();
    assert_nothing_left(&env);
}

/// ContainerStatus of `id` answers NOT_FOUND.
async fn assert_gone(runtime: &mut crimson_integration::pods::RuntimeClient, id: &str) {
    let status = runtime
        .container_status(ContainerStatusRequest {
            container_id: id.to_string(),
            verbose: false,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
}
