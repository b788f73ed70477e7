//! RunPodSandbox, StopPodSandbox and RemovePodSandbox against the fake node.

use crimson_api::sandbox::v1::NamespaceMode;

use super::fakes::{TestSandbox, pod_spec};
use crate::{
    SandboxError,
    pod::{remove::remove_pod, run::run_pod, stop::stop_pod},
    records::{ContainerPhase, PodPhase},
};

#[tokio::test]
async fn a_pod_gets_its_namespaces_shm_network_and_cgroup_in_that_order() {
    let sandbox = TestSandbox::new();
    let id = sandbox.run_pod(pod_spec("web")).await;
    let dir = sandbox.state.layout.pod_dir(&id);
    assert_eq!(
        sandbox.node.log(),
        [
            format!("pin {}", dir.join("uts").display()),
            format!("pin {}", dir.join("ipc").display()),
            format!("mount_shm {}", dir.join("shm").display()),
            format!("set_up_network {id}"),
            format!("create_cgroups [\"/fake-cgroup/crimson/{id}\"]"),
        ]
    );
    let pod = sandbox.state.pod(&id).unwrap();
    assert_eq!(pod.phase, PodPhase::Ready);
    assert_eq!(pod.netns_path, Some(format!("/run/fake/netns/{id}")));
    assert_eq!(pod.ips, ["10.88.0.2"]);
    assert_eq!(pod.created_cgroups.len(), 1);
    assert!(pod.infra_container_id.is_none());
    let hosts = std::fs::read_to_string(dir.join("hosts")).unwrap();
    assert!(hosts.contains("10.88.0.2\tweb"), "{hosts}");
}

#[tokio::test]
async fn a_host_network_pod_gets_no_network_or_uts_namespace() {
    let sandbox = TestSandbox::new();
    let mut spec = pod_spec("node-agent");
    spec.network = NamespaceMode::Node as i32;
    spec.ipc = NamespaceMode::Node as i32;
    let id = sandbox.run_pod(spec).await;
    assert!(sandbox.node.calls("set_up_network").is_empty());
    assert!(sandbox.node.calls("pin").is_empty());
    assert!(sandbox.node.calls("mount_shm").is_empty());
    let pod = sandbox.state.pod(&id).unwrap();
    assert_eq!(pod.netns_path, None);
    assert_eq!(pod.shm_path, std::path::Path::new("/dev/shm"));
}

#[tokio::test]
async fn a_shared_pid_namespace_gets_an_infra_container_of_the_pause_image() {
    let sandbox = TestSandbox::new();
    let mut spec = pod_spec("shared");
    spec.pid = NamespaceMode::Pod as i32;
    let id = sandbox.run_pod(spec).await;
    let pod = sandbox.state.pod(&id).unwrap();
    let infra = pod.infra_container_id.expect("an infra container");
    let pause = sandbox.state.settings().pause_image.clone();
    assert!(sandbox.node.log().contains(&format!("pull_image {pause}")));
    assert_eq!(sandbox.node.status(&infra), Some("running"));
    let record = sandbox.container(&infra);
    assert!(record.infra);
    assert_eq!(record.phase, ContainerPhase::Running);
}

#[tokio::test]
async fn a_failed_network_set_up_undoes_the_pod() {
    let sandbox = TestSandbox::new();
    sandbox.node.fail("set_up_network", "no IP addresses left");
    let error = run_pod(sandbox.state.clone(), pod_spec("web"))
        .await
        .expect_err("CNI fails");
    assert!(
        error.to_string().contains("no IP addresses left"),
        "{error}"
    );
    let log = sandbox.node.log();
    let id = log
        .iter()
        .find_map(|call| call.strip_prefix("set_up_network "))
        .unwrap();
    let dir = sandbox.state.layout.pod_dir(id);
    // The network is torn down too: an ADD that failed half-way may have left a veth.
    assert_eq!(
        log[4..],
        [
            format!("tear_down_network {id}"),
            format!("unmount {}", dir.join("shm").display()),
            format!("unmount {}", dir.join("uts").display()),
            format!("unmount {}", dir.join("ipc").display()),
            "remove_cgroups []".to_string(),
        ]
    );
    assert!(sandbox.state.pods.values().unwrap().is_empty());
    assert!(!dir.exists());

    sandbox.node.heal("set_up_network");
    sandbox.run_pod(pod_spec("web")).await;
}

#[tokio::test]
async fn pods_need_a_name_namespace_and_uid() {
    let sandbox = TestSandbox::new();
    let mut spec = pod_spec("web");
    spec.uid.clear();
    let error = run_pod(sandbox.state.clone(), spec)
        .await
        .expect_err("no uid");
    assert!(matches!(error, SandboxError::InvalidArgument(_)), "{error}");
    let mut spec = pod_spec("web");
    spec.log_directory = "relative/logs".into();
    let error = run_pod(sandbox.state.clone(), spec)
        .await
        .expect_err("a relative log directory");
    assert!(matches!(error, SandboxError::InvalidArgument(_)), "{error}");
    assert!(sandbox.node.log().is_empty());
}

#[tokio::test]
async fn an_unknown_runtime_handler_is_refused() {
    let sandbox = TestSandbox::new();
    let mut spec = pod_spec("web");
    spec.runtime_handler = "kata".into();
    let error = run_pod(sandbox.state.clone(), spec)
        .await
        .expect_err("no such handler");
    assert!(matches!(error, SandboxError::InvalidArgument(_)), "{error}");
}

#[tokio::test]
async fn a_stopped_pod_has_its_containers_killed_network_detached_and_shm_unmounted() {
    let sandbox = TestSandbox::new();
    let (pod, container) = sandbox.running("web").await;
    sandbox.node.clear_log();
    stop_pod(&sandbox.state, &pod).await.unwrap();
    let shm = sandbox.state.layout.pod_dir(&pod).join("shm");
    let log = sandbox.node.log();
    assert!(log.contains(&format!("kill {container} KILL")), "{log:?}");
    assert!(log.contains(&format!("tear_down_network {pod}")), "{log:?}");
    assert_eq!(log.last(), Some(&format!("unmount {}", shm.display())));
    assert_eq!(sandbox.state.pod(&pod).unwrap().phase, PodPhase::NotReady);
    assert_eq!(sandbox.container(&container).phase, ContainerPhase::Exited);
    // Stopping it again unmounts nothing twice.
    sandbox.node.clear_log();
    stop_pod(&sandbox.state, &pod).await.unwrap();
    assert!(sandbox.node.calls("unmount").is_empty());
    stop_pod(&sandbox.state, "unknown").await.unwrap();
}

#[tokio::test]
async fn a_removed_pod_leaves_nothing_behind() {
    let sandbox = TestSandbox::new();
    let (pod, container) = sandbox.running("web").await;
    let record = sandbox.state.pod(&pod).unwrap();
    remove_pod(&sandbox.state, &pod).await.unwrap();
    let log = sandbox.node.log();
    for call in [
        format!("delete --force {container}"),
        format!("remove_rootfs {container}"),
        format!("remove_cgroups {:?}", record.created_cgroups),
    ] {
        assert!(log.contains(&call), "{call} missing from {log:?}");
    }
    assert!(sandbox.state.pods.get(&pod).unwrap().is_none());
    assert!(sandbox.state.containers.values().unwrap().is_empty());
    assert!(!sandbox.state.layout.pod_dir(&pod).exists());
    remove_pod(&sandbox.state, &pod).await.unwrap();
}
