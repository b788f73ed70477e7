//! `just bench`: pod + container lifecycles through the front door from a warm image cache,
//! with the median and p95 of every step, beside the raw floor measured in the same run:
//! `runc run -d` + kill + delete of an equivalent bundle; and the wall time of a burst of pods
//! started at once against the same pods started one after another, beside `runc run -d` of
//! as many containers both ways; then every CRI call of a pod's life through Crimson and a
//! peer (a private containerd, Debian's package) side by side ([`side_by_side`]), with the
//! calls kubelet polls ([`polled`]) and the floor under the reads that follow a write
//! ([`after_write`]). Not a test: it asserts nothing.

mod after_write;
mod polled;
mod pss;
mod side_by_side;

use std::{
    path::Path,
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use clap::Parser;
use crimson_api::storage::v1::CreateRootfsRequest;
use crimson_integration::{
    containerd::Containerd,
    image_builder::{LayerBuilder, Pusher, TestImage},
    pods::{PodEnv, tear_down},
    registry::TestRegistry,
    stack::StackOptions,
};
use k8s_cri::v1::{
    ExecSyncRequest, ImageStatusRequest, RemoveContainerRequest, RemovePodSandboxRequest,
    StartContainerRequest, StopContainerRequest, StopPodSandboxRequest,
};

/// Measure Crimson's pod and container lifecycle against raw runc.
#[derive(Parser)]
struct Args {
    /// Lifecycles to measure (after one warm-up).
    #[arg(long, default_value_t = 20)]
    iterations: usize,
    /// Pods (each with a container) in the burst started at once and one after another.
    #[arg(long, default_value_t = 20)]
    burst: usize,
    /// The runtime Crimson is measured beside: `containerd` (a private one is started), or
    /// `none`. `--endpoint` overrides it.
    #[arg(long, default_value = "containerd")]
    peer: String,
    /// The CRI socket of a running runtime to measure beside Crimson instead of the private
    /// containerd (`unix:///run/containerd/containerd.sock`). It must pull from the bench's
    /// registry (`--registry-port`, plain HTTP on loopback) and run pods with its own CNI
    /// network and sandbox image; its memory is not measured.
    #[arg(long)]
    endpoint: Option<String>,
    /// The loopback port of the bench's registry (a free one by default): the one an
    /// `--endpoint` runtime is configured to pull `127.0.0.1:<port>/...` from.
    #[arg(long)]
    registry_port: Option<u16>,
    /// Interleaved rounds of the side-by-side measurement (`--iterations` lifecycles each).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Concurrent clients (kubelet pod workers) of the second side-by-side measurement.
    #[arg(long, default_value_t = 3)]
    clients: usize,
    /// Pods running on each runtime while the calls kubelet polls are timed.
    #[arg(long, default_value_t = 50)]
    polled_pods: usize,
    /// Samples of each polled call per round.
    #[arg(long, default_value_t = 50)]
    polled_samples: usize,
    /// Sizes of the bursts of pods started at once on each runtime side by side.
    #[arg(long, value_delimiter = ',', default_value = "20,100")]
    peer_bursts: Vec<usize>,
}

const STEPS: [&str; 7] = [
    "RunPodSandbox",
    "CreateContainer",
    "StartContainer",
    "StopContainer",
    "RemoveContainer",
    "StopPodSandbox",
    "RemovePodSandbox",
];

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if !nix::unistd::geteuid().is_root() {
        eprintln!("crimson-bench needs root (namespaces, mounts, cgroups)");
        std::process::exit(2);
    }
    let registry = args
        .registry_port
        .map_or_else(TestRegistry::start, TestRegistry::start_on);
    let env = PodEnv::start_with_registry(Arc::new(registry), false, StackOptions::default());
    let env = Arc::new(env.await);
    let fresh = pss::of_processes_naming(env.stack.root());
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); STEPS.len() + 1];
    for iteration in 0..=args.iterations {
        let timings = lifecycle(&env, iteration).await;
        if iteration > 0 {
            for (step, time) in timings.iter().enumerate() {
                samples[step].push(*time);
            }
            samples[STEPS.len()].push(timings.iter().sum());
        }
    }
    // CreateContainer + StartContainer of each lifecycle, paired before the steps are sorted.
    let mut create_start: Vec<Duration> = samples[1]
        .iter()
        .zip(&samples[2])
        .map(|(create, start)| *create + *start)
        .collect();
    let exec_samples = exec_sync_latency(&env, args.iterations).await;
    let mut floor = runc_floor(&env, args.iterations).await;
    let serial = start_burst(&env, args.burst, false).await;
    let concurrent = start_burst(&env, args.burst, true).await;
    let (runc_serial, runc_concurrent) = runc_burst(&env, args.burst).await;

    println!(
        "{} lifecycles, warm image cache ({} cores)\n",
        args.iterations,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("{:<34} {:>10} {:>10}", "step", "median ms", "p95 ms");
    for (step, name) in STEPS
        .iter()
        .chain(["pod + container total"].iter())
        .enumerate()
    {
        let (median, p95) = summary(&mut samples[step]);
        println!("{name:<34} {median:>10.1} {p95:>10.1}");
    }
    let (floor_median, floor_p95) = summary(&mut floor.lifecycle);
    println!(
        "{:<34} {floor_median:>10.1} {floor_p95:>10.1}",
        "runc run -d + kill + delete (floor)"
    );
    let (run_median, run_p95) = summary(&mut floor.run);
    println!(
        "{:<34} {run_median:>10.1} {run_p95:>10.1}",
        "runc run -d (floor)"
    );
    let (monitored_median, monitored_p95) = summary(&mut floor.monitored);
    println!(
        "{:<34} {monitored_median:>10.1} {monitored_p95:>10.1}",
        "conmon + runc create, runc start"
    );
    let (create_start_median, _) = summary(&mut create_start);
    let (total_median, _) = summary(&mut samples[STEPS.len()]);
    let mut exec_samples = exec_samples;
    let (exec_median, exec_p95) = summary(&mut exec_samples);
    let (exec_floor_median, exec_floor_p95) = summary(&mut floor.exec);
    println!(
        "{:<34} {exec_median:>10.1} {exec_p95:>10.1}",
        "ExecSync `true`"
    );
    println!(
        "{:<34} {exec_floor_median:>10.1} {exec_floor_p95:>10.1}",
        "runc exec `true` (floor)"
    );
    println!(
        "\nratio of medians, crimson total / runc floor: {:.1}x",
        total_median / floor_median
    );
    println!(
        "ratio of medians, CreateContainer + StartContainer / runc run -d: {:.2}x",
        create_start_median / run_median
    );
    println!(
        "ratio of medians, CreateContainer + StartContainer / (conmon + runc create, runc start): {:.2}x",
        create_start_median / monitored_median
    );
    println!(
        "ratio of medians, ExecSync / runc exec: {:.1}x",
        exec_median / exec_floor_median
    );

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "\n{} pods + containers started (wall ms)   one by one    at once",
        args.burst
    );
    println!(
        "{:<34} {:>10.0} {:>10.0}",
        "crimson (runp + create + start)",
        ms(serial),
        ms(concurrent)
    );
    println!(
        "{:<34} {:>10.0} {:>10.0}",
        "runc run -d (floor)",
        ms(runc_serial),
        ms(runc_concurrent)
    );
    println!(
        "at once / one by one: crimson {:.2}x, runc {:.2}x; crimson at once / runc at once: {:.1}x",
        ms(concurrent) / ms(serial),
        ms(runc_concurrent) / ms(runc_serial),
        ms(concurrent) / ms(runc_concurrent)
    );

    side_by_side(&env, &args, fresh).await;
}

