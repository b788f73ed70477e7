//! The rest of a container's configuration: the pod's /dev/shm, bind mounts, devices, masked
//! paths, global mounts.conf mounts, recursive read-only mounts, runtime handlers, privileged
//! containers, OOM kills, and metadata kept as given.

use std::{collections::HashMap, sync::Arc};

use crimson_config::RuntimeHandler;

use crimson_integration::{
    pods::{PodEnv, lines_of},
    require_root,
    stack::StackOptions,
};
use k8s_cri::v1::{
    ContainerState, Device, LinuxContainerConfig, LinuxContainerResources,
    LinuxContainerSecurityContext, Mount, RunPodSandboxRequest,
};

#[tokio::test(flavor = "multi_thread")]
async fn shm_mounts_devices_masked_paths_and_global_mounts() {
    require_root!();
    let shared = tempfile::tempdir().unwrap();
    std::fs::write(shared.path().join("from-host"), "host data\n").unwrap();
    let secrets = tempfile::tempdir().unwrap();
    std::fs::write(secrets.path().join("token"), "global").unwrap();
    let mounts_conf = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        mounts_conf.path(),
        format!("{}:/run/global\n", secrets.path().display()),
    )
    .unwrap();
    let mounts_conf_path = mounts_conf.path().to_path_buf();
    let env = PodEnv::start_with(
        false,
        StackOptions {
            configure: Some(Arc::new(move |config| {
                config.sandbox.mounts_conf = mounts_conf_path.clone();
            })),
            ..Default::default()
        },
    )
    .await;
    let pod = env.pod_config("config");
    let pod_id = env.run_pod(&pod).await;
    let command = [
        "sh",
        "-c",
        "grep ' /dev/shm ' /proc/mounts; cat /data/from-host; echo x > /data/new && echo rw-ok; \
         echo x > /ro/new || echo ro-refused; ls -l /dev/mynull; cat /proc/kcore | head -c 1 | wc -c; cat /run/global/token; echo",
    ];
    let mut config = env.container_config("config", &command);
    let host = shared.path().display().to_string();
    config.mounts = vec![
        Mount {
            container_path: "/data".into(),
            host_path: host.clone(),
            ..Default::default()
        },
        Mount {
            container_path: "/ro".into(),
            host_path: host,
            readonly: true,
            ..Default::default()
        },
    ];
    config.devices = vec![Device {
        container_path: "/dev/mynull".into(),
        host_path: "/dev/null".into(),
        permissions: "rwm".into(),
    }];

    let (code, log) = env.output_of(&pod_id, &pod, "config", config).await;

    let out = lines_of(&log, "stdout");
    assert_eq!(code, 0, "{log:?}");
    assert!(
        out[0].contains("tmpfs") && out[0].contains("size=65536k"),
        "the pod's 64 MiB /dev/shm: {out:?}"
    );
    assert!(out.contains(&"host data".to_string()), "{out:?}");
    assert!(out.contains(&"rw-ok".to_string()) && shared.path().join("new").exists());
    assert!(out.contains(&"ro-refused".to_string()), "{out:?}");
    assert!(
        out.iter()
            .any(|l| l.starts_with('c') && l.ends_with("/dev/mynull")),
        "a char device: {out:?}"
    );
    assert!(
        out.contains(&"0".to_string()),
        "/proc/kcore is masked: {out:?}"
    );
    assert!(
        out.contains(&"global".to_string()),
        "mounts.conf mount: {out:?}"
    );

    env.remove_pod_and_check(pod_id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn runtime_handlers_privileged_containers_oom_kills_and_metadata() {
    require_root!();
    let env = PodEnv::start_with(
        false,
        StackOptions {
            configure: Some(Arc::new(|config| {
                let alt = RuntimeHandler {
                    runtime_path: "/usr/sbin/runc".into(),
                };
                config.sandbox.runtimes.insert("alt".into(), alt);
            })),
            ..Default::default()
        },
    )
    .await;
    let mut pod = env.pod_config("handlers");
    pod.annotations = HashMap::from([("note".into(), "kept".into())]);
    pod.metadata.as_mut().unwrap().attempt = 2;
    let mut runtime = env.stack.runtime();
    let unknown = runtime
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(pod.clone()),
            runtime_handler: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::InvalidArgument, "{unknown:?}");
    let pod_id = runtime
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(pod.clone()),
            runtime_handler: "alt".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .pod_sandbox_id;
    let status = env.pod_status(&pod_id).await;
    assert_eq!(status.runtime_handler, "alt");
    assert_eq!(status.metadata.unwrap().attempt, 2);
    assert_eq!(status.annotations["note"], "kept");
    assert_eq!(status.labels["app"], "handlers");

    // Nothing of /proc is masked or made read-only (each would be a mount of its own).
    let privileged_script = "grep CapBnd /proc/self/status; \
        grep -cE ' /proc/(kcore|sys|keys|acpi) ' /proc/self/mountinfo";
    let mut privileged = env.container_config("privileged", &["sh", "-c", privileged_script]);
    privileged.linux = Some(LinuxContainerConfig {
        security_context: Some(LinuxContainerSecurityContext {
            privileged: true,
            ..Default::default()
        }),
        resources: None,
    });
    let (code, log) = env.output_of(&pod_id, &pod, "privileged", privileged).await;
    assert_eq!(
        code, 1,
        "grep found no masked or read-only /proc path: {log:?}"
    );
    assert_eq!(lines_of(&log, "stdout")[1], "0", "{log:?}");
    let own = std::fs::read_to_string("/proc/self/status").unwrap();
    let own_bounding = own
        .lines()
        .find(|l| l.starts_with("CapBnd"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    assert!(
        lines_of(&log, "stdout")[0].ends_with(&own_bounding),
        "privileged gets what the runtime holds: {log:?}"
    );

    let mut hungry = env.container_config(
        "hungry",
        &["sh", "-c", "dd if=/dev/zero of=/dev/null bs=64M count=4"],
    );
    hungry.linux = Some(LinuxContainerConfig {
        resources: Some(LinuxContainerResources {
            memory_limit_in_bytes: 16 * 1024 * 1024,
            ..Default::default()
        }),
        security_context: None,
    });
    let id = env.run_container(&pod_id, &pod, hungry).await;
    let status = env.wait_for(&id, ContainerState::ContainerExited).await;
    assert_eq!(
        (status.reason.as_str(), status.exit_code),
        ("OOMKilled", 137)
    );

    env.remove_pod_and_check(pod_id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn recursive_read_only_mounts_reach_submounts_and_are_checked() {
    require_root!();
    let env = PodEnv::start(false).await;
    let status = env
        .stack
        .runtime()
        .status(k8s_cri::v1::StatusRequest { verbose: false })
        .await
        .unwrap()
        .into_inner();
    let default_handler = status
        .runtime_handlers
        .iter()
        .find(|h| h.name.is_empty())
        .expect("the default handler is listed");
    assert!(
        default_handler
            .features
            .as_ref()
            .is_some_and(|f| f.recursive_read_only_mounts),
        "runc 1.1 on a 5.12+ kernel makes them: {status:?}"
    );

    // A host directory with a tmpfs mounted inside it, as critest makes it.
    let host = tempfile::tempdir().unwrap();
    let submount = host.path().join("tmpfs");
    std::fs::create_dir(&submount).unwrap();
    nix::mount::mount(
        Some("none"),
        &submount,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .unwrap();
    let volume = |recursive_read_only| Mount {
        container_path: "/mnt".into(),
        host_path: host.path().display().to_string(),
        readonly: true,
        recursive_read_only,
        ..Default::default()
    };
    let pod = env.pod_config("rro");
    let pod_id = env.run_pod(&pod).await;
    let touch = [
        "sh",
        "-c",
        "touch /mnt/tmpfs/file && echo written || echo refused",
    ];
    for (rro, expected) in [(false, "written"), (true, "refused")] {
        let mut config = env.container_config(&format!("touch-{rro}"), &touch);
        config.mounts = vec![volume(rro)];
        let (_, log) = env.output_of(&pod_id, &pod, "touch", config).await;
        assert_eq!(lines_of(&log, "stdout"), [expected], "rro {rro}");
    }

    let mut writable = volume(true);
    writable.readonly = false;
    let mut shared = volume(true);
    shared.propagation = k8s_cri::v1::MountPropagation::PropagationHostToContainer as i32;
    for (i, mount) in [writable, shared].into_iter().enumerate() {
        let mut config = env.container_config(&format!("refused-{i}"), &["true"]);
        config.mounts = vec![mount];
        let err = env
            .create_container(&pod_id, &pod, config)
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    }
    env.remove_pod_and_check(pod_id).await;
    nix::mount::umount2(&submount, nix::mount::MntFlags::MNT_DETACH).unwrap();
}
