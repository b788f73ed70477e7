//! The metric families every daemon has: its served RPCs, its calls to peers, the objects its
//! database holds, and when it started.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crimson_config::Daemon;
use prometheus_client::{
    encoding::{EncodeLabelSet, prometheus_text},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

/// Labels of one served RPC.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    daemon: &'static str,
    service: String,
    method: String,
}

/// Labels of one served RPC's answers.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcCodeLabels {
    daemon: &'static str,
    service: String,
    method: String,
    code: String,
}

/// Labels of the calls to one peer daemon.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabels {
    daemon: &'static str,
    peer: &'static str,
}

/// Labels of one kind of object a daemon holds, in one state where the kind has states.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ObjectLabels {
    daemon: &'static str,
    kind: &'static str,
    state: Option<&'static str>,
}

/// Labels of one kind of object a daemon holds.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    daemon: &'static str,
    kind: &'static str,
}

/// Labels of how image pulls ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PullLabels {
    daemon: &'static str,
    outcome: &'static str,
}

/// Labels of what start-up reconciliation did to one kind of object.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReconcileLabels {
    daemon: &'static str,
    kind: &'static str,
    action: &'static str,
}

/// Labels of one kind of host operation (a CNI command, an OCI runtime command, …).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    daemon: &'static str,
    operation: String,
}

/// Labels of how host operations of one kind ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationOutcomeLabels {
    daemon: &'static str,
    operation: String,
    outcome: &'static str,
}

/// Labels of container exits.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ExitLabels {
    daemon: &'static str,
    code: String,
}

/// Labels naming one container of one pod.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ContainerLabels {
    daemon: &'static str,
    pod: String,
    container: String,
}

/// Labels naming the daemon only.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DaemonLabels {
    daemon: &'static str,
}

type Latencies<L> = Family<L, Histogram, fn() -> Histogram>;

/// 0.5 ms to ~33 s: from a cached status to a slow pull.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 17))
}

/// How one served RPC ended: its path (`/package.Service/Method`) and gRPC code name.
pub struct RpcOutcome<'a> {
    /// The request path.
    pub path: &'a str,
    /// `OK`, `NOT_FOUND`, … as gRPC names them.
    pub code: &'a str,
    /// From the request to the response headers.
    pub elapsed: Duration,
}

/// How many objects of one kind a daemon holds (in one state, for kinds with states), and
/// the bytes they take where the daemon knows it cheaply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectCount {
    /// "pods", "layers", …
    pub kind: &'static str,
    /// "ready", "running", …; `None` for kinds without states.
    pub state: Option<&'static str>,
    /// How many there are.
    pub count: u64,
    /// Their size in bytes, when known.
    pub bytes: Option<u64>,
}

impl ObjectCount {
    /// `count` objects of `kind`, which has no states.
    pub fn of(kind: &'static str, count: u64) -> Self {
        Self {
            kind,
            state: None,
            count,
            bytes: None,
        }
    }

    /// `count` objects of `kind` in `state`.
    pub fn in_state(kind: &'static str, state: &'static str, count: u64) -> Self {
        Self {
            state: Some(state),
            ..Self::of(kind, count)
        }
    }

    /// The same count, taking `bytes`.
    pub fn with_bytes(self, bytes: u64) -> Self {
        Self {
            bytes: Some(bytes),
            ..self
        }
    }
}

/// The registry and families of one daemon.
pub struct Metrics {
    daemon: &'static str,
    registry: Registry,
    rpc_calls: Family<RpcCodeLabels, Counter>,
    rpc_seconds: Latencies<RpcLabels>,
    peer_retries: Family<PeerLabels, Counter>,
    peer_unavailable: Family<PeerLabels, Counter>,
    objects: Family<ObjectLabels, Gauge>,
    object_bytes: Family<KindLabels, Gauge>,
    starts: Family<DaemonLabels, Gauge>,
    pulls: Family<PullLabels, Counter>,
    pull_seconds: Latencies<DaemonLabels>,
    pull_bytes: Family<DaemonLabels, Counter>,
    reconciled: Family<ReconcileLabels, Counter>,
    operations: Family<OperationOutcomeLabels, Counter>,
    operation_seconds: Latencies<OperationLabels>,
    exits: Family<ExitLabels, Counter>,
    oom_kills: Family<ContainerLabels, Counter>,
}

