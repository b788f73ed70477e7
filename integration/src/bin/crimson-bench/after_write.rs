//! The floor under the reads kubelet makes right after a write: ImageStatus after a PullImage
//! and PodSandboxStatus after a RunPodSandbox, each against Version (answered without looking
//! anything up) made in the same place, on every target in interleaved rounds. A call right
//! after a write finds the client's and the server's threads idle, and on a small machine the
//! wake-ups cost more than the handler; Crimson's Version there, over the peer's read there,
//! is the lowest ratio any handler of the read could reach.

use std::time::{Duration, Instant};

use crimson_integration::{pods::PodEnv, stack::spec};
use k8s_cri::v1::{
    ImageStatusRequest, PodSandboxStatusRequest, PullImageRequest, RemoveImageRequest,
    RemovePodSandboxRequest, RunPodSandboxRequest, StopPodSandboxRequest, VersionRequest,
};

use crate::side_by_side::{Measured, Target, Timings};

/// The timed calls: each read right after its write, then Version in its place.
pub const AFTER_WRITE: [&str; 4] = [
    "ImageStatus after a pull",
    "Version after a pull",
    "PodSandboxStatus after a run",
    "Version after a run",
];

/// `rounds` rounds of `per_round` samples of each of [`AFTER_WRITE`] on each target in turn;
/// `pulled` is an image no target holds, pulled and removed by every sample.
pub async fn measure(
    env: &PodEnv,
    targets: &[Target],
    pulled: &str,
    rounds: usize,
    per_round: usize,
) -> Measured {
    let mut measured = vec![vec![Timings::default(); AFTER_WRITE.len()]; targets.len()];
    for round in 0..rounds {
        for (index, target) in targets.iter().enumerate() {
            let mut samples = vec![Vec::new(); AFTER_WRITE.len()];
            // The read and Version alternate, so that both meet the same moments.
            for sample in 0..2 * per_round {
                let version = sample % 2 == 1;
                let name = format!("{}-after-write-{round}-{sample}", target.name);
                let (after_pull, after_run) =
                    sample_once(env, target, pulled, &name, version).await;
                samples[usize::from(version)].push(after_pull);
                samples[2 + usize::from(version)].push(after_run);
            }
            for (call, times) in samples.into_iter().enumerate() {
                measured[index][call].push_round(times);
            }
        }
    }
    measured
}

/// A pull of `pulled` and a pod `name` run, each followed by the read kubelet makes next (or
/// by Version when `version`), then undone; the times of the two calls that followed.
async fn sample_once(
    env: &PodEnv,
    target: &Target,
    pulled: &str,
    name: &str,
    version: bool,
) -> (Duration, Duration) {
    let (mut runtime, mut images) = (target.runtime.clone(), target.images.clone());
    images
        .pull_image(PullImageRequest {
            image: Some(spec(pulled)),
            ..Default::default()
        })
        .await
        .expect("PullImage");
    let status = images.image_status(ImageStatusRequest {
        image: Some(spec(&env.busybox)),
        verbose: false,
    });
    let after_pull = timed(target, version, status).await;
    images
        .remove_image(RemoveImageRequest {
            image: Some(spec(pulled)),
        })
        .await
        .expect("RemoveImage");
    let pod_sandbox_id = runtime
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(env.pod_config(name)),
            runtime_handler: String::new(),
        })
        .await
        .expect("RunPodSandbox")
        .into_inner()
        .pod_sandbox_id;
    let status = runtime.pod_sandbox_status(PodSandboxStatusRequest {
        pod_sandbox_id: pod_sandbox_id.clone(),
        verbose: false,
    });
    let after_run = timed(target, version, status).await;
    runtime
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: pod_sandbox_id.clone(),
        })
        .await
        .expect("StopPodSandbox");
    runtime
        .remove_pod_sandbox(RemovePodSandboxRequest { pod_sandbox_id })
        .await
        .expect("RemovePodSandbox");
    (after_pull, after_run)
}

/// The time of `read`, or of a Version call made instead when `version` (`read` is dropped
/// unsent).
async fn timed<T>(
    target: &Target,
    version: bool,
    read: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Duration {
    let mut runtime = target.runtime.clone();
    let started = Instant::now();
    if version {
        runtime
            .version(VersionRequest::default())
            .await
            .expect("Version");
    } else {
        read.await.expect("the read after the write");
    }
    started.elapsed()
}

/// The lowest ratio a read's handler could reach after each write: Crimson's Version there
/// over the peer's read there.
pub fn print_floor(measured: &Measured) {
    if let [peer, .., crimson] = measured.as_slice() {
        let ratio = |floor: usize, read: usize| {
            crimson[floor].central().as_secs_f64() / peer[read].central().as_secs_f64()
        };
        println!(
            "Crimson's Version there / the peer's read there (the floor of the ratio): \
             after a pull {:.2}, after a run {:.2}",
            ratio(1, 0),
            ratio(3, 2)
        );
    }
}
