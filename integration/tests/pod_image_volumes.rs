//! Image volumes (KEP-4639, `Mount.image`): a pulled image mounted read-only into a container,
//! whole or one directory of it (`image_sub_path`, which k8s-cri's types cannot carry, so the
//! calls go through `crimson_api::cri`), kept while the container exists even if the image is
//! removed, and refused clearly when the image is not pulled or the sub path is not in it.

use crimson_api::cri::{CreateContainerRequest, runtime_service_client::RuntimeServiceClient};
use crimson_config::Daemon;
use crimson_integration::{
    image_builder::{LayerBuilder, Pusher, TestImage},
    pods::{PodEnv, assert_nothing_left, lines_of, read_log},
    require_root,
    stack::spec,
};
use k8s_cri::v1 as cri;
use tonic::Code;

fn image_volume(container_path: &str, image: &str) -> cri::Mount {
    cri::Mount {
        container_path: container_path.into(),
        image: Some(spec(image)),
        readonly: true,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_is_mounted_read_only_whole_or_by_sub_path_and_kept_while_in_use() {
    require_root!();
    let env = PodEnv::start(false).await;
    let data = TestImage::with_layers(vec![
        LayerBuilder::new()
            .file("srv/data/greeting", b"hello from an image\n", 0o644)
            .file("srv/other/note", b"other\n", 0o644)
            .build(),
    ]);
    Pusher::new(&env.registry.address, None)
        .push("data", "1", &data)
        .await;
    let data_ref = format!("{}/data:1", env.registry.address);
    env.stack.pull(&data_ref).await.unwrap();
    let layers_with_data = env.stack.stored_layer_dirs();

    let pod = env.pod_config("image-volumes");
    let pod_id = env.run_pod(&pod).await;
    let mut client =
        RuntimeServiceClient::new(crimson_rpc::connect_unix(env.stack.socket(Daemon::Cri)));
    let create =
        |config: cri::ContainerConfig, image_sub_paths: Vec<&str>| CreateContainerRequest {
            request: cri::CreateContainerRequest {
                pod_sandbox_id: pod_id.clone(),
                config: Some(config),
                sandbox_config: Some(pod.clone()),
            },
            image_sub_paths: image_sub_paths.into_iter().map(str::to_string).collect(),
        };

    let mut config = env.container_config(
        "reader",
        &[
            "sh",
            "-c",
            "cat /whole/srv/data/greeting; ls /sub; cat /sub/greeting; \
             echo x > /whole/new 2>/dev/null || echo whole-read-only; \
             echo x > /sub/new 2>/dev/null || echo sub-read-only; sleep 3600",
        ],
    );
    config.mounts = vec![
        image_volume("/whole", &data_ref),
        image_volume("/sub", &data_ref),
    ];
    let id = client
        .create_container(create(config, vec!["", "srv/data"]))
        .await
        .expect("CreateContainer with image volumes")
        .into_inner()
        .container_id;
    env.stack
        .runtime()
        .start_container(cri::StartContainerRequest {
            container_id: id.clone(),
        })
        .await
        .unwrap();
    let status = env.status(&id).await;
    let log_path = std::path::PathBuf::from(&status.log_path);
    let expected = [
        "hello from an image",
        "greeting",
        "hello from an image",
        "whole-read-only",
        "sub-read-only",
    ];
    let lines = crimson_integration::eventually(20, "the reader's output", || {
        let lines = lines_of(&read_log(&log_path), "stdout");
        async move { (lines.len() >= expected.len()).then_some(lines) }
    })
    .await;
    assert_eq!(lines, expected);

    // The image goes; the volume stays while the container exists.
    env.stack
        .images()
        .remove_image(cri::RemoveImageRequest {
            image: Some(spec(&data_ref)),
        })
        .await
        .unwrap();
    let exec = env
        .stack
        .runtime()
        .exec_sync(cri::ExecSyncRequest {
            container_id: id.clone(),
            cmd: vec!["cat".into(), "/sub/greeting".into()],
            timeout: 10,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(exec.stdout, b"hello from an image\n");
    assert_eq!(env.stack.stored_layer_dirs(), layers_with_data);

    crimson_integration::pods::tear_down(env.stack.runtime(), pod_id.clone(), id)
        .await
        .unwrap();
    assert_nothing_left(&env);
    assert!(
        env.stack.stored_layer_dirs() < layers_with_data,
        "the volume's layers go with the container once the image is gone"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn image_volumes_of_images_not_pulled_or_sub_paths_not_in_them_are_refused() {
    require_root!();
    let env = PodEnv::start(false).await;
    let pod = env.pod_config("refused-volumes");
    let pod_id = env.run_pod(&pod).await;
    let mut client =
        RuntimeServiceClient::new(crimson_rpc::connect_unix(env.stack.socket(Daemon::Cri)));
    let attempt = |mounts: Vec<cri::Mount>, image_sub_paths: Vec<&str>| {
        let mut config = env.container_config("refused", &["true"]);
        config.mounts = mounts;
        CreateContainerRequest {
            request: cri::CreateContainerRequest {
                pod_sandbox_id: pod_id.clone(),
                config: Some(config),
                sandbox_config: Some(pod.clone()),
            },
            image_sub_paths: image_sub_paths.into_iter().map(str::to_string).collect(),
        }
    };
    let not_pulled = format!("{}/never-pulled:1", env.registry.address);
    let refused = client
        .create_container(attempt(vec![image_volume("/v", &not_pulled)], vec![]))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("pull it first"), "{refused:?}");

    let refused = client
        .create_container(attempt(
            vec![image_volume("/v", &env.busybox)],
            vec!["no/such/dir"],
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("no/such/dir"), "{refused:?}");

    let host_mount = cri::Mount {
        container_path: "/v".into(),
        host_path: "/tmp".into(),
        ..Default::default()
    };
    let refused = client
        .create_container(attempt(vec![host_mount], vec!["sub"]))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");

    assert!(
        env.containers().await.is_empty(),
        "nothing half-made is kept"
    );
    env.remove_pod_and_check(pod_id).await;
}