/// How long the runtimes rest before their memory is measured after work: idle threads end,
/// collectors run.
const SETTLE: Duration = Duration::from_secs(5);

/// Every CRI call of a pod's life through the peer and Crimson, interleaved round by round,
/// by one client and by several; the calls kubelet polls with many pods running; bursts of
/// pods started at once, and the runtimes' memory: idle fresh (Crimson's as it was `fresh`ly
/// started, containerd's once it holds the test image too), idle after the lifecycles, and
/// with a burst's pods running.
async fn side_by_side(env: &PodEnv, args: &Args, fresh: f64) {
    let (rounds, per_round) = (args.rounds, args.iterations);
    let pause = format!("{}/pause:test", env.registry.address);
    let Some(peer) = Peer::start(args, &env.registry.address, &pause).await else {
        return;
    };
    // An image neither runtime holds, pulled and removed in every lifecycle.
    let pulled = format!("{}/bench-pull:1", env.registry.address);
    let layer = LayerBuilder::new()
        .file("bench-pull", b"pulled by every lifecycle", 0o644)
        .build();
    Pusher::new(&env.registry.address, None)
        .push("bench-pull", "1", &TestImage::with_layers(vec![layer]))
        .await;
    let targets = [
        peer.target.clone(),
        side_by_side::Target {
            name: "crimson".into(),
            runtime: env.stack.runtime(),
            images: env.stack.images(),
        },
    ];
    // A warm image cache on both, as for Crimson above.
    targets[0]
        .images
        .clone()
        .pull_image(k8s_cri::v1::PullImageRequest {
            image: Some(crimson_integration::stack::spec(&env.busybox)),
            ..Default::default()
        })
        .await
        .expect("the peer pulls busybox");
    let peer_memory = || peer.dir().map(pss::of_processes_naming);
    let fresh = [peer_memory(), Some(fresh)];
    let operations = &side_by_side::OPERATIONS;
    let measured = side_by_side::measure(env, &targets, &pulled, rounds, per_round, 1).await;
    tokio::time::sleep(SETTLE).await;
    let rested = [
        peer_memory(),
        Some(pss::of_processes_naming(env.stack.root())),
    ];
    println!(
        "\nside by side: {rounds} interleaved rounds of {per_round} lifecycles each \
         (median of the round medians; ratio = crimson / {})",
        targets[0].name
    );
    side_by_side::print(&targets, operations, &measured);
    let clients = args.clients;
    let measured = side_by_side::measure(env, &targets, &pulled, rounds, per_round, clients).await;
    println!("\nthe same by {clients} concurrent clients ({per_round} lifecycles each a round)");
    side_by_side::print(&targets, operations, &measured);
    let pods = args.polled_pods;
    let samples = args.polled_samples;
    let measured = polled::measure(env, &targets, pods, rounds, samples).await;
    println!("\nthe calls kubelet polls, {pods} pods running on each ({samples} a round)");
    side_by_side::print(&targets, &polled::POLLED, &measured);
    let measured = after_write::measure(env, &targets, &pulled, rounds, per_round).await;
    println!(
        "\nreads right after a write, and Version (no lookup) in their place ({per_round} each a round)"
    );
    side_by_side::print(&targets, &after_write::AFTER_WRITE, &measured);
    after_write::print_floor(&measured);
    println!(
        "\nmemory (PSS MiB, daemons and monitors) {:>12}    crimson   ratio",
        targets[0].name
    );
    for (label, memory) in [
        ("idle, fresh", fresh),
        ("idle, after the lifecycles", rested),
    ] {
        print_compared(label, memory, 1);
    }
    for &count in &args.peer_bursts {
        let mut walls = Vec::new();
        let mut memory = Vec::new();
        for (index, target) in targets.iter().enumerate() {
            let (wall, started, failures) = burst_at_once(
                env,
                &target.runtime,
                &format!("{}-burst", target.name),
                count,
            )
            .await;
            memory.push(match index {
                0 => peer_memory(),
                _ => Some(pss::of_processes_naming(env.stack.root())),
            });
            walls.push(wall);
            if failures > 0 {
                println!(
                    "{}: {failures} of {count} pods failed to start",
                    target.name
                );
            }
            remove_all(&target.runtime, started).await;
        }
        print_compared(&format!("{count} pods running"), [memory[0], memory[1]], 1);
        let wall_ms = |wall: Duration| Some(wall.as_secs_f64() * 1000.0);
        print_compared(
            &format!("{count} pods started at once (wall ms)"),
            [wall_ms(walls[0]), wall_ms(walls[1])],
            0,
        );
    }
}

