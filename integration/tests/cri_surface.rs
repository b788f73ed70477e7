//! The CRI surface of Kubernetes 1.36: every RPC of cri-api v0.36 answers on the front door,
//! from a gRPC C-core client (grpcio, whose `:authority` for a unix socket is the
//! percent-encoded path) as from tonic, including the list streams of KEP-5825 and
//! UpdatePodSandboxResources, which k8s-cri lacks.

use std::collections::BTreeSet;

use crimson_api::cri::{
    StreamContainerStatsRequest, StreamContainerStatsResponse, StreamContainersRequest,
    StreamContainersResponse, StreamImagesRequest, StreamImagesResponse,
    StreamPodSandboxMetricsRequest, StreamPodSandboxStatsRequest, StreamPodSandboxStatsResponse,
    StreamPodSandboxesRequest, StreamPodSandboxesResponse, UpdatePodSandboxResourcesRequest,
    UpdatePodSandboxResourcesResponse, image_service_client::ImageServiceClient,
    runtime_service_client::RuntimeServiceClient,
};
use crimson_config::Daemon;
use crimson_integration::{
    grpcio::{Answer, GrpcioClient},
    pods::{PodEnv, assert_nothing_left, tear_down},
    require_root,
    stack::spec,
};
use k8s_cri::v1 as cri;
use tokio_stream::StreamExt;
use tonic::Code;

/// The 41 RPCs of cri-api v0.36 (Kubernetes 1.36): (service, method).
const CRI_V0_36: [(&str, &str); 41] = [
    ("RuntimeService", "Version"),
    ("RuntimeService", "RunPodSandbox"),
    ("RuntimeService", "StopPodSandbox"),
    ("RuntimeService", "RemovePodSandbox"),
    ("RuntimeService", "PodSandboxStatus"),
    ("RuntimeService", "ListPodSandbox"),
    ("RuntimeService", "StreamPodSandboxes"),
    ("RuntimeService", "CreateContainer"),
    ("RuntimeService", "StartContainer"),
    ("RuntimeService", "StopContainer"),
    ("RuntimeService", "RemoveContainer"),
    ("RuntimeService", "ListContainers"),
    ("RuntimeService", "StreamContainers"),
    ("RuntimeService", "ContainerStatus"),
    ("RuntimeService", "UpdateContainerResources"),
    ("RuntimeService", "ReopenContainerLog"),
    ("RuntimeService", "ExecSync"),
    ("RuntimeService", "Exec"),
    ("RuntimeService", "Attach"),
    ("RuntimeService", "PortForward"),
    ("RuntimeService", "ContainerStats"),
    ("RuntimeService", "ListContainerStats"),
    ("RuntimeService", "StreamContainerStats"),
    ("RuntimeService", "PodSandboxStats"),
    ("RuntimeService", "ListPodSandboxStats"),
    ("RuntimeService", "StreamPodSandboxStats"),
    ("RuntimeService", "UpdateRuntimeConfig"),
    ("RuntimeService", "Status"),
    ("RuntimeService", "CheckpointContainer"),
    ("RuntimeService", "GetContainerEvents"),
    ("RuntimeService", "ListMetricDescriptors"),
    ("RuntimeService", "ListPodSandboxMetrics"),
    ("RuntimeService", "StreamPodSandboxMetrics"),
    ("RuntimeService", "RuntimeConfig"),
    ("RuntimeService", "UpdatePodSandboxResources"),
    ("ImageService", "ListImages"),
    ("ImageService", "StreamImages"),
    ("ImageService", "ImageStatus"),
    ("ImageService", "PullImage"),
    ("ImageService", "RemoveImage"),
    ("ImageService", "ImageFsInfo"),
];

/// A grpcio client that remembers which RPCs it called.
struct Caller {
    client: GrpcioClient,
    called: BTreeSet<(&'static str, &'static str)>,
}

