//! Chaos under pod churn, against release binaries (`just chaos`): workers loop kubelet's pod
//! lifecycle through the front door while a daemon is `kill -9`'d every few seconds and started
//! again, in rounds that hit each of the five once in random order; every third round restarts
//! each gracefully instead (SIGTERM, then start: a rolling upgrade). Long-lived pods serve HTTP
//! and are probed meanwhile. It reports calls made and failed by the daemon last stopped, the
//! recovery time of each stop, pods lost or leaked, probes that failed and host leftovers, and
//! asserts: no failed call at a backend kill or at any graceful restart, at most 0.2 % of all
//! calls failed at front-door kills (the calls in flight in the killed process), nothing lost,
//! leaked or left behind.
//!
//! `CRIMSON_CHAOS_SECONDS` (default 90), `CRIMSON_CHAOS_INTERVAL_MS` between kills (default
//! 6000), `CRIMSON_CHAOS_WORKERS` (default 3), `CRIMSON_CHAOS_SEED` to replay a kill sequence.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use crimson_config::Daemon;
use crimson_integration::{
    eventually,
    pods::{
        PodEnv, RuntimeClient, assert_children_reaped, assert_nothing_left, http_get, tear_down,
    },
    require_root,
};
use k8s_cri::v1::{
    ContainerState, ContainerStatusRequest, CreateContainerRequest, PodSandboxStatusRequest,
    RemoveContainerRequest, RemovePodSandboxRequest, RunPodSandboxRequest, StartContainerRequest,
    StopContainerRequest, StopPodSandboxRequest,
};

/// kubelet's deadline for runtime calls.
const CALL_DEADLINE: Duration = Duration::from_secs(120);
/// Attempts of one step before a worker gives its pod up (each attempt is counted).
const ATTEMPTS: usize = 20;
/// How long the workers may take to finish their last pod cycle once the kills stop.
const FINISH_LIMIT: Duration = Duration::from_secs(180);
/// How often the long-lived pods are probed.
const PROBE_EVERY: Duration = Duration::from_secs(2);
/// Long-lived pods serving HTTP throughout.
const SERVERS: usize = 5;
const SERVE: &[&str] = &[
    "sh",
    "-c",
    "mkdir -p /www && echo alive > /www/index.html && exec httpd -f -p 80 -h /www",
];

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// One CRI call a worker made.
struct Call {
    what: &'static str,
    ended: Instant,
    error: Option<String>,
}

/// One kill (or graceful restart) and how long the daemon took to answer its health check
/// again.
struct Kill {
    daemon: Daemon,
    /// SIGTERM (drain, exit) then start: the rolling-upgrade path.
    graceful: bool,
    at: Instant,
    recovery: Duration,
}

impl Kill {
    /// "kill -9 of crimson-x", "restart of crimson-x", or "no kill yet".
    fn label(blamed: Option<(Daemon, bool)>) -> String {
        match blamed {
            None => "no kill yet".into(),
            Some((daemon, false)) => format!("kill -9 of {daemon}"),
            Some((daemon, true)) => format!("restart of {daemon}"),
        }
    }
}

#[derive(Default)]
struct Journal {
    calls: Mutex<Vec<Call>>,
    kills: Mutex<Vec<Kill>>,
    failed_probes: Mutex<Vec<String>>,
    /// Calls sent again because they never reached a server.
    resent: Mutex<usize>,
}

/// Whether `status` is hyper's "canceled": the request was disrupted before any of it was
/// written, so no server saw it (what grpc-go retries transparently).
fn never_sent(status: &tonic::Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(error) = source {
        if let Some(hyper) = error.downcast_ref::<hyper::Error>() {
            return hyper.is_canceled();
        }
        source = error.source();
    }
    false
}

impl Journal {
    /// Runs `call` until it succeeds (as kubelet retries), at most [`ATTEMPTS`] times,
    /// recording every attempt.
    async fn call<T, F, Fut>(&self, what: &'static str, mut call: F) -> Option<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        for _ in 0..ATTEMPTS {
            let mut result = call().await;
            // As kubelet's gRPC client does, a call that never left this process (its
            // connection closed before the request was written, e.g. at a graceful
            // restart's GOAWAY) is sent again at once; it is not a failed call.
            while result.as_ref().is_err_and(never_sent) {
                *self.resent.lock().unwrap() += 1;
                result = call().await;
            }
            let error = result.as_ref().err().map(|s| format!("{s:?}"));
            self.calls.lock().unwrap().push(Call {
                what,
                ended: Instant::now(),
                error,
            });
            if let Ok(response) = result {
                return Some(response.into_inner());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        None
    }

    /// The daemon killed or restarted last before `at` (and whether gracefully), if any.
    fn blamed(&self, at: Instant) -> Option<(Daemon, bool)> {
        self.kills
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|kill| kill.at <= at)
            .map(|kill| (kill.daemon, kill.graceful))
    }
}