/// One line of the peer's and Crimson's figure and their ratio (`-` for what was not
/// measured), with `decimals` digits.
fn print_compared(label: &str, [peer, crimson]: [Option<f64>; 2], decimals: usize) {
    let figure = |value: Option<f64>| value.map_or("-".into(), |v| format!("{v:.decimals$}"));
    let ratio = peer.zip(crimson).map_or("-".into(), |(peer, crimson)| {
        format!("{:.2}", crimson / peer)
    });
    println!(
        "{label:<40} {:>10} {:>10} {ratio:>7}",
        figure(peer),
        figure(crimson)
    );
}

/// The runtime measured beside Crimson.
struct Peer {
    /// Its clients and its name in the report.
    target: side_by_side::Target,
    /// The private containerd, when the bench started it (stopped when dropped).
    containerd: Option<Containerd>,
}

impl Peer {
    /// The runtime at `--endpoint`, else a private containerd pulling from `registry` with
    /// `pause` as its sandbox image; `None` for `--peer none`.
    async fn start(args: &Args, registry: &str, pause: &str) -> Option<Self> {
        if let Some(endpoint) = &args.endpoint {
            let Some(socket) = endpoint.strip_prefix("unix://") else {
                eprintln!("--endpoint {endpoint:?}: a unix:// socket");
                std::process::exit(2);
            };
            let channel = crimson_rpc::connect_unix(socket);
            let mut runtime =
                k8s_cri::v1::runtime_service_client::RuntimeServiceClient::new(channel.clone());
            let version = runtime
                .version(k8s_cri::v1::VersionRequest::default())
                .await
                .unwrap_or_else(|status| {
                    eprintln!("{endpoint}: {}", status.message());
                    std::process::exit(2);
                })
                .into_inner();
            let target = side_by_side::Target {
                name: format!("{}-peer", version.runtime_name),
                runtime,
                images: k8s_cri::v1::image_service_client::ImageServiceClient::new(channel),
            };
            return Some(Self {
                target,
                containerd: None,
            });
        }
        match args.peer.as_str() {
            "none" => None,
            "containerd" => {
                let containerd = Containerd::start(registry, pause).await;
                let target = side_by_side::Target {
                    name: "containerd".into(),
                    runtime: containerd.runtime(),
                    images: containerd.images(),
                };
                Some(Self {
                    target,
                    containerd: Some(containerd),
                })
            }
            other => {
                eprintln!("unknown peer {other:?}: containerd or none");
                None
            }
        }
    }

