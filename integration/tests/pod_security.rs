//! What a container may do: users from the image's /etc/passwd, read-only root filesystems,
//! memory limits in the container's cgroup, seccomp, AppArmor, capabilities, no_new_privs, a
//! pod-level init process.

use crimson_integration::{
    image_builder::{Pusher, TestImage},
    pods::{PodEnv, lines_of, read_log},
    require_root,
};
use k8s_cri::v1::{
    Capability, ContainerState, ImageSpec, Int64Value, LinuxContainerConfig,
    LinuxContainerResources, LinuxContainerSecurityContext, SecurityProfile, StatusRequest,
    SupplementalGroupsPolicy, security_profile::ProfileType,
};

fn with_security(
    mut config: k8s_cri::v1::ContainerConfig,
    security: LinuxContainerSecurityContext,
) -> k8s_cri::v1::ContainerConfig {
    config
        .linux
        .get_or_insert_with(LinuxContainerConfig::default)
        .security_context = Some(security);
    config
}

#[tokio::test(flavor = "multi_thread")]
async fn users_come_from_the_image_or_the_request() {
    require_root!();
    let env = PodEnv::start(false).await;
    let mut image = TestImage::busybox();
    image.config["User"] = "tester".into();
    Pusher::new(&env.registry.address, None)
        .push("nonroot", "1", &image)
        .await;
    let nonroot = format!("{}/nonroot:1", env.registry.address);
    env.stack.pull(&nonroot).await.unwrap();
    let pod = env.pod_config("users");
    let pod_id = env.run_pod(&pod).await;

    let mut from_image =
        env.container_config("from-image", &["sh", "-c", "echo $(id -u):$(id -g)"]);
    from_image.image = Some(ImageSpec {
        image: nonroot.clone(),
        ..Default::default()
    });
    let (_, log) = env.output_of(&pod_id, &pod, "from-image", from_image).await;
    assert_eq!(lines_of(&log, "stdout"), ["1000:1000"]);

    let by_name = with_security(
        env.container_config("by-name", &["sh", "-c", "id -un; id -G"]),
        LinuxContainerSecurityContext {
            run_as_username: "www-data".into(),
            supplemental_groups: vec![1234],
            ..Default::default()
        },
    );
    let (_, log) = env.output_of(&pod_id, &pod, "by-name", by_name).await;
    assert_eq!(lines_of(&log, "stdout"), ["www-data", "33 1234"]);

    let by_id = with_security(
        env.container_config("by-id", &["sh", "-c", "echo $(id -u):$(id -g)"]),
        LinuxContainerSecurityContext {
            run_as_user: Some(Int64Value { value: 1001 }),
            run_as_group: Some(Int64Value { value: 1002 }),
            ..Default::default()
        },
    );
    let (_, log) = env.output_of(&pod_id, &pod, "by-id", by_id).await;
    assert_eq!(lines_of(&log, "stdout"), ["1001:1002"]);

    // SupplementalGroupsPolicy: Merge adds tester's membership of `extra` (50000) from the
    // image's /etc/group, Strict does not; both list the primary group, and ContainerStatus
    // reports what the process got.
    let features = env
        .stack
        .runtime()
        .status(StatusRequest { verbose: false })
        .await
        .unwrap()
        .into_inner()
        .features;
    assert!(features.is_some_and(|f| f.supplemental_groups_policy));
    for (policy, expected) in [
        (SupplementalGroupsPolicy::Merge, vec![1000, 1234, 50000]),
        (SupplementalGroupsPolicy::Strict, vec![1000, 1234]),
    ] {
        let name = format!("groups-{}", policy.as_str_name().to_lowercase());
        let config = with_security(
            env.container_config(&name, &["id", "-G"]),
            LinuxContainerSecurityContext {
                run_as_user: Some(Int64Value { value: 1000 }),
                supplemental_groups: vec![1234],
                supplemental_groups_policy: policy as i32,
                ..Default::default()
            },
        );
        let id = env.run_container(&pod_id, &pod, config).await;
        let status = env.wait_for(&id, ContainerState::ContainerExited).await;
        let log = read_log(&status.log_path.clone().into());
        let printed: Vec<String> = expected.iter().map(i64::to_string).collect();
        assert_eq!(lines_of(&log, "stdout"), [printed.join(" ")], "{policy:?}");
        let mut user = status
            .user
            .and_then(|u| u.linux)
            .expect("ContainerStatus.user");
        user.supplemental_groups.sort_unstable();
        assert_eq!((user.uid, user.gid), (1000, 1000));
        assert_eq!(user.supplemental_groups, expected, "{policy:?}");
    }

    let group_only = with_security(
        env.container_config("group-only", &["true"]),
        LinuxContainerSecurityContext {
            run_as_group: Some(Int64Value { value: 5 }),
            ..Default::default()
        },
    );
    let err = env
        .create_container(&pod_id, &pod, group_only)
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    env.remove_pod_and_check(pod_id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_root_filesystem_cannot_be_written() {
    require_root!();
    let env = PodEnv::start(false).await;
    let pod = env.pod_config("readonly");
    let pod_id = env.run_pod(&pod).await;
    let command = [
        "sh",
        "-c",
        "touch /written && echo wrote; touch /tmp/x 2>&1; echo done",
    ];

    let readonly = with_security(
        env.container_config("ro", &command),
        LinuxContainerSecurityContext {
            readonly_rootfs: true,
            ..Default::default()
        },
    );
    let (_, log) = env.output_of(&pod_id, &pod, "ro", readonly).await;
    let stdout = lines_of(&log, "stdout");
    assert!(!stdout.contains(&"wrote".to_string()), "{log:?}");
    assert!(
        lines_of(&log, "stderr")
            .iter()
            .any(|l| l.contains("Read-only file system")),
        "{log:?}"
    );

    let (_, log) = env
        .output_of(&pod_id, &pod, "rw", env.container_config("rw", &command))
        .await;
    assert!(
        lines_of(&log, "stdout").contains(&"wrote".to_string()),
        "{log:?}"
    );
    env.remove_pod_and_check(pod_id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_limits_are_in_the_container_cgroup_and_oom_score_adj_is_clamped() {
    require_root!();
    let env = PodEnv::start(false).await;
    let pod = env.pod_config("limits");
    let pod_id = env.run_pod(&pod).await;
    let mut config = env.container_config("limited", &["sleep", "300"]);
    config.linux = Some(LinuxContainerConfig {
        resources: Some(LinuxContainerResources {
            memory_limit_in_bytes: 64 * 1024 * 1024,
            cpu_shares: 512,
            oom_score_adj: -997,
            ..Default::default()
        }),
        security_context: None,
    });
    let id = env.run_container(&pod_id, &pod, config).await;
    let info = env.container_info(&id).await;
    let cgroup = info["cgroupPath"]
        .as_str()
        .unwrap()
        .trim_start_matches('/')
        .to_string();
    let pid = info["pid"].as_u64().unwrap();

    let limit = std::fs::read_to_string(format!(
        "/sys/fs/cgroup/memory/{cgroup}/memory.limit_in_bytes"
    ))
    .unwrap();
    assert_eq!(limit.trim(), (64 * 1024 * 1024).to_string());
    let shares =
        std::fs::read_to_string(format!("/sys/fs/cgroup/cpu/{cgroup}/cpu.shares")).unwrap();
    assert_eq!(shares.trim(), "512");
    let procs =
        std::fs::read_to_string(format!("/sys/fs/cgroup/memory/{cgroup}/cgroup.procs")).unwrap();
    assert!(
        procs.lines().any(|p| p == pid.to_string()),
        "the container runs in that cgroup"
    );
    let adj: i32 = std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let own: i32 = std::fs::read_to_string("/proc/self/oom_score_adj")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        adj >= own && adj <= 0,
        "-997 was clamped to what the runtime may set ({adj}, own {own})"
    );
    env.remove_pod_and_check(pod_id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn seccomp_runtime_default_blocks_unshare_and_unconfined_does_not() {
    require_root!();
    let env = PodEnv::start(false).await;
    let pod = env.pod_config("seccomp");
    let pod_id = env.run_pod(&pod).await;
    let command = [
        "sh",
        "-c",
        "grep Seccomp: /proc/self/status; unshare -U true && echo unshared",
    ];
    let profile = |profile_type: ProfileType| LinuxContainerSecurityContext {
        seccomp: Some(SecurityProfile {
            profile_type: profile_type as i32,
            localhost_ref: String::new(),
        }),
        ..Default::default()
    };

    let (_, log) = env
        .output_of(
            &pod_id,
            &pod,
            "default",
            with_security(
                env.container_config("default", &command),
                profile(ProfileType::RuntimeDefault),
            ),
        )
        .await;
    let out = lines_of(&log, "stdout");
    assert!(out[0].ends_with('2'), "filter mode: {out:?}");
    assert!(
        !out.contains(&"unshared".to_string()),
        "unshare was blocked: {log:?}"
    );

    let (_, log) = env
        .output_of(
            &pod_id,
            &pod,
            "unconfined",
            with_security(
                env.container_config("unconfined", &command),
                profile(ProfileType::Unconfined),
            ),
        )
        .await;
    let out = lines_of(&log, "stdout");
    assert!(out[0].ends_with('0'), "no filter: {out:?}");
    assert!(
        out.contains(&"unshared".to_string()),
        "unshare works unconfined: {log:?}"
    );

    let profile_dir = tempfile::tempdir().unwrap();
    let profile_path = profile_dir.path().join("no-chmod.json");
    std::fs::write(
        &profile_path,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["chmod","fchmodat","fchmodat2"],"action":"SCMP_ACT_ERRNO"}]}"#,
    )
    .unwrap();
    let localhost = LinuxContainerSecurityContext {
        seccomp: Some(SecurityProfile {
            profile_type: ProfileType::Localhost as i32,
            localhost_ref: profile_path.display().to_string(),
        }),
        ..Default::default()
    };
    let chmod = ["sh", "-c", "chmod 600 /etc/passwd && echo changed"];
    let (_, log) = env
        .output_of(
            &pod_id,
            &pod,
            "localhost",
            with_security(env.container_config("localhost", &chmod), localhost),
        )
        .await;
    assert!(
        lines_of(&log, "stderr")
            .iter()
            .any(|l| l.contains("Operation not permitted")),
        "{log:?}"
    );
    assert!(!lines_of(&log, "stdout").contains(&"changed".to_string()));
    env.remove_pod_and_check(pod_id).await;
}

/// A profile that denies every file write (as critest's AppArmor checks use).
const DENY_WRITE_PROFILE: &str = "#include <tunables/global>
profile crimson-test-deny-write flags=(attach_disconnected) {
  #include <abstractions/base>
  file,
  deny /** w,
}
";

#[tokio::test(flavor = "multi_thread")]
async fn apparmor_localhost_profiles_apply_where_the_host_has_apparmor() {
    require_root!();
    let host_has_apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|v| v.trim() == "Y");
    let env = PodEnv::start(false).await;
    let pod = env.pod_config("apparmor");
    let pod_id = env.run_pod(&pod).await;
    let localhost = |name: &str| LinuxContainerSecurityContext {
        apparmor: Some(SecurityProfile {
            profile_type: ProfileType::Localhost as i32,
            localhost_ref: name.into(),
        }),
        ..Default::default()
    };
    let write = ["sh", "-c", "touch /tmp/written && echo wrote"];

    if !host_has_apparmor {
        // Ignored, as CRI-O does: the container runs and writes.
        let (_, log) = env
            .output_of(
                &pod_id,
                &pod,
                "ignored",
                with_security(
                    env.container_config("ignored", &write),
                    localhost("crimson-test-deny-write"),
                ),
            )
            .await;
        assert_eq!(lines_of(&log, "stdout"), ["wrote"], "{log:?}");
        env.remove_pod_and_check(pod_id).await;
        return;
    }

    let unloaded = env
        .create_container(
            &pod_id,
            &pod,
            with_security(
                env.container_config("unloaded", &write),
                localhost("crimson-test-not-loaded"),
            ),
        )
        .await
        .unwrap_err();
    assert_eq!(
        unloaded.code(),
        tonic::Code::FailedPrecondition,
        "{unloaded:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("deny-write");
    std::fs::write(&profile, DENY_WRITE_PROFILE).unwrap();
    let load = |flag: &str| {
        std::process::Command::new("apparmor_parser")
            .arg(flag)
            .arg(&profile)
            .status()
            .expect("apparmor_parser (package apparmor) where AppArmor is on")
    };
    assert!(load("-r").success());
    let (_, log) = env
        .output_of(
            &pod_id,
            &pod,
            "denied",
            with_security(
                env.container_config("denied", &write),
                localhost("localhost/crimson-test-deny-write"),
            ),
        )
        .await;
    load("-R");
    assert!(
        lines_of(&log, "stdout").is_empty(),
        "the write was denied: {log:?}"
    );
    env.remove_pod_and_check(pod_id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn capabilities_default_add_drop_and_no_new_privs() {
    require_root!();
    let env = PodEnv::start(false).await;
    let pod = env.pod_config("caps");
    let pod_id = env.run_pod(&pod).await;
    let command = [
        "sh",
        "-c",
        "grep -E '^(CapBnd|NoNewPrivs)' /proc/self/status",
    ];
    let bounding = |log: &[crimson_integration::pods::LogLine]| {
        let line = lines_of(log, "stdout")
            .into_iter()
            .find(|l| l.starts_with("CapBnd"))
            .unwrap();
        u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
    };
    const NET_ADMIN: u64 = 1 << 12;
    const KILL: u64 = 1 << 5;

    let (_, log) = env
        .output_of(
            &pod_id,
            &pod,
            "default",
            env.container_config("default", &command),
        )
        .await;
    assert_eq!(bounding(&log) & NET_ADMIN, 0, "NET_ADMIN is not a default");
    assert_ne!(bounding(&log) & KILL, 0);

    let changed = with_security(
        env.container_config("changed", &command),
        LinuxContainerSecurityContext {
            capabilities: Some(Capability {
                add_capabilities: vec!["NET_ADMIN".into()],
                drop_capabilities: vec!["KILL".into()],
                ..Default::default()
            }),
            no_new_privs: true,
            ..Default::default()
        },
    );
    let (_, log) = env.output_of(&pod_id, &pod, "changed", changed).await;
    assert_ne!(bounding(&log) & NET_ADMIN, 0);
    assert_eq!(bounding(&log) & KILL, 0);
    assert!(
        lines_of(&log, "stdout")
            .iter()
            .any(|l| l.ends_with("1") && l.starts_with("NoNewPrivs")),
        "{log:?}"
    );

    let none = with_security(
        env.container_config("none", &command),
        LinuxContainerSecurityContext {
            capabilities: Some(Capability {
                drop_capabilities: vec!["ALL".into()],
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    let (_, log) = env.output_of(&pod_id, &pod, "none", none).await;
    assert_eq!(bounding(&log), 0);
    env.remove_pod_and_check(pod_id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_sharing_its_pid_namespace_has_an_init_process() {
    require_root!();
    let env = PodEnv::start(false).await;
    let mut pod = env.pod_config("sharedpid");
    let options = pod
        .linux
        .as_mut()
        .unwrap()
        .security_context
        .as_mut()
        .unwrap()
        .namespace_options
        .as_mut()
        .unwrap();
    options.pid = k8s_cri::v1::NamespaceMode::Pod as i32;
    let pod_id = env.run_pod(&pod).await;
    let (_, log) = env
        .output_of(
            &pod_id,
            &pod,
            "ps",
            env.container_config(
                "ps",
                &["sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo"],
            ),
        )
        .await;
    let out = lines_of(&log, "stdout");
    assert!(
        out[0].starts_with("/bin/sleep"),
        "PID 1 is the pause process: {out:?}"
    );
    env.remove_pod_and_check(pod_id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn host_ipc_and_host_pid_pods_share_the_hosts_namespaces() {
    require_root!();
    let env = PodEnv::start(false).await;
    let mut pod = env.pod_config("hostns");
    let options = pod
        .linux
        .as_mut()
        .unwrap()
        .security_context
        .as_mut()
        .unwrap()
        .namespace_options
        .as_mut()
        .unwrap();
    options.ipc = k8s_cri::v1::NamespaceMode::Node as i32;
    options.pid = k8s_cri::v1::NamespaceMode::Node as i32;
    let pod_id = env.run_pod(&pod).await;
    let mut config = env.container_config(
        "hostns",
        &[
            "sh",
            "-c",
            "for ns in ipc pid uts; do readlink /proc/self/ns/$ns; done",
        ],
    );
    config.linux = Some(LinuxContainerConfig {
        security_context: Some(LinuxContainerSecurityContext {
            namespace_options: Some(k8s_cri::v1::NamespaceOption {
                pid: k8s_cri::v1::NamespaceMode::Node as i32,
                ..Default::default()
            }),
            ..Default::default()
        }),
        resources: None,
    });
    let (code, log) = env.output_of(&pod_id, &pod, "hostns", config).await;
    assert_eq!(code, 0, "{log:?}");
    let out = lines_of(&log, "stdout");
    let host = |ns: &str| {
        std::fs::read_link(format!("/proc/self/ns/{ns}"))
            .unwrap()
            .display()
            .to_string()
    };
    assert_eq!(out[0], host("ipc"), "host IPC namespace");
    assert_eq!(out[1], host("pid"), "host PID namespace");
    assert_ne!(
        out[2],
        host("uts"),
        "its own UTS namespace (pod network is not the host's)"
    );
    env.remove_pod_and_check(pod_id).await;
}