fn deadline<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(CALL_DEADLINE);
    request
}

/// A small deterministic generator for the kill sequence.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The five daemons in a random order: every round of five kills hits each once.
fn shuffled(random: &mut XorShift) -> Vec<Daemon> {
    let mut daemons = Daemon::ALL.to_vec();
    for i in (1..daemons.len()).rev() {
        daemons.swap(i, (random.next() % (i as u64 + 1)) as usize);
    }
    daemons
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "release builds only: run by `just chaos`"]
async fn random_kills_under_pod_churn_cost_no_call_and_leave_nothing() {
    require_root!();
    let seconds = setting("CRIMSON_CHAOS_SECONDS", 90);
    let interval = Duration::from_millis(setting("CRIMSON_CHAOS_INTERVAL_MS", 6000));
    let workers = setting("CRIMSON_CHAOS_WORKERS", 3);
    let seed = setting(
        "CRIMSON_CHAOS_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1,
    );
    eprintln!("chaos: {seconds} s, a kill every {interval:?}, {workers} workers, seed {seed}");
    let env = Arc::new(PodEnv::start(false).await);
    let servers = start_servers(&env).await;
    let journal = Arc::new(Journal::default());
    let stop = Arc::new(AtomicBool::new(false));
    // One connection for every worker, as kubelet has.
    let client = env.stack.runtime();

    let churn: Vec<_> = (0..workers)
        .map(|worker| {
            let (env, journal, stop, client) =
                (env.clone(), journal.clone(), stop.clone(), client.clone());
            tokio::spawn(async move {
                let mut cycles = 0;
                while !stop.load(Ordering::Relaxed) {
                    cycle(
                        &env,
                        &journal,
                        client.clone(),
                        &format!("w{worker}-{cycles}"),
                    )
                    .await;
                    cycles += 1;
                }
                cycles
            })
        })
        .collect();
    let prober = tokio::spawn(probe(
        servers.iter().map(|(_, ip)| ip.clone()).collect(),
        journal.clone(),
        stop.clone(),
    ));

    let began = Instant::now();
    let mut random = XorShift(seed);
    let (mut order, mut round) = (Vec::new(), 0);
    while began.elapsed() + interval <= Duration::from_secs(seconds) {
        tokio::time::sleep(interval).await;
        if order.is_empty() {
            order = shuffled(&mut random);
            round += 1;
        }
        let daemon = order.pop().expect("a daemon to kill");
        // Every third round is a rolling upgrade of each daemon instead of kills.
        let graceful = round % 3 == 2;
        let at = Instant::now();
        let stopping = env.clone();
        tokio::task::spawn_blocking(move || {
            if graceful {
                let status = stopping.stack.terminate(daemon);
                assert!(
                    status.is_some_and(|s| s.success()),
                    "{daemon} stopped cleanly"
                );
            } else {
                stopping.stack.kill(daemon);
            }
        })
        .await
        .expect("stopping a daemon");
        env.stack.start_daemon(daemon).await;
        journal.kills.lock().unwrap().push(Kill {
            daemon,
            graceful,
            at,
            recovery: at.elapsed(),
        });
    }
    stop.store(true, Ordering::Relaxed);
    let finishing = async {
        let mut cycles = 0;
        for worker in churn {
            cycles += worker.await.expect("worker");
        }
        cycles
    };
    let finished = tokio::time::timeout(FINISH_LIMIT, finishing).await;
    prober.await.expect("prober");
    let report = report(&journal, *finished.as_ref().unwrap_or(&0));
    keep_logs(&env);
    assert!(
        finished.is_ok(),
        "a worker's pod cycle did not finish within {FINISH_LIMIT:?} of the end"
    );
    let lost = lost_servers(&env, &servers).await;
    let leaked = leaked_pods(&env, &servers).await;
    for (pod_id, _) in &servers {
        remove_pod(&env, pod_id).await;
    }
    assert_nothing_left(&env);
    assert_children_reaped(&env).await;

    assert!(lost.is_empty(), "long-lived pods lost: {lost:?}");
    assert!(leaked.is_empty(), "pods leaked: {leaked:?}");
    let probes = journal.failed_probes.lock().unwrap();
    assert!(
        probes.is_empty(),
        "long-lived pods stopped serving: {probes:?}"
    );
    assert_eq!(
        report.backend_failed, 0,
        "calls failed at backend kills: {:?}",
        report.failures
    );
    assert_eq!(
        report.restart_failed, 0,
        "calls failed at graceful restarts: {:?}",
        report.failures
    );
    assert!(
        report.front_door_failed * 1000 <= report.calls * 2,
        "{} of {} calls failed at front-door kills (more than 0.2 %): {:?}",
        report.front_door_failed,
        report.calls,
        report.failures
    );
    assert_eq!(
        report.unattributed_failed, 0,
        "calls failed with no kill before them: {:?}",
        report.failures
    );
}

