//! What kubelet reads and adjusts: list filters, stats from the cgroups, the container event
//! stream, resource updates and log reopening.

use std::{collections::HashMap, time::Duration};

use crimson_integration::{
    eventually,
    pods::{PodEnv, assert_nothing_left, read_log},
    require_root,
};
use k8s_cri::v1::{
    ContainerEventType, ContainerFilter, ContainerState, ContainerStateValue, ContainerStatsFilter,
    ContainerStatsRequest, GetEventsRequest, LinuxContainerResources, ListContainerStatsRequest,
    ListContainersRequest, ListPodSandboxRequest, ListPodSandboxStatsRequest, PodSandboxFilter,
    PodSandboxState, PodSandboxStateValue, PodSandboxStatsRequest, RemoveContainerRequest,
    RemovePodSandboxRequest, ReopenContainerLogRequest, StopPodSandboxRequest,
    UpdateContainerResourcesRequest,
};
use tokio_stream::StreamExt;

#[tokio::test(flavor = "multi_thread")]
async fn list_filters_by_id_state_pod_and_labels() {
    require_root!();
    let env = PodEnv::start(false).await;
    let (pod_a, pod_b) = (env.pod_config("alpha"), env.pod_config("beta"));
    let (a, b) = (env.run_pod(&pod_a).await, env.run_pod(&pod_b).await);
    let long = env
        .run_container(&a, &pod_a, env.container_config("long", &["sleep", "300"]))
        .await;
    let done = env
        .run_container(&b, &pod_b, env.container_config("done", &["true"]))
        .await;
    env.wait_for(&done, ContainerState::ContainerExited).await;
    let mut runtime = env.stack.runtime();
    runtime
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: b.clone(),
        })
        .await
        .unwrap();

    let pods = |filter: PodSandboxFilter| {
        let mut runtime = runtime.clone();
        async move {
            runtime
                .list_pod_sandbox(ListPodSandboxRequest {
                    filter: Some(filter),
                })
                .await
                .unwrap()
                .into_inner()
                .items
        }
    };
    assert_eq!(pods(PodSandboxFilter::default()).await.len(), 2);
    assert_eq!(
        pods(PodSandboxFilter {
            id: a[..12].to_string(),
            ..Default::default()
        })
        .await[0]
            .id,
        a
    );
    let ready = pods(PodSandboxFilter {
        state: Some(PodSandboxStateValue {
            state: PodSandboxState::SandboxReady as i32,
        }),
        ..Default::default()
    })
    .await;
    assert_eq!(
        ready.iter().map(|p| p.id.clone()).collect::<Vec<_>>(),
        vec![a.clone()]
    );
    let labelled = pods(PodSandboxFilter {
        label_selector: HashMap::from([("app".into(), "beta".into())]),
        ..Default::default()
    })
    .await;
    assert_eq!(
        labelled.iter().map(|p| p.id.clone()).collect::<Vec<_>>(),
        vec![b.clone()]
    );

    let containers = |filter: ContainerFilter| {
        let mut runtime = runtime.clone();
        async move {
            runtime
                .list_containers(ListContainersRequest {
                    filter: Some(filter),
                })
                .await
                .unwrap()
                .into_inner()
                .containers
        }
    };
    let running = containers(ContainerFilter {
        state: Some(ContainerStateValue {
            state: ContainerState::ContainerRunning as i32,
        }),
        ..Default::default()
    })
    .await;
    assert_eq!(
        running.iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
        vec![long.clone()]
    );
    let of_b = containers(ContainerFilter {
        pod_sandbox_id: b.clone(),
        ..Default::default()
    })
    .await;
    assert_eq!(
        of_b.iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
        vec![done.clone()]
    );
    let by_label = containers(ContainerFilter {
        label_selector: HashMap::from([("container".into(), "long".into())]),
        ..Default::default()
    })
    .await;
    assert_eq!(by_label.len(), 1);

    for pod in [a, b] {
        runtime
            .remove_pod_sandbox(RemovePodSandboxRequest {
                pod_sandbox_id: pod,
            })
            .await
            .unwrap();
    }
    assert_nothing_left(&env);
}