    /// The directory every process of the peer names, when the bench started it.
    fn dir(&self) -> Option<&Path> {
        self.containerd.as_ref().map(Containerd::root)
    }
}

/// Wall time of starting `count` pods with a container each at once through `client`; the
/// pods that started and how many failed (each failure is printed).
async fn burst_at_once(
    env: &PodEnv,
    client: &crimson_integration::pods::RuntimeClient,
    label: &str,
    count: usize,
) -> (Duration, Vec<(String, String)>, usize) {
    let began = Instant::now();
    let starts = (0..count).map(|i| async move {
        let name = format!("{label}-{i}");
        env.start_sleeper(client.clone(), &name).await
    });
    let results = futures::future::join_all(starts).await;
    let wall = began.elapsed();
    let mut started = Vec::new();
    let mut failures = 0;
    for result in results {
        match result {
            Ok(pod) => started.push(pod),
            Err(error) => {
                eprintln!("{label}: {error}");
                failures += 1;
            }
        }
    }
    (wall, started, failures)
}

/// Removes `started` pods (and their containers) at once.
async fn remove_all(
    client: &crimson_integration::pods::RuntimeClient,
    started: Vec<(String, String)>,
) {
    let removals = started
        .into_iter()
        .map(|(pod, container)| tear_down(client.clone(), pod, container));
    for result in futures::future::join_all(removals).await {
        if let Err(error) = result {
            eprintln!("removing a burst's pod: {error}");
        }
    }
}

/// Wall time of starting `count` pods with a container each, all at once or one by one (then
/// removes them, untimed).
async fn start_burst(env: &Arc<PodEnv>, count: usize, at_once: bool) -> Duration {
    let client = env.stack.runtime();
    let label = if at_once { "at-once" } else { "one-by-one" };
    let began = Instant::now();
    let mut started = Vec::new();
    if at_once {
        let tasks: Vec<_> = (0..count)
            .map(|i| {
                let (env, client) = (env.clone(), client.clone());
                tokio::spawn(
                    async move { env.start_sleeper(client, &format!("{label}-{i}")).await },
                )
            })
            .collect();
        for task in tasks {
            started.push(task.await.unwrap().unwrap());
        }
    } else {
        for i in 0..count {
            let name = format!("{label}-{i}");
            started.push(env.start_sleeper(client.clone(), &name).await.unwrap());
        }
    }
    let wall = began.elapsed();
    let removals: Vec<_> = started
        .into_iter()
        .map(|(pod, container)| tokio::spawn(tear_down(client.clone(), pod, container)))
        .collect();
    for removal in removals {
        removal.await.unwrap().unwrap();
    }
    wall
}