/// One CRI call of a pod cycle through [`Journal::call`], with kubelet's deadline; the
/// request expression is evaluated for each attempt.
macro_rules! step {
    ($journal:expr, $client:expr, $method:ident, $request:expr) => {
        $journal.call(stringify!($method), || {
            let mut client = $client.clone();
            let request = deadline($request);
            async move { client.$method(request).await }
        })
    };
}

/// One kubelet pod worker's lifecycle of a pod with one container; a step that fails is
/// retried as kubelet would.
async fn cycle(env: &PodEnv, journal: &Journal, client: RuntimeClient, name: &str) {
    let pod = env.pod_config(name);
    let run = RunPodSandboxRequest {
        config: Some(pod.clone()),
        runtime_handler: String::new(),
    };
    let Some(pod_id) = step!(journal, client, run_pod_sandbox, run.clone())
        .await
        .map(|r| r.pod_sandbox_id)
    else {
        return;
    };
    let create = CreateContainerRequest {
        pod_sandbox_id: pod_id.clone(),
        config: Some(env.container_config("app", &["sleep", "3600"])),
        sandbox_config: Some(pod),
    };
    let created = step!(journal, client, create_container, create.clone())
        .await
        .map(|r| r.container_id);
    if let Some(container_id) = created {
        let container_id = || container_id.clone();
        step!(
            journal,
            client,
            start_container,
            StartContainerRequest {
                container_id: container_id()
            }
        )
        .await;
        step!(
            journal,
            client,
            container_status,
            ContainerStatusRequest {
                container_id: container_id(),
                verbose: false
            }
        )
        .await;
        step!(
            journal,
            client,
            stop_container,
            StopContainerRequest {
                container_id: container_id(),
                timeout: 0
            }
        )
        .await;
        step!(
            journal,
            client,
            remove_container,
            RemoveContainerRequest {
                container_id: container_id()
            }
        )
        .await;
    }
    let pod_sandbox_id = || pod_id.clone();
    step!(
        journal,
        client,
        pod_sandbox_status,
        PodSandboxStatusRequest {
            pod_sandbox_id: pod_sandbox_id(),
            verbose: false
        }
    )
    .await;
    step!(
        journal,
        client,
        stop_pod_sandbox,
        StopPodSandboxRequest {
            pod_sandbox_id: pod_sandbox_id()
        }
    )
    .await;
    step!(
        journal,
        client,
        remove_pod_sandbox,
        RemovePodSandboxRequest {
            pod_sandbox_id: pod_sandbox_id()
        }
    )
    .await;
}

/// The long-lived HTTP pods: (pod id, IP).
async fn start_servers(env: &PodEnv) -> Vec<(String, String)> {
    let mut servers = Vec::new();
    for i in 0..SERVERS {
        let pod = env.pod_config(&format!("server-{i}"));
        let pod_id = env.run_pod(&pod).await;
        env.run_container(&pod_id, &pod, env.container_config("httpd", SERVE))
            .await;
        let ip = env.pod_ip(&pod_id).await;
        eventually(30, "httpd in a long-lived pod", || {
            let address = format!("{ip}:80");
            async move { http_get(&address) }
        })
        .await;
        servers.push((pod_id, ip));
    }
    servers
}

/// Probes every long-lived pod each [`PROBE_EVERY`] until `stop`, journaling failures.
async fn probe(ips: Vec<String>, journal: Arc<Journal>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        for ip in &ips {
            let address = format!("{ip}:80");
            let served = tokio::task::spawn_blocking(move || http_get(&address))
                .await
                .expect("probe");
            if served.is_none() {
                journal
                    .failed_probes
                    .lock()
                    .unwrap()
                    .push(format!("{ip} at {:?}", Instant::now()));
            }
        }
        tokio::time::sleep(PROBE_EVERY).await;
    }
}

