//! Property tests of the CRI request translation: any pod or container configuration, with
//! enums, ports, ids and limits anywhere in their range, becomes the internal request or an
//! INVALID_ARGUMENT; nothing panics.

use k8s_cri::v1 as cri;
use proptest::prelude::*;

use super::{container::to_container_spec, pod::to_pod_spec};

fn text() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), ".{0,12}", "[a-z0-9./-]{1,24}"]
}

fn namespace_options() -> impl Strategy<Value = cri::NamespaceOption> {
    (
        any::<i32>(),
        any::<i32>(),
        any::<i32>(),
        text(),
        prop::option::of((
            any::<i32>(),
            prop::collection::vec((any::<u32>(), any::<u32>(), any::<u32>()), 0..3),
            prop::collection::vec((any::<u32>(), any::<u32>(), any::<u32>()), 0..3),
        )),
    )
        .prop_map(
            |(network, pid, ipc, target_id, userns)| cri::NamespaceOption {
                network,
                pid,
                ipc,
                target_id,
                userns_options: userns.map(|(mode, uids, gids)| {
                    let mappings = |list: Vec<(u32, u32, u32)>| {
                        list.into_iter()
                            .map(|(host_id, container_id, length)| cri::IdMapping {
                                host_id,
                                container_id,
                                length,
                            })
                            .collect()
                    };
                    cri::UserNamespace {
                        mode,
                        uids: mappings(uids),
                        gids: mappings(gids),
                    }
                }),
            },
        )
}

fn pod_config() -> impl Strategy<Value = cri::PodSandboxConfig> {
    (
        prop::option::of((text(), text(), text(), any::<u32>())),
        text(),
        prop::collection::vec((any::<i32>(), any::<i32>(), any::<i32>(), text()), 0..4),
        namespace_options(),
        any::<bool>(),
    )
        .prop_map(|(metadata, hostname, ports, namespaces, privileged)| {
            cri::PodSandboxConfig {
                metadata: metadata.map(|(name, uid, namespace, attempt)| cri::PodSandboxMetadata {
                    name,
                    uid,
                    namespace,
                    attempt,
                }),
                hostname,
                port_mappings: ports
                    .into_iter()
                    .map(
                        |(protocol, container_port, host_port, host_ip)| cri::PortMapping {
                            protocol,
                            container_port,
                            host_port,
                            host_ip,
                        },
                    )
                    .collect(),
                linux: Some(cri::LinuxPodSandboxConfig {
                    security_context: Some(cri::LinuxSandboxSecurityContext {
                        namespace_options: Some(namespaces),
                        privileged,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }
        })
}

fn container_config() -> impl Strategy<Value = cri::ContainerConfig> {
    (
        prop::option::of((text(), any::<u32>())),
        prop::option::of(text()),
        (
            any::<i64>(),
            any::<i64>(),
            any::<i64>(),
            any::<i64>(),
            any::<i64>(),
        ),
        (
            prop::option::of(any::<i64>()),
            prop::option::of(any::<i64>()),
            text(),
        ),
        prop::collection::vec(text(), 0..3),
        namespace_options(),
        prop::collection::vec(
            (text(), text(), any::<bool>(), any::<i32>(), any::<bool>()),
            0..3,
        ),
    )
        .prop_map(
            |(
                metadata,
                image,
                limits,
                (user, group, username),
                capabilities,
                namespaces,
                mounts,
            )| {
                let (cpu_period, cpu_quota, cpu_shares, memory, oom) = limits;
                cri::ContainerConfig {
                    metadata: metadata
                        .map(|(name, attempt)| cri::ContainerMetadata { name, attempt }),
                    image: image.map(|image| cri::ImageSpec {
                        image,
                        ..Default::default()
                    }),
                    mounts: mounts
                        .into_iter()
                        .map(
                            |(container_path, host_path, readonly, propagation, recursive)| {
                                cri::Mount {
                                    container_path,
                                    host_path,
                                    readonly,
                                    propagation,
                                    recursive_read_only: recursive,
                                    ..Default::default()
                                }
                            },
                        )
                        .collect(),
                    linux: Some(cri::LinuxContainerConfig {
                        resources: Some(cri::LinuxContainerResources {
                            cpu_period,
                            cpu_quota,
                            cpu_shares,
                            memory_limit_in_bytes: memory,
                            oom_score_adj: oom,
                            ..Default::default()
                        }),
                        security_context: Some(cri::LinuxContainerSecurityContext {
                            run_as_user: user.map(|value| cri::Int64Value { value }),
                            run_as_group: group.map(|value| cri::Int64Value { value }),
                            run_as_username: username,
                            capabilities: Some(cri::Capability {
                                add_capabilities: capabilities.clone(),
                                drop_capabilities: capabilities,
                                ..Default::default()
                            }),
                            namespace_options: Some(namespaces),
                            ..Default::default()
                        }),
                    }),
                    ..Default::default()
                }
            },
        )
}

proptest! {
    #[test]
    fn any_pod_config_translates_or_is_an_invalid_argument(
        config in pod_config(),
        handler in text(),
    ) {
        if let Err(status) = to_pod_spec(config, handler) {
            prop_assert_eq!(status.code(), tonic::Code::InvalidArgument, "{:?}", status);
        }
    }

    #[test]
    fn any_container_config_translates_or_is_an_invalid_argument(
        config in container_config(),
        sub_paths in prop::collection::vec(text(), 0..3),
    ) {
        if let Err(status) = to_container_spec(config, &sub_paths) {
            prop_assert_eq!(status.code(), tonic::Code::InvalidArgument, "{:?}", status);
        }
    }
}
