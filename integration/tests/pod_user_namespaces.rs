//! Pods in user namespaces of their own (KEP-127, `hostUsers: false`): the mappings asked for
//! hold inside, the container's root owns its root filesystem (overlay on idmapped layers) and
//! the pod's namespaces, the handler says it can, and what kubelet must not ask is refused.

use crimson_integration::{
    pods::{PodEnv, assert_nothing_left, lines_of, tear_down},
    require_root,
};
use k8s_cri::v1 as cri;
use tonic::Code;

fn mapping(container_id: u32, host_id: u32, length: u32) -> cri::IdMapping {
    cri::IdMapping {
        host_id,
        container_id,
        length,
    }
}

/// `pod` with user namespace options `userns`.
fn with_userns(
    mut pod: cri::PodSandboxConfig,
    userns: cri::UserNamespace,
) -> cri::PodSandboxConfig {
    let linux = pod.linux.get_or_insert_default();
    let security = linux.security_context.get_or_insert_default();
    security
        .namespace_options
        .get_or_insert_default()
        .userns_options = Some(userns);
    pod
}

fn pod_mode(uids: Vec<cri::IdMapping>, gids: Vec<cri::IdMapping>) -> cri::UserNamespace {
    cri::UserNamespace {
        mode: cri::NamespaceMode::Pod as i32,
        uids,
        gids,
    }
}