/// Wall time of `runc run -d` of `count` containers of the floor bundle, one by one and at once.
async fn runc_burst(env: &PodEnv, count: usize) -> (Duration, Duration) {
    let (bundle, state) = floor_bundle(env, "bench-burst").await;
    let run_all = |at_once: bool| {
        let ids: Vec<String> = (0..count)
            .map(|i| format!("crimson-bench-burst-{at_once}-{i}"))
            .collect();
        let began = Instant::now();
        if at_once {
            std::thread::scope(|scope| {
                for id in &ids {
                    let (bundle, state) = (bundle.path(), state.path());
                    scope.spawn(move || {
                        run(runc(state)
                            .args(["run", "-d", "--bundle"])
                            .arg(bundle)
                            .arg(id))
                    });
                }
            });
        } else {
            for id in &ids {
                run(runc(state.path())
                    .args(["run", "-d", "--bundle"])
                    .arg(bundle.path())
                    .arg(id));
            }
        }
        let wall = began.elapsed();
        for id in &ids {
            run(runc(state.path()).args(["delete", "--force", id]));
        }
        wall
    };
    (run_all(false), run_all(true))
}

/// One pod + container lifecycle; the time of each step.
async fn lifecycle(env: &PodEnv, iteration: usize) -> Vec<Duration> {
    let mut runtime = env.stack.runtime();
    let mut images = env.stack.images();
    let pod = env.pod_config(&format!("bench-{iteration}"));
    let mut times = Vec::new();
    let mut timed = Instant::now();
    let mut lap = |times: &mut Vec<Duration>| {
        times.push(timed.elapsed());
        timed = Instant::now();
    };
    let pod_id = env.run_pod(&pod).await;
    lap(&mut times);
    // kubelet checks the image before creating a container.
    images
        .image_status(ImageStatusRequest {
            image: Some(crimson_integration::stack::spec(&env.busybox)),
            verbose: false,
        })
        .await
        .unwrap();
    let id = env
        .create_container(
            &pod_id,
            &pod,
            env.container_config("sleeper", &["sleep", "3600"]),
        )
        .await
        .unwrap();
    lap(&mut times);
    runtime
        .start_container(StartContainerRequest {
            container_id: id.clone(),
        })
        .await
        .unwrap();
    lap(&mut times);
    runtime
        .stop_container(StopContainerRequest {
            container_id: id.clone(),
            timeout: 10,
        })
        .await
        .unwrap();
    lap(&mut times);
    runtime
        .remove_container(RemoveContainerRequest { container_id: id })
        .await
        .unwrap();
    lap(&mut times);
    runtime
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: pod_id.clone(),
        })
        .await
        .unwrap();
    lap(&mut times);
    runtime
        .remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: pod_id,
        })
        .await
        .unwrap();
    lap(&mut times);
    times
}

/// ExecSync of `true` in a running container, as a probe does.
async fn exec_sync_latency(env: &PodEnv, iterations: usize) -> Vec<Duration> {
    let pod = env.pod_config("bench-exec");
    let pod_id = env.run_pod(&pod).await;
    let id = env
        .run_container(
            &pod_id,
            &pod,
            env.container_config("probe-target", &["sleep", "3600"]),
        )
        .await;
    let mut runtime = env.stack.runtime();
    let mut samples = Vec::new();
    for iteration in 0..=iterations {
        let started = Instant::now();
        let response = runtime
            .exec_sync(ExecSyncRequest {
                container_id: id.clone(),
                cmd: vec!["true".into()],
                timeout: 10,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(response.exit_code, 0);
        if iteration > 0 {
            samples.push(started.elapsed());
        }
    }
    runtime
        .remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: pod_id,
        })
        .await
        .unwrap();
    samples
}