/// Calls and kills of the time after one daemon's kills.
#[derive(Default)]
struct Tally {
    calls: usize,
    failed: usize,
    recoveries: Vec<Duration>,
}

struct Report {
    calls: usize,
    restart_failed: usize,
    backend_failed: usize,
    front_door_failed: usize,
    unattributed_failed: usize,
    failures: Vec<String>,
}

/// Prints the run's figures and sorts its failures by the daemon last killed.
fn report(journal: &Journal, cycles: usize) -> Report {
    let calls = journal.calls.lock().unwrap();
    let kills = journal.kills.lock().unwrap();
    let mut by_daemon: BTreeMap<String, Tally> = BTreeMap::new();
    for kill in kills.iter() {
        by_daemon
            .entry(Kill::label(Some((kill.daemon, kill.graceful))))
            .or_default()
            .recoveries
            .push(kill.recovery);
    }
    let mut report = Report {
        calls: calls.len(),
        restart_failed: 0,
        backend_failed: 0,
        front_door_failed: 0,
        unattributed_failed: 0,
        failures: Vec::new(),
    };
    drop(kills);
    for call in calls.iter() {
        let blamed = journal.blamed(call.ended);
        let name = Kill::label(blamed);
        let tally = by_daemon.entry(name.clone()).or_default();
        tally.calls += 1;
        let Some(error) = &call.error else { continue };
        tally.failed += 1;
        match blamed {
            Some((_, true)) => report.restart_failed += 1,
            Some((Daemon::Cri, false)) => report.front_door_failed += 1,
            Some(_) => report.backend_failed += 1,
            None => report.unattributed_failed += 1,
        }
        report
            .failures
            .push(format!("{} after the {name}: {error}", call.what));
    }
    eprintln!(
        "chaos: {} calls in {cycles} pod cycles, {} failed, {} never sent and sent again",
        report.calls,
        report.failures.len(),
        journal.resent.lock().unwrap()
    );
    for (daemon, mut tally) in by_daemon {
        tally.recoveries.sort();
        let median = tally.recoveries.get(tally.recoveries.len() / 2);
        eprintln!(
            "  after each {daemon}: {} times, {} calls, {} failed; recovery (stop to healthy) median {median:?}, max {:?}",
            tally.recoveries.len(),
            tally.calls,
            tally.failed,
            tally.recoveries.last()
        );
    }
    for failure in &report.failures {
        eprintln!("  failed: {failure}");
    }
    report
}

/// Long-lived pods that are gone or whose container no longer runs.
async fn lost_servers(env: &PodEnv, servers: &[(String, String)]) -> Vec<String> {
    let running: Vec<String> = env
        .containers()
        .await
        .into_iter()
        .filter(|c| c.state == ContainerState::ContainerRunning as i32)
        .map(|c| c.pod_sandbox_id)
        .collect();
    servers
        .iter()
        .filter(|(pod_id, _)| !running.contains(pod_id))
        .map(|(pod_id, _)| pod_id.clone())
        .collect()
}

/// Pods the runtime still holds besides the long-lived ones (the churn removed all of its).
async fn leaked_pods(env: &PodEnv, servers: &[(String, String)]) -> Vec<String> {
    env.pods()
        .await
        .into_iter()
        .filter(|pod| !servers.iter().any(|(id, _)| *id == pod.id))
        .map(|pod| format!("{} ({:?})", pod.id, pod.metadata.map(|m| m.name)))
        .collect()
}

async fn remove_pod(env: &PodEnv, pod_id: &str) {
    let container = env
        .containers()
        .await
        .into_iter()
        .find(|c| c.pod_sandbox_id == pod_id)
        .expect("the long-lived pod's container");
    tear_down(env.stack.runtime(), pod_id.to_string(), container.id)
        .await
        .expect("removing a long-lived pod");
}

/// Copies the daemons' logs to `<target>/tmp/chaos-logs` for a look after the run.
fn keep_logs(env: &PodEnv) {
    let kept = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("chaos-logs");
    let _ = std::fs::remove_dir_all(&kept);
    let _ = std::fs::create_dir_all(&kept);
    for entry in std::fs::read_dir(env.stack.root().join("logs"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let _ = std::fs::copy(entry.path(), kept.join(entry.file_name()));
    }
    eprintln!("chaos: daemon logs kept in {}", kept.display());
}
