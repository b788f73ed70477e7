//! The calls kubelet polls (the pod lister, PLEG, the stats provider, the pod worker's status
//! checks) timed with many pods running on each target, in interleaved rounds.

use std::time::{Duration, Instant};

use crimson_integration::{
    pods::{PodEnv, tear_down},
    stack::spec,
};
use futures::future::join_all;
use k8s_cri::v1::{
    ContainerStatusRequest, ImageStatusRequest, ListContainerStatsRequest, ListContainersRequest,
    ListImagesRequest, ListPodSandboxRequest, ListPodSandboxStatsRequest, PodSandboxStatusRequest,
    VersionRequest,
};

use crate::side_by_side::{Measured, Target, Timings};

/// The polled calls, in the order each sample makes them; Version (answered by the runtime
/// without looking anything up) shows what any call costs.
pub const POLLED: [&str; 9] = [
    "Version",
    "ListPodSandbox",
    "ListContainers",
    "ListContainerStats",
    "ListPodSandboxStats",
    "PodSandboxStatus",
    "ContainerStatus",
    "ImageStatus",
    "ListImages",
];

/// How many pods start at once while the targets are filled.
const STARTING_AT_ONCE: usize = 10;

/// Starts `pods` pods with a container each on every target, then times `rounds` rounds of
/// `per_round` samples of every polled call on each target in turn; removes the pods after.
pub async fn measure(
    env: &PodEnv,
    targets: &[Target],
    pods: usize,
    rounds: usize,
    per_round: usize,
) -> Measured {
    let mut started = Vec::new();
    for target in targets {
        let mut on_target = Vec::new();
        for chunk in (0..pods).collect::<Vec<_>>().chunks(STARTING_AT_ONCE) {
            let starts = chunk.iter().map(|i| async move {
                let name = format!("{}-polled-{i}", target.name);
                env.start_sleeper(target.runtime.clone(), &name).await
            });
            for result in join_all(starts).await {
                on_target.push(result.expect("starting a pod to poll"));
            }
        }
        started.push(on_target);
    }
    let mut measured = vec![vec![Timings::default(); POLLED.len()]; targets.len()];
    for _ in 0..rounds {
        for (index, target) in targets.iter().enumerate() {
            let (pod, container) = &started[index][0];
            let mut samples = vec![Vec::new(); POLLED.len()];
            for _ in 0..per_round {
                for (call, time) in sample(env, target, pod, container)
                    .await
                    .into_iter()
                    .enumerate()
                {
                    samples[call].push(time);
                }
            }
            for (call, times) in samples.into_iter().enumerate() {
                measured[index][call].push_round(times);
            }
        }
    }
    for (target, on_target) in targets.iter().zip(started) {
        let removals = on_target
            .into_iter()
            .map(|(pod, container)| tear_down(target.runtime.clone(), pod, container));
        for result in join_all(removals).await {
            result.expect("removing a polled pod");
        }
    }
    measured
}

/// One call of each of [`POLLED`]; the time of each.
async fn sample(env: &PodEnv, target: &Target, pod: &str, container: &str) -> Vec<Duration> {
    let (mut runtime, mut images) = (target.runtime.clone(), target.images.clone());
    let mut times = Vec::with_capacity(POLLED.len());
    let mut started = Instant::now();
    let mut lap = |times: &mut Vec<Duration>| {
        times.push(started.elapsed());
        started = Instant::now();
    };
    runtime
        .version(VersionRequest::default())
        .await
        .expect("Version");
    lap(&mut times);
    runtime
        .list_pod_sandbox(ListPodSandboxRequest::default())
        .await
        .expect("ListPodSandbox");
    lap(&mut times);
    runtime
        .list_containers(ListContainersRequest::default())
        .await
        .expect("ListContainers");
    lap(&mut times);
    runtime
        .list_container_stats(ListContainerStatsRequest::default())
        .await
        .expect("ListContainerStats");
    lap(&mut times);
    runtime
        .list_pod_sandbox_stats(ListPodSandboxStatsRequest::default())
        .await
        .expect("ListPodSandboxStats");
    lap(&mut times);
    runtime
        .pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: pod.to_string(),
            verbose: false,
        })
        .await
        .expect("PodSandboxStatus");
    lap(&mut times);
    runtime
        .container_status(ContainerStatusRequest {
            container_id: container.to_string(),
            verbose: false,
        })
        .await
        .expect("ContainerStatus");
    lap(&mut times);
    images
        .image_status(ImageStatusRequest {
            image: Some(spec(&env.busybox)),
            verbose: false,
        })
        .await
        .expect("ImageStatus");
    lap(&mut times);
    images
        .list_images(ListImagesRequest::default())
        .await
        .expect("ListImages");
    lap(&mut times);
    times
}