/// The fields of each line, as `/proc/self/uid_map` spaces them.
fn fields(lines: &[String]) -> Vec<Vec<String>> {
    lines
        .iter()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_in_its_own_user_namespace_sees_its_mappings_and_owns_its_files() {
    require_root!();
    let env = PodEnv::start(false).await;
    let status = env
        .stack
        .runtime()
        .status(cri::StatusRequest { verbose: false })
        .await
        .unwrap()
        .into_inner();
    let default_handler = status
        .runtime_handlers
        .iter()
        .find(|h| h.name.is_empty())
        .unwrap();
    assert!(
        default_handler.features.as_ref().unwrap().user_namespaces,
        "runc with idmapped overlay layers: {status:?}"
    );

    let pod = with_userns(
        env.pod_config("userns"),
        pod_mode(
            vec![mapping(0, 200_000, 65_536)],
            vec![mapping(0, 300_000, 65_536)],
        ),
    );
    let pod_id = env.run_pod(&pod).await;
    let pod_status = env.pod_status(&pod_id).await;
    let userns = pod_status
        .linux
        .unwrap()
        .namespaces
        .unwrap()
        .options
        .unwrap()
        .userns_options;
    assert_eq!(userns.unwrap().uids, [mapping(0, 200_000, 65_536)]);

    let volume = tempfile::tempdir().unwrap();
    std::fs::write(volume.path().join("from-host"), "kept\n").unwrap();
    let command = [
        "sh",
        "-c",
        "cat /proc/self/uid_map /proc/self/gid_map; id -u; touch /made-here && \
         stat -c '%u %g' /made-here /bin/sh /etc; hostname; \
         stat -c '%u %g' /volume/from-host; touch /volume/from-container",
    ];
    let mut config = env.container_config("userns", &command);
    config.mounts = vec![cri::Mount {
        container_path: "/volume".into(),
        host_path: volume.path().display().to_string(),
        ..Default::default()
    }];
    let (exit_code, log) = env.output_of(&pod_id, &pod, "userns", config).await;
    let lines = lines_of(&log, "stdout");
    assert_eq!(exit_code, 0, "{lines:?}");
    assert_eq!(
        fields(&lines[..2]),
        [["0", "200000", "65536"], ["0", "300000", "65536"]],
        "{lines:?}"
    );
    assert_eq!(lines[2], "0", "the container's root is 0 inside");
    // Its files, the image's and those it makes, belong to its root.
    assert_eq!(lines[3..6], ["0 0", "0 0", "0 0"], "{lines:?}");
    // runc joined the pod's UTS, IPC and network namespaces after its user namespace: they
    // are owned by it (joining others would have been refused).
    assert_eq!(lines[6], "userns");
    // Volumes are idmapped too: the host's root is the container's, and what the container's
    // root makes lands unshifted on disk, the host's root's (without the idmapped mount it
    // would be refused: the directory belongs to an ID outside the container's range).
    assert_eq!(lines[7], "0 0", "{lines:?}");
    use std::os::unix::fs::MetadataExt;
    let made = std::fs::metadata(volume.path().join("from-container")).unwrap();
    assert_eq!((made.uid(), made.gid()), (0, 0));

    // A container of a pod without one sees the host's mappings.
    let host_pod = env.pod_config("host-userns");
    let host_pod_id = env.run_pod(&host_pod).await;
    let config = env.container_config("host", &["cat", "/proc/self/uid_map"]);
    let (_, log) = env.output_of(&host_pod_id, &host_pod, "host", config).await;
    let host_map = std::fs::read_to_string("/proc/self/uid_map").unwrap();
    assert_eq!(
        fields(&lines_of(&log, "stdout")),
        fields(&host_map.lines().map(str::to_string).collect::<Vec<_>>())
    );

    for pod_id in [pod_id, host_pod_id] {
        for container in env
            .containers()
            .await
            .into_iter()
            .filter(|c| c.pod_sandbox_id == pod_id)
        {
            env.stack
                .runtime()
                .remove_container(cri::RemoveContainerRequest {
                    container_id: container.id,
                })
                .await
                .unwrap();
        }
        env.stack
            .runtime()
            .remove_pod_sandbox(cri::RemovePodSandboxRequest {
                pod_sandbox_id: pod_id,
            })
            .await
            .unwrap();
    }
    assert_nothing_left(&env);
    // Unmapping the volume left its content alone.
    assert_eq!(
        std::fs::read_to_string(volume.path().join("from-host")).unwrap(),
        "kept\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn user_namespace_options_kubelet_must_not_send_are_refused() {
    require_root!();
    let env = PodEnv::start(false).await;
    let good = || vec![mapping(0, 200_000, 65_536)];
    let refused = [
        (
            "two mappings",
            pod_mode(
                vec![mapping(0, 1000, 100_000), mapping(0, 2000, 100_000)],
                good(),
            ),
        ),
        (
            "container ID 0 unmapped",
            pod_mode(
                vec![mapping(1, 1000, 100_000)],
                vec![mapping(1, 1000, 100_000)],
            ),
        ),
        ("no gid mapping", pod_mode(good(), vec![])),
        (
            "NODE with mappings",
            cri::UserNamespace {
                mode: cri::NamespaceMode::Node as i32,
                uids: good(),
                gids: good(),
            },
        ),
        (
            "CONTAINER",
            cri::UserNamespace {
                mode: cri::NamespaceMode::Container as i32,
                ..Default::default()
            },
        ),
        (
            "TARGET",
            cri::UserNamespace {
                mode: cri::NamespaceMode::Target as i32,
                ..Default::default()
            },
        ),
    ];
    // Host networking with a user namespace of the pod's own is refused too.
    let mut host_network = with_userns(env.pod_config("host-net"), pod_mode(good(), good()));
    let linux = host_network.linux.get_or_insert_default();
    let security = linux.security_context.get_or_insert_default();
    security.namespace_options.get_or_insert_default().network = cri::NamespaceMode::Node as i32;
    let refused = refused
        .into_iter()
        .map(|(what, userns)| (what, with_userns(env.pod_config("refused"), userns)))
        .chain([("host network", host_network)]);
    for (what, pod) in refused {
        let answer = env
            .stack
            .runtime()
            .run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(pod),
                runtime_handler: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(answer.code(), Code::InvalidArgument, "{what}: {answer:?}");
    }
    assert!(env.pods().await.is_empty());
    assert_nothing_left(&env);

    // NODE without mappings is the host's user namespace.
    let pod = with_userns(
        env.pod_config("node-userns"),
        cri::UserNamespace {
            mode: cri::NamespaceMode::Node as i32,
            ..Default::default()
        },
    );
    let (pod_id, container_id) = {
        let pod_id = env.run_pod(&pod).await;
        let id = env
            .run_container(
                &pod_id,
                &pod,
                env.container_config("sleeper", &["sleep", "60"]),
            )
            .await;
        (pod_id, id)
    };
    tear_down(env.stack.runtime(), pod_id, container_id)
        .await
        .unwrap();
    assert_nothing_left(&env);
}