impl Caller {
    fn call(
        &mut self,
        service: &'static str,
        method: &'static str,
        request: &impl prost::Message,
        stream: bool,
    ) -> Answer {
        self.called.insert((service, method));
        let answer = self.client.call(
            &format!("/runtime.v1.{service}/{method}"),
            request,
            stream,
            30,
        );
        assert_ne!(answer.code, "INTERNAL", "{method}: {answer:?}");
        answer
    }

    /// A unary call that must succeed.
    fn ok<M: prost::Message + Default>(
        &mut self,
        service: &'static str,
        method: &'static str,
        request: &impl prost::Message,
    ) -> M {
        let answer = self.call(service, method, request, false);
        assert_eq!(answer.code, "OK", "{method}: {answer:?}");
        answer.decoded().pop().unwrap()
    }

    /// A server stream that must end well; its parts.
    fn parts<M: prost::Message + Default>(
        &mut self,
        service: &'static str,
        method: &'static str,
        request: &impl prost::Message,
    ) -> Vec<M> {
        let answer = self.call(service, method, request, true);
        assert_eq!(answer.code, "OK", "{method}: {answer:?}");
        answer.decoded()
    }

    /// A call that must fail with `code` (a gRPC status code name).
    fn fails(
        &mut self,
        service: &'static str,
        method: &'static str,
        request: &impl prost::Message,
        stream: bool,
        code: &str,
    ) -> String {
        let answer = self.call(service, method, request, stream);
        assert_eq!(answer.code, code, "{method}: {answer:?}");
        answer.details
    }
}

const RT: &str = "RuntimeService";
const IMG: &str = "ImageService";

