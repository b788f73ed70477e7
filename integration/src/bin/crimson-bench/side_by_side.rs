//! The CRI calls kubelet makes for a pod, timed through Crimson and a peer runtime with the
//! same client code and the same workload, in interleaved rounds (the peer, then Crimson, each
//! round), so that a noisy moment of the machine weighs on both.

use std::time::{Duration, Instant};

use crimson_integration::{pods::PodEnv, stack::spec};
use futures::future::join_all;
use k8s_cri::v1::{
    ContainerStatusRequest, CreateContainerRequest, ImageStatusRequest, ListImagesRequest,
    PodSandboxStatusRequest, PullImageRequest, RemoveContainerRequest, RemoveImageRequest,
    RemovePodSandboxRequest, RunPodSandboxRequest, StartContainerRequest, StopContainerRequest,
    StopPodSandboxRequest, image_service_client::ImageServiceClient,
    runtime_service_client::RuntimeServiceClient,
};
use tonic::transport::Channel;

/// A CRI runtime under measurement.
#[derive(Clone)]
pub struct Target {
    /// Its name in the report.
    pub name: String,
    /// RuntimeService.
    pub runtime: RuntimeServiceClient<Channel>,
    /// ImageService.
    pub images: ImageServiceClient<Channel>,
}

/// The measured calls, in the order one lifecycle makes them, then CreateContainer +
/// StartContainer of the same lifecycle (containerd runs `runc create` in the second call,
/// Crimson in the first, so only the two together compare).
pub const OPERATIONS: [&str; 14] = [
    "RunPodSandbox",
    "PodSandboxStatus",
    "PullImage",
    "ImageStatus",
    "ListImages",
    "CreateContainer",
    "StartContainer",
    "ContainerStatus",
    "StopContainer",
    "RemoveContainer",
    "StopPodSandbox",
    "RemovePodSandbox",
    "RemoveImage",
    "Create+Start",
];

/// The samples of one operation on one target, round by round.
#[derive(Clone, Default)]
pub struct Timings {
    rounds: Vec<Vec<Duration>>,
}

impl Timings {
    /// Adds the samples of one round.
    pub fn push_round(&mut self, samples: Vec<Duration>) {
        self.rounds.push(samples);
    }

    /// The median of the round medians.
    pub fn central(&self) -> Duration {
        let mut medians: Vec<Duration> = self.rounds.iter().map(|r| median(r)).collect();
        medians.sort();
        median(&medians)
    }

    /// The 95th percentile of every sample.
    pub fn p95(&self) -> Duration {
        let mut all: Vec<Duration> = self.rounds.concat();
        all.sort();
        all[((all.len() as f64 - 1.0) * 0.95).round() as usize]
    }
}

/// The middle of sorted `samples`.
fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

/// `[target][operation]`.
pub type Measured = Vec<Vec<Timings>>;

/// `rounds` rounds of `per_round` lifecycles on each target in turn (after one untimed warm-up
/// lifecycle each), made by `clients` concurrent clients (kubelet's pod workers) on one
/// connection; `pulled` is an image no target holds, pulled and removed every lifecycle (by
/// the first client only when there are several, so that no two pulls of it overlap).
pub async fn measure(
    env: &PodEnv,
    targets: &[Target],
    pulled: &str,
    rounds: usize,
    per_round: usize,
    clients: usize,
) -> Measured {
    let mut measured = vec![vec![Timings::default(); OPERATIONS.len()]; targets.len()];
    for target in targets {
        lifecycle(env, target, Some(pulled), "warm-up").await;
    }
    for round in 0..rounds {
        for (index, target) in targets.iter().enumerate() {
            let workers = (0..clients).map(|client| async move {
                let mut samples = vec![Vec::new(); OPERATIONS.len()];
                for sample in 0..per_round {
                    let name = format!("{}-{round}-{client}-{sample}", target.name);
                    let pull = (client == 0).then_some(pulled);
                    for (operation, time) in lifecycle(env, target, pull, &name).await {
                        samples[operation].push(time);
                    }
                }
                samples
            });
            let mut samples = vec![Vec::new(); OPERATIONS.len()];
            for worker in join_all(workers).await {
                for (operation, times) in worker.into_iter().enumerate() {
                    samples[operation].extend(times);
                }
            }
            for (operation, times) in samples.into_iter().enumerate() {
                measured[index][operation].rounds.push(times);
            }
        }
    }
    measured
}