impl Metrics {
    pub(crate) fn new(daemon: Daemon) -> Self {
        let daemon = daemon.short_name();
        let mut registry = Registry::with_prefix("crimson");
        let rpc_calls = Family::default();
        registry.register(
            "rpc_requests",
            "gRPC calls this daemon answered, by service, method and gRPC code",
            rpc_calls.clone(),
        );
        let rpc_seconds: Latencies<RpcLabels> = Family::new_with_constructor(latency_histogram);
        registry.register(
            "rpc_request_duration_seconds",
            "Time from a gRPC request to its response headers, by service and method",
            rpc_seconds.clone(),
        );
        let peer_retries = Family::default();
        registry.register(
            "peer_retries",
            "Calls to a peer daemon repeated because it could not be reached",
            peer_retries.clone(),
        );
        let peer_unavailable = Family::default();
        registry.register(
            "peer_unavailable",
            "Calls to a peer daemon given up as UNAVAILABLE after waiting for it",
            peer_unavailable.clone(),
        );
        let objects = Family::default();
        registry.register(
            "objects",
            "Objects this daemon's database holds, by kind (and state, for pods and containers)",
            objects.clone(),
        );
        let object_bytes = Family::default();
        registry.register(
            "object_bytes",
            "Bytes the objects of a kind take (image layers as stored, images as pulled)",
            object_bytes.clone(),
        );
        let starts = Family::<DaemonLabels, Gauge>::default();
        registry.register(
            "daemon_starts",
            "How many times this daemon has started on this state (1 + restarts)",
            starts.clone(),
        );
        let pulls = Family::default();
        registry.register(
            "image_pulls",
            "Image pulls, by outcome: ok, or why they failed",
            pulls.clone(),
        );
        let pull_seconds: Latencies<DaemonLabels> = Family::new_with_constructor(latency_histogram);
        registry.register(
            "image_pull_duration_seconds",
            "How long image pulls took",
            pull_seconds.clone(),
        );
        let pull_bytes = Family::<DaemonLabels, Counter>::default();
        registry.register(
            "image_pull_bytes",
            "Compressed layer bytes fetched from registries",
            pull_bytes.clone(),
        );
        let reconciled = Family::default();
        registry.register(
            "reconciled_objects",
            "Objects start-up reconciliation finished, rolled back or found gone, by kind and action",
            reconciled.clone(),
        );
        let operations = Family::default();
        registry.register(
            "operations",
            "Host operations (cni_add, cni_del, oci_runtime_start, conmon_create, …) by outcome",
            operations.clone(),
        );
        let operation_seconds: Latencies<OperationLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "operation_duration_seconds",
            "How long host operations took, by operation",
            operation_seconds.clone(),
        );
        let exits = Family::default();
        registry.register(
            "container_exits",
            "Containers seen exiting, by exit code",
            exits.clone(),
        );
        let oom_kills = Family::default();
        registry.register(
            "oom_kills",
            "Containers killed for running out of memory, by pod and container name",
            oom_kills.clone(),
        );
        let started = Family::<DaemonLabels, Gauge>::default();
        registry.register(
            "daemon_start_time_seconds",
            "When this daemon started, seconds since the Unix epoch (a change is a restart)",
            started.clone(),
        );
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        started.get_or_create(&DaemonLabels { daemon }).set(now);
        starts.get_or_create(&DaemonLabels { daemon }).set(1);
        Self {
            daemon,
            registry,
            rpc_calls,
            rpc_seconds,
            peer_retries,
            peer_unavailable,
            objects,
            object_bytes,
            starts,
            pulls,
            pull_seconds,
            pull_bytes,
            reconciled,
            operations,
            operation_seconds,
            exits,
            oom_kills,
        }
    }

    /// Records one host operation (`cni_add`, `oci_runtime_start`, …) that took `elapsed`.
    pub fn record_operation(&self, operation: &str, succeeded: bool, elapsed: Duration) {
        let labels = OperationLabels {
            daemon: self.daemon,
            operation: operation.to_string(),
        };
        self.operation_seconds
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        self.operations
            .get_or_create(&OperationOutcomeLabels {
                daemon: self.daemon,
                operation: labels.operation,
                outcome: if succeeded { "ok" } else { "error" },
            })
            .inc();
    }

    /// Records a container's exit with `code`; `oom` when the kernel killed it for memory.
    pub fn record_container_exit(&self, pod: &str, container: &str, code: i32, oom: bool) {
        self.exits
            .get_or_create(&ExitLabels {
                daemon: self.daemon,
                code: code.to_string(),
            })
            .inc();
        if oom {
            self.oom_kills
                .get_or_create(&ContainerLabels {
                    daemon: self.daemon,
                    pod: pod.to_string(),
                    container: container.to_string(),
                })
                .inc();
        }
    }

    /// Records one answered RPC.
    pub fn record_rpc(&self, outcome: RpcOutcome<'_>) {
        let (service, method) = split_path(outcome.path);
        let labels = RpcLabels {
            daemon: self.daemon,
            service: service.to_string(),
            method: method.to_string(),
        };
        self.rpc_seconds
            .get_or_create(&labels)
            .observe(outcome.elapsed.as_secs_f64());
        self.rpc_calls
            .get_or_create(&RpcCodeLabels {
                daemon: self.daemon,
                service: labels.service,
                method: labels.method,
                code: outcome.code.to_string(),
            })
            .inc();
    }

    /// Records one retry of a call to `peer`, which could not be reached.
    pub fn record_peer_retry(&self, peer: Daemon) {
        self.peer_retries.get_or_create(&self.peer(peer)).inc();
    }

    /// Records one call to `peer` given up as UNAVAILABLE.
    pub fn record_peer_unavailable(&self, peer: Daemon) {
        self.peer_unavailable.get_or_create(&self.peer(peer)).inc();
    }

    /// Sets how many objects of each kind (and state) the daemon holds, and their bytes.
    pub fn set_objects(&self, counts: &[ObjectCount]) {
        for count in counts {
            let labels = ObjectLabels {
                daemon: self.daemon,
                kind: count.kind,
                state: count.state,
            };
            self.objects.get_or_create(&labels).set(gauge(count.count));
            if let Some(bytes) = count.bytes {
                let labels = KindLabels {
                    daemon: self.daemon,
                    kind: count.kind,
                };
                self.object_bytes.get_or_create(&labels).set(gauge(bytes));
            }
        }
    }

    /// Sets how many times the daemon has started on its state.
    pub fn set_starts(&self, starts: u64) {
        self.starts.get_or_create(&self.labels()).set(gauge(starts));
    }

    /// Records one image pull: `outcome` is `ok` or why it failed.
    pub fn record_pull(&self, outcome: &'static str, elapsed: Duration) {
        self.pulls
            .get_or_create(&PullLabels {
                daemon: self.daemon,
                outcome,
            })
            .inc();
        self.pull_seconds
            .get_or_create(&self.labels())
            .observe(elapsed.as_secs_f64());
    }

    /// Records `bytes` of layer blobs fetched from a registry.
    pub fn record_pulled_bytes(&self, bytes: u64) {
        self.pull_bytes.get_or_create(&self.labels()).inc_by(bytes);
    }

    /// Records that start-up reconciliation applied `action` ("rolled_back", "exited", …) to
    /// `count` objects of `kind`.
    pub fn record_reconciled(&self, kind: &'static str, action: &'static str, count: u64) {
        if count > 0 {
            let labels = ReconcileLabels {
                daemon: self.daemon,
                kind,
                action,
            };
            self.reconciled.get_or_create(&labels).inc_by(count);
        }
    }

    /// Everything in the Prometheus text format (0.0.4).
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_text::encode(&mut text, &self.registry);
        text
    }

    fn labels(&self) -> DaemonLabels {
        DaemonLabels {
            daemon: self.daemon,
        }
    }

    fn peer(&self, peer: Daemon) -> PeerLabels {
        PeerLabels {
            daemon: self.daemon,
            peer: peer.short_name(),
        }
    }
}