#[tokio::test(flavor = "multi_thread")]
async fn a_grpc_core_client_calls_every_cri_rpc() {
    require_root!();
    let env = PodEnv::start(false).await;
    let mut caller = Caller {
        client: GrpcioClient::start(&env.stack.socket(Daemon::Cri)),
        called: BTreeSet::new(),
    };

    let version: cri::VersionResponse = caller.ok(RT, "Version", &cri::VersionRequest::default());
    assert_eq!(version.runtime_name, "crimson");
    let status: cri::StatusResponse = caller.ok(RT, "Status", &cri::StatusRequest::default());
    assert!(status.status.unwrap().conditions[0].status, "RuntimeReady");
    let _: cri::RuntimeConfigResponse =
        caller.ok(RT, "RuntimeConfig", &cri::RuntimeConfigRequest {});
    let _: cri::UpdateRuntimeConfigResponse = caller.ok(
        RT,
        "UpdateRuntimeConfig",
        &cri::UpdateRuntimeConfigRequest::default(),
    );

    let fs: cri::ImageFsInfoResponse = caller.ok(IMG, "ImageFsInfo", &cri::ImageFsInfoRequest {});
    assert!(!fs.image_filesystems.is_empty());
    let pulled: cri::PullImageResponse = caller.ok(
        IMG,
        "PullImage",
        &cri::PullImageRequest {
            image: Some(spec(&env.busybox)),
            ..Default::default()
        },
    );
    let image_id = pulled.image_ref;
    let listed: cri::ListImagesResponse =
        caller.ok(IMG, "ListImages", &cri::ListImagesRequest::default());
    assert!(listed.images.iter().any(|i| i.id == image_id));
    let streamed: Vec<StreamImagesResponse> =
        caller.parts(IMG, "StreamImages", &StreamImagesRequest::default());
    assert_eq!(
        ids(streamed.into_iter().flat_map(|p| p.images).map(|i| i.id)).len(),
        listed.images.len()
    );
    let image: cri::ImageStatusResponse = caller.ok(
        IMG,
        "ImageStatus",
        &cri::ImageStatusRequest {
            image: Some(spec(&env.busybox)),
            verbose: false,
        },
    );
    assert_eq!(image.image.unwrap().id, image_id);

    let pod_config = env.pod_config("grpcio");
    let pod: cri::RunPodSandboxResponse = caller.ok(
        RT,
        "RunPodSandbox",
        &cri::RunPodSandboxRequest {
            config: Some(pod_config.clone()),
            runtime_handler: String::new(),
        },
    );
    let pod_id = pod.pod_sandbox_id;
    let pod_status: cri::PodSandboxStatusResponse = caller.ok(
        RT,
        "PodSandboxStatus",
        &cri::PodSandboxStatusRequest {
            pod_sandbox_id: pod_id.clone(),
            verbose: false,
        },
    );
    assert_eq!(
        pod_status.status.unwrap().state,
        cri::PodSandboxState::SandboxReady as i32
    );
    let pods: cri::ListPodSandboxResponse =
        caller.ok(RT, "ListPodSandbox", &cri::ListPodSandboxRequest::default());
    assert!(pods.items.iter().any(|p| p.id == pod_id));
    let streamed: Vec<StreamPodSandboxesResponse> = caller.parts(
        RT,
        "StreamPodSandboxes",
        &StreamPodSandboxesRequest::default(),
    );
    assert!(
        streamed
            .iter()
            .flat_map(|p| &p.pod_sandboxes)
            .any(|p| p.id == pod_id)
    );

    let created: cri::CreateContainerResponse = caller.ok(
        RT,
        "CreateContainer",
        &cri::CreateContainerRequest {
            pod_sandbox_id: pod_id.clone(),
            config: Some(env.container_config("sleeper", &["sleep", "3600"])),
            sandbox_config: Some(pod_config),
        },
    );
    let id = created.container_id;
    let container = || cri::StartContainerRequest {
        container_id: id.clone(),
    };
    let _: cri::StartContainerResponse = caller.ok(RT, "StartContainer", &container());
    let status: cri::ContainerStatusResponse = caller.ok(
        RT,
        "ContainerStatus",
        &cri::ContainerStatusRequest {
            container_id: id.clone(),
            verbose: false,
        },
    );
    assert_eq!(
        status.status.unwrap().state,
        cri::ContainerState::ContainerRunning as i32
    );
    let containers: cri::ListContainersResponse =
        caller.ok(RT, "ListContainers", &cri::ListContainersRequest::default());
    assert!(containers.containers.iter().any(|c| c.id == id));
    let streamed: Vec<StreamContainersResponse> =
        caller.parts(RT, "StreamContainers", &StreamContainersRequest::default());
    assert!(
        streamed
            .iter()
            .flat_map(|p| &p.containers)
            .any(|c| c.id == id)
    );
    let _: cri::UpdateContainerResourcesResponse = caller.ok(
        RT,
        "UpdateContainerResources",
        &cri::UpdateContainerResourcesRequest {
            container_id: id.clone(),
            linux: Some(cri::LinuxContainerResources {
                cpu_shares: 512,
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    let _: cri::ReopenContainerLogResponse = caller.ok(
        RT,
        "ReopenContainerLog",
        &cri::ReopenContainerLogRequest {
            container_id: id.clone(),
        },
    );
    let exec: cri::ExecSyncResponse = caller.ok(
        RT,
        "ExecSync",
        &cri::ExecSyncRequest {
            container_id: id.clone(),
            cmd: vec!["echo".into(), "from grpcio".into()],
            timeout: 10,
        },
    );
    assert_eq!(
        (exec.exit_code, exec.stdout.as_slice()),
        (0, &b"from grpcio\n"[..])
    );
    let exec: cri::ExecResponse = caller.ok(
        RT,
        "Exec",
        &cri::ExecRequest {
            container_id: id.clone(),
            cmd: vec!["true".into()],
            stdout: true,
            ..Default::default()
        },
    );
    assert!(exec.url.starts_with("http"), "{exec:?}");
    let attach: cri::AttachResponse = caller.ok(
        RT,
        "Attach",
        &cri::AttachRequest {
            container_id: id.clone(),
            stdout: true,
            ..Default::default()
        },
    );
    assert!(attach.url.starts_with("http"), "{attach:?}");
    let forward: cri::PortForwardResponse = caller.ok(
        RT,
        "PortForward",
        &cri::PortForwardRequest {
            pod_sandbox_id: pod_id.clone(),
            port: vec![80],
        },
    );
    assert!(forward.url.starts_with("http"), "{forward:?}");

    let stats: cri::ContainerStatsResponse = caller.ok(
        RT,
        "ContainerStats",
        &cri::ContainerStatsRequest {
            container_id: id.clone(),
        },
    );
    assert_eq!(stats.stats.unwrap().attributes.unwrap().id, id);
    let listed: cri::ListContainerStatsResponse = caller.ok(
        RT,
        "ListContainerStats",
        &cri::ListContainerStatsRequest::default(),
    );
    assert!(
        listed
            .stats
            .iter()
            .any(|s| s.attributes.as_ref().unwrap().id == id)
    );
    let streamed: Vec<StreamContainerStatsResponse> = caller.parts(
        RT,
        "StreamContainerStats",
        &StreamContainerStatsRequest::default(),
    );
    assert!(
        streamed
            .iter()
            .flat_map(|p| &p.container_stats)
            .any(|s| s.attributes.as_ref().unwrap().id == id)
    );
    let stats: cri::PodSandboxStatsResponse = caller.ok(
        RT,
        "PodSandboxStats",
        &cri::PodSandboxStatsRequest {
            pod_sandbox_id: pod_id.clone(),
        },
    );
    assert_eq!(stats.stats.unwrap().attributes.unwrap().id, pod_id);
    let listed: cri::ListPodSandboxStatsResponse = caller.ok(
        RT,
        "ListPodSandboxStats",
        &cri::ListPodSandboxStatsRequest::default(),
    );
    assert!(
        listed
            .stats
            .iter()
            .any(|s| s.attributes.as_ref().unwrap().id == pod_id)
    );
    let streamed: Vec<StreamPodSandboxStatsResponse> = caller.parts(
        RT,
        "StreamPodSandboxStats",
        &StreamPodSandboxStatsRequest::default(),
    );
    assert!(
        streamed.iter().flat_map(|p| &p.pod_sandbox_stats).any(|s| s
            .attributes
            .as_ref()
            .unwrap()
            .id
            == pod_id)
    );
    let _: UpdatePodSandboxResourcesResponse = caller.ok(
        RT,
        "UpdatePodSandboxResources",
        &UpdatePodSandboxResourcesRequest {
            pod_sandbox_id: pod_id.clone(),
            resources: Some(cri::LinuxContainerResources {
                cpu_quota: 50_000,
                cpu_period: 100_000,
                ..Default::default()
            }),
            overhead: None,
        },
    );

    // CRI metrics: every described metric for the running container.
    let described: cri::ListMetricDescriptorsResponse = caller.ok(
        RT,
        "ListMetricDescriptors",
        &cri::ListMetricDescriptorsRequest {},
    );
    let described: Vec<String> = described.descriptors.into_iter().map(|d| d.name).collect();
    assert!(described.contains(&"container_cpu_usage_seconds_total".to_string()));
    let metrics: cri::ListPodSandboxMetricsResponse = caller.ok(
        RT,
        "ListPodSandboxMetrics",
        &cri::ListPodSandboxMetricsRequest {},
    );
    let pod_metrics = metrics
        .pod_metrics
        .iter()
        .find(|p| p.pod_sandbox_id == pod_id)
        .unwrap();
    let container = pod_metrics
        .container_metrics
        .iter()
        .find(|c| c.container_id == id)
        .unwrap();
    // The container's and its pod's metrics together are every described one.
    let mut answered: Vec<&String> = container
        .metrics
        .iter()
        .chain(&pod_metrics.metrics)
        .map(|m| &m.name)
        .collect();
    answered.sort();
    answered.dedup();
    let mut described_sorted: Vec<&String> = described.iter().collect();
    described_sorted.sort();
    assert_eq!(answered, described_sorted);
    let received = pod_metrics
        .metrics
        .iter()
        .find(|m| m.name == "container_network_receive_bytes_total")
        .unwrap();
    assert_eq!(received.label_values.last().unwrap(), "eth0");
    let processes = pod_metrics
        .metrics
        .iter()
        .find(|m| m.name == "container_processes")
        .unwrap();
    assert!(processes.value.as_ref().unwrap().value >= 1);
    let streamed: Vec<crimson_api::cri::StreamPodSandboxMetricsResponse> = caller.parts(
        RT,
        "StreamPodSandboxMetrics",
        &StreamPodSandboxMetricsRequest {},
    );
    assert!(
        streamed
            .iter()
            .flat_map(|p| &p.pod_sandbox_metrics)
            .any(|p| p.pod_sandbox_id == pod_id)
    );

    // Not built yet: UNIMPLEMENTED, saying so.
    let checkpoint = cri::CheckpointContainerRequest {
        container_id: id.clone(),
        ..Default::default()
    };
    let details = caller.fails(
        RT,
        "CheckpointContainer",
        &checkpoint,
        false,
        "UNIMPLEMENTED",
    );
    assert!(details.contains("not implemented by crimson"), "{details}");
    // The event stream stays open until the client's deadline.
    let events = caller.client.call(
        "/runtime.v1.RuntimeService/GetContainerEvents",
        &cri::GetEventsRequest {},
        true,
        2,
    );
    caller.called.insert((RT, "GetContainerEvents"));
    assert_eq!(events.code, "DEADLINE_EXCEEDED", "{events:?}");

    let _: cri::StopContainerResponse = caller.ok(
        RT,
        "StopContainer",
        &cri::StopContainerRequest {
            container_id: id.clone(),
            timeout: 0,
        },
    );
    let _: cri::RemoveContainerResponse = caller.ok(
        RT,
        "RemoveContainer",
        &cri::RemoveContainerRequest {
            container_id: id.clone(),
        },
    );
    let _: cri::StopPodSandboxResponse = caller.ok(
        RT,
        "StopPodSandbox",
        &cri::StopPodSandboxRequest {
            pod_sandbox_id: pod_id.clone(),
        },
    );
    let _: cri::RemovePodSandboxResponse = caller.ok(
        RT,
        "RemovePodSandbox",
        &cri::RemovePodSandboxRequest {
            pod_sandbox_id: pod_id.clone(),
        },
    );
    let _: cri::RemoveImageResponse = caller.ok(
        IMG,
        "RemoveImage",
        &cri::RemoveImageRequest {
            image: Some(spec(&image_id)),
        },
    );
    let listed: cri::ListImagesResponse =
        caller.ok(IMG, "ListImages", &cri::ListImagesRequest::default());
    assert!(listed.images.iter().all(|i| i.id != image_id));

    assert_eq!(
        caller.called,
        CRI_V0_36.into_iter().collect::<BTreeSet<_>>()
    );
}

/// The distinct ids, checking none came twice.
fn ids(ids: impl Iterator<Item = String>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for id in ids {
        assert!(seen.insert(id.clone()), "{id} came twice");
    }
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn the_list_streams_send_what_the_lists_answer_filtered_alike() {
    require_root!();
    let env = PodEnv::start(false).await;
    let channel = crimson_rpc::connect_unix(env.stack.socket(Daemon::Cri));
    let mut streams = RuntimeServiceClient::new(channel.clone());
    let mut lists = env.stack.runtime();
    let mut pods = Vec::new();
    for name in ["stream-a", "stream-b", "stream-c"] {
        pods.push(env.start_sleeper(env.stack.runtime(), name).await.unwrap());
    }
    let (pod_b, container_b) = pods[1].clone();

    let listed = ids(lists
        .list_pod_sandbox(cri::ListPodSandboxRequest::default())
        .await
        .unwrap()
        .into_inner()
        .items
        .into_iter()
        .map(|p| p.id));
    let streamed = streams
        .stream_pod_sandboxes(StreamPodSandboxesRequest::default())
        .await
        .unwrap()
        .into_inner();
    let parts: Vec<_> = streamed.map(|p| p.unwrap()).collect().await;
    assert!(
        parts.iter().all(|p| !p.pod_sandboxes.is_empty()),
        "no empty part"
    );
    assert_eq!(
        ids(parts
            .into_iter()
            .flat_map(|p| p.pod_sandboxes)
            .map(|p| p.id)),
        listed
    );
    assert_eq!(listed.len(), 3);

    let by_label = cri::PodSandboxFilter {
        label_selector: [("app".to_string(), "stream-b".to_string())].into(),
        ..Default::default()
    };
    let streamed = streams
        .stream_pod_sandboxes(StreamPodSandboxesRequest {
            filter: Some(by_label),
        })
        .await
        .unwrap()
        .into_inner();
    let found: Vec<_> = streamed.map(|p| p.unwrap()).collect().await;
    assert_eq!(
        ids(found
            .into_iter()
            .flat_map(|p| p.pod_sandboxes)
            .map(|p| p.id)),
        BTreeSet::from([pod_b.clone()])
    );

    let of_pod_b = cri::ContainerFilter {
        pod_sandbox_id: pod_b.clone(),
        ..Default::default()
    };
    let streamed = streams
        .stream_containers(StreamContainersRequest {
            filter: Some(of_pod_b),
        })
        .await
        .unwrap()
        .into_inner();
    let found: Vec<_> = streamed.map(|p| p.unwrap()).collect().await;
    assert_eq!(
        ids(found.into_iter().flat_map(|p| p.containers).map(|c| c.id)),
        BTreeSet::from([container_b.clone()])
    );

    let listed = ids(lists
        .list_container_stats(cri::ListContainerStatsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .stats
        .into_iter()
        .map(|s| s.attributes.unwrap().id));
    let streamed = streams
        .stream_container_stats(StreamContainerStatsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let found: Vec<_> = streamed.map(|p| p.unwrap()).collect().await;
    assert_eq!(
        ids(found
            .into_iter()
            .flat_map(|p| p.container_stats)
            .map(|s| s.attributes.unwrap().id)),
        listed
    );

    let streamed = streams
        .stream_pod_sandbox_stats(StreamPodSandboxStatsRequest {
            filter: Some(cri::PodSandboxStatsFilter {
                id: pod_b.clone(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let found: Vec<_> = streamed.map(|p| p.unwrap()).collect().await;
    assert_eq!(
        ids(found
            .into_iter()
            .flat_map(|p| p.pod_sandbox_stats)
            .map(|s| s.attributes.unwrap().id)),
        BTreeSet::from([pod_b.clone()])
    );

    let mut images = ImageServiceClient::new(channel);
    let streamed = images
        .stream_images(StreamImagesRequest::default())
        .await
        .unwrap()
        .into_inner();
    let found: Vec<_> = streamed.map(|p| p.unwrap()).collect().await;
    let listed = env
        .stack
        .images()
        .list_images(cri::ListImagesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .images;
    assert_eq!(
        ids(found.into_iter().flat_map(|p| p.images).map(|i| i.id)),
        ids(listed.into_iter().map(|i| i.id))
    );

    // Nothing matches: the stream ends without a part.
    let nothing = cri::ContainerFilter {
        id: "no-such-container".into(),
        ..Default::default()
    };
    let streamed = streams
        .stream_containers(StreamContainersRequest {
            filter: Some(nothing),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(streamed.collect::<Vec<_>>().await.len(), 0);

    // UpdatePodSandboxResources checks the pod.
    let update = |pod_sandbox_id: &str| UpdatePodSandboxResourcesRequest {
        pod_sandbox_id: pod_sandbox_id.into(),
        ..Default::default()
    };
    streams
        .update_pod_sandbox_resources(update(&pod_b))
        .await
        .unwrap();
    let unknown = streams
        .update_pod_sandbox_resources(update("no-such-pod"))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
    let empty = streams
        .update_pod_sandbox_resources(update(""))
        .await
        .unwrap_err();
    assert_eq!(empty.code(), Code::InvalidArgument, "{empty:?}");

    for (pod_id, container_id) in pods {
        tear_down(env.stack.runtime(), pod_id, container_id)
            .await
            .unwrap();
    }
    assert_nothing_left(&env);
}