/// One pod with one container, from RunPodSandbox to RemovePodSandbox, with an image pull
/// (of `pulled`, if given) and the status calls kubelet's pod worker makes; the time of each
/// call, by its index in [`OPERATIONS`].
async fn lifecycle(
    env: &PodEnv,
    target: &Target,
    pulled: Option<&str>,
    name: &str,
) -> Vec<(usize, Duration)> {
    let pod = env.pod_config(name);
    // The container stops on SIGTERM, as a real workload does (busybox `sleep` as PID 1 would
    // wait out the grace period).
    let container = env.container_config(
        "app",
        &["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"],
    );
    let mut times = Vec::with_capacity(OPERATIONS.len());
    let mut started = Instant::now();
    let mut lap = |times: &mut Vec<(usize, Duration)>| {
        times.push((times.len(), started.elapsed()));
        started = Instant::now();
    };
    let (mut runtime, mut images) = (target.runtime.clone(), target.images.clone());
    let pod_id = runtime
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(pod.clone()),
            runtime_handler: String::new(),
        })
        .await
        .expect("RunPodSandbox")
        .into_inner()
        .pod_sandbox_id;
    lap(&mut times);
    runtime
        .pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: pod_id.clone(),
            verbose: false,
        })
        .await
        .expect("PodSandboxStatus");
    lap(&mut times);
    if let Some(pulled) = pulled {
        images
            .pull_image(PullImageRequest {
                image: Some(spec(pulled)),
                ..Default::default()
            })
            .await
            .expect("PullImage");
    }
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
    let id = runtime
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod_id.clone(),
            config: Some(container),
            sandbox_config: Some(pod),
        })
        .await
        .expect("CreateContainer")
        .into_inner()
        .container_id;
    lap(&mut times);
    runtime
        .start_container(StartContainerRequest {
            container_id: id.clone(),
        })
        .await
        .expect("StartContainer");
    lap(&mut times);
    runtime
        .container_status(ContainerStatusRequest {
            container_id: id.clone(),
            verbose: false,
        })
        .await
        .expect("ContainerStatus");
    lap(&mut times);
    runtime
        .stop_container(StopContainerRequest {
            container_id: id.clone(),
            timeout: 10,
        })
        .await
        .expect("StopContainer");
    lap(&mut times);
    runtime
        .remove_container(RemoveContainerRequest { container_id: id })
        .await
        .expect("RemoveContainer");
    lap(&mut times);
    runtime
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: pod_id.clone(),
        })
        .await
        .expect("StopPodSandbox");
    lap(&mut times);
    runtime
        .remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: pod_id,
        })
        .await
        .expect("RemovePodSandbox");
    lap(&mut times);
    if let Some(pulled) = pulled {
        images
            .remove_image(RemoveImageRequest {
                image: Some(spec(pulled)),
            })
            .await
            .expect("RemoveImage");
    }
    lap(&mut times);
    let took = |name: &str| times[OPERATIONS.iter().position(|o| *o == name).unwrap()].1;
    let create_start = took("CreateContainer") + took("StartContainer");
    times.push((times.len(), create_start));
    times
        .into_iter()
        .filter(|(operation, _)| {
            pulled.is_some() || !matches!(OPERATIONS[*operation], "PullImage" | "RemoveImage")
        })
        .collect()
}

/// The report: per operation (`names`, in `measured`'s order), each target's median of its
/// round medians and its p95, and the ratio of the last target's median (Crimson's) to the
/// first's (the peer's).
pub fn print(targets: &[Target], names: &[&str], measured: &Measured) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let width = names
        .iter()
        .map(|name| name.len())
        .max()
        .unwrap_or(0)
        .max(18);
    print!("{:<width$}", "operation (ms)");
    for target in targets {
        print!(" {:>14} {:>7}", format!("{} median", target.name), "p95");
    }
    println!(" {:>7}", "ratio");
    for (operation, name) in names.iter().enumerate() {
        print!("{name:<width$}");
        for per_target in measured {
            let timings = &per_target[operation];
            print!(
                " {:>14.2} {:>7.2}",
                ms(timings.central()),
                ms(timings.p95())
            );
        }
        if let [peer, .., crimson] = measured.as_slice() {
            let ratio = ms(crimson[operation].central()) / ms(peer[operation].central());
            print!(" {ratio:>7.2}");
        }
        println!();
    }
}
