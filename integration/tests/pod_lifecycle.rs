//! The kubelet sequence through the front door with real runc, conmon and CNI plugins:
//! RunPodSandbox → PodSandboxStatus → PullImage → CreateContainer → StartContainer →
//! ContainerStatus → logs → StopContainer → RemoveContainer → StopPodSandbox → RemovePodSandbox.

use crimson_config::Daemon;
use crimson_integration::{
    pods::{PodEnv, assert_nothing_left, lines_of, read_log},
    require_root,
};
use k8s_cri::v1::{
    ContainerState, ExecSyncRequest, ListContainersRequest, ListPodSandboxRequest, PodSandboxState,
    PodSandboxStatusRequest, RemoveContainerRequest, RemovePodSandboxRequest,
    StartContainerRequest, StopContainerRequest, StopPodSandboxRequest,
};

#[tokio::test(flavor = "multi_thread")]
async fn the_kubelet_sequence_runs_a_container_and_cleans_up() {
    require_root!();
    let env = PodEnv::start(false).await;
    let pod = env.pod_config("web");
    let pod_id = env.run_pod(&pod).await;
    let mut runtime = env.stack.runtime();

    let status = runtime
        .pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: pod_id.clone(),
            verbose: true,
        })
        .await
        .unwrap()
        .into_inner();
    let pod_status = status.status.unwrap();
    assert_eq!(pod_status.state, PodSandboxState::SandboxReady as i32);
    let ip = pod_status.network.unwrap().ip;
    assert!(
        ip.starts_with(env.network.subnet.rsplit_once('.').unwrap().0),
        "pod IP {ip} in {}",
        env.network.subnet
    );
    assert!(status.info.contains_key("info"));

    let config = env.container_config(
        "talker",
        &[
            "sh",
            "-c",
            "echo to stdout; echo to stderr >&2; echo $GREETING; exit 3",
        ],
    );
    let container_id = env.run_container(&pod_id, &pod, config).await;
    let exited = env
        .wait_for(&container_id, ContainerState::ContainerExited)
        .await;
    assert_eq!(exited.exit_code, 3);
    assert_eq!(exited.reason, "Error");
    assert!(exited.started_at > 0 && exited.finished_at >= exited.started_at);
    assert!(
        exited.image_ref.contains("busybox@sha256:"),
        "{}",
        exited.image_ref
    );
    let log = read_log(&exited.log_path.into());
    assert_eq!(lines_of(&log, "stdout"), ["to stdout", "hello"]);
    assert_eq!(lines_of(&log, "stderr"), ["to stderr"]);

    let listed = runtime
        .list_containers(ListContainersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .containers;
    assert_eq!(listed.len(), 1, "the infra process is not listed");

    runtime
        .stop_container(StopContainerRequest {
            container_id: container_id.clone(),
            timeout: 10,
        })
        .await
        .unwrap();
    runtime
        .remove_container(RemoveContainerRequest {
            container_id: container_id.clone(),
        })
        .await
        .unwrap();
    runtime
        .remove_container(RemoveContainerRequest { container_id })
        .await
        .expect("RemoveContainer is idempotent");
    runtime
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: pod_id.clone(),
        })
        .await
        .unwrap();
    runtime
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: pod_id.clone(),
        })
        .await
        .expect("StopPodSandbox is idempotent");
    runtime
        .remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: pod_id.clone(),
        })
        .await
        .unwrap();
    runtime
        .remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: pod_id,
        })
        .await
        .expect("RemovePodSandbox is idempotent");
    let pods = runtime
        .list_pod_sandbox(ListPodSandboxRequest::default())
        .await
        .unwrap()
        .into_inner()
        .items;
    assert!(pods.is_empty());
    assert_nothing_left(&env);
}

/// StartContainer answers once the container's own process runs, not runc's init on its way
/// to it (which catches every signal): a StopContainer sent right after the start sees the
/// signal handling of the process that gets its signal.
#[tokio::test(flavor = "multi_thread")]
async fn a_started_container_runs_its_own_process() {
    require_root!();
    let env = PodEnv::start(false).await;
    let pod = env.pod_config("started");
    let pod_id = env.run_pod(&pod).await;
    let mut runtime = env.stack.runtime();
    for attempt in 0..20 {
        let config = env.container_config(&format!("app-{attempt}"), &["sleep", "3600"]);
        let id = env.create_container(&pod_id, &pod, config).await.unwrap();
        let pid = env.container_info(&id).await["pid"].as_u64().unwrap();
        runtime
            .start_container(StartContainerRequest {
                container_id: id.clone(),
            })
            .await
            .unwrap();
        let command = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
        assert_eq!(command.trim(), "sleep", "start {attempt}");
        runtime
            .stop_container(StopContainerRequest {
                container_id: id.clone(),
                timeout: 0,
            })
            .await
            .unwrap();
        runtime
            .remove_container(RemoveContainerRequest { container_id: id })
            .await
            .unwrap();
    }
    env.remove_pod_and_check(pod_id).await;
}

/// While a creation or exec is on its way, crimson-sandbox keeps moving one of its threads into
/// its own cgroup (which keeps the kernel's migration lock warm for runc): it must stay where
/// it is.
#[tokio::test(flavor = "multi_thread")]
async fn priming_the_cgroup_join_leaves_the_daemon_in_its_cgroups() {
    require_root!();
    let env = PodEnv::start(false).await;
    let sandbox = env
        .stack
        .pid(Daemon::Sandbox)
        .expect("crimson-sandbox runs");
    let membership = || std::fs::read_to_string(format!("/proc/{sandbox}/cgroup")).unwrap();
    let before = membership();
    let pod = env.pod_config("primed");
    let pod_id = env.run_pod(&pod).await;
    let config = env.container_config("sleeper", &["sleep", "3600"]);
    let id = env.run_container(&pod_id, &pod, config).await;
    let exec = env
        .stack
        .runtime()
        .exec_sync(ExecSyncRequest {
            container_id: id,
            cmd: vec!["true".into()],
            timeout: 10,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(exec.exit_code, 0);
    assert_eq!(membership(), before);
    env.remove_pod_and_check(pod_id).await;
}
