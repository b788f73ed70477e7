//! Golden OCI specs: `build` for representative CRI requests, compared with the JSON under
//! `golden/` (run with `UPDATE_GOLDEN=1` to write them after a deliberate change, then review
//! the diff). Inputs use fixed paths and a full capability set, so the output does not depend
//! on the machine; sets (capabilities, seccomp rules) are compared sorted, since oci-spec keeps
//! capabilities in hash sets whose order changes from process to process.

use std::{path::Path, str::FromStr};

use crimson_api::sandbox::v1::{
    ContainerSpec, KeyValue, Mount, NamespaceMode, PodSpec, Resources, SeccompProfile, Security,
    seccomp_profile::Kind,
};
use oci_spec::runtime::{Capabilities, Capability};

use super::{
    PidNamespace, SpecInput, apparmor::HostAppArmor, build, capabilities::BY_BIT, mounts::PodFiles,
    process::ImageDefaults, user::Identity,
};
use crate::runtime::features::RuntimeFeatures;

/// What differs between the cases.
struct Case {
    container: ContainerSpec,
    identity: Identity,
    netns: Option<&'static str>,
    pid: PidNamespace,
}

fn pod() -> PodSpec {
    PodSpec {
        name: "web".into(),
        uid: "uid-1".into(),
        namespace: "default".into(),
        hostname: "web-0".into(),
        sysctls: [(
            "net.ipv4.ip_unprivileged_port_start".to_string(),
            "0".to_string(),
        )]
        .into(),
        ..Default::default()
    }
}

fn image() -> ImageDefaults {
    ImageDefaults {
        entrypoint: vec!["/docker-entrypoint.sh".into()],
        cmd: vec!["nginx".into(), "-g".into(), "daemon off;".into()],
        env: vec!["PATH=/usr/bin:/bin".into(), "NGINX_VERSION=1.27".into()],
        working_dir: "/srv".into(),
        user: String::new(),
        stop_signal: "SIGQUIT".into(),
    }
}

fn all_capabilities() -> Capabilities {
    BY_BIT
        .iter()
        .filter_map(|name| Capability::from_str(name).ok())
        .collect()
}

/// `spec` with its sets sorted: each capability set, the seccomp rules and their names.
fn sorted_sets(mut spec: serde_json::Value) -> serde_json::Value {
    fn sort_strings(value: &mut serde_json::Value) {
        if let Some(list) = value.as_array_mut() {
            list.sort_by_key(|item| item.to_string());
        }
    }
    if let Some(sets) = spec
        .pointer_mut("/process/capabilities")
        .and_then(|c| c.as_object_mut())
    {
        sets.values_mut().for_each(sort_strings);
    }
    if let Some(rules) = spec.pointer_mut("/linux/seccomp/syscalls") {
        for rule in rules.as_array_mut().into_iter().flatten() {
            if let Some(names) = rule.get_mut("names") {
                sort_strings(names);
            }
        }
        sort_strings(rules);
    }
    spec
}

/// The spec of `case`, as JSON.
fn spec_of(case: Case) -> serde_json::Value {
    let pod = pod();
    let image = image();
    let capabilities = all_capabilities();
    let apparmor = HostAppArmor::off();
    let input = SpecInput {
        pod: &pod,
        container: &case.container,
        image: &image,
        rootfs: Path::new("/var/lib/crimson/storage/rootfs/c1/merged"),
        identity: &case.identity,
        pod_files: PodFiles {
            shm: Path::new("/run/crimson/sandbox/pods/p1/shm"),
            resolv_conf: Path::new("/run/crimson/sandbox/pods/p1/resolv.conf"),
            hosts: Path::new("/run/crimson/sandbox/pods/p1/hosts"),
            hostname: Some(Path::new("/run/crimson/sandbox/pods/p1/hostname")),
        },
        netns: case.netns,
        uts_ns: Some(Path::new("/run/crimson/sandbox/pods/p1/uts")),
        ipc_ns: Some(Path::new("/run/crimson/sandbox/pods/p1/ipc")),
        pid: case.pid,
        user_ns: None,
        cgroup_path: "/crimson/p1/crimson-c1",
        held_capabilities: &capabilities,
        apparmor: &apparmor,
        global_mounts: &[],
        oom_floor: -999,
        runtime_features: RuntimeFeatures {
            recursive_read_only: true,
            user_namespaces: false,
            exec_fifo: true,
        },
    };
    sorted_sets(serde_json::to_value(build(&input).expect("the spec builds")).unwrap())
}

/// Compares `case`'s spec with `golden/<name>.json` (or writes it with `UPDATE_GOLDEN=1`).
fn check(name: &str, case: Case) {
    let built = spec_of(case);
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("src/oci/golden/{name}.json"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, serde_json::to_string_pretty(&built).unwrap() + "\n").unwrap();
    }
    let golden: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display())),
    )
    .unwrap();
    assert_eq!(
        built,
        golden,
        "{name}: the built spec differs from {} (UPDATE_GOLDEN=1 rewrites it):\n{}",
        file.display(),
        serde_json::to_string_pretty(&built).unwrap()
    );
}

fn root() -> Identity {
    Identity {
        uid: 0,
        gid: 0,
        additional_gids: vec![],
    }
}

#[test]
fn a_plain_container_in_a_pod() {
    check(
        "plain",
        Case {
            container: ContainerSpec {
                name: "nginx".into(),
                image: "nginx:1.27".into(),
                envs: vec![KeyValue {
                    key: "MODE".into(),
                    value: "prod".into(),
                }],
                ..Default::default()
            },
            identity: root(),
            netns: Some("/run/netns/p1"),
            pid: PidNamespace::Join("/proc/4242/ns/pid".into()),
        },
    );
}

#[test]
fn a_restricted_container() {
    check(
        "restricted",
        Case {
            container: ContainerSpec {
                name: "app".into(),
                image: "app:1".into(),
                command: vec!["/app".into()],
                args: vec!["--port=8080".into()],
                working_dir: "/work".into(),
                mounts: vec![Mount {
                    container_path: "/data".into(),
                    host_path: "/tmp".into(),
                    readonly: true,
                    ..Default::default()
                }],
                resources: Some(Resources {
                    cpu_period: 100_000,
                    cpu_quota: 50_000,
                    cpu_shares: 512,
                    memory_limit_in_bytes: 64 << 20,
                    oom_score_adj: 900,
                    ..Default::default()
                }),
                security: Some(Security {
                    readonly_rootfs: true,
                    no_new_privs: true,
                    run_as_user: Some(1000),
                    drop_capabilities: vec!["ALL".into()],
                    add_capabilities: vec!["NET_BIND_SERVICE".into()],
                    seccomp: Some(SeccompProfile {
                        kind: Kind::RuntimeDefault as i32,
                        localhost_path: String::new(),
                    }),
                    pid: NamespaceMode::Container as i32,
                    ..Default::default()
                }),
                ..Default::default()
            },
            identity: Identity {
                uid: 1000,
                gid: 1000,
                additional_gids: vec![50000],
            },
            netns: Some("/run/netns/p1"),
            pid: PidNamespace::New,
        },
    );
}

#[test]
fn a_privileged_container_on_the_host_network_and_pids() {
    check(
        "privileged",
        Case {
            container: ContainerSpec {
                name: "agent".into(),
                image: "agent:1".into(),
                tty: true,
                security: Some(Security {
                    privileged: true,
                    pid: NamespaceMode::Node as i32,
                    ..Default::default()
                }),
                ..Default::default()
            },
            identity: root(),
            netns: None,
            pid: PidNamespace::Host,
        },
    );
}