/// A bundle running the same image and command as the bench's containers, on a root
/// filesystem `id` from crimson-storage, and a runc state dir.
async fn floor_bundle(env: &PodEnv, id: &str) -> (tempfile::TempDir, tempfile::TempDir) {
    let top = env.stack.top_chain_id(&env.busybox).await;
    let rootfs = env
        .stack
        .storage()
        .create_rootfs(CreateRootfsRequest {
            id: id.into(),
            top_chain_id: top,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .mount_path;
    let bundle = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    run(Command::new("runc")
        .arg("spec")
        .arg("--bundle")
        .arg(bundle.path()));
    let config_path = bundle.path().join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    config["root"] = serde_json::json!({"path": rootfs, "readonly": false});
    config["process"]["args"] = serde_json::json!(["sleep", "3600"]);
    config["process"]["terminal"] = false.into();
    std::fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();
    (bundle, state)
}

/// `runc run -d` + `kill` + `delete` of a bundle running the same image and command, and
/// `runc exec` of `true` in such a container.
async fn runc_floor(env: &PodEnv, iterations: usize) -> RuncFloor {
    let (bundle, state) = floor_bundle(env, "bench-floor").await;
    let mut samples = Vec::new();
    let mut run_samples = Vec::new();
    for iteration in 0..=iterations {
        let id = format!("crimson-bench-floor-{iteration}");
        let started = Instant::now();
        run(runc(state.path())
            .args(["run", "-d", "--bundle"])
            .arg(bundle.path())
            .arg(&id));
        let ran = started.elapsed();
        run(runc(state.path()).args(["kill", &id, "KILL"]));
        while !runc_stopped(state.path(), &id) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        run(runc(state.path()).args(["delete", &id]));
        if iteration > 0 {
            samples.push(started.elapsed());
            run_samples.push(ran);
        }
    }
    let monitored = monitored_floor(bundle.path(), state.path(), iterations).await;
    let exec_id = "crimson-bench-floor-exec";
    run(runc(state.path())
        .args(["run", "-d", "--bundle"])
        .arg(bundle.path())
        .arg(exec_id));
    let mut exec_samples = Vec::new();
    for iteration in 0..=iterations {
        let started = Instant::now();
        run(runc(state.path()).args(["exec", exec_id, "true"]));
        if iteration > 0 {
            exec_samples.push(started.elapsed());
        }
    }
    run(runc(state.path()).args(["delete", "--force", exec_id]));
    RuncFloor {
        lifecycle: samples,
        run: run_samples,
        monitored,
        exec: exec_samples,
    }
}

/// conmon running `runc create`, then `runc start`, through crimson-sandbox's own code for
/// them, on the floor bundle: what CreateContainer + StartContainer cannot do without.
async fn monitored_floor(bundle: &Path, root: &Path, iterations: usize) -> Vec<Duration> {
    use crimson_sandbox::runtime::{
        conmon::{self, Monitor},
        oci_runtime::OciRuntime,
    };
    let runtime = OciRuntime {
        path: "/usr/sbin/runc".into(),
        root: root.to_path_buf(),
        features: Default::default(),
        runner: std::sync::Arc::new(crimson_sandbox::runtime::oci_runtime::RuntimeBinary),
    };
    let files = tempfile::tempdir().unwrap();
    let mut samples = Vec::new();
    for iteration in 0..=iterations {
        let id = format!("crimson-bench-monitored-{iteration}");
        let started = Instant::now();
        let held = conmon::Conmon.start(conmon::ConmonCreate {
            conmon: Path::new("conmon"),
            runtime: &runtime,
            container_id: &id,
            name: "floor",
            bundle,
            log_path: &files.path().join(format!("{id}.log")),
            exit_dir: files.path(),
            attach_dir: files.path(),
            stdin: false,
            stdin_once: false,
            tty: false,
            log_size_max: -1,
        });
        let created = held
            .expect("conmon starts")
            .create()
            .await
            .expect("conmon + runc create");
        let (opened, _) = tokio::sync::oneshot::channel();
        runtime
            .start(&id, created.pid, opened)
            .await
            .expect("runc start");
        if iteration > 0 {
            samples.push(started.elapsed());
        }
        run(runc(root).args(["delete", "--force", &id]));
    }
    samples
}

/// What the raw OCI runtime takes, by sample.
struct RuncFloor {
    /// `runc run -d`, `runc kill` and `runc delete`.
    lifecycle: Vec<Duration>,
    /// `runc run -d` alone: what CreateContainer + StartContainer do for one container.
    run: Vec<Duration>,
    /// conmon + `runc create`, then `runc start`: the same through a monitor, as Crimson (and
    /// CRI-O) run every container.
    monitored: Vec<Duration>,
    /// `runc exec true`.
    exec: Vec<Duration>,
}

fn runc(root: &Path) -> Command {
    let mut command = Command::new("runc");
    command
        .arg("--root")
        .arg(root)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    command
}

fn runc_stopped(root: &Path, id: &str) -> bool {
    let output = runc(root)
        .args(["state", id])
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).contains("\"stopped\"")
}

fn run(command: &mut Command) {
    let status = command.status().expect("running runc");
    assert!(status.success(), "{command:?} failed");
}

/// (median, p95) in milliseconds.
fn summary(samples: &mut [Duration]) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| {
        samples[((samples.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1000.0
    };
    (at(0.5), at(0.95))
}