fn gauge(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// (`package.Service`, `Method`) of a gRPC path; anything else is (path, "").
fn split_path(path: &str) -> (&str, &str) {
    path.trim_start_matches('/')
        .split_once('/')
        .unwrap_or((path, ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpcs_peers_and_objects_are_rendered_with_the_daemon() {
        let metrics = Metrics::new(Daemon::Sandbox);
        metrics.record_rpc(RpcOutcome {
            path: "/crimson.sandbox.v1.Sandbox/RunPod",
            code: "OK",
            elapsed: Duration::from_millis(3),
        });
        metrics.record_peer_retry(Daemon::Network);
        metrics.set_objects(&[
            ObjectCount::in_state("pods", "ready", 2),
            ObjectCount::of("layers", 3).with_bytes(4096),
        ]);
        metrics.set_starts(2);
        metrics.record_pull("not_found", Duration::from_millis(5));
        metrics.record_pulled_bytes(100);
        metrics.record_reconciled("containers", "rolled_back", 1);
        metrics.record_operation("cni_add", false, Duration::from_millis(40));
        metrics.record_container_exit("default/web", "app", 137, true);
        let text = metrics.render();
        for line in [
            r#"crimson_rpc_requests_total{daemon="sandbox",service="crimson.sandbox.v1.Sandbox",method="RunPod",code="OK"} 1"#,
            r#"crimson_rpc_request_duration_seconds_count{daemon="sandbox",service="crimson.sandbox.v1.Sandbox",method="RunPod"} 1"#,
            r#"crimson_peer_retries_total{daemon="sandbox",peer="network"} 1"#,
            r#"crimson_objects{daemon="sandbox",kind="pods",state="ready"} 2"#,
            r#"crimson_objects{daemon="sandbox",kind="layers",state=""} 3"#,
            r#"crimson_object_bytes{daemon="sandbox",kind="layers"} 4096"#,
            r#"crimson_daemon_starts{daemon="sandbox"} 2"#,
            r#"crimson_image_pulls_total{daemon="sandbox",outcome="not_found"} 1"#,
            r#"crimson_image_pull_duration_seconds_count{daemon="sandbox"} 1"#,
            r#"crimson_image_pull_bytes_total{daemon="sandbox"} 100"#,
            r#"crimson_reconciled_objects_total{daemon="sandbox",kind="containers",action="rolled_back"} 1"#,
            r#"crimson_operations_total{daemon="sandbox",operation="cni_add",outcome="error"} 1"#,
            r#"crimson_operation_duration_seconds_count{daemon="sandbox",operation="cni_add"} 1"#,
            r#"crimson_container_exits_total{daemon="sandbox",code="137"} 1"#,
            r#"crimson_oom_kills_total{daemon="sandbox",pod="default/web",container="app"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
        assert!(text.contains("# TYPE crimson_daemon_start_time_seconds gauge"));
    }

    #[test]
    fn paths_split_into_service_and_method() {
        assert_eq!(
            split_path("/runtime.v1.RuntimeService/Version"),
            ("runtime.v1.RuntimeService", "Version")
        );
        assert_eq!(split_path("odd"), ("odd", ""));
    }
}