#[tokio::test(flavor = "multi_thread")]
async fn stats_come_from_the_cgroups_and_the_writable_layer() {
    require_root!();
    let env = PodEnv::start(false).await;
    let pod = env.pod_config("stats");
    let pod_id = env.run_pod(&pod).await;
    let busy = [
        "sh",
        "-c",
        "dd if=/dev/zero of=/data bs=1M count=4 2>/dev/null; i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; sleep 300",
    ];
    let id = env
        .run_container(&pod_id, &pod, env.container_config("busy", &busy))
        .await;
    let mut runtime = env.stack.runtime();

    let stats = eventually(60, "CPU use and a written file to show", || {
        let mut runtime = runtime.clone();
        let id = id.clone();
        async move {
            let stats = runtime
                .container_stats(ContainerStatsRequest { container_id: id })
                .await
                .ok()?
                .into_inner()
                .stats?;
            let cpu = stats.cpu.as_ref()?.usage_core_nano_seconds.as_ref()?.value;
            let layer = stats.writable_layer.as_ref()?.used_bytes.as_ref()?.value;
            (cpu > 0 && layer >= 4 * 1024 * 1024).then_some(stats)
        }
    })
    .await;
    assert!(stats.memory.unwrap().working_set_bytes.unwrap().value > 0);
    assert_eq!(stats.attributes.unwrap().metadata.unwrap().name, "busy");

    // One call measures every container; each gets its own figures.
    env.run_container(
        &pod_id,
        &pod,
        env.container_config("idle", &["sleep", "300"]),
    )
    .await;
    let listed = runtime
        .list_container_stats(ListContainerStatsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .stats;
    let layer_of = |name: &str| {
        let found = listed
            .iter()
            .find(|s| {
                s.attributes
                    .as_ref()
                    .unwrap()
                    .metadata
                    .as_ref()
                    .unwrap()
                    .name
                    == name
            })
            .unwrap_or_else(|| panic!("{name} is listed: {listed:?}"));
        found
            .writable_layer
            .as_ref()
            .unwrap()
            .used_bytes
            .as_ref()
            .unwrap()
            .value
    };
    assert_eq!(listed.len(), 2);
    assert!(layer_of("busy") >= 4 * 1024 * 1024);
    assert!(
        layer_of("idle") < 1024 * 1024,
        "the idle container wrote nothing"
    );

    let listed = runtime
        .list_container_stats(ListContainerStatsRequest {
            filter: Some(ContainerStatsFilter {
                label_selector: HashMap::from([("container".into(), "nope".into())]),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .stats;
    assert!(listed.is_empty(), "label selectors filter stats");
    let pod_stats = runtime
        .pod_sandbox_stats(PodSandboxStatsRequest {
            pod_sandbox_id: pod_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .stats
        .unwrap();
    let linux = pod_stats.linux.unwrap();
    assert!(linux.cpu.unwrap().usage_core_nano_seconds.unwrap().value > 0);
    assert_eq!(linux.containers.len(), 2);
    let all = runtime
        .list_pod_sandbox_stats(ListPodSandboxStatsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .stats;
    assert_eq!(all.len(), 1);

    env.remove_pod_and_check(pod_id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn events_stream_created_started_stopped_deleted() {
    require_root!();
    let env = PodEnv::start(false).await;
    let pod = env.pod_config("events");
    let pod_id = env.run_pod(&pod).await;
    let mut events = env
        .stack
        .runtime()
        .get_container_events(GetEventsRequest {})
        .await
        .unwrap()
        .into_inner();

    let id = env
        .run_container(&pod_id, &pod, env.container_config("brief", &["true"]))
        .await;
    env.wait_for(&id, ContainerState::ContainerExited).await;
    env.stack
        .runtime()
        .remove_container(RemoveContainerRequest {
            container_id: id.clone(),
        })
        .await
        .unwrap();

    let mut seen = Vec::new();
    while seen.len() < 4 {
        let event = tokio::time::timeout(Duration::from_secs(30), events.next())
            .await
            .expect("an event")
            .unwrap()
            .unwrap();
        assert_eq!(event.container_id, id);
        assert!(event.pod_sandbox_status.is_some());
        seen.push(event.container_event_type);
    }
    let expected = [
        ContainerEventType::ContainerCreatedEvent,
        ContainerEventType::ContainerStartedEvent,
        ContainerEventType::ContainerStoppedEvent,
        ContainerEventType::ContainerDeletedEvent,
    ];
    assert_eq!(seen, expected.map(|e| e as i32));
    env.remove_pod_and_check(pod_id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn resources_can_be_updated_and_logs_reopened() {
    require_root!();
    let env = PodEnv::start(false).await;
    let pod = env.pod_config("update");
    let pod_id = env.run_pod(&pod).await;
    let ticker = ["sh", "-c", "while true; do echo tick; sleep 0.2; done"];
    let id = env
        .run_container(&pod_id, &pod, env.container_config("ticker", &ticker))
        .await;
    let mut runtime = env.stack.runtime();

    runtime
        .update_container_resources(UpdateContainerResourcesRequest {
            container_id: id.clone(),
            linux: Some(LinuxContainerResources {
                memory_limit_in_bytes: 96 * 1024 * 1024,
                cpu_shares: 256,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    let status = runtime
        .container_status(k8s_cri::v1::ContainerStatusRequest {
            container_id: id.clone(),
            verbose: true,
        })
        .await
        .unwrap()
        .into_inner();
    let info: serde_json::Value = serde_json::from_str(&status.info["info"]).unwrap();
    let cgroup = info["cgroupPath"]
        .as_str()
        .unwrap()
        .trim_start_matches('/')
        .to_string();
    let limit = std::fs::read_to_string(format!(
        "/sys/fs/cgroup/memory/{cgroup}/memory.limit_in_bytes"
    ))
    .unwrap();
    assert_eq!(limit.trim(), (96 * 1024 * 1024).to_string());
    let reported = status.status.unwrap().resources.unwrap().linux.unwrap();
    assert_eq!(reported.cpu_shares, 256);

    let log_path = std::path::PathBuf::from(env.status(&id).await.log_path);
    eventually(30, "ticks in the log", || async {
        (!read_log(&log_path).is_empty()).then_some(())
    })
    .await;
    let rotated = log_path.with_extension("log.1");
    std::fs::rename(&log_path, &rotated).unwrap();
    runtime
        .reopen_container_log(ReopenContainerLogRequest {
            container_id: id.clone(),
        })
        .await
        .unwrap();
    assert!(
        log_path.exists(),
        "the log file is back when ReopenContainerLog returns"
    );
    eventually(30, "ticks in the new log", || async {
        (!read_log(&log_path).is_empty()).then_some(())
    })
    .await;

    env.remove_pod_and_check(pod_id).await;
}
